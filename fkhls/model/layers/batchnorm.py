"""Batch normalization (Keras BatchNormalization, QKeras QBatchNormalization) as hls4ml 1.3.0 builds it.

hls4ml turns the layer into two arrays (``hls4ml.model.layers.BatchNormalization.initialize``):
``scale = gamma / np.sqrt(moving_variance + epsilon)`` and ``bias = beta - scale * moving_mean``,
computed in float32 from the Keras variables (gamma = 1 without ``scale``, beta = 0 without
``center``). It applies no quantizer to them: QBatchNormalization's gamma/beta/mean/variance
quantizers are parsed but never used, so a QBatchNormalization is built from its float variables
exactly like a float one. ``nnet::normalize`` computes ``res = (res_T)(x * scale[c] + bias[c])``
per channel ``c`` of the last axis (channels last; ``n_filt`` = -1 after a Dense), the product
and sum at full precision.

The words: hls4ml prints each float32 value with ``fractional`` decimals (``WeightVariable``'s
format) and the C-sim parses the literal into a double and converts it to the array's type
(ap_fixed from double: truncation toward -inf for AP_TRN). fkhls picks 16-bit types whose integer
part holds every such word (no wrap), computes the words that way, checks them against what
hls4ml printed, and has hls4ml write them as exact literals (``set_hls_types``); export reads the
weight files back and refuses a project whose words differ. The result type holds
``x * scale + bias`` exactly for any words of the three types, so the cast to it never rounds.

hls4ml's optimizer ``fuse_batch_normalization`` folds the layer into a Dense/Conv before it when
that layer's output type is unspecified and the arrays are compatible: for QKeras layers (both
sides quantized) only a scale of exactly 1 with a bias of 0, or a scale of 1 after a layer without
a bias quantizer (a QDense with use_bias=False), when it adds the float bias to that layer.
``hls_config`` gives that layer an explicit output type, so the pass never fires and the step
stays its own layer (matched and read back by export). Independently, ``remove_nop_batch_normalization``
deletes a batch norm whose scale is exactly 1 and bias exactly 0: fkhls describes that one as an
identity step without arrays (nothing in the hardware to fault), which export finds folded away.

Neither form equals QKeras bit for bit: the float scale is not on the words' grid (and QKeras
computes ``(x - mean) * inv + beta`` in float32, a QBatchNormalization with its quantized
parameters): ``LayerSpec.approximate`` says so and why.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw, cpp_type, lsb, max_magnitude, raw_bounds
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.layers.dense import accumulator_type
from fkhls.model.steps import LayerSpec, TensorSpec

ARRAY_WIDTH = 16  # bits of the scale and bias words fkhls chooses (the integer part fitted to the values)


def hls4ml_arrays(layer) -> tuple[np.ndarray, np.ndarray]:
    """(scale, bias) in float32, computed as hls4ml 1.3.0's BatchNormalization.initialize does."""
    config = layer.get_config()
    gamma = np.asarray(layer.gamma.numpy()) if config.get("scale", True) else 1
    beta = np.asarray(layer.beta.numpy()) if config.get("center", True) else 0
    mean = np.asarray(layer.moving_mean.numpy())
    variance = np.asarray(layer.moving_variance.numpy())
    scale = gamma / np.sqrt(variance + config["epsilon"])
    bias = beta - scale * mean
    return np.asarray(scale), np.asarray(bias)


def literal_words(values: np.ndarray, ptype: FixedPrecisionType) -> np.ndarray:
    """The words the C-sim loads for ``values``: hls4ml's literal with ``fractional`` decimals, parsed to a
    double, converted to the (AP_TRN) type: floor(double * 2**fractional). int64; may exceed the type's range."""
    decimals = max(0, ptype.fractional)
    doubles = np.array([float(f"{float(v):.{decimals}f}") for v in np.asarray(values).ravel()], dtype=np.float64)
    return np.floor(np.ldexp(doubles, ptype.fractional)).astype(np.int64).reshape(np.shape(values))


def fitted_type(values: np.ndarray, what: str, width: int = ARRAY_WIDTH) -> FixedPrecisionType:
    """The ``ap_fixed<width, I>`` with the smallest I >= 1 whose range holds every word of ``values``."""
    for integer in range(1, width):
        ptype = FixedPrecisionType(width=width, integer=integer, signed=True)
        lo, hi = raw_bounds(ptype)
        words = literal_words(values, ptype)
        if words.min() >= lo and words.max() <= hi:
            return ptype
    raise UnsupportedModelError(f"{what}: values up to {float(np.max(np.abs(values)))!r} do not fit a {width}-bit "
                                "word with a fractional part")


@layer_handler("BatchNormalization", "QBatchNormalization")
class BatchNormHandler(LayerHandler):
    kinds = ("batchnorm",)
    # Per channel, not one map for every word: the single-bit engine runs the step whole on changed rows.
    role = "window"
    hls_weights = ("scale", "bias")
    computed_arrays = True  # not Keras variables: the TF way (FKeras's) cannot flip them

    def blockers(self, layer) -> list[str]:
        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        rank = len(tuple(layer.input_shape))
        axis = layer.get_config().get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if not isinstance(axis, int) or axis not in (-1, rank - 1):
            return [f"{where}: normalization over axis {axis!r} is not supported; hls4ml normalizes the last axis "
                    "(channels last): use axis=-1"]
        if rank not in (2, 3, 4):
            return [f"{where}: a {rank - 1}-D input is not supported (1-D features, or channels-last 1-D/2-D maps)"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        scale, bias = hls4ml_arrays(layer)
        if np.all(scale == 1) and np.all(bias == 0):  # hls4ml's remove_nop_batch_normalization deletes it
            return [LayerSpec(name=layer.name, keras_name=layer.name, kind=self.kinds[0], keras_class=cls,
                              input_shape=walk.shape, output_shape=walk.shape, result_type=walk.in_type)]
        s_type = fitted_type(scale, f"{where} scale")
        b_type = fitted_type(bias, f"{where} bias")
        channels = (int(scale.shape[-1]),)
        result = accumulator_type(walk.in_type, s_type, b_type, 1)  # x * scale + bias, exact for any words
        if cls == "QBatchNormalization":
            why = ("qbatchnorm: hls4ml 1.3.0 builds scale and bias from the float variables (it applies none of "
                   "QBatchNormalization's gamma/beta/mean/variance quantizers)")
        else:
            why = "float_batchnorm: a float scale and bias"
        approximate = f"{why}, rounded to {cpp_type(s_type)} / {cpp_type(b_type)}"
        step = LayerSpec(
            name=layer.name, keras_name=layer.name, kind=self.kinds[0], keras_class=cls, input_shape=walk.shape,
            output_shape=walk.shape, result_type=result,
            kernel=TensorSpec(layer.name, "scale", channels, s_type, {}),
            bias=TensorSpec(layer.name, "bias", channels, b_type, {}), approximate=approximate)
        walk.in_type = result
        return [step]

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation | None:
        if not step.approximate:
            return None
        alternative = ("fold it into the conv before it (QConv2DBatchnorm, exact) or quantize its effect into the "
                       "previous layer's weights and drop it")
        if step.keras_class == "QBatchNormalization":
            return Approximation("qbatchnorm", step.approximate, None,
                                 "none: QKeras applies gamma/beta/mean/variance quantizers that hls4ml ignores, so the "
                                 "two compute different layers", alternative)
        # |hw - QKeras| <= max|x| * |scale - s_word| + |bias - b_word| + float32 rounding of QKeras's x*inv*gamma
        # + (beta - mean*inv*gamma): each word is the float truncated (toward -inf) from a literal printed with
        # more decimals than fractional bits, so within 2 LSB of its type; float32: <= 4 ulps of the magnitudes.
        big = lambda t: max_magnitude(t) * lsb(t)  # noqa: E731  (the largest |value| of a type)
        x_max, s_max, b_max = big(in_type), big(step.kernel.ptype), big(step.bias.ptype)
        total = x_max * 2 * lsb(step.kernel.ptype) + 2 * lsb(step.bias.ptype) + 4 * 2.0 ** -24 * (x_max * s_max + b_max)
        bound = float(np.ceil(total / lsb(step.result_type)))
        return Approximation(
            "float_batchnorm", step.approximate, bound,
            f"max|x| * 2 LSB of {cpp_type(step.kernel.ptype)} + 2 LSB of {cpp_type(step.bias.ptype)} + QKeras's float32 "
            f"rounding (4 ulps of max|x*scale| + max|bias|), over every word of the types, in LSBs of "
            f"{cpp_type(step.result_type)}", alternative)

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        """The exact values of the words the C-sim holds (hls4ml's literals of the float32 arrays)."""
        scale, bias = hls4ml_arrays(layer)
        values = scale if tensor.tensor == "scale" else bias
        return np.ldexp(literal_words(values, tensor.ptype).astype(np.float64), -tensor.ptype.fractional)

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        """res = x * scale[c] + bias[c] over the last axis, at full precision, then cast to the result type."""
        if step.kernel is None:  # an identity batch norm (removed by hls4ml)
            return x
        scale = weights[(step.kernel.layer, step.kernel.tensor)].reshape(-1)
        bias = weights[(step.bias.layer, step.bias.tensor)].reshape(-1)
        frac_p = in_type.fractional + step.kernel.ptype.fractional
        frac = max(frac_p, step.bias.ptype.fractional)
        acc = (x * scale) << (frac - frac_p)
        acc = acc + (bias << (frac - step.bias.ptype.fractional))
        return cast_raw(acc, frac, step.result_type)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == "BatchNormalization" and step.kernel is not None

    def folds(self, step: LayerSpec) -> bool:
        return step.kernel is None  # identity: its value is the previous output, in the same type

    def hls_config(self, step: LayerSpec, previous: LayerSpec | None, config: dict) -> None:
        """Keep hls4ml's fuse_batch_normalization off: it only fuses into a layer whose output type is unspecified.

        The linear activation hls4ml appends to that layer (``<layer>_linear``) gets the same type, so
        ``eliminate_linear_activation`` still removes it (it keeps a linear layer that would cast).
        """
        if previous is None or previous.kind == "input":
            return
        names = config.setdefault("LayerName", {})
        for name in (previous.keras_name, f"{previous.keras_name}_linear"):
            if name == previous.keras_name or name in names:
                names.setdefault(name, {}).setdefault("Precision", {})["result"] = cpp_type(previous.result_type)

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        """Type both arrays, check hls4ml's own float32 arrays and literals give fkhls's words, and have it print
        those words as exact literals (the C-sim then loads the same words)."""
        for tensor in (step.kernel, step.bias):
            variable = hls_layer.get_weights(tensor.tensor)
            variable.update_precision(hw(tensor.ptype))
            if f"{tensor.tensor}_t" in hls_layer.types:
                hls_layer.types[f"{tensor.tensor}_t"].precision = hw(tensor.ptype)
            data = np.asarray(variable.data)
            printed = np.array([float(text) for text in variable], dtype=np.float64)  # hls4ml's own literals
            words = np.floor(np.ldexp(printed, tensor.ptype.fractional)).astype(np.int64)
            expected = literal_words(data, tensor.ptype)
            lo, hi = raw_bounds(tensor.ptype)
            if data.shape != tensor.shape or not np.array_equal(words, expected) or words.min() < lo or words.max() > hi:
                raise UnsupportedModelError(
                    f"hls4ml's {tensor.tensor} array of {step.name!r} (shape {data.shape}, expected {tensor.shape}) "
                    f"prints words fkhls does not reproduce for {cpp_type(tensor.ptype)}: refusing the project")
            variable.data = np.ldexp(words.astype(np.float64), -tensor.ptype.fractional)
            # the header's comment lines (WeightVariable.__init__ took them from the float data) describe the words
            variable.min, variable.max = np.min(variable.data), np.max(variable.data)
            variable.nonzeros = int(np.count_nonzero(variable.data))
            variable.nzeros = variable.data_length - variable.nonzeros
