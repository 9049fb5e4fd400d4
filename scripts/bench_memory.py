"""Peak memory of a campaign and its report: by default the demo's exhaustive campaign through both engines.

Prints the wall time and ru_maxrss of this process (the campaign driver: model load, golden
pass, reading the shards, the report) and of its largest child (a pool or Dask worker, or a
C-sim harness), for the scheduler given (local-pool by default, or dask-local).

    python scripts/bench_memory.py [--scheduler dask-local] [--workers 2] [--project DIR]
    python scripts/bench_memory.py --model dense --layers fc1 --engine tf --samples 20   # 27,200 faults
    python scripts/bench_memory.py --model dense --layers fc2 --engine tf --samples 20   # 321,600 faults

``--model dense`` is bench_scale.py's generated 16-200x5-5 MLP: ``--layers`` picks how many faults
the campaign has, so two runs show how the peak grows with the number of faults.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).resolve().parents[1] / "fkhls" / "data"


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
    args = parser.parse_args()

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
        result = run_campaign(config, tmp / "results", workers=args.workers, quiet=True, scheduler=args.scheduler)
        wall = time.perf_counter() - start
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        shards = sum(p.stat().st_size for p in (tmp / "results" / "shards").iterdir())
        print(f"{args.model} model, layers {args.layers or 'all'}, engine {args.engine}, "
              f"scheduler {args.scheduler}, {args.workers} workers: {len(result.table):,} faults x "
              f"{result.table.n_samples:,} samples, {result.shards_total} shards ({shards / 1024:.0f} KiB of Parquet), "
              f"campaign + report {wall:.1f} s wall")
        print(f"peak RSS (ru_maxrss): campaign process {me:.0f} MiB; largest child {children:.0f} MiB")


if __name__ == "__main__":
    main()
