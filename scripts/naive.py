"""The naive FKeras way, shared by the benchmark scripts: the baseline every speed-up is measured against.

Per fault: FKeras's core builds the faulty quantized tensor, it is assigned to the Keras
variable, ``model.predict`` runs on all inputs, and the variable is restored.
"""

from __future__ import annotations

import time

import numpy as np


def naive_tf_outputs(model, faults, x) -> tuple[np.ndarray, float]:
    """Outputs (F, N, out) float32 of one ``model.predict`` per single-bit fault, and the seconds it took."""
    import tensorflow as tf

    from fkhls.emulate.emulator import qkeras_forward, quantize_and_bitflip
    from fkhls.faults.descriptors import FaultyLayerBitRegion

    qkeras_forward(model, x[:8])  # warm-up (graph tracing) outside the timing
    outputs = []
    start = time.perf_counter()
    for fault in faults:
        layer = model.get_layer(fault.layer)
        variable = layer.kernel if fault.tensor == "kernel" else layer.bias
        quantizer = getattr(layer, f"{fault.tensor}_quantizer_internal")
        saved = variable.numpy().copy()
        try:
            region = FaultyLayerBitRegion(fault.lbi, fault.lbi, 1.0)
            variable.assign(quantize_and_bitflip(tf.convert_to_tensor(saved), quantizer, [region]))
            outputs.append(qkeras_forward(model, x))
        finally:
            variable.assign(saved)
    return np.stack(outputs), time.perf_counter() - start
