"""hls4ml's lookup-table activations (nnet_activation.h), reproduced word for word.

``sigmoid``: a table of ``table_size`` entries over [-8, 8): entry ``i`` is
``sigmoid_fcn_float(16 * (i - N/2) / N)`` = ``1.0 / (1 + expf(-x))`` in C float arithmetic
(``expf`` in float, ``1 +`` in float, the division in double, rounded to float on return),
assigned to ``table_t`` (ap_fixed from float: the type's rounding, TRN = floor). The input word
indexes it as ``int(data * N / 16) + N/2``, clipped to the table: ap_fixed times an int is exact,
the divide and the conversion to int truncate toward zero. ``expf`` is the C library's own (via
ctypes), so the table equals the C-sim's bit for bit; numpy's float32 exp may differ by an ulp.

``tanh``: the same over [-4, 4): entry ``i`` is the C library's ``tanh`` of the float
``8 * (i - N/2) / N``, assigned to ``table_t``; index ``int(data * N / 8) + N/2``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw

TABLE_SIZE = 1024
TABLE_TYPE = FixedPrecisionType(18, 8, True)  # hls4ml's default table_t (fpga_backend.py), TRN/WRAP


# Input range of each table: [-RANGE, RANGE) (nnet_activation.h).
RANGE = {"sigmoid": 8, "tanh": 4}


@lru_cache(maxsize=1)
def _libm():
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    libm.expf.restype = ctypes.c_float
    libm.expf.argtypes = [ctypes.c_float]
    libm.tanh.restype = ctypes.c_double
    libm.tanh.argtypes = [ctypes.c_double]
    return libm


@lru_cache(maxsize=8)
def activation_table(function: str, size: int = TABLE_SIZE, width: int = 18, integer: int = 8) -> np.ndarray:
    """Raw words of hls4ml's ``sigmoid`` / ``tanh`` table for ``table_t = ap_fixed<width, integer>`` (TRN, WRAP)."""
    libm = _libm()
    table_t = FixedPrecisionType(width, integer, True)
    values = np.empty(size, dtype=np.float64)
    for i in range(size):
        in_val = np.float32(2 * float(RANGE[function]) * (i - float(size) / 2.0) / float(size))
        if function == "tanh":
            values[i] = libm.tanh(float(in_val))  # double tanh of the float, assigned to table_t
            continue
        denominator = np.float32(1) + np.float32(libm.expf(float(-in_val)))  # float + float: rounded to float
        values[i] = float(np.float32(1.0 / float(denominator)))  # double divide, returned as float
    # value * 2**frac is exact in float64 (a power-of-two scale), so flooring it is ap_fixed's TRN conversion
    raw = np.floor(values * 2.0**table_t.fractional).astype(np.int64)
    return cast_raw(raw, table_t.fractional, table_t)


def _limit(function: str, x: float) -> float:
    return {"sigmoid": 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh(x)}[function] if np.isfinite(x) else (
        1.0 if x > 0 else (0.0 if function == "sigmoid" else -1.0))


@lru_cache(maxsize=8)
def table_bound(function: str, size: int = TABLE_SIZE, width: int = 18, integer: int = 8) -> float:
    """Largest |f(x) - table entry of x| over every real x, in LSBs of ``table_t``: the declared deviation bound.

    The index truncates x / step toward zero (step = 2R / size) and is clipped, so entry ``i``
    (k = i - size/2) serves x in ((k-1) step, k step] for k < 0, (-step, step) for k = 0,
    [k step, (k+1) step) for k > 0, and the end entries everything beyond -R and from R - step on.
    f is monotone: the worst case of a cell is at one of its ends.
    """
    table = activation_table(function, size, width, integer) * 2.0 ** -(width - integer)
    step = 2.0 * RANGE[function] / size
    worst = 0.0
    for i, value in enumerate(table):
        k = i - size // 2
        lo, hi = ((k - 1) * step, k * step) if k < 0 else ((-step, step) if k == 0 else (k * step, (k + 1) * step))
        if i == 0:
            lo, hi = -np.inf, -RANGE[function]
        if i == size - 1:
            lo, hi = RANGE[function] - step, np.inf
        worst = max(worst, abs(_limit(function, lo) - value), abs(_limit(function, hi) - value))
    return float(np.ceil(worst * 2.0 ** (width - integer) + 0.01))  # + QKeras's float32 rounding, far below an LSB


def table_index(function: str, x: np.ndarray, in_type: FixedPrecisionType, size: int = TABLE_SIZE) -> np.ndarray:
    """hls4ml's table index of input words: int(data * size / (2 R)) + size / 2, clipped to [0, size - 1]."""
    span = 2 * RANGE[function]
    product = np.asarray(x, dtype=np.int64) * size  # ap_fixed * int: exact, same fraction
    quotient = np.sign(product) * (np.abs(product) // span)  # ap_fixed / int: toward zero
    data_round = np.sign(quotient) * (np.abs(quotient) >> in_type.fractional) if in_type.fractional >= 0 else \
        quotient << -in_type.fractional  # to int: toward zero
    return np.clip(data_round + RANGE[function] * size // span, 0, size - 1)
