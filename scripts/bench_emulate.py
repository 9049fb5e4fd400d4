"""Benchmark: FKeras-style single-bit fault emulation, naive per-fault predict vs fkhls's batched engine.

On the demo model (6-bit weights, 1000 inputs) it times, in one run:
  * naive (FKeras's way): per fault, build the faulty quantized tensor with
    ``quantize_and_bitflip``, assign it to the Keras variable, ``model.predict``, restore;
    on a seeded sample of faults (kernel and bias, every bit position);
  * batched: ``summarize_single_bit_faults`` on all 26,334 single-bit faults (weights AND biases),
    keeping the raw outputs of the sampled faults;
and checks that the outputs agree on the sampled faults. Prints faults x samples per second for
both and the per-fault speed ratio.

Usage: .venv/bin/python scripts/bench_emulate.py [--sample 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"

from naive import naive_tf_outputs  # noqa: E402  (scripts/naive.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=40, help="faults timed the naive way (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the naive sample (default 0)")
    args = parser.parse_args()

    from fkhls.emulate.emulator import golden_weights, input_raw, summarize_single_bit_faults
    from fkhls.faults.descriptors import exhaustive_faults
    from fkhls.core.fixedpoint import from_raw
    from fkhls.model.spec import describe_model, load_keras_model

    model = load_keras_model(DATA / "demo_model.h5")
    spec = describe_model(model)
    x = np.load(DATA / "demo_inputs.npy")
    weights = golden_weights(model, spec)
    x_raw = input_raw(spec, x)
    faults = exhaustive_faults(spec)
    n_samples = x.shape[0]
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(len(faults), size=min(args.sample, len(faults)), replace=False))

    qkeras_forward_warmup = model.predict(x[:8], verbose=0)  # build the predict function outside the timing
    del qkeras_forward_warmup
    naive, naive_s = naive_tf_outputs(model, [faults[i] for i in sample], x)

    start = time.perf_counter()
    summary = summarize_single_bit_faults(spec, weights, x_raw, faults, keep_outputs=sample)
    batched_s = time.perf_counter() - start

    mismatched = [int(i) for k, i in enumerate(sample)
                  if not np.array_equal(from_raw(spec.output_type, summary.outputs[int(i)]), naive[k].astype(np.float64))]
    naive_per_fault = naive_s / len(sample)
    batched_per_fault = batched_s / len(faults)
    print(f"model {spec.name}: {len(faults)} single-bit faults (weights and biases), {n_samples} inputs")
    print(f"naive (quantize_and_bitflip + assign + model.predict): {len(sample)} faults in {naive_s:.2f} s = "
          f"{naive_per_fault * 1e3:.1f} ms/fault, {len(sample) * n_samples / naive_s:,.0f} fault-samples/s")
    print(f"batched engine (summarize_single_bit_faults): {len(faults)} faults in {batched_s:.2f} s = "
          f"{batched_per_fault * 1e6:.1f} us/fault, {len(faults) * n_samples / batched_s:,.0f} fault-samples/s")
    print(f"speed-up per fault: {naive_per_fault / batched_per_fault:,.0f}x")
    print(f"faults changing any output: {int((summary.samples_changed > 0).sum())}; "
          f"changing a top-1 class somewhere: {int((summary.argmax_changed > 0).sum())}")
    if mismatched:
        print(f"MISMATCH: batched outputs differ from model.predict for faults {mismatched}")
        return 1
    print(f"outputs equal (bit for bit) on all {len(sample)} sampled faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
