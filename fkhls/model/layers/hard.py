"""quantized_sigmoid / quantized_tanh: hls4ml's HardActivation (nnet_activation.h hard_sigmoid / hard_tanh), exact.

QKeras 0.9.0 computes both from its internal sigmoid, ``hard_sigmoid(x) = clip(0.5 x + 0.5, 0, 1)``
(unless ``use_real_*`` or ``set_internal_sigmoid`` changed it), then rounds half to even onto its
grid and clips: quantized_sigmoid(b) onto ap_ufixed<b, 0>, quantized_tanh(b) = 2 sigmoid - 1 onto
ap_fixed<b, 1> (saturating symmetrically when ``symmetric``). hls4ml's converter builds a
HardActivation with slope = shift = 0.5 (``ap_ufixed<2,0>``, both exact) whose C++ computes
``slope * x + shift`` in full precision (``auto``), clips it to [0, 1] and assigns it (or
``2 * it - 1``) to the result type: the same rounding and clipping on the same exact value.
"""

from __future__ import annotations

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw

FUNCTIONS = ("hard_sigmoid", "hard_tanh")
SLOPE = SHIFT = 0.5  # hls4ml's QKeras converter (get_activation_quantizer); QKeras's hard_sigmoid
PARAM_TYPE = FixedPrecisionType(2, 0, False)  # hls4ml's slope_prec / shift_prec: 0.5 exactly


def check_internal_sigmoid(where: str) -> None:
    """Refuse when qkeras.set_internal_sigmoid chose another sigmoid than the hard one hls4ml builds."""
    from qkeras import quantizers

    if quantizers._sigmoid is not quantizers.hard_sigmoid:
        raise UnsupportedModelError(
            f"{where}: QKeras's internal sigmoid is not 'hard' (set_internal_sigmoid was called), but hls4ml builds "
            "hard_sigmoid(x) = clip(0.5 x + 0.5, 0, 1); call qkeras.quantizers.set_internal_sigmoid('hard')"
        )


def forward(function: str, x: np.ndarray, in_type: FixedPrecisionType, result: FixedPrecisionType) -> np.ndarray:
    """``clip(x/2 + 1/2, 0, 1)`` (times 2 minus 1 for tanh), exact at fraction F, then the result type's cast."""
    x = np.asarray(x, dtype=np.int64)
    frac = max(in_type.fractional + 1, 1)
    half_x = x << (frac - 1 - in_type.fractional)  # x / 2 at fraction F
    one = np.int64(1) << frac
    sigmoid = np.clip(half_x + (one >> 1), 0, one)
    value = sigmoid if function == "hard_sigmoid" else 2 * sigmoid - one
    return cast_raw(value, frac, result)
