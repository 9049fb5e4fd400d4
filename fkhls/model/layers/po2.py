"""Power-of-two (``quantized_po2``) kernels as hls4ml 1.3.0 computes them: a shift, not a multiply.

hls4ml stores each weight as an exponent struct (``fixedpoint.Po2Type``) and multiplies with
``nnet::product::weight_exponential`` (nnet_mult.h): the input ``a`` (``data_T``, W_x bits) is cast to
``r_T = ap_fixed<2K, K>``, K = W_x + exponent bits, shifted by the exponent (``<<`` on ap_fixed keeps the
type: a left shift wraps, a right shift truncates towards -inf) and negated when the sign field is 0, in
``r_T`` (wrapping). The product is then cast to ``accum_t`` and summed. fkhls's accumulator holds every
``r_T`` word exactly, so the only rounding is the hardware's own shift; the step is exact against QKeras
when no golden exponent makes that shift lose a bit (``truncation``), else approximate with a bound.
"""

from __future__ import annotations

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import MAX_WIDTH, FixedPrecisionType, Po2Type, cast_raw, po2_exponents, wrap_raw


def product_type(in_type: FixedPrecisionType, w_type: Po2Type) -> FixedPrecisionType:
    """``weight_exponential``'s r_T: ap_fixed<2 * (exponent bits + W_x), exponent bits + W_x> (TRN, WRAP)."""
    k = w_type.exponent_bits + in_type.width
    if 2 * k > MAX_WIDTH:  # shifts are clipped and wrapped in products(), so only the r_T word must fit
        raise UnsupportedModelError(
            f"a po2 product of a {in_type.width}-bit input and a {w_type.exponent_bits}-bit exponent is "
            f"ap_fixed<{2 * k},{k}>: wider than the int64 emulation holds ({MAX_WIDTH} bits)")
    return FixedPrecisionType(width=2 * k, integer=k, signed=True)


def accumulator_type(in_type: FixedPrecisionType, w_type: Po2Type, b_type: FixedPrecisionType | None,
                     n_terms: int) -> FixedPrecisionType:
    """Narrowest type holding every sum of ``n_terms`` r_T words plus the bias, for any words (faulty too)."""
    r_type = product_type(in_type, w_type)
    frac = r_type.fractional if b_type is None else max(r_type.fractional, b_type.fractional)
    lo = -n_terms * (1 << (r_type.width - 1)) << (frac - r_type.fractional)
    hi = n_terms * ((1 << (r_type.width - 1)) - 1) << (frac - r_type.fractional)
    if b_type is not None:
        b_lo = -(1 << (b_type.width - 1)) if b_type.signed else 0
        b_hi = (1 << (b_type.width - b_type.signed)) - 1
        lo += b_lo << (frac - b_type.fractional)
        hi += b_hi << (frac - b_type.fractional)
    width = max(int(hi).bit_length() + 1, int(-lo - 1).bit_length() + 1)
    if width > MAX_WIDTH:
        raise UnsupportedModelError(f"an exact po2 accumulator would need {width} bits (> {MAX_WIDTH})")
    return FixedPrecisionType(width=width, integer=width - frac, signed=True)


def products(in_type: FixedPrecisionType, w_type: Po2Type, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """weight_exponential's words (at r_T's fraction) of every input word ``x`` (..., n) times every code (n, m):
    shape (..., n, m)."""
    r_type = product_type(in_type, w_type)
    a = cast_raw(x, in_type.fractional, r_type)[..., :, None]
    sign, exponent = po2_exponents(w_type, codes)
    left = np.clip(exponent, 0, 63)
    right = np.clip(-exponent, 0, 63)
    shifted = np.where(exponent >= 0, wrap_raw(r_type, a << left), a >> right)
    shifted = np.where(exponent >= r_type.width, 0, shifted)  # ap_private: a shift by >= W leaves no bit
    return np.where(sign == 1, shifted, wrap_raw(r_type, -shifted))


def accumulate(in_type: FixedPrecisionType, w_type: Po2Type, patches: np.ndarray, codes: np.ndarray,
               chunk: int = 1 << 22) -> tuple[np.ndarray, int]:
    """sum over n of products, (rows, n) x (n, m) -> (rows, m) at r_T's fraction (exact int64), in row chunks."""
    rows, n = patches.shape
    m = codes.shape[-1]
    out = np.empty((rows, m), dtype=np.int64)
    step = max(1, chunk // max(1, n * m))
    for start in range(0, rows, step):
        out[start:start + step] = products(in_type, w_type, patches[start:start + step], codes).sum(axis=-2)
    return out, product_type(in_type, w_type).fractional


def column_change(in_type: FixedPrecisionType, w_type: Po2Type, inputs: np.ndarray, old: int, new: int) -> np.ndarray:
    """How one output channel's sum (at r_T's fraction) changes when one weight's code goes from ``old`` to ``new``:
    its products with the weight's ``inputs`` (any shape) under the new code minus under the old. Exact, since the
    accumulator holds every r_T word and sum (the single-bit engine's per-fault update)."""
    both = products(in_type, w_type, np.asarray(inputs)[..., None], np.array([[old, new]], dtype=np.int64))
    return both[..., 0, 1] - both[..., 0, 0]


def truncation(in_type: FixedPrecisionType, w_type: Po2Type, codes: np.ndarray) -> str:
    """Why the hardware's shift may differ from QKeras's exact product for these (golden) codes ("" = it cannot).

    A right shift by -e drops bits below r_T's LSB when F_x - e > K; a left shift by e wraps when an input
    magnitude times 2**e reaches r_T's range (and a negated minimum wraps too).
    """
    r_type = product_type(in_type, w_type)
    _, exponent = po2_exponents(w_type, codes)
    if exponent.size == 0:
        return ""
    e_lo, e_hi = int(exponent.min()), int(exponent.max())
    reasons = []
    if in_type.fractional - e_lo > r_type.fractional:
        reasons.append(f"exponent {e_lo} shifts a {in_type.fractional}-fraction-bit input below the product type's "
                       f"LSB 2^-{r_type.fractional} (bits are truncated)")
    x_int = in_type.integer - (1 if in_type.signed else 0)  # magnitude < 2**x_int
    if x_int + e_hi >= r_type.integer - 1:
        reasons.append(f"exponent {e_hi} can overflow the product type ap_fixed<{r_type.width},{r_type.integer}>")
    if not reasons:
        return ""
    return (f"hls4ml's weight_exponential product ap_fixed<{r_type.width},{r_type.integer}> of a "
            f"{in_type.width}-bit input: " + "; ".join(reasons))
