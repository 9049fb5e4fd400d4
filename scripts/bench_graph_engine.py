"""Time of the batched single-bit engine's generic path (graphs, non-kernel arrays) against the naive way, in one run.

    .venv/bin/python scripts/bench_graph_engine.py [--samples 1000] [--naive 100] [--repeat 3]

On the test suite's graph models (residual CNN, Concatenate of two dense branches, the five
elementwise merges) and a wider residual MLP built here (``--wide``) every single-bit fault, and
on chain models with arrays the fast path does not take (batch norm scale/bias, ApplyAlpha
scale/bias, depthwise and pointwise kernels) every fault of those arrays, is evaluated on seeded
inputs:
  (a) naive: ``forward_raw`` of the whole model with the fault applied (timed on the first
      ``--naive`` faults, scaled to all);
  (b) ``summarize_single_bit_faults``: these faults take the generic path
      (``fkhls.emulate.graph_engine``).
The first ``--naive`` faults are checked equal. Prints one-core CPU seconds of this process (BLAS
held to one thread; wall time on a shared, loaded machine measures the load), (b) the best of
``--repeat`` runs, the changed (fault, sample) pairs and the ratio (a)/(b).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core for both ways: times are CPU seconds of this process
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="inputs per fault")
    parser.add_argument("--naive", type=int, default=100, help="faults timed the naive way (a prefix)")
    parser.add_argument("--repeat", type=int, default=3, help="engine runs; the fastest is reported")
    parser.add_argument("--wide", type=int, default=96, help="width of the residual MLP case (0: skip it)")
    args = parser.parse_args()

    import numpy as np

    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import exhaustive_faults
    from fkhls.model.spec import describe_model
    from tests import models

    names = ["residual", "concat", "merges", "batchnorm", "alpha", "separable"] + (["wide"] if args.wide else [])
    for name in names:
        model = _wide_residual(args.wide) if name == "wide" else models.build(name)
        spec = describe_model(model)
        weights = emulate.golden_weights(model, spec)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x_raw = emulate.input_raw(spec, models.grid_inputs(shape, args.samples, 1, fractional=3, scale=1.5))
        owners = spec.owners()
        fast = ("dense", "conv1d", "conv2d")  # the chain fast path's kinds (emulator._FAST_KINDS)
        faults = [f for f in exhaustive_faults(spec)
                  if not spec.is_chain or spec.layers[owners[(f.layer, f.tensor)]].kind not in fast]
        batched = float("inf")
        for _ in range(max(1, args.repeat)):
            start = time.process_time()
            summary = emulate.summarize_single_bit_faults(spec, weights, x_raw, faults,
                                                          keep_outputs=range(min(args.naive, len(faults))))
            batched = min(batched, time.process_time() - start)
        naive_faults = faults[:args.naive]
        start = time.process_time()
        for k, fault in enumerate(naive_faults):
            out = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
            if not np.array_equal(out, summary.outputs[k]):
                raise SystemExit(f"{name}: fault {fault} differs between the engine and the full forward")
        naive = (time.process_time() - start) / len(naive_faults) * len(faults)
        kinds = sorted({spec.layers[owners[(f.layer, f.tensor)]].kind for f in faults})
        name = f"wide residual MLP 16-{args.wide}-{args.wide}(+skip)-4" if name == "wide" else name
        shape_of = "chain" if spec.is_chain else "graph"
        print(f"{name} ({shape_of}; faults in {', '.join(kinds)}): {len(faults)} faults x "
              f"{args.samples} samples, {int(summary.samples_changed.sum())} changed pairs: engine {batched:.3f} s, "
              f"naive {naive:.2f} s (est. from {len(naive_faults)}), ratio {naive / batched:.2f}x")


def _wide_residual(width: int):
    """A residual MLP wider than the test models: x -> dense -> relu -> dense -> relu, + the first relu, -> dense."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    from tests import models

    tf.keras.utils.set_random_seed(7)
    q = quantized_bits(4, 0, alpha=1)
    x_in = tf.keras.Input(shape=(16,), name="x")
    a = QDense(width, name="d1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    a = QActivation(quantized_relu(4, 2), name="r1")(a)
    b = QDense(width, name="d2", kernel_quantizer=q, bias_quantizer=q)(a)
    b = QActivation(quantized_relu(4, 2), name="r2")(b)
    h = tf.keras.layers.Add(name="add")([a, b])
    out = QDense(4, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="wide_residual")
    models._spread_weights(model, 7)
    return model


if __name__ == "__main__":
    main()
