"""QConv1D / QConv2D (and plain Conv1D / Conv2D, see dense.tensor_type): a weighted sum per output position over
the im2col patches of the input.

channels_last only, dilation 1, 'valid' or 'same' padding (zero words, the extra row/column
after, as TF and hls4ml pad). hls4ml builds a 1x1 convolution as PointwiseConv1D/2D: the same sum.
Refused with what to do instead, because hls4ml 1.3.0 does not build them: dilation_rate > 1 (its
converter ignores it) and transposed convolutions (no converter).
"""

from __future__ import annotations

import numpy as np

from fkhls.model.layers.base import LayerHandler, layer_handler
from fkhls.model.layers.dense import WeightedHandler
from fkhls.model.layers.folding import FOLDED_CLASSES
from fkhls.model.steps import LayerSpec


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF/hls4ml 'same' padding: out = ceil(size/stride), the extra row/column goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_patches(step: LayerSpec, x: np.ndarray) -> np.ndarray:
    """im2col: (N, positions, kh*kw*cin) in the kernel's C-order, zero padding as TF/hls4ml."""
    ksize = step.kernel.shape[:-2]
    nd = len(ksize)
    if step.padding == "same":
        pads = [same_pads(x.shape[1 + d], ksize[d], step.strides[d]) for d in range(nd)]
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    axes = tuple(range(1, 1 + nd))
    win = np.lib.stride_tricks.sliding_window_view(x, ksize, axis=axes)  # (N, *pos, cin, *k)
    win = win[(slice(None), *[slice(None, None, s) for s in step.strides])]
    order = (0, *axes, *range(nd + 2, 2 * nd + 2), nd + 1)  # (N, *pos, *k, cin)
    win = win.transpose(order)
    positions = int(np.prod(win.shape[1:1 + nd]))  # not -1: numpy cannot infer it for zero samples
    return win.reshape(x.shape[0], positions, int(np.prod(ksize)) * x.shape[-1])  # x may hold fewer channels


def conv_refusals(layer, where: str) -> list[str]:
    """What no convolution handler reproduces: channels_first, dilation (hls4ml 1.3.0 ignores it), other paddings."""
    config = layer.get_config()
    reasons = []
    if config.get("data_format", "channels_last") != "channels_last":
        reasons.append(f"{where}: only data_format='channels_last' is supported")
    if any(d != 1 for d in np.atleast_1d(config.get("dilation_rate", 1))):
        # hls4ml's Keras convolution parsers never read dilation_rate: the project would compute an undilated conv.
        reasons.append(f"{where}: dilation_rate={config.get('dilation_rate')} is not supported: hls4ml 1.3.0 does not "
                       "build dilated convolutions (its converter ignores dilation_rate and builds an undilated one); "
                       "use dilation_rate=1 with a larger kernel, or strides/pooling to widen the receptive field")
    if config.get("padding") not in ("valid", "same"):
        reasons.append(f"{where}: padding {config.get('padding')!r} is not supported (valid, same)")
    return reasons


class _ConvHandler(WeightedHandler):
    def check_config(self, layer, where: str) -> list[str]:
        return conv_refusals(layer, where)

    def step_fields(self, layer) -> dict:
        config = layer.get_config()
        return {"strides": tuple(int(s) for s in np.atleast_1d(config.get("strides", 1))),
                "padding": config.get("padding", "valid")}

    def patches(self, step: LayerSpec, x: np.ndarray) -> np.ndarray:
        return conv_patches(step, x)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        if step.keras_class in FOLDED_CLASSES:  # hls4ml's Conv2DBatchnorm (a Conv2D with folded weights)
            return super().hls_matches(step, hls_layer)
        return hls_layer.class_name in (self.hls_class, f"Pointwise{self.hls_class}")  # 1x1: optimize_pointwise_conv


@layer_handler("QConv1D", "Conv1D")  # a plain Conv1D/Conv2D: float weights typed by fkhls (dense.tensor_type)
class Conv1DHandler(_ConvHandler):
    kinds = ("conv1d",)
    hls_class = "Conv1D"
    resource_axes = (2, 0, 1)


@layer_handler("QConv2D", "Conv2D", "QConv2DBatchnorm")  # the latter folded: fkhls.model.layers.folding
class Conv2DHandler(_ConvHandler):
    kinds = ("conv2d",)
    hls_class = "Conv2D"
    resource_axes = (3, 0, 1, 2)


@layer_handler("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "QConv2DTranspose")
class TransposedConvRefusal(LayerHandler):
    """Transposed convolutions: known, and refused whole with what to build instead."""

    supported = False

    def blockers(self, layer) -> list[str]:
        # Measured: hls4ml 1.3.0 raises "Unsupported layer type: Conv2DTranspose" (no converter handles a transposed
        # convolution), and QKeras 0.9.0's QConv2DTranspose does not even run under TF 2.15 (array_ops.stack is gone).
        return [f"layer {layer.name!r} ({layer.__class__.__name__}): transposed convolutions are not supported: "
                "hls4ml 1.3.0 does not build them (its converters have no Conv*DTranspose handler); for a decoder, use "
                "UpSampling2D/UpSampling1D (nearest) followed by a QConv2D/QConv1D, which hls4ml builds and fkhls "
                "reproduces exactly"]
