"""Campaign reports: ``summary.json``, ``report.md``, ``heatmap.png``, ``histograms.png``.

Small pieces rather than one monolith, each reachable from Python (``fkhls.api``) as well:

* ``FaultTable`` -- one row per fault scenario (where it is, what it did), column arrays (``.to_pandas()``);
* ``sensitivity`` -- layer/tensor x bit-position table of a metric (single-bit scenarios);
* ``worst_faults``, ``agreement`` -- the rows and the engine-agreement numbers a report lists;
* ``domain_estimates`` / ``statistics_summary`` -- population rates and vulnerability factors (whole
  model, per layer tensor, per bit position, per heatmap cell) with confidence intervals, from a
  single-bit campaign's sample design (``fkhls.campaign.statistics``; exact for an exhaustive one);
* ``csim_sample_bound`` -- what a ``--csim-sample`` cross-check proves about the faults not checked;
* ``build_summary`` / ``write_summary`` -- the JSON summary (numpy values converted);
* ``render_markdown`` -- the Markdown report (tables by tabulate, GitHub format);
* ``heatmap_figure`` / ``histograms_figure`` -- matplotlib Figures (no pyplot, so a notebook's backend is
  left alone); ``plot_heatmap`` / ``plot_histograms`` save them as PNGs;
* ``write_report`` -- all of the above into one directory.

This module imports nothing above it (no campaign, no compare): it only reads tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import jinja2
import numpy as np
from tabulate import tabulate

from fkhls.core.files import atomic_write_text

__all__ = [
    "FaultTable",
    "Sensitivity",
    "METRICS",
    "sensitivity",
    "worst_faults",
    "agreement",
    "build_summary",
    "write_summary",
    "render_markdown",
    "plot_heatmap",
    "heatmap_figure",
    "plot_histograms",
    "write_report",
    "to_jsonable",
    "RATES",
    "VULNERABILITY",
    "rate_values",
    "domain_estimates",
    "statistics_summary",
    "sensitivity_intervals",
    "csim_sample_bound",
    "reported_confidence",
]

# Metric columns per engine (prefix "<engine>_"): see FaultTable.
ENGINE_COLUMNS = ("outputs_changed", "samples_changed", "max_abs_error_lsb", "max_abs_error", "top1_changed",
                  "accuracy_drop")
AGREEMENT_COLUMNS = ("mismatched_words", "max_lsb_diff", "first_mismatch_sample")
META_COLUMNS = ("scenario", "name", "n_bits", "layer", "tensor", "lbi", "bit", "flat_index", "model_bit", "array",
                "element", "array_bit")

# Heatmap / sensitivity metrics: name -> (title, function of the table giving a per-row rate).
METRICS = {
    "outputs_changed_fraction": "mean fraction of output words changed",
    "top1_change_rate": "mean fraction of samples whose top-1 class changed",
}


@dataclass(frozen=True)
class FaultTable:
    """One row per fault scenario, as equal-length column arrays.

    Meta columns: ``scenario`` (index in the campaign's ordered list), ``name``, ``n_bits``,
    ``layer``, ``tensor``, ``lbi``, ``bit`` (from the LSB), ``flat_index``, ``model_bit``,
    ``array``, ``element``, ``array_bit`` (single-bit scenarios; -1 / "" for multi-bit ones).
    Per engine ``e`` in ``engines``: ``e_outputs_changed`` (output words != golden, all samples),
    ``e_samples_changed``, ``e_max_abs_error_lsb`` (largest |faulty - golden| word difference),
    ``e_max_abs_error`` (the same in output units), ``e_top1_changed`` (samples whose argmax
    moved) and, with labels, ``e_accuracy_drop`` (golden accuracy - faulty accuracy).
    With two engines: ``mismatched_words`` (output words where they differ; 0 = bit-exact),
    ``max_lsb_diff``, ``first_mismatch_sample`` (-1 when none).
    """

    columns: Mapping[str, np.ndarray]
    engines: tuple[str, ...]
    n_samples: int
    n_outputs: int
    output_lsb: float  # value of one LSB of the output type
    has_labels: bool = False
    notes: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["scenario"])

    @property
    def primary(self) -> str:
        """The engine a report's sensitivity numbers come from: the hardware (C-sim) when it ran every fault."""
        return "csim" if "csim" in self.engines and not self.csim_sampled else self.engines[0]

    @property
    def csim_sampled(self) -> bool:
        """``--csim-sample``: the C-sim engine ran only the rows where ``csim_checked`` is true."""
        return "csim_checked" in self.columns

    def ran(self, engine: str) -> np.ndarray:
        """Rows ``engine`` ran (all, except the C-sim engine's unsampled rows under ``--csim-sample``)."""
        if engine == "csim" and self.csim_sampled:
            return np.asarray(self.columns["csim_checked"], dtype=bool)
        return np.ones(len(self), dtype=bool)

    @property
    def both(self) -> bool:
        return "mismatched_words" in self.columns

    @property
    def single_bit(self) -> bool:
        return bool(len(self)) and bool(np.all(self.columns["n_bits"] == 1))

    def metric(self, name: str, engine: str | None = None) -> np.ndarray:
        """A per-row column of ``engine`` (default the primary one), or a derived rate from ``METRICS``."""
        engine = engine or self.primary
        if name == "outputs_changed_fraction":
            return self.columns[f"{engine}_outputs_changed"] / float(self.n_samples * self.n_outputs)
        if name == "top1_change_rate":
            return self.columns[f"{engine}_top1_changed"] / float(self.n_samples)
        return self.columns[f"{engine}_{name}"]

    def row(self, index: int) -> dict:
        return {key: to_jsonable(value[index]) for key, value in self.columns.items()}

    def to_pandas(self):
        """Every row as a pandas DataFrame (one column per entry of ``columns``), for notebooks."""
        import pandas as pd

        return pd.DataFrame({name: np.asarray(values) for name, values in self.columns.items()})

    def to_csv(self, path: str | Path) -> None:
        """Every row as CSV (header = column names), written atomically."""
        names = list(self.columns)
        lines = [",".join(names)]
        text_cols = [np.asarray(self.columns[n]).astype(str) for n in names]
        for i in range(len(self)):
            lines.append(",".join(_csv_cell(col[i]) for col in text_cols))
        atomic_write_text(path, "\n".join(lines) + "\n")


def _csv_cell(text: str) -> str:
    return f'"{text}"' if ("," in text or '"' in text) and not text.startswith('"') else text


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays, tuples and Paths -> plain JSON values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Sensitivity:
    """A metric averaged per (layer tensor) row and bit position; NaN where the tensor has no such bit."""

    rows: tuple[str, ...]  # "fc1 kernel", "fc1 bias", ...
    bits: tuple[int, ...]  # from the MSB of the widest word down to 0 (LSB)
    values: np.ndarray  # (rows, bits) float, NaN = no fault there
    counts: np.ndarray  # (rows, bits) faults averaged
    metric: str
    widths: tuple[int, ...]  # word width per row (its MSB is bit width-1)


def sensitivity(table: FaultTable, metric: str = "outputs_changed_fraction", engine: str | None = None) -> Sensitivity:
    """Mean of ``metric`` per layer/tensor and bit position, over the single-bit rows of ``table``."""
    cols = table.columns
    single = np.asarray(cols["n_bits"]) == 1
    values = np.asarray(table.metric(metric, engine), dtype=np.float64)[single]
    layers, tensors = np.asarray(cols["layer"])[single], np.asarray(cols["tensor"])[single]
    bits = np.asarray(cols["bit"])[single]
    keys = list(dict.fromkeys(zip(layers.tolist(), tensors.tolist())))  # campaign (model) order
    widths = []
    for layer, tensor in keys:
        mask = (layers == layer) & (tensors == tensor)
        widths.append(int(np.asarray(table.notes.get("widths", {}).get(f"{layer} {tensor}", bits[mask].max() + 1))))
    top = max(widths, default=0)
    bit_axis = tuple(range(top - 1, -1, -1))
    out = np.full((len(keys), top), np.nan)
    counts = np.zeros((len(keys), top), dtype=np.int64)
    for r, (layer, tensor) in enumerate(keys):
        mask = (layers == layer) & (tensors == tensor)
        col = top - 1 - bits[mask]
        counts[r] = np.bincount(col, minlength=top)
        sums = np.bincount(col, weights=values[mask], minlength=top)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r] = np.where(counts[r] > 0, sums / np.maximum(counts[r], 1), np.nan)
    return Sensitivity(tuple(f"{layer} {tensor}" for layer, tensor in keys), bit_axis, out, counts, metric,
                       tuple(widths))


def _order_worst(table: FaultTable, engine: str | None = None) -> np.ndarray:
    """Row order, worst first: top-1 changes, then output words changed, then max error (stable)."""
    keys = [table.metric("max_abs_error_lsb", engine), table.metric("outputs_changed", engine),
            table.metric("top1_changed", engine)]
    return np.lexsort([-np.asarray(k, dtype=np.float64) for k in keys])


def worst_faults(table: FaultTable, k: int = 20, engine: str | None = None) -> list[dict]:
    """The ``k`` most harmful scenarios (see ``_order_worst``) as dicts of their columns."""
    return [table.row(int(i)) for i in _order_worst(table, engine)[:k]]


def agreement(table: FaultTable, limit: int = 1000) -> dict:
    """Engine agreement: words compared, bit-exact words and scenarios, the largest LSB difference, mismatches."""
    if not table.both:
        return {}
    cols = table.columns
    checked = table.ran("csim")
    mismatched = np.where(checked, np.asarray(cols["mismatched_words"]), 0)
    bad = np.nonzero(mismatched)[0]
    n_checked = int(checked.sum())
    compared = n_checked * table.n_samples * table.n_outputs
    sampled = {}
    if table.csim_sampled:
        sampled = {"csim_sample": csim_sample_bound(table)}
    return {
        **sampled,
        "outputs_compared": compared,
        "bit_exact": compared - int(mismatched.sum()),
        "scenarios_bit_exact": n_checked - len(bad),
        "scenarios_mismatching": len(bad),
        "max_lsb_diff": int(np.max(np.where(checked, cols["max_lsb_diff"], 0), initial=0)),
        "mismatching_scenarios": [
            {key: to_jsonable(cols[key][i]) for key in ("scenario", "name", "layer", "tensor", "lbi", "bit", "array",
                                                        "element", "array_bit", *AGREEMENT_COLUMNS)}
            for i in bad[:limit]
        ],
        "mismatching_scenarios_listed": min(len(bad), limit),
    }


def _totals(table: FaultTable, engine: str) -> dict:
    """Counts and plain means over the faults ``engine`` ran (population estimates: ``rate_estimates``)."""
    ran = table.ran(engine)
    n = int(ran.sum())

    def col(name: str) -> np.ndarray:
        return np.asarray(table.metric(name, engine))[ran]

    out = {
        "faults_run": n,
        "faults_changing_outputs": int(np.count_nonzero(col("outputs_changed"))),
        "faults_changing_top1": int(np.count_nonzero(col("top1_changed"))),
        "mean_outputs_changed_fraction": float(np.mean(col("outputs_changed_fraction"))) if n else 0.0,
        "mean_top1_change_rate": float(np.mean(col("top1_change_rate"))) if n else 0.0,
        "max_abs_error_lsb": int(np.max(col("max_abs_error_lsb"), initial=0)),
    }
    if table.has_labels and n:
        drop = np.asarray(col("accuracy_drop"), dtype=np.float64)
        out.update(mean_accuracy_drop=float(drop.mean()), max_accuracy_drop=float(drop.max()))
    return out


# ----------------------------------------------------------------------------- population estimates

# Rates estimated for the population of a single-bit campaign: name -> (what it is, per-row value, bounds, interval).
RATES = {
    "faults_changing_outputs": "fraction of faults that change any output word of any sample",
    "faults_changing_top1": "fraction of faults that change the top-1 class of at least one sample",
    "outputs_changed_fraction": "mean fraction of output words a fault changes",
    "output_vulnerability": "probability that a flip changes any output word of a sample",
    "top1_vulnerability": "probability that a flip changes the top-1 class of a sample",
    "accuracy_drop": "mean accuracy drop per fault (golden - faulty, with labels)",
}
RATE_METHOD = "beta"
# The two vulnerability factors reported per layer tensor, per bit position and per heatmap cell.
VULNERABILITY = ("top1_vulnerability", "output_vulnerability")


@dataclass(frozen=True)
class RateValues:
    """Per-row values of a rate, their bounds, the interval method and the elementary units per fault."""

    values: np.ndarray
    bounds: tuple[float, float]
    method: str
    units: int  # 1 for a per-fault yes/no; samples (x outputs) for a fraction of them


def rate_values(table: FaultTable, rate: str, engine: str | None = None) -> RateValues:
    """Per-row value of ``rate`` (see ``RATES``) with what ``statistics.domain_estimate`` needs to bound it."""
    engine = engine or table.primary
    n, words = table.n_samples, table.n_samples * table.n_outputs
    if rate == "faults_changing_outputs":
        values, units = np.asarray(table.metric("outputs_changed", engine)) > 0, 1
    elif rate == "faults_changing_top1":
        values, units = np.asarray(table.metric("top1_changed", engine)) > 0, 1
    elif rate == "outputs_changed_fraction":
        values, units = table.metric("outputs_changed_fraction", engine), words
    elif rate == "output_vulnerability":
        values, units = np.asarray(table.metric("samples_changed", engine)) / float(n), n
    elif rate == "top1_vulnerability":
        values, units = table.metric("top1_change_rate", engine), n
    elif rate in ("accuracy_drop+", "accuracy_drop-"):  # the two parts ``domain_estimates`` bounds separately
        drop = np.asarray(table.metric("accuracy_drop", engine), dtype=np.float64)
        values, units = np.maximum(drop if rate.endswith("+") else -drop, 0.0), n
    else:
        raise KeyError(rate)
    return RateValues(np.asarray(values, dtype=np.float64), (0.0, 1.0), RATE_METHOD, units)


def _design(table: FaultTable) -> Mapping[str, Any] | None:
    """The sample design of a single-bit campaign (``runner.SampleDesign.notes``), or None."""
    design = table.notes.get("design")
    if design is None or "stratum" not in table.columns:
        return None
    return design if table.single_bit or design["mode"] == "ber" else None


def _cell_population(design: Mapping[str, Any]) -> dict[tuple[str, int], int]:
    return {(row, int(bit)): int(n) for row, bits in design["cell_population"].items() for bit, n in bits.items()}


def _confidence(design: Mapping[str, Any]) -> float:
    # An exhaustive design has no confidence: every domain is measured whole and its interval has width zero.
    from fkhls.campaign.statistics import DEFAULT_CONFIDENCE

    return float(design.get("confidence") or DEFAULT_CONFIDENCE)


def domain_estimates(table: FaultTable, rate: str, by: str, engine: str | None = None,
                     confidence: float | None = None) -> list[tuple[Any, Any]]:
    """``[(domain, statistics.Estimate)]`` of ``rate`` over the whole model (``by='model'``), each layer
    tensor (``'layer'``), bit position (``'bit'``), (layer tensor, bit) cell (``'cell'``) or stratum."""
    from fkhls.campaign.statistics import difference_estimate, domain_estimate

    design = _design(table)
    if design is None:
        return []
    alpha = 1.0 - (confidence or _confidence(design))
    if rate == "accuracy_drop":
        # Signed: losses and gains bounded apart (alpha/4 each), then kept inside +-(top-1 vulnerability)
        # (alpha/2), since a sample's correctness changes only when its top-1 class does.
        pos, neg = (domain_estimates(table, f"accuracy_drop{sign}", by, engine, 1.0 - alpha / 4) for sign in "+-")
        top1 = domain_estimates(table, "top1_vulnerability", by, engine, 1.0 - alpha / 2)
        return [(name, difference_estimate(p, q, t.high)) for (name, p), (_, q), (_, t) in zip(pos, neg, top1)]
    rv = rate_values(table, rate, engine)
    strata = np.asarray(table.columns["stratum"])
    populations = np.array([math.inf if st["population"] is None else st["population"] for st in design["strata"]],
                           dtype=np.float64)
    cells = _cell_population(design)
    names = list(design["cell_population"])
    rows = _row_codes(table, names)  # index into ``names`` per row: integer masks, not string compares
    bits = np.asarray(table.columns["bit"])
    if by == "model":
        domains = [("model", None, float(populations.sum()))]
    elif by == "stratum":
        domains = [(st["label"], strata == h, populations[h]) for h, st in enumerate(design["strata"])]
    elif by == "layer":
        domains = [(name, rows == i, sum(n for (r, _), n in cells.items() if r == name)) for i, name in enumerate(names)]
    elif by == "bit":
        positions = sorted({b for _, b in cells}, reverse=True)
        domains = [(b, bits == b, sum(n for (_, cb), n in cells.items() if cb == b)) for b in positions]
    elif by == "cell":
        domains = [(key, (rows == names.index(key[0])) & (bits == key[1]), n) for key, n in cells.items()]
    else:
        raise KeyError(by)
    confidence = 1.0 - alpha
    return [(name, domain_estimate(rv.values, strata, populations, confidence, mask, n, rv.bounds, rv.method,
                                   rv.units)) for name, mask, n in domains]


def _row_codes(table: FaultTable, names: list[str]) -> np.ndarray:
    """Per row, the index in ``names`` of its "layer tensor" (-1 if absent)."""
    layer_names, layer_code = np.unique(np.asarray(table.columns["layer"]).astype(str), return_inverse=True)
    tensor_names, tensor_code = np.unique(np.asarray(table.columns["tensor"]).astype(str), return_inverse=True)
    lookup = np.array([[names.index(f"{a} {b}") if f"{a} {b}" in names else -1 for b in tensor_names]
                       for a in layer_names], dtype=np.int64).reshape(len(layer_names), len(tensor_names))
    return lookup[layer_code, tensor_code]


def statistics_summary(table: FaultTable) -> dict:
    """The ``statistics`` part of summary.json: design, population rates with intervals, vulnerability factors."""
    design = _design(table)
    if design is None:
        return {}
    engines = [e for e in table.engines if table.ran(e).all()]
    rates = [r for r in RATES if r != "accuracy_drop" or table.has_labels]
    primary = table.primary
    exact = design["mode"] == "exhaustive"
    out = {
        "design": {k: v for k, v in design.items() if k != "cell_population"},
        "confidence": None if exact else design["confidence"],
        "intervals": "exact (every fault run): width zero" if exact else
        "two-sided; stratified ratio estimator weighting each stratum by its population, variance with the finite "
        "population correction; rates in [0, 1]: Clopper-Pearson interval at the design's effective sample size "
        "(Korn-Graubard); accuracy drop (signed): its loss and gain parts bounded apart (each at 1-(1-c)/4) and "
        "subtracted, inside +-(top-1 vulnerability bound at 1-(1-c)/2) (Bonferroni, conservative)",
        "rates": {e: {r: domain_estimates(table, r, "model", e)[0][1].as_dict() for r in rates} for e in engines},
        "engine": primary,
        "vulnerability": {},
    }
    for by in ("layer", "bit", "stratum") if table.single_bit else ():  # a BER trial has no one layer or bit
        per = {r: domain_estimates(table, r, by, primary) for r in VULNERABILITY}
        out["vulnerability"][f"per_{by}"] = [
            {by: name, **{r: dict(per[r][i][1].as_dict()) for r in VULNERABILITY}}
            for i, (name, _) in enumerate(per[VULNERABILITY[0]])]
    return to_jsonable(out)


def sensitivity_intervals(table: FaultTable, sens: Sensitivity, engine: str | None = None
                          ) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) arrays shaped like ``sens.values``: the interval of each heatmap cell (None without a design)."""
    rate = {"outputs_changed_fraction": "outputs_changed_fraction", "top1_change_rate": "top1_vulnerability"}
    if _design(table) is None or sens.metric not in rate:
        return None
    low, high = np.full(sens.values.shape, np.nan), np.full(sens.values.shape, np.nan)
    for (row, bit), est in domain_estimates(table, rate[sens.metric], "cell", engine):
        if row in sens.rows and bit in sens.bits:
            r, c = sens.rows.index(row), sens.bits.index(bit)
            low[r, c], high[r, c] = est.low, est.high
    return low, high


def csim_sample_bound(table: FaultTable) -> dict:
    """What ``--csim-sample`` proves: k disagreements in n cross-checked faults bound the rate over all faults."""
    from fkhls.campaign.statistics import DEFAULT_CONFIDENCE, disagreement_bound

    checked = table.ran("csim")
    info = dict(table.notes.get("csim_sample", {}))
    confidence = float(info.get("confidence") or DEFAULT_CONFIDENCE)
    n = int(checked.sum())
    k = int(np.count_nonzero(np.asarray(table.columns["mismatched_words"])[checked] > 0)) if n else 0
    bound = disagreement_bound(k, n, confidence) if n else 1.0
    method = "1 - (1 - c)^(1/n)" if k == 0 else "one-sided Clopper-Pearson upper bound"
    return {
        "faults_checked": n, "faults_total": len(table), "seed": info.get("seed"), "disagreeing": k,
        "confidence": confidence, "disagreement_rate_upper_bound": bound, "bound_method": method,
        "disagreeing_faults_upper_bound": bound * len(table),
        "statement": f"{k} of {n} sampled faults disagree: at {confidence:.0%} confidence, the engines disagree on "
                     f"less than {bound:.3g} of the {len(table):,} faults (about {bound * len(table):,.0f} faults; "
                     f"{method}, binomial, conservative for a draw without replacement)",
    }


def reported_confidence(table: FaultTable) -> float | None:
    """The confidence of the campaign's intervals and of its --csim-sample bound (None: every number is exact)."""
    design = _design(table)
    if design is not None and design["mode"] != "exhaustive":
        return _confidence(design)
    if table.csim_sampled:
        return csim_sample_bound(table)["confidence"]
    return None


def build_summary(table: FaultTable, info: Mapping[str, Any], worst: int = 20) -> dict:
    """The ``summary.json`` content: counts, agreement, sensitivity, worst faults, plus ``info`` (seeds, timings...)."""
    summary: dict[str, Any] = {
        "faults": len(table),
        "samples": table.n_samples,
        "outputs_per_sample": table.n_outputs,
        "engines": list(table.engines),
        "primary_engine": table.primary,
        "single_bit": table.single_bit,
    }
    agree = agreement(table)
    if agree:
        summary.update(agree)
    summary["totals"] = {engine: _totals(table, engine) for engine in table.engines}
    if table.single_bit:
        summary["sensitivity"] = {}
        for metric in METRICS:
            sens = sensitivity(table, metric)
            summary["sensitivity"][metric] = {"rows": list(sens.rows), "bits": list(sens.bits),
                                              "values": to_jsonable(sens.values), "faults": to_jsonable(sens.counts)}
    stats = statistics_summary(table)
    if stats:
        summary["statistics"] = stats
        for metric, entry in summary.get("sensitivity", {}).items():
            bounds = sensitivity_intervals(table, sensitivity(table, metric))
            if bounds is not None:
                entry["low"], entry["high"] = to_jsonable(bounds[0]), to_jsonable(bounds[1])
    summary["confidence"] = reported_confidence(table)
    summary["worst_faults"] = worst_faults(table, worst)
    summary.update({key: to_jsonable(value) for key, value in info.items()})
    return to_jsonable(summary)


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write a summary dict as indented JSON, atomically (numpy values converted)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(to_jsonable(dict(summary)), indent=2) + "\n")
    return path


# ----------------------------------------------------------------------------- Markdown

_REPORT_MD = """\
# Fault campaign: {{ title }}

| | |
|---|---|
{% for key, value in facts %}
| {{ key }} | {{ value }} |
{% endfor %}

{% if statistics %}
{{ statistics }}

{% endif %}
{% if agreement %}
## Engine agreement ({{ engines }})

{{ agreement }}

{% endif %}
{% if sens_outputs %}
## Sensitivity per layer and bit position ({{ primary }} engine)

Mean fraction of output words changed by a single-bit flip (all samples, all outputs);
columns are bit positions from the MSB (sign bit of a signed word) down to the LSB (b0).
![heatmap](heatmap.png)

{{ sens_outputs }}

Mean fraction of samples whose top-1 class changed:

{{ sens_top1 }}

{% endif %}
## Worst {{ n_worst }} faults ({{ primary }} engine)

{{ worst }}

## Error distribution

![histograms](histograms.png)

{% if timings %}
## Timings

{{ timings }}

{% endif %}
{{ footer }}
"""


def _sens_markdown(sens: Sensitivity, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    rows = []
    for r, name in enumerate(sens.rows):
        rows.append([name, *["" if math.isnan(v) else _cell_value(v, bounds) + _interval_note(bounds, r, c).replace(
            "\n", " ") for c, v in enumerate(sens.values[r])]])
    return tabulate(rows, headers=["tensor", *[f"b{b}" for b in sens.bits]], tablefmt="github",
                    disable_numparse=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def render_markdown(table: FaultTable, summary: Mapping[str, Any], title: str = "", n_worst: int = 20) -> str:
    """The Markdown report of a campaign (``summary`` as made by ``build_summary``)."""
    primary = table.primary
    facts = [("faults (scenarios)", f"{len(table):,}"), ("samples", f"{table.n_samples:,}"),
             ("outputs per sample", table.n_outputs), ("engines", ", ".join(table.engines))]
    for key in ("mode", "selection", "seeds"):
        if key in summary and summary[key] not in (None, {}):
            facts.append((key, _fmt_mapping(summary[key])))
    totals = summary.get("totals", {}).get(primary, {})
    facts += [(f"{k.replace('_', ' ')} ({primary})", _fmt(v)) for k, v in totals.items()]
    agree = ""
    if table.both:
        a = agreement(table, limit=20)
        lines = [[f"{a['outputs_compared']:,}", f"{a['bit_exact']:,}",
                  f"{100.0 * a['bit_exact'] / max(a['outputs_compared'], 1):.4f} %",
                  f"{a['scenarios_bit_exact']:,} / {len(table):,}", a["max_lsb_diff"]]]
        agree = tabulate(lines, headers=["output words compared", "bit-exact", "agreement", "scenarios bit-exact",
                                         "max LSB diff"], tablefmt="github", disable_numparse=True)
        if "csim_sample" in a:
            agree = (f"C-sim cross-checked a seeded sample (`--csim-sample`, seed {a['csim_sample']['seed']}) of the "
                     f"faults the TF engine ran; what the sample proves: {a['csim_sample']['statement']}.\n\n"
                     + agree)
        if a["mismatching_scenarios"]:
            rows = [[m["scenario"], m["name"], m["array"], m["element"], m["array_bit"], m["mismatched_words"],
                     m["max_lsb_diff"], m["first_mismatch_sample"]] for m in a["mismatching_scenarios"]]
            agree += "\n\nMismatching scenarios (first 20):\n\n" + tabulate(
                rows, headers=["scenario", "name", "array", "element", "array bit", "words", "max LSB diff",
                               "first sample"], tablefmt="github")
    sens_outputs = sens_top1 = ""
    if table.single_bit:
        sens = sensitivity(table, "outputs_changed_fraction")
        sens_outputs = _sens_markdown(sens, sensitivity_intervals(table, sens))
        sens = sensitivity(table, "top1_change_rate")
        sens_top1 = _sens_markdown(sens, sensitivity_intervals(table, sens))
    worst_cols = ["scenario", "layer", "tensor", "flat_index", "bit", "array", "element"] if table.single_bit else \
        ["scenario", "name", "n_bits"]
    metric_cols = ["top1_changed", "outputs_changed", "max_abs_error"] + (["accuracy_drop"] if table.has_labels else [])
    rows = []
    for i in _order_worst(table)[:n_worst]:
        row = [table.columns[c][i] for c in worst_cols]
        row += [_fmt(to_jsonable(table.metric(m)[i])) for m in metric_cols]
        rows.append(row)
    worst = tabulate(rows, headers=[*worst_cols, *[f"{m}" for m in metric_cols]], tablefmt="github",
                     disable_numparse=True)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    return env.from_string(_REPORT_MD).render(
        title=title or summary.get("project", "campaign"), facts=facts, agreement=agree,
        statistics=_statistics_markdown(summary.get("statistics")), engines=" vs ".join(
            table.engines), sens_outputs=sens_outputs, sens_top1=sens_top1, primary=primary, n_worst=n_worst,
        worst=worst, timings=tabulate([[k, _fmt(v)] for k, v in summary.get("timings", {}).items()],
                                      headers=["", ""], tablefmt="github", disable_numparse=True)
        if summary.get("timings") else "", footer="Full per-fault rows: `results.csv`; machine-readable summary: `summary.json`.")


def _estimate_cell(est: Mapping[str, Any], spec: str) -> str:
    return "-" if est["value"] is None else format(est["value"], spec)


def _interval_cell(est: Mapping[str, Any]) -> str:
    if est["value"] is None:
        return "not sampled"
    if est["exact"]:
        return "exact"
    return f"[{est['low']:.4g}, {est['high']:.4g}]"


def _statistics_markdown(stats: Mapping[str, Any] | None) -> str:
    """Population rates with intervals, vulnerability per layer and per bit position, and the strata."""
    if not stats:
        return ""
    design = stats["design"]
    sampled = design["mode"] in ("sampled", "ber")
    conf = f"{stats['confidence']:.4g}" if sampled else "-"
    out = ["## Rates over the fault population" + (f" ({float(conf):.0%} confidence intervals)" if sampled else "")]
    if design["mode"] == "ber":
        out[0] = f"## Rates over random-BER trials ({stats['confidence']:.0%} confidence intervals)"
        out.append(f"Each of the {design['sample']:,} trials (seed {design['seed']}) is an independent draw of a "
                   f"fault pattern, so each rate (a 'fault' below is a trial) has an interval for the mean over "
                   f"all patterns (no finite population correction). Intervals: {stats['intervals']}.")
    elif sampled:
        out.append(f"A stratified random sample (per {design['per']}, seed {design['seed']}) of {design['sample']:,} "
                   f"of the {design['population']:,} single-bit faults, sized by Leveugle et al. (DATE 2009) for a "
                   f"margin of {design['margin']} at {float(conf):.0%} confidence (expected rate {design['prior']}). "
                   f"Intervals: {stats['intervals']}. Each interval holds the rate of the whole population (what "
                   f"an exhaustive campaign would measure) with the stated confidence.")
    else:
        out.append("Every fault of the population was run: the rates are exact (intervals of width zero).")
    rows = []
    for engine, rates in stats["rates"].items():
        for name, est in rates.items():
            population = "unbounded" if est["population"] is None else f"{est['population']:,}"
            rows.append([name, engine, _estimate_cell(est, ".6g"), _interval_cell(est),
                         f"{est['measured']:,} / {population}", RATES[name]])
    out.append(tabulate(rows, headers=["rate", "engine", "estimate", "interval", "faults run / population",
                                       "meaning"], tablefmt="github", disable_numparse=True))
    vul = stats["vulnerability"]
    for by, title in (("layer", "layer tensor"), ("bit", "bit position (from the LSB)")):  # strata: summary.json
        entries = vul.get(f"per_{by}", [])
        if not entries:
            continue
        rows = [[(f"b{e[by]}" if by == "bit" else e[by]),
                 _estimate_cell(e["top1_vulnerability"], ".4g"), _interval_cell(e["top1_vulnerability"]),
                 _estimate_cell(e["output_vulnerability"], ".4g"), _interval_cell(e["output_vulnerability"]),
                 f"{e['top1_vulnerability']['measured']:,} / {e['top1_vulnerability']['population']:,}"]
                for e in entries]
        out.append(f"### Vulnerability per {title} ({stats['engine']} engine)")
        out.append(tabulate(rows, headers=[title, "P(top-1 changes)", "interval", "P(any output word changes)",
                                           "interval", "faults run / population"], tablefmt="github",
                            disable_numparse=True))
    if vul:
        out.append("Vulnerability: the probability that one flip of a bit drawn uniformly from the domain changes the "
                   "top-1 class of a sample (resp. any of its output words), averaged over the samples.")
    return "\n\n".join(out)


def _fmt_mapping(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if v is not None)
    return _fmt(value)


# ----------------------------------------------------------------------------- plots


def _figure(**kwargs):
    """A bare Figure: no pyplot, so no global backend is switched (a notebook keeps its own) and nothing leaks."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def heatmap_figure(table: FaultTable, engine: str | None = None):
    """Layers x bit positions (MSB..LSB), two panels: fraction of outputs changed, top-1 change rate.

    Returns a matplotlib Figure, or None for a campaign without single-bit rows.
    """
    import matplotlib

    if not table.single_bit:
        return None
    panels = [sensitivity(table, m, engine) for m in METRICS]
    n_rows, n_bits = panels[0].values.shape
    fig = _figure(figsize=(min(24.0, max(10.0, 0.75 * n_bits * 2 + 5)), 1.8 + 0.45 * n_rows), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, sens in zip(axes, panels):
        data = np.ma.masked_invalid(sens.values)
        cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#dddddd")
        image = ax.imshow(data, aspect="auto", cmap=cmap, vmin=0.0, vmax=max(float(np.nanmax(sens.values)), 1e-9)
                          if np.isfinite(sens.values).any() else 1.0)
        ax.set_xticks(range(n_bits), [_bit_label(b, sens) for b in sens.bits], fontsize=8)
        ax.set_yticks(range(n_rows), sens.rows, fontsize=8)
        ax.set_xlabel("bit position (MSB ... LSB)")
        ax.set_title(METRICS[sens.metric], fontsize=10)
        vmax = np.nanmax(sens.values) if np.isfinite(sens.values).any() else 1.0
        bounds = sensitivity_intervals(table, sens, engine)
        for r in range(n_rows):
            for c in range(n_bits):
                v = sens.values[r, c]
                if np.isfinite(v):
                    ax.text(c, r, f"{v:.2g}" + _interval_note(bounds, r, c), ha="center", va="center", fontsize=7,
                            color="white" if v > 0.6 * vmax else "black")
        fig.colorbar(image, ax=ax, shrink=0.9)
    fig.suptitle(f"single-bit fault sensitivity ({engine or table.primary} engine, {len(table):,} faults, "
                 f"{table.n_samples:,} samples; grey: bit not in the campaign or not in the word)"
                 + _heatmap_interval_caption(table), fontsize=10)
    return fig


def _interval_note(bounds: tuple[np.ndarray, np.ndarray] | None, r: int, c: int) -> str:
    """A cell's interval under its value, ``[low, high]``, when the cell was sampled (not measured whole)."""
    if bounds is None or not np.isfinite(bounds[0][r, c]) or bounds[0][r, c] == bounds[1][r, c]:
        return ""
    return f"\n[{_short(bounds[0][r, c])}, {_short(bounds[1][r, c])}]"


def _cell_value(value: float, bounds: tuple[np.ndarray, np.ndarray] | None) -> str:
    # With intervals (a statistical campaign) small rates keep their digits: 2.3e-05, not 0.000.
    return f"{value:.3f}" if bounds is None or value == 0 or value >= 0.001 else f"{value:.2g}"


def _short(value: float) -> str:
    """A bound in a few characters: 0, 0.11, 0.0096, 1e-4."""
    if value == 0 or abs(value) >= 0.001:
        return f"{value:.2g}"
    return f"{value:.0e}".replace("e-0", "e-")


def _heatmap_interval_caption(table: FaultTable) -> str:
    design = _design(table)
    if design is None or design["mode"] != "sampled":
        return ""
    return (f"\nsampled ({design['sample']:,} of {design['population']:,} faults, per {design['per']}, seed "
            f"{design['seed']}): each cell shows its estimate and its {design['confidence']:.0%} interval "
            f"[low, high]; cells without one were measured whole")


def plot_heatmap(path: str | Path, table: FaultTable, engine: str | None = None) -> Path | None:
    """Save ``heatmap_figure`` as a PNG; None (and nothing written) for a campaign without single-bit rows."""
    fig = heatmap_figure(table, engine)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return Path(path)


def _bit_label(bit: int, sens: Sensitivity) -> str:
    return f"b{bit}\nMSB" if bit == max(sens.bits) else f"b{bit}"


def histograms_figure(table: FaultTable, engine: str | None = None):
    """Distribution of the max abs output error per fault (log10, output units), one panel per layer.

    Faults with no effect (error 0) are counted in each panel's title; a BER campaign adds the
    distribution of the top-1 change rate over trials. Returns a matplotlib Figure.
    """
    engine = engine or table.primary
    err = np.asarray(table.metric("max_abs_error", engine), dtype=np.float64)
    layers = np.asarray(table.columns["layer"])
    names = list(dict.fromkeys(layers.tolist()))
    extra = 0 if table.single_bit else 1
    n = len(names) + extra
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    positive = err[err > 0]
    lo = math.floor(np.log10(positive.min())) if positive.size else -3
    hi = math.ceil(np.log10(positive.max())) if positive.size else 0
    edges = np.linspace(lo, max(hi, lo + 1), 31)
    for ax, name in zip(axes.flat, names):
        mine = err[layers == name]
        hit = mine[mine > 0]
        ax.hist(np.log10(hit) if hit.size else [], bins=edges, color="#c0392b")
        ax.set_yscale("log") if hit.size else None
        ax.set_title(f"{name}: {hit.size:,} of {mine.size:,} faults change outputs", fontsize=9)
        ax.set_xlabel("log10 max |faulty - golden| (output units)", fontsize=8)
        ax.set_ylabel("faults", fontsize=8)
    if extra:
        ax = axes.flat[len(names)]
        rate = np.asarray(table.metric("top1_change_rate", engine), dtype=np.float64)
        ax.hist(rate, bins=30, color="#2c3e50")
        ax.set_title(f"top-1 change rate over {len(table):,} trials", fontsize=9)
        ax.set_xlabel("fraction of samples", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"max abs output error per fault ({engine} engine)", fontsize=11)
    return fig


def plot_histograms(path: str | Path, table: FaultTable, engine: str | None = None) -> Path:
    """Save ``histograms_figure`` as a PNG."""
    histograms_figure(table, engine).savefig(path, dpi=100)
    return Path(path)


# ----------------------------------------------------------------------------- everything


def write_report(out_dir: str | Path, table: FaultTable, info: Mapping[str, Any], title: str = "",
                 csv: bool = True) -> dict[str, Path]:
    """summary.json, report.md, heatmap.png (single-bit campaigns), histograms.png and results.csv into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(table, info)
    paths = {"summary": write_summary(out_dir / "summary.json", summary)}
    heat = plot_heatmap(out_dir / "heatmap.png", table)
    if heat is not None:
        paths["heatmap"] = heat
    paths["histograms"] = plot_histograms(out_dir / "histograms.png", table)
    report = render_markdown(table, summary, title)
    atomic_write_text(out_dir / "report.md", report)
    paths["report"] = out_dir / "report.md"
    if csv:
        table.to_csv(out_dir / "results.csv")
        paths["results"] = out_dir / "results.csv"
    return paths
