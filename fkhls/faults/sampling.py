"""Stratified random draws of single-bit faults, for statistical fault injection.

The population is an ordered fault list (``descriptors.exhaustive_faults``: model-bit order).
``strata_of`` cuts it into strata -- the whole model, each layer tensor, each bit position, or
each (layer tensor, bit position) cell -- in first-seen order; ``stratified_draw`` picks
``sizes[h]`` distinct faults of stratum ``h`` with ``numpy.random.default_rng([seed, h])``, so a
stratum's draw depends only on the seed, its index and its size, and the result is sorted back
into population order (the campaign's shards stay in model-bit order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fkhls.core.errors import FaultSpecError
from fkhls.faults.descriptors import BitFault

__all__ = ["PER", "Stratum", "stratum_key", "strata_of", "stratified_draw"]

# How a population is stratified: one stratum, per layer tensor, per bit position (from the LSB), or both.
PER = ("model", "layer", "bit", "layer-bit")


@dataclass(frozen=True)
class Stratum:
    """One stratum: its key (see ``stratum_key``), a readable label and its number of faults."""

    key: tuple
    label: str
    population: int


def stratum_key(fault: BitFault, per: str) -> tuple:
    """``()`` | ``(layer, tensor)`` | ``(bit,)`` | ``(layer, tensor, bit)`` of ``fault`` for ``per``."""
    if per == "model":
        return ()
    if per == "layer":
        return (fault.layer, fault.tensor)
    if per == "bit":
        return (fault.bit,)
    if per == "layer-bit":
        return (fault.layer, fault.tensor, fault.bit)
    raise FaultSpecError(f"stratification {per!r} is not valid; valid values: {list(PER)}")


def _label(key: tuple) -> str:
    if not key:
        return "model"
    if len(key) == 1:
        return f"b{key[0]}"
    return f"{key[0]} {key[1]}" + (f" b{key[2]}" if len(key) == 3 else "")


def strata_of(faults: Sequence[BitFault], per: str) -> tuple[tuple[Stratum, ...], np.ndarray]:
    """The strata of ``faults`` (first-seen order) and each fault's stratum index."""
    if per not in PER:
        raise FaultSpecError(f"stratification {per!r} is not valid; valid values: {list(PER)}")
    index: dict[tuple, int] = {}
    owner = np.empty(len(faults), dtype=np.int64)
    for i, fault in enumerate(faults):
        owner[i] = index.setdefault(stratum_key(fault, per), len(index))
    counts = np.bincount(owner, minlength=len(index))
    strata = tuple(Stratum(key, _label(key), int(counts[h])) for key, h in index.items())
    return strata, owner


def stratified_draw(owner: np.ndarray, sizes: Sequence[int], seed: int) -> np.ndarray:
    """Sorted population indices: ``sizes[h]`` distinct faults of each stratum ``h`` (``owner`` as from ``strata_of``)."""
    owner = np.asarray(owner, dtype=np.int64)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise FaultSpecError(f"seed {seed!r} must be an integer >= 0")
    counts = np.bincount(owner, minlength=len(sizes))
    if len(counts) != len(sizes):
        raise FaultSpecError(f"{len(sizes)} sample sizes given for {len(counts)} strata")
    order = np.argsort(owner, kind="stable")  # population indices grouped by stratum, in population order
    starts = np.concatenate([[0], np.cumsum(counts)])
    picked = []
    for h, size in enumerate(sizes):
        if not 0 <= int(size) <= counts[h]:
            raise FaultSpecError(f"sample size {size} of stratum {h} is outside the valid range 0..{counts[h]}")
        members = order[starts[h]:starts[h + 1]]
        rng = np.random.default_rng([int(seed), h])
        picked.append(members[rng.choice(len(members), size=int(size), replace=False)])
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)
