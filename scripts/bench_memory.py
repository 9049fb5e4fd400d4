"""Peak memory of a campaign and its report: the demo's exhaustive campaign through both engines.

Prints the wall time and ru_maxrss of this process (the campaign driver: model load, golden
pass, reading the shards, the report) and of its largest child (a pool or Dask worker, or a
C-sim harness), for the scheduler given (local-pool by default, or dask-local).

    python scripts/bench_memory.py [--scheduler dask-local] [--workers 2] [--project DIR]
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
    parser.add_argument("--project", type=Path, help="an exported demo project (default: export one to a temp dir)")
    args = parser.parse_args()

    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = args.project
        if project is None:
            from fkhls.model.spec import load_keras_model
            from fkhls.project.export import ExportOptions, export_model

            model = load_keras_model(DATA / "demo_model.h5")
            project = export_model(model, tmp / "project", ExportOptions()).project_dir
        config = CampaignConfig(Path(project), DATA / "demo_inputs.npy", "both", Selection(mode="exhaustive"),
                                DATA / "demo_labels.npy")
        start = time.perf_counter()
        result = run_campaign(config, tmp / "results", workers=args.workers, quiet=True, scheduler=args.scheduler)
        wall = time.perf_counter() - start
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        shards = sum(p.stat().st_size for p in (tmp / "results" / "shards").iterdir())
        print(f"scheduler {args.scheduler}, {args.workers} workers: {len(result.table):,} faults x "
              f"{result.table.n_samples:,} samples, {result.shards_total} shards ({shards / 1024:.0f} KiB of Parquet), "
              f"campaign + report {wall:.1f} s wall")
        print(f"peak RSS (ru_maxrss): campaign process {me:.0f} MiB; largest child {children:.0f} MiB")


if __name__ == "__main__":
    main()
