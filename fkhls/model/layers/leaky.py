"""quantized_relu(negative_slope=s): hls4ml's LeakyReLU layer (nnet_activation.h ``leaky_relu``), word for word.

hls4ml's QKeras converter turns a leaky quantized_relu into a ``LeakyReLU`` layer whose result
type is the quantizer's signed grid (ap_fixed<b, i+1, AP_RND_CONV, AP_SAT>) and whose C++ is
``res = x > 0 ? x : alpha * x``: ``alpha`` (``param_t``, a power of two held exactly) times an
ap_fixed word is exact, and the assignment rounds half to even and saturates.

QKeras (quantized_relu.__call__) computes the same rounding, but clips the negative side at
``-s * 2**i`` where the hardware saturates at the type's minimum ``-2**i``. The two agree on
every input word when s == 1 or when no input word reaches below that clip; otherwise the step
is marked approximate with the reason (the emulator still reproduces the hardware).
"""

from __future__ import annotations

import math

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw, cpp_type, raw_bounds


def slope_exponent(slope: float, where: str) -> int:
    """e with slope == 2**e (QKeras asserts a power of two; refused otherwise)."""
    exponent = math.log2(slope) if slope > 0 else float("nan")
    if not exponent.is_integer() or not -40 <= exponent <= 20:
        raise UnsupportedModelError(f"{where}: negative_slope={slope!r} must be a power of two in [2**-40, 2**20]")
    return int(exponent)


def param_type(slope: float) -> FixedPrecisionType:
    """The narrowest type holding the slope exactly: one bit at position e (hls4ml infers the same)."""
    exponent = slope_exponent(slope, "leaky_relu")
    return FixedPrecisionType(1, exponent + 1, False)


def forward(x: np.ndarray, in_type: FixedPrecisionType, slope: float, result: FixedPrecisionType) -> np.ndarray:
    """``x > 0 ? x : alpha * x`` assigned to the result type: alpha * x is x at fraction f_in - e, exactly."""
    exponent = slope_exponent(slope, "leaky_relu")
    x = np.asarray(x, dtype=np.int64)
    positive = cast_raw(x, in_type.fractional, result)
    negative = cast_raw(x, in_type.fractional - exponent, result)
    return np.where(x > 0, positive, negative)


def qkeras_clip_raw(slope: float, result: FixedPrecisionType) -> int:
    """QKeras's lowest output as a raw word of the result grid: -s * 2**i, i = result.integer - 1."""
    return -int(round(slope * 2.0 ** (result.integer - 1 + result.fractional)))


def deviation(in_type: FixedPrecisionType, slope: float, result: FixedPrecisionType) -> str:
    """Why the hardware differs from QKeras for some input word of ``in_type`` ('' when it never does)."""
    lowest = int(forward(np.array([raw_bounds(in_type)[0]]), in_type, slope, result)[0])
    unclipped = int(cast_raw(np.array([raw_bounds(in_type)[0]]), in_type.fractional - slope_exponent(slope, "leaky"),
                             FixedPrecisionType(62, 62 - result.fractional, True, result.rounding_mode,
                                                result.saturation_mode))[0])
    clip = qkeras_clip_raw(slope, result)
    if max(unclipped, clip) == lowest:  # the smallest word already agrees; larger ones are inside both ranges
        return ""
    step = 2.0 ** -result.fractional
    return (f"hls4ml's leaky_relu saturates slope*x at {cpp_type(result)}'s minimum where QKeras clips at "
            f"{clip * step!r}; input words of {cpp_type(in_type)} below {clip * step / slope!r} differ (bound the "
            f"input to >= {clip * step / slope!r}, e.g. with a quantized_bits activation before it, to make it exact)")
