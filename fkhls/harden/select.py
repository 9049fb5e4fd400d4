"""Which weight words to protect: a bit ranking walked at word granularity, since hardware protects words.

A word is one element of an hls4ml weight array (one Keras weight); protecting it protects all
its bits, so its damage is the sum over its bits. Words are ordered by the first rank any of
their bits holds; the selection is the first ``budget`` words, or the shortest prefix whose
damage reaches ``coverage`` of the total (damage = the ranking's scores, or, given a truth,
the exhaustive campaign's exact per-bit damage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fkhls.core.errors import FkhlsError
from fkhls.faults.addressing import element_of
from fkhls.project.manifest import Manifest
from fkhls.rank.ranking import Ranking
from fkhls.rank.truth import CRITERIA, Truth

__all__ = ["Word", "WordSelection", "word_order", "select_words", "covered"]


@dataclass(frozen=True)
class Word:
    """One protected weight word, in hardware and Keras coordinates, with the rank that chose it."""

    array: str
    element: int
    layer: str
    tensor: str
    flat_index: int
    keras_index: tuple[int, ...]
    width: int  # bits of the hardware word
    rank: int  # first row of the ranking holding one of its bits (0 = most sensitive)
    word_rank: int  # position among the ranking's words


@dataclass(frozen=True)
class WordSelection:
    """The protected words and what they cover (cumulative curves over the ranking's word order)."""

    words: tuple[Word, ...]
    rule: str  # "budget" | "coverage"
    target: float  # the budget in words, or the coverage asked for
    coverage_source: str  # "ranking" | "truth": what --coverage was measured on
    n_words: int  # words of the model
    ranking_curve: np.ndarray  # (n_words,) fraction of the ranking's total score covered by the top k words
    truth_curve: np.ndarray | None  # same for the exact damage, when a truth is given
    oracle_truth_curve: np.ndarray | None  # the best any word choice reaches with k words (words by exact damage)
    ranking_method: str
    truth_info: dict | None


def _param_ids(ranking: Ranking) -> np.ndarray:
    """Parameter (word) id of every ranked bit: tensor offset + flat index (FKeras lbi // width)."""
    space = ranking.space
    offsets = np.concatenate([[0], np.cumsum(space.sizes)[:-1]]).astype(np.int64)
    widths = np.asarray(space.widths, dtype=np.int64)
    return offsets[ranking.tensor] + ranking.lbi // widths[ranking.tensor]


def word_order(ranking: Ranking) -> tuple[np.ndarray, np.ndarray]:
    """(parameter ids in ranking order of their first bit, that first rank)."""
    ids = _param_ids(ranking)
    unique, first = np.unique(ids, return_index=True)
    order = np.argsort(first, kind="stable")
    return unique[order], first[order]


def _curve(per_word: np.ndarray, order: np.ndarray, what: str) -> np.ndarray:
    total = float(per_word.sum())
    if total <= 0:
        raise FkhlsError(f"the {what} damage sums to {total}: nothing to cover; use --budget")
    return np.cumsum(per_word[order]) / total


def _ranking_damage(ranking: Ranking, n_params: int) -> np.ndarray | None:
    """Per-word sum of the ranking's scores; None when the scores are no damage (NaN, negative or all 0)."""
    score = np.asarray(ranking.score, dtype=np.float64)
    if not np.all(np.isfinite(score)) or np.any(score < 0) or score.sum() <= 0:
        return None
    return np.bincount(_param_ids(ranking), weights=score, minlength=n_params)


def _truth_damage(truth: Truth, n_params: int) -> np.ndarray:
    space = truth.space
    param_of_bit = np.repeat(np.arange(n_params), np.repeat(np.asarray(space.widths), space.sizes))
    return np.bincount(param_of_bit, weights=truth.damage.astype(np.float64), minlength=n_params)


def _first_reaching(curve: np.ndarray, target: float) -> int:
    # a float sum can land a hair under the exact fraction; 1e-12 is far below one bit's share
    hit = np.flatnonzero(curve >= target - 1e-12)
    return int(hit[0]) + 1 if len(hit) else len(curve)


def select_words(manifest: Manifest, ranking: Ranking, *, budget: int | None = None, coverage: float | None = None,
                 truth: Truth | None = None) -> WordSelection:
    """Walk ``ranking`` word by word; stop at ``budget`` words or at ``coverage`` of the damage."""
    if (budget is None) == (coverage is None):
        raise FkhlsError("give exactly one of budget (words) and coverage (fraction of the damage)")
    space = ranking.space
    ranking.check_complete()
    if truth is not None and truth.space != space:
        raise FkhlsError("the truth campaign covers other tensors than the ranking; use a campaign of the same project")
    n_params = space.n_params
    order, first = word_order(ranking)
    scored = _ranking_damage(ranking, n_params)
    ranking_curve = None if scored is None else _curve(scored, order, "ranking")
    truth_curve = oracle = None
    if truth is not None:
        exact = _truth_damage(truth, n_params)
        truth_curve = _curve(exact, order, "truth")
        oracle = np.cumsum(np.sort(exact)[::-1]) / exact.sum()
    if budget is not None:
        if isinstance(budget, bool) or not 1 <= int(budget) <= n_params:
            raise FkhlsError(f"budget {budget} words is outside the valid range 1..{n_params} (the model's words)")
        k, source, target = int(budget), "ranking" if truth is None else "truth", float(budget)
    else:
        if not 0 < float(coverage) <= 1:
            raise FkhlsError(f"coverage {coverage} is outside the valid range (0, 1]")
        if truth_curve is not None:
            curve, source = truth_curve, "truth"
        else:
            if ranking_curve is None:
                raise FkhlsError(f"ranking {ranking.method!r} has scores that are not finite, >= 0 and of positive "
                                 "sum, so they are no damage to cover; pass --truth CAMPAIGN_DIR (exact damage) or "
                                 "--budget")
            curve, source = ranking_curve, "ranking"
        k, target = _first_reaching(curve, float(coverage)), float(coverage)
    offsets = np.concatenate([[0], np.cumsum(space.sizes)[:-1]]).astype(np.int64)
    tensor_of = np.searchsorted(offsets, order[:k], side="right") - 1
    words = []
    for position, (pid, t, rank) in enumerate(zip(order[:k].tolist(), tensor_of.tolist(), first[:k].tolist())):
        layer, tensor = space.layers[t], space.tensors[t]
        # The array named (owner, tensor): a separable conv's arrays sit in two hls4ml layers of one Keras layer.
        record = next((a for step in manifest.weighted_layers for a in step.arrays()
                       if step.owner(a) == layer and a.tensor == tensor), None)
        if record is None:
            raise FkhlsError(f"{layer}.{tensor} has no hls4ml weight array to protect")
        flat = pid - int(offsets[t])
        words.append(Word(array=record.array, element=element_of(record, flat), layer=layer, tensor=tensor,
                          flat_index=flat,
                          keras_index=tuple(int(i) for i in np.unravel_index(flat, record.keras_shape)),
                          width=record.ptype.width, rank=int(rank), word_rank=position))
    return WordSelection(words=tuple(words), rule="budget" if budget is not None else "coverage", target=target,
                         coverage_source=source, n_words=n_params,
                         ranking_curve=ranking_curve if ranking_curve is not None else np.full(n_params, np.nan),
                         truth_curve=truth_curve, oracle_truth_curve=oracle, ranking_method=ranking.method,
                         truth_info=dict(truth.source, criterion=truth.criterion, damage=CRITERIA[truth.criterion])
                         if truth is not None else None)


def covered(curve: np.ndarray | None, k: int) -> float | None:
    """Fraction of the damage the first ``k`` words hold (None without that curve)."""
    if curve is None or (k and math.isnan(float(curve[k - 1]))):
        return None
    return float(curve[k - 1]) if k else 0.0
