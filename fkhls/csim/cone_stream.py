"""The cone harness for io_stream projects: the reference harness's results, recomputing only a fault's cone.

In an io_stream project every layer call moves whole ``hls::stream`` objects
(``nnet::conv_2d_cl<...>(layer4_out, layer5_out, w5, b5)``) and a stream is consumed when read,
so activations cannot be kept in the streams themselves. The harness keeps, per sample, the
golden element sequence of every stream variable as an array (``std::vector`` of the packed
element, e.g. ``nnet::array<ap_fixed<...>, 16>``). Per scenario and sample it starts at the
first call that reads a flipped weight array; each recomputed call gets fresh streams filled
from the arrays of its inputs (the faulty copy of a variable that differs from golden, the
golden one otherwise), its output streams are drained into arrays and compared with golden,
and the sample stops (outputs golden) as soon as nothing differs.

*Neuron delta* (single-bit scenarios in an eligible io_stream Dense call, as ``fkhls.csim.cone``):
hls4ml 1.3.0's stream ``nnet::dense`` (``nnet_dense_stream.h``) reads the whole input vector from
its stream, runs the io_parallel kernel (``dense_latency`` / ``dense_resource``) on
``data_T::value_type`` / ``res_T::value_type`` arrays and writes the result, so the element arrays
kept here are that kernel's input and output. The one output a flipped weight feeds is
``golden + (accum_t)product(x, w_new) - (accum_t)product(x, w_old)`` (bias: ``+ (accum_t)b_new -
(accum_t)b_old``) with the config's own ``product``; samples where it did not change are golden,
the others continue the cone from the next call with that output stream dirty. Exact under the
io_parallel conditions (``fkhls.csim.cone``'s docstring): the stream element type *is* accum_t,
accum_t is an ap_(u)fixed that wraps, defines.h says what the manifest records; asserted at compile
time too. Where they fail the layer runs cone + skip and the plan says why.

*Channel delta* (single-bit scenarios in an eligible ``nnet::conv_2d_cl`` call, same conditions):
the stream conv (``nnet_conv2d_stream.h``, line buffer, no padding: hls4ml pads in a layer of its
own) runs ``mult_config``'s Dense kernel on each full window and writes one packed pixel of
``n_filt`` channels per output position, row-major. A flipped weight (kh, kw, c, f) changes
channel f only: at output (oh, ow) by ``(accum_t)product(x[oh*s_h+kh, ow*s_w+kw, c], w_new) -
(accum_t)product(x, w_old)``; a flipped bias adds ``(accum_t)b_new - (accum_t)b_old`` to channel
f everywhere. The geometry comes from the config struct in the generated code itself; a 1-row
kernel (``compute_output_buffer_1d``) keeps cone + skip.

*Sparse input step* (any scenario, an eligible Dense or Conv2D call -- one of the delta layers above, after the
first weighted call -- reached with its input stream dirty and its own weights unflipped): the changed input
elements are found by comparing the work array with golden, and each output is golden + the sum over the changed
inputs it reads of ``(accum_t)product(x_new, w) - (accum_t)product(x_old, w)``. Dense: input i feeds every output j
through w[i, j]; Conv2D: input (h, w, c) feeds every output position whose window covers it, at (kh, kw) = (h -
oh*s_h, w - ow*s_w), in every filter. The terms are summed on raw words in uint64_t (modulo 2^64, hence modulo 2^W
for a W <= 64-bit accum_t), which is the call's own modular sum in any order. For narrow inputs (<= 8 bits, table <=
64 MB) the raw products of every input word and weight are tabled once per process, in a sparse step (its weights
are unflipped whenever it takes one) once the call has spent as many ``product`` calls as the table costs (rent or
buy: a short run skips a large table), and a term then costs two reads instead of two ``product`` calls. The step
declines, and the call runs whole, when it would cost more than the call, counting a table term as a quarter of a
product (without a table: a Dense with more than half its inputs changed), or when accum_t is wider than 64 bits.
``-DFKHLS_SPARSE_STREAM=0`` switches the step off, ``-DFKHLS_PRODUCT_TABLE_BITS=0`` the tables, and
``-DFKHLS_SPARSE_STATS`` prints per call how often it took the step and how often it ran whole (the tests use all
three).

Every stream is written by one call and read by at most one (hls4ml inserts ``clone_stream``
for a tensor with several readers), so a variable stops mattering once its reader ran. The
calls, their template arguments and their order are the top function's (``fkhls.project.program``),
and the golden pass is checked against the top function on every sample. As in the io_parallel
harness, the first process saves the golden streams beside the binary (``fkhls.csim.cone.golden_file``:
per sample and variable its element count and bytes, under a header tying them to this binary's
element sizes, the inputs and the loaded weights, and a hash of the body) and later processes (a
campaign's shards) load them instead of running the pass. ``fkhls.csim.cone``
dispatches io_stream projects here (``cone_plan``, ``render_cone_harness``); the binary takes the
reference harness's command line plus the cone harness's optional STEP PHASE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError
from fkhls.core.templates import render
from fkhls.csim.cone import (_DENSE_RE, ConePlan, DeltaLayer, _project_types, _strides, accumulator_refusal,
                             arguments_refusal, declared_type_refusal, dense_delta_layer)
from fkhls.project.manifest import Manifest
from fkhls.project.program import NUMBER_RE, Program, read_program
from fkhls.project.readback import _ARRAY_RE

__all__ = ["ConvDeltaLayer", "sparse_layers", "stream_cone_plan", "render_stream_cone_harness"]

_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_CONV_RE = re.compile(r"^nnet::conv_2d_cl<\s*(?P<data>\w+)\s*,\s*(?P<res>\w+)\s*,\s*(?P<config>\w+)\s*>$")


@dataclass(frozen=True)
class ConvDeltaLayer:
    """An io_stream Conv2D call whose faulted output channel can be updated pixel by pixel (module docstring)."""

    call: int
    layer: str
    data_t: str  # template arguments of the nnet::conv_2d_cl call
    res_t: str
    config: str
    input: str  # stream variables read and written
    output: str
    kernel: str
    bias: str | None
    shape: tuple[int, int, int, int]  # Keras kernel shape (kh, kw, c, f)
    strides: tuple[int, int, int, int]  # kernel element e -> Keras axis a index (e / strides[a]) % shape[a]
_FALLBACK = "this io_stream project runs the reference harness (full top function per fault)"


def _refuse(why: str) -> ConePlan:
    return ConePlan(False, f"io_stream cone harness: {why}; {_FALLBACK}")


def stream_cone_plan(manifest: Manifest) -> ConePlan:
    """Which call reads each weight array, after checking the body is a pure stream pipeline; else why not."""
    if manifest.io_type != "io_stream":
        return _refuse(f"the project is {manifest.io_type}")
    try:
        program = read_program(manifest)
    except (ProjectError, OSError, ValueError) as exc:
        return _refuse(f"top function not replayable ({exc})")
    variables = {v.name: v for v in (*program.params, *program.locals)}
    not_streams = sorted(name for name, v in variables.items() if not v.stream)
    if not_streams:
        return _refuse(f"variables {', '.join(not_streams)} are not hls::stream objects")
    arrays = [a.array for a in manifest.arrays()]
    users: dict[str, list[int]] = {a: [] for a in arrays}
    readers: dict[str, list[str]] = {name: [] for name in variables}
    weights_dir = Path(manifest.project_dir) / "firmware" / "weights"
    for index, call in enumerate(program.calls):
        for arg in call.args:
            if arg in users:
                users[arg].append(index)
            elif _IDENTIFIER.match(arg) and (weights_dir / f"{arg}.h").is_file():
                continue  # a weight array that is no fault target (a bias-less depthwise's zeros): read, never flipped
            elif program.resolve(arg) not in variables and not NUMBER_RE.match(arg):
                return _refuse(f"call {call.layer} passes {arg!r}, neither a stream of the top function, a weight "
                               "array nor a number")
        for arg in call.inputs:
            readers[program.resolve(arg)].append(call.layer)
    for array, calls in users.items():
        if len(calls) != 1:
            return _refuse(f"weight array {array} is read by {len(calls)} calls (expected 1)")
    for name, layers in readers.items():
        if len(layers) > 1:  # a stream is consumed by its reader: a second reader would see it empty
            return _refuse(f"stream {name} is read by {len(layers)} calls ({', '.join(layers)})")
    output = program.resolve(manifest.output_var)
    if program.resolve(manifest.input_var) != program.params[0].name or output not in variables or readers[output]:
        return _refuse(f"input {manifest.input_var} / output {manifest.output_var} are not the top function's "
                       "input and unread output streams")
    typedefs, configs = _project_types(manifest)
    delta, notes = [], []
    for index in sorted({calls[0] for calls in users.values()}):
        layer, note = _stream_delta_layer(manifest, program, index, typedefs, configs)
        if layer is not None:
            delta.append(layer)
        else:
            notes.append(note)
    reason = "io_stream cone + skip on every weighted call (golden streams kept as arrays); delta (Dense: one " \
             "output, Conv2D: one channel) on " + (
        ", ".join(d.layer for d in delta) if delta else "no layer")
    sparse = sparse_layers(delta, [calls[0] for calls in users.values()])
    reason += "; sparse input step (changed input elements only, while cheaper than the call) on " + (
        ", ".join(d.layer for d in sparse) if sparse else "no layer")
    if notes:
        reason += "; cone + skip only: " + "; ".join(notes)
    return ConePlan(True, reason, program, tuple(users[a][0] for a in arrays), tuple(delta), (), tuple(notes))


def sparse_layers(delta: Sequence[DeltaLayer | ConvDeltaLayer],
                  array_calls: Iterable[int]) -> tuple[DeltaLayer | ConvDeltaLayer, ...]:
    """The delta layers that take the sparse input step: those after the first call that reads a weight array (an
    input with no weighted call upstream is never dirty)."""
    first = min(array_calls, default=0)
    return tuple(d for d in delta if d.call > first)


def _element(typedefs: dict[str, str], name: str) -> str | None:
    """The element type (C++ text) of a packed stream type ``nnet::array<T, N>``; None for anything else."""
    match = _ARRAY_RE.match(typedefs.get(name, "").strip())
    return match["inner"].strip() if match else None


def _stream_delta_layer(manifest: Manifest, program: Program, index: int, typedefs: dict, configs: dict):
    """(DeltaLayer, None) when stream call ``index`` qualifies for the neuron delta, else (None, reason)."""
    call = program.calls[index]
    match = _DENSE_RE.match(call.function) or _CONV_RE.match(call.function)
    if not match:
        return None, (f"{call.layer}: {call.function.split('<')[0]} is not an io_stream nnet::dense or conv_2d_cl "
                      "call")
    conv = match.re is _CONV_RE
    record = next((r for r in manifest.weighted_layers if r.hls_name == call.layer), None)
    kind = "conv2d" if conv else "dense"
    if record is None or record.kind != kind or record.kernel is None:
        return None, f"{call.layer}: no {kind} layer with a kernel in the manifest"
    reason = accumulator_refusal(program, call, record)
    if reason:
        return None, reason
    output = program.resolve(call.output)
    config = configs.get(match["config"], {})
    accum_name = config.get("accum_t")
    checks = [  # (what, C++ text in defines.h, what the manifest records)
        (f"{match['res']}'s element", _element(typedefs, match["res"]), record.result_type),
        (accum_name, typedefs.get(accum_name or ""), record.accum_type),
        (config.get("weight_t"), typedefs.get(config.get("weight_t") or ""), record.kernel.type),
        (config.get("bias_t"), typedefs.get(config.get("bias_t") or ""), record.bias.type if record.bias else None),
    ]
    reason = declared_type_refusal(call.layer, checks)
    if reason:
        return None, reason
    data = _element(typedefs, match["data"])
    if data is None:
        return None, f"{call.layer}: input stream type {match['data']} is not an nnet::array"
    if data.replace(" ", "") == "ap_uint<1>":
        return None, f"{call.layer}: binary inputs use a different cast"
    reason = arguments_refusal(call, record)
    if reason:
        return None, reason
    kernel, bias = record.kernel, record.bias
    if conv:
        strides = _strides(kernel.hls_shape)
        position = {axis: k for k, axis in enumerate(kernel.axes)}  # Keras axis -> position in the hls4ml order
        if len(kernel.keras_shape) != 4:
            return None, f"{call.layer}: kernel shape {kernel.keras_shape} is not (kh, kw, c, f)"
        pads = {side: config.get(f"pad_{side}") for side in ("top", "bottom", "left", "right")}
        if any(pad != "0" for pad in pads.values()):
            return None, f"{call.layer}: padded inside the conv ({pads}): the window geometry is not the plain one"
        if config.get("filt_height") == "1":  # nnet_conv2d_stream.h then takes compute_output_buffer_1d (untested here)
            return None, f"{call.layer}: a 1-row kernel takes hls4ml's 1D line-buffer path, not the one modelled"
        mult = configs.get(f"{match['config']}_mult", {})
        if mult.get("accum_t") != accum_name or mult.get("weight_t") != config.get("weight_t"):
            return None, (f"{call.layer}: {match['config']}_mult's accum_t / weight_t are not {match['config']}'s "
                          "(the kernel's sum may not be the layer's)")
        return ConvDeltaLayer(call=index, layer=call.layer, data_t=match["data"], res_t=match["res"],
                              config=match["config"], input=program.resolve(call.input), output=output,
                              kernel=kernel.array, bias=bias.array if bias else None,
                              shape=tuple(int(n) for n in kernel.keras_shape),
                              strides=tuple(strides[position[a]] for a in range(4))), None
    return dense_delta_layer(index, call, match, record, program.resolve(call.input), output)


def _stream_calls(program: Program) -> list[dict]:
    """Per call: its arguments with aliases resolved, and the ids of the variables it reads and writes."""
    variables = (*program.params, *program.locals)
    ids = {v.name: k for k, v in enumerate(variables)}
    types = {v.name: v.type_name for v in variables}
    calls = []
    for call in program.calls:
        inputs = [program.resolve(arg) for arg in call.inputs]
        outputs = [program.resolve(arg) for arg in call.outputs]
        # Streams are locals of the generated call functions, named s_<variable> so that no input name ("g", "w")
        # can shadow the functions' own parameters.
        args = [f"s_{program.resolve(arg)}" if program.resolve(arg) in ids else arg for arg in call.args]
        calls.append(dict(layer=call.layer, function=call.function, args=args,
                          inputs=[dict(id=ids[v], name=v, type_name=types[v]) for v in inputs],
                          outputs=[dict(id=ids[v], name=v, type_name=types[v]) for v in outputs]))
    return calls


def render_stream_cone_harness(manifest: Manifest, plan: ConePlan) -> str:
    """The io_stream cone harness C++ source (one translation unit with the project's top function)."""
    if not plan.supported or plan.program is None:
        raise ProjectError(f"no cone harness for {manifest.project_dir}: {plan.reason}")
    program = plan.program
    out_type = manifest.output_ptype
    ids = {a.array: k for k, a in enumerate(manifest.arrays())}
    var_id = {v.name: k for k, v in enumerate((*program.params, *program.locals))}
    delta = [dict(d.__dict__, conv=isinstance(d, ConvDeltaLayer), kernel_id=ids[d.kernel],
                  bias_id=ids[d.bias] if d.bias else -1,
                  input_id=var_id[d.input], output_id=var_id[d.output]) for d in plan.delta]
    sparse_calls = {d.call for d in sparse_layers(plan.delta, plan.array_calls)}
    calls = [dict(c, sparse=k in sparse_calls) for k, c in enumerate(_stream_calls(program))]
    return render("cone_stream_harness.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)),
                  out_signed=bool(out_type.signed), out_width=out_type.width,
                  arrays=[dict(array=a.array, type_name=a.type_name, cpp=a.type["cpp"], size=a.size,
                               width=a.ptype.width, call=c) for a, c in zip(manifest.arrays(), plan.array_calls)],
                  variables=[*program.params, *program.locals], calls=calls, delta=delta,
                  sparse=[d for d in delta if d["call"] in sparse_calls],
                  input_var=program.resolve(manifest.input_var), output_var=program.resolve(manifest.output_var),
                  output_id=[v.name for v in (*program.params, *program.locals)].index(
                      program.resolve(manifest.output_var)),
                  plan_reason=plan.reason)
