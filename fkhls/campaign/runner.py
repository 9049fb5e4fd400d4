"""Fault campaigns: exhaustive single-bit or seeded-BER, sharded over a process pool, resumable.

A campaign is a deterministically ordered list of fault scenarios (``faults.exhaustive_faults``
in model-bit order, or ``faults.random_ber_scenarios`` drawn from the seed), cut into shards of
``shard_size`` consecutive scenarios. A shard is the unit of work and of storage: a worker runs
it through the engines asked for (``tf``: the exact integer emulator of ``fkhls.emulate.emulator``, pure
numpy; ``csim``: the C-sim fault harness -- the cone harness when the project supports it),
compares the engines' raw output words in memory, reduces them to per-scenario rows and writes
``shards/shard-NNNNN.npz`` atomically. Shard boundaries do not depend on the number of
workers, and a shard's rows depend only on its scenarios, so results are identical for any
worker count and any interruption pattern.

Results directory::

    campaign.json         written first: what the campaign is (hashes of project, inputs and
                          labels; fault selection; seed; engines; shard size; fkhls version)
    golden.npz            golden raw output words per engine (+ labels), kept once
    shards/shard-NNNNN.npz  per-scenario result columns (see ``report.FaultTable``)
    results.csv, summary.json, report.md, heatmap.png, histograms.png   (``fkhls.campaign.report``)

Resume = the same command on the same directory: ``campaign.json`` must match (otherwise
``CampaignMismatchError`` names what differs; ``force=True`` starts over), finished shards are
kept, missing ones are computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fkhls import __version__
from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.faults.descriptors import TENSORS, FaultScenario, exhaustive_faults, model_bit_of, random_ber_scenarios
from fkhls.faults.descriptors import fault_from_model_bit  # ordered campaigns (a ranking's top bits)
from fkhls.core.files import atomic_write_text
from fkhls.project.manifest import MANIFEST_NAME, Manifest, load_manifest
from fkhls.campaign.report import FaultTable, write_report

__all__ = [
    "ENGINES",
    "Selection",
    "CampaignConfig",
    "CampaignResult",
    "CampaignMismatchError",
    "campaign_scenarios",
    "campaign_identity",
    "run_campaign",
    "load_results",
    "report_campaign",
    "fault_metrics",
    "engine_agreement",
    "csim_engine",
    "default_shard_size",
    "engine_seconds",
]

ENGINES = ("tf", "csim", "both")
SCHEMA = 1
# Default shard: the most scenarios (a power of two, at most 4096) whose faulty output words stay
# under ~16 M per engine (~128 MB of int64), so a worker's memory is bounded for any model, and
# the engines' per-call set-up (golden pass, process start) is paid rarely.
SHARD_WORDS = 1 << 24
CAMPAIGN_JSON = "campaign.json"
GOLDEN_NPZ = "golden.npz"
SHARD_DIR = "shards"
# Files a campaign writes (and --force removes); nothing else in the directory is touched.
OUTPUT_FILES = (CAMPAIGN_JSON, GOLDEN_NPZ, "results.csv", "summary.json", "report.md", "heatmap.png",
                "histograms.png")


class CampaignMismatchError(ProjectError):
    """A results directory holds a different campaign than the one asked for."""


@dataclass(frozen=True)
class Selection:
    """Which faults: every single bit of the chosen tensors (``exhaustive``) or ``trials`` seeded BER draws.

    ``ordered``: the single bits ``model_bits`` one at a time in that order (``fkhls campaign --order``).
    """

    mode: str  # "exhaustive" | "ber" | "ordered"
    layers: tuple[str, ...] | None = None  # None = every layer with quantized tensors
    tensors: tuple[str, ...] = TENSORS
    bits: tuple[int, ...] | None = None  # exhaustive only: bit positions (from the LSB) kept
    ber: float | None = None
    trials: int | None = None
    seed: int | None = None
    model_bits: tuple[int, ...] | None = None  # ordered only: single bits in this order (a ranking's top N)

    def __post_init__(self) -> None:
        if self.mode not in ("exhaustive", "ber", "ordered"):
            raise FkhlsError(f"campaign mode {self.mode!r} is not valid; valid modes: ['exhaustive', 'ber', 'ordered']")
        if (self.mode == "ordered") != (self.model_bits is not None):
            raise FkhlsError("an ordered campaign (--order RANKING.csv) and only it takes a list of model bits")
        if self.mode == "ordered" and (self.layers is not None or self.bits is not None or self.ber is not None):
            raise FkhlsError("--order runs the ranking's top bits; --layers, --bits and --ber do not apply")
        if self.mode == "ordered" and len(set(self.model_bits)) != len(self.model_bits):
            raise FkhlsError("an ordered campaign lists each model bit once")
        if self.mode == "ber" and (self.ber is None or self.trials is None or self.seed is None):
            raise FkhlsError("a BER campaign needs --ber RATE, --trials N and --seed S")
        if self.mode == "exhaustive" and self.ber is not None:
            raise FkhlsError("--ber is for BER campaigns; an exhaustive campaign flips every selected bit once")
        if self.mode == "ber" and self.bits is not None:
            raise FkhlsError("--bits selects bit positions of an exhaustive campaign only")


@dataclass(frozen=True)
class CampaignConfig:
    """Everything that defines a campaign's results (the worker count does not)."""

    project_dir: Path
    inputs: Path
    engine: str  # tf | csim | both
    selection: Selection
    labels: Path | None = None
    shard_size: int | None = None  # None: ``default_shard_size`` of the inputs and outputs

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise FkhlsError(f"engine {self.engine!r} is not valid; valid engines: {list(ENGINES)}")
        if self.shard_size is not None and self.shard_size < 1:
            raise FkhlsError(f"shard size {self.shard_size} must be >= 1")

    @property
    def engines(self) -> tuple[str, ...]:
        return ("tf", "csim") if self.engine == "both" else (self.engine,)


@dataclass(frozen=True)
class CampaignResult:
    results_dir: Path
    table: FaultTable
    identity: dict
    shards_total: int
    shards_run: int  # computed in this call (the rest were already on disk)
    seconds: float
    reports: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- what the campaign is


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    return {
        "schema": SCHEMA,
        "fkhls_version": __version__,
        "project": str(Path(config.project_dir).resolve()),
        "project_hash": project_hash(config.project_dir),
        "model_hash": manifest.model_hash,
        "inputs": str(Path(config.inputs).resolve()),
        "inputs_hash": _sha256_file(Path(config.inputs)),
        "labels": str(Path(config.labels).resolve()) if config.labels else None,
        "labels_hash": _sha256_file(Path(config.labels)) if config.labels else None,
        "n_samples": int(n_samples),
        "engine": config.engine,
        "selection": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(sel).items()
                      if not (k == "model_bits" and v is None)},  # identities written before 'ordered' still match
        "seeds": seeds,
        "shard_size": int(config.shard_size),
        "n_scenarios": int(n_scenarios),
        "n_shards": math.ceil(n_scenarios / config.shard_size),
    }


# Keys whose difference means a different campaign (paths may move; contents may not).
_IDENTITY_KEYS = ("schema", "project_hash", "inputs_hash", "labels_hash", "n_samples", "engine", "selection", "seeds",
                  "shard_size", "n_scenarios")


def _differences(old: dict, new: dict) -> list[str]:
    return [f"{key}: on disk {old.get(key)!r}, asked {new.get(key)!r}" for key in _IDENTITY_KEYS
            if old.get(key) != new.get(key)]


def default_shard_size(n_samples: int, n_outputs: int) -> int:
    """Scenarios per shard when none is given: a function of the data only, so resuming finds the same shards."""
    fits = max(1, SHARD_WORDS // max(1, n_samples * n_outputs))
    return int(min(4096, 1 << (fits.bit_length() - 1)))


def campaign_scenarios(spec, selection: Selection) -> list[FaultScenario]:
    """The campaign's ordered scenario list (deterministic: model-bit order, or trials 0..N-1 of the seed)."""
    if selection.mode == "ordered":  # a ranking's top bits, one at a time, in its order
        faults = [fault_from_model_bit(spec, int(b)) for b in selection.model_bits]
        return [FaultScenario(f"{f.layer}.{f.tensor}[lbi={f.lbi}]", (f,)) for f in faults]
    if selection.mode == "exhaustive":
        faults = exhaustive_faults(spec, selection.layers, selection.tensors, selection.bits)
        return [FaultScenario(f"{f.layer}.{f.tensor}[lbi={f.lbi}]", (f,)) for f in faults]
    return random_ber_scenarios(spec, float(selection.ber), int(selection.trials), int(selection.seed),
                                selection.layers, selection.tensors)


# ----------------------------------------------------------------------------- per-shard arithmetic


def fault_metrics(golden: np.ndarray, outputs: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-scenario effect of faulty output words ``outputs`` (F, N, O) against ``golden`` (N, O).

    Counts are over all samples; top-1 is numpy's argmax (first maximum) of the raw words;
    ``correct`` (with labels) is the number of samples whose top-1 equals the label.
    """
    diff = outputs != golden[None]
    err = np.abs(outputs - golden[None]).reshape(len(outputs), -1)
    top1 = outputs.argmax(axis=2)
    out = {
        "outputs_changed": diff.reshape(len(outputs), -1).sum(axis=1).astype(np.int64),
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
    differs = a != b
    per_sample = differs.any(axis=2)
    first = np.where(per_sample.any(axis=1), per_sample.argmax(axis=1), -1)
    return {
        "mismatched_words": differs.reshape(len(a), -1).sum(axis=1).astype(np.int64),
        "max_lsb_diff": np.abs(a - b).reshape(len(a), -1).max(axis=1, initial=0).astype(np.int64),
        "first_mismatch_sample": first.astype(np.int64),
    }


def csim_engine(manifest: Manifest) -> tuple[Callable, str]:
    """The C-sim campaign engine: the cone harness when present and supported, else the reference harness."""
    from fkhls.csim.harness import run_fault_harness

    try:
        from fkhls.csim.cone import cone_support, run_cone_harness
    except ImportError:
        return run_fault_harness, "harness (fkhls.csim.cone not available)"
    ok, reason = cone_support(manifest)
    if ok:
        return run_cone_harness, "cone"
    return run_fault_harness, f"harness ({reason})"


@dataclass
class _State:
    """What a worker needs, sent once per worker process (picklable; no TensorFlow objects)."""

    project_dir: Path
    engines: tuple[str, ...]
    scenarios: list
    shard_size: int
    shard_dir: Path
    x_raw: np.ndarray  # (N, n_in)
    labels: np.ndarray | None
    golden: dict  # engine -> (N, O) raw words
    spec: Any = None  # ModelSpec (tf engine)
    weights: Any = None  # golden raw weights (tf engine)
    hw: list | None = None  # per scenario: tuple of (array, element, array_bit)
    manifest: Manifest | None = None
    engine_fn: Callable | None = None


_WORKER: _State | None = None


def _init_worker(state: _State) -> None:
    global _WORKER
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


def _csim_outputs(state: _State, lo: int, hi: int) -> np.ndarray:
    if state.manifest is None:
        state.manifest = load_manifest(state.project_dir)
        state.engine_fn = csim_engine(state.manifest)[0]
    out = state.engine_fn(state.manifest, state.x_raw, [list(h) for h in state.hw[lo:hi]], workers=1)
    return np.asarray(out).reshape(hi - lo, state.x_raw.shape[0], -1)


def shard_path(shard_dir: Path, index: int) -> Path:
    return Path(shard_dir) / f"shard-{index:05d}.npz"


def _run_shard(index: int, state: _State | None = None) -> tuple[int, int, int, dict]:
    """Compute shard ``index`` and write it atomically; returns (index, scenarios, mismatching, seconds)."""
    state = state or _WORKER
    lo = index * state.shard_size
    hi = min(lo + state.shard_size, len(state.scenarios))
    scenarios = state.scenarios[lo:hi]
    columns: dict[str, np.ndarray] = {"scenario": np.arange(lo, hi, dtype=np.int64)}
    outputs, seconds = {}, {}
    for engine in state.engines:
        start = time.perf_counter()
        outputs[engine] = _tf_outputs(state, scenarios) if engine == "tf" else _csim_outputs(state, lo, hi)
        seconds[engine] = time.perf_counter() - start
        for key, value in fault_metrics(state.golden[engine], outputs[engine], state.labels).items():
            columns[f"{engine}_{key}"] = value
    mismatching = 0
    if len(state.engines) == 2:
        agree = engine_agreement(outputs["tf"], outputs["csim"])
        columns.update(agree)
        mismatching = int(np.count_nonzero(agree["mismatched_words"]))
    for engine, value in seconds.items():
        columns[f"seconds_{engine}"] = np.float64(value)
    _atomic_savez(shard_path(state.shard_dir, index), columns)
    return index, hi - lo, mismatching, seconds


def _atomic_savez(path: Path, columns: dict) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **columns)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- the driver


def _load_labels(path: Path | None, n: int) -> np.ndarray | None:
    if path is None:
        return None
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FkhlsError(f"cannot read labels {str(path)!r} (expected a .npy array): {exc}") from exc
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)  # one-hot
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.number):
        raise FkhlsError(f"labels {str(path)!r} have shape {labels.shape}; expected ({n},) class indices or "
                         f"({n}, classes) one-hot, one per input sample")
    return labels.astype(np.int64)


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
        for stale in (results_dir / SHARD_DIR).glob(".shard-*.tmp.npz"):  # left by a killed worker
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


def _hardware_bits(manifest: Manifest, scenarios: Sequence[FaultScenario]) -> list[tuple]:
    """Per scenario, the (array, element, array_bit) of each of its bits (``addressing.map_faults``)."""
    from fkhls.faults.addressing import address_map

    amap = address_map(manifest)
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


def _tf_model(manifest: Manifest):
    """(ModelSpec, golden weights) of the project's model copy: the only place TensorFlow is needed."""
    from fkhls.emulate.emulator import golden_weights
    from fkhls.model.spec import describe_model, load_keras_model

    model = load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_type["cpp"])
    return spec, golden_weights(model, spec)


def _golden(state: _State, manifest: Manifest) -> dict:
    """Golden raw output words (N, O) per engine (the C-sim's from the reference harness, one empty scenario)."""
    golden = {}
    n = state.x_raw.shape[0]
    if "tf" in state.engines:
        from fkhls.emulate.emulator import forward_raw

        golden["tf"] = forward_raw(state.spec, state.weights, state.x_raw.reshape(n, *state.spec.input_shape)
                                   ).reshape(n, -1)
    if "csim" in state.engines:
        from fkhls.csim.harness import run_fault_harness

        golden["csim"] = np.asarray(run_fault_harness(manifest, state.x_raw, [[]]))[0]
    return golden


def _progress(total: int, initial: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="fault", desc="campaign", dynamic_ncols=True, file=sys.stderr,
                disable=quiet or not sys.stderr.isatty(), smoothing=0.1)


def run_campaign(config: CampaignConfig, results_dir: str | Path, *, workers: int | None = None, force: bool = False,
                 quiet: bool = False, report: bool = True, max_shards: int | None = None) -> CampaignResult:
    """Run (or resume) a campaign into ``results_dir``; see the module docstring.

    ``workers``: processes of the local pool (default ``os.cpu_count()``; 1 = in this process).
    ``max_shards``: stop after computing that many new shards (for tests and partial runs).
    """
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.csim.build import input_words

    started = time.perf_counter()
    results_dir = Path(results_dir)
    manifest = load_manifest(config.project_dir)
    if manifest.hardening and "tf" in config.engines:
        raise FkhlsError(f"{str(config.project_dir)!r} is a hardened (TMR) project: the TF engine does not model its "
                         "vote and would report masked faults as damage; run it with --engine csim")
    try:
        x = np.load(config.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FkhlsError(f"cannot read inputs {str(config.inputs)!r} (expected a .npy array): {exc}") from exc
    x_raw = input_words(manifest, x, what=f"inputs {config.inputs}")
    labels = _load_labels(config.labels, x_raw.shape[0])
    scenarios = campaign_scenarios(spec_from_manifest(manifest), config.selection)
    if not scenarios:
        raise FkhlsError("the fault selection is empty: no scenario to run")
    if config.shard_size is None:
        config = replace(config, shard_size=default_shard_size(x_raw.shape[0], int(np.prod(manifest.output_shape))))
    identity = campaign_identity(config, manifest, x_raw.shape[0], len(scenarios))
    _prepare_dir(results_dir, identity, force)
    shard_dir = results_dir / SHARD_DIR
    n_shards = identity["n_shards"]
    pending = [i for i in range(n_shards) if not shard_path(shard_dir, i).is_file()]
    done_before = len(scenarios) - sum(min(config.shard_size, len(scenarios) - i * config.shard_size)
                                       for i in pending)

    timings: dict[str, float] = {}
    state = _State(Path(config.project_dir).resolve(), config.engines, scenarios, config.shard_size, shard_dir,
                   x_raw, labels, {})
    t0 = time.perf_counter()
    if "tf" in config.engines:
        state.spec, state.weights = _tf_model(manifest)
    if "csim" in config.engines:
        state.hw = _hardware_bits(manifest, scenarios)
        _, engine_name = csim_engine(manifest)
        timings["csim_engine"] = engine_name
        _build_csim_engine(manifest, engine_name)  # compile once here, not in every worker
    state.golden = _golden(state, manifest)
    _write_golden(results_dir, state.golden, labels)
    timings["setup_seconds"] = time.perf_counter() - t0

    if max_shards is not None:
        pending = pending[:max_shards]
    workers = max(1, int(workers or os.cpu_count() or 1))
    t0 = time.perf_counter()
    with _progress(len(scenarios), done_before, quiet) as bar:
        for _, count, mismatching, _ in _execute(state, pending, workers):
            bar.update(count)
            if mismatching:
                bar.set_postfix(mismatching=mismatching, refresh=False)
    timings["shards_seconds"] = time.perf_counter() - t0
    timings["workers"] = workers

    missing = [i for i in range(n_shards) if not shard_path(shard_dir, i).is_file()]
    table = load_results(results_dir) if not missing else None
    reports = {}
    if table is not None and report:
        reports = report_campaign(results_dir, table, timings=timings)
    return CampaignResult(results_dir, table, identity, n_shards, len(pending), time.perf_counter() - started,
                          reports)


def _build_csim_engine(manifest: Manifest, engine_name: str) -> None:
    from fkhls.csim.harness import build_harness

    build_harness(manifest)
    if engine_name == "cone":
        from fkhls.csim.cone import build_cone_harness

        build_cone_harness(manifest)


def _write_golden(results_dir: Path, golden: dict, labels: np.ndarray | None) -> None:
    arrays = {f"golden_{k}": v for k, v in golden.items()}
    if labels is not None:
        arrays["labels"] = labels
    _atomic_savez(results_dir / GOLDEN_NPZ, arrays)


def _execute(state: _State, pending: list[int], workers: int):
    """Yield each shard's (index, scenarios, mismatching, seconds) as it finishes; in-process for one worker."""
    if not pending:
        return
    if workers == 1 or len(pending) == 1:
        for index in pending:
            yield _run_shard(index, state)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    executor = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                   initializer=_init_worker, initargs=(replace(state, manifest=None, engine_fn=None),))
    try:
        futures = {executor.submit(_run_shard, index) for index in pending}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        # On an error or Ctrl-C: drop queued shards; finished shard files stay (each was written atomically).
        executor.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- reading results back


def _meta_columns(manifest: Manifest, scenarios: Sequence[FaultScenario]) -> dict[str, np.ndarray]:
    """Where each scenario is: FKeras coordinates and hardware array/element/bit (single-bit rows)."""
    from fkhls.faults.addressing import address_map, spec_from_manifest

    spec = spec_from_manifest(manifest)
    amap = address_map(manifest)
    n = len(scenarios)
    single = [s.faults[0] if len(s.faults) == 1 else None for s in scenarios]
    mapped = dict(zip([i for i, f in enumerate(single) if f is not None],
                      amap.map_faults([f for f in single if f is not None])))
    cols: dict[str, list] = {k: [] for k in ("layer", "tensor", "lbi", "bit", "flat_index", "model_bit", "array",
                                             "element", "array_bit")}
    for i, scenario in enumerate(scenarios):
        fault = single[i]
        if fault is None:
            cols["layer"].append("+".join(dict.fromkeys(f.layer for f in scenario.faults)))
            cols["tensor"].append("+".join(dict.fromkeys(f.tensor for f in scenario.faults)))
            for key in ("lbi", "bit", "flat_index", "model_bit", "element", "array_bit"):
                cols[key].append(-1)
            cols["array"].append("")
            continue
        hbit = mapped[i]
        cols["layer"].append(fault.layer)
        cols["tensor"].append(fault.tensor)
        cols["lbi"].append(fault.lbi)
        cols["bit"].append(fault.bit)
        cols["flat_index"].append(fault.flat_index)
        cols["model_bit"].append(model_bit_of(spec, fault))
        cols["array"].append(hbit.array)
        cols["element"].append(hbit.element)
        cols["array_bit"].append(-1 if hbit.array_bit is None else hbit.array_bit)
    out = {"scenario": np.arange(n, dtype=np.int64), "name": np.array([s.name for s in scenarios]),
           "n_bits": np.array([len(s.faults) for s in scenarios], dtype=np.int64)}
    for key, values in cols.items():
        out[key] = np.array(values) if key in ("layer", "tensor", "array") else np.array(values, dtype=np.int64)
    return out


def load_results(results_dir: str | Path) -> FaultTable:
    """The finished campaign in ``results_dir`` as a ``report.FaultTable`` (every shard must be present)."""
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.core.fixedpoint import lsb, type_from_dict

    results_dir = Path(results_dir)
    header = results_dir / CAMPAIGN_JSON
    if not header.is_file():
        raise ProjectError(f"{results_dir} holds no campaign ({CAMPAIGN_JSON} is missing)")
    identity = json.loads(header.read_text())
    missing = [i for i in range(identity["n_shards"]) if not shard_path(results_dir / SHARD_DIR, i).is_file()]
    if missing:
        raise ProjectError(f"campaign in {results_dir} is unfinished: {len(missing)} of {identity['n_shards']} shards "
                           f"missing (first: {missing[0]}); run the same campaign command again to resume")
    manifest = load_manifest(identity["project"])
    selection = Selection(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in identity["selection"].items()})
    scenarios = campaign_scenarios(spec_from_manifest(manifest), selection)
    parts = []
    for i in range(identity["n_shards"]):
        with np.load(shard_path(results_dir / SHARD_DIR, i)) as data:
            parts.append({k: data[k] for k in data.files if not k.startswith("seconds_")})
    results = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if not np.array_equal(results["scenario"], np.arange(len(scenarios))):
        raise ProjectError(f"shards in {results_dir} do not cover scenarios 0..{len(scenarios) - 1} in order")
    columns = _meta_columns(manifest, scenarios)
    engines = ("tf", "csim") if identity["engine"] == "both" else (identity["engine"],)
    out_type = type_from_dict(manifest.output_type)
    n = identity["n_samples"]
    has_labels = identity["labels_hash"] is not None
    golden_correct = {}
    if has_labels:
        with np.load(results_dir / GOLDEN_NPZ) as data:
            labels = data["labels"]
            for engine in engines:
                golden_correct[engine] = int((data[f"golden_{engine}"].argmax(axis=1) == labels).sum())
    for engine in engines:
        for key in ("outputs_changed", "samples_changed", "max_abs_error_lsb", "top1_changed"):
            columns[f"{engine}_{key}"] = results[f"{engine}_{key}"]
        columns[f"{engine}_max_abs_error"] = results[f"{engine}_max_abs_error_lsb"] * lsb(out_type)
        if has_labels:
            columns[f"{engine}_accuracy_drop"] = (golden_correct[engine] - results[f"{engine}_correct"]) / float(n)
    if len(engines) == 2:
        for key in ("mismatched_words", "max_lsb_diff", "first_mismatch_sample"):
            columns[key] = results[key]
    widths = {f"{r.layer} {r.tensor}": r.width for r in spec_from_manifest(manifest).tensors()}
    return FaultTable(columns, engines, n, int(np.prod(manifest.output_shape)), lsb(out_type), has_labels,
                      {"widths": widths, "golden_correct": golden_correct})


def engine_seconds(results_dir: str | Path) -> dict[str, float]:
    """Seconds each engine spent on the shards on disk (summed over shards: one-core seconds)."""
    results_dir = Path(results_dir)
    totals: dict[str, float] = {}
    for path in sorted((results_dir / SHARD_DIR).glob("shard-*.npz")):
        with np.load(path) as data:
            for key in data.files:
                if key.startswith("seconds_"):
                    totals[key[len("seconds_"):]] = totals.get(key[len("seconds_"):], 0.0) + float(data[key])
    return totals


def report_campaign(results_dir: str | Path, table: FaultTable | None = None, timings: dict | None = None) -> dict:
    """Write summary.json, report.md, heatmap.png, histograms.png and results.csv for a finished campaign."""
    results_dir = Path(results_dir)
    table = table or load_results(results_dir)
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
                    **{f"{e}_fault_samples_per_second": len(table) * table.n_samples / s
                       for e, s in per_engine.items() if s > 0}},
    }
    title = f"{Path(identity['project']).name}, {identity['selection']['mode']}, engine {identity['engine']}"
    return write_report(results_dir, table, info, title)
