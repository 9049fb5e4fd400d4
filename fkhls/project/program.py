"""The project's top function read as a program: its arguments, local variables and layer calls in order.

Harnesses that trace every layer or recompute only the layers after a fault are generated
from this: they make the same ``nnet::`` calls with the same template arguments as the top
function, so they compute with the hardware's own arithmetic. Anything in the body that is
not understood is refused rather than skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from fkhls.core.errors import ProjectError
from fkhls.project.manifest import Manifest

_PARAM_RE = re.compile(r"^\s*(?:hls::stream<(?P<stype>\w+)>\s*&\s*(?P<sname>\w+)|(?P<atype>\w+)\s+(?P<aname>\w+)\[(?P<asize>[^\]]+)\])\s*,?\s*$")
_ARRAY_RE = re.compile(r"^(?P<type>\w+)\s+(?P<name>\w+)\[(?P<size>[^\]]+)\];$")
_STREAM_RE = re.compile(r'^hls::stream<(?P<type>\w+)>\s+(?P<name>\w+)\("\w+"\);$')
_ALIAS_RE = re.compile(r"^auto\s*&\s*(?P<name>\w+)\s*=\s*(?P<target>\w+);$")
# A literal call argument (an activation's parameter, e.g. leaky_relu's alpha).
NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fF]?$")
_CALL_RE = re.compile(r"^(?P<call>nnet::\w+<[^;]*>\((?P<args>[^;]*)\));\s*//\s*(?P<layer>\S+)$")


@dataclass(frozen=True)
class Variable:
    name: str
    type_name: str
    size: str  # C++ expression (arrays); "" for streams
    stream: bool


@dataclass(frozen=True)
class LayerCall:
    """One ``nnet::`` call of the top function: which hls4ml layer, reading what, writing what."""

    layer: str  # hls4ml layer name from the trailing comment
    function: str  # the call up to its argument list, verbatim
    args: tuple[str, ...]
    # Variables it reads and writes, in argument order: a merge reads two, a Clone writes several. Weight arrays
    # (globals) are neither. Defaults (set by read_program from the order of the calls): args[0] -> args[1].
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def output(self) -> str:
        """The variable it writes; without data flow, the first after the input that is not a literal parameter
        (leaky_relu's alpha comes before its output)."""
        return self.outputs[0] if self.outputs else next(arg for arg in self.args[1:] if not NUMBER_RE.match(arg))

    @property
    def input(self) -> str:
        return self.inputs[0] if self.inputs else self.args[0]


@dataclass(frozen=True)
class Program:
    params: tuple[Variable, ...]
    locals: tuple[Variable, ...]
    aliases: dict  # alias name -> variable it refers to
    calls: tuple[LayerCall, ...]

    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def variable(self, name: str) -> Variable:
        name = self.resolve(name)
        for var in (*self.params, *self.locals):
            if var.name == name:
                return var
        raise ProjectError(f"variable {name!r} is not declared in the top function")


def _closing(text: str, opening: int, pair: str) -> int:
    """Index of the bracket that closes ``text[opening]`` (``pair`` is e.g. "{}")."""
    depth = 0
    for position in range(opening, len(text)):
        depth += {pair[0]: 1, pair[1]: -1}.get(text[position], 0)
        if depth == 0:
            return position
    raise ProjectError(f"unbalanced {pair!r} after offset {opening}")


def function_body(text: str, name: str) -> str | None:
    """The text between the braces of the definition of ``void name(...)`` in C++ source, or None.

    Declarations and calls of the same name are skipped; braces are matched, so a template's
    body ends where it really ends. The one extractor for the top function and nnet_utils headers.
    """
    for match in re.finditer(rf"\bvoid\s+{re.escape(name)}\s*\(", text):
        after = _closing(text, match.end() - 1, "()") + 1
        rest = text[after:].lstrip()
        if not rest.startswith("{"):
            continue
        opening = after + len(text[after:]) - len(rest)
        return text[opening + 1: _closing(text, opening, "{}")]
    return None


def _params(header: str, name: str) -> tuple[Variable, ...]:
    start = header.index(f"void {name}(")
    inner = header[header.index("(", start) + 1: header.index(")", start)]
    params = []
    for line in inner.split(","):
        match = _PARAM_RE.match(line.strip())
        if not match:
            raise ProjectError(f"cannot read the top function parameter {line.strip()!r} of {name}")
        if match["sname"]:
            params.append(Variable(match["sname"], match["stype"], "", True))
        else:
            params.append(Variable(match["aname"], match["atype"], match["asize"], False))
    return tuple(params)


def read_program(manifest: Manifest) -> Program:
    """Parse ``firmware/<project>.cpp`` and ``.h`` into a Program; refuse statements it does not know."""
    if manifest.hardening:
        raise ProjectError("hardened (TMR) project: its layer calls read voted copies of the protected weights, which "
                           "a layer-by-layer replay would bypass; the reference harness (whole top function) runs it")
    firmware = Path(manifest.project_dir) / "firmware"
    name = manifest.project_name
    source = (firmware / f"{name}.cpp").read_text()
    params = _params((firmware / f"{name}.h").read_text(), name)
    body = function_body(source, name)
    if body is None:
        raise ProjectError(f"{name}.cpp does not define the top function {name}: not an hls4ml project")
    if "// hls-fpga-machine-learning insert layers" not in body:
        raise ProjectError(f"{name}.cpp has no layer section: not an hls4ml project this fkhls understands")
    layer_section = body.split("// hls-fpga-machine-learning insert layers", 1)[1]
    local_vars: list[Variable] = []
    aliases: dict[str, str] = {}
    calls: list[LayerCall] = []
    skipping = 0
    for raw_line in layer_section.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("//") or line.startswith("#pragma"):
            continue
        if line.startswith("#if"):
            skipping += 1  # C-sim-only blocks (e.g. hls4ml trace calls) are not part of the datapath
            continue
        if line.startswith("#endif"):
            skipping -= 1
            continue
        if skipping:
            continue
        if match := _ARRAY_RE.match(line):
            local_vars.append(Variable(match["name"], match["type"], match["size"], False))
        elif match := _STREAM_RE.match(line):
            local_vars.append(Variable(match["name"], match["type"], "", True))
        elif match := _ALIAS_RE.match(line):
            aliases[match["name"]] = match["target"]
        elif match := _CALL_RE.match(line):
            args = tuple(a.strip() for a in match["args"].split(","))
            calls.append(LayerCall(match["layer"], match["call"][: match["call"].rindex("(")], args))
        else:
            raise ProjectError(f"{name}.cpp: statement not understood in the layer section: {line!r}")
    if not calls:
        raise ProjectError(f"{name}.cpp calls no nnet:: layer")
    program = Program(params=params, locals=tuple(local_vars), aliases=aliases, calls=tuple(calls))
    return replace(program, calls=_data_flow(program, name))


def _data_flow(program: Program, name: str) -> tuple[LayerCall, ...]:
    """Each call's read and written variables: a variable is written by the first call naming it (the calls are
    in a topological order of the layer graph), read by the later ones; the top function's input is written first."""
    variables = {v.name for v in (*program.params, *program.locals)}
    written = {program.params[0].name}
    calls = []
    for call in program.calls:
        inputs, outputs = [], []
        for arg in call.args:
            var = program.resolve(arg)
            if var not in variables:
                continue  # a weight array or a number
            (inputs if var in written else outputs).append(arg)
        if not outputs:
            raise ProjectError(f"{name}.cpp: the call of layer {call.layer} ({call.function}) writes no variable of "
                               f"the top function not written before (it reads {inputs}): not a layer fkhls can trace")
        written.update(program.resolve(arg) for arg in outputs)
        calls.append(replace(call, inputs=tuple(inputs), outputs=tuple(outputs)))
    return tuple(calls)
