"""The one reader and writer of hls4ml weight files: ``firmware/weights/<array>.txt`` and ``<array>.h``.

C-sim loads the ``.txt`` (one line of comma-separated literals) at run time; synthesis uses the
``.h`` initializer. Every stage that reads words (address map, inject, cross-check) reads them
here, and every stage that runs the C-sim first calls ``check_weight_files``: a damaged or
hand-edited project is refused with the file and what is wrong, never simulated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from fkhls.core.errors import ProjectError
from fkhls.core.fixedpoint import FixedPrecisionType, from_raw, is_po2, literals, to_raw, type_to_dict
from fkhls.core.templates import render
from fkhls.project.manifest import ArrayRecord, Manifest

__all__ = ["weights_dir", "read_txt_values", "parse_literals", "read_array_words", "read_header_words",
           "header_words", "render_weight_txt", "render_weight_header", "check_declarations", "check_weight_files"]

_HEADER_RE = re.compile(
    # the body: literals, or po2 {sign, exponent} literals (one brace level)
    r"\A//Numpy array shape (?P<shape>[^\n]*)\n.*?#else\n(?P<type>\w+) (?P<array>\w+)\[(?P<size>\d+)\] = "
    r"\{(?P<body>(?:[^{}]|\{[^{}]*\})*)\};",
    re.S,
)


def weights_dir(project_dir: str | Path) -> Path:
    return Path(project_dir) / "firmware" / "weights"


# hls4ml's ExponentWeightVariable literal: {sign, exponent}, sign 1 (+) or 0 (-), printed "1.0" / "0.0"
_PO2_LITERAL_RE = re.compile(r"\{\s*(?P<sign>[01](?:\.0*)?)\s*,\s*(?P<exponent>[+-]?\d+)\s*\}")


def _po2_values(text: str, what: str) -> np.ndarray:
    """Values +-2**e of a po2 array's ``{sign, exponent}`` literals; anything else in the text is refused."""
    matches = list(_PO2_LITERAL_RE.finditer(text))
    rest = _PO2_LITERAL_RE.sub("", text).replace(",", "").strip()
    if rest:
        raise ProjectError(f"{what} holds text that is not a po2 literal {{sign, exponent}}: {rest[:40]!r}")
    sign = np.array([float(m["sign"]) for m in matches], dtype=np.float64)
    exponent = np.array([int(m["exponent"]) for m in matches], dtype=np.int64)
    return np.where(sign == 1, 1.0, -1.0) * np.ldexp(1.0, exponent)


def read_txt_values(path: Path, ptype: FixedPrecisionType | None = None) -> np.ndarray:
    """The float64 values of a weight ``.txt`` as hls4ml wrote them (export reads them before any record exists);
    ``ptype`` a po2 type: the ``{sign, exponent}`` literals hls4ml writes for it."""
    text = path.read_text().strip()
    if ptype is not None and is_po2(ptype):
        return _po2_values(text, str(path))
    return np.array([float(v) for v in text.split(",")], dtype=np.float64) if text else np.zeros(0)


def parse_literals(text: str, record: ArrayRecord, what: str) -> np.ndarray:
    """Raw words of comma-separated literals: exactly ``record.size`` of them, each on the type's grid and in range."""
    if is_po2(record.ptype):
        values = _po2_values(text, what)
        if values.size != record.size:
            raise ProjectError(f"{what} holds {values.size} values, {record.array} has {record.size}")
        return to_raw(record.ptype, values, what=what)
    tokens = [t.strip() for t in text.split(",")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    if len(tokens) != record.size:
        raise ProjectError(f"{what} holds {len(tokens)} values, {record.array} has {record.size}")
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError as exc:
        raise ProjectError(f"{what} holds a value that is not a decimal literal: {exc}") from None
    return to_raw(record.ptype, values, what=what)  # OffGridError names the file, the index and the range


def read_array_words(project_dir: str | Path, record: ArrayRecord) -> np.ndarray:
    """Raw words of one weight array as C-sim loads them (``firmware/weights/<array>.txt``), in element order."""
    path = weights_dir(project_dir) / f"{record.array}.txt"
    if not path.is_file():
        raise ProjectError(f"weight file {str(path)!r} is missing")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"weight file {str(path)!r} cannot be read: {exc}") from None
    if text.count("\n") > 1 or (text.count("\n") == 1 and not text.endswith("\n")):
        # hls4ml's loader reads the first line only: values after a line break would be silently ignored.
        raise ProjectError(f"weight file {str(path)!r} spans several lines; hls4ml reads one line of values")
    return parse_literals(text, record, str(path))


def read_header_words(project_dir: str | Path, record: ArrayRecord) -> tuple[np.ndarray, str]:
    """Raw words of the synthesis initializer in ``<array>.h``, and the header's shape comment."""
    path = weights_dir(project_dir) / f"{record.array}.h"
    if not path.is_file():
        raise ProjectError(f"weight header {str(path)!r} is missing")
    return header_words(path.read_text(), record, str(path))


def header_words(text: str, record: ArrayRecord, what: str) -> tuple[np.ndarray, str]:
    match = _HEADER_RE.match(text)
    if not match or match["array"] != record.array or int(match["size"]) != record.size:
        raise ProjectError(
            f"{what} is not an hls4ml weight header declaring {record.type_name} {record.array}[{record.size}]"
        )
    return parse_literals(match["body"], record, f"{what} initializer"), match["shape"]


def render_weight_txt(record: ArrayRecord, raw: np.ndarray) -> str:
    """The ``.txt`` C-sim loads: hls4ml's one line of comma-separated exact literals."""
    return render("weights.txt.j2", literals=literals(record.ptype, raw))


def render_weight_header(record: ArrayRecord, raw: np.ndarray, shape_text: str, notes: Sequence[str] = ()) -> str:
    """The ``.h`` in hls4ml's layout (same bytes for the golden words, no notes); ``notes`` add ``//`` lines."""
    values = from_raw(record.ptype, raw)
    return render(
        "weights.h.j2", shape_text=shape_text, min_text=f"{np.min(values):.12f}", max_text=f"{np.max(values):.12f}",
        nzeros=int(values.size - np.count_nonzero(values)), notes=list(notes), array=record.array,
        type_name=record.type_name, size=record.size, literals=literals(record.ptype, raw),
    )


def _declared_types(project_dir: Path) -> dict:
    from fkhls.project.readback import read_typedefs

    path = project_dir / "firmware" / "defines.h"
    try:
        return read_typedefs(project_dir)
    except OSError as exc:
        raise ProjectError(f"{str(path)!r} cannot be read: {exc}") from None


def check_declarations(manifest: Manifest) -> None:
    """Refuse a manifest whose weight types or array sizes are not what the project's C++ declares.

    For every array: ``defines.h`` declares the manifest's type under the manifest's typedef name,
    and the ``.h`` declares ``type_name array[size]``. A hand-edited width would otherwise give
    wrong coordinates. Cheap: ``load_manifest`` runs it every time.
    """
    project_dir = Path(manifest.project_dir)
    typedefs = _declared_types(project_dir)
    for record in manifest.arrays():
        declared = typedefs.get(record.type_name)
        if declared is None or isinstance(declared, str) or type_to_dict(declared) != type_to_dict(record.ptype):
            shown = declared if isinstance(declared, str) or declared is None else type_to_dict(declared)["cpp"]
            raise ProjectError(
                f"firmware/defines.h declares {record.type_name} as {shown or 'nothing'}, the manifest says "
                f"{record.type['cpp']} for {record.array}: the manifest or the project was edited; re-export it")
        header = weights_dir(project_dir) / f"{record.array}.h"
        try:
            header_text = header.read_text()
        except OSError:
            raise ProjectError(f"weight header {str(header)!r} is missing or unreadable") from None
        if not re.search(rf"\b{record.type_name}\s+{record.array}\[{record.size}\]", header_text):
            raise ProjectError(f"weight header {str(header)!r} does not declare {record.type_name} "
                               f"{record.array}[{record.size}] as the manifest says")


def check_weight_files(manifest: Manifest) -> None:
    """``check_declarations``, then every ``.txt`` C-sim loads: exactly ``size`` values, on the type's grid, in range.

    Reads each weight file once: call it once per command, before the first C-sim run.
    """
    check_declarations(manifest)
    for record in manifest.arrays():
        read_array_words(manifest.project_dir, record)
