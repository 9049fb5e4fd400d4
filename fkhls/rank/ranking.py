"""A ranking: every weight bit of a project in predicted-sensitivity order, as CSV + sidecar JSON.

CSV (one row per bit, most sensitive first; written atomically)::

    rank, layer, tensor, lbi, model_bit, flat_index, keras_index, bit, array, element, array_bit,
    memory, memory_word, memory_bit, score, param_score

Coordinates come from ``faults.addressing`` (the project's address map; ``memory*`` empty where
the build has no weight memory, e.g. Latency strategy). ``score`` is what the order sorts on
within the method's convention, ``param_score`` the score of the weight the bit belongs to
(empty for methods without one). The sidecar ``RANKING.csv.json`` records the method, seed, loss,
the hashes of inputs, labels and project, and the method's own numbers (e.g. Hessian eigenvalues).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.core.files import atomic_write_text
from fkhls.rank.bitorder import BitSpace

__all__ = ["COLUMNS", "Ranking", "sidecar_path", "write_ranking", "read_ranking"]

COLUMNS = ("rank", "layer", "tensor", "lbi", "model_bit", "flat_index", "keras_index", "bit", "array", "element",
           "array_bit", "memory", "memory_word", "memory_bit", "score", "param_score")


@dataclass(frozen=True)
class Ranking:
    """Bits in rank order (most sensitive first) as (tensor index into ``space``, lbi)."""

    method: str
    space: BitSpace
    tensor: np.ndarray
    lbi: np.ndarray
    score: np.ndarray
    param_score: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lbi)

    @property
    def model_bit(self) -> np.ndarray:
        return self.space.model_bit_offsets()[self.tensor] + self.lbi

    def check_complete(self) -> None:
        """Every bit of the space exactly once."""
        counts = np.bincount(self.model_bit, minlength=self.space.n_bits)
        if len(counts) > self.space.n_bits or counts.min(initial=1) != 1 or counts.max(initial=1) != 1:
            missing = int(np.sum(counts[:self.space.n_bits] == 0))
            repeated = int(np.sum(counts > 1))
            raise FkhlsError(f"ranking {self.method!r} holds {len(self)} rows for {self.space.n_bits} bits "
                             f"({missing} bits missing, {repeated} repeated); a ranking lists every bit once")


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if np.isnan(value) else repr(value)
    return str(value)


def write_ranking(manifest, ranking: Ranking, path: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write the CSV and its sidecar JSON; an existing file is refused unless ``force``."""
    from fkhls.faults.addressing import address_map
    from fkhls.faults.descriptors import BitFault

    path = Path(path)
    side = sidecar_path(path)
    for target in (path, side):
        if target.exists() and not force:
            raise ProjectError(f"{str(target)!r} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise ProjectError(f"directory {str(path.parent)!r} of the output {str(path)!r} does not exist")
    ranking.check_complete()
    space = ranking.space
    faults = [BitFault(space.layers[t], space.tensors[t], int(l), space.widths[t])
              for t, l in zip(ranking.tensor.tolist(), ranking.lbi.tolist())]
    amap = address_map(manifest)
    mapped = amap.map_faults(faults)
    model_bits = ranking.model_bit
    param = ranking.param_score if ranking.param_score is not None else np.full(len(ranking), np.nan)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, h in enumerate(mapped):
        writer.writerow([_cell(v) for v in (
            i, h.layer, h.tensor, h.lbi, int(model_bits[i]), h.flat_index, " ".join(map(str, h.keras_index)), h.bit,
            h.array, h.element, h.array_bit, h.memory, h.memory_word, h.memory_bit, float(ranking.score[i]),
            float(param[i]))])
    memories = {f"{l}.{t}": {"memory": amap.layout(l, t).kind, "note": amap.layout(l, t).note}
                for l, t in zip(space.layers, space.tensors)}
    meta = {"method": ranking.method, "n_bits": len(ranking), "columns": list(COLUMNS), **ranking.info,
            "memories": memories}
    atomic_write_text(path, buffer.getvalue())
    atomic_write_text(side, json.dumps(meta, indent=2, default=_jsonable) + "\n")
    return path, side


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_ranking(path: str | Path, space: BitSpace) -> Ranking:
    """A ranking CSV read back against a project's bits: every bit once, in the file's row order."""
    path = Path(path)
    if not path.is_file():
        raise FkhlsError(f"ranking file {str(path)!r} does not exist")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"layer", "tensor", "lbi"}
    if not rows or not needed <= set(rows[0]):
        raise FkhlsError(f"ranking file {str(path)!r} needs the columns {sorted(needed)} and at least one row")
    index = {(l, t): i for i, (l, t) in enumerate(zip(space.layers, space.tensors))}
    tensor = np.empty(len(rows), dtype=np.int64)
    lbi = np.empty(len(rows), dtype=np.int64)
    score = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        key = (row["layer"], row["tensor"])
        if key not in index:
            raise FkhlsError(f"{path}: row {i} names {key[0]}.{key[1]}, not a quantized tensor of the project; valid: "
                             f"{[f'{l}.{t}' for l, t in index]}")
        t = index[key]
        try:
            lbi[i] = int(row["lbi"])
        except ValueError:
            raise FkhlsError(f"{path}: row {i} has lbi {row['lbi']!r}, not an integer") from None
        limit = space.sizes[t] * space.widths[t]
        if not 0 <= lbi[i] < limit:
            raise FkhlsError(f"{path}: row {i} has lbi {lbi[i]} of {key[0]}.{key[1]}, outside the valid range "
                             f"0..{limit - 1}")
        tensor[i] = t
        if row.get("score"):
            score[i] = float(row["score"])
    side = sidecar_path(path)
    info = json.loads(side.read_text()) if side.is_file() else {}
    ranking = Ranking(str(info.get("method", path.stem)), space, tensor, lbi, score, None, info)
    ranking.check_complete()
    return ranking
