"""Campaign reports: ``summary.json``, ``report.md``, ``heatmap.png``, ``histograms.png``.

Small pieces rather than one monolith, each reachable from Python (``fkhls.api``) as well:

* ``FaultTable`` -- one row per fault scenario (where it is, what it did), column arrays (``.to_pandas()``);
* ``Digest`` -- every aggregate below, accumulated a batch of rows at a time in exact integers, so a campaign's
  report streams over its shards in bounded memory and equals the report of the whole table (every function
  below takes a FaultTable or a Digest);
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

from fkhls.core.errors import FkhlsError
from fkhls.core.files import atomic_write_text

__all__ = [
    "FaultTable",
    "Digest",
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


# ----------------------------------------------------------------------------- the digest: every aggregate, one pass

WORST = 20  # worst faults a report lists
MISMATCH_LIMIT = 1000  # mismatching scenarios summary.json lists
_AGREEMENT_KEYS = ("scenario", "name", "layer", "tensor", "lbi", "bit", "array", "element", "array_bit",
                   *AGREEMENT_COLUMNS)
# The population rates as integer numerators per fault over a fixed unit (see ``_unit``); the two accuracy parts
# (with labels) are the losses and gains ``domain_estimates`` bounds apart. Their order indexes the sums.
_PARTS = ("faults_changing_outputs", "faults_changing_top1", "outputs_changed_fraction", "output_vulnerability",
          "top1_vulnerability", "accuracy_drop+", "accuracy_drop-")


def _unit(part: str, n_samples: int, n_outputs: int) -> int:
    """The denominator of ``part``'s numerators; it is also the elementary outcomes per fault of its interval."""
    if part.startswith("faults_changing"):
        return 1
    return n_samples * n_outputs if part == "outputs_changed_fraction" else n_samples


def _drop_counts(table: FaultTable, engine: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Per row (of ``rows``), golden correct - faulty correct samples: the accuracy drop times the samples, an
    exact integer (the drop is that integer over the samples, correctly rounded)."""
    drop = np.asarray(table.metric("accuracy_drop", engine), dtype=np.float64)
    return np.rint((drop if rows is None else drop[rows]) * table.n_samples).astype(np.int64)


def _numerators(table: FaultTable, engine: str, part: str) -> np.ndarray:
    def col(name: str) -> np.ndarray:
        return np.asarray(table.metric(name, engine)).astype(np.int64)

    if part == "faults_changing_outputs":
        return (col("outputs_changed") > 0).astype(np.int64)
    if part == "faults_changing_top1":
        return (col("top1_changed") > 0).astype(np.int64)
    if part == "outputs_changed_fraction":
        return col("outputs_changed")
    if part == "output_vulnerability":
        return col("samples_changed")
    if part == "top1_vulnerability":
        return col("top1_changed")
    drop = _drop_counts(table, engine)
    return np.maximum(drop if part.endswith("+") else -drop, 0)


def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of the 2-D int array ``keys``, group index of each row)."""
    if not len(keys):
        return keys, np.zeros(0, dtype=np.int64)
    low = keys.min(axis=0)
    span = keys.max(axis=0) - low + 1  # a few layers, bits and strata: the mixed-radix code fits in int64
    code = np.zeros(len(keys), dtype=np.int64)
    for j in range(keys.shape[1]):
        code = code * span[j] + (keys[:, j] - low[j])
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return keys[first], inverse.reshape(-1)


def _group_sum(inverse: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``values`` per group (np.add.at: no float rounding, unlike bincount's weights)."""
    out = np.zeros(n_groups, dtype=np.int64)
    np.add.at(out, inverse, values.astype(np.int64))
    return out


def _first_seen(values: np.ndarray) -> list:
    """The distinct ``values`` in the order they first occur."""
    distinct, first = np.unique(values, return_index=True)
    return distinct[np.argsort(first, kind="stable")].tolist()


@dataclass
class Digest:
    """Every aggregate a report shows, accumulated one batch of rows at a time (``add``), so a report's memory is
    bounded by the model's layers, bits and strata and the rows it lists, not by the number of faults.

    Counts and sums are exact integers, so the digest of a table is the same whatever batches it was added in:
    a report streamed shard by shard from disk equals the one made from the whole table in memory. ``engine``:
    the engine of the per-fault views (sensitivity, worst faults, histograms; default the table's primary)."""

    engines: tuple[str, ...]
    n_samples: int
    n_outputs: int
    output_lsb: float
    has_labels: bool
    notes: Mapping[str, Any]
    engine: str
    csim_sampled: bool
    has_stratum: bool
    worst_k: int = WORST
    mismatch_limit: int = MISMATCH_LIMIT
    n_rows: int = 0
    all_single: bool = True
    totals: dict = field(default_factory=dict)  # engine -> counts, sums and maxima over the rows it ran
    agree: dict = field(default_factory=dict)  # both engines: counts, maxima and the first mismatching rows
    sens_keys: dict = field(default_factory=dict)  # (layer, tensor) of single-bit rows -> index, first-seen order
    sens: dict = field(default_factory=dict)  # (key index, bit) -> [faults, sum outputs_changed, sum top1_changed]
    sens_top: dict = field(default_factory=dict)  # key index -> largest bit seen
    # engine -> (row code, bit, stratum) -> [faults, then per part: sum, sum of squares of its numerators]
    domain: dict = field(default_factory=dict)
    worst: list = field(default_factory=list)  # [(sort key, row dict)], worst first, at most worst_k
    hist: dict = field(default_factory=dict)  # layer -> {max_abs_error: faults}, first-seen order
    hist_rows: dict = field(default_factory=dict)  # layer -> faults
    top1_rates: dict = field(default_factory=dict)  # top1_change_rate -> faults

    @classmethod
    def start(cls, header: FaultTable, engine: str | None = None, worst: int = WORST,
              limit: int = MISMATCH_LIMIT) -> "Digest":
        """An empty digest for tables shaped like ``header`` (its columns and notes; its rows are not added)."""
        digest = cls(tuple(header.engines), int(header.n_samples), int(header.n_outputs), float(header.output_lsb),
                     bool(header.has_labels), header.notes, engine or header.primary, header.csim_sampled,
                     "stratum" in header.columns, worst, limit)
        for e in digest.engines:
            digest.totals[e] = {"run": 0, "changing_outputs": 0, "changing_top1": 0, "outputs_changed": 0,
                                "top1_changed": 0, "max_err": 0, "drop": 0, "max_drop": None}
        if header.both:
            digest.agree = {"checked": 0, "mismatched": 0, "bad": 0, "disagreeing": 0, "max_lsb_diff": 0, "rows": []}
        for e in digest.full_engines:
            digest.domain[e] = {}
        return digest

    @classmethod
    def of(cls, table: FaultTable, engine: str | None = None, worst: int = WORST,
           limit: int = MISMATCH_LIMIT) -> "Digest":
        """The digest of a whole table in memory (one batch)."""
        digest = cls.start(table, engine, worst, limit)
        digest.add(table)
        return digest

    # -- what the report functions read, as FaultTable offers it
    def __len__(self) -> int:
        return self.n_rows

    @property
    def primary(self) -> str:
        return "csim" if "csim" in self.engines and not self.csim_sampled else self.engines[0]

    @property
    def both(self) -> bool:
        return bool(self.agree)

    @property
    def single_bit(self) -> bool:
        return bool(self.n_rows) and self.all_single

    @property
    def full_engines(self) -> list[str]:
        """Engines that ran every row (all but the C-sim engine of a --csim-sample campaign)."""
        return [e for e in self.engines if not (e == "csim" and self.csim_sampled)]

    @property
    def parts(self) -> tuple[str, ...]:
        return _PARTS if self.has_labels else _PARTS[:5]

    def ran_count(self, engine: str) -> int:
        return self.totals[engine]["run"]

    # -- accumulating
    def add(self, batch: FaultTable) -> None:
        """Add the rows of ``batch`` (the next rows of the campaign, in order)."""
        m = len(batch)
        if not m:
            return
        cols = batch.columns
        single = np.asarray(cols["n_bits"]) == 1
        self.all_single = self.all_single and bool(single.all())
        for e in self.engines:
            self._add_totals(batch, e)
        if self.agree:
            self._add_agreement(batch)
        self._add_sensitivity(batch, single)
        self._add_worst(batch)
        self._add_histograms(batch)
        if self.has_stratum:
            for e in self.full_engines:
                self._add_domain(batch, e)
        self.n_rows += m

    def _add_totals(self, batch: FaultTable, engine: str) -> None:
        ran = batch.ran(engine)
        t = self.totals[engine]
        oc = np.asarray(batch.metric("outputs_changed", engine))[ran].astype(np.int64)
        top1 = np.asarray(batch.metric("top1_changed", engine))[ran].astype(np.int64)
        err = np.asarray(batch.metric("max_abs_error_lsb", engine))[ran].astype(np.int64)
        t["run"] += int(ran.sum())
        t["changing_outputs"] += int(np.count_nonzero(oc))
        t["changing_top1"] += int(np.count_nonzero(top1))
        t["outputs_changed"] += int(oc.sum())
        t["top1_changed"] += int(top1.sum())
        t["max_err"] = max(t["max_err"], int(np.max(err, initial=0)))
        if self.has_labels and ran.any():
            drop = _drop_counts(batch, engine, ran)
            t["drop"] += int(drop.sum())
            t["max_drop"] = int(drop.max()) if t["max_drop"] is None else max(t["max_drop"], int(drop.max()))

    def _add_agreement(self, batch: FaultTable) -> None:
        cols, a = batch.columns, self.agree
        checked = batch.ran("csim")
        mismatched = np.where(checked, np.asarray(cols["mismatched_words"]), 0)
        bad = np.nonzero(mismatched)[0]
        a["checked"] += int(checked.sum())
        a["mismatched"] += int(mismatched.sum())
        a["bad"] += len(bad)
        a["disagreeing"] += int(np.count_nonzero(np.asarray(cols["mismatched_words"])[checked] > 0))
        a["max_lsb_diff"] = max(a["max_lsb_diff"], int(np.max(np.where(checked, cols["max_lsb_diff"], 0), initial=0)))
        for i in bad[:max(0, self.mismatch_limit - len(a["rows"]))]:
            a["rows"].append({key: to_jsonable(cols[key][i]) for key in _AGREEMENT_KEYS})

    def _add_sensitivity(self, batch: FaultTable, single: np.ndarray) -> None:
        if not single.any():
            return
        cols = batch.columns
        layers, tensors = np.asarray(cols["layer"])[single].astype(str), np.asarray(cols["tensor"])[single].astype(str)
        bits = np.asarray(cols["bit"])[single].astype(np.int64)
        l_names, l_code = np.unique(layers, return_inverse=True)
        t_names, t_code = np.unique(tensors, return_inverse=True)
        pair = l_code.reshape(-1) * len(t_names) + t_code.reshape(-1)
        for p in _first_seen(pair):
            self.sens_keys.setdefault((str(l_names[p // len(t_names)]), str(t_names[p % len(t_names)])),
                                      len(self.sens_keys))
        code = np.array([self.sens_keys.get((str(l_names[p // len(t_names)]), str(t_names[p % len(t_names)])), -1)
                         for p in range(len(l_names) * len(t_names))], dtype=np.int64)
        key_index = code[pair]  # every pair of the batch is a key by now
        groups, inverse = _group(np.stack([key_index, bits], axis=1))
        counts = np.bincount(inverse, minlength=len(groups))
        oc = _group_sum(inverse, len(groups), np.asarray(batch.metric("outputs_changed", self.engine))[single])
        top1 = _group_sum(inverse, len(groups), np.asarray(batch.metric("top1_changed", self.engine))[single])
        for g, (k, bit) in enumerate(groups.tolist()):
            cell = self.sens.setdefault((k, bit), [0, 0, 0])
            cell[0] += int(counts[g])
            cell[1] += int(oc[g])
            cell[2] += int(top1[g])
            self.sens_top[k] = max(self.sens_top.get(k, bit), bit)

    def _add_worst(self, batch: FaultTable) -> None:
        keys = [np.asarray(batch.metric(name, self.engine), dtype=np.float64)
                for name in ("max_abs_error_lsb", "outputs_changed", "top1_changed")]
        order = np.lexsort([-k for k in keys])[:self.worst_k]
        candidates = [((-keys[2][i], -keys[1][i], -keys[0][i], self.n_rows + int(i)), int(i)) for i in order]
        merged = sorted([(key, row) for key, row in self.worst] + [(key, i) for key, i in candidates],
                        key=lambda item: item[0])[:self.worst_k]
        self.worst = [(key, batch.row(row) if isinstance(row, int) else row) for key, row in merged]

    def _add_histograms(self, batch: FaultTable) -> None:
        layers = np.asarray(batch.columns["layer"]).astype(str)
        err = np.asarray(batch.metric("max_abs_error", self.engine), dtype=np.float64)
        for name in _first_seen(layers):
            mine = err[layers == name]
            self.hist_rows[name] = self.hist_rows.get(name, 0) + len(mine)
            counts = self.hist.setdefault(name, {})
            values, n = np.unique(mine[mine > 0], return_counts=True)
            for v, c in zip(values.tolist(), n.tolist()):
                counts[v] = counts.get(v, 0) + c
        values, n = np.unique(np.asarray(batch.metric("top1_change_rate", self.engine), dtype=np.float64),
                              return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            self.top1_rates[v] = self.top1_rates.get(v, 0) + c

    def _add_domain(self, batch: FaultTable, engine: str) -> None:
        design = self.notes.get("design") or {}
        names = list(design.get("cell_population", {}))
        rows = _row_codes(batch, names)
        keys = np.stack([rows, np.asarray(batch.columns["bit"], dtype=np.int64),
                         np.asarray(batch.columns["stratum"], dtype=np.int64)], axis=1)
        groups, inverse = _group(keys)
        sums = [np.bincount(inverse, minlength=len(groups)).astype(np.int64)]
        for part in self.parts:
            values = _numerators(batch, engine, part)
            sums += [_group_sum(inverse, len(groups), values), _group_sum(inverse, len(groups), values * values)]
        table = self.domain[engine]
        for g, key in enumerate(map(tuple, groups.tolist())):
            acc = table.setdefault(key, [0] * len(sums))
            for j, column in enumerate(sums):
                acc[j] += int(column[g])


def _digest(source: "FaultTable | Digest", engine: str | None = None, worst: int = WORST,
            limit: int = MISMATCH_LIMIT) -> Digest:
    """``source`` itself when it is a digest (of ``engine``), else the digest of the table."""
    if isinstance(source, Digest):
        if engine not in (None, source.engine):
            raise FkhlsError(f"this report digest holds the {source.engine} engine's per-fault aggregates, not "
                             f"{engine}'s; make the report of the table, or a digest with engine={engine!r}")
        return source
    return Digest.of(source, engine, worst, limit)


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


def sensitivity(table: "FaultTable | Digest", metric: str = "outputs_changed_fraction",
                engine: str | None = None) -> Sensitivity:
    """Mean of ``metric`` (one of ``METRICS``) per layer/tensor and bit position, over the single-bit rows."""
    if metric not in METRICS:
        raise FkhlsError(f"sensitivity metric {metric!r} is not valid; valid metrics: {list(METRICS)}")
    dg = _digest(table, engine)
    keys = list(dg.sens_keys)
    widths = [int(np.asarray(dg.notes.get("widths", {}).get(f"{layer} {tensor}", dg.sens_top[k] + 1)))
              for k, (layer, tensor) in enumerate(keys)]
    top = max(widths, default=0)
    out = np.full((len(keys), top), np.nan)
    counts = np.zeros((len(keys), top), dtype=np.int64)
    unit = dg.n_samples * dg.n_outputs if metric == "outputs_changed_fraction" else dg.n_samples
    which = 1 if metric == "outputs_changed_fraction" else 2
    for (k, bit), cell in dg.sens.items():
        counts[k, top - 1 - bit] = cell[0]
        out[k, top - 1 - bit] = cell[which] / (cell[0] * unit)  # exact integers, one rounding
    return Sensitivity(tuple(f"{layer} {tensor}" for layer, tensor in keys), tuple(range(top - 1, -1, -1)), out,
                       counts, metric, tuple(widths))


def worst_faults(table: "FaultTable | Digest", k: int = WORST, engine: str | None = None) -> list[dict]:
    """The ``k`` most harmful scenarios, worst first (top-1 changes, then output words changed, then max error;
    ties in campaign order) as dicts of their columns (a digest keeps its ``worst_k``)."""
    return [row for _, row in _digest(table, engine, worst=k).worst[:k]]


def agreement(table: "FaultTable | Digest", limit: int = MISMATCH_LIMIT) -> dict:
    """Engine agreement: words compared, bit-exact words and scenarios, the largest LSB difference, mismatches."""
    dg = _digest(table, limit=max(limit, 0))
    if not dg.both:
        return {}
    a = dg.agree
    compared = a["checked"] * dg.n_samples * dg.n_outputs
    sampled = {"csim_sample": csim_sample_bound(dg)} if dg.csim_sampled else {}
    listed = a["rows"][:limit]
    return {
        **sampled,
        "outputs_compared": compared,
        "bit_exact": compared - a["mismatched"],
        "scenarios_bit_exact": a["checked"] - a["bad"],
        "scenarios_mismatching": a["bad"],
        "max_lsb_diff": a["max_lsb_diff"],
        "mismatching_scenarios": listed,
        "mismatching_scenarios_listed": len(listed),
    }


def _totals(dg: Digest, engine: str) -> dict:
    """Counts and plain means over the faults ``engine`` ran (population estimates: ``statistics_summary``)."""
    t = dg.totals[engine]
    n = t["run"]
    out = {
        "faults_run": n,
        "faults_changing_outputs": t["changing_outputs"],
        "faults_changing_top1": t["changing_top1"],
        "mean_outputs_changed_fraction": t["outputs_changed"] / (n * dg.n_samples * dg.n_outputs) if n else 0.0,
        "mean_top1_change_rate": t["top1_changed"] / (n * dg.n_samples) if n else 0.0,
        "max_abs_error_lsb": t["max_err"],
    }
    if dg.has_labels and n:
        out.update(mean_accuracy_drop=t["drop"] / (n * dg.n_samples), max_accuracy_drop=t["max_drop"] / dg.n_samples)
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
    if rate not in _PARTS:
        raise KeyError(rate)
    unit = _unit(rate, table.n_samples, table.n_outputs)
    values = _numerators(table, engine, rate) / float(unit)
    return RateValues(np.asarray(values, dtype=np.float64), (0.0, 1.0), RATE_METHOD, unit)


def _design(table: "FaultTable | Digest") -> Mapping[str, Any] | None:
    """The sample design of a single-bit campaign (``runner.SampleDesign.notes``), or None."""
    design = table.notes.get("design")
    has_stratum = table.has_stratum if isinstance(table, Digest) else "stratum" in table.columns
    if design is None or not has_stratum:
        return None
    return design if table.single_bit or design["mode"] == "ber" else None


def _cell_population(design: Mapping[str, Any]) -> dict[tuple[str, int], int]:
    return {(row, int(bit)): int(n) for row, bits in design["cell_population"].items() for bit, n in bits.items()}


def _confidence(design: Mapping[str, Any]) -> float:
    # An exhaustive design has no confidence: every domain is measured whole and its interval has width zero.
    from fkhls.campaign.statistics import DEFAULT_CONFIDENCE

    return float(design.get("confidence") or DEFAULT_CONFIDENCE)


def domain_estimates(table: "FaultTable | Digest", rate: str, by: str, engine: str | None = None,
                     confidence: float | None = None) -> list[tuple[Any, Any]]:
    """``[(domain, statistics.Estimate)]`` of ``rate`` over the whole model (``by='model'``), each layer
    tensor (``'layer'``), bit position (``'bit'``), (layer tensor, bit) cell (``'cell'``) or stratum."""
    from fkhls.campaign.statistics import difference_estimate, domain_estimate_from_sums

    dg = _digest(table)
    design = _design(dg)
    if design is None:
        return []
    alpha = 1.0 - (confidence or _confidence(design))
    if rate == "accuracy_drop":
        # Signed: losses and gains bounded apart (alpha/4 each), then kept inside +-(top-1 vulnerability)
        # (alpha/2), since a sample's correctness changes only when its top-1 class does.
        pos, neg = (domain_estimates(dg, f"accuracy_drop{sign}", by, engine, 1.0 - alpha / 4) for sign in "+-")
        top1 = domain_estimates(dg, "top1_vulnerability", by, engine, 1.0 - alpha / 2)
        return [(name, difference_estimate(p, q, t.high)) for (name, p), (_, q), (_, t) in zip(pos, neg, top1)]
    engine = engine or dg.primary
    if rate not in dg.parts or engine not in dg.domain:
        raise KeyError(rate if rate not in dg.parts else engine)
    stats = dg.domain[engine]  # (row code, bit, stratum) -> [faults, sum, square sum per part]
    j = 1 + 2 * dg.parts.index(rate)
    populations = [math.inf if st["population"] is None else st["population"] for st in design["strata"]]
    n_strata = len(populations)
    sizes = [0] * n_strata
    for (_, _, h), acc in stats.items():
        sizes[h] += acc[0]
    cells = _cell_population(design)
    names = list(design["cell_population"])
    if by == "model":
        domains = [("model", lambda key: True, float(sum(populations)))]
    elif by == "stratum":
        domains = [(st["label"], lambda key, h=h: key[2] == h, populations[h]) for h, st in enumerate(design["strata"])]
    elif by == "layer":
        domains = [(name, lambda key, i=i: key[0] == i, sum(n for (r, _), n in cells.items() if r == name))
                   for i, name in enumerate(names)]
    elif by == "bit":
        positions = sorted({b for _, b in cells}, reverse=True)
        domains = [(b, lambda key, b=b: key[1] == b, sum(n for (_, cb), n in cells.items() if cb == b))
                   for b in positions]
    elif by == "cell":
        domains = [(key, lambda k, i=names.index(key[0]), b=key[1]: k[0] == i and k[1] == b, n)
                   for key, n in cells.items()]
    else:
        raise KeyError(by)
    unit = _unit(rate, dg.n_samples, dg.n_outputs)
    out = []
    for name, inside, n in domains:
        counts, sums, squares = [0] * n_strata, [0] * n_strata, [0] * n_strata
        for key, acc in stats.items():
            if inside(key):
                counts[key[2]] += acc[0]
                sums[key[2]] += acc[j]
                squares[key[2]] += acc[j + 1]
        out.append((name, domain_estimate_from_sums(counts, sums, squares, unit, sizes, populations, 1.0 - alpha, n,
                                                    (0.0, 1.0), RATE_METHOD, unit)))
    return out


def _row_codes(table: FaultTable, names: list[str]) -> np.ndarray:
    """Per row, the index in ``names`` of its "layer tensor" (-1 if absent)."""
    layer_names, layer_code = np.unique(np.asarray(table.columns["layer"]).astype(str), return_inverse=True)
    tensor_names, tensor_code = np.unique(np.asarray(table.columns["tensor"]).astype(str), return_inverse=True)
    lookup = np.array([[names.index(f"{a} {b}") if f"{a} {b}" in names else -1 for b in tensor_names]
                       for a in layer_names], dtype=np.int64).reshape(len(layer_names), len(tensor_names))
    return lookup[layer_code.reshape(-1), tensor_code.reshape(-1)]


def statistics_summary(table: "FaultTable | Digest") -> dict:
    """The ``statistics`` part of summary.json: design, population rates with intervals, vulnerability factors."""
    dg = _digest(table)
    design = _design(dg)
    if design is None:
        return {}
    rates = [r for r in RATES if r != "accuracy_drop" or dg.has_labels]
    primary = dg.primary
    exact = design["mode"] == "exhaustive"
    out = {
        "design": {k: v for k, v in design.items() if k != "cell_population"},
        "confidence": None if exact else design["confidence"],
        "intervals": "exact (every fault run): width zero" if exact else
        "two-sided; stratified ratio estimator weighting each stratum by its population, variance with the finite "
        "population correction; rates in [0, 1]: Clopper-Pearson interval at the design's effective sample size "
        "(Korn-Graubard); accuracy drop (signed): its loss and gain parts bounded apart (each at 1-(1-c)/4) and "
        "subtracted, inside +-(top-1 vulnerability bound at 1-(1-c)/2) (Bonferroni, conservative)",
        "rates": {e: {r: domain_estimates(dg, r, "model", e)[0][1].as_dict() for r in rates} for e in dg.full_engines},
        "engine": primary,
        "vulnerability": {},
    }
    for by in ("layer", "bit", "stratum") if dg.single_bit else ():  # a BER trial has no one layer or bit
        per = {r: domain_estimates(dg, r, by, primary) for r in VULNERABILITY}
        out["vulnerability"][f"per_{by}"] = [
            {by: name, **{r: dict(per[r][i][1].as_dict()) for r in VULNERABILITY}}
            for i, (name, _) in enumerate(per[VULNERABILITY[0]])]
    return to_jsonable(out)


def sensitivity_intervals(table: "FaultTable | Digest", sens: Sensitivity, engine: str | None = None
                          ) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) arrays shaped like ``sens.values``: the interval of each heatmap cell (None without a design)."""
    rate = {"outputs_changed_fraction": "outputs_changed_fraction", "top1_change_rate": "top1_vulnerability"}
    dg = _digest(table)
    if _design(dg) is None or sens.metric not in rate:
        return None
    low, high = np.full(sens.values.shape, np.nan), np.full(sens.values.shape, np.nan)
    for (row, bit), est in domain_estimates(dg, rate[sens.metric], "cell", engine):
        if row in sens.rows and bit in sens.bits:
            r, c = sens.rows.index(row), sens.bits.index(bit)
            low[r, c], high[r, c] = est.low, est.high
    return low, high


def csim_sample_bound(table: "FaultTable | Digest") -> dict:
    """What ``--csim-sample`` proves: k disagreements in n cross-checked faults bound the rate over all faults."""
    from fkhls.campaign.statistics import DEFAULT_CONFIDENCE, disagreement_bound

    if isinstance(table, Digest):
        n, k = table.agree["checked"], table.agree["disagreeing"]
    else:
        checked = table.ran("csim")
        n = int(checked.sum())
        k = int(np.count_nonzero(np.asarray(table.columns["mismatched_words"])[checked] > 0)) if n else 0
    info = dict(table.notes.get("csim_sample", {}))
    confidence = float(info.get("confidence") or DEFAULT_CONFIDENCE)
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


def reported_confidence(table: "FaultTable | Digest") -> float | None:
    """The confidence of the campaign's intervals and of its --csim-sample bound (None: every number is exact)."""
    dg = _digest(table)
    design = _design(dg)
    if design is not None and design["mode"] != "exhaustive":
        return _confidence(design)
    if dg.csim_sampled:
        return csim_sample_bound(dg)["confidence"]
    return None


def build_summary(table: "FaultTable | Digest", info: Mapping[str, Any], worst: int = WORST) -> dict:
    """The ``summary.json`` content: counts, agreement, sensitivity, worst faults, plus ``info`` (seeds, timings...)."""
    dg = _digest(table, worst=worst)
    summary: dict[str, Any] = {
        "faults": len(dg),
        "samples": dg.n_samples,
        "outputs_per_sample": dg.n_outputs,
        "engines": list(dg.engines),
        "primary_engine": dg.primary,
        "single_bit": dg.single_bit,
    }
    agree = agreement(dg)
    if agree:
        summary.update(agree)
    summary["totals"] = {engine: _totals(dg, engine) for engine in dg.engines}
    if dg.single_bit:
        summary["sensitivity"] = {}
        for metric in METRICS:
            sens = sensitivity(dg, metric)
            summary["sensitivity"][metric] = {"rows": list(sens.rows), "bits": list(sens.bits),
                                              "values": to_jsonable(sens.values), "faults": to_jsonable(sens.counts)}
    stats = statistics_summary(dg)
    if stats:
        summary["statistics"] = stats
        for metric, entry in summary.get("sensitivity", {}).items():
            bounds = sensitivity_intervals(dg, sensitivity(dg, metric))
            if bounds is not None:
                entry["low"], entry["high"] = to_jsonable(bounds[0]), to_jsonable(bounds[1])
    summary["confidence"] = reported_confidence(dg)
    summary["worst_faults"] = worst_faults(dg, worst)
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


def render_markdown(table: "FaultTable | Digest", summary: Mapping[str, Any], title: str = "",
                    n_worst: int = WORST) -> str:
    """The Markdown report of a campaign (``summary`` as made by ``build_summary``)."""
    table = _digest(table, worst=n_worst)
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
    for fault in worst_faults(table, n_worst):
        rows.append([fault[c] for c in worst_cols] + [_fmt(fault[f"{primary}_{m}"]) for m in metric_cols])
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


def heatmap_figure(table: "FaultTable | Digest", engine: str | None = None):
    """Layers x bit positions (MSB..LSB), two panels: fraction of outputs changed, top-1 change rate.

    Returns a matplotlib Figure, or None for a campaign without single-bit rows.
    """
    import matplotlib

    table = _digest(table, engine)
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


def _heatmap_interval_caption(table: "FaultTable | Digest") -> str:
    design = _design(table)
    if design is None or design["mode"] != "sampled":
        return ""
    return (f"\nsampled ({design['sample']:,} of {design['population']:,} faults, per {design['per']}, seed "
            f"{design['seed']}): each cell shows its estimate and its {design['confidence']:.0%} interval "
            f"[low, high]; cells without one were measured whole")


def plot_heatmap(path: str | Path, table: "FaultTable | Digest", engine: str | None = None) -> Path | None:
    """Save ``heatmap_figure`` as a PNG; None (and nothing written) for a campaign without single-bit rows."""
    fig = heatmap_figure(table, engine)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return Path(path)


def _bit_label(bit: int, sens: Sensitivity) -> str:
    return f"b{bit}\nMSB" if bit == max(sens.bits) else f"b{bit}"


def histograms_figure(table: "FaultTable | Digest", engine: str | None = None):
    """Distribution of the max abs output error per fault (log10, output units), one panel per layer.

    Faults with no effect (error 0) are counted in each panel's title; a BER campaign adds the
    distribution of the top-1 change rate over trials. Returns a matplotlib Figure.
    """
    table = _digest(table, engine)
    engine = table.engine
    names = list(table.hist_rows)
    extra = 0 if table.single_bit else 1
    n = len(names) + extra
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    # Per layer, each distinct error value with its number of faults (the errors are output words: few values).
    errors = {name: (np.array(list(table.hist[name]), dtype=np.float64),
                     np.array(list(table.hist[name].values()), dtype=np.int64)) for name in names}
    positive = np.concatenate([v for v, _ in errors.values()]) if errors else np.zeros(0)
    lo = math.floor(np.log10(positive.min())) if positive.size else -3
    hi = math.ceil(np.log10(positive.max())) if positive.size else 0
    edges = np.linspace(lo, max(hi, lo + 1), 31)
    for ax, name in zip(axes.flat, names):
        values, counts = errors[name]
        hits = int(counts.sum())
        ax.hist(np.log10(values) if hits else [], bins=edges, weights=counts if hits else None, color="#c0392b")
        ax.set_yscale("log") if hits else None
        ax.set_title(f"{name}: {hits:,} of {table.hist_rows[name]:,} faults change outputs", fontsize=9)
        ax.set_xlabel("log10 max |faulty - golden| (output units)", fontsize=8)
        ax.set_ylabel("faults", fontsize=8)
    if extra:
        ax = axes.flat[len(names)]
        rate = np.array(list(table.top1_rates), dtype=np.float64)
        ax.hist(rate, bins=30, weights=np.array(list(table.top1_rates.values()), dtype=np.int64), color="#2c3e50")
        ax.set_title(f"top-1 change rate over {len(table):,} trials", fontsize=9)
        ax.set_xlabel("fraction of samples", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"max abs output error per fault ({engine} engine)", fontsize=11)
    return fig


def plot_histograms(path: str | Path, table: "FaultTable | Digest", engine: str | None = None) -> Path:
    """Save ``histograms_figure`` as a PNG."""
    histograms_figure(table, engine).savefig(path, dpi=100)
    return Path(path)


# ----------------------------------------------------------------------------- everything


def write_report(out_dir: str | Path, table: "FaultTable | Digest", info: Mapping[str, Any], title: str = "",
                 csv: bool = True) -> dict[str, Path]:
    """summary.json, report.md, heatmap.png (single-bit campaigns), histograms.png and (from a table in memory)
    results.csv into ``out_dir``. ``table``: a FaultTable, or the ``Digest`` a campaign streamed from its shards."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table if isinstance(table, FaultTable) else None
    table = _digest(table)
    summary = build_summary(table, info)
    paths = {"summary": write_summary(out_dir / "summary.json", summary)}
    heat = plot_heatmap(out_dir / "heatmap.png", table)
    if heat is not None:
        paths["heatmap"] = heat
    paths["histograms"] = plot_histograms(out_dir / "histograms.png", table)
    report = render_markdown(table, summary, title)
    atomic_write_text(out_dir / "report.md", report)
    paths["report"] = out_dir / "report.md"
    if csv and rows is not None:
        rows.to_csv(out_dir / "results.csv")
        paths["results"] = out_dir / "results.csv"
    return paths
