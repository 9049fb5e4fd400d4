"""The exact answer a ranking is scored against: what each single-bit fault really does.

Damage of a bit (one number per bit, integers, exact):

* criterion ``top1`` (default): the number of samples whose top-1 class (numpy argmax of the raw
  output words, first maximum) changes when that bit alone is flipped; a bit is *critical* when
  it changes the top-1 of at least one sample;
* criterion ``any``: the number of samples with any output word changed; critical = at least one.

Sources: a finished exhaustive campaign (``campaign.runner.load_results``; the C-sim engine's
numbers when the campaign ran it, else the TF engine's) or the exact TF engine run here
(``emulate.emulator.summarize_single_bit_faults``), which computes the same integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fkhls.core.errors import FkhlsError
from fkhls.rank.bitorder import BitSpace

__all__ = ["CRITERIA", "Truth", "truth_from_campaign", "truth_from_engine", "check_campaign_project"]

CRITERIA = {  # what the damage of a bit counts; a bit is critical when its damage is at least one
    "top1": "samples whose top-1 class (argmax of the raw output words) changes",
    "any": "samples with any output word changed",
}


@dataclass(frozen=True)
class Truth:
    """Per-bit exact damage in model-bit order of ``space`` (every bit of every tensor)."""

    space: BitSpace
    damage: np.ndarray  # (n_bits,) int64, criterion's count of samples
    secondary: np.ndarray  # (n_bits,) int64, tie-breaker: output words changed
    worst_lsb: np.ndarray  # (n_bits,) int64, largest output word change in LSBs
    criterion: str
    n_samples: int
    source: dict  # where it came from (campaign directory and engine, or engine + inputs hash)

    @property
    def critical(self) -> np.ndarray:
        return self.damage > 0


def _check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise FkhlsError(f"criterion {criterion!r} is not valid; valid criteria: {list(CRITERIA)}")


def check_campaign_project(campaign_dir: Path, project_dir: Path) -> dict:
    """The campaign's identity, refusing one run on another project (compared by content hash)."""
    from fkhls.campaign.runner import CAMPAIGN_JSON, project_hash

    header = Path(campaign_dir) / CAMPAIGN_JSON
    if not header.is_file():
        raise FkhlsError(f"{campaign_dir} holds no campaign ({CAMPAIGN_JSON} is missing)")
    identity = json.loads(header.read_text())
    if identity.get("project_hash") != project_hash(project_dir):
        raise FkhlsError(f"campaign {str(campaign_dir)!r} was run on a different project than {str(project_dir)!r} "
                         f"(project hashes differ); rank and score against a campaign of the same project")
    return identity


def truth_from_campaign(campaign_dir: str | Path, space: BitSpace, criterion: str = "top1") -> Truth:
    """Damage per bit from a finished exhaustive single-bit campaign that covers every bit of ``space``."""
    from fkhls.campaign.runner import load_results

    _check_criterion(criterion)
    campaign_dir = Path(campaign_dir)
    table = load_results(campaign_dir)
    if not table.single_bit:
        raise FkhlsError(f"campaign {str(campaign_dir)!r} is not a single-bit campaign; the truth needs an "
                         "exhaustive campaign (fkhls campaign --exhaustive)")
    engine = table.primary
    index = {(l, t): i for i, (l, t) in enumerate(zip(space.layers, space.tensors))}
    offsets = space.model_bit_offsets()
    cols = table.columns
    where = np.full(len(table), -1, dtype=np.int64)
    for i, (layer, tensor, lbi) in enumerate(zip(cols["layer"], cols["tensor"], cols["lbi"])):
        t = index.get((str(layer), str(tensor)))
        if t is not None:
            where[i] = offsets[t] + int(lbi)
    if np.any(where < 0):
        bad = int(np.flatnonzero(where < 0)[0])
        raise FkhlsError(f"campaign row {bad} ({cols['layer'][bad]}.{cols['tensor'][bad]}) is not a tensor of the project")
    seen = np.zeros(space.n_bits, dtype=bool)
    seen[where] = True
    if not seen.all():
        raise FkhlsError(f"campaign {str(campaign_dir)!r} covers {int(seen.sum())} of the model's {space.n_bits} bits; "
                         "the truth needs every bit (run fkhls campaign --exhaustive without --layers/--tensors/--bits)")
    damage = np.zeros(space.n_bits, dtype=np.int64)
    secondary = np.zeros(space.n_bits, dtype=np.int64)
    worst = np.zeros(space.n_bits, dtype=np.int64)
    key = "top1_changed" if criterion == "top1" else "samples_changed"
    damage[where] = cols[f"{engine}_{key}"]
    secondary[where] = cols[f"{engine}_outputs_changed"]
    worst[where] = cols[f"{engine}_max_abs_error_lsb"]
    return Truth(space, damage, secondary, worst, criterion, table.n_samples,
                 {"kind": "campaign", "campaign": str(campaign_dir.resolve()), "engine": engine})


def truth_from_engine(spec, weights, x_raw: np.ndarray, space: BitSpace, criterion: str = "top1",
                      source: dict | None = None) -> Truth:
    """Damage per bit from the exact TF engine (every bit of every tensor, ``x_raw`` input words)."""
    from fkhls.emulate.emulator import summarize_single_bit_faults
    from fkhls.faults.descriptors import exhaustive_faults

    _check_criterion(criterion)
    faults = exhaustive_faults(spec)
    if len(faults) != space.n_bits:
        raise FkhlsError(f"the model has {len(faults)} bits but the project {space.n_bits}; re-export the project")
    summary = summarize_single_bit_faults(spec, weights, x_raw.reshape(len(x_raw), *spec.input_shape), faults)
    damage = summary.argmax_changed if criterion == "top1" else summary.samples_changed
    return Truth(space, np.asarray(damage, dtype=np.int64), np.asarray(summary.outputs_changed, dtype=np.int64),
                 np.asarray(summary.max_abs_error_lsb, dtype=np.int64), criterion, int(len(x_raw)),
                 {"kind": "engine", "engine": "tf", **(source or {})})
