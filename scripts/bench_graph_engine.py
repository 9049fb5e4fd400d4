"""Time of the batched single-bit engine on graph models (the generic exact path) against the naive way, in one run.

    .venv/bin/python scripts/bench_graph_engine.py [--samples 1000] [--naive 100]

For the test suite's graph models (residual CNN, Concatenate of two dense branches, the five
elementwise merges) every single-bit fault is evaluated on seeded inputs:
  (a) naive: ``forward_raw`` of the whole model with the fault applied (timed on the first
      ``--naive`` faults, scaled to all);
  (b) ``summarize_single_bit_faults``: for a graph every fault takes the generic path (the faulty
      step recomputed, then only the changed samples downstream).
The first ``--naive`` faults are checked equal. Prints seconds and the ratio (a)/(b).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="inputs per fault")
    parser.add_argument("--naive", type=int, default=100, help="faults timed the naive way (a prefix)")
    args = parser.parse_args()

    import numpy as np

    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import exhaustive_faults
    from fkhls.model.spec import describe_model
    from tests import models

    for name in ("residual", "concat", "merges"):
        model = models.build(name)
        spec = describe_model(model)
        weights = emulate.golden_weights(model, spec)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x_raw = emulate.input_raw(spec, models.grid_inputs(shape, args.samples, 1, fractional=3, scale=1.5))
        faults = exhaustive_faults(spec)
        start = time.perf_counter()
        summary = emulate.summarize_single_bit_faults(spec, weights, x_raw, faults, keep_outputs=range(args.naive))
        batched = time.perf_counter() - start
        naive_faults = faults[:args.naive]
        start = time.perf_counter()
        for k, fault in enumerate(naive_faults):
            out = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
            if not np.array_equal(out, summary.outputs[k]):
                raise SystemExit(f"{name}: fault {fault} differs between the engine and the full forward")
        naive = (time.perf_counter() - start) / len(naive_faults) * len(faults)
        print(f"{name}: {len(faults)} faults x {args.samples} samples: engine {batched:.2f} s, naive {naive:.2f} s "
              f"(est. from {len(naive_faults)}), ratio {naive / batched:.2f}x")


if __name__ == "__main__":
    main()
