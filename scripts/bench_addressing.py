"""Time of the exhaustive address map of the demo model against a naive per-bit lookup, in one run.

    .venv/bin/python scripts/bench_addressing.py [--naive-bits 26334] [--repeats 3]

Exports the demo model (16-64-32-32-5, 6-bit weights) with the Resource strategy (reuse factor 4,
so every kernel bit also has a BRAM word and bit), then maps all 26,334 single-bit faults:
  (a) naive: one ``AddressMap.map_lbi`` call per bit (each bit checked and mapped on its own);
  (b) ``fkhls.faults.addressing.map_faults``: building the AddressMap, then one vectorized call
      per tensor.
Both results are checked equal on the bits (a) ran. Prints seconds, bits per second and the
ratio (a)/(b). The figure replaces the wall-clock assert the tests once had (issue 14).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"


def best_of(repeats: int, fn):
    """(result, smallest wall time in seconds) of ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-bits", type=int, default=26334, help="bits mapped the naive way (a prefix)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (the best is printed)")
    args = parser.parse_args()

    from fkhls.faults.addressing import AddressMap, map_faults, spec_from_manifest
    from fkhls.faults.descriptors import exhaustive_faults
    from fkhls.project.export import ExportOptions, export_model

    with tempfile.TemporaryDirectory(prefix="fkhls-bench-addr-") as tmp:
        manifest = export_model(DATA / "demo_model.h5", Path(tmp) / "demo",
                                ExportOptions(strategy="Resource", reuse_factor=4))
        faults = exhaustive_faults(spec_from_manifest(manifest))
        naive_faults = faults[:args.naive_bits]

        def fast():
            return map_faults(AddressMap(manifest), faults)

        def naive():
            amap = AddressMap(manifest)
            return [amap.map_lbi(f.layer, f.tensor, f.lbi) for f in naive_faults]

        mapped, t_fast = best_of(args.repeats, fast)
        slow, t_naive = best_of(args.repeats, naive)
        if mapped[:len(slow)] != slow:
            raise SystemExit("the two ways disagree: the benchmark is void")
        per_bit_naive = t_naive / len(slow)
        per_bit_fast = t_fast / len(mapped)
        print(f"bits mapped: {len(mapped):,} (naive way: {len(slow):,}), best of {args.repeats}")
        print(f"(a) naive, one map_lbi call per bit: {t_naive:.3f} s   {len(slow) / t_naive:,.0f} bits/s")
        print(f"(b) AddressMap + map_faults:         {t_fast:.3f} s   {len(mapped) / t_fast:,.0f} bits/s")
        print(f"ratio (a)/(b) per bit: {per_bit_naive / per_bit_fast:.1f}x")


if __name__ == "__main__":
    main()
