"""Peak memory of a campaign and of its report: by default the demo's exhaustive campaign through both engines.

The campaign runs first without its report (this process: model load, golden pass, the shards'
driver; ru_maxrss of this process and of its largest child, a pool or Dask worker or a C-sim
harness). Its report is then made twice, each in a fresh process whose own peak is printed:
streamed from the shards (``report_campaign``: a batch of rows at a time into ``report.Digest``),
and the naive way, from the whole table loaded in memory (``load_results`` then the report), so
the two peaks and how they grow with the faults are measured in the same run.

    python scripts/bench_memory.py [--scheduler dask-local] [--workers 2] [--project DIR]
    python scripts/bench_memory.py --model dense --layers fc1 --engine tf --samples 20   # 27,200 faults
    python scripts/bench_memory.py --model dense --layers fc2 --engine tf --samples 20   # 321,600 faults
    python scripts/bench_memory.py --model dense --engine tf --samples 20                # 1,321,640 faults

``--model dense`` is bench_scale.py's generated 16-200x5-5 MLP: ``--layers`` picks how many faults
the campaign has, so runs of different sizes show how each peak grows with the number of faults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).resolve().parents[1] / "fkhls" / "data"


def high_water_mib() -> float:
    """This process's peak resident set (VmHWM, MiB). Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child started by a big process would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report_only(results: Path, way: str) -> None:
    """Child process: make the report of ``results`` one ``way`` and print this process's peak RSS."""
    from fkhls.campaign.runner import load_results, report_campaign

    before = high_water_mib()  # after the imports
    start = time.perf_counter()
    report_campaign(results, load_results(results) if way == "table" else None)
    seconds = time.perf_counter() - start
    print(f"peak {high_water_mib():.0f} MiB (after imports {before:.0f} MiB), {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", default="local-pool")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--project", type=Path, help="an exported project of --model (default: export one)")
    parser.add_argument("--model", choices=("demo", "dense"), default="demo",
                        help="demo (bundled) or dense (bench_scale.py's 16-200x5-5, 8-bit)")
    parser.add_argument("--engine", choices=("tf", "csim", "both"), default="both")
    parser.add_argument("--layers", help="comma-separated layers to fault (default: all)")
    parser.add_argument("--samples", type=int, help="inputs (default: the demo's 1,000)")
    parser.add_argument("--report-only", type=Path, help=argparse.SUPPRESS)  # child: report this results directory
    parser.add_argument("--way", choices=("stream", "table"), default="stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report_only:
        report_only(args.report_only, args.way)
        return

    import numpy as np

    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = args.project
        if project is None:
            from fkhls.model.spec import load_keras_model
            from fkhls.project.export import ExportOptions, export_model

            if args.model == "demo":
                model = load_keras_model(DATA / "demo_model.h5")
            else:
                from bench_scale import dense_model  # scripts/bench_scale.py

                model = dense_model()
            project = export_model(model, tmp / "project", ExportOptions()).project_dir
        inputs, labels = DATA / "demo_inputs.npy", DATA / "demo_labels.npy"
        if args.samples is not None or args.model != "demo":
            n = args.samples or 1000
            inputs, labels = tmp / "x.npy", None
            if args.model == "demo":
                np.save(inputs, np.resize(np.load(DATA / "demo_inputs.npy"), (n, 16)))
            else:
                from bench_scale import grid_inputs

                np.save(inputs, grid_inputs((16,), n))
        layers = tuple(args.layers.split(",")) if args.layers else None
        config = CampaignConfig(Path(project), inputs, args.engine, Selection(mode="exhaustive", layers=layers),
                                labels)
        start = time.perf_counter()
        result = run_campaign(config, tmp / "results", workers=args.workers, quiet=True, scheduler=args.scheduler,
                              report=False)
        wall = time.perf_counter() - start
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        shards = sum(p.stat().st_size for p in (tmp / "results" / "shards").iterdir())
        print(f"{args.model} model, layers {args.layers or 'all'}, engine {args.engine}, "
              f"scheduler {args.scheduler}, {args.workers} workers: {result.identity['n_scenarios']:,} faults x "
              f"{result.identity['n_samples']:,} samples, {result.shards_total} shards ({shards / 1024:.0f} KiB of "
              f"Parquet), campaign without its report {wall:.1f} s wall")
        print(f"peak RSS (ru_maxrss): campaign process {me:.0f} MiB; largest child {children:.0f} MiB")
        peaks = {}
        for way, what in (("stream", "streamed from the shards (report_campaign)"),
                          ("table", "naive: the whole table loaded first (load_results)")):
            out = subprocess.run([sys.executable, __file__, "--report-only", str(tmp / "results"), "--way", way],
                                 check=True, capture_output=True, text=True).stdout.strip()
            peaks[way] = float(re.match(r"peak (\d+)", out).group(1))
            print(f"report {what}: {out}")
        summary = json.loads((tmp / "results" / "summary.json").read_text())
        print(f"report peak RSS, table / streamed: {peaks['table'] / peaks['stream']:.2f} x "
              f"({summary['faults']:,} faults)")


if __name__ == "__main__":
    main()
