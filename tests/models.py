"""Small QKeras models for tests, built deterministically, with weights spread over each quantizer's grid.

Every supported layer and quantizer appears in at least one model here: QDense, QConv1D,
QConv2D (same/valid padding, strides), QActivation(quantized_relu / quantized_bits), an inline
activation, Flatten, Activation('linear'), signed and unsigned (keep_negative=0) weights; Dropout,
Reshape, an unquantized relu (inline and Activation('relu')) and a quantized_bits(alpha=None) bias.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _spread_weights(model, seed: int) -> None:
    """Give every kernel/bias values across (and just past) its quantizer's range, so words hit the extremes."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for var, value in zip(layer.weights, layer.get_weights()):
            quantizer = getattr(layer, "kernel_quantizer_internal" if "kernel" in var.name else "bias_quantizer_internal",
                                None)
            if quantizer is None:
                new.append(value)
                continue
            cfg = quantizer.get_config()
            top = 2.0 ** cfg.get("integer", 0)
            low = -top if cfg.get("keep_negative", 1) else 0.0
            new.append(rng.uniform(low * 1.05, top * 1.05, size=value.shape).astype(np.float32))
        if new:
            layer.set_weights(new)


def grid_inputs(shape: tuple[int, ...], n: int, seed: int, fractional: int = 6, scale: float = 2.0) -> np.ndarray:
    """Random inputs on the ap_fixed<16,6> grid, inside its range.

    Six fractional bits by default keep every QKeras float32 sum of these small models exact
    (< 24 significant bits), so golden parity with QKeras is a fair test of the hardware types.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, size=(n, *shape))
    x = np.clip(np.round(x * 2**fractional) / 2**fractional, -32.0, 32.0 - 2.0**-fractional)
    return x.astype(np.float32)


def dense_model(seed: int = 1):
    """MLP with every activation kind: relu, quantized_bits activation, inline relu, linear."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(10,), name="x")
    h = QDense(8, name="d1", kernel_quantizer=quantized_bits(8, 2, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = QDense(7, name="d2", kernel_quantizer=quantized_bits(5, 1, alpha=1), bias_quantizer=quantized_bits(6, 1, alpha=1),
               activation=quantized_relu(5, 1))(h)
    h = QDense(6, name="d3", kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = QActivation(quantized_bits(8, 3, alpha=1), name="qb")(h)
    h = tf.keras.layers.Activation("linear", name="lin")(h)
    out = QDense(3, name="out", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="dense_test")
    _spread_weights(model, seed)
    return model


def unsigned_model(seed: int = 2):
    """Unsigned weights (keep_negative=0): hls4ml's default types them signed and loses a bit."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(9,), name="x")
    h = QDense(6, name="u1", kernel_quantizer=quantized_bits(6, 0, keep_negative=0, alpha=1),
               bias_quantizer=quantized_bits(6, 0, keep_negative=0, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 1), name="r1")(h)
    out = QDense(4, name="u2", kernel_quantizer=quantized_bits(7, 1, keep_negative=0, alpha=1),
                 bias_quantizer=quantized_bits(6, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="unsigned_test")
    _spread_weights(model, seed)
    return model


def conv2d_model(seed: int = 3):
    """QConv2D same + strided valid, Flatten, QDense."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(6, 6, 2), name="img")
    h = QConv2D(3, (3, 3), padding="same", name="c1", kernel_quantizer=quantized_bits(6, 1, alpha=1),
                bias_quantizer=quantized_bits(6, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = QConv2D(4, (2, 2), strides=(2, 2), padding="valid", name="c2", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    h = QActivation(quantized_relu(5, 2), name="r2")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="conv2d_test")
    _spread_weights(model, seed)
    return model


def conv1d_model(seed: int = 4):
    """QConv1D valid, inline relu, Flatten, QDense."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(8, 3), name="seq")
    h = QConv1D(4, 3, padding="valid", name="k1", kernel_quantizer=quantized_bits(6, 1, alpha=1),
                bias_quantizer=quantized_bits(6, 1, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="conv1d_test")
    _spread_weights(model, seed)
    return model


def shapes_model(seed: int = 5):
    """Dropout, Reshape, unquantized relu (inline on a QConv1D and QDense, and Activation('relu')), alpha=None bias."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(7, 2), name="seq")
    h = QConv1D(3, 3, name="k1", activation="relu", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 1, alpha=None))(x_in)
    h = tf.keras.layers.Dropout(0.25, name="drop")(h)
    h = tf.keras.layers.Reshape((15,), name="reshape")(h)
    h = QDense(5, name="d1", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=None),
               activation="relu")(h)
    h = QDense(4, name="d2", kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Activation("relu", name="relu")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="shapes_test")
    _spread_weights(model, seed)
    return model


BUILDERS = {"dense": dense_model, "unsigned": unsigned_model, "conv2d": conv2d_model, "conv1d": conv1d_model,
            "shapes": shapes_model}


def build(name: str):
    return BUILDERS[name]()


def inputs_for(model, n: int = 200, seed: int = 0) -> np.ndarray:
    return grid_inputs(tuple(int(d) for d in model.inputs[0].shape[1:]), n, seed)


def pooling_model(seed: int = 6):
    """MaxPooling2D after an activation, GlobalMaxPooling2D right after a conv accumulator, then QDense."""
    import tensorflow as tf
    from qkeras import QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QConv2D(3, (2, 2), name="c1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.MaxPooling2D((2, 2), name="pool")(h)
    h = QConv2D(4, (2, 2), name="c2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.GlobalMaxPooling2D(name="gpool")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="pooling_test")
    _spread_weights(model, seed)
    return model


def pooling1d_model(seed: int = 7):
    """MaxPooling1D with strides != pool size, GlobalMaxPooling1D, an unsigned-typed input to the pool."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(9, 2), name="seq")
    h = QConv1D(3, 2, name="k1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1), activation=quantized_relu(5, 1))(x_in)
    h = tf.keras.layers.MaxPooling1D(3, strides=2, name="pool")(h)
    h = QConv1D(4, 2, name="k2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.GlobalMaxPooling1D(name="gpool")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="pooling1d_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(pooling=pooling_model, pooling1d=pooling1d_model)


def avgpool_model(seed: int = 8):
    """AveragePooling2D 2x2 and GlobalAveragePooling2D over 2x2 (powers of two: exact), on signed conv sums."""
    import tensorflow as tf
    from qkeras import QConv2D, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QConv2D(3, (2, 2), name="c1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1))(x_in)
    h = tf.keras.layers.AveragePooling2D((2, 2), name="pool")(h)
    h = QConv2D(4, (1, 2), name="c2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.GlobalAveragePooling2D(name="gpool")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="avgpool_test")
    _spread_weights(model, seed)
    return model


def avgpool1d_model(seed: int = 9):
    """AveragePooling1D(3, strides=2) and GlobalAveragePooling1D over 3: divides by 3, approximate by nature."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(11, 2), name="seq")
    h = QConv1D(3, 2, name="k1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1))(x_in)
    h = tf.keras.layers.AveragePooling1D(3, strides=2, name="pool")(h)
    h = QConv1D(4, 2, name="k2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1), activation=quantized_relu(6, 2))(h)
    h = tf.keras.layers.GlobalAveragePooling1D(name="gpool")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="avgpool1d_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(avgpool=avgpool_model, avgpool1d=avgpool1d_model)


def zeropad_model(seed: int = 10):
    """ZeroPadding2D on the input (asymmetric) and on a conv accumulator, before valid and strided convs."""
    import tensorflow as tf
    from qkeras import QConv2D, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(4, 4, 2), name="img")
    h = tf.keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad0")(x_in)
    h = QConv2D(3, (3, 3), name="c1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    h = tf.keras.layers.ZeroPadding2D(1, name="pad1")(h)
    h = QConv2D(2, (2, 2), strides=(2, 2), name="c2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="zeropad_test")
    _spread_weights(model, seed)
    return model


def zeropad1d_model(seed: int = 11):
    """ZeroPadding1D (asymmetric) after a quantized activation."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(6, 2), name="seq")
    h = QConv1D(3, 2, name="k1", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.ZeroPadding1D((2, 1), name="pad")(h)
    h = QConv1D(2, 3, name="k2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="zeropad1d_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(zeropad=zeropad_model, zeropad1d=zeropad1d_model)


def sigmoid_model(seed: int = 12):
    """Activation('sigmoid') between two QDense layers: hls4ml's lookup table."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(6, name="d1", kernel_quantizer=quantized_bits(5, 1, alpha=1), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = tf.keras.layers.Activation("sigmoid", name="sig")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="sigmoid_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(sigmoid=sigmoid_model)


def tanh_model(seed: int = 13):
    """Activation('tanh') between two QDense layers: hls4ml's lookup table."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(6, name="d1", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(x_in)
    h = tf.keras.layers.Activation("tanh", name="tanh")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="tanh_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(tanh=tanh_model)


def softmax_model(seed: int = 14):
    """A QDense classifier with an inline activation='softmax': hls4ml's stable softmax tables."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(8, name="d1", kernel_quantizer=quantized_bits(5, 1, alpha=1), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    out = QDense(5, name="head", kernel_quantizer=quantized_bits(5, 1, alpha=1), bias_quantizer=quantized_bits(5, 1, alpha=1),
                 activation="softmax")(h)  # inline: hls4ml splits it into a Softmax layer
    model = tf.keras.Model(x_in, out, name="softmax_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(softmax=softmax_model)


def softmax_narrow_model(seed: int = 15):
    """Softmax of 6-bit words (a quantized_bits activation before it): hls4ml shrinks both tables (64 and 32)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(6, name="head", kernel_quantizer=quantized_bits(5, 1, alpha=1), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q")(h)
    out = tf.keras.layers.Activation("softmax", name="sm")(h)
    model = tf.keras.Model(x_in, out, name="softmax_narrow_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(softmax_narrow=softmax_narrow_model)


def sequential_model(seed: int = 14):
    """A tf.keras.Sequential QKeras MLP (the JSON files of hls4ml's examples are Sequential or functional)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(6,), name="x"),
        QDense(5, name="s1", kernel_quantizer=quantized_bits(6, 1, alpha=1), bias_quantizer=quantized_bits(6, 1, alpha=1)),
        QActivation(quantized_relu(6, 2), name="r1"),
        QDense(3, name="s2", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1)),
    ], name="sequential_test")
    _spread_weights(model, seed)
    return model


def leaky_model(seed: int = 16):
    """quantized_relu with negative_slope (hls4ml's LeakyReLU) on a bounded input, a relu_upper_bound under the default
    is_quantized_clip=True (the forward ignores it), and a plain quantized_relu that saturates at its range."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(8, name="d1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_bits(8, 2, alpha=1), name="bound")(h)  # [-4, 4): inside the leaky clip
    h = QActivation(quantized_relu(6, 2, negative_slope=0.25), name="leaky")(h)
    h = QDense(6, name="d2", kernel_quantizer=q, bias_quantizer=q)(h)
    h = QActivation(quantized_relu(6, 2, relu_upper_bound=1.5), name="capped")(h)  # default clip: bound unused
    h = QDense(5, name="d3", kernel_quantizer=q, bias_quantizer=q)(h)
    h = QActivation(quantized_relu(5, 1), name="sat")(h)
    out = QDense(3, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="leaky_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(leaky=leaky_model)


def binary_model(seed: int = 17):
    """binary and ternary weights (alpha=1; a QKeras layer turns a kernel alpha=None into auto_po2) in QConv1D and
    QDense layers, a binary and a ternary bias (alpha=None):
    fkhls builds them as ap_fixed<2,2> words with the plain multiply (hls4ml: xnor bits / weight_ternary)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense
    from qkeras.quantizers import binary, quantized_bits, quantized_relu, ternary

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(6, 2), name="x")
    h = QConv1D(3, 3, name="c1", kernel_quantizer=binary(alpha=1), bias_quantizer=q)(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    h = QDense(8, name="d1", kernel_quantizer=ternary(alpha=1), bias_quantizer=binary())(h)
    h = QActivation(quantized_relu(6, 2), name="r2")(h)
    out = QDense(3, name="head", kernel_quantizer=binary(alpha=1), bias_quantizer=ternary())(h)
    model = tf.keras.Model(x_in, out, name="binary_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(binary=binary_model)


def hard_model(seed: int = 18):
    """quantized_tanh (plain and symmetric) and quantized_sigmoid activations: hls4ml's HardActivation, exact."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_sigmoid, quantized_tanh

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(8, name="d1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_tanh(6), name="tanh")(h)
    h = QDense(6, name="d2", kernel_quantizer=q, bias_quantizer=q)(h)
    h = QActivation(quantized_sigmoid(5), name="sigmoid")(h)
    h = QDense(4, name="d3", kernel_quantizer=q, bias_quantizer=q)(h)
    h = QActivation(quantized_tanh(5, symmetric=True), name="tanh_sym")(h)
    out = QDense(3, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="hard_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(hard=hard_model)


def plain_dense_model(seed: int = 19):
    """A plain Keras Dense (inline relu) between QKeras layers, its float weights on a 2**-4 grid: fkhls types them
    ap_fixed<6,2> / the bias's narrowest type, and the sums stay within float32's 24 bits (exact)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(5,), name="x")
    h = QDense(8, name="d1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Dense(6, name="plain", activation="relu")(h)
    out = QDense(3, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="plain_dense_test")
    _spread_weights(model, seed)
    rng = np.random.default_rng(seed)
    plain = model.get_layer("plain")
    plain.set_weights([rng.integers(-32, 32, size=w.shape).astype(np.float32) / 16 for w in plain.get_weights()])
    return model


BUILDERS.update(plain_dense=plain_dense_model)


def plain_conv_model(seed: int = 20):
    """A plain Keras Conv2D ('same', inline relu) after a QConv2D, its float weights on a 2**-3 grid (typed by fkhls)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(5, 5, 1), name="x")
    h = QConv2D(2, (3, 3), name="c1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Conv2D(2, (2, 2), padding="same", activation="relu", name="plain")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(3, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="plain_conv_test")
    _spread_weights(model, seed)
    rng = np.random.default_rng(seed)
    plain = model.get_layer("plain")
    plain.set_weights([rng.integers(-12, 12, size=w.shape).astype(np.float32) / 8 for w in plain.get_weights()])
    return model


BUILDERS.update(plain_conv=plain_conv_model)


def _set_batchnorm(layer, rng) -> None:
    """Batch-norm variables that make a real (non-identity, one negative gamma) per-channel scale and bias."""
    values = []
    for var in layer.weights:
        n = var.shape[-1]
        name = var.name.split("/")[-1].split(":")[0]
        values.append({"gamma": rng.uniform(0.4, 1.6, n) * np.where(np.arange(n) == 0, -1, 1),
                       "beta": rng.uniform(-0.5, 0.5, n), "moving_mean": rng.uniform(-1, 1, n),
                       "moving_variance": rng.uniform(0.3, 2.5, n)}[name].astype(np.float32))
    layer.set_weights(values)


def batchnorm_model(seed: int = 16):
    """BatchNormalization after a QConv2D (channels last) and QBatchNormalization after a QDense (hls4ml's
    scale and bias arrays: fault targets)."""
    import tensorflow as tf
    from qkeras import QActivation, QBatchNormalization, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4, 4, 1), name="x")
    h = QConv2D(2, (3, 3), name="c1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = tf.keras.layers.BatchNormalization(name="bn1")(h)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    h = QDense(3, name="d1", kernel_quantizer=q, bias_quantizer=q)(h)
    out = QBatchNormalization(name="bn2")(h)
    model = tf.keras.Model(x_in, out, name="batchnorm_test")
    _spread_weights(model, seed)
    rng = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):
        _set_batchnorm(model.get_layer(name), rng)
    return model


BUILDERS.update(batchnorm=batchnorm_model)


def convbn_model(seed: int = 17):
    """QConv2DBatchnorm (batch norm folded into the conv, QKeras's inference fold; hls4ml's Conv2DBatchnorm), then
    a QDense: the folded quantized kernel and bias are the hardware arrays."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2DBatchnorm, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(6, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4, 4, 2), name="x")
    h = QConv2DBatchnorm(3, (3, 3), name="cbn", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 1, alpha=1),
                 bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="convbn_test")
    _spread_weights(model, seed)
    rng = np.random.default_rng(seed)
    layer = model.get_layer("cbn")
    values = []
    for var, value in zip(layer.weights, layer.get_weights()):
        name = var.name.split("/")[-1].split(":")[0]
        n = value.shape[-1] if value.ndim else 1
        values.append({"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.uniform(-0.5, 0.5, n),
                       "moving_mean": rng.uniform(-1, 1, n), "moving_variance": rng.uniform(0.5, 2.0, n)}
                      .get(name, value).astype(value.dtype) if name in ("gamma", "beta", "moving_mean",
                                                                       "moving_variance") else value)
    layer.set_weights(values)
    return model


BUILDERS.update(convbn=convbn_model)


def alpha_model(seed: int = 18):
    """QDense kernels with alpha='auto_po2' (per-channel power-of-two scales 1/8 .. 4): hls4ml 1.3.0 divides the
    kernel by its scale and inserts an ApplyAlpha step (scale and the moved bias: fault targets)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(6,), name="x")
    h = QDense(4, name="d1", kernel_quantizer=quantized_bits(5, 0, alpha="auto_po2"),
               bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    out = QDense(3, name="d2", kernel_quantizer=quantized_bits(5, 0, alpha="auto_po2"),
                 bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="alpha_test")
    rng = np.random.default_rng(seed)
    for name, spread in (("d1", [1, 0.3, 0.1, 2.5]), ("d2", [0.2, 1, 4])):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([(rng.uniform(-1, 1, kernel.shape) * np.array(spread)).astype(np.float32),
                           rng.uniform(-2, 2, bias.shape).astype(np.float32)])
    return model


BUILDERS.update(alpha=alpha_model)


def residual_model(seed: int = 16):
    """A residual CNN: conv -> relu -> [conv -> relu -> conv] + skip -> relu -> dense; the skip tensor has two readers."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 0, alpha=1)
    x_in = tf.keras.Input(shape=(5, 5, 1), name="x")
    skip = QActivation(quantized_relu(5, 2), name="r0")(QConv2D(2, (2, 2), name="c0", kernel_quantizer=q, bias_quantizer=q)(x_in))
    h = QConv2D(2, (3, 3), padding="same", name="c1", kernel_quantizer=q, bias_quantizer=q)(skip)
    h = QActivation(quantized_relu(5, 2), name="r1")(h)
    h = QConv2D(2, (3, 3), padding="same", name="c2", kernel_quantizer=q, bias_quantizer=q)(h)
    h = tf.keras.layers.Add(name="add")([h, skip])
    h = QActivation(quantized_relu(6, 3), name="r2")(h)
    out = QDense(2, name="head", kernel_quantizer=q, bias_quantizer=q)(tf.keras.layers.Flatten(name="flat")(h))
    model = tf.keras.Model(x_in, out, name="residual_test")
    _spread_weights(model, seed)
    return model


def concat_model(seed: int = 17):
    """Two dense branches of one input joined by Concatenate, then a dense head."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(5, 0, alpha=1)
    x_in = tf.keras.Input(shape=(5,), name="x")
    a = QActivation(quantized_relu(5, 2), name="ra")(QDense(3, name="da", kernel_quantizer=q, bias_quantizer=q)(x_in))
    b = QDense(2, name="db", kernel_quantizer=q, bias_quantizer=q, activation=quantized_relu(4, 1))(x_in)
    h = tf.keras.layers.Concatenate(name="cat")([a, b])
    out = QDense(3, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="concat_test")
    _spread_weights(model, seed)
    return model


def merges_model(seed: int = 18):
    """Subtract, Multiply, Average, Maximum and Minimum of two quantized dense branches (each read several times)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(4, 0, alpha=1)
    x_in = tf.keras.Input(shape=(4,), name="x")
    a = QActivation(quantized_relu(4, 1), name="ra")(QDense(3, name="da", kernel_quantizer=q, bias_quantizer=q)(x_in))
    b = QActivation(quantized_bits(4, 1, alpha=1), name="qb")(QDense(3, name="db", kernel_quantizer=q, bias_quantizer=q)(x_in))
    s = tf.keras.layers.Subtract(name="sub")([a, b])
    m = tf.keras.layers.Multiply(name="mul")([a, b])
    v = tf.keras.layers.Average(name="avg")([s, m])
    h = tf.keras.layers.Maximum(name="max")([v, a])
    h = tf.keras.layers.Minimum(name="min")([h, b])
    out = QDense(2, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="merges_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(residual=residual_model, concat=concat_model, merges=merges_model)


def concat_axes_model(seed: int = 19):
    """Concatenate along every axis hls4ml builds: rank 3 (axes 1, 2, 3), rank 2 (axes 1, 2) and rank 1."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(4, 0, alpha=1)
    layers = tf.keras.layers
    x_in = tf.keras.Input(shape=(2, 3, 1), name="x")
    a = QConv2D(2, (2, 2), padding="same", name="ca", kernel_quantizer=q, bias_quantizer=q)(x_in)
    b = QActivation(quantized_relu(4, 1), name="rb")(
        QConv2D(2, (2, 2), padding="same", name="cb", kernel_quantizer=q, bias_quantizer=q)(x_in))
    flat = [layers.Flatten(name=f"f3_{k}")(layers.Concatenate(axis=axis, name=f"cat3_{k}")([a, b]))
            for k, axis in enumerate((1, 2, -1))]
    a2, b2 = layers.Reshape((6, 2), name="a2")(a), layers.Reshape((6, 2), name="b2")(b)
    flat += [layers.Flatten(name=f"f2_{k}")(layers.Concatenate(axis=axis, name=f"cat2_{k}")([a2, b2]))
             for k, axis in enumerate((1, -1))]
    h = flat[0]
    for k, other in enumerate(flat[1:]):
        h = layers.Concatenate(name=f"cat1_{k}")([h, other])
    out = QDense(2, name="head", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, out, name="concat_axes_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(concat_axes=concat_axes_model)


def _spread_named(model, seed: int) -> None:
    """``_spread_weights`` for layers whose variables have their own quantizers (depthwise_kernel -> depthwise_quantizer)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for var, value in zip(layer.weights, layer.get_weights()):
            name = var.name.split("/")[-1].split(":")[0]
            key = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise"}.get(name, name)
            quantizer = getattr(layer, f"{key}_quantizer_internal", None)
            if quantizer is None:
                new.append(value)
                continue
            cfg = quantizer.get_config()
            top = 2.0 ** cfg.get("integer", 0)
            low = -top if cfg.get("keep_negative", 1) else 0.0
            new.append(rng.uniform(low * 1.05, top * 1.05, size=value.shape).astype(np.float32))
        if new:
            layer.set_weights(new)


def depthwise_model(seed: int = 16):
    """QDepthwiseConv2D 'same' with an inline quantized_relu, then a strided one without bias, then QDense."""
    import tensorflow as tf
    from qkeras import QDense, QDepthwiseConv2D
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QDepthwiseConv2D((3, 3), padding="same", name="dw1", depthwise_quantizer=quantized_bits(5, 0, alpha=1),
                         bias_quantizer=quantized_bits(5, 1, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = QDepthwiseConv2D((2, 2), strides=(2, 2), use_bias=False, name="dw2",
                         depthwise_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(3, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="depthwise_test")
    _spread_named(model, seed)
    return model


BUILDERS.update(depthwise=depthwise_model)


def separable_model(seed: int = 17):
    """QSeparableConv2D (hls4ml: DepthwiseConv2D + PointwiseConv2D) 'same' with strides, inline relu, then QDense."""
    import tensorflow as tf
    from qkeras import QDense, QSeparableConv2D
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QSeparableConv2D(3, (2, 2), strides=(2, 2), padding="same", name="sep",
                         depthwise_quantizer=quantized_bits(4, 0, alpha=1), pointwise_quantizer=quantized_bits(4, 0, alpha=1),
                         bias_quantizer=quantized_bits(5, 1, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="separable_test")
    _spread_named(model, seed)
    return model


def separable1d_model(seed: int = 18):
    """QSeparableConv1D valid without bias (hls4ml: DepthwiseConv1D + PointwiseConv1D), then QDense."""
    import tensorflow as tf
    from qkeras import QDense, QSeparableConv1D
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(7, 2), name="seq")
    h = QSeparableConv1D(3, 3, name="sep1", use_bias=False, depthwise_quantizer=quantized_bits(5, 0, alpha=1),
                         pointwise_quantizer=quantized_bits(4, 0, alpha=1))(x_in)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="separable1d_test")
    _spread_named(model, seed)
    return model


BUILDERS.update(separable=separable_model, separable1d=separable1d_model)


def upsampling_model(seed: int = 19):
    """UpSampling2D (2, 3) (hls4ml Resize, nearest) between two QConv2D, then QDense."""
    import tensorflow as tf
    from qkeras import QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(3, 3, 2), name="img")
    h = QConv2D(2, (2, 2), name="c1", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.UpSampling2D((2, 3), name="up")(h)
    h = QConv2D(2, (2, 2), strides=(2, 2), name="c2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="upsampling_test")
    _spread_weights(model, seed)
    return model


def upsampling1d_model(seed: int = 20):
    """UpSampling1D(2) on a conv accumulator, Permute((2, 1)) (hls4ml Transpose), QConv1D, QDense."""
    import tensorflow as tf
    from qkeras import QConv1D, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(4, 2), name="seq")
    h = QConv1D(3, 2, name="k1", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(x_in)
    h = tf.keras.layers.UpSampling1D(2, name="up")(h)
    h = tf.keras.layers.Permute((2, 1), name="swap")(h)
    h = QConv1D(2, 2, name="k2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="upsampling1d_test")
    _spread_weights(model, seed)
    return model


def permute_model(seed: int = 21):
    """Permute((3, 1, 2)) of a QConv2D's output (hls4ml Transpose of three axes), another QConv2D, then QDense."""
    import tensorflow as tf
    from qkeras import QConv2D, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(3, 4, 2), name="img")
    h = QConv2D(3, (2, 2), name="c1", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(x_in)
    h = tf.keras.layers.Permute((3, 1, 2), name="chw")(h)
    h = QConv2D(2, (2, 2), name="c2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="permute_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(upsampling=upsampling_model, upsampling1d=upsampling1d_model, permute=permute_model)


def pointwise_model(seed: int = 22):
    """1x1 QConv2D with strides 2 and a 1x1 QConv1D (hls4ml turns both into PointwiseConv2D/1D), then QDense."""
    import tensorflow as tf
    from qkeras import QConv1D, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(4, 4, 2), name="img")
    h = QConv2D(3, (1, 1), strides=(2, 2), name="p2", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1), activation=quantized_relu(6, 2))(x_in)
    h = tf.keras.layers.Reshape((4, 3), name="rows")(h)
    h = QConv1D(2, 1, name="p1", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="pointwise_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(pointwise=pointwise_model)


def dense_po2_model(seed: int = 23):
    """quantized_po2 kernels (hls4ml's exponent struct words and weight_exponential shift product): a
    max_value=1 kernel (exponents -8..0) and a 4-bit one (-4..3), quantized_bits biases, a quantized_relu."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits, quantized_po2, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(8,), name="x")
    h = QDense(6, name="p1", kernel_quantizer=quantized_po2(4, max_value=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               activation=quantized_relu(6, 2))(x_in)
    out = QDense(4, name="p2", kernel_quantizer=quantized_po2(4), bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="dense_po2_test")
    _spread_weights(model, seed)
    return model


BUILDERS.update(dense_po2=dense_po2_model)


def binary_po2_model(seed: int = 23):
    """binary() and ternary() kernels as QKeras builds them by default: a QKeras layer turns a kernel's alpha=None
    into 'auto_po2' (per-channel powers of two 1/16 .. 2 here), so hls4ml 1.3.0 keeps the +-1 (0) words in the
    Dense and inserts an ApplyAlpha step (scale and the moved bias: fault targets), as for quantized_bits."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import binary, quantized_bits, quantized_relu, ternary

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(6,), name="x")
    h = QDense(4, name="bin", kernel_quantizer=binary(), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    out = QDense(3, name="ter", kernel_quantizer=ternary(), bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="binary_po2_test")
    rng = np.random.default_rng(seed)
    for name, spread in (("bin", [1, 0.3, 0.1, 2.5]), ("ter", [0.2, 1, 4])):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([(rng.uniform(-1, 1, kernel.shape) * np.array(spread)).astype(np.float32),
                           rng.uniform(-2, 2, bias.shape).astype(np.float32)])
    return model


BUILDERS.update(binary_po2=binary_po2_model)


def binary_po2_conv_model(seed: int = 24):
    """binary() / ternary() / quantized_bits(alpha='auto_po2') kernels in QConv1D and QConv2D: hls4ml 1.3.0's
    qkeras_factorize_alpha matches Conv1D/Conv2D as Dense, an ApplyAlpha step per channel after the convolution."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QConv2D, QDense
    from qkeras.quantizers import binary, quantized_bits, quantized_relu, ternary

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QConv2D(3, (3, 3), name="c2", kernel_quantizer=binary(), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Reshape((9, 3), name="rows")(h)
    h = QConv1D(2, 3, name="c1", kernel_quantizer=ternary(), bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    h = QActivation(quantized_relu(6, 2), name="r2")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(5, 0, alpha="auto_po2"),
                 bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="binary_po2_conv_test")
    rng = np.random.default_rng(seed)
    for name, spread in (("c2", [1, 0.2, 3]), ("c1", [0.3, 2]), ("head", [0.1, 1])):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([(rng.uniform(-1, 1, kernel.shape) * np.array(spread)).astype(np.float32),
                           rng.uniform(-2, 2, bias.shape).astype(np.float32)])
    return model


BUILDERS.update(binary_po2_conv=binary_po2_conv_model)


def po2_conv_model(seed: int = 25):
    """quantized_po2 kernels in QConv2D and QConv1D (hls4ml 1.3.0's conv product is the same weight_exponential
    shift as Dense: exponent-struct words) and quantized_relu_po2 kernels in a QDense, one plain (exponents -4..3,
    with a max_value=2 relu_po2 bias: -4..1) and a 4-bit one with a negative_slope (signed words): hls4ml types those as
    fixed point, fkhls as the exact ap_(u)fixed holding every power of two."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_po2, quantized_relu, quantized_relu_po2

    tf.keras.utils.set_random_seed(seed)
    x_in = tf.keras.Input(shape=(5, 5, 2), name="img")
    h = QConv2D(3, (3, 3), name="pc2", kernel_quantizer=quantized_po2(4), bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = tf.keras.layers.Reshape((9, 3), name="rows")(h)
    h = QConv1D(2, 3, name="pc1", kernel_quantizer=quantized_po2(4, max_value=1),
                bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    h = QActivation(quantized_relu(6, 2), name="r2")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    h = QDense(3, name="rp", kernel_quantizer=quantized_relu_po2(3), bias_quantizer=quantized_relu_po2(3, max_value=2))(h)
    h = QActivation(quantized_relu(6, 2), name="r3")(h)
    out = QDense(2, name="rpn", kernel_quantizer=quantized_relu_po2(4, negative_slope=0.25),
                 bias_quantizer=quantized_bits(5, 1, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="po2_conv_test")
    rng = np.random.default_rng(seed)
    for name, spread in (("pc2", [1, 0.2, 3]), ("pc1", [0.3, 1]), ("rp", [0.3, 1, 6]), ("rpn", [1.5, 4])):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([(rng.uniform(-1, 1, kernel.shape) * np.array(spread)).astype(np.float32),
                           rng.uniform(-2, 2, bias.shape).astype(np.float32)])
    return model


BUILDERS.update(po2_conv=po2_conv_model)
