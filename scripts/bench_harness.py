"""Per-fault cost of the fault harness vs a per-fault recompile, measured in one run.

    .venv/bin/python scripts/bench_harness.py [--faults 500] [--samples 1000] [--recompiles 3]

Exports the demo model, then times (a) the harness: one compiled binary, each fault flipped in
memory and all samples run; (b) the per-project path: `inject` a faulty copy + build its C-sim
(fresh cache, so g++ really runs) + run it, for a few faults. Prints both per-fault costs, their
ratio and faults x samples per second, and checks the two paths agree on the recompiled faults.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=500, help="single-bit faults run through the harness")
    parser.add_argument("--samples", type=int, default=1000, help="inputs per fault")
    parser.add_argument("--recompiles", type=int, default=3, help="faults timed through inject + g++ build + run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fkhls-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["FKHLS_CACHE_DIR"] = str(tmp / "cache")  # every build below really compiles
        from fkhls import csim
        from fkhls.codegen import inject_bits
        from fkhls.export import ExportOptions, export_model
        from fkhls.harness import build_harness, run_fault_harness
        from fkhls.manifest import load_manifest

        manifest = export_model(DATA / "demo_model.h5", tmp / "golden", ExportOptions())
        x = np.load(DATA / "demo_inputs.npy")
        x = np.resize(x, (args.samples, x.shape[1]))
        x_raw = csim.input_words(manifest, x)
        rng = np.random.default_rng(0)
        arrays = manifest.arrays()
        faults = []
        for _ in range(args.faults):
            record = arrays[rng.integers(len(arrays))]
            faults.append((record.array, int(rng.integers(record.size)), int(rng.integers(record.ptype.width))))

        t0 = time.perf_counter()
        binary = build_harness(manifest)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        y = run_fault_harness(manifest, x_raw, [[f] for f in faults], binary=binary)
        t_harness = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_fault_harness(manifest, x_raw, [[]], binary=binary)
        t_overhead = time.perf_counter() - t0  # process start, weight load, one golden pass
        per_fault_harness = t_harness / len(faults)

        t_recompile = []
        for index, fault in enumerate(faults[: args.recompiles]):
            t0 = time.perf_counter()
            faulty = inject_bits(manifest.project_dir, tmp / f"faulty{index}", [fault])
            words = csim.run_csim(load_manifest(faulty.project_dir), x)
            t_recompile.append(time.perf_counter() - t0)
            assert np.array_equal(words, y[index]), f"harness and inject+csim disagree on {fault}"
        per_fault_recompile = float(np.mean(t_recompile))

    print(f"demo model, {args.samples} samples, {os.cpu_count()} cores")
    print(f"harness build (once):           {t_build:8.2f} s")
    print(f"harness, {len(faults)} faults:          {t_harness:8.2f} s  ({t_overhead:.2f} s of it is one-off start-up)")
    print(f"harness per fault:              {per_fault_harness * 1e3:8.1f} ms  "
          f"({len(faults) * args.samples / t_harness:,.0f} fault x samples / s)")
    print(f"inject + g++ build + run, per fault ({len(t_recompile)} faults): {per_fault_recompile:8.2f} s  "
          f"({args.samples / per_fault_recompile:,.0f} fault x samples / s)")
    print(f"ratio (recompile / harness):    {per_fault_recompile / per_fault_harness:8.0f} x")
    print("harness == inject + csim on every recompiled fault: yes")


if __name__ == "__main__":
    main()
