"""Benchmark: campaigns at scale (issue 12), each part against the naive per-fault ways measured in the same run.

    python scripts/bench_scale.py [--part dense,cnn,demo,dask] [--quick] [--samples N] [--workers N]
                                  [--csim-sample N] [--margin E] [--naive-tf N] [--naive-csim N] [--keep DIR]

Parts (each runs in its own process, so its peak memory is its own):

* ``dense`` (a): a generated QKeras MLP 16-200-200-200-200-200-5, 8-bit weights and biases
  (165,205 parameters, 1,321,640 single-bit faults): the TF engine runs every fault, the C-sim
  engine cross-checks a seeded sample (``--csim-sample``, default 10,000).
* ``cnn`` (b): a generated io_stream QKeras CNN (16x16x3 -> conv 16 -> conv 32 stride 2 -> dense 48
  -> dense 10, 60,922 parameters): a statistical campaign at 99 % confidence / ``--margin`` per
  layer, every sampled fault through both engines.
* ``demo`` (c): the demo's exhaustive campaign (26,334 faults), both engines, cross-checked; run with a cold
  compile cache (every g++ build counted), then again with it warm (a user's second campaign of a project).
* ``dask`` (d): the demo's exhaustive campaign through both engines, cross-checked, on a Dask LocalCluster of 1
  and of 2 workers (after one warm-up run, so both find the compiled harness and its golden activations):
  scaling efficiency ``T1 / (2 T2)`` on the campaigns' wall time (set-up and cluster start included).

Per part it prints wall time, faults x samples per second per engine (one-core seconds summed
over shards), peak RSS of the campaign process and of its largest child (``ru_maxrss``), and the
naive ways on a seeded sample of the same faults: FKeras's per-fault ``model.predict``
(``scripts/naive.py``) and per-fault weight rewrite + g++ recompile + C-sim run
(``scripts/bench_campaign.py``), each checked against the campaign's rows. ``--quick`` shrinks
every part (fewer samples, a looser margin, a smaller C-sim sample) to check the script runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_campaign import naive_csim  # noqa: E402  (scripts/bench_campaign.py)
from naive import naive_tf_outputs  # noqa: E402  (scripts/naive.py)

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"
PARTS = ("dense", "cnn", "demo", "dask")
ALIASES = {"a": "dense", "b": "cnn", "c": "demo", "d": "dask"}
SEED = 20261129


# ----------------------------------------------------------------------------- generated models


def dense_model():
    """16-200-200-200-200-200-5, quantized_bits(8,0) weights/biases, quantized_relu(8,3): seeded Glorot weights."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(SEED)
    h = x_in = tf.keras.Input(shape=(16,), name="x")
    for k in range(5):
        h = QDense(200, name=f"fc{k + 1}", kernel_quantizer=quantized_bits(8, 0, alpha=1),
                   bias_quantizer=quantized_bits(8, 0, alpha=1))(h)
        h = QActivation(quantized_relu(8, 3), name=f"relu{k + 1}")(h)
    out = QDense(5, name="out", kernel_quantizer=quantized_bits(8, 0, alpha=1),
                 bias_quantizer=quantized_bits(8, 0, alpha=1))(h)
    return tf.keras.Model(x_in, out, name="dense_scale")


def cnn_model():
    """16x16x3 -> QConv2D 16 (3x3) -> QConv2D 32 (3x3, stride 2) -> Flatten -> QDense 48 -> QDense 10, 8-bit."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(SEED + 1)
    q = dict(kernel_quantizer=quantized_bits(8, 0, alpha=1), bias_quantizer=quantized_bits(8, 0, alpha=1))
    x_in = tf.keras.Input(shape=(16, 16, 3), name="img")
    h = QConv2D(16, (3, 3), name="c1", **q)(x_in)
    h = QActivation(quantized_relu(8, 3), name="r1")(h)
    h = QConv2D(32, (3, 3), strides=(2, 2), name="c2", **q)(h)
    h = QActivation(quantized_relu(8, 3), name="r2")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    h = QDense(48, name="d1", **q)(h)
    h = QActivation(quantized_relu(8, 3), name="r3")(h)
    out = QDense(10, name="out", **q)(h)
    return tf.keras.Model(x_in, out, name="cnn_scale")


def grid_inputs(shape: tuple[int, ...], n: int) -> np.ndarray:
    """Seeded inputs on the default ap_fixed<16,6> input grid (10 fractional bits), inside its range."""
    rng = np.random.default_rng(SEED)
    return (np.round(np.clip(rng.normal(0.0, 1.0, size=(n, *shape)), -8, 8) * 1024) / 1024).astype(np.float32)


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Run:
    """One campaign run: wall seconds, per-engine one-core seconds and faults run, its summary.json."""

    results: Path
    wall: float
    engine_seconds: dict
    engine_faults: dict
    summary: dict


def campaign(config, results: Path, workers: int, scheduler: str | None = None, report: bool = True) -> Run:
    """Run ``config`` into ``results`` and collect what the bench prints."""
    from fkhls.campaign.runner import engine_seconds, run_campaign
    from fkhls.campaign.results_store import read_columns

    start = time.perf_counter()
    run_campaign(config, results, workers=workers, quiet=True, scheduler=scheduler, report=report, force=True)
    wall = time.perf_counter() - start
    summary = json.loads((results / "summary.json").read_text()) if report else {}
    n_faults = len(read_columns(sorted((results / "shards").glob("shard-*")), ["scenario"])["scenario"])
    faults = {e: n_faults for e in config.engines}
    if config.csim_sample:  # the C-sim shards hold the sampled faults (the TF engine ran them there again too)
        faults["csim"] = int(config.csim_sample)
        faults["tf"] += int(config.csim_sample)
    return Run(results, wall, engine_seconds(results), faults, summary)


def peak_rss() -> tuple[float, float]:
    """(this process, largest waited-for child) peak resident set, MiB (Linux ru_maxrss is in KiB)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def naive_rows(manifest, run: Run, x: np.ndarray, n_tf: int, n_csim: int, tmp: Path) -> list[tuple]:
    """Time the naive ways on seeded samples of the campaign's faults and check them against its rows."""
    from fkhls.campaign.results_store import read_columns
    from fkhls.core.fixedpoint import from_raw
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.faults.descriptors import BitFault
    from fkhls.model.spec import load_keras_model

    names = ["layer", "tensor", "lbi", "array", "element", "array_bit", "tf_outputs_changed"]
    cols = read_columns([run.results / "results.parquet"], names)
    widths = {(t.layer, t.tensor): t.width for t in spec_from_manifest(manifest).tensors()}
    rng = np.random.default_rng(SEED)
    n_faults, n = len(cols["lbi"]), x.shape[0]
    rows = []
    golden_raw = np.load(run.results / "golden.npz")["golden_tf"]
    if n_tf:
        pick = np.sort(rng.choice(n_faults, size=min(n_tf, n_faults), replace=False))
        faults = [BitFault(str(cols["layer"][i]), str(cols["tensor"][i]), int(cols["lbi"][i]),
                           widths[(str(cols["layer"][i]), str(cols["tensor"][i]))]) for i in pick]
        out, seconds = naive_tf_outputs(load_keras_model(manifest.model_path), faults, x)
        golden = from_raw(manifest.output_ptype, golden_raw)
        changed = (out.reshape(len(pick), n, -1) != golden[None]).sum(axis=(1, 2))
        agree = int(np.sum(changed == cols["tf_outputs_changed"][pick]))
        rows.append(("naive TF: quantize_and_bitflip + predict", len(pick), seconds, f"{agree}/{len(pick)} agree"))
    if n_csim:
        pick = np.sort(rng.choice(n_faults, size=min(n_csim, n_faults), replace=False))
        hw = [(str(cols["array"][i]), int(cols["element"][i]), int(cols["array_bit"][i])) for i in pick]
        out, seconds = naive_csim(manifest, hw, x, tmp)
        changed = np.array([(o.reshape(n, -1) != golden_raw).sum() for o in out])
        agree = int(np.sum(changed == cols["tf_outputs_changed"][pick]))
        rows.append(("naive C-sim: rewrite + g++ + run", len(pick), seconds, f"{agree}/{len(pick)} agree"))
    return rows


def print_part(title: str, run: Run, n_samples: int, naive: list[tuple], extra: list[str]) -> None:
    me, child = peak_rss()
    print(f"\n== {title}")
    timings = run.summary.get("timings", {})
    setup, shards = timings.get("setup_seconds", 0.0), timings.get("shards_seconds", 0.0)
    print(f"campaign wall {run.wall:.1f} s (set-up {setup:.1f} s, shards {shards:.1f} s, report and the rest "
          f"{run.wall - setup - shards:.1f} s); peak RSS: campaign process {me:.0f} MiB, largest child {child:.0f} MiB "
          "(a child forked from the campaign process counts its pages: an upper bound)")
    print(f"{'':44s} {'faults':>10s} {'seconds':>9s} {'per fault':>11s} {'fault x samples/s':>18s}")
    per_fault = {}
    for engine, seconds in run.engine_seconds.items():
        count = run.engine_faults[engine]
        per_fault[engine] = seconds / count
        print(f"{engine + ' engine (one-core s, summed over shards)':44s} {count:10,d} {seconds:9.1f} "
              f"{seconds / count * 1e3:9.3f}ms {count * n_samples / seconds:18,.0f}")
    for name, count, seconds, check in naive:
        print(f"{name:44s} {count:10,d} {seconds:9.1f} {seconds / count * 1e3:9.1f}ms "
              f"{count * n_samples / seconds:18,.0f}   ({check})")
        engine = "tf" if name.startswith("naive TF") else "csim"
        if engine in per_fault:
            print(f"    {engine} engine vs naive, per fault: {seconds / count / per_fault[engine]:,.0f} x")
    summary = run.summary
    if "outputs_compared" in summary:
        print(f"cross-check: {summary['bit_exact']:,} of {summary['outputs_compared']:,} output words bit-exact, "
              f"{summary['scenarios_mismatching']} scenarios differ")
        if "csim_sample" in summary:
            print(f"C-sim sample: {summary['csim_sample']['statement']}")
    for line in extra:
        print(line)


# ----------------------------------------------------------------------------- parts


def export(model, out: Path, io_type: str = "io_parallel"):
    from fkhls.project.export import ExportOptions, export_model

    start = time.perf_counter()
    manifest = export_model(model, out, ExportOptions(io_type=io_type))
    return manifest, time.perf_counter() - start


def part_dense(args, tmp: Path) -> None:
    from fkhls.campaign.runner import CampaignConfig, Selection

    manifest, t_export = export(dense_model(), tmp / "dense")
    x = grid_inputs((16,), args.samples)
    np.save(tmp / "x.npy", x)
    weights = sum(int(np.prod(t.shape)) for t in manifest_tensors(manifest))
    selection, what, extra = Selection("exhaustive"), "exhaustive TF + C-sim sample", []
    if args.fraction < 1.0:  # a seeded fraction of the model bits, in model-bit order: to extrapolate a full run
        n_bits = sum(t.n_bits for t in manifest_tensors(manifest))
        rng = np.random.default_rng(SEED)
        chosen = np.sort(rng.choice(n_bits, size=max(1, round(args.fraction * n_bits)), replace=False))
        selection = Selection("ordered", model_bits=tuple(int(b) for b in chosen))
        what = f"a seeded {args.fraction:.2%} of the {n_bits:,} faults ({len(chosen):,}) TF + C-sim sample"
    config = CampaignConfig(manifest.project_dir, tmp / "x.npy", "both", selection,
                            csim_sample=args.csim_sample, csim_seed=SEED)
    run = campaign(config, tmp / "results", args.workers)
    naive = naive_rows(manifest, run, x, args.naive_tf, args.naive_csim, tmp)
    if args.fraction < 1.0:
        n_bits = sum(t.n_bits for t in manifest_tensors(manifest))
        tf_per_fault = run.engine_seconds["tf"] / run.engine_faults["tf"]
        csim_per_fault = run.engine_seconds["csim"] / run.engine_faults["csim"]
        full_csim = 10_000
        extra = [f"extrapolated to every fault ({n_bits:,}) + a C-sim sample of {full_csim:,}, {args.samples:,} "
                 f"samples: TF engine {tf_per_fault * n_bits:,.0f} one-core s, C-sim {csim_per_fault * full_csim:,.0f}"
                 f" one-core s; on {args.workers} workers >= "
                 f"{(tf_per_fault * n_bits + csim_per_fault * full_csim) / args.workers / 60:,.0f} min wall "
                 f"(target 30 min)"]
    print_part(f"(a) dense 16-200x5-5, 8-bit, {weights:,} parameters, {what}, "
               f"{args.samples:,} samples, {args.workers} workers (export {t_export:.0f} s)", run, args.samples, naive,
               extra)
    keep(args, tmp / "results", "dense")


def part_cnn(args, tmp: Path) -> None:
    from fkhls.campaign.runner import CampaignConfig, Selection

    manifest, t_export = export(cnn_model(), tmp / "cnn", "io_stream")
    x = grid_inputs((16, 16, 3), args.samples)
    np.save(tmp / "x.npy", x)
    weights = sum(int(np.prod(t.shape)) for t in manifest_tensors(manifest))
    selection = Selection("sampled", confidence=0.99, margin=args.margin, per="layer", seed=SEED)
    config = CampaignConfig(manifest.project_dir, tmp / "x.npy", "both", selection)
    run = campaign(config, tmp / "results", args.workers)
    naive = naive_rows(manifest, run, x, args.naive_tf, args.naive_csim, tmp)
    design = run.summary["statistics"]["design"]
    print_part(f"(b) io_stream CNN, {weights:,} parameters, sampled 99 % / {args.margin} per layer: "
               f"{design['sample']:,} of {design['population']:,} faults, {args.samples:,} samples, {args.workers} "
               f"workers, C-sim engine {run.summary['timings'].get('csim_engine')} (export {t_export:.0f} s)",
               run, args.samples, naive, [])
    keep(args, tmp / "results", "cnn")


def demo_inputs(samples: int, tmp: Path) -> tuple[np.ndarray, Path, Path]:
    x, y = np.load(DATA / "demo_inputs.npy"), np.load(DATA / "demo_labels.npy")
    x, y = np.resize(x, (samples, x.shape[1])), np.resize(y, samples)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    return x, tmp / "x.npy", tmp / "y.npy"


def part_demo(args, tmp: Path) -> None:
    from fkhls.campaign.runner import CampaignConfig, Selection

    manifest, _ = export(DATA / "demo_model.h5", tmp / "demo")
    x, xp, yp = demo_inputs(args.samples, tmp)
    config = CampaignConfig(manifest.project_dir, xp, "both", Selection("exhaustive"), yp)
    run = campaign(config, tmp / "results", args.workers)
    # The same campaign again: the compile cache holds the C-sim engine's binary (and its golden activations).
    warm = campaign(config, tmp / "results-warm", args.workers)
    naive = naive_rows(manifest, run, x, args.naive_tf, args.naive_csim, tmp)
    print_part(f"(c) demo 16-64-32-32-5, exhaustive, both engines, {args.samples:,} samples, {args.workers} workers, "
               f"C-sim engine {run.summary['timings'].get('csim_engine')} (target < 15 s wall; cold compile cache)",
               run, args.samples, naive, [warm_line(warm)])
    keep(args, tmp / "results", "demo")


def warm_line(run: Run) -> str:
    """The warm run of the demo part: its wall time split as print_part's, and its engines' one-core seconds."""
    timings = run.summary.get("timings", {})
    setup, shards = timings.get("setup_seconds", 0.0), timings.get("shards_seconds", 0.0)
    engines = ", ".join(f"{e} {s:.1f}" for e, s in run.engine_seconds.items())
    return (f"the same campaign again (compile cache warm): campaign wall {run.wall:.1f} s (set-up {setup:.1f} s, "
            f"shards {shards:.1f} s, report and the rest {run.wall - setup - shards:.1f} s); engines one-core s: "
            f"{engines}")


def part_dask(args, tmp: Path) -> None:
    from fkhls.campaign.runner import CampaignConfig, Selection

    manifest, _ = export(DATA / "demo_model.h5", tmp / "demo")
    _, xp, yp = demo_inputs(args.samples, tmp)
    # Small shards so 2 workers share the work evenly (7 shards of 4,096 would cap the efficiency at 7/8).
    config = CampaignConfig(manifest.project_dir, xp, "both", Selection("exhaustive"), yp,
                            shard_size=args.dask_shard)
    # Warm-up: the g++ build and the golden activations file, so neither timed run pays for them.
    campaign(config, tmp / "dask-warm-up", 2, report=False)
    shards = {}
    for workers in (1, 2):
        run = campaign(config, tmp / f"dask{workers}", workers, scheduler="dask-local", report=False)
        shards[workers] = run
    one, two = shards[1], shards[2]
    # Wall time includes set-up and starting the LocalCluster; the engine's own time is summed over shards.
    print(f"\n== (d) Dask LocalCluster, demo exhaustive campaign, both engines, {args.samples:,} samples, shard "
          f"{args.dask_shard}: 1 vs 2 workers")
    me, child = peak_rss()
    engines = {w: sum(run.engine_seconds.values()) for w, run in shards.items()}
    print(f"1 worker: {one.wall:.1f} s wall ({engines[1]:.1f} s in the engines); 2 workers: {two.wall:.1f} s "
          f"wall ({engines[2]:.1f} s in the engines, summed); peak RSS campaign {me:.0f} MiB, worker "
          f"{child:.0f} MiB")
    print(f"scaling efficiency T1 / (2 T2), wall incl. set-up and cluster start: {one.wall / (2 * two.wall):.0%}  "
          f"(target >= 85 %; {os.cpu_count()} cores)")


def manifest_tensors(manifest):
    from fkhls.faults.addressing import spec_from_manifest

    return spec_from_manifest(manifest).tensors()


def keep(args, results: Path, name: str) -> None:
    if args.keep:
        shutil.copytree(results, args.keep / name, dirs_exist_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default=",".join(PARTS), help=f"comma-separated parts of {PARTS} (or a,b,c,d)")
    parser.add_argument("--quick", action="store_true", help="small settings everywhere: checks the script runs")
    parser.add_argument("--samples", type=int, help="inputs per fault (default 1000; --quick 50)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="campaign workers (default: cores)")
    parser.add_argument("--csim-sample", type=int, help="(a) faults cross-checked in C-sim (default 10000; --quick 200)")
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="(a) run a seeded fraction of the faults (e.g. 0.01) and extrapolate the full run")
    parser.add_argument("--margin", type=float, help="(b) margin at 99 %% confidence (default 0.01; --quick 0.05)")
    parser.add_argument("--dask-shard", type=int, default=1024, help="(d) shard size (default 1024)")
    parser.add_argument("--naive-tf", type=int, help="faults timed the FKeras way (default 20; --quick 3)")
    parser.add_argument("--naive-csim", type=int, help="faults timed by rewrite + recompile (default 2; --quick 1)")
    parser.add_argument("--keep", type=Path, help="copy each part's results directory under this directory")
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)  # run the parts in this process
    args = parser.parse_args()
    defaults = dict(samples=(50, 1000), csim_sample=(200, 10000), margin=(0.05, 0.01), naive_tf=(3, 20),
                    naive_csim=(1, 2))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    parts = [ALIASES.get(p.strip(), p.strip()) for p in args.part.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; valid: {list(PARTS)} or a, b, c, d")
    if len(parts) > 1 and not args.inline:  # one process per part: each part's peak memory is its own
        status = 0
        for part in parts:
            status |= subprocess.call([sys.executable, __file__, *_without_part(sys.argv[1:]), "--part", part])
        return status
    print(f"bench_scale: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')} UTC,"
          f" samples {args.samples}, workers {args.workers}{' (quick)' if args.quick else ''}", flush=True)
    for part in parts:
        with tempfile.TemporaryDirectory(prefix=f"fkhls-bench-scale-{part}-") as tmp:
            os.environ["FKHLS_CACHE_DIR"] = str(Path(tmp) / "cache")  # a fresh build cache: every g++ run is real
            globals()[f"part_{part}"](args, Path(tmp))
            sys.stdout.flush()
    return 0


def _without_part(argv: list[str]) -> list[str]:
    """``argv`` without its ``--part X`` / ``--part=X``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--part":
            skip = True
            continue
        if not a.startswith("--part="):
            out.append(a)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
