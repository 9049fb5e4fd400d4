"""Read back what an hls4ml project really declares: typedefs (defines.h) and layer configs (parameters.h).

Export checks these against what it asked for; the cross-check re-reads them because a project
can be edited by hand after export, and an explanation of a mismatch must use the real types.
"""

from __future__ import annotations

import re
from pathlib import Path

from fkhls.core.errors import OffGridError
from fkhls.core.fixedpoint import FixedPrecisionType, parse_type

_TYPEDEF_RE = re.compile(r"^\s*typedef\s+(?P<type>.+?)\s+(?P<name>\w+)\s*;\s*$", re.M)
_ARRAY_RE = re.compile(r"^nnet::array<\s*(?P<inner>.+)\s*,\s*[\w*\s]+>$")
_STRUCT_RE = re.compile(r"struct\s+(?P<name>\w+)\s*:[^{]*\{(?P<body>.*?)\n\};", re.S)
_CONST_RE = re.compile(r"static (?:const|constexpr) (?:unsigned|bool|int|float|nnet::\w+) (\w+) = ([^;]+);")


def read_typedef_text(project: str | Path) -> dict[str, str]:
    """Every typedef of defines.h as C++ text (name -> type), exactly as written."""
    text = (Path(project) / "firmware" / "defines.h").read_text()
    return {match["name"]: match["type"].strip() for match in _TYPEDEF_RE.finditer(text)}


def read_typedefs(project: str | Path) -> dict[str, FixedPrecisionType | str]:
    """Every typedef of defines.h; the (element) type parsed where it is a fixed-point type, else the text."""
    out: dict[str, FixedPrecisionType | str] = {}
    for name, text in read_typedef_text(project).items():
        array = _ARRAY_RE.match(text)
        inner = array["inner"] if array else text
        try:
            out[name] = parse_type(inner)
        except OffGridError:
            out[name] = text
    return out


def config_structs(parameters: str) -> dict[str, dict[str, str]]:
    """Every config struct of parameters.h: name -> its ``static const`` values and typedefs (as text)."""
    out: dict[str, dict[str, str]] = {}
    for match in _STRUCT_RE.finditer(parameters):
        members: dict[str, str] = {}
        for name, value in _CONST_RE.findall(match["body"]):
            members.setdefault(name, value.strip())
        for typedef in _TYPEDEF_RE.finditer(match["body"]):
            members.setdefault(typedef["name"], typedef["type"].strip())
        out[match["name"]] = members
    return out


def config_struct(parameters: str, layer_index: int | object) -> dict[str, str]:
    """Members of the config structs of layer N (``config2``, ``relu_config3`` ...) in parameters.h, merged."""
    index = getattr(layer_index, "index", layer_index)
    values: dict[str, str] = {}
    for name, members in config_structs(parameters).items():
        if re.fullmatch(rf"\w*config{index}", name):
            for key, value in members.items():
                values.setdefault(key, value)
    return values


def read_parameters(project: str | Path) -> str:
    return (Path(project) / "firmware" / "parameters.h").read_text()


def retarget_hls4ml_config(project: str | Path, old_dir: str | Path, new_dir: str | Path) -> None:
    """hls4ml records its output directory in hls4ml_config.yml; point it at ``new_dir``.

    A project built in a staging directory, or copied to a faulty project, must not send hls4ml's
    own tools back to the directory it came from (they would write into the golden project).
    """
    config = Path(project) / "hls4ml_config.yml"
    if config.is_file():
        config.write_text(config.read_text().replace(str(old_dir), str(new_dir)))
