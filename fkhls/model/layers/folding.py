"""Batch norm folded into a convolution (QKeras QConv2DBatchnorm), as QKeras computes it at inference.

QKeras 0.9.0 (``qconv2d_batchnorm.py``, ``call`` with training off, ``ema_stats_folding`` or
``batch_stats_folding``): ``inv = rsqrt(moving_variance + epsilon) * gamma``, folded kernel
``inv * kernel`` through the kernel quantizer, folded bias ``inv * (bias - moving_mean) + beta``
through the bias quantizer; the output is the convolution with those quantized arrays. These are
the hardware arrays too (hls4ml's ``Conv2DBatchnorm`` folds with numpy and applies the same
quantizers; export reads the words back and refuses a project whose words differ), so they are
the fault targets ``kernel`` and ``bias``, as in FKeras's FQConv2DBatchnorm. A folded layer is exact
when its bias is quantized (without a bias quantizer QKeras adds a float bias: refused).
QKeras 0.9.0 has no QDenseBatchnorm (nothing to fold for a Dense).
"""

from __future__ import annotations

import numpy as np

FOLDED_CLASSES = ("QConv2DBatchnorm",)


def is_folded(layer) -> bool:
    return layer.__class__.__name__ in FOLDED_CLASSES


def folded_blockers(layer, where: str) -> list[str]:
    if getattr(layer, "bias_quantizer_internal", None) is None:
        return [f"{where}: the folded bias has no quantizer, so QKeras adds it in float; give "
                "bias_quantizer=quantized_bits(...)"]
    return []


def folded_values(layer, tensor: str) -> np.ndarray:
    """The quantized folded kernel or bias QKeras computes with at inference, as float64 (exact)."""
    kernel, bias = layer.get_folded_weights()  # QKeras's own fold: rsqrt, gamma, moving statistics
    if tensor == "kernel":
        return np.asarray(layer.kernel_quantizer_internal(kernel).numpy(), dtype=np.float64)
    return np.asarray(layer.bias_quantizer_internal(bias).numpy(), dtype=np.float64)
