"""hls4ml's ApplyAlpha step: the per-channel power-of-two scale of a QDense/QConv1D/QConv2D kernel with
``alpha='auto_po2'`` (quantized_bits, or binary/ternary, whose default alpha=None a QKeras layer turns into it).

QKeras 0.9.0 (``quantized_bits.__call__``): with ``alpha='auto_po2'`` (symmetric) the quantized
kernel is ``scale[c] * q`` with ``q`` on the ``alpha=1`` grid and ``scale[c]`` a power of two per
output channel (``quantizer.scale``, shape (1, n_out)). hls4ml 1.3.0's ``qkeras_factorize_alpha``
divides the kernel by that scale (the Dense keeps ``q``: the ``alpha=1`` words), zeroes the Dense
bias array and inserts ``<layer>_alpha`` (class ApplyAlpha, a BatchNormalization: ``nnet::normalize``)
with the scale and the quantized bias: ``res = acc * scale[c] + bias[c]``. Since the scale is a
power of two this equals QKeras bit for bit when every type holds its values (fkhls's do).

fkhls keeps every array hls4ml builds as a fault target -- the Dense's kernel words ``q`` and its
(zero) bias array, and the step's ``scale`` and ``bias`` -- with one typing choice of its own:
hls4ml types the scale with a ``quantized_po2`` exponent (``{sign, exponent}`` words multiplied by
shifts); fkhls gives it an ``ap_ufixed`` holding every scale exactly (a plain multiply), so its
words are fixed-point words like every other array (a flipped bit gives another fixed-point
scale, emulated exactly). The QDense's Keras variables are not the hardware words, so FKeras's TF
way refuses its kernel and bias.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cpp_type, raw_bounds, to_raw
from fkhls.model.layers.base import layer_handler
from fkhls.model.layers.batchnorm import BatchNormHandler
from fkhls.model.layers.dense import accumulator_type
from fkhls.model.steps import LayerSpec, TensorSpec


# Kernel quantizers hls4ml 1.3.0's qkeras_factorize_alpha factorizes: binary and ternary too (a QKeras layer turns
# their default alpha=None into 'auto_po2', qkeras ``_set_trainable_parameter``); the kept words are alpha=1's.
PO2_ALPHA_QUANTIZERS = ("quantized_bits", "binary", "ternary")


def has_po2_alpha(config: dict | None) -> bool:
    alpha = config["config"].get("alpha") if config else None
    return (bool(config) and config["class_name"] in PO2_ALPHA_QUANTIZERS and isinstance(alpha, str)
            and alpha == "auto_po2")


def array_alpha_blocker(config: dict | None, where: str) -> list[str]:
    """A per-channel alpha given as an array: hls4ml 1.3.0's qkeras_factorize_alpha cannot convert it (it tests
    ``alpha != 1`` as a truth value, which raises for an array)."""
    alpha = config["config"].get("alpha") if config else None
    if alpha is None or isinstance(alpha, (str, int, float)):
        return []
    return [f"{where}: alpha given per channel as an array ({np.asarray(alpha).tolist()}) is not supported: hls4ml "
            "1.3.0 cannot convert it (qkeras_factorize_alpha fails on an array); use alpha='auto_po2' (per-channel "
            "powers of two, computed from the kernel) or alpha=1"]


def unscaled(config: dict) -> dict:
    """The quantizer config of the words the Dense keeps (``alpha=1``: hls4ml's factorized kernel)."""
    return {**config, "config": {**config["config"], "alpha": 1}}


def kernel_scale(layer) -> tuple[np.ndarray, np.ndarray]:
    """(QKeras's quantized kernel, its per-channel scale (n_out,)) as float64, from the layer's own quantizer."""
    import tensorflow as tf

    quantizer = layer.kernel_quantizer_internal
    quantized = np.asarray(quantizer(tf.convert_to_tensor(layer.kernel)).numpy(), dtype=np.float64)
    scale = np.asarray(quantizer.scale.numpy() if hasattr(quantizer.scale, "numpy") else quantizer.scale,
                       dtype=np.float64)
    return quantized, np.broadcast_to(scale.reshape(-1), (quantized.shape[-1],)).copy()


def scale_type(scale: np.ndarray, where: str) -> FixedPrecisionType:
    """The ap_ufixed holding every power-of-two scale exactly (at least one integer bit)."""
    exponents = np.log2(scale)
    if np.any(scale <= 0) or np.any(exponents != np.round(exponents)):
        raise UnsupportedModelError(f"{where}: the alpha scale {scale.tolist()} is not a power of two per channel")
    integer = max(int(exponents.max()) + 1, 1)
    fractional = max(-int(exponents.min()), 0)
    return FixedPrecisionType(width=integer + fractional, integer=integer, signed=False)


def alpha_step(layer, dense: LayerSpec, bias_type: FixedPrecisionType, where: str) -> LayerSpec | None:
    """The ApplyAlpha step after ``dense`` (None when hls4ml removes it: every scale 1 and bias 0)."""
    from fkhls.model.spec import quantized_tensor

    _, scale = kernel_scale(layer)
    bias = quantized_tensor(layer, "bias") if dense.bias is not None else np.zeros_like(scale)
    if np.all(scale == 1) and np.all(bias == 0):  # hls4ml's remove_nop_batch_normalization
        return None
    s_type = scale_type(scale, f"{where} kernel_quantizer")
    b_type = bias_type
    channels = (int(scale.size),)
    name = f"{layer.name}_alpha"
    return LayerSpec(
        name=name, keras_name=layer.name, kind="apply_alpha", keras_class=layer.__class__.__name__,
        input_shape=dense.output_shape, output_shape=dense.output_shape,
        result_type=accumulator_type(dense.result_type, s_type, b_type, 1),
        kernel=TensorSpec(name, "scale", channels, s_type, {}), bias=TensorSpec(name, "bias", channels, b_type, {}))


@layer_handler()
class ApplyAlphaHandler(BatchNormHandler):
    """``res = x * scale[c] + bias[c]`` exactly as a batch norm (the forward is BatchNormHandler's)."""

    kinds = ("apply_alpha",)

    def describe(self, layer, walk):  # built by the QDense's handler (alpha_step), never from a Keras layer
        raise NotImplementedError

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        """From the QDense ``layer``: its kernel quantizer's scale, or its quantized bias (0 without one)."""
        from fkhls.model.spec import quantized_tensor

        _, scale = kernel_scale(layer)
        if tensor.tensor == "scale":
            return scale
        if layer.get_config().get("use_bias", True):
            return quantized_tensor(layer, "bias").reshape(-1)
        return np.zeros_like(scale)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == "ApplyAlpha"

    def folds(self, step: LayerSpec) -> bool:
        return False

    def hls_config(self, step, previous, config) -> None:
        return None

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        """The scale as an ap_ufixed array (hls4ml's exponent encoding replaced, see the module docstring)."""
        from hls4ml.backends.fpga.fpga_types import APTypeConverter, HLSTypeConverter, StaticWeightVariableConverter
        from hls4ml.model.types import WeightVariable

        old = hls_layer.get_weights("scale")
        values = np.asarray(old.data, dtype=np.float64).reshape(-1)
        words = to_raw(step.kernel.ptype, values, f"{step.name} scale")  # refuses a scale off the type's grid
        lo, hi = raw_bounds(step.kernel.ptype)
        if values.shape != step.kernel.shape or words.min() < lo or words.max() > hi:
            raise UnsupportedModelError(f"hls4ml's alpha scale of {step.name!r} {values.tolist()} does not fit "
                                        f"{cpp_type(step.kernel.ptype)}: refusing the project")
        scale = WeightVariable(old.name, type_name=old.type.name, precision=hw(step.kernel.ptype), data=values,
                               quantizer=None)
        scale.data_unquantized = values
        # as the backend's transform_types pass converted the one it replaces (that pass has already run)
        scale = StaticWeightVariableConverter(HLSTypeConverter(precision_converter=APTypeConverter())).convert(scale)
        scale.storage = getattr(old, "storage", scale.storage)
        hls_layer.set_attr("scale", scale)  # also registers scale_t (hls4ml's AttributeDict)
        # the config struct was rendered with the exponent type (weight_exponential product): render it again
        from hls4ml.backends.vivado.passes.quantization_templates import ApplyAlphaConfigTemplate

        ApplyAlphaConfigTemplate().transform(hls_layer.model, hls_layer)
        bias = hls_layer.get_weights("bias")
        bias.update_precision(hw(step.bias.ptype))
        if "bias_t" in hls_layer.types:
            hls_layer.types["bias_t"].precision = hw(step.bias.ptype)
