"""Read back what an hls4ml project really declares: typedefs (defines.h) and layer configs (parameters.h).

Export checks these against what it asked for; the cross-check re-reads them because a project
can be edited by hand after export, and an explanation of a mismatch must use the real types.
"""

from __future__ import annotations

import re
from pathlib import Path

from fkhls.core.errors import OffGridError
from fkhls.core.fixedpoint import FixedPrecisionType, parse_type

_TYPEDEF_RE = re.compile(r"^typedef\s+(?P<type>.+?)\s+(?P<name>\w+);\s*$", re.M)
_ARRAY_RE = re.compile(r"^nnet::array<\s*(?P<inner>.+)\s*,\s*[\w*\s]+>$")


def read_typedefs(project: str | Path) -> dict[str, FixedPrecisionType | str]:
    """Every typedef of defines.h; the (element) type parsed where it is a fixed-point type, else the text."""
    out: dict[str, FixedPrecisionType | str] = {}
    for match in _TYPEDEF_RE.finditer((Path(project) / "firmware" / "defines.h").read_text()):
        text = match["type"].strip()
        array = _ARRAY_RE.match(text)
        inner = array["inner"] if array else text
        try:
            out[match["name"]] = parse_type(inner)
        except OffGridError:
            out[match["name"]] = text
    return out


def config_struct(parameters: str, layer_index: int | object) -> dict[str, str]:
    """Members (``static const`` values and typedefs) of the config structs of layer N in parameters.h."""
    index = getattr(layer_index, "index", layer_index)
    values: dict[str, str] = {}
    pattern = re.compile(rf"struct\s+(\w*config{index})\s*:[^{{]*\{{(?P<body>.*?)\n\}};", re.S)
    for match in pattern.finditer(parameters):
        for member in re.finditer(r"static const (?:unsigned|bool|int) (\w+) = ([^;]+);", match["body"]):
            values.setdefault(member.group(1), member.group(2).strip())
        for typedef in re.finditer(r"typedef (\w+) (\w+);", match["body"]):
            values.setdefault(typedef.group(2), typedef.group(1))
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
