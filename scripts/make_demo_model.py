"""Rebuild the bundled demo model and data (fkhls/data/): a jet-tagging-shaped QKeras MLP.

16-64-32-32-5, quantized_bits(6,0,alpha=1) weights and biases, quantized_relu(6) activations,
trained for a few epochs on seeded synthetic 5-class clusters. Inputs lie on the
ap_fixed<16,6> grid so the hardware sees exactly what QKeras sees.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SEED = 20261128
OUT = Path(__file__).resolve().parent.parent / "fkhls" / "data"


def synthetic_data(n: int, centers: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 5, size=n)
    x = centers[labels] + rng.normal(0.0, 0.8, size=(n, 16))
    # Snap to the ap_fixed<16,6> grid (10 fractional bits) so inputs are exact in hardware.
    x = np.round(x * 1024.0) / 1024.0
    return x.astype(np.float32), labels.astype(np.int64)


def main() -> int:
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(SEED)
    centers = rng.normal(0.0, 1.0, size=(5, 16))
    x_train, y_train = synthetic_data(8000, centers, rng)
    x_test, y_test = synthetic_data(1000, centers, rng)

    def qdense(units, name):
        return QDense(units, name=name, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                      bias_quantizer=quantized_bits(6, 0, alpha=1))

    inputs = tf.keras.Input(shape=(16,), name="input_1")
    h = qdense(64, "fc1")(inputs)
    h = QActivation(quantized_relu(6), name="relu1")(h)
    h = qdense(32, "fc2")(h)
    h = QActivation(quantized_relu(6), name="relu2")(h)
    h = qdense(32, "fc3")(h)
    h = QActivation(quantized_relu(6), name="relu3")(h)
    outputs = qdense(5, "output")(h)
    model = tf.keras.Model(inputs, outputs, name="jet_tagging_demo")
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=4, batch_size=128, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(OUT / "demo_model.h5", include_optimizer=False)
    np.save(OUT / "demo_inputs.npy", x_test)
    np.save(OUT / "demo_labels.npy", y_test)
    print(f"demo model saved to {OUT} (test accuracy {accuracy:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
