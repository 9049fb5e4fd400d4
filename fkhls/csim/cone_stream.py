"""The cone harness for io_stream projects: the reference harness's results, recomputing only a fault's cone.

In an io_stream project every layer call moves whole ``hls::stream`` objects
(``nnet::conv_2d_cl<...>(layer4_out, layer5_out, w5, b5)``) and a stream is consumed when read,
so activations cannot be kept in the streams themselves. The harness keeps, per sample, the
golden element sequence of every stream variable as an array (``std::vector`` of the packed
element, e.g. ``nnet::array<ap_fixed<...>, 16>``). Per scenario and sample it starts at the
first call that reads a flipped weight array; each recomputed call gets fresh streams filled
from the arrays of its inputs (the faulty copy of a variable that differs from golden, the
golden one otherwise), its output streams are drained into arrays and compared with golden,
and the sample stops (outputs golden) as soon as nothing differs. There is no neuron delta:
one conv weight feeds every output pixel of its channel.

Every stream is written by one call and read by at most one (hls4ml inserts ``clone_stream``
for a tensor with several readers), so a variable stops mattering once its reader ran. The
calls, their template arguments and their order are the top function's (``fkhls.project.program``),
and the golden pass is checked against the top function on every sample. ``fkhls.csim.cone``
dispatches io_stream projects here (``cone_plan``, ``render_cone_harness``); the binary takes the
reference harness's command line plus the cone harness's optional STEP PHASE.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError
from fkhls.core.templates import render
from fkhls.csim.cone import ConePlan
from fkhls.project.manifest import Manifest
from fkhls.project.program import NUMBER_RE, Program, read_program

__all__ = ["stream_cone_plan", "render_stream_cone_harness"]

_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
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
    return ConePlan(True, "io_stream cone + skip on every weighted call (golden streams kept as arrays, no neuron "
                          "delta)", program, tuple(users[a][0] for a in arrays))


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
    return render("cone_stream_harness.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)),
                  out_signed=bool(out_type.signed), out_width=out_type.width,
                  arrays=[dict(array=a.array, type_name=a.type_name, cpp=a.type["cpp"], size=a.size,
                               width=a.ptype.width, call=c) for a, c in zip(manifest.arrays(), plan.array_calls)],
                  variables=[*program.params, *program.locals], calls=_stream_calls(program),
                  input_var=program.resolve(manifest.input_var), output_var=program.resolve(manifest.output_var),
                  output_id=[v.name for v in (*program.params, *program.locals)].index(
                      program.resolve(manifest.output_var)),
                  plan_reason=plan.reason)
