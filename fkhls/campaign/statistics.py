"""Statistics of sampled fault campaigns: sample sizes, stratified estimates with intervals, sampling bounds.

Pure functions of numbers and arrays (no files, no campaign objects), so each can be checked by hand:

* ``normal_quantile`` / ``sample_size`` -- Leveugle et al., "Statistical fault injection:
  quantified error and confidence" (DATE 2009): for a population of ``N`` faults, confidence
  ``c`` and margin ``e``, ``n = N / (1 + e^2 (N-1) / (t^2 p (1-p)))`` with ``t`` the two-sided
  normal quantile of ``c`` and ``p`` the expected rate (0.5, the worst case, unless a prior is
  known), rounded up.
* ``domain_estimate`` -- the population mean of a per-fault value over a *domain* (the whole
  model, a layer, a bit position, a heatmap cell) from a stratified sample without replacement:
  the ratio estimator weighting each row by ``N_h / n_h`` of its stratum, its linearised variance
  with the finite population correction ``1 - n_h / N_h`` per stratum (Cochran, Sampling
  Techniques, 5A.14; Lohr, Sampling, 4.3), and a two-sided interval. A domain whose every fault
  was measured is exact: interval of width zero.
* ``beta_interval`` (default) / ``wilson_interval`` -- intervals for rates in [0, 1] at the design's
  effective sample size (Kish: ``p (1-p) / variance``; Korn and Graubard 1998 for the
  Clopper-Pearson form): they stay in [0, 1] and do not collapse to a point when a sampled domain
  happens to show no effect at all (the normal interval would then claim certainty). Rare effects
  (a top-1 change) are where the normal and Wilson intervals undercover; Clopper-Pearson stays at
  or above the stated confidence there.
* ``domain_estimate_from_sums`` -- the same estimate from per-stratum counts, sums and sums of squares
  of integer numerators (values = numerator / unit): computed in exact rational arithmetic, so a
  report that accumulates those integers shard by shard gets the same numbers whatever the batches.
* ``difference_estimate`` -- a signed rate (accuracy drop) as the difference of two bounded parts.
* ``disagreement_bound`` -- what ``n`` cross-checked faults with ``k`` disagreements prove about
  the disagreement rate of the faults not checked: the one-sided Clopper-Pearson upper bound,
  ``1 - (1 - c)^(1/n)`` when ``k == 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence
from statistics import NormalDist

import numpy as np
from scipy.stats import beta
from scipy.stats import t as student_t

from fkhls.core.errors import FkhlsError

METHODS = ("beta", "wilson", "normal")
# Confidence of a BER campaign's intervals and of the --csim-sample bound when the campaign names none.
DEFAULT_CONFIDENCE = 0.99

__all__ = [
    "METHODS",
    "DEFAULT_CONFIDENCE",
    "Estimate",
    "beta_interval",
    "normal_quantile",
    "sample_size",
    "wilson_interval",
    "domain_estimate",
    "domain_estimate_from_sums",
    "difference_estimate",
    "clopper_pearson_upper",
    "disagreement_bound",
    "check_confidence",
]


def check_confidence(confidence: float, what: str = "confidence") -> float:
    """``confidence`` as a float strictly between 0 and 1, or a FkhlsError naming it."""
    if isinstance(confidence, bool) or not 0.0 < float(confidence) < 1.0:
        raise FkhlsError(f"{what} {confidence!r} is outside the valid range (0, 1) exclusive")
    return float(confidence)


def normal_quantile(confidence: float) -> float:
    """Two-sided standard-normal quantile ``t`` of ``confidence`` (0.95 -> 1.95996, 0.99 -> 2.57583)."""
    confidence = check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def sample_size(population: int, confidence: float, margin: float, prior: float = 0.5) -> int:
    """Faults to draw from a population of ``population`` for ``margin`` at ``confidence`` (Leveugle 2009)."""
    if isinstance(population, bool) or int(population) != population or population < 0:
        raise FkhlsError(f"population {population!r} must be an integer >= 0")
    check_confidence(margin, "margin")
    check_confidence(prior, "prior")
    population = int(population)
    if population == 0:
        return 0
    t = normal_quantile(confidence)
    n = population / (1.0 + margin ** 2 * (population - 1) / (t ** 2 * prior * (1.0 - prior)))
    # Round up, but not past an integer the float arithmetic missed by an ulp (e.g. 9.000000000000002).
    return min(population, max(1, math.ceil(n - 1e-9 * max(1.0, n))))


@dataclass(frozen=True)
class Estimate:
    """A population rate with its interval; ``exact`` when every fault of the domain was measured."""

    value: float
    low: float
    high: float
    measured: int  # faults of the domain that were run
    population: int | None  # faults of the domain in the population (None: unbounded, e.g. BER trials)
    exact: bool

    @property
    def half_width(self) -> float:
        return max(self.value - self.low, self.high - self.value)

    def contains(self, truth: float) -> bool:
        return self.low <= truth <= self.high

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "measured": self.measured,
                "population": self.population, "exact": self.exact}


def wilson_interval(p: float, n_eff: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a rate ``p`` in [0, 1] observed with effective sample size ``n_eff``."""
    t = normal_quantile(confidence)
    if not n_eff > 0:
        return 0.0, 1.0
    if math.isinf(n_eff):
        return p, p
    t2n = t * t / n_eff
    centre = (p + t2n / 2.0) / (1.0 + t2n)
    half = t / (1.0 + t2n) * math.sqrt(max(p * (1.0 - p), 0.0) / n_eff + t2n / (4.0 * n_eff))
    return max(0.0, centre - half), min(1.0, centre + half)


def beta_interval(p: float, n_eff: float, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson interval of a rate ``p`` at effective sample size ``n_eff`` (Korn and Graubard 1998)."""
    confidence = check_confidence(confidence)
    if not n_eff > 0:
        return 0.0, 1.0
    if math.isinf(n_eff):
        return p, p
    alpha = 1.0 - confidence
    x = p * n_eff
    low = 0.0 if x <= 0 else float(beta.ppf(alpha / 2.0, x, n_eff - x + 1.0))
    high = 1.0 if x >= n_eff else float(beta.ppf(1.0 - alpha / 2.0, x + 1.0, n_eff - x))
    return low, high


def domain_estimate(values: np.ndarray, strata: np.ndarray, populations: np.ndarray, confidence: float,
                    domain: np.ndarray | None = None, domain_population: int | None = None,
                    bounds: tuple[float, float] = (0.0, 1.0), method: str = "beta", units: int = 1) -> Estimate:
    """Mean of ``values`` over a domain of a stratified sample, with its interval at ``confidence``.

    ``values`` (rows,): the per-fault value of each measured fault; ``strata`` (rows,): the
    stratum index of each row; ``populations`` (H,): faults per stratum in the population (the
    sample size of stratum h is the number of rows with index h; ``inf`` for draws from an
    unbounded population, such as random-BER trials: no finite population correction).
    ``domain`` (rows,) bool selects the rows of the domain (default: all); ``domain_population``
    is the number of population faults in the domain (default: the whole population).
    ``method``: ``beta`` (Clopper-Pearson, Korn-Graubard) or ``wilson`` for rates in [0, 1] at
    the effective sample size, capped for ``beta`` at ``units`` elementary outcomes per row
    (1 for a yes/no per fault, the samples for a fraction of samples); ``normal`` (Student t)
    for any bounded value. Every interval is clipped to ``bounds``. A domain with no measured
    row has value NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    strata = np.asarray(strata, dtype=np.int64)
    populations = np.asarray(populations, dtype=np.float64)
    if method not in METHODS:
        raise FkhlsError(f"interval method {method!r} is not valid; valid methods: {list(METHODS)}")
    if values.shape != strata.shape:
        raise FkhlsError(f"values {values.shape} and strata {strata.shape} must have the same shape")
    domain = np.ones(values.shape, dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    total = float(populations.sum()) if domain_population is None else float(domain_population)
    sizes = np.bincount(strata, minlength=len(populations))
    if len(sizes) > len(populations) or np.any(sizes > populations):
        raise FkhlsError(f"a stratum has more measured faults than its population ({sizes.tolist()} > "
                         f"{populations.tolist()})")
    measured = int(domain.sum())
    population = int(total) if math.isfinite(total) else None  # None: unbounded
    if measured == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, population, False)
    if measured >= total:  # every fault of the domain was run: the plain mean is the truth
        value = float(values[domain].mean())
        return Estimate(value, value, value, measured, population, True)
    finite = np.isfinite(populations)
    # N_h / n_h; rows of an unbounded stratum weigh 1 (that is valid only when every stratum is unbounded).
    weight = np.where(finite, populations, 1.0)[strata] / np.where(finite, np.maximum(sizes, 1), 1)[strata]
    d = domain.astype(np.float64)
    n_hat = float((weight * d).sum())
    value = float((weight * d * values).sum() / n_hat)
    residual = d * (values - value)  # linearised ratio estimator: residuals of the domain, 0 outside
    h = len(populations)
    sum_e = np.bincount(strata, weights=residual, minlength=h)
    sum_e2 = np.bincount(strata, weights=residual * residual, minlength=h)
    n_h = sizes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = np.where(n_h > 1, (sum_e2 - sum_e * sum_e / np.maximum(n_h, 1)) / np.maximum(n_h - 1, 1), 0.0)
        fpc = np.where(finite, 1.0 - n_h / np.maximum(populations, 1), 1.0)
        w_h = np.where(finite, populations / np.maximum(n_h, 1), 1.0)
        terms = np.where(n_h > 0, w_h * w_h * n_h * fpc * np.maximum(s2, 0.0), 0.0)  # N_h^2 (1-f_h) s_h^2 / n_h
    variance = float(terms.sum()) / (n_hat * n_hat)
    return _estimate(value, variance, measured, total, population, confidence, bounds, method, units)


def domain_estimate_from_sums(counts: Sequence[int], sums: Sequence[int], squares: Sequence[int], unit: int,
                              sizes: Sequence[int], populations: Sequence[float], confidence: float,
                              domain_population: float | None = None, bounds: tuple[float, float] = (0.0, 1.0),
                              method: str = "beta", units: int = 1) -> Estimate:
    """``domain_estimate`` from integer sufficient statistics, per stratum h: ``counts[h]`` rows of the domain,
    ``sums[h]`` and ``squares[h]`` the sum of their numerators and of their squares (each row's value is
    numerator / ``unit``), ``sizes[h]`` the stratum's rows in the whole sample, ``populations[h]`` its
    population (``inf``: unbounded). The estimator, its variance and its interval are those of
    ``domain_estimate``; the sums are exact rationals, so the result does not depend on how the rows were
    grouped or ordered when the integers were added up."""
    if method not in METHODS:
        raise FkhlsError(f"interval method {method!r} is not valid; valid methods: {list(METHODS)}")
    populations = [float(p) for p in populations]
    total = float(sum(populations)) if domain_population is None else float(domain_population)
    measured = int(sum(counts))
    population = int(total) if math.isfinite(total) else None
    if measured == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, population, False)
    unit = Fraction(int(unit))
    if measured >= total:
        value = float(Fraction(int(sum(sums))) / (unit * measured))
        return Estimate(value, value, value, measured, population, True)
    strata = [h for h, c in enumerate(counts) if c]
    weight = {h: (Fraction(int(populations[h])) / int(sizes[h]) if math.isfinite(populations[h]) else Fraction(1))
              for h in strata}  # N_h / n_h (1 for an unbounded stratum)
    n_hat = sum(weight[h] * int(counts[h]) for h in strata)
    value = sum(weight[h] * int(sums[h]) for h in strata) / unit / n_hat
    variance = Fraction(0)
    for h in strata:
        n_h = int(sizes[h])
        if n_h <= 1:
            continue
        c, s1, s2 = int(counts[h]), Fraction(int(sums[h])) / unit, Fraction(int(squares[h])) / (unit * unit)
        sum_e = s1 - value * c  # residuals of the domain's rows (0 outside it), as in ``domain_estimate``
        sum_e2 = s2 - 2 * value * s1 + value * value * c
        s2_h = max((sum_e2 - sum_e * sum_e / n_h) / (n_h - 1), Fraction(0))
        if math.isfinite(populations[h]):
            fpc = 1 - Fraction(n_h) / int(populations[h])
            variance += weight[h] * weight[h] * n_h * fpc * s2_h
        else:
            variance += n_h * s2_h
    variance /= n_hat * n_hat
    return _estimate(float(value), float(variance), measured, total, population, confidence, bounds, method, units)


def _estimate(value: float, variance: float, measured: int, total: float, population: int | None, confidence: float,
              bounds: tuple[float, float], method: str, units: int) -> Estimate:
    """The interval of a sampled domain's ``value`` with ``variance`` (the tail of ``domain_estimate``)."""
    if method in ("wilson", "beta"):
        lo_b, hi_b = bounds
        p = min(max((value - lo_b) / (hi_b - lo_b), 0.0), 1.0)
        # The simple-random-sample size of the domain, corrected for the fraction of its population measured:
        # used when the sample shows no spread, and (beta) as the cap Korn and Graubard put on n_eff.
        n_srs = measured / (1.0 - measured / total)
        n_eff = p * (1.0 - p) / (variance / (hi_b - lo_b) ** 2) if variance > 0 else 0.0
        if n_eff <= 0:
            n_eff = n_srs
        elif measured > 1:
            # Korn and Graubard's degrees-of-freedom correction: the variance of a domain with few measured
            # faults is itself uncertain (t with measured-1 df instead of the normal quantile).
            n_eff *= (normal_quantile(confidence) / _t_quantile(confidence, measured - 1)) ** 2
        if method == "beta":
            n_eff = min(n_eff, n_srs * units)
        low, high = (wilson_interval if method == "wilson" else beta_interval)(p, n_eff, confidence)
        low, high = lo_b + low * (hi_b - lo_b), lo_b + high * (hi_b - lo_b)
        return Estimate(value, min(low, value), max(high, value), measured, population, False)
    half = _t_quantile(confidence, max(measured - 1, 1)) * math.sqrt(variance)
    return Estimate(value, max(bounds[0], value - half), min(bounds[1], value + half), measured, population, False)


def _t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student-t quantile of ``confidence`` with ``df`` degrees of freedom."""
    return float(student_t.ppf(0.5 + confidence / 2.0, df))


def difference_estimate(positive: Estimate, negative: Estimate, envelope: float = math.inf) -> Estimate:
    """``positive - negative`` of two estimates, inside ``[-envelope, envelope]``.

    A signed per-fault value (an accuracy drop can be negative) is split into its positive and
    negative parts, each a rate in [0, 1] that ``domain_estimate`` bounds well even when rare. The
    difference interval fails only if a bound it uses does (Bonferroni): with both parts at
    ``1 - a/4`` and an envelope (a bound on ``|value|``) at ``1 - a/2``, it holds at ``1 - a``.
    """
    value = positive.value - negative.value
    if positive.exact and negative.exact:
        return Estimate(value, value, value, positive.measured, positive.population, True)
    low = max(positive.low - negative.high, -envelope)
    high = min(positive.high - negative.low, envelope)
    return Estimate(value, min(low, value), max(high, value), positive.measured, positive.population, False)


def clopper_pearson_upper(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound on a rate after ``k`` events in ``n`` trials."""
    confidence = check_confidence(confidence)
    if n < 1 or not 0 <= k <= n:
        raise FkhlsError(f"events {k} of {n} trials: need n >= 1 and 0 <= k <= n")
    if k == n:
        return 1.0
    if k == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / n)  # the closed form of the beta quantile below
    return float(beta.ppf(confidence, k + 1, n - k))


def disagreement_bound(k: int, n: int, confidence: float) -> float:
    """Upper bound, at ``confidence``, on the rate of faults where two engines disagree, from ``k`` of ``n`` checked.

    Binomial (sampling with replacement), so conservative for a draw without replacement from a
    finite list; with ``k == 0`` it is ``1 - (1 - c)^(1/n)``, about ``-ln(1 - c) / n`` (4.6/n at 99%).
    """
    return clopper_pearson_upper(k, n, confidence)
