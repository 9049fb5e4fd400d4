"""Benchmark: the exhaustive campaign through both engines vs the naive per-fault ways, in one run.

    .venv/bin/python scripts/bench_campaign.py [--samples 1000] [--naive-tf 40] [--naive-csim 3] [--workers N]
                                               [--keep RESULTS_DIR]

On the demo model (26,334 single-bit faults, weights and biases) it

1. runs ``fkhls.campaign.runner.run_campaign`` exhaustively with ``--engine both`` on a local pool
   (every fault through the TF engine -- the exact integer emulator -- and through the C-sim
   harness, compared word by word), timing the whole campaign (wall clock, including set-up
   and the report) and each engine's own work (summed over shards, i.e. one-core seconds);
2. times the naive ways on a seeded sample of the same faults: FKeras's per-fault
   ``quantize_and_bitflip`` + assign + ``model.predict``, and per-fault rewrite of the weight
   files + g++ recompile (fresh cache) + C-sim run; checks they agree with the campaign;
3. prints faults x samples per second for each, the per-fault ratios and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"

from naive import naive_tf_outputs  # noqa: E402  (scripts/naive.py)


def naive_csim(manifest, hw_bits, x, workdir: Path) -> tuple[list[np.ndarray], float]:
    """Per fault: a faulty copy of the project (weight files rewritten), a fresh g++ build, one C-sim run."""
    from fkhls.csim import build as csim
    from fkhls.csim.inject import inject_bits
    from fkhls.project.manifest import load_manifest

    saved = os.environ.get("FKHLS_CACHE_DIR")
    os.environ["FKHLS_CACHE_DIR"] = str(workdir / "fresh-cache")  # every build below really runs g++
    outputs = []
    try:
        start = time.perf_counter()
        for index, bit in enumerate(hw_bits):
            faulty = inject_bits(manifest.project_dir, workdir / f"faulty{index}", [bit])
            outputs.append(csim.run_csim(load_manifest(faulty.project_dir), x))
        seconds = time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop("FKHLS_CACHE_DIR", None)
        else:
            os.environ["FKHLS_CACHE_DIR"] = saved
    return outputs, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="inputs per fault (default 1000)")
    parser.add_argument("--naive-tf", type=int, default=40, help="faults timed the FKeras way (default 40)")
    parser.add_argument("--naive-csim", type=int, default=3, help="faults timed by rewrite + recompile (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="campaign workers (default: all cores)")
    parser.add_argument("--shard-size", type=int, default=None, help="campaign shard size (default: the CLI's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the naive samples (default 0)")
    parser.add_argument("--keep", type=Path, help="copy the campaign's results directory (report, PNGs) here")
    args = parser.parse_args()

    from fkhls.campaign.runner import CampaignConfig, Selection, engine_seconds, run_campaign
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.core.fixedpoint import from_raw, type_from_dict
    from fkhls.model.spec import load_keras_model

    workers = args.workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="fkhls-bench-campaign-") as tmp:
        tmp = Path(tmp)
        manifest = export_model(DATA / "demo_model.h5", tmp / "demo", ExportOptions())
        x = np.load(DATA / "demo_inputs.npy")
        y = np.load(DATA / "demo_labels.npy")
        x, y = np.resize(x, (args.samples, x.shape[1])), np.resize(y, args.samples)
        np.save(tmp / "x.npy", x)
        np.save(tmp / "y.npy", y)

        # 1. the exhaustive campaign, both engines, cross-checked
        config = CampaignConfig(manifest.project_dir, tmp / "x.npy", "both", Selection("exhaustive"), tmp / "y.npy",
                                args.shard_size)
        start = time.perf_counter()
        result = run_campaign(config, tmp / "results", workers=workers, quiet=False)
        wall = time.perf_counter() - start
        table = result.table
        if args.keep:
            shutil.copytree(tmp / "results", args.keep, dirs_exist_ok=True)
        summary = json.loads((tmp / "results" / "summary.json").read_text())
        timings = summary["timings"]
        n_faults, n = len(table), table.n_samples

        # 1b. the TF engine alone (one worker, no C-sim process competing for the cores), like the naive way
        tf_only = CampaignConfig(manifest.project_dir, tmp / "x.npy", "tf", Selection("exhaustive"), tmp / "y.npy",
                                 args.shard_size)
        start = time.perf_counter()
        run_campaign(tf_only, tmp / "tf-only", workers=1, quiet=True, report=False)
        tf_alone_wall = time.perf_counter() - start
        tf_alone = engine_seconds(tmp / "tf-only")["tf"]

        # 2. the naive ways on seeded samples of the same faults
        rng = np.random.default_rng(args.seed)
        model = load_keras_model(manifest.model_path)
        from fkhls.faults.addressing import spec_from_manifest
        from fkhls.campaign.runner import campaign_scenarios

        scenarios = campaign_scenarios(spec_from_manifest(manifest), Selection("exhaustive"))
        pick_tf = np.sort(rng.choice(n_faults, size=min(args.naive_tf, n_faults), replace=False))
        naive_out, t_naive_tf = naive_tf_outputs(model, [scenarios[i].faults[0] for i in pick_tf], x)
        out_type = type_from_dict(manifest.output_type)
        golden = from_raw(out_type, np.load(tmp / "results" / "golden.npz")["golden_tf"])
        naive_changed = (naive_out.reshape(len(pick_tf), n, -1) != golden[None]).sum(axis=(1, 2))
        tf_agree = int(np.sum(naive_changed == table.columns["tf_outputs_changed"][pick_tf]))

        pick_cs = np.sort(rng.choice(n_faults, size=min(args.naive_csim, n_faults), replace=False))
        hw = [(table.columns["array"][i], int(table.columns["element"][i]), int(table.columns["array_bit"][i]))
              for i in pick_cs]
        cs_out, t_naive_cs = naive_csim(manifest, hw, x, tmp)
        golden_cs = np.load(tmp / "results" / "golden.npz")["golden_csim"]
        cs_changed = np.array([(o.reshape(n, -1) != golden_cs).sum() for o in cs_out])
        cs_agree = int(np.sum(cs_changed == table.columns["csim_outputs_changed"][pick_cs]))

    tf_s, cs_s = timings["tf_engine_seconds"], timings["csim_engine_seconds"]
    rows = [
        ("TF engine alone (tf campaign, 1 worker)", n_faults, tf_alone),
        ("TF engine (both-engine campaign, one-core s)", n_faults, tf_s),
        ("C-sim harness (both-engine campaign, one-core s)", n_faults, cs_s),
        ("naive TF: quantize_and_bitflip + predict", len(pick_tf), t_naive_tf),
        ("naive C-sim: rewrite + g++ + run", len(pick_cs), t_naive_cs),
    ]
    print(f"\ndemo model, {n_faults:,} single-bit faults x {n:,} samples, {os.cpu_count()} cores, {workers} workers, "
          f"C-sim engine: {timings['csim_engine']}")
    print(f"{'':48s} {'faults':>7s} {'seconds':>9s} {'per fault':>11s} {'fault x samples / s':>20s}")
    for name, count, seconds in rows:
        print(f"{name:48s} {count:7,d} {seconds:9.2f} {seconds / count * 1e3:9.3f}ms {count * n / seconds:20,.0f}")
    ratio_tf = (t_naive_tf / len(pick_tf)) / (tf_alone / n_faults)
    ratio_tf_pool = (t_naive_tf / len(pick_tf)) / (tf_s / n_faults)
    ratio_cs = (t_naive_cs / len(pick_cs)) / (cs_s / n_faults)
    print(f"TF engine vs naive predict, per fault:    {ratio_tf:10,.0f} x   (target >= 500 x; "
          f"{ratio_tf_pool:,.0f} x inside the two-engine pool; tf-only campaign {tf_alone_wall:.1f} s wall)")
    print(f"C-sim harness vs naive recompile, per fault: {ratio_cs:7,.0f} x   (target >= 1000 x)")
    print(f"whole campaign, both engines, cross-checked: {wall:7.1f} s wall   (target < 180 s); "
          f"set-up {timings['setup_seconds']:.1f} s, shards {timings['shards_seconds']:.1f} s")
    print(f"cross-check: {summary['bit_exact']:,} of {summary['outputs_compared']:,} output words bit-exact, "
          f"{summary['scenarios_mismatching']} scenarios differ, max LSB diff {summary['max_lsb_diff']}")
    print(f"naive TF agrees with the campaign on {tf_agree}/{len(pick_tf)} sampled faults (changed-output counts); "
          f"naive C-sim on {cs_agree}/{len(pick_cs)}")
    return 0 if summary["scenarios_mismatching"] == 0 else 3


if __name__ == "__main__":
    raise SystemExit(main())
