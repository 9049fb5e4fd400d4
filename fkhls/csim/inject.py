"""Faulty projects and testbenches: every generated file is rendered from hls_templates/.

``inject`` copies a golden project and rewrites only the weight files that hold flipped bits:
the ``.h`` initializer (synthesis) and the ``.txt`` (C-sim) of each affected array, both
rendered by the templates that reproduce hls4ml's own layout byte for byte, with exact decimal
literals that are read back and checked before the directory is moved into place. It also
writes ``faults.json`` (every changed word, see ``FAULTS_SCHEMA``) and the testbench and build
scripts (``render_project_scripts``). The golden project is only read.

A fault file's scenarios are all applied to the one faulty project (that is what a user
synthesizes); a bit named by several scenarios is flipped once, and keeps every origin.

``faults.json`` (schema ``FAULTS_SCHEMA``)::

    {"schema": 1, "fkhls_version", "golden_project", "golden_manifest_sha256", "model_name", "model_hash",
     "fault_source": path | null, "seed": int, "scenarios": [{"name", "n_bits"}],   # when made by inject()
     "n_words", "n_bits",
     "changed_files": [{"path", "sha256_golden", "sha256_faulty"}],
     "words": [{"array", "element", "bits": [bit from LSB, ...], "type": "ap_fixed<6,1>",
                "raw_before", "raw_after", "value_before", "value_after", "literal_before", "literal_after",
                "layer", "tensor", "flat_index", "keras_index",
                "origins": [{"scenario", "layer", "tensor", "lbi", "flat_index", "keras_index", "bit",
                             "model_bit", "memory_word", "memory_bit"}]}]}

Build outputs of the golden project (``*_prj``, ``*.so``, ``*.o``) and a previous ``faults.json``
are not copied: they describe the golden weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from fkhls import __version__
from fkhls.faults.addressing import flat_index_of, map_faults
from fkhls.csim.build import CXXFLAGS, PROJECT_FLAGS
from fkhls.core.errors import AddressError, ProjectError
from fkhls.core.files import sha256_file
from fkhls.core.fixedpoint import flip_bits, from_raw, literals
from fkhls.project.manifest import ArrayRecord, Manifest, load_manifest
from fkhls.project.copy import FAULTS_JSON, check_copy_target, project_copy
from fkhls.project.weights import (
    header_words as _header_words,
    parse_literals as _parse_literals,
    read_array_words,
    read_header_words,
    render_weight_header,
    render_weight_txt,
    weights_dir,
)
from fkhls.core.templates import render

__all__ = [
    "FaultOrigin",
    "WordChange",
    "InjectResult",
    "FAULTS_JSON",
    "FAULTS_SCHEMA",
    "GENERATED_FILES",
    "inject",
    "inject_bits",
    "plan_word_changes",
    "read_array_words",
    "read_header_words",
    "render_weight_header",
    "render_weight_txt",
    "render_project_scripts",
    "hardware_bits_of_faults",
]

FAULTS_SCHEMA = 1
# Files every project made by `inject` gets besides the copied golden project (name -> what it is).
GENERATED_FILES = {
    "fkhls_csim.cpp": "raw-word g++ C-sim testbench (csim_main.cpp.j2, the one `fkhls csim` compiles)",
    "build_csim.sh": "standalone g++ build of fkhls_csim.cpp",
    "fkhls_hls_tb.cpp": "raw-word testbench for Vivado/Vitis csim_design (separate translation unit)",
    "fkhls_hls.tcl": "Vivado/Vitis script: raw-word C simulation, then C synthesis",
}
# Never copied from the golden project: build outputs that would describe the golden weights.


@dataclass(frozen=True)
class FaultOrigin:
    """Where one flipped bit came from: the scenario (descriptor entry) and its FKeras coordinates."""

    scenario: str | None
    layer: str
    tensor: str
    lbi: int
    flat_index: int
    keras_index: tuple[int, ...]
    bit: int
    model_bit: int | None = None
    memory_word: int | None = None  # weight-memory address (fkhls.faults.addressing); None where weights are logic
    memory_bit: int | None = None


@dataclass(frozen=True)
class WordChange:
    """One weight word of the faulty project: its bits flipped, before/after as raw words and values."""

    array: str
    element: int
    bits: tuple[int, ...]  # flipped bit positions from the LSB
    type: str  # C++ type of the word
    raw_before: int
    raw_after: int
    value_before: float
    value_after: float
    literal_before: str
    literal_after: str
    layer: str
    tensor: str
    flat_index: int
    keras_index: tuple[int, ...]
    origins: tuple[FaultOrigin, ...] = ()


@dataclass(frozen=True)
class InjectResult:
    project_dir: Path  # the faulty project
    golden_dir: Path
    changes: tuple[WordChange, ...]
    changed_files: tuple[str, ...]  # relative to project_dir
    faults_json: Path

    @property
    def n_bits(self) -> int:
        return sum(len(c.bits) for c in self.changes)


# Weight files are read and rendered by fkhls.project.weights (re-exported here for existing callers).

# ----------------------------------------------------------------------------- fault -> hardware bit


def _keras_index(record: ArrayRecord, flat_index: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, record.keras_shape))


def hardware_bits_of_faults(manifest: Manifest, faults: Sequence) -> list[tuple[str, int, int]]:
    """(array, element, bit) of each BitFault, through ``fkhls.faults.addressing.map_faults``."""
    return [(hb.array, int(hb.element), int(hb.array_bit)) for hb in map_faults(manifest, list(faults))]


def _as_triple(item: Any) -> tuple[str, int, int]:
    if hasattr(item, "array") and hasattr(item, "element"):
        bit = getattr(item, "array_bit", getattr(item, "bit", None))
        return str(item.array), int(item.element), int(bit)
    array, element, bit = item
    return str(array), int(element), int(bit)


def _check_triple(manifest: Manifest, array: str, element: int, bit: int) -> ArrayRecord:
    _, record = manifest.array(array)
    if not 0 <= element < record.size:
        raise AddressError(f"element {element} of {array} is outside the valid range 0..{record.size - 1}")
    if not 0 <= bit < record.ptype.width:
        raise AddressError(f"bit {bit} of {array} ({record.type['cpp']}) is outside the valid range "
                           f"0..{record.ptype.width - 1}")
    return record


def plan_word_changes(manifest: Manifest, bits: Iterable, origins: Sequence[FaultOrigin | None] | None = None,
                      project_dir: Path | None = None) -> list[WordChange]:
    """Group hardware bits (array, element, bit) into changed words, read the golden words, flip them.

    A bit listed twice is flipped once (a fault set is a set of bits) and keeps both origins.
    Words are returned in manifest array order, then element order.
    """
    project_dir = Path(project_dir or manifest.project_dir)
    triples = [_as_triple(b) for b in bits]
    origins = list(origins) if origins is not None else [None] * len(triples)
    words: dict[tuple[str, int], dict[int, list[FaultOrigin]]] = {}
    for (array, element, bit), origin in zip(triples, origins):
        _check_triple(manifest, array, element, bit)
        word_bits = words.setdefault((array, element), {})
        word_bits.setdefault(bit, [])
        if origin is not None:
            word_bits[bit].append(origin)
    order = {a.array: i for i, a in enumerate(manifest.arrays())}
    changes: list[WordChange] = []
    golden: dict[str, np.ndarray] = {}
    for (array, element) in sorted(words, key=lambda k: (order[k[0]], k[1])):
        layer, record = manifest.array(array)
        if array not in golden:
            golden[array] = read_array_words(project_dir, record)
        ptype = record.ptype
        flipped = tuple(sorted(words[(array, element)], reverse=True))
        mask = sum(1 << b for b in flipped)
        before = int(golden[array][element])
        after = int(flip_bits(ptype, np.int64(before), np.int64(mask)))
        flat = flat_index_of(record, element)
        changes.append(WordChange(
            array=array, element=element, bits=flipped, type=record.type["cpp"], raw_before=before, raw_after=after,
            value_before=float(from_raw(ptype, before)), value_after=float(from_raw(ptype, after)),
            literal_before=literals(ptype, [before])[0], literal_after=literals(ptype, [after])[0],
            layer=layer.name, tensor=record.tensor, flat_index=flat, keras_index=_keras_index(record, flat),
            origins=tuple(o for b in flipped for o in words[(array, element)][b]),
        ))
    return changes


# ----------------------------------------------------------------------------- scripts


def render_project_scripts(manifest: Manifest, faulty: bool = False) -> dict[str, str]:
    """Testbenches and build scripts of a project (file name -> text), see ``GENERATED_FILES``."""

    out_type = manifest.output_ptype
    n_in, n_out = int(np.prod(manifest.input_shape)), int(np.prod(manifest.output_shape))
    io = dict(project_name=manifest.project_name, io_type=manifest.io_type, n_in=n_in, n_out=n_out)
    tool = "Vitis HLS" if manifest.backend == "Vitis" else "Vivado HLS"
    template = "vitis_csim.tcl.j2" if manifest.backend == "Vitis" else "vivado_csim.tcl.j2"
    return {
        "fkhls_csim.cpp": render("csim_main.cpp.j2", **io),
        "build_csim.sh": render("build_csim.sh.j2", **io, cxxflags=list(CXXFLAGS), source="fkhls_csim.cpp",
                                project_flags=list(PROJECT_FLAGS),
                                binary="fkhls_csim", out_width=out_type.width),
        "fkhls_hls_tb.cpp": render("hls_testbench.cpp.j2", **io, testbench="fkhls_hls_tb.cpp",
                                   out_signed=bool(out_type.signed), out_width=out_type.width),
        "fkhls_hls.tcl": render(template, **io, template_name=template, tool=tool,
                                tool_command="vitis_hls" if manifest.backend == "Vitis" else "vivado_hls",
                                script="fkhls_hls.tcl", testbench="fkhls_hls_tb.cpp",
                                hls_project=f"fkhls_{manifest.project_name}_prj", faulty=faulty),
    }


# ----------------------------------------------------------------------------- inject




def _rewrite_array(golden_dir: Path, staging: Path, record: ArrayRecord, changes: Sequence[WordChange]) -> list[str]:
    """Render the faulty .h/.txt of one array into ``staging``, after checking the templates against hls4ml."""
    golden_raw = read_array_words(golden_dir, record)
    header_path = weights_dir(golden_dir) / f"{record.array}.h"
    header_text = header_path.read_text()
    header_raw, shape_text = _header_words(header_text, record, str(header_path))
    if not np.array_equal(header_raw, golden_raw):
        bad = int(np.flatnonzero(header_raw != golden_raw)[0])
        raise ProjectError(f"golden {record.array}.h and {record.array}.txt disagree at element {bad}: "
                           "the project is inconsistent; re-export it")
    # The templates must reproduce hls4ml's files exactly, so the faulty files differ only where meant to.
    txt_text = (weights_dir(golden_dir) / f"{record.array}.txt").read_text()
    if render_weight_header(record, golden_raw, shape_text) != header_text or \
            render_weight_txt(record, golden_raw) != txt_text:
        raise ProjectError(f"{record.array}.h/.txt are not in the hls4ml 1.3.0 layout fkhls reproduces; "
                           "refusing to rewrite them")
    raw = golden_raw.copy()
    for change in changes:
        raw[change.element] = change.raw_after
    n_bits = sum(len(c.bits) for c in changes)
    notes = [f" fkhls {__version__}: faulty copy, {n_bits} bit(s) flipped in {len(changes)} word(s) of "
             f"{record.array}; see {FAULTS_JSON}"]
    header = render_weight_header(record, raw, shape_text, notes)
    txt = render_weight_txt(record, raw)
    # Read back what was rendered: both files must give exactly the intended words.
    for what, got in (("header", _header_words(header, record, f"faulty {record.array}.h")[0]),
                      ("txt", _parse_literals(txt, record, f"faulty {record.array}.txt"))):
        if not np.array_equal(got, raw):
            raise ProjectError(f"faulty {record.array} {what} does not read back to the flipped words")
    target = weights_dir(staging)
    (target / f"{record.array}.h").write_text(header)
    (target / f"{record.array}.txt").write_text(txt)
    return [f"firmware/weights/{record.array}.h", f"firmware/weights/{record.array}.txt"]


def _faults_document(manifest: Manifest, golden_dir: Path, staging: Path, changes: Sequence[WordChange],
                     changed_files: Sequence[str], source: dict) -> dict:
    return {
        "schema": FAULTS_SCHEMA,
        "fkhls_version": __version__,
        "golden_project": str(golden_dir),
        "golden_manifest_sha256": sha256_file(golden_dir / "fkhls.json"),
        "model_name": manifest.model_name,
        "model_hash": manifest.model_hash,
        **source,
        "n_words": len(changes),
        "n_bits": sum(len(c.bits) for c in changes),
        "changed_files": [
            {"path": rel, "sha256_golden": sha256_file(golden_dir / rel), "sha256_faulty": sha256_file(staging / rel)}
            for rel in changed_files
        ],
        "words": [asdict(c) for c in changes],
    }


def inject_bits(project_dir: str | Path, output_dir: str | Path, bits: Iterable, *, force: bool = False,
                origins: Sequence[FaultOrigin | None] | None = None, source: dict | None = None) -> InjectResult:
    """Copy a golden project to ``output_dir`` with hardware bits (array, element, bit) flipped.

    ``bits`` holds (array, element, bit) tuples or objects with ``array``/``element``/``array_bit``
    (``addressing.HardwareBit``). Only the affected ``.h``/``.txt`` pairs are rewritten; the golden
    project is only read; ``output_dir`` appears complete or not at all.
    """
    golden_dir = Path(project_dir).resolve()
    manifest = load_manifest(golden_dir)
    output_dir = Path(output_dir)
    check_copy_target(golden_dir, output_dir, force, "faulty project directory")
    changes = plan_word_changes(manifest, bits, origins, golden_dir)
    if not changes:
        raise ProjectError("no bits to flip: the fault list is empty")
    with project_copy(golden_dir, output_dir, force, "faulty project directory") as staging:
        changed_files: list[str] = []
        for record in manifest.arrays():
            mine = [c for c in changes if c.array == record.array]
            if mine:
                changed_files += _rewrite_array(golden_dir, staging, record, mine)
        for name, text in render_project_scripts(manifest, faulty=True).items():
            (staging / name).write_text(text)
        (staging / "build_csim.sh").chmod(0o755)
        document = _faults_document(manifest, golden_dir, staging, changes, changed_files, source or {})
        (staging / FAULTS_JSON).write_text(json.dumps(document, indent=2) + "\n")
    target = output_dir.resolve()
    return InjectResult(project_dir=target, golden_dir=golden_dir, changes=tuple(changes),
                        changed_files=tuple(changed_files), faults_json=target / FAULTS_JSON)


def inject(project_dir: str | Path, faults, output_dir: str | Path, *, force: bool = False) -> InjectResult:
    """``fkhls inject``: apply every fault of a fault-set file (or FaultSet) to one faulty copy of the project.

    ``faults`` is a path to a JSON/YAML fault set (``fkhls.faults.descriptors``), a mapping, or a ``FaultSet``;
    scenarios are all flipped together, each word records the scenario and LBI it came from.
    """
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.faults.descriptors import FaultSet, load_fault_set, model_bit_of

    manifest = load_manifest(project_dir)
    spec = spec_from_manifest(manifest)  # names, shapes and word types: no TF import needed
    fault_set = faults if isinstance(faults, FaultSet) else load_fault_set(faults, spec)
    pairs = [(s.name, f) for s in fault_set.scenarios for f in s.faults]
    if not pairs:
        raise ProjectError("the fault set flips no bits (every region drew 0 bits)")
    triples, origins = [], []
    for (name, fault), hb in zip(pairs, map_faults(manifest, [f for _, f in pairs])):
        if hb.array_bit is None:
            raise AddressError(f"{fault.layer}.{fault.tensor} lbi {fault.lbi} has no bit in array {hb.array}: {hb.note}")
        triples.append((hb.array, int(hb.element), int(hb.array_bit)))
        origins.append(FaultOrigin(scenario=name, layer=hb.layer, tensor=hb.tensor, lbi=int(fault.lbi),
                                   flat_index=int(hb.flat_index), keras_index=tuple(int(i) for i in hb.keras_index),
                                   bit=int(fault.bit), model_bit=int(model_bit_of(spec, fault)),
                                   memory_word=hb.memory_word, memory_bit=hb.memory_bit))
    source = {
        "fault_source": str(Path(faults).resolve()) if isinstance(faults, (str, Path)) else None,
        "seed": fault_set.seed,
        "scenarios": [{"name": s.name, "n_bits": len(s.faults)} for s in fault_set.scenarios],
    }
    return inject_bits(project_dir, output_dir, triples, force=force, origins=origins, source=source)
