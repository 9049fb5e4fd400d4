"""Fault campaigns: exhaustive single-bit, statistical (sampled) single-bit or seeded-BER, sharded, resumable.

A campaign is a deterministically ordered list of fault scenarios (``faults.exhaustive_faults``
in model-bit order; a seeded stratified sample of that list, ``sample_design``, sized for a
margin at a confidence by ``fkhls.campaign.statistics``; or ``faults.random_ber_scenarios``
drawn from the seed), cut into shards of
``shard_size`` consecutive scenarios. A shard is the unit of work and of storage: a worker runs
it through the engines asked for (``tf``: the exact integer emulator of ``fkhls.emulate.emulator``, pure
numpy; ``csim``: the C-sim fault harness -- the cone harness when the project supports it),
compares the engines' raw output words in memory, reduces them to per-scenario rows and writes
``shards/shard-NNNNN.parquet`` atomically. With ``csim_sample`` the TF engine runs every shard and the
C-sim engine only a seeded sample of the scenarios, gathered into a few C-sim shards of ``csim_chunk``
sampled faults each (``shards/csim-NNNNN.parquet``: the TF engine runs those faults again for the
comparison), so a C-sim process (weights loaded, golden pass) is started per chunk rather than in
every shard; C-sim shards are units of work and of resume like the others, interleaved with them. A worker receives only its shard's scenarios (``ShardTask``);
the driver keeps the list compact (``ScenarioList`` over a ``descriptors.FaultList``: a few bytes per
fault), so neither grows by hundreds of bytes per fault. Shard boundaries do not depend on the number of
workers, and a shard's rows depend only on its scenarios, so results are identical for any
worker count and any interruption pattern.

Results directory::

    campaign.json         written first: what the campaign is (hashes of project, inputs and
                          labels; fault selection; seed; engines; shard size; fkhls version)
    golden.npz            golden raw output words per engine (+ labels), kept once
    shards/shard-NNNNN.parquet  per-scenario result columns (``fkhls.campaign.results_store``)
    shards/csim-NNNNN.parquet   --csim-sample: the C-sim and agreement columns of a chunk of sampled faults
    results.parquet, results.csv  the whole table (``results_store``), the CSV streamed from the Parquet
    summary.json, report.md, heatmap.png, histograms.png   (``fkhls.campaign.report``)

Resume = the same command on the same directory: ``campaign.json`` must match (otherwise
``CampaignMismatchError`` names what differs; ``force=True`` starts over), finished shards are
kept, missing ones are computed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from fkhls import __version__
from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.faults.descriptors import (
    TENSORS,
    FaultScenario,
    LazySequence,
    exhaustive_fault_list,
    random_ber_scenarios,
    tensor_names,
)
from fkhls.core.files import (CAMPAIGN, atomic_save_npy, atomic_savez, atomic_write_text, classify_output_dir,
                              directory_lock, load_array, sha256_file)
from fkhls.faults.descriptors import fault_from_model_bit  # ordered campaigns (a ranking's top bits)
from fkhls.project.manifest import MANIFEST_NAME, Manifest, load_manifest
from fkhls.campaign.report import Digest, FaultTable, write_report
from fkhls.campaign.results_store import (BATCH_ROWS, csim_shard_file, export_csv, find_shard, iter_columns,
                                          read_columns, shard_file, shard_seconds, write_batches, write_shard,
                                          write_table)

__all__ = [
    "ENGINES",
    "Selection",
    "CampaignConfig",
    "CampaignResult",
    "CampaignMismatchError",
    "MODES",
    "SampleDesign",
    "campaign_confidence",
    "sample_design",
    "csim_sample_rows",
    "campaign_scenarios",
    "campaign_identity",
    "run_campaign",
    "load_results",
    "report_campaign",
    "fault_metrics",
    "engine_agreement",
    "csim_engine",
    "default_shard_size",
    "csim_chunk_size",
    "engine_seconds",
]

ENGINES = ("tf", "csim", "both")
MODES = ("exhaustive", "ber", "sampled", "ordered")
SCHEMA = 2  # 2: shards are Parquet (fkhls.campaign.results_store); schema 1 directories are read, not resumed
# Default shard: the most scenarios (a power of two, at most 4096) whose faulty output words stay
# under ~16 M per engine (~128 MB of int64), so a worker's memory is bounded for any model, and
# the engines' per-call set-up (golden pass, process start) is paid rarely.
SHARD_WORDS = 1 << 24
CAMPAIGN_JSON = "campaign.json"
GOLDEN_NPZ = "golden.npz"
SHARD_DIR = "shards"
# Files a campaign writes (and --force removes); nothing else in the directory is touched.
OUTPUT_FILES = (CAMPAIGN_JSON, GOLDEN_NPZ, "results.parquet", "results.csv", "summary.json", "report.md",
                "heatmap.png", "histograms.png")


class CampaignMismatchError(ProjectError):
    """A results directory holds a different campaign than the one asked for."""


@dataclass(frozen=True)
class Selection:
    """Which faults: every single bit of the chosen tensors (``exhaustive``), ``trials`` seeded BER draws
    (``ber``), a seeded stratified sample of the exhaustive list sized for ``margin`` at ``confidence``
    (``sampled``, see ``fkhls.campaign.statistics`` and ``fkhls.faults.sampling``), or the single bits
    ``model_bits`` one at a time in that order (``ordered``: ``fkhls campaign --order``, a ranking's top N)."""

    mode: str  # "exhaustive" | "ber" | "sampled" | "ordered"
    layers: tuple[str, ...] | None = None  # None = every layer with quantized tensors
    tensors: tuple[str, ...] | None = None  # None = every fault-target array (kernel, bias, scale ...)
    bits: tuple[int, ...] | None = None  # exhaustive/sampled: bit positions (from the LSB) kept
    ber: float | None = None
    trials: int | None = None
    seed: int | None = None
    # sampled only (left out of campaign.json when None, so older campaigns keep their identity):
    confidence: float | None = None
    margin: float | None = None
    per: str | None = None  # fkhls.faults.sampling.PER
    prior: float | None = None  # expected rate p of the sample-size formula (None: 0.5, the worst case)
    model_bits: tuple[int, ...] | None = None  # ordered only: single bits in this order (a ranking's top N)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FkhlsError(f"campaign mode {self.mode!r} is not valid; valid modes: {list(MODES)}")
        if (self.mode == "ordered") != (self.model_bits is not None):
            raise FkhlsError("an ordered campaign (--order RANKING.csv) and only it takes a list of model bits")
        if self.mode == "ordered" and (self.layers is not None or self.bits is not None or self.ber is not None):
            raise FkhlsError("--order runs the ranking's top bits; --layers, --bits and --ber do not apply")
        if self.mode == "ordered" and len(set(self.model_bits)) != len(self.model_bits):
            raise FkhlsError("an ordered campaign lists each model bit once")
        if self.mode == "ber" and (self.ber is None or self.trials is None or self.seed is None):
            raise FkhlsError("a BER campaign needs --ber RATE, --trials N and --seed S")
        if self.mode != "ber" and self.ber is not None:
            raise FkhlsError("--ber is for BER campaigns; an exhaustive or sampled campaign flips one bit at a time")
        if self.mode == "ber" and self.bits is not None:
            raise FkhlsError("--bits selects bit positions of a sampled or exhaustive campaign only")
        if self.mode != "sampled" and any(v is not None for v in (self.margin, self.per, self.prior)):
            raise FkhlsError("--margin, --per and --prior describe a sampled campaign only")
        if self.mode != "sampled" and self.confidence is not None:  # the BER intervals, the --csim-sample bound
            from fkhls.campaign.statistics import check_confidence

            check_confidence(self.confidence, "confidence")
        if self.mode == "sampled":
            from fkhls.campaign.statistics import check_confidence
            from fkhls.faults.sampling import PER

            if self.confidence is None or self.margin is None or self.seed is None:
                raise FkhlsError("a sampled campaign needs --confidence C, --margin E and --seed S")
            check_confidence(self.confidence, "confidence")
            check_confidence(self.margin, "margin")
            if self.prior is not None:
                check_confidence(self.prior, "prior")
            if self.per not in PER:
                raise FkhlsError(f"--per {self.per!r} is not valid; valid values: {list(PER)}")


@dataclass(frozen=True)
class CampaignConfig:
    """Everything that defines a campaign's results (the worker count does not)."""

    project_dir: Path
    inputs: Path
    engine: str  # tf | csim | both
    selection: Selection
    labels: Path | None = None
    shard_size: int | None = None  # None: ``default_shard_size`` of the inputs and outputs
    # engine "both" only: the C-sim engine cross-checks a seeded sample of this many of the selected
    # faults (the TF engine runs all); None = every fault through both engines.
    csim_sample: int | None = None
    csim_seed: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise FkhlsError(f"engine {self.engine!r} is not valid; valid engines: {list(ENGINES)}")
        if self.shard_size is not None and self.shard_size < 1:
            raise FkhlsError(f"shard size {self.shard_size} must be >= 1")
        if self.csim_sample is not None:
            if self.engine != "both":
                raise FkhlsError(f"--csim-sample cross-checks the TF engine's faults in C-sim: it needs --engine "
                                 f"both, not {self.engine!r}")
            if isinstance(self.csim_sample, bool) or int(self.csim_sample) < 1:
                raise FkhlsError(f"--csim-sample {self.csim_sample!r} must be >= 1")
            if self.csim_seed is None or int(self.csim_seed) < 0:
                raise FkhlsError("--csim-sample N needs --seed S (>= 0): the sample is drawn from the seed")

    @property
    def engines(self) -> tuple[str, ...]:
        return ("tf", "csim") if self.engine == "both" else (self.engine,)


@dataclass(frozen=True)
class CampaignResult:
    """What ``run_campaign`` did; ``table`` (every row in memory) is read from the shards when first asked for."""

    results_dir: Path
    finished: bool  # every shard is on disk
    identity: dict
    shards_total: int
    shards_run: int  # computed in this call (the rest were already on disk)
    seconds: float
    reports: dict = field(default_factory=dict)

    @functools.cached_property
    def table(self) -> FaultTable | None:
        """The whole results table (``load_results``), or None while the campaign is unfinished."""
        return load_results(self.results_dir) if self.finished else None


# ----------------------------------------------------------------------------- what the campaign is


def campaign_confidence(selection: Selection) -> float:
    """The confidence of every interval and bound the campaign reports: ``--confidence``, else the default."""
    from fkhls.campaign.statistics import DEFAULT_CONFIDENCE

    return DEFAULT_CONFIDENCE if selection.confidence is None else float(selection.confidence)




def project_hash(project_dir: Path) -> str:
    """sha256 over the manifest, the top function and every weight file: changes when the hardware does."""
    project_dir = Path(project_dir)
    digest = hashlib.sha256((project_dir / MANIFEST_NAME).read_bytes())
    firmware = project_dir / "firmware"
    paths = sorted([*firmware.glob("*.cpp"), *firmware.glob("*.h"), *(firmware / "weights").glob("*")])
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(firmware)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def campaign_identity(config: CampaignConfig, manifest: Manifest, n_samples: int, n_scenarios: int) -> dict:
    """The ``campaign.json`` content; two runs with equal identities compute equal shards."""
    sel = config.selection
    seeds = {"ber_trials": sel.seed} if sel.mode == "ber" else {}
    if sel.mode == "sampled":
        seeds["stratified_draw"] = sel.seed
    extra = {}
    if config.csim_sample is not None:
        seeds["csim_sample"] = int(config.csim_seed)
        chunk = csim_chunk_size(int(config.csim_sample), int(config.shard_size))
        extra.update(csim_sample=int(config.csim_sample), csim_chunk=chunk,
                     csim_shards=math.ceil(int(config.csim_sample) / chunk))
    selection = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(sel).items()
                 if not (k in _OPTIONAL_FIELDS and v is None)}  # older campaign.json files still match
    if sel.tensors is None:  # every array: recorded as FKeras's two names then the model's others (as before)
        from fkhls.faults.addressing import spec_from_manifest

        names = tensor_names(spec_from_manifest(manifest))
        selection["tensors"] = [*TENSORS, *(n for n in names if n not in TENSORS)]
    return {
        "schema": SCHEMA,
        "fkhls_version": __version__,
        "project": str(Path(config.project_dir).resolve()),
        "project_hash": project_hash(config.project_dir),
        "model_hash": manifest.model_hash,
        "inputs": str(Path(config.inputs).resolve()),
        "inputs_hash": sha256_file(Path(config.inputs)),
        "labels": str(Path(config.labels).resolve()) if config.labels else None,
        "labels_hash": sha256_file(Path(config.labels)) if config.labels else None,
        "n_samples": int(n_samples),
        "engine": config.engine,
        "selection": selection,
        "seeds": seeds,
        **extra,
        "shard_size": int(config.shard_size),
        "n_scenarios": int(n_scenarios),
        "n_shards": math.ceil(n_scenarios / config.shard_size),
    }


# Keys whose difference means a different campaign (paths may move; contents may not).
_IDENTITY_KEYS = ("schema", "project_hash", "inputs_hash", "labels_hash", "n_samples", "engine", "selection", "seeds",
                  "shard_size", "n_scenarios", "csim_sample", "csim_chunk")
_SAMPLED_FIELDS = ("confidence", "margin", "per", "prior")
_OPTIONAL_FIELDS = (*_SAMPLED_FIELDS, "model_bits")


def _differences(old: dict, new: dict) -> list[str]:
    return [f"{key}: on disk {old.get(key)!r}, asked {new.get(key)!r}" for key in _IDENTITY_KEYS
            if old.get(key) != new.get(key)]


# A default shard size also leaves at least MIN_SHARDS shards, so that workers share a small campaign evenly
# (7 shards on 2 workers would idle one for a seventh of the run), but never goes below MIN_SHARD_SIZE faults,
# which keeps a shard's fixed costs (a C-sim harness start and its golden pass) small beside its work.
MIN_SHARDS = 16
MIN_SHARD_SIZE = 256


def default_shard_size(n_samples: int, n_outputs: int, n_scenarios: int | None = None) -> int:
    """Scenarios per shard when none is given: a function of the data and the fault list only (a power of two),
    and a resumed campaign keeps the size its ``campaign.json`` recorded."""
    fits = max(1, SHARD_WORDS // max(1, n_samples * n_outputs))
    size = min(4096, 1 << (fits.bit_length() - 1))
    if n_scenarios is not None:
        even = max(1, -(-int(n_scenarios) // MIN_SHARDS))
        size = min(size, max(MIN_SHARD_SIZE, 1 << (even.bit_length() - 1)))
    return int(size)


# --csim-sample: the sampled faults run in C-sim shards of at most a shard's size (the same memory bound), at least
# MIN_CSIM_CHUNK faults each (a C-sim process start and its golden pass stay small beside the faults), and into
# about MIN_SHARDS of them when the sample is large enough, so the workers share them evenly.
MIN_CSIM_CHUNK = 32


def csim_chunk_size(n_sampled: int, shard_size: int) -> int:
    """Sampled faults per C-sim shard: a function of the sample size and the shard size only (not the workers)."""
    return int(max(1, min(int(shard_size), max(MIN_CSIM_CHUNK, -(-int(n_sampled) // MIN_SHARDS)))))


class ScenarioList(LazySequence):
    """Single-bit scenarios of the population faults ``chosen`` (all by default), made only when read.

    A campaign's scenario list is never whole in memory: the driver keeps this (8 to 16 bytes per
    fault), a worker receives only its shard's scenarios (``ShardTask``)."""

    def __init__(self, population: Sequence, chosen: np.ndarray | None = None):
        self.population = population
        self.chosen = chosen

    def __len__(self) -> int:
        return len(self.population) if self.chosen is None else len(self.chosen)

    noun = "scenario"

    def _item(self, i: int) -> FaultScenario:
        f = self.population[i if self.chosen is None else int(self.chosen[i])]
        return FaultScenario(f"{f.layer}.{f.tensor}[lbi={f.lbi}]", (f,))


@dataclass(frozen=True)
class SampleDesign:
    """A single-bit campaign as a sample of its population (``exhaustive_faults`` of the selection).

    An exhaustive campaign is the design with one stratum measured whole; a sampled one draws
    ``sizes[h]`` faults of stratum ``h`` (Leveugle's formula per stratum, at least 2 where the
    stratum has 2, so every stratum has a variance).
    """

    population: Sequence  # BitFaults in model-bit order (a compact descriptors.FaultList)
    strata: tuple  # fkhls.faults.sampling.Stratum per stratum
    owner: np.ndarray  # stratum index of each population fault
    sizes: tuple[int, ...]
    chosen: np.ndarray  # population indices measured, sorted

    def scenarios(self) -> "ScenarioList":
        """The measured faults as single-bit scenarios, in population (model-bit) order (made when read)."""
        return ScenarioList(self.population, self.chosen)

    def notes(self, selection: Selection) -> dict:
        """What ``fkhls.campaign.report`` needs: the design's parameters, strata and cell populations."""
        cells: dict[str, dict[int, int]] = {}
        for fault in self.population:
            row = cells.setdefault(f"{fault.layer} {fault.tensor}", {})
            row[fault.bit] = row.get(fault.bit, 0) + 1
        prior = selection.prior if selection.prior is not None else 0.5
        return {
            "mode": selection.mode,
            "per": selection.per if selection.mode == "sampled" else None,
            "confidence": selection.confidence,
            "margin": selection.margin,
            "prior": prior if selection.mode == "sampled" else None,
            "seed": selection.seed if selection.mode == "sampled" else None,
            "population": len(self.population),
            "sample": int(len(self.chosen)),
            "strata": [{"label": st.label, "population": st.population, "sample": int(n)}
                       for st, n in zip(self.strata, self.sizes)],
            "cell_population": cells,
        }


def sample_design(spec, selection: Selection) -> SampleDesign:
    """The population, strata and seeded draw of an exhaustive or sampled ``selection`` (deterministic)."""
    from fkhls.campaign.statistics import sample_size
    from fkhls.faults.sampling import stratified_draw, strata_of

    faults = exhaustive_fault_list(spec, selection.layers, selection.tensors, selection.bits)
    if selection.mode == "exhaustive":
        strata, owner = strata_of(faults, "model")
        return SampleDesign(faults, strata, owner, (len(faults),), np.arange(len(faults), dtype=np.int64))
    if selection.mode != "sampled":
        raise FkhlsError(f"a {selection.mode!r} campaign has no sample design")
    strata, owner = strata_of(faults, selection.per)
    prior = 0.5 if selection.prior is None else selection.prior
    sizes = tuple(max(min(2, st.population), sample_size(st.population, selection.confidence, selection.margin,
                                                           prior)) for st in strata)
    chosen = stratified_draw(owner, sizes, int(selection.seed))
    return SampleDesign(faults, strata, owner, sizes, chosen)


def campaign_scenarios(spec, selection: Selection) -> Sequence[FaultScenario]:
    """The campaign's ordered scenario list (deterministic: model-bit order, or trials 0..N-1 of the seed);
    single-bit selections come as a compact ``ScenarioList``."""
    if selection.mode == "ordered":  # a ranking's top bits, one at a time, in its order
        faults = [fault_from_model_bit(spec, int(b)) for b in selection.model_bits]
        return [FaultScenario(f"{f.layer}.{f.tensor}[lbi={f.lbi}]", (f,)) for f in faults]
    if selection.mode == "exhaustive":
        return ScenarioList(exhaustive_fault_list(spec, selection.layers, selection.tensors, selection.bits))
    if selection.mode == "sampled":
        return sample_design(spec, selection).scenarios()
    return random_ber_scenarios(spec, float(selection.ber), int(selection.trials), int(selection.seed),
                                selection.layers, selection.tensors)


# ----------------------------------------------------------------------------- per-shard arithmetic


def fault_metrics(golden: np.ndarray, outputs: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-scenario effect of faulty output words ``outputs`` (F, N, O) against ``golden`` (N, O).

    Counts are over all samples; top-1 is numpy's argmax (first maximum) of the raw words;
    ``correct`` (with labels) is the number of samples whose top-1 equals the label.
    """
    words = int(np.prod(outputs.shape[1:]))  # explicit: a shard where --csim-sample drew no fault has F = 0
    diff = outputs != golden[None]
    err = np.abs(outputs - golden[None]).reshape(len(outputs), words)
    top1 = outputs.argmax(axis=2)
    out = {
        "outputs_changed": diff.reshape(len(outputs), words).sum(axis=1).astype(np.int64),
        "samples_changed": diff.any(axis=2).sum(axis=1).astype(np.int64),
        "max_abs_error_lsb": err.max(axis=1, initial=0).astype(np.int64),
        "top1_changed": (top1 != golden.argmax(axis=1)[None]).sum(axis=1).astype(np.int64),
    }
    if labels is not None:
        out["correct"] = (top1 == labels[None]).sum(axis=1).astype(np.int64)
    return out


def engine_agreement(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Per scenario: output words where two engines differ (0 = bit-exact), the largest difference in
    LSBs, and the first sample with a difference (-1 when none)."""
    words = int(np.prod(a.shape[1:]))
    differs = a != b
    if not differs.any():  # the usual case, bit-exact: no arithmetic on the words
        return {"mismatched_words": np.zeros(len(a), dtype=np.int64), "max_lsb_diff": np.zeros(len(a), dtype=np.int64),
                "first_mismatch_sample": np.full(len(a), -1, dtype=np.int64)}
    per_sample = differs.any(axis=2)
    first = np.where(per_sample.any(axis=1), per_sample.argmax(axis=1), -1)
    return {
        "mismatched_words": differs.reshape(len(a), words).sum(axis=1).astype(np.int64),
        "max_lsb_diff": np.abs(a - b).reshape(len(a), words).max(axis=1, initial=0).astype(np.int64),
        "first_mismatch_sample": first.astype(np.int64),
    }


def csim_engine(manifest: Manifest) -> tuple[Any, str]:
    """(ConePlan, name) of the C-sim campaign engine: the cone harness when its plan supports the project, else
    the reference harness. Planned once per campaign; ``_build_csim_engine`` compiles from the same plan."""
    from fkhls.csim.cone import cone_plan

    plan = cone_plan(manifest)
    return plan, "cone" if plan.supported else f"harness ({plan.reason})"


@dataclass
class _State:
    """What a worker needs, sent once per worker process (picklable; no TensorFlow objects, no fault list:
    each shard's scenarios travel with its ``ShardTask``, so a worker's memory does not grow with the campaign)."""

    project_dir: Path
    engines: tuple[str, ...]
    shard_dir: Path
    x_raw: np.ndarray  # (N, n_in)
    labels: np.ndarray | None
    golden: dict  # engine -> (N, O) raw words
    spec: Any = None  # ModelSpec (tf engine)
    weights: Any = None  # golden raw weights (tf engine)
    manifest: Manifest | None = None
    csim_binary: Any = None  # CsimBinary of the C-sim engine, compiled once by run_campaign
    csim_cone: bool = False  # that binary is the cone harness (else the reference harness)
    csim_sampled: bool = False  # --csim-sample: the C-sim engine runs only in the C-sim shards
    address_map: Any = None  # fkhls.faults.addressing.AddressMap, made by the worker on its first C-sim shard


@dataclass(frozen=True)
class ShardTask:
    """One shard as sent to a worker: its index, first scenario and its own scenarios (not the whole list)."""

    index: int  # unit of work: shards 0..n_shards-1, then the C-sim shards (n_shards + part): a unique task key
    lo: int
    scenarios: tuple[FaultScenario, ...]
    # A C-sim shard of --csim-sample (``csim_part`` j): the campaign indices of its sampled ``scenarios``.
    csim_rows: np.ndarray | None = None
    csim_part: int | None = None


def shard_tasks(scenarios: Sequence[FaultScenario], pending: Sequence[int], shard_size: int,
                csim_rows: np.ndarray | None = None, csim_pending: Sequence[int] = (), csim_chunk: int = 0):
    """Yield the ``ShardTask`` of each pending shard, made only when the executor asks for it.

    ``csim_rows`` (--csim-sample): the sorted sampled scenario indices; C-sim shard j runs rows
    ``j*csim_chunk .. (j+1)*csim_chunk - 1`` of it. The pending C-sim shards are spread evenly among the
    other shards, so every worker gets its share of them and the progress keeps moving."""
    n_shards = -(-len(scenarios) // shard_size)
    csim_pending = list(csim_pending)
    # C-sim shard i goes before the (i * P // C)-th of the P other pending shards (C: pending C-sim shards).
    before = [i * len(pending) // len(csim_pending) for i in range(len(csim_pending))]
    j = 0
    for k, index in enumerate(pending):
        while j < len(csim_pending) and before[j] <= k:
            yield _csim_task(scenarios, csim_rows, csim_chunk, csim_pending[j], n_shards)
            j += 1
        lo = index * shard_size
        hi = min(lo + shard_size, len(scenarios))
        yield ShardTask(index, lo, tuple(scenarios[lo:hi]))
    for part in csim_pending[j:]:
        yield _csim_task(scenarios, csim_rows, csim_chunk, part, n_shards)


def _csim_task(scenarios: Sequence[FaultScenario], csim_rows: np.ndarray, chunk: int, part: int,
               n_shards: int) -> ShardTask:
    """The task of C-sim shard ``part``: sampled rows ``part*chunk ..`` with their scenarios."""
    rows = np.asarray(csim_rows[part * chunk:(part + 1) * chunk], dtype=np.int64)
    return ShardTask(n_shards + part, -1, tuple(scenarios[int(r)] for r in rows), rows, part)


_WORKER: _State | None = None


def _init_worker(state: _State, campaign_pid: int | None = None) -> None:
    global _WORKER
    if campaign_pid is not None:  # exit with the campaign, even after kill -9 (fkhls.campaign.lifecycle)
        from fkhls.campaign.lifecycle import install

        install(campaign_pid)
    _WORKER = state


def _tf_outputs(state: _State, scenarios: Sequence[FaultScenario]) -> np.ndarray:
    from fkhls.emulate.emulator import apply_faults, evaluate_single_bit_faults, forward_raw

    spec = state.spec
    n = state.x_raw.shape[0]
    x = state.x_raw.reshape(n, *spec.input_shape)
    if all(len(s.faults) == 1 for s in scenarios):
        out = evaluate_single_bit_faults(spec, state.weights, x, [s.faults[0] for s in scenarios])
    else:
        out = np.stack([forward_raw(spec, apply_faults(spec, state.weights, s.faults), x) for s in scenarios])
    return out.reshape(len(scenarios), n, -1)


def _csim_outputs(state: _State, scenarios: Sequence[FaultScenario]) -> np.ndarray:
    """C-sim output words of ``scenarios`` (F, N, O), one harness process for them all."""
    from fkhls.csim.cone import run_cone_harness
    from fkhls.csim.harness import run_fault_harness
    from fkhls.faults.addressing import address_map

    if state.manifest is None:
        state.manifest = load_manifest(state.project_dir)
    if state.address_map is None:
        state.address_map = address_map(state.manifest)
    hw = _hardware_bits(state.address_map, scenarios) if scenarios else []
    if not hw:
        return np.zeros((0, state.x_raw.shape[0], state.golden["csim"].shape[1]), dtype=np.int64)
    run = run_cone_harness if state.csim_cone else run_fault_harness
    out = run(state.manifest, state.x_raw, [list(h) for h in hw], workers=1, binary=state.csim_binary)
    return np.asarray(out).reshape(len(hw), state.x_raw.shape[0], -1)


# Stream of the --csim-sample draw: distinct from the stratified draw's ([seed, stratum]) streams.
_CSIM_STREAM = 0x43534D


def csim_sample_rows(n_scenarios: int, size: int, seed: int) -> np.ndarray:
    """The sorted scenario indices the C-sim engine cross-checks under ``--csim-sample size --seed seed``."""
    if not 1 <= int(size) <= n_scenarios:
        raise FkhlsError(f"--csim-sample {size} is outside the valid range 1..{n_scenarios} (the selected faults)")
    rng = np.random.default_rng([int(seed), _CSIM_STREAM])
    return np.sort(rng.choice(n_scenarios, size=int(size), replace=False)).astype(np.int64)


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """A column of ``n`` rows holding ``values`` at ``rows`` and -1 (not run) elsewhere."""
    out = np.full(n, -1, dtype=values.dtype)
    out[rows] = values
    return out


def shard_path(shard_dir: Path, index: int) -> Path:
    return shard_file(shard_dir, index)


def _run_shard(task: ShardTask, state: _State | None = None) -> tuple[int, int, int, dict]:
    """Compute the shard of ``task`` and write it atomically; returns (index, scenarios, mismatching, seconds).

    A C-sim shard of --csim-sample counts 0 scenarios (its faults are counted by the shards the TF engine runs)."""
    state = state or _WORKER
    if task.csim_part is not None:
        return _run_csim_shard(task, state)
    index, lo, scenarios = task.index, task.lo, task.scenarios
    hi = lo + len(scenarios)
    columns: dict[str, np.ndarray] = {"scenario": np.arange(lo, hi, dtype=np.int64)}
    # --csim-sample: the C-sim engine runs the sampled faults in the C-sim shards, not here.
    engines = ("tf",) if state.csim_sampled else state.engines
    mismatching, seconds = _engine_columns(state, scenarios, engines, engines, columns)
    write_shard(shard_path(state.shard_dir, index), columns)
    return index, hi - lo, mismatching, seconds


def _engine_columns(state: _State, scenarios: Sequence[FaultScenario], engines: Sequence[str],
                    measured: Sequence[str], columns: dict) -> tuple[int, dict]:
    """Run ``scenarios`` through ``engines`` (timed), add the fault metrics of the ``measured`` engines, the
    engines' word-by-word agreement when both ran, and the seconds to ``columns``; returns (mismatching, seconds)."""
    outputs, seconds = {}, {}
    for engine in engines:
        start = time.perf_counter()
        outputs[engine] = _tf_outputs(state, scenarios) if engine == "tf" else _csim_outputs(state, scenarios)
        seconds[engine] = time.perf_counter() - start
    for engine in measured:
        for key, value in fault_metrics(state.golden[engine], outputs[engine], state.labels).items():
            columns[f"{engine}_{key}"] = value
    mismatching = 0
    if len(engines) == 2:
        agree = engine_agreement(outputs["tf"], outputs["csim"])
        mismatching = int(np.count_nonzero(agree["mismatched_words"]))
        columns.update(agree)
    for engine, value in seconds.items():
        columns[f"seconds_{engine}"] = np.float64(value)
    return mismatching, seconds


def _run_csim_shard(task: ShardTask, state: _State) -> tuple[int, int, int, dict]:
    """A chunk of the --csim-sample faults through both engines, one C-sim process for the chunk: the C-sim
    columns and the engines' agreement (the TF columns of these faults are in their own shards)."""
    columns: dict[str, np.ndarray] = {"scenario": np.asarray(task.csim_rows, dtype=np.int64)}
    # The TF engine runs these faults again for the word-by-word comparison only (its metrics are in its shards).
    mismatching, seconds = _engine_columns(state, task.scenarios, ("tf", "csim"), ("csim",), columns)
    write_shard(csim_shard_file(state.shard_dir, task.csim_part), columns)
    return task.index, 0, mismatching, seconds


# ----------------------------------------------------------------------------- the driver


def load_labels(path: str | Path, n: int) -> np.ndarray:
    """Class indices (or one-hot rows, reduced to indices), one per input sample, as int64."""
    labels = load_array(path, "labels")
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)  # one-hot
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.number):
        raise FkhlsError(f"labels {str(path)!r} have shape {labels.shape}; expected ({n},) class indices or "
                         f"({n}, classes) one-hot, one per input sample")
    return labels.astype(np.int64)


def _recorded_shard_size(results_dir: Path) -> int | None:
    """The shard size of the campaign already in ``results_dir`` (resuming keeps its shards), or None."""
    try:
        return int(json.loads((results_dir / CAMPAIGN_JSON).read_text())["shard_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _prepare_dir(results_dir: Path, identity: dict, force: bool) -> None:
    """Create or check the results directory; ``force`` removes only the files a campaign writes."""
    results_dir.mkdir(parents=True, exist_ok=True)
    header = results_dir / CAMPAIGN_JSON
    if header.is_file() and not force:
        try:
            old = json.loads(header.read_text())
        except json.JSONDecodeError as exc:
            raise CampaignMismatchError(f"{header} is unreadable ({exc}); pass --force to start over") from exc
        diffs = _differences(old, identity)
        if diffs:
            raise CampaignMismatchError(
                f"{results_dir} holds a different campaign ({'; '.join(diffs)}); use another results directory, "
                "or pass --force to discard it and start over")
        (results_dir / SHARD_DIR).mkdir(exist_ok=True)
        for stale in (results_dir / SHARD_DIR).glob(".shard-*"):  # temporary files left by a killed worker
            stale.unlink(missing_ok=True)
        return
    if not header.is_file() and not force and (results_dir / SHARD_DIR).is_dir():
        raise CampaignMismatchError(f"{results_dir} has shards but no {CAMPAIGN_JSON}; pass --force to start over")
    if force:
        shutil.rmtree(results_dir / SHARD_DIR, ignore_errors=True)
        for name in OUTPUT_FILES:
            (results_dir / name).unlink(missing_ok=True)
    (results_dir / SHARD_DIR).mkdir(exist_ok=True)
    atomic_write_text(header, json.dumps(identity, indent=2) + "\n")


def _hardware_bits(amap, scenarios: Sequence[FaultScenario]) -> list[tuple]:
    """Per scenario, the (array, element, array_bit) of each of its bits (``AddressMap.map_faults``)."""
    flat = [f for s in scenarios for f in s.faults]
    mapped = amap.map_faults(flat)
    out, k = [], 0
    for s in scenarios:
        bits = mapped[k:k + len(s.faults)]
        k += len(s.faults)
        missing = [b for b in bits if b.array_bit is None]
        if missing:
            raise FkhlsError(f"scenario {s.name!r}: {missing[0].note}")
        out.append(tuple((b.array, b.element, b.array_bit) for b in bits))
    return out


def _check_hardware_bits(manifest: Manifest, scenarios: Sequence[FaultScenario]) -> None:
    """Refuse, before anything runs, a fault bit without a hardware bit (whether it has one depends only on its
    tensor and bit position, so one bit of each distinct (layer, tensor, bit) is mapped, not every fault)."""
    from fkhls.faults.addressing import address_map
    from fkhls.faults.descriptors import BitFault

    amap = address_map(manifest)
    first: dict[tuple, FaultScenario] = {}
    for scenario in scenarios:
        for f in scenario.faults:
            first.setdefault((f.layer, f.tensor, f.bit, f.width), scenario)
    for (layer, tensor, bit, width), scenario in first.items():
        mapped = amap.map_faults([BitFault(layer, tensor, width - 1 - bit, width)])[0]
        if mapped.array_bit is None:
            raise FkhlsError(f"scenario {scenario.name!r}: {mapped.note}")


def _tf_model(manifest: Manifest):
    """(ModelSpec, golden weights) of the project's model copy: the only place TensorFlow is needed."""
    from fkhls.emulate.emulator import golden_weights
    from fkhls.model.spec import describe_model, load_keras_model

    model = load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_type["cpp"], **manifest.describe_options)
    return spec, golden_weights(model, spec)


def _golden(state: _State, manifest: Manifest) -> dict:
    """Golden raw output words (N, O) per engine (the C-sim's from the reference harness, one empty scenario)."""
    golden = {}
    n = state.x_raw.shape[0]
    if "tf" in state.engines:
        from fkhls.emulate.emulator import forward_raw

        golden["tf"] = forward_raw(state.spec, state.weights, state.x_raw.reshape(n, *state.spec.input_shape)
                                   ).reshape(n, -1)
    if "csim" in state.engines:  # the empty scenario through the shards' binary (the cone's also saves its golden
        from fkhls.csim.cone import run_cone_harness  # activations for the shards: fkhls.csim.cone.golden_file)
        from fkhls.csim.harness import run_fault_harness

        run = run_cone_harness if state.csim_cone else run_fault_harness
        golden["csim"] = np.asarray(run(manifest, state.x_raw, [[]], binary=state.csim_binary))[0]
    return golden


def _progress(total: int, initial: int, quiet: bool):
    from fkhls.core.progress import progress_bar

    return progress_bar(total, "campaign", "fault", enabled=not quiet, initial=initial)


def run_campaign(config: CampaignConfig, results_dir: str | Path, *, workers: int | None = None, force: bool = False,
                 quiet: bool = False, report: bool = True, max_shards: int | None = None,
                 arrays: dict[str, np.ndarray] | None = None,
                 scheduler: str | None = None) -> CampaignResult:
    """Run (or resume) a campaign into ``results_dir``; see the module docstring.

    ``workers``: processes of the local pool (default ``os.cpu_count()``; 1 = in this process).
    ``max_shards``: stop after computing that many new shards (for tests and partial runs).
    ``arrays``: in-memory inputs/labels (the Python API) saved as ``{name}.npy`` in the results
    directory once it passed the rule, so the same call resumes; ``config`` names those files.
    ``scheduler``: where shards run: ``local-pool`` (default), ``dask-local`` (a LocalCluster of
    ``workers`` processes) or a Dask scheduler address (``fkhls.campaign.dask_engine``).
    The results directory must be new, empty or a campaign's (the rule of ``fkhls.core.files``:
    never the project, never a directory of other files, ``force`` or not); it is locked for
    the run, so a second campaign there is refused instead of deleting the running one's shards.
    """
    if scheduler is not None:
        from fkhls.campaign.dask_engine import check_scheduler

        check_scheduler(scheduler)
    results_dir = Path(results_dir)
    classify_output_dir(results_dir, "results directory", owner=CAMPAIGN, golden=config.project_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    with directory_lock(results_dir, "results directory"):
        for name, array in (arrays or {}).items():
            _save_array(array, results_dir / f"{name}.npy", force)
        return _run_locked(config, results_dir, workers=workers, force=force, quiet=quiet, report=report,
                           max_shards=max_shards, scheduler=scheduler)


def _save_array(array: np.ndarray, path: Path, force: bool) -> None:
    """Save an in-memory input array of the campaign; an existing file with other data needs ``force``."""
    array = np.asarray(array)
    if path.is_file():
        try:
            same = np.array_equal(np.load(path, allow_pickle=False), array)
        except (OSError, ValueError):
            same = False
        if same:
            return
        if not force:
            raise FkhlsError(f"{str(path)!r} exists and holds other data; pass force=True to replace it")
    atomic_save_npy(path, array)


def _run_locked(config: CampaignConfig, results_dir: Path, *, workers: int | None, force: bool, quiet: bool,
                report: bool, max_shards: int | None, scheduler: str | None = None) -> CampaignResult:
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.csim.build import input_words

    started = time.perf_counter()
    results_dir = Path(results_dir)
    manifest = load_manifest(config.project_dir)
    if manifest.hardening and "tf" in config.engines:
        raise FkhlsError(f"{str(config.project_dir)!r} is a hardened (TMR) project: the TF engine does not model its "
                         "vote and would report masked faults as damage; run it with --engine csim")
    x = load_array(config.inputs, "inputs")
    x_raw = input_words(manifest, x, what=f"inputs {config.inputs}")
    labels = load_labels(config.labels, x_raw.shape[0]) if config.labels is not None else None
    design = sample_design(spec_from_manifest(manifest), config.selection) \
        if config.selection.mode == "sampled" else None
    scenarios = design.scenarios() if design else campaign_scenarios(spec_from_manifest(manifest), config.selection)
    if not scenarios:
        raise FkhlsError("the fault selection is empty: no scenario to run")
    if config.csim_sample is not None:  # checked before anything is written
        csim_rows = csim_sample_rows(len(scenarios), config.csim_sample, config.csim_seed)
    if config.shard_size is None:
        recorded = None if force else _recorded_shard_size(results_dir)
        config = replace(config, shard_size=recorded or default_shard_size(
            x_raw.shape[0], int(np.prod(manifest.output_shape)), len(scenarios)))
    identity = campaign_identity(config, manifest, x_raw.shape[0], len(scenarios))
    if design is not None:  # recorded, not compared: the selection (with its seed) already determines it
        identity["strata"] = [{"label": st.label, "population": st.population, "sample": int(n)}
                              for st, n in zip(design.strata, design.sizes)]
    _prepare_dir(results_dir, identity, force)
    shard_dir = results_dir / SHARD_DIR
    n_shards = identity["n_shards"]
    pending = [i for i in range(n_shards) if not shard_path(shard_dir, i).is_file()]
    done_before = len(scenarios) - sum(min(config.shard_size, len(scenarios) - i * config.shard_size)
                                       for i in pending)
    n_csim = identity.get("csim_shards", 0)
    csim_pending = [j for j in range(n_csim) if not csim_shard_file(shard_dir, j).is_file()]

    timings: dict[str, float] = {}
    state = _State(Path(config.project_dir).resolve(), config.engines, shard_dir, x_raw, labels, {},
                   csim_sampled=config.csim_sample is not None)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        build = None
        if "csim" in config.engines:
            _check_hardware_bits(manifest, scenarios)
            plan, engine_name = csim_engine(manifest)
            timings["csim_engine"] = engine_name
            state.csim_cone = plan.supported
            # Plan and compile once here, not in every worker; g++ runs while TensorFlow loads (the thread waits on
            # a subprocess, without the GIL).
            build = pool.submit(_build_csim_engine, manifest, plan)
        if "tf" in config.engines:
            state.spec, state.weights = _tf_model(manifest)
        if build is not None:
            state.csim_binary = build.result()
    state.golden = _golden(state, manifest)
    _write_golden(results_dir, state.golden, labels)
    timings["setup_seconds"] = time.perf_counter() - t0

    n_tasks = len(pending) + len(csim_pending)
    if max_shards is not None:
        n_tasks = min(n_tasks, max_shards)
    workers = max(1, int(workers or os.cpu_count() or 1))
    t0 = time.perf_counter()
    with _progress(len(scenarios), done_before, quiet) as bar:
        tasks = itertools.islice(shard_tasks(scenarios, pending, config.shard_size,
                                             csim_rows if config.csim_sample else None, csim_pending,
                                             identity.get("csim_chunk", 0)), n_tasks)
        for _, count, mismatching, _ in _executor(scheduler)(state, tasks, n_tasks, workers):
            bar.update(count)
            if mismatching:
                bar.set_postfix(mismatching=mismatching, refresh=False)
    timings["shards_seconds"] = time.perf_counter() - t0
    timings["workers"] = workers
    timings["scheduler"] = scheduler or "local-pool"

    missing = [i for i in range(n_shards) if not shard_path(shard_dir, i).is_file()]
    missing += [j for j in range(n_csim) if not csim_shard_file(shard_dir, j).is_file()]
    reports = {}
    if not missing and report:
        reports = report_campaign(results_dir, timings=timings)  # streamed from the shards: bounded memory
    return CampaignResult(results_dir, not missing, identity, n_shards + n_csim, n_tasks,
                          time.perf_counter() - started, reports)


def _build_csim_engine(manifest: Manifest, plan) -> Any:
    """Compile the binary the shards run and the golden run uses: the cone harness when the plan allows (its golden
    pass is checked against the top function), else the reference harness."""
    if plan.supported:
        from fkhls.csim.cone import build_cone_harness

        return build_cone_harness(manifest, plan)
    from fkhls.csim.harness import build_harness

    return build_harness(manifest)


def _write_golden(results_dir: Path, golden: dict, labels: np.ndarray | None) -> None:
    arrays = {f"golden_{k}": v for k, v in golden.items()}
    if labels is not None:
        arrays["labels"] = labels
    atomic_savez(results_dir / GOLDEN_NPZ, arrays)


def _executor(scheduler: str | None) -> Callable:
    """The shard executor: the local process pool (default), or Dask (``fkhls.campaign.dask_engine``)."""
    if scheduler in (None, "local-pool"):
        return _execute
    from fkhls.campaign.dask_engine import dask_executor

    return dask_executor(scheduler)


# Shards submitted ahead per worker: enough to keep it busy, few enough that the queue's tasks (each
# carrying its scenarios) stay a small, constant amount of memory.
AHEAD = 2


def _execute(state: _State, tasks, n_tasks: int, workers: int):
    """Yield each shard's (index, scenarios, mismatching, seconds) as it finishes; in-process for one worker.

    ``tasks`` is an iterator of ``ShardTask`` (``n_tasks`` of them), consumed as workers free up."""
    if not n_tasks:
        return
    if workers == 1 or n_tasks == 1:
        for task in tasks:
            yield _run_shard(task, state)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    workers = min(workers, n_tasks)
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                   initargs=(replace(state, manifest=None), os.getpid()))
    try:
        tasks = iter(tasks)
        futures = {executor.submit(_run_shard, task) for task in itertools.islice(tasks, AHEAD * workers)}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            futures |= {executor.submit(_run_shard, task) for task in itertools.islice(tasks, len(finished))}
            for future in finished:
                yield future.result()
    finally:
        # On an error or Ctrl-C: drop queued shards; finished shard files stay (each was written atomically).
        executor.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- reading results back


def _meta_columns(manifest: Manifest, scenarios: Sequence[FaultScenario], where: tuple | None = None
                  ) -> dict[str, np.ndarray]:
    """Where each scenario is: FKeras coordinates and hardware array/element/bit (single-bit rows).

    Vectorized per tensor (``AddressMap.element_bits``): one pass over the scenarios collects two
    integers per row, so a table of a million faults costs its numpy columns, not Python objects."""
    from fkhls.faults.addressing import address_map, spec_from_manifest
    from fkhls.faults.descriptors import lb_index_to_wb_index

    spec, amap = where or (spec_from_manifest(manifest), address_map(manifest))  # (ModelSpec, AddressMap)
    tensors = spec.tensors()
    code = {(t.layer, t.tensor): i for i, t in enumerate(tensors)}
    widths = np.array([t.width for t in tensors], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([t.n_bits for t in tensors])[:-1]]).astype(np.int64)
    n = len(scenarios)
    tcode = np.full(n, -1, dtype=np.int64)
    lbi = np.full(n, -1, dtype=np.int64)
    n_bits = np.empty(n, dtype=np.int64)
    multi: dict[int, FaultScenario] = {}
    for i, scenario in enumerate(scenarios):
        n_bits[i] = len(scenario.faults)
        if len(scenario.faults) == 1:
            fault = scenario.faults[0]
            tcode[i], lbi[i] = code[(fault.layer, fault.tensor)], fault.lbi
        else:
            multi[i] = scenario
    single = tcode >= 0
    flat, bit = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    flat[single], bit[single] = lb_index_to_wb_index(lbi[single], widths[tcode[single]])
    element, array_bit = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    arrays = []
    for k, t in enumerate(tensors):
        rows = np.flatnonzero(tcode == k)
        array, element[rows], array_bit[rows] = amap.element_bits(t.layer, t.tensor, lbi[rows])
        arrays.append(array)
    pick = np.where(single, tcode, 0)

    def text(names: list[str], joined) -> np.ndarray:
        column = np.array(names + [""])[np.where(single, pick, len(names))]
        if multi:
            column = column.astype(object)
            for i, scenario in multi.items():
                column[i] = joined(scenario)
            column = column.astype(str)
        return column

    return {
        "scenario": np.arange(n, dtype=np.int64), "name": np.array([s.name for s in scenarios], dtype=str),
        "n_bits": n_bits,
        "layer": text([t.layer for t in tensors], lambda s: "+".join(dict.fromkeys(f.layer for f in s.faults))),
        "tensor": text([t.tensor for t in tensors], lambda s: "+".join(dict.fromkeys(f.tensor for f in s.faults))),
        "lbi": lbi, "bit": bit, "flat_index": flat,
        "model_bit": np.where(single, offsets[pick] + lbi, -1),
        "array": text(arrays, lambda s: ""), "element": element, "array_bit": array_bit,
    }


@dataclass(frozen=True)
class ResultsView:
    """A finished campaign on disk, read a batch of rows at a time (``batches``): what a report streams over.

    ``header`` is a FaultTable with the campaign's columns, engines and notes but no rows. The view itself
    holds the fault list (a few bytes per fault) and the --csim-sample rows, never a column of every fault."""

    results_dir: Path
    identity: dict
    header: FaultTable
    paths: tuple[Path, ...]
    csim_paths: tuple[Path, ...]
    scenarios: Sequence[FaultScenario]
    stratum: np.ndarray | None  # per scenario (a sampled or exhaustive design; zeros for BER trials)
    manifest: Manifest

    def __len__(self) -> int:
        return len(self.scenarios)

    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[FaultTable]:
        """The campaign's rows in order, as FaultTables of at most ``batch_rows`` rows (with the header's notes)."""
        from fkhls.faults.addressing import address_map, spec_from_manifest

        where = (spec_from_manifest(self.manifest), address_map(self.manifest))
        sampled = _csim_sampled(self.csim_paths, self.identity, len(self)) if self.csim_paths else None
        done = 0
        for results in iter_columns(self.paths, batch_rows=batch_rows):
            lo, hi = done, done + len(results["scenario"])
            if not np.array_equal(results["scenario"], np.arange(lo, hi)):
                raise ProjectError(f"shards in {self.results_dir} do not cover scenarios 0..{len(self) - 1} in order")
            if sampled is not None:
                rows = sampled["scenario"]
                inside = (rows >= lo) & (rows < hi)
                results["csim_checked"] = np.zeros(hi - lo, dtype=bool)
                results["csim_checked"][rows[inside] - lo] = True
                results.update({key: _scatter(value[inside], rows[inside] - lo, hi - lo)
                                for key, value in sampled.items() if key != "scenario"})
            yield self._table(results, lo, hi, where)
            done = hi
        if done != len(self):
            raise ProjectError(f"shards in {self.results_dir} hold {done} of the campaign's {len(self)} scenarios")

    def _table(self, results: dict, lo: int, hi: int, where: tuple) -> FaultTable:
        """Rows ``lo..hi-1`` as the FaultTable columns: coordinates, engine metrics, agreement, stratum."""
        h = self.header
        columns = _meta_columns(self.manifest, self.scenarios[lo:hi], where)
        columns["scenario"] = np.arange(lo, hi, dtype=np.int64)
        golden_correct = h.notes["golden_correct"]
        for engine in h.engines:
            for key in ("outputs_changed", "samples_changed", "max_abs_error_lsb", "top1_changed"):
                columns[f"{engine}_{key}"] = results[f"{engine}_{key}"]
            columns[f"{engine}_max_abs_error"] = results[f"{engine}_max_abs_error_lsb"] * h.output_lsb
            if h.has_labels:
                columns[f"{engine}_accuracy_drop"] = (golden_correct[engine] - results[f"{engine}_correct"]) / \
                    float(h.n_samples)
        if len(h.engines) == 2:
            for key in ("mismatched_words", "max_lsb_diff", "first_mismatch_sample"):
                columns[key] = results[key]
        if self.stratum is not None:
            columns["stratum"] = self.stratum[lo:hi]
        if "csim_checked" in results:  # --csim-sample: C-sim columns hold -1 (NaN for floats) where not run
            checked = results["csim_checked"].astype(bool)
            columns["csim_checked"] = checked
            for key in ("csim_max_abs_error", "csim_accuracy_drop"):
                if key in columns:
                    columns[key] = np.where(checked, columns[key], np.nan)
        return FaultTable(columns, h.engines, h.n_samples, h.n_outputs, h.output_lsb, h.has_labels, h.notes)


def open_results(results_dir: str | Path) -> ResultsView:
    """The finished campaign in ``results_dir`` (every shard must be present), to read batch by batch."""
    from fkhls.faults.addressing import address_map, spec_from_manifest
    from fkhls.core.fixedpoint import lsb

    results_dir = Path(results_dir)
    header = results_dir / CAMPAIGN_JSON
    if not header.is_file():
        raise ProjectError(f"{results_dir} holds no campaign ({CAMPAIGN_JSON} is missing)")
    identity = json.loads(header.read_text())
    paths = [find_shard(results_dir / SHARD_DIR, i) for i in range(identity["n_shards"])]
    csim_paths = [csim_shard_file(results_dir / SHARD_DIR, j) for j in range(identity.get("csim_shards", 0))]
    missing = [f"shard {i}" for i, path in enumerate(paths) if path is None]
    missing += [f"C-sim shard {j}" for j, path in enumerate(csim_paths) if not path.is_file()]
    if missing:
        total = identity["n_shards"] + len(csim_paths)
        raise ProjectError(f"campaign in {results_dir} is unfinished: {len(missing)} of {total} shards "
                           f"missing (first: {missing[0]}); run the same campaign command again to resume")
    manifest = load_manifest(identity["project"])
    spec = spec_from_manifest(manifest)
    selection = Selection(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in identity["selection"].items()})
    design = None
    if selection.mode in ("exhaustive", "sampled"):
        design = sample_design(spec, selection)
        scenarios = design.scenarios()
    else:
        scenarios = campaign_scenarios(spec, selection)
    engines = ("tf", "csim") if identity["engine"] == "both" else (identity["engine"],)
    n = identity["n_samples"]
    has_labels = identity["labels_hash"] is not None
    golden_correct = {}
    if has_labels:
        with np.load(results_dir / GOLDEN_NPZ) as data:
            labels = data["labels"]
            for engine in engines:
                golden_correct[engine] = int((data[f"golden_{engine}"].argmax(axis=1) == labels).sum())
    widths = {f"{r.layer} {r.tensor}": r.width for r in spec.tensors()}
    notes = {"widths": widths, "golden_correct": golden_correct}
    stratum = None
    if design is not None:
        stratum = design.owner[design.chosen]
        notes["design"] = design.notes(selection)
    elif selection.mode == "ber":  # independent trials from an unbounded population of fault patterns
        stratum = np.zeros(len(scenarios), dtype=np.int64)
        notes["design"] = {"mode": "ber", "per": None, "confidence": campaign_confidence(selection), "margin": None,
                           "prior": None, "seed": selection.seed, "population": None, "sample": len(scenarios),
                           "strata": [{"label": "trials", "population": None, "sample": len(scenarios)}],
                           "cell_population": {}}
    sampled = bool(csim_paths) or (identity.get("csim_sample") is not None)
    if sampled:
        checked = identity["csim_sample"] if csim_paths else \
            sum(int(b["csim_checked"].sum()) for b in iter_columns(paths, ["csim_checked"]))
        notes["csim_sample"] = {"faults": int(checked), "of": len(scenarios),
                                "seed": identity["seeds"].get("csim_sample"),
                                "confidence": campaign_confidence(selection)}
    empty = np.zeros(0, dtype=np.int64)
    columns = _meta_columns(manifest, [], (spec, address_map(manifest)))
    for engine in engines:
        for key in ("outputs_changed", "samples_changed", "max_abs_error_lsb", "top1_changed"):
            columns[f"{engine}_{key}"] = empty
        columns[f"{engine}_max_abs_error"] = np.zeros(0)
        if has_labels:
            columns[f"{engine}_accuracy_drop"] = np.zeros(0)
    if len(engines) == 2:
        for key in ("mismatched_words", "max_lsb_diff", "first_mismatch_sample"):
            columns[key] = empty
    if stratum is not None:
        columns["stratum"] = empty
    if sampled:
        columns["csim_checked"] = np.zeros(0, dtype=bool)
    out_type = manifest.output_ptype
    table = FaultTable(columns, engines, n, int(np.prod(manifest.output_shape)), lsb(out_type), has_labels, notes)
    return ResultsView(results_dir, identity, table, tuple(paths), tuple(csim_paths), scenarios, stratum, manifest)


def load_results(results_dir: str | Path) -> FaultTable:
    """The finished campaign in ``results_dir`` as one ``report.FaultTable`` in memory (every shard must be
    present); a report streams ``open_results(...).batches()`` instead."""
    view = open_results(results_dir)
    parts = list(view.batches())
    h = view.header
    if not parts:
        return h
    columns = {key: np.concatenate([p.columns[key] for p in parts]) for key in h.columns}
    return FaultTable(columns, h.engines, h.n_samples, h.n_outputs, h.output_lsb, h.has_labels, h.notes)


def _csim_sampled(csim_paths: Sequence[Path], identity: dict, n: int) -> dict[str, np.ndarray]:
    """The C-sim shards' rows of a --csim-sample campaign (``scenario`` and the C-sim and agreement columns of the
    sampled faults only: a few per cent of the campaign at most), checked against the seeded sample."""
    sampled = read_columns(csim_paths)
    expected = csim_sample_rows(n, identity["csim_sample"], identity["seeds"]["csim_sample"])
    if not np.array_equal(sampled["scenario"], expected):
        raise ProjectError(f"the C-sim shards of {identity.get('project')!r}'s campaign do not hold the seeded "
                           f"sample of {identity['csim_sample']} faults")
    return sampled


def engine_seconds(results_dir: str | Path) -> dict[str, float]:
    """Seconds each engine spent on the shards on disk (summed over shards: one-core seconds)."""
    results_dir = Path(results_dir)
    totals: dict[str, float] = {}
    shard_dir = results_dir / SHARD_DIR
    for path in sorted([*shard_dir.glob("shard-*"), *shard_dir.glob("csim-*")]):
        for engine, seconds in shard_seconds(path).items():
            totals[engine] = totals.get(engine, 0.0) + seconds
    return totals


def report_campaign(results_dir: str | Path, table: FaultTable | None = None, timings: dict | None = None,
                    batch_rows: int = BATCH_ROWS) -> dict:
    """Write summary.json, report.md, heatmap.png, histograms.png, results.parquet and results.csv (streamed
    from the Parquet) for a finished campaign.

    Without ``table``, the shards are streamed ``batch_rows`` rows at a time: each batch goes into the report's
    ``Digest`` (exact integer counts and sums) and into results.parquet, so memory does not grow with the faults,
    and the files equal those made from the whole table in memory."""
    results_dir = Path(results_dir)
    if table is None:
        view = open_results(results_dir)
        digest = Digest.start(view.header)

        def rows() -> Iterator[dict]:
            for batch in view.batches(batch_rows):
                digest.add(batch)
                yield batch.columns

        parquet = write_batches(results_dir / "results.parquet", rows())
    else:
        digest = Digest.of(table)
        parquet = write_table(results_dir / "results.parquet", table.columns)
    table = digest
    identity = json.loads((results_dir / CAMPAIGN_JSON).read_text())
    per_engine = engine_seconds(results_dir)
    if timings is None and (results_dir / "summary.json").is_file():  # re-rendering: keep the run's own timings
        timings = json.loads((results_dir / "summary.json").read_text()).get("timings", {})
    info = {
        "project": identity["project"],
        "mode": identity["selection"]["mode"],
        "selection": {k: (f"{len(v)} bits in ranking order" if k == "model_bits" else v)
                      for k, v in identity["selection"].items() if k != "mode" and v is not None},
        "seeds": identity["seeds"],
        "campaign": identity,
        "golden_accuracy": {e: c / table.n_samples for e, c in table.notes.get("golden_correct", {}).items()},
        "timings": {**{k: v for k, v in (timings or {}).items()},
                    **{f"{e}_engine_seconds": s for e, s in per_engine.items()},
                    **{f"{e}_fault_samples_per_second": table.ran_count(e) * table.n_samples / s
                       for e, s in per_engine.items() if s > 0}},  # --csim-sample: the faults C-sim ran
    }
    title = f"{Path(identity['project']).name}, {identity['selection']['mode']}, engine {identity['engine']}"
    paths = write_report(results_dir, table, info, title, csv=False)
    paths["results_parquet"] = parquet
    paths["results"] = export_csv(parquet, results_dir / "results.csv")
    return paths
