"""How good a ranking is, measured against the exact per-bit damage (``rank.truth``).

For a ranking of N bits (every bit once), with d the truth's damage per bit and D = sum(d):

* cumulative-damage curve: C(k) = (damage of the top-k bits) / D for k = 1..N; the oracle sorts
  by d, a random order follows k/N on average;
* ``k_critical[q]``: the fewest top bits that hold a fraction q (0.9, 0.99) of the critical bits
  (d > 0); the oracle needs ceil(q * critical);
* ``k_damage[q]``: the fewest top bits that hold a fraction q of D;
* ``precision_at[k]``: critical bits among the top k, over k (k = 100, 1000 and k = #critical);
* ``damage_at[f]``: C(k) at k = ceil(f * N) for f = 1 %, 5 %, 10 % of the bits (what protecting
  that many bits would cover);
* ``auc``: mean of C(k) over k (1 = everything in the first bit, ~0.5 random);
* Kendall's tau-b and Spearman's rho (``scipy.stats``) between the predicted order (N - position)
  and d over all bits: ties in d (most bits do nothing) are handled by tau-b and average ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fkhls.core.errors import FkhlsError
from fkhls.rank.ranking import Ranking
from fkhls.rank.truth import Truth

__all__ = ["FRACTIONS", "BUDGETS", "RankingScore", "positions", "score_order", "score_ranking", "oracle_score"]

FRACTIONS = (0.9, 0.99)
BUDGETS = (0.01, 0.05, 0.1)  # fractions of all bits


@dataclass(frozen=True)
class RankingScore:
    name: str
    method: str
    n_bits: int
    n_critical: int
    total_damage: int
    curve: np.ndarray = field(repr=False)  # (N,) C(k), k = 1..N
    critical_found: np.ndarray = field(repr=False)  # (N,) critical bits among the top k
    k_critical: dict  # fraction -> k (None when there are no critical bits)
    k_damage: dict
    precision_at: dict  # k -> precision
    damage_at: dict  # fraction of the bits -> C(ceil(fraction * N))
    auc: float
    kendall_tau: float
    spearman_rho: float

    def summary(self) -> dict:
        """JSON-ready numbers (no curves)."""
        return {"name": self.name, "method": self.method, "n_bits": self.n_bits, "n_critical": self.n_critical,
                "total_damage": self.total_damage,
                "k_critical": {f"{q:g}": k for q, k in self.k_critical.items()},
                "k_damage": {f"{q:g}": k for q, k in self.k_damage.items()},
                "precision_at": {str(k): p for k, p in self.precision_at.items()},
                "damage_at": {f"{f:g}": c for f, c in self.damage_at.items()},
                "auc": self.auc, "kendall_tau": self.kendall_tau, "spearman_rho": self.spearman_rho}


def positions(ranking: Ranking, truth: Truth) -> np.ndarray:
    """The ranking as model bits in rank order, checked to list every bit of the truth once."""
    if ranking.space != truth.space:
        raise FkhlsError(f"ranking {ranking.method!r} is over other tensors than the truth "
                         f"({ranking.space.n_bits} vs {truth.space.n_bits} bits); rank the same project")
    ranking.check_complete()
    return ranking.model_bit


def _first_reaching(cumulative: np.ndarray, target: float) -> int | None:
    """Smallest k (1-based) with cumulative[k-1] >= target."""
    if target <= 0:
        return 0
    hit = np.flatnonzero(cumulative >= target)
    return int(hit[0]) + 1 if len(hit) else None


def score_order(order: np.ndarray, truth: Truth, name: str, method: str) -> RankingScore:
    """Score model bits ``order`` (most sensitive first) against ``truth``."""
    from scipy.stats import kendalltau, spearmanr

    d = truth.damage[order]
    crit = d > 0
    n = len(order)
    total = int(truth.damage.sum())
    n_crit = int(truth.critical.sum())
    cum_damage = np.cumsum(d)
    found = np.cumsum(crit)
    curve = cum_damage / total if total else np.zeros(n)
    k_crit = {q: (_first_reaching(found, math.ceil(q * n_crit)) if n_crit else None) for q in FRACTIONS}
    k_dmg = {q: (_first_reaching(cum_damage, q * total) if total else None) for q in FRACTIONS}
    ks = sorted({k for k in (100, 1000, n_crit) if 0 < k <= n})
    precision = {k: float(found[k - 1] / k) for k in ks}
    damage_at = {f: float(curve[max(1, math.ceil(f * n)) - 1]) for f in BUDGETS} if n else {}
    predicted = np.empty(n, dtype=np.float64)
    predicted[order] = n - np.arange(n)  # higher = predicted more sensitive
    if np.all(truth.damage == truth.damage[0]):
        tau = rho = float("nan")  # no variation to correlate with
    else:
        tau = float(kendalltau(predicted, truth.damage).statistic)
        rho = float(spearmanr(predicted, truth.damage).statistic)
    return RankingScore(name, method, n, n_crit, total, curve, found, k_crit, k_dmg, precision, damage_at,
                        float(curve.mean()) if n else 0.0, tau, rho)


def score_ranking(ranking: Ranking, truth: Truth, name: str | None = None) -> RankingScore:
    return score_order(positions(ranking, truth), truth, name or ranking.method, ranking.method)


def oracle_score(truth: Truth) -> RankingScore:
    """The best possible order: decreasing damage (ties by model bit)."""
    order = np.lexsort((np.arange(truth.space.n_bits), -truth.damage))
    return score_order(order, truth, "oracle", "oracle")
