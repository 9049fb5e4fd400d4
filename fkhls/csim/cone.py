"""The cone harness: a fault-campaign C-sim that recomputes only what a fault can change, exactly.

A drop-in alternative to ``fkhls.csim.harness`` (same scenarios, same command line, same results
file), generated from the top function read as a Program (``fkhls.project.program``): the same
``nnet::`` calls with the same template arguments, so the arithmetic stays the hardware's.

Per process the binary runs every sample once through a replay of the top function and keeps
all activations (the golden pass; it checks the replay against the top function itself). The
first process saves them beside the binary (``golden_file``), later ones (a campaign's shards)
load them. Per scenario and sample it then

1. *cone + skip*: starts at the first call that reads a flipped weight array, recomputes a
   call only when it reads a flipped array or a variable that differs from golden, and stops
   (the sample's outputs are golden) as soon as nothing differs any more;
2. *neuron delta* (single-bit scenarios in an eligible Dense call): updates only the one
   output the flipped weight feeds, ``golden + (accum_t)(x*w_new) - (accum_t)(x*w_old)``
   (bias: ``+ (accum_t)b_new - (accum_t)b_old``) in the layer's ``accum_t`` with its own
   ``product``, then continues as in 1 from the next call;
3. *sparse inputs*: inside the cone, an eligible Dense call whose input differs from golden in
   fewer than half its elements is updated the same way for each changed input (every output:
   ``+ (accum_t)(x_new*w) - (accum_t)(x_old*w)``), and an elementwise activation
   (``ELEMENTWISE``) runs its own ``nnet::`` function, instantiated for one element, on the
   changed elements only; otherwise the call runs whole.

What differs from golden is tracked per element: for each variable, the ascending indices of its
changed elements (the work struct holds their new values; a clean variable is read from the
golden struct), so no activation struct is copied per sample and a whole variable is compared
with golden only after a whole ``nnet::`` call wrote it. Two memos cut the ap_fixed arithmetic
without replacing it: a Dense call with a narrow input type (<= 8 bits) gets a table of
``(accum_t)product(x, w)`` for every input word and weight, made once per process with its own
``product`` from the unflipped weights (the sparse step never runs on a call whose weights are
flipped); an elementwise call with a narrow input (<= 18 bits) keeps each input word's result
the first time its ``nnet::`` function computes it.

The delta is exact when the sum is modular in ``accum_t`` and nothing rounds it afterwards:
the call's result type *is* its ``accum_t`` (so ``cast`` is the identity), ``accum_t`` is an
``ap_(u)fixed`` that wraps on overflow (no saturation), and the project's C types are the ones
the manifest records (``firmware/defines.h`` re-read, in case someone edited it). Every
product and the bias are cast to ``accum_t`` before the sum, exactly as in
``nnet_dense_latency.h`` / ``nnet_dense_resource.h``; the generated code asserts the type
conditions at compile time too. Where they fail the layer runs cone + skip (``ConePlan.notes``).

io_stream projects are planned and rendered by ``fkhls.csim.cone_stream`` (golden streams kept as
arrays, cone + skip, a neuron delta on eligible io_stream Dense calls); the build and the run below are shared.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fkhls.csim.build import CsimBinary, compile_program
from fkhls.core.errors import ProjectError
from fkhls.core.fixedpoint import SaturationMode, cpp_type, parse_type, type_from_dict
# The job layout, command line and result file are the reference harness's (the cone binary takes the same
# arguments, plus an optional STEP PHASE), so a campaign can also drive it with harness.run_harness_slice.
from fkhls.csim.harness import EncodedScenarios, _check, _command, open_results, prepare_harness, run_fault_harness
from fkhls.project.manifest import Manifest
from fkhls.project.program import Program, read_program
from fkhls.project.readback import config_structs, read_parameters, read_typedef_text
from fkhls.core.templates import render

__all__ = ["DeltaLayer", "ConePlan", "accumulator_refusal", "cone_plan", "cone_support", "render_cone_harness", "build_cone_harness",
           "golden_file", "run_cone_harness"]

_DENSE_RE = re.compile(r"^nnet::dense<\s*(?P<data>\w+)\s*,\s*(?P<res>\w+)\s*,\s*(?P<config>\w+)\s*>$")
_ELEMENTWISE_RE = re.compile(r"^(?P<head>nnet::(?P<name>\w+)<.*,\s*)(?P<config>\w+)\s*>$")
_NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fF]?$")
# nnet_activation.h functions where res[i] depends on data[i] alone (loops over CONFIG_T::n_in; tables are static
# per config, filled the same way for any n_in): the cone recomputes only the changed elements through them.
ELEMENTWISE = frozenset({"relu", "relu_max", "linear", "sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softplus",
                         "softsign", "binary_tanh", "ternary_tanh", "leaky_relu", "thresholded_relu", "elu"})


@dataclass(frozen=True)
class DeltaLayer:
    """A Dense call whose faulted output can be updated neuron by neuron (see the module docstring)."""

    call: int  # index of the call in Program.calls
    layer: str
    data_t: str  # template arguments of the nnet::dense call
    res_t: str
    config: str
    input: str  # variables (struct members) read and written
    output: str
    kernel: str  # weight arrays
    bias: str | None
    n_in: int
    n_out: int
    i_stride: int  # kernel element e -> Keras (i, j) = ((e / i_stride) % n_in, (e / j_stride) % n_out)
    j_stride: int


@dataclass(frozen=True)
class ConePlan:
    """How the cone harness treats a project: replayed calls, weight array -> call, delta layers, notes."""

    supported: bool  # False: an unreadable top function (or body); run_cone_harness uses the reference harness
    reason: str
    program: Program | None = None
    array_calls: tuple[int, ...] = ()  # manifest array id -> index of the call that reads it
    delta: tuple[DeltaLayer, ...] = ()
    elementwise: tuple[int, ...] = ()  # calls of ELEMENTWISE functions (recomputed element by element when few change)
    notes: tuple[str, ...] = ()  # why a weighted Dense layer has no neuron delta


def _project_types(manifest: Manifest) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Typedefs of firmware/defines.h (name -> C++ text) and the members of each parameters.h config struct."""
    return read_typedef_text(manifest.project_dir), config_structs(read_parameters(manifest.project_dir))


def _same_type(cpp: str | None, recorded: dict | None) -> bool:
    if cpp is None or recorded is None:
        return False
    try:
        return cpp_type(parse_type(cpp)) == cpp_type(type_from_dict(recorded))
    except Exception:  # a type fkhls cannot read (ap_int, float ...) is not the recorded one
        return False


def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(shape[k + 1:])) for k in range(len(shape)))


def accumulator_refusal(program: Program, call, record) -> str | None:
    """Why a weighted call's output cannot be updated by a delta (golden + new product - old product), or None.

    The delta is exact only when the call's output *is* its accumulator (materialized, result type == accum_t)
    and that accumulator is an ap_(u)fixed that wraps (a modular sum), and the kernel is linear in its word (a
    po2 exponent word multiplies by a shift). Shared by the io_parallel and io_stream cone harnesses.
    """
    if "po2_exponent_bits" in record.kernel.type:
        return f"{call.layer}: its po2 kernel multiplies by a shift (weight_exponential), not linear in the word"
    if record.output_var is None or program.resolve(record.output_var) != program.resolve(call.output):
        return (f"{call.layer}: its accumulator is not materialized (the call writes {call.output}, the "
                f"manifest's output variable is {record.output_var}): the result type differs from accum_t")
    if record.accum_type is None or record.accum_type != record.result_type:
        return f"{call.layer}: result type {record.result_type['cpp']} is not its accumulator type"
    if not record.accum_type["cpp"].startswith(("ap_fixed<", "ap_ufixed<")):
        return f"{call.layer}: accumulator {record.accum_type['cpp']} is not an ap_(u)fixed type"
    if record.accum_ptype.saturation_mode != SaturationMode.WRAP:
        return f"{call.layer}: accumulator {record.accum_type['cpp']} saturates (its sum is not modular)"
    return None


def _delta_layer(manifest: Manifest, program: Program, index: int, typedefs: dict, configs: dict):
    """(DeltaLayer, None) when call ``index`` qualifies for the neuron delta, else (None, reason)."""
    call = program.calls[index]
    match = _DENSE_RE.match(call.function)
    if not match:
        return None, f"{call.layer}: {call.function} is not an io_parallel nnet::dense call"
    record = next((r for r in manifest.weighted_layers if r.hls_name == call.layer), None)
    if record is None or record.kind != "dense" or record.kernel is None:
        return None, f"{call.layer}: no Dense layer with a kernel in the manifest"
    reason = accumulator_refusal(program, call, record)
    if reason:
        return None, reason
    output = program.resolve(call.output)
    config = configs.get(match["config"], {})
    accum_name = config.get("accum_t")
    checks = [(name, typedefs.get(name or ""), recorded) for name, recorded in [
        (match["res"], record.result_type),
        (accum_name, record.accum_type),
        (config.get("weight_t"), record.kernel.type),
        (config.get("bias_t"), record.bias.type if record.bias else None),
    ]]
    reason = declared_type_refusal(call.layer, checks)
    if reason:
        return None, reason
    if match["data"] in ("ap_uint<1>",) or typedefs.get(match["data"], "").replace(" ", "") == "ap_uint<1>":
        return None, f"{call.layer}: binary inputs use a different cast"
    reason = arguments_refusal(call, record)
    if reason:
        return None, reason
    return dense_delta_layer(index, call, match, record, program.resolve(call.input), output)


def declared_type_refusal(layer: str, checks) -> str | None:
    """Why the delta is refused when a type in ``firmware/defines.h`` is not the one the manifest records; checks:
    (name, its C++ text in defines.h, the recorded type or None when there is none to check)."""
    for name, cpp, recorded in checks:
        if recorded is not None and not _same_type(cpp, recorded):
            return (f"{layer}: firmware/defines.h has {name} = {cpp!r}, the manifest records {recorded['cpp']} "
                    "(edited by hand?): the accumulator may not be exact")
    return None


def arguments_refusal(call, record) -> str | None:
    """Why the delta is refused when the call's weight arguments are not the layer's kernel (and bias) arrays."""
    kernel, bias = record.kernel, record.bias
    if tuple(call.args[2:]) != (kernel.array, *((bias.array,) if bias else ())):
        return f"{call.layer}: call arguments {call.args} do not match arrays {kernel.array}/{bias and bias.array}"
    return None


def dense_delta_layer(index: int, call, match, record, input_var: str, output: str):
    """(DeltaLayer, None) of a Dense call that passed the checks (its kernel is (n_in, n_out)), else (None, reason)."""
    kernel, bias = record.kernel, record.bias
    if len(kernel.keras_shape) != 2:
        return None, f"{call.layer}: kernel shape {kernel.keras_shape} is not (n_in, n_out)"
    strides = _strides(kernel.hls_shape)
    position = {axis: k for k, axis in enumerate(kernel.axes)}  # Keras axis -> position in the hls4ml order
    n_in, n_out = kernel.keras_shape
    return DeltaLayer(call=index, layer=call.layer, data_t=match["data"], res_t=match["res"], config=match["config"],
                      input=input_var, output=output, kernel=kernel.array, bias=bias.array if bias else None,
                      n_in=int(n_in), n_out=int(n_out), i_stride=strides[position[0]],
                      j_stride=strides[position[1]]), None


def _is_elementwise(call, program: Program, names: set[str]) -> bool:
    match = _ELEMENTWISE_RE.match(call.function)
    if not match or match["name"] not in ELEMENTWISE:
        return False
    variables = [arg for arg in call.args if program.resolve(arg) in names]
    return (len(variables) == 2 and variables == [call.args[0], call.args[-1]]
            and program.resolve(call.args[0]) != program.resolve(call.args[-1]))


def cone_plan(manifest: Manifest) -> ConePlan:
    """Read the project and decide, per weighted call, cone + skip or neuron delta; explain every refusal."""
    if manifest.io_type == "io_stream":
        from fkhls.csim.cone_stream import stream_cone_plan  # imports this module: imported here, not at the top

        return stream_cone_plan(manifest)
    if manifest.io_type != "io_parallel":
        return ConePlan(False, f"{manifest.io_type}: the cone harness replays io_parallel projects only; this project "
                               "runs the reference harness (full top function per fault)")
    try:
        program = read_program(manifest)
    except (ProjectError, OSError, ValueError) as exc:
        return ConePlan(False, f"top function not replayable ({exc}); this project runs the reference harness")
    names = {v.name for v in (*program.params, *program.locals)}
    arrays = [a.array for a in manifest.arrays()]
    users: dict[str, list[int]] = {a: [] for a in arrays}
    for index, call in enumerate(program.calls):
        for arg in call.args:
            if arg in users:
                users[arg].append(index)
            elif program.resolve(arg) not in names and not _NUMBER_RE.match(arg):
                return ConePlan(False, f"call {call.layer} passes {arg!r}, neither a variable of the top function, a "
                                       "weight array nor a number; this project runs the reference harness")
    for array, calls in users.items():
        if len(calls) != 1:
            return ConePlan(False, f"weight array {array} is read by {len(calls)} calls (expected 1); this project runs "
                                   "the reference harness")
    typedefs, configs = _project_types(manifest)
    delta, notes = [], []
    for index in sorted({users[a][0] for a in arrays}):
        layer, note = _delta_layer(manifest, program, index, typedefs, configs)
        if layer is not None:
            delta.append(layer)
        else:
            notes.append(note)
    elementwise = tuple(index for index, call in enumerate(program.calls) if _is_elementwise(call, program, names))
    reason = "cone + skip on every weighted call; neuron delta on " + (
        ", ".join(d.layer for d in delta) if delta else "no layer")
    if notes:
        reason += "; cone + skip only: " + "; ".join(notes)
    return ConePlan(True, reason, program, tuple(users[a][0] for a in arrays), tuple(delta), elementwise,
                    tuple(notes))


def cone_support(manifest: Manifest) -> tuple[bool, str]:
    """(True, what runs where) when the cone harness replays this project; (False, why) when it falls back."""
    plan = cone_plan(manifest)
    return plan.supported, plan.reason


def render_cone_harness(manifest: Manifest, plan: ConePlan | None = None) -> str:
    """The cone harness C++ source (one translation unit with the project's top function)."""
    plan = plan or cone_plan(manifest)
    if not plan.supported:
        raise ProjectError(f"no cone harness for {manifest.project_dir}: {plan.reason}")
    if manifest.io_type == "io_stream":
        from fkhls.csim.cone_stream import render_stream_cone_harness

        return render_stream_cone_harness(manifest, plan)
    program = plan.program
    variables = [*program.params, *program.locals]
    var_id = {v.name: k for k, v in enumerate(variables)}
    arrays = manifest.arrays()
    array_names = {a.array for a in arrays}
    input_var, output_var = program.resolve(manifest.input_var), program.resolve(manifest.output_var)

    def var(name: str) -> dict:
        return dict(id=var_id[name], name=name)

    reads = [[program.resolve(arg) for arg in call.inputs] for call in program.calls]
    writes = [[program.resolve(arg) for arg in call.outputs] for call in program.calls]
    # A variable other than the output is dropped from the cone after the last call that names it.
    last_use = {name: k for k, names in enumerate(zip(reads, writes)) for name in (*names[0], *names[1])}
    calls = []
    for k, call in enumerate(program.calls):
        args = [arg if arg in array_names or _NUMBER_RE.match(arg) else f"a.{program.resolve(arg)}" for arg in call.args]
        # In the cone a clean input is read from the golden struct, a dirty one (completed first) from the work struct.
        cone_args = [arg if arg in array_names or _NUMBER_RE.match(arg) else
                     f"(t.dirty[{var_id[program.resolve(arg)]}] ? a.{program.resolve(arg)} : g.{program.resolve(arg)})"
                     if program.resolve(arg) in reads[k] else f"a.{program.resolve(arg)}" for arg in call.args]
        retire = sorted(name for name, last in last_use.items() if last == k and name not in (input_var, output_var))
        calls.append(dict(layer=call.layer, function=call.function, args=args, cone_args=cone_args, dense=None,
                          elementwise=None, inputs=[var(n) for n in dict.fromkeys(reads[k])],
                          outputs=[var(n) for n in dict.fromkeys(writes[k])], retire=[var(n) for n in retire]))
    ids = {a.array: k for k, a in enumerate(arrays)}
    delta = [dict(d.__dict__, kernel_id=ids[d.kernel], bias_id=ids[d.bias] if d.bias else -1,
                  input_id=var_id[d.input], output_id=var_id[d.output]) for d in plan.delta]
    for d in delta:
        calls[d["call"]]["dense"] = d
    for index in plan.elementwise:
        call = program.calls[index]
        match = _ELEMENTWISE_RE.match(call.function)
        inp, out = program.resolve(call.args[0]), program.resolve(call.args[-1])
        calls[index]["elementwise"] = dict(
            config=match["config"], function=f"{match['head']}{match['config']}_one_{index}>", input=inp, output=out,
            input_id=var_id[inp], output_id=var_id[out],
            args=[f"&a.{inp}[i]", *call.args[1:-1], f"&a.{out}[i]"])
    out_type = manifest.output_ptype
    return render("cone_harness.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)),
                  out_signed=bool(out_type.signed), out_width=out_type.width,
                  arrays=[dict(array=a.array, type_name=a.type_name, cpp=a.type["cpp"], size=a.size,
                               width=a.ptype.width, call=c) for a, c in zip(arrays, plan.array_calls)],
                  variables=variables, calls=calls, delta=delta,
                  input_var=input_var, output_var=output_var, output_id=var_id[output_var], plan_reason=plan.reason)


def build_cone_harness(manifest: Manifest, plan: ConePlan | None = None) -> CsimBinary:
    """Compile (or reuse from the cache) the project's cone harness; ProjectError when the plan is unsupported."""
    return compile_program(manifest.project_dir, render_cone_harness(manifest, plan), "cone_harness")


def golden_file(binary: CsimBinary, n_samples: int, x_raw) -> Path:
    """Where the cone binary keeps the golden activations of these inputs: beside the binary in the compile cache
    (the file holds the binary's own bytes: its struct, or its streams' elements), named by a hash of the raw inputs. The binary checks the
    header (its struct size, inputs and loaded weights) and recomputes the pass on any mismatch."""
    words = np.ascontiguousarray(x_raw, dtype=np.int64)
    digest = hashlib.sha256(f"{n_samples}:{words.shape}".encode() + words.tobytes()).hexdigest()[:24]
    return Path(binary.path).parent / f"golden-{digest}.bin"


def run_cone_harness(manifest: Manifest, x_raw, scenarios: Sequence[Sequence] | EncodedScenarios, *,
                     out_path: str | Path | None = None, workers: int = 1,
                     binary: CsimBinary | None = None, plan: ConePlan | None = None) -> np.ndarray:
    """Same contract and results as ``fkhls.csim.harness.run_fault_harness``, computed by the cone harness.

    (n_scenarios, n_samples, n_outputs) int64 sign-extended raw output words; ``out_path``: the
    results stay in that file and a read-only memmap is returned. Projects the cone harness does
    not replay (``cone_support`` False) run the reference harness. ``workers`` > 1
    processes take interleaved scenarios (s % workers), not contiguous slices: fault costs
    differ by layer by 10x and exhaustive lists are ordered by layer. The golden pass runs once per binary and
    inputs (``golden_file``): later calls, a campaign's shards, load its activations.
    """
    if binary is None:  # callers that run many batches plan and build once and pass ``binary`` (or ``plan``)
        plan = plan or cone_plan(manifest)
        if not plan.supported:  # the documented fall back: the reference harness, its own binary
            return run_fault_harness(manifest, x_raw, scenarios, out_path=out_path, workers=workers)
        binary = build_cone_harness(manifest, plan)
    with tempfile.TemporaryDirectory(prefix="fkhls-cone-") as tmp:
        results = Path(out_path) if out_path is not None else Path(tmp) / "results.bin"
        job = prepare_harness(manifest, x_raw, scenarios, results, tmp, binary)
        if job.n_scenarios == 0:
            return np.zeros((0, job.n_samples, job.n_out), dtype=np.int64)
        step = max(1, min(int(workers), job.n_scenarios))
        golden = [str(golden_file(binary, job.n_samples, x_raw))]  # both cone binaries keep their golden pass there
        procs = [subprocess.Popen([*_command(job, 0, job.n_scenarios), str(step), str(phase), *golden],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=job.project)
                 for phase in range(step)]
        failures = []
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                failures.append((proc.returncode, err))
        for code, err in failures:
            _check(code, err, 0, job.n_scenarios)
        if out_path is not None:
            return open_results(results, job.n_scenarios, job.n_samples, job.n_out)
        return np.array(open_results(results, job.n_scenarios, job.n_samples, job.n_out))
