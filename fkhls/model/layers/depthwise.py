"""QDepthwiseConv2D and QSeparableConv1D/2D: per-channel window sums, and the 1x1 sum that follows them.

hls4ml 1.3.0 builds QDepthwiseConv2D as its ``DepthwiseConv2D`` layer (array ``w{N}``: the Keras
``depthwise_kernel`` (kh, kw, C, 1) in C-order). It splits QSeparableConv1D/2D (optimizer
``separable_to_depthwise_and_conv``) into ``<name>_depthwise`` (DepthwiseConv1D/2D, no bias) and
``<name>_pointwise`` (a 1x1 convolution, PointwiseConv1D/2D, with the layer's bias): fkhls emits one
step per hls4ml layer, the fault targets ``depthwise_kernel``, ``pointwise_kernel`` and ``bias``
under the Keras layer's name. The word between them is the depthwise step's exact accumulator:
export sets it as the depthwise layer's ``result_t`` and reads it back, so nothing is rounded there.

Refused, with what to do: ``depth_multiplier`` != 1 (hls4ml converts it, but its depthwise kernels
assert ``n_filt == n_chan``, nnet_sepconv2d_latency.h / nnet_sepconv_stream.h: measured, the C-sim
aborts) and, in io_parallel, the Resource strategy (``depthwise_conv_2d_cl`` asserts "Resource
strategy for DepthwiseConv2D is not supported"). Under Resource in io_stream the arrays are exact and
addressable by element and by weight-memory word (``fkhls.faults.addressing``: DepthwiseDenseResource_* /
dense_resource block reshapes).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, quantizer_type
from fkhls.model.layers.activation import activation_steps
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.layers.conv import conv_patches, conv_refusals
from fkhls.model.layers.dense import Accumulated, WeightedHandler, accumulator_type
from fkhls.model.layers.quantizers import activation_of, quantizer_config
from fkhls.model.steps import LayerSpec, TensorSpec

# Keras variable -> the QKeras quantizer that makes its hardware words (QDepthwiseConv2D / QSeparableConv*D).
_QUANTIZER_OF = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise", "bias": "bias"}


def _quantized(layer, tensor: TensorSpec) -> np.ndarray:
    """The float64 values QKeras computes with: the variable through its quantizer (exact)."""
    import tensorflow as tf

    quantizer = getattr(layer, f"{_QUANTIZER_OF[tensor.tensor]}_quantizer_internal", None)
    variable = getattr(layer, tensor.tensor, None)
    if quantizer is None or variable is None:
        raise UnsupportedModelError(f"layer {layer.name!r} has no quantized variable {tensor.tensor!r}")
    return np.asarray(quantizer(tf.convert_to_tensor(variable)).numpy(), dtype=np.float64)


def _tensor(layer, name: str, where: str) -> TensorSpec:
    config = quantizer_config(layer, _QUANTIZER_OF[name])
    return TensorSpec(layer.name, name, tuple(int(d) for d in getattr(layer, name).shape),
                      quantizer_type(config, where=f"{where} {_QUANTIZER_OF[name]}_quantizer"), config)


def _refusals(layer, arrays: tuple[str, ...]) -> list[str]:
    """Every reason the layer cannot be built exactly: conv settings, depth multiplier, quantizers, activation."""
    where = f"layer {layer.name!r} ({layer.__class__.__name__})"
    config = layer.get_config()
    reasons = conv_refusals(layer, where)
    if int(config.get("depth_multiplier", 1)) != 1:
        reasons.append(f"{where}: depth_multiplier={config['depth_multiplier']} is not supported: hls4ml 1.3.0's "
                       "depthwise kernels assert n_filt == n_chan (depth multiplier 1 only); use depth_multiplier=1 "
                       "and widen the following (pointwise) convolution instead")
    names = arrays + (("bias",) if config.get("use_bias", True) else ())
    for name in names:
        key = _QUANTIZER_OF[name]
        q_config = quantizer_config(layer, key)
        if q_config is None:
            hint = "or use_bias=False" if name == "bias" else ""
            reasons.append(f"{where}: the {name} has no quantizer; give {key}_quantizer=quantized_bits(...) {hint}"
                           .rstrip())
            continue
        try:
            quantizer_type(q_config, where=f"{where} {key}_quantizer")
        except UnsupportedModelError as exc:
            reasons.append(str(exc))
        if q_config["class_name"] in ("quantized_po2", "quantized_relu_po2"):  # checked in QDense/QConv only
            reasons.append(f"{where} {key}_quantizer: {q_config['class_name']} weights are supported in QDense, "
                           "QConv1D and QConv2D only; use quantized_bits(bits, integer, alpha=1) here")
    try:
        act = activation_of(config.get("activation"), f"{where} activation")
        if act is not None and act[1] is not None:
            quantizer_type(act[1], activation=True, where=f"{where} activation")
    except UnsupportedModelError as exc:
        reasons.append(str(exc))
    return reasons


def _conv_fields(layer) -> dict:
    config = layer.get_config()
    return {"strides": tuple(int(s) for s in np.atleast_1d(config.get("strides", 1))),
            "padding": config.get("padding", "valid")}


def _refuse_resource_io_parallel(step: LayerSpec, hls_layer) -> None:
    strategy = str(hls_layer.get_attr("strategy", "latency")).lower()
    io_type = hls_layer.model.config.get_config_value("IOType")
    if strategy.startswith("resource") and io_type == "io_parallel":
        raise UnsupportedModelError(
            f"step {step.name!r} ({step.kind}): hls4ml 1.3.0 has no Resource strategy for depthwise convolutions in "
            "io_parallel (depthwise_conv_2d_cl asserts); export with strategy Latency, or io_stream")


class _DepthwiseStep(WeightedHandler):
    """A depthwise step: output channel c sums the window of input channel c times its own kernel column."""

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        return _quantized(layer, tensor)

    def patches(self, step: LayerSpec, x: np.ndarray) -> np.ndarray:
        return conv_patches(step, x)

    def accumulate(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> Accumulated:
        """Per channel: sum over the window of x * w, exact in int64 (the accumulator type bounds every sum)."""
        kernel = weights[(step.kernel.layer, step.kernel.tensor)]
        window = int(np.prod(step.kernel.shape[:-2]))
        channels = step.kernel.shape[-2]
        patches = self.patches(step, x)  # (N, P, window * C) in the kernel's C-order (window..., C)
        frac_p = in_type.fractional + step.kernel.ptype.fractional
        frac = frac_p if step.bias is None else max(frac_p, step.bias.ptype.fractional)
        products = patches.reshape(x.shape[0], patches.shape[1], window, channels).astype(np.int64)
        acc = (products * kernel.reshape(window, channels).astype(np.int64)).sum(axis=2) << (frac - frac_p)
        if step.bias is not None:
            acc += weights[(step.bias.layer, step.bias.tensor)] << (frac - step.bias.ptype.fractional)
        return Accumulated(acc, frac, patches)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == f"DepthwiseConv{step.kind[-2:].upper()}"

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        _refuse_resource_io_parallel(step, hls_layer)
        super().set_hls_types(step, hls_layer, hw)


class _PointwiseStep(WeightedHandler):
    """The pointwise half of a separable convolution: a 1x1 convolution over the depthwise words, plus the bias."""

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        return _quantized(layer, tensor)

    def patches(self, step: LayerSpec, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1, x.shape[-1])  # 1x1, stride 1: every position's channels

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        dim = step.kind[-2:].upper()
        return hls_layer.class_name in (f"PointwiseConv{dim}", f"Conv{dim}")


# hls4ml's Resource strategy transposes every Conv, DepthwiseConv and PointwiseConv included (they subclass it):
# (..., C, F) -> (F, ..., C) (resource_strategy.py); for a depthwise kernel F = 1, so the element order is Keras's.
@layer_handler()
class Depthwise1DStep(_DepthwiseStep):
    kinds = ("depthwise1d",)
    resource_axes = (2, 0, 1)


@layer_handler()
class Depthwise2DStep(_DepthwiseStep):
    kinds = ("depthwise2d",)
    resource_axes = (3, 0, 1, 2)


@layer_handler()
class Pointwise1DStep(_PointwiseStep):
    kinds = ("pointwise1d",)
    resource_axes = (2, 0, 1)


@layer_handler()
class Pointwise2DStep(_PointwiseStep):
    kinds = ("pointwise2d",)
    resource_axes = (3, 0, 1, 2)


@layer_handler("QDepthwiseConv2D")
class DepthwiseConvHandler(LayerHandler):
    """QDepthwiseConv2D: one depthwise step (hls4ml DepthwiseConv2D) plus its inline activation."""

    role = "weighted"

    def blockers(self, layer) -> list[str]:
        return _refusals(layer, ("depthwise_kernel",))

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        config = layer.get_config()
        out_shape = keras_shape(layer.output_shape)
        kernel = _tensor(layer, "depthwise_kernel", where)
        bias = _tensor(layer, "bias", where) if config.get("use_bias", True) else None
        window = int(np.prod(kernel.shape[:-2]))
        acc = accumulator_type(walk.in_type, kernel.ptype, bias.ptype if bias else None, window)
        steps = [LayerSpec(name=layer.name, keras_name=layer.name, kind=f"depthwise{len(kernel.shape) - 2}d",
                           keras_class=cls, input_shape=walk.shape, output_shape=out_shape, result_type=acc,
                           accum_type=acc, kernel=kernel, bias=bias, **_conv_fields(layer))]
        walk.in_type = acc
        return steps + activation_steps(f"{layer.name}_activation", layer.name, cls, config.get("activation"), walk,
                                        out_shape, f"{where} activation")


@layer_handler("QSeparableConv1D", "QSeparableConv2D")
class SeparableConvHandler(LayerHandler):
    """QSeparableConv1D/2D: the depthwise step and the pointwise step hls4ml splits it into, then its activation."""

    role = "weighted"

    def blockers(self, layer) -> list[str]:
        return _refusals(layer, ("depthwise_kernel", "pointwise_kernel"))

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        config = layer.get_config()
        out_shape = keras_shape(layer.output_shape)
        depthwise = _tensor(layer, "depthwise_kernel", where)
        pointwise = _tensor(layer, "pointwise_kernel", where)
        bias = _tensor(layer, "bias", where) if config.get("use_bias", True) else None
        nd = len(depthwise.shape) - 2
        mid_shape = (*out_shape[:-1], depthwise.shape[-2] * depthwise.shape[-1])
        dw_acc = accumulator_type(walk.in_type, depthwise.ptype, None, int(np.prod(depthwise.shape[:-2])))
        pw_acc = accumulator_type(dw_acc, pointwise.ptype, bias.ptype if bias else None, pointwise.shape[-2])
        common = dict(keras_name=layer.name, keras_class=cls)
        steps = [
            LayerSpec(name=f"{layer.name}_depthwise", kind=f"depthwise{nd}d", input_shape=walk.shape,
                      output_shape=mid_shape, result_type=dw_acc, accum_type=dw_acc, kernel=depthwise,
                      **_conv_fields(layer), **common),
            LayerSpec(name=f"{layer.name}_pointwise", kind=f"pointwise{nd}d", input_shape=mid_shape,
                      output_shape=out_shape, result_type=pw_acc, accum_type=pw_acc, kernel=pointwise, bias=bias,
                      strides=(1,) * nd, padding="valid", **common),
        ]
        walk.in_type = pw_acc
        return steps + activation_steps(f"{layer.name}_activation", layer.name, cls, config.get("activation"), walk,
                                        out_shape, f"{where} activation")
