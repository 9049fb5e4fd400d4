"""Triple modular redundancy of chosen weight words, written into a copy of an hls4ml project.

Per protected array ``wN``: two replica arrays ``wN_tmr1``/``wN_tmr2`` holding only the protected
elements (their own ``.h``/``.txt``, rendered by the one weight-file writer and read back), a
vote function in ``firmware/fkhls_tmr.h`` (hls_templates/tmr_vote.h.j2), and three edits of the
top function at hls4ml's own lines (hls_templates/tmr_top.cpp.j2): include the header, load the
replicas in the C-sim load block, and hand the layer call the voted array instead of ``wN``.
Every edited line is first re-rendered from the parsed program and must equal hls4ml's line, so
a top function this does not understand is refused, never half-edited. The weight arrays are
only read (the vote writes a local copy): a fault harness that flips and restores bits sees
exactly one faulty copy per scenario.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from fkhls.core.errors import ProjectError
from fkhls.core.templates import render
from fkhls.project.weights import read_array_words, read_header_words, render_weight_header, render_weight_txt
from fkhls.harden.select import Word
from fkhls.project.manifest import MANIFEST_NAME, ArrayRecord, Manifest
from fkhls.project.program import read_program

__all__ = ["VOTE_HEADER", "ProtectedArray", "protected_arrays", "write_tmr"]

VOTE_HEADER = "fkhls_tmr.h"
VOTE = "(a & b) | (a & c) | (b & c) on the raw words, per protected element"


@dataclass(frozen=True)
class ProtectedArray:
    """One weight array with protected words: the primary, its two replicas and the voted local."""

    record: ArrayRecord
    layer: str
    words: tuple[Word, ...]  # in element order; replica element j = words[j]
    replicas: tuple[ArrayRecord, ArrayRecord]
    voted: str  # local array the layer call reads

    @property
    def elements(self) -> list[int]:
        return [w.element for w in self.words]


def protected_arrays(manifest: Manifest, words: Sequence[Word]) -> list[ProtectedArray]:
    """Group words by array (manifest order), elements ascending; name the replicas, refusing a name clash."""
    taken = {a.array for a in manifest.arrays()}
    out = []
    for layer in manifest.weighted_layers:
        for record in layer.arrays():
            mine = sorted((w for w in words if w.array == record.array), key=lambda w: w.element)
            if not mine:
                continue
            if "po2_exponent_bits" in record.type:  # the voter and loader below read ap_fixed words only
                raise ProjectError(f"{record.array} ({layer.name}.{record.tensor}) holds quantized_po2 exponent structs; "
                                   "fkhls harden votes and loads ap_(u)fixed words only: protect other arrays")
            names = (f"{record.array}_tmr1", f"{record.array}_tmr2", f"{record.array}_voted")
            clash = [n for n in names if n in taken]
            if clash:
                raise ProjectError(f"the project already has an array named {clash[0]!r}; cannot add the replicas of "
                                   f"{record.array}")
            replicas = tuple(ArrayRecord(tensor=record.tensor, array=n, type_name=record.type_name, type=record.type,
                                         keras_shape=(len(mine),), axes=(0,), order="replica", size=len(mine))
                             for n in names[:2])
            out.append(ProtectedArray(record, layer.name, tuple(mine), replicas, names[2]))
    return out


def _write_replicas(golden_dir: Path, staging: Path, item: ProtectedArray) -> list[str]:
    """Render both replicas' .h/.txt from the golden words and check they read back to those words."""
    golden = read_array_words(golden_dir, item.record)
    header_words, _ = read_header_words(golden_dir, item.record)
    if not np.array_equal(golden, header_words):
        bad = int(np.flatnonzero(golden != header_words)[0])
        raise ProjectError(f"golden {item.record.array}.h and .txt disagree at element {bad}; re-export the project")
    words = golden[item.elements]
    written = []
    for copy, replica in enumerate(item.replicas, start=1):
        notes = [f" fkhls harden: TMR replica {copy} of {item.record.array}; element j is {item.record.array}"
                 f"[{item.record.array}_protected[j]] (see {VOTE_HEADER} and the hardening section of {MANIFEST_NAME})"]
        target = staging / "firmware" / "weights"
        (target / f"{replica.array}.h").write_text(render_weight_header(replica, words, f"({replica.size},)", notes))
        (target / f"{replica.array}.txt").write_text(render_weight_txt(replica, words))
        # read back through the same readers every stage uses: both files must hold exactly the golden words
        for what, got in (("header", read_header_words(staging, replica)[0]),
                          ("txt", read_array_words(staging, replica))):
            if not np.array_equal(got, words):
                raise ProjectError(f"replica {replica.array} {what} does not read back to the protected words")
        written += [f"firmware/weights/{replica.array}.h", f"firmware/weights/{replica.array}.txt"]
    return written


def _one_line(lines: list[str], wanted, what: str, source: str) -> int:
    hits = [i for i, line in enumerate(lines) if wanted(line)]
    if len(hits) != 1:
        raise ProjectError(f"{source}: expected exactly one {what}, found {len(hits)}; not an hls4ml 1.3.0 top "
                           "function fkhls harden can edit")
    return hits[0]


def _edit_top(manifest: Manifest, items: Sequence[ProtectedArray]) -> str:
    """The hardened top function: include, replica loads, and voted arrays handed to the layer calls."""
    name = manifest.project_name
    source_name = f"firmware/{name}.cpp"
    program = read_program(manifest)
    lines = (Path(manifest.project_dir) / source_name).read_text().split("\n")
    by_array = {item.record.array: item for item in items}
    # layer calls first (replacing by line index), from the bottom so earlier indices stay valid
    edits: list[tuple[int, str]] = []
    for call in program.calls:
        voted = [by_array[arg] for arg in call.args if arg in by_array]
        if not voted:
            continue
        golden = render("tmr_top.cpp.j2", part="call", voted=[], function=call.function, args=list(call.args),
                        layer=call.layer).rstrip("\n")
        index = _one_line(lines, lambda line, g=golden: line == g, f"layer call {golden.strip()!r}", source_name)
        args = [by_array[arg].voted if arg in by_array else arg for arg in call.args]
        text = render("tmr_top.cpp.j2", part="call", function=call.function, args=args, layer=call.layer,
                      voted=[dict(type_name=v.record.type_name, voted=v.voted, size=v.record.size, array=v.record.array)
                             for v in voted]).rstrip("\n")
        edits.append((index, text))
    for array, item in by_array.items():
        readers = [call.layer for call in program.calls if array in call.args]
        if len(readers) != 1:
            raise ProjectError(f"{source_name}: {array} is read by {len(readers)} layer calls {readers}; fkhls harden "
                               "protects an array read by exactly one")
        if any(v.name == item.voted for v in (*program.params, *program.locals)):
            raise ProjectError(f"{source_name} already declares {item.voted!r}; cannot add the voted copy of {array}")
    for index, text in sorted(edits, reverse=True):
        lines[index] = text
    load = _one_line(lines, lambda line: line.strip().startswith("loaded_weights = true;"),
                     "'loaded_weights = true;' line (the C-sim weight load block)", source_name)
    replicas = [dict(type_name=r.type_name, size=r.size, array=r.array) for item in items for r in item.replicas]
    lines.insert(load, render("tmr_top.cpp.j2", part="load", replicas=replicas).rstrip("\n"))
    include = _one_line(lines, lambda line: line.strip() == '#include "parameters.h"', '#include "parameters.h"',
                        source_name)
    lines.insert(include + 1, render("tmr_top.cpp.j2", part="include").rstrip("\n"))
    return "\n".join(lines)


def hardening_section(items: Sequence[ProtectedArray], extra: dict) -> dict:
    """The manifest's ``hardening`` section: what is protected, where its copies are, at which rank."""
    return {
        "scheme": "tmr",
        "vote": VOTE,
        "header": f"firmware/{VOTE_HEADER}",
        **extra,
        "n_words": sum(len(item.words) for item in items),
        "arrays": [{
            "array": item.record.array, "layer": item.layer, "tensor": item.record.tensor, "voted": item.voted,
            "width": item.record.ptype.width,
            "replicas": [asdict(r) for r in item.replicas],
            "words": [{"element": w.element, "replica_element": j, "flat_index": w.flat_index,
                       "keras_index": list(w.keras_index), "rank": w.rank, "word_rank": w.word_rank}
                      for j, w in enumerate(item.words)],
        } for item in items],
    }


def write_tmr(manifest: Manifest, staging: Path, words: Sequence[Word], extra: dict) -> tuple[Manifest, list[str]]:
    """Turn ``staging`` (a copy of the golden project ``manifest`` describes) into the hardened project."""
    if manifest.hardening:
        raise ProjectError(f"{str(manifest.project_dir)!r} is already hardened; harden the golden project instead")
    if not words:
        raise ProjectError("no words to protect")
    golden_dir = Path(manifest.project_dir)
    items = protected_arrays(manifest, words)
    top = _edit_top(manifest, items)
    written = []
    for item in items:
        written += _write_replicas(golden_dir, staging, item)
    arrays = [dict(array=i.record.array, type_name=i.record.type_name, width=i.record.ptype.width, size=i.record.size,
                   n=len(i.words), elements=i.elements, replicas=[r.array for r in i.replicas]) for i in items]
    (staging / "firmware" / VOTE_HEADER).write_text(render("tmr_vote.h.j2", project_name=manifest.project_name,
                                                           arrays=arrays))
    (staging / "firmware" / f"{manifest.project_name}.cpp").write_text(top)
    hardened = replace(manifest, project_dir=staging, hardening=hardening_section(items, extra))
    hardened.write(staging / MANIFEST_NAME)
    written += [f"firmware/{VOTE_HEADER}", f"firmware/{manifest.project_name}.cpp", MANIFEST_NAME]
    return hardened, written
