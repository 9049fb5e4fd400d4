"""The fixed-point word: raw integer <-> value, bit flips, casts, exact literals, QKeras grids.

Built around hls4ml's own ``FixedPrecisionType`` (width, integer, signed, rounding, saturation):
this module adds what fkhls needs and hls4ml lacks, and every other module goes through it,
so no scale factor is derived anywhere else. Raw words are numpy int64 holding the
two's-complement (signed) or plain (unsigned) value of the word, i.e. value * 2**fractional;
hls4ml's power-of-two weight struct is the one exception (``Po2Type``: the raw word is its
sign/exponent code, and to_raw/from_raw/literal/parse_type/cpp_type know it).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
from hls4ml.model.types import FixedPrecisionType, RoundingMode, SaturationMode

from fkhls.core.errors import OffGridError, UnsupportedModelError

__all__ = [
    "FixedPrecisionType",
    "parse_type",
    "cpp_type",
    "type_to_dict",
    "type_from_dict",
    "raw_bounds",
    "lsb",
    "to_raw",
    "from_raw",
    "wrap_raw",
    "flip_bits",
    "cast_raw",
    "literal",
    "literals",
    "quantizer_type",
    "narrowest_type",
    "Po2Type",
    "is_po2",
    "po2_exponents",
    "MAX_WIDTH",
]

# Raw words and intermediate sums live in int64; 62 bits leaves headroom for one product.
MAX_WIDTH = 62

_TYPE_RE = re.compile(
    r"^\s*(?:ap_)?(?P<kind>fixed|ufixed|int|uint)\s*<\s*(?P<args>[^<>]*)>\s*$"
)


# hls4ml's ExponentTypeConverter: typedef struct NAME {ap_uint<1> sign;ap_int<B> weight; } NAME;
_PO2_STRUCT_RE = re.compile(r"^\s*struct\s+\w*\s*\{\s*ap_uint<1>\s+sign;\s*ap_int<(?P<bits>\d+)>\s+weight;\s*\}\s*$")


class Po2Type(FixedPrecisionType):
    """hls4ml's power-of-two weight word (``ExponentType``): a struct of ``ap_uint<1> sign`` (1 = +, 0 = -) and an
    ``ap_int<bits> weight`` exponent, value ``(sign ? 1 : -1) * 2**weight``; it has no zero.

    fkhls's raw word of it is the unsigned code ``sign << bits | (exponent & (2**bits - 1))``: ``width`` = bits + 1
    hardware bits, bit ``width-1`` the sign field, bits ``bits-1 .. 0`` the exponent field (MSB .. LSB). So FKeras's
    MSB-first layer bit index reads: sign, then exponent MSB .. LSB; a flip is an XOR on this code.
    """

    def __init__(self, bits: int):
        if not 1 <= bits <= 16:
            raise OffGridError(f"po2 exponent width {bits} is outside the supported range 1..16")
        super().__init__(width=bits + 1, integer=bits + 1, signed=False)
        self.exponent_bits = bits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Po2Type) and other.exponent_bits == self.exponent_bits

    def __hash__(self) -> int:
        return hash(("po2", self.exponent_bits))

    @property
    def exponent_range(self) -> tuple[int, int]:
        half = 1 << (self.exponent_bits - 1)
        return -half, half - 1


def is_po2(ptype) -> bool:
    return isinstance(ptype, Po2Type)


def po2_exponents(ptype: Po2Type, raw) -> tuple[np.ndarray, np.ndarray]:
    """Raw codes -> (sign field 0/1, signed exponent), int64 each."""
    raw = np.asarray(raw, dtype=np.int64)
    bits = ptype.exponent_bits
    field = raw & ((1 << bits) - 1)
    half = 1 << (bits - 1)
    return (raw >> bits) & 1, (field ^ half) - half


def _refuse_off_grid(what: str, values: np.ndarray, bad: np.ndarray, allowed: str, tail: str) -> None:
    """OffGridError naming the first value ``bad`` marks, what the type allows and how many values fail."""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    value = values[index] if values.ndim else float(values)
    raise OffGridError(f"{what}[{index}] = {value!r} is not representable by {allowed}; {int(bad.sum())} of {bad.size} "
                       f"values {tail}")


def _po2_to_raw(ptype: Po2Type, values: np.ndarray, what: str) -> np.ndarray:
    lo, hi = ptype.exponent_range
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.rint(np.log2(np.abs(values)))
        ok = np.isfinite(exponent) & (values != 0)
        exponent = np.where(ok, exponent, 0)
        back = np.where(values < 0, -1.0, 1.0) * np.ldexp(1.0, exponent.astype(np.int64))
    bad = ~ok | (back != values) | (exponent < lo) | (exponent > hi)
    if bad.any():
        _refuse_off_grid(what, values, bad, f"{cpp_type(ptype)} (a power of two +-2**e with exponent e in [{lo}, {hi}]; "
                         "no zero)", "are not")
    sign = (values > 0).astype(np.int64)
    return (sign << ptype.exponent_bits) | (exponent.astype(np.int64) & ((1 << ptype.exponent_bits) - 1))


def _make(width: int, integer: int, signed: bool, rounding=None, saturation=None) -> FixedPrecisionType:
    if not 1 <= width <= MAX_WIDTH:
        raise OffGridError(f"fixed-point width {width} is outside the supported range 1..{MAX_WIDTH}")
    return FixedPrecisionType(width=width, integer=integer, signed=signed, rounding_mode=rounding,
                              saturation_mode=saturation)


def parse_type(text: str) -> FixedPrecisionType:
    """Parse a C++ type such as ``ap_fixed<16,6>`` or ``ap_ufixed<6,0,AP_RND_CONV,AP_SAT>`` (or hls4ml's po2 struct)."""
    po2 = _PO2_STRUCT_RE.match(text)
    if po2:
        return Po2Type(int(po2["bits"]))
    match = _TYPE_RE.match(text)
    if not match:
        raise OffGridError(
            f"cannot parse fixed-point type {text!r}: expected ap_fixed<W,I[,Q,O]>, ap_ufixed<W,I[,Q,O]>, "
            "ap_int<W> or ap_uint<W>"
        )
    kind = match["kind"]
    args = [a.strip() for a in match["args"].split(",") if a.strip()]
    try:
        width = int(args[0])
        if kind in ("int", "uint"):
            if len(args) != 1:
                raise ValueError
            return _make(width, width, kind == "int")
        integer = int(args[1])
        rounding = args[2].removeprefix("AP_") if len(args) > 2 else None
        saturation = args[3].removeprefix("AP_") if len(args) > 3 else None
        if len(args) > 5:
            raise ValueError
        ptype = _make(width, integer, kind == "fixed", rounding, saturation)
        if len(args) > 4:
            ptype.saturation_bits = int(args[4])
        return ptype
    except (ValueError, IndexError, KeyError) as exc:
        raise OffGridError(f"cannot parse fixed-point type {text!r}: {exc or 'bad arguments'}") from None


def cpp_type(ptype: FixedPrecisionType) -> str:
    """The C++ spelling hls4ml writes into defines.h/parameters.h (modes only when not default)."""
    if is_po2(ptype):
        return f"struct {{ap_uint<1> sign;ap_int<{ptype.exponent_bits}> weight; }}"
    name = "ap_fixed" if ptype.signed else "ap_ufixed"
    args = [str(ptype.width), str(ptype.integer)]
    if ptype.rounding_mode != RoundingMode.TRN or ptype.saturation_mode != SaturationMode.WRAP:
        args += [f"AP_{ptype.rounding_mode.name}", f"AP_{ptype.saturation_mode.name}"]
        if ptype.saturation_bits:
            args.append(str(ptype.saturation_bits))
    return f"{name}<{','.join(args)}>"


def type_to_dict(ptype: FixedPrecisionType) -> dict:
    """A JSON-ready description of the type (the manifest stores these)."""
    extra = {"po2_exponent_bits": ptype.exponent_bits} if is_po2(ptype) else {}
    return {
        **extra,
        "cpp": cpp_type(ptype),
        "width": ptype.width,
        "integer": ptype.integer,
        "fractional": ptype.fractional,
        "signed": bool(ptype.signed),
        "rounding": ptype.rounding_mode.name,
        "saturation": ptype.saturation_mode.name,
    }


def type_from_dict(data: dict) -> FixedPrecisionType:
    if "po2_exponent_bits" in data:
        return Po2Type(int(data["po2_exponent_bits"]))
    return _make(data["width"], data["integer"], data["signed"], data.get("rounding"), data.get("saturation"))


def raw_bounds(ptype: FixedPrecisionType) -> tuple[int, int]:
    """Smallest and largest raw word of the type."""
    if ptype.signed:
        return -(1 << (ptype.width - 1)), (1 << (ptype.width - 1)) - 1
    return 0, (1 << ptype.width) - 1


def max_magnitude(ptype: FixedPrecisionType) -> int:
    """Largest |raw word| of the type (the bound every worst-case sum and product starts from)."""
    lo, hi = raw_bounds(ptype)
    return max(-lo, hi)


def lsb(ptype: FixedPrecisionType) -> float:
    """Value of one least-significant bit: 2**-fractional."""
    return float(2.0 ** -ptype.fractional)


def to_raw(ptype: FixedPrecisionType, values, what: str = "values") -> np.ndarray:
    """Exact values -> raw words; refuses (naming the first bad index) anything off the grid or range."""
    values = np.asarray(values, dtype=np.float64)
    if is_po2(ptype):
        return _po2_to_raw(ptype, values, what)
    scaled = np.ldexp(values, ptype.fractional)
    raw = np.rint(scaled)
    lo, hi = raw_bounds(ptype)
    bad = (raw != scaled) | (raw < lo) | (raw > hi) | ~np.isfinite(scaled)
    if bad.any():
        _refuse_off_grid(what, values, bad, f"{cpp_type(ptype)} (grid step {lsb(ptype)!r}, range "
                         f"[{lo * lsb(ptype)!r}, {hi * lsb(ptype)!r}])", "are off the grid or out of range")
    return raw.astype(np.int64)


def from_raw(ptype: FixedPrecisionType, raw) -> np.ndarray:
    """Raw words -> float64 values (exact for widths up to 53 bits; a po2 code -> +-2**exponent)."""
    if is_po2(ptype):
        sign, exponent = po2_exponents(ptype, raw)
        return np.where(sign == 1, 1.0, -1.0) * np.ldexp(1.0, exponent)
    return np.ldexp(np.asarray(raw, dtype=np.int64).astype(np.float64), -ptype.fractional)


def wrap_raw(ptype: FixedPrecisionType, raw) -> np.ndarray:
    """Keep the low ``width`` bits, sign-extending for signed types (what ap_fixed does on WRAP)."""
    raw = np.asarray(raw, dtype=np.int64)
    mask = np.int64((1 << ptype.width) - 1)
    low = raw & mask
    if ptype.signed:
        sign = np.int64(1 << (ptype.width - 1))
        return (low ^ sign) - sign
    return low


def flip_bits(ptype: FixedPrecisionType, raw, mask) -> np.ndarray:
    """Flip the bits set in ``mask`` (bit 0 = LSB, width-1 = MSB/sign) of each raw word."""
    raw = np.asarray(raw, dtype=np.int64)
    mask = np.asarray(mask, dtype=np.int64)
    if np.any(mask >> ptype.width):
        raise OffGridError(f"bit mask sets bits above bit {ptype.width - 1} of {cpp_type(ptype)}")
    return wrap_raw(ptype, raw ^ mask)


def _round_shift(raw: np.ndarray, shift: int, mode: RoundingMode) -> np.ndarray:
    """Divide by 2**shift (shift > 0) with an ap_fixed quantization mode, on integers."""
    floor = raw >> shift
    rem = raw - (floor << shift)  # 0 <= rem < 2**shift
    half = np.int64(1 << (shift - 1))
    if mode == RoundingMode.TRN:
        return floor
    if mode == RoundingMode.TRN_ZERO:
        return floor + ((raw < 0) & (rem != 0))
    up = rem > half
    tie = rem == half
    if mode == RoundingMode.RND:  # half towards +inf
        return floor + (up | tie)
    if mode == RoundingMode.RND_ZERO:  # half towards zero
        return floor + (up | (tie & (raw < 0)))
    if mode == RoundingMode.RND_MIN_INF:  # half towards -inf
        return floor + up
    if mode == RoundingMode.RND_INF:  # half away from zero
        return floor + (up | (tie & (raw >= 0)))
    if mode == RoundingMode.RND_CONV:  # half to even
        return floor + (up | (tie & ((floor & 1) == 1)))
    raise UnsupportedModelError(f"rounding mode {mode} is not supported")


def cast_raw(raw, src_fractional: int, dst: FixedPrecisionType) -> np.ndarray:
    """Cast raw integers at scale 2**-src_fractional to ``dst`` with its rounding and overflow modes.

    This is the assignment ``dst_t y = x;`` of ap_fixed, done exactly on int64.
    """
    raw = np.asarray(raw, dtype=np.int64)
    shift = src_fractional - dst.fractional
    if shift > 0:
        out = _round_shift(raw, shift, dst.rounding_mode)
    elif shift < 0:
        out = raw << -shift
    else:
        out = raw.copy()
    lo, hi = raw_bounds(dst)
    mode = dst.saturation_mode
    if mode == SaturationMode.WRAP:
        return wrap_raw(dst, out)
    if mode == SaturationMode.SAT:
        return np.clip(out, lo, hi)
    if mode == SaturationMode.SAT_SYM:
        return np.clip(out, lo + 1 if dst.signed else lo, hi)
    if mode == SaturationMode.SAT_ZERO:
        return np.where((out < lo) | (out > hi), 0, out)
    raise UnsupportedModelError(f"saturation mode {mode} is not supported")


def literal(ptype: FixedPrecisionType, raw: int) -> str:
    """Exact decimal literal of one raw word (what a C++ compiler reads back to the same word).

    A po2 word prints as hls4ml's ExponentWeightVariable does: ``{1.0, -3}`` (sign field as a float, exponent).
    """
    if is_po2(ptype):
        sign, exponent = po2_exponents(ptype, raw)
        return f"{{{int(sign)}.0, {int(exponent)}}}"
    value = Fraction(int(raw), 1) / (1 << ptype.fractional) if ptype.fractional >= 0 else Fraction(
        int(raw) << -ptype.fractional
    )
    digits = max(ptype.fractional, 0)
    if digits == 0:
        return str(value.numerator)
    scaled = value * 10**digits  # exact: 2**-f has exactly f decimals
    assert scaled.denominator == 1
    sign = "-" if scaled < 0 else ""
    text = str(abs(scaled.numerator)).rjust(digits + 1, "0")
    return f"{sign}{text[:-digits]}.{text[-digits:]}"


def literals(ptype: FixedPrecisionType, raw) -> list[str]:
    """Exact decimal literals of many raw words, in C-order."""
    return [literal(ptype, int(r)) for r in np.asarray(raw, dtype=np.int64).ravel()]


def quantizer_type(config: dict, *, activation: bool = False, where: str = "quantizer") -> FixedPrecisionType:
    """The ap_(u)fixed type whose grid equals a QKeras quantizer's grid, or a clear refusal.

    ``config`` is the quantizer's ``{'class_name', 'config'}``. For activations the cast rounds
    half to even and saturates, as QKeras's ``tf.round`` and clip do.
    """
    name = config.get("class_name")
    cfg = config.get("config", {})
    if cfg.get("use_stochastic_rounding"):
        raise UnsupportedModelError(f"{where}: stochastic rounding cannot be reproduced in hardware")
    if name == "quantized_bits":
        alpha = cfg.get("alpha")
        if alpha not in (1, 1.0, None) and not (isinstance(alpha, str) and alpha == "1"):
            raise UnsupportedModelError(_alpha_refusal("quantized_bits", alpha, where))
        # alpha=None is scale 1 in QKeras 0.9.0 (quantized_bits.__call__): the same grid as alpha=1.
        bits, integer, keep_negative = int(cfg["bits"]), int(cfg.get("integer", 0)), int(cfg.get("keep_negative", 1))
        if bits - keep_negative < 1:
            raise UnsupportedModelError(f"{where}: quantized_bits({bits}) is binary; need bits - keep_negative >= 1")
        if activation:
            sat = SaturationMode.SAT_SYM if cfg.get("symmetric") else SaturationMode.SAT
            return _make(bits, integer + keep_negative, bool(keep_negative), RoundingMode.RND_CONV, sat)
        return _make(bits, integer + keep_negative, bool(keep_negative))
    if name in ("binary", "ternary", "stochastic_binary", "stochastic_ternary", "binary_tanh", "ternary_tanh"):
        return _binary_type(name, cfg, activation, where)
    if name in ("quantized_po2", "quantized_relu_po2"):
        if activation:
            raise UnsupportedModelError(
                f"{where}: a {name} activation is not supported: hls4ml 1.3.0 has no layer for it (its QKeras "
                "converter refuses it); use quantized_bits or quantized_relu"
            )
        if name == "quantized_relu_po2":
            return _relu_po2_weight_type(cfg, where)
        return _po2_weight_type(cfg, where)
    if name in ("quantized_sigmoid", "quantized_tanh"):
        if not activation:
            raise UnsupportedModelError(f"{where}: {name} is only supported as an activation")
        bits = int(cfg["bits"])
        if name == "quantized_sigmoid":
            if cfg.get("symmetric"):
                raise UnsupportedModelError(
                    f"{where}: quantized_sigmoid(symmetric=True) clips at 2**-{bits}, but hls4ml's type for it "
                    f"(ap_ufixed<{bits},0>) reaches 0; use symmetric=False"
                )
            return _make(bits, 0, False, RoundingMode.RND_CONV, SaturationMode.SAT)
        sat = SaturationMode.SAT_SYM if cfg.get("symmetric") else SaturationMode.SAT
        return _make(bits, 1, True, RoundingMode.RND_CONV, sat)  # hls4ml: integer 1, SAT_SYM when symmetric
    if name == "quantized_relu":
        if not activation:
            raise UnsupportedModelError(f"{where}: quantized_relu is only supported as an activation")
        return _relu_type(cfg, where)
    raise UnsupportedModelError(
        f"{where}: quantizer {name!r} is not supported (supported: quantized_bits(alpha=1), quantized_relu; "
        "binary(alpha=1), ternary(alpha=1), quantized_po2 and quantized_relu_po2 weights; alpha='auto_po2' on QDense/QConv1D/QConv2D "
        "kernels)"
    )


def _po2_weight_type(cfg: dict, where: str) -> Po2Type:
    """quantized_po2(bits) weights: hls4ml's ExponentPrecisionType(bits), an exponent struct (``Po2Type``).

    QKeras 0.9.0 never outputs 0 (x = 0 becomes +2**min_exp); the exponents lie in
    [-2**e, 2**e - 1], e = bits - 1 - (max_value is None or > 1), doubled with quadratic_approximation;
    export refuses a kernel whose exponents the ``ap_int<bits>`` field cannot hold (to_raw names it).
    """
    qnoise = cfg.get("qnoise_factor", 1.0)
    if qnoise is not None and float(qnoise) != 1.0:
        raise UnsupportedModelError(
            f"{where}: quantized_po2(qnoise_factor={qnoise!r}) mixes unquantized values into the weights (not powers "
            "of two); use qnoise_factor=1.0"
        )
    return Po2Type(int(cfg["bits"]))


def _relu_po2_weight_type(cfg: dict, where: str) -> FixedPrecisionType:
    """quantized_relu_po2(bits) weights: plain fixed-point words holding every power of two the quantizer outputs.

    hls4ml 1.3.0 has no exponent struct for them (its converter prints "Unsupported quantizer" and types them
    ap_fixed<16,6>, which wraps relu_po2(4)'s 2**5..2**7); fkhls sets the narrowest exact type instead. QKeras 0.9.0
    never outputs 0 (x < eps becomes 2**min_exp); exponents lie in [q * min_exp, q * max_exp] (q = 2 with
    quadratic_approximation), min_exp = -2**(bits - s), max_exp = 2**(bits - s) - 1 (s = 0 when max_value <= 1),
    capped by max_value; a negative_slope adds -2**e (a signed word).
    """
    qnoise = cfg.get("qnoise_factor", 1.0)
    if qnoise is not None and float(qnoise) != 1.0:
        raise UnsupportedModelError(
            f"{where}: quantized_relu_po2(qnoise_factor={qnoise!r}) mixes unquantized values into the weights (not "
            "powers of two); use qnoise_factor=1.0"
        )
    bits, max_value = int(cfg["bits"]), cfg.get("max_value")
    sign_bit = 0 if max_value is not None and float(max_value) <= 1 else 1
    q = 2 if cfg.get("quadratic_approximation") else 1
    min_exp, max_exp = -(2 ** (bits - sign_bit)), 2 ** (bits - sign_bit) - 1
    if q == 2:
        max_exp = 2 * (max_exp // 2)
    lo, hi = q * min_exp, q * max_exp
    if max_value is not None:
        cap = q * math.ceil(math.log2(float(max_value)) / q) if float(max_value) > 0 else min_exp
        hi = max(min(hi, cap), min_exp)
    hi = max(hi, -1)  # keep the integer part >= 0 (an ap_ufixed<W, 0> at least)
    signed = bool(cfg.get("negative_slope"))
    width = hi - lo + 1 + signed
    if width > MAX_WIDTH:
        raise UnsupportedModelError(
            f"{where}: quantized_relu_po2({bits}) weights are powers of two 2**{lo} .. 2**{hi}: an exact fixed-point "
            f"word needs {width} bits (> {MAX_WIDTH}, what fkhls emulates; hls4ml 1.3.0's own ap_fixed<16,6> for them "
            f"would drop or wrap most of that range); use fewer bits or quantized_po2(bits) (hls4ml's "
            "exponent struct)"
        )
    return _make(width, hi + 1 + signed, signed)


def _relu_type(cfg: dict, where: str) -> FixedPrecisionType:
    """quantized_relu's grid: ap_ufixed<b, i> (round half to even, saturate), signed ap_fixed<b, i+1> when leaky.

    QKeras 0.9.0 (quantized_relu.__call__): ``negative_slope`` spends one bit on the sign, the grid
    step stays 2**(i - (b - 1)). ``relu_upper_bound`` changes the forward value only with
    ``is_quantized_clip=False`` (by default it shapes the straight-through gradient alone).
    """
    bits, integer = int(cfg["bits"]), int(cfg.get("integer", 0))
    if cfg.get("use_sigmoid"):
        raise UnsupportedModelError(f"{where}: quantized_relu(use_sigmoid=1) has no hls4ml equivalent; "
                                    "use use_sigmoid=0")
    if cfg.get("negative_slope"):
        ptype = _make(bits, integer + 1, True, RoundingMode.RND_CONV, SaturationMode.SAT)
    else:
        ptype = _make(bits, integer, False, RoundingMode.RND_CONV, SaturationMode.SAT)
    bound = cfg.get("relu_upper_bound")
    top = ((1 << (ptype.width - ptype.signed)) - 1) * 2.0**-ptype.fractional
    if bound is not None and not cfg.get("is_quantized_clip", True) and float(bound) < top:
        # QKeras's get_config omits is_quantized_clip: a saved model reloads with True and computes another function.
        raise UnsupportedModelError(
            f"{where}: quantized_relu(relu_upper_bound={float(bound)!r}, is_quantized_clip=False) clips below the "
            f"type's top {top!r}, but QKeras does not save is_quantized_clip (the saved model ignores the bound) and "
            "hls4ml ignores the bound too; use quantized_relu(bits, integer) whose range ends at the bound, or the "
            "default is_quantized_clip=True"
        )
    return ptype


def binary_activation_refusal(name: str) -> str:
    """Why hls4ml 1.3.0's build of a binary/ternary activation cannot equal QKeras 0.9.0 (read from both sources)."""
    if "ternary" in name:
        return (f"a {name} activation is not supported: hls4ml builds it as an ApplyAlpha scaling by 0.5/threshold "
                "(a float: 0.5/0.33 for QKeras's default threshold is no fixed-point value) and nnet::ternary_tanh "
                "(2*x > 1), while QKeras compares |x| >= threshold, so the two differ at and near the threshold; use "
                "quantized_bits(2, 1) or quantized_relu")
    if name == "binary_tanh":
        return ("a binary_tanh activation is not supported: QKeras's binary_tanh(0) is -1 (2*round(hard_sigmoid(x))-1 "
                "rounds 0.5 half to even) while hls4ml's nnet::binary_tanh gives +1 for data >= 0, and hls4ml passes "
                "the result on as a 1-bit xnor word (0 = -1) multiplied by the next layer's xnor product, an encoding "
                "fkhls does not model; use quantized_bits(2, 1) or quantized_relu")
    return (f"a {name} activation is not supported: hls4ml builds it as nnet::binary_tanh whose result is a 1-bit "
            "xnor word (0 = -1) multiplied by the next layer's xnor product, an encoding fkhls does not model; use "
            "quantized_bits(2, 1) or quantized_relu")


def _alpha_refusal(name: str, alpha, where: str) -> str:
    """Why a weight quantizer's alpha reaching here is refused (alpha='auto_po2' on a QDense/QConv1D/QConv2D kernel
    never does: its handler types the alpha=1 words and adds hls4ml's ApplyAlpha step, model/layers/alpha.py)."""
    if isinstance(alpha, str) and alpha == "auto_po2":
        return (f"{where}: {name}(alpha='auto_po2') is supported only on a QDense, QConv1D or QConv2D kernel (hls4ml "
                "1.3.0's qkeras_factorize_alpha moves the per-channel scale into an ApplyAlpha layer there); here "
                "hls4ml keeps no scale and its words would differ from QKeras's; use alpha=1"
                + (" (QKeras makes a kernel's alpha=None 'auto_po2': give alpha=1 explicitly)"
                   if name in ("binary", "ternary") else ""))
    if isinstance(alpha, str) and alpha == "auto":
        return (f"{where}: {name}(alpha='auto') is not supported: its per-channel scale is a float (a least-squares "
                "fit, no power of two) that hls4ml's ApplyAlpha layer rounds to a fixed-point type, so the hardware "
                "cannot equal QKeras; use alpha='auto_po2' (per-channel powers of two, exact) or alpha=1")
    return (f"{where}: {name}(alpha={alpha!r}) is not supported (a fixed scale other than 1 makes hls4ml insert an "
            f"ApplyAlpha layer with a scale fkhls does not type); use {name}(alpha=1) or alpha='auto_po2'")


def _binary_type(name: str, cfg: dict, activation: bool, where: str) -> FixedPrecisionType:
    """binary / ternary weights (alpha=1): the values -1, (0,) +1 as 2-bit signed words, ap_fixed<2,2>.

    With alpha='auto_po2' (QKeras's default for a layer's kernel) the Dense/Conv keeps these alpha=1 words and
    hls4ml's ApplyAlpha step holds the per-channel scale (model/layers/alpha.py): the caller types ``unscaled``.

    hls4ml types a ternary kernel ``ap_int<2>`` (the same bits) but multiplies with its
    ``weight_ternary`` product, which reads the word -2 as +1; a binary kernel it encodes as a
    1-bit xnor word (0 = -1). fkhls builds both as ap_fixed<2,2> with the plain multiply, so every
    word, faulty or not, means its two's-complement value (export sets and reads this back).
    """
    if activation:
        raise UnsupportedModelError(f"{where}: {binary_activation_refusal(name)}")
    if name.startswith("stochastic") or cfg.get("use_stochastic_rounding"):
        raise UnsupportedModelError(f"{where}: stochastic rounding ({name}) cannot be reproduced in hardware")
    alpha = cfg.get("alpha")  # None is scale 1 for both in QKeras 0.9.0 (values exactly -1, 0, +1)
    if isinstance(alpha, str) or (alpha is not None and float(alpha) != 1.0):
        raise UnsupportedModelError(_alpha_refusal(name, alpha, where))
    if cfg.get("use_01"):
        raise UnsupportedModelError(
            f"{where}: binary(use_01=True) is not supported: hls4ml's xnor conversion maps QKeras's 0 and 1 both to "
            "1; use binary(alpha=1) (values -1, +1)"
        )
    return _make(2, 2, True)


def narrowest_type(values, max_width: int = 32) -> FixedPrecisionType | None:
    """The narrowest ap_(u)fixed<W, I> (W <= max_width, I <= W) holding every value exactly, or None.

    For the float weights of an unquantized layer: signed only when a value is negative.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        return None
    for frac in range(0, max_width + 1):
        scaled = np.ldexp(values, frac)
        if np.array_equal(scaled, np.rint(scaled)):
            break
    else:
        return None
    raw = np.rint(scaled).astype(np.int64) if np.abs(scaled).max(initial=0) < 2.0**62 else None
    if raw is None:
        return None
    lo, hi = int(raw.min(initial=0)), int(raw.max(initial=0))
    signed = lo < 0
    width = max(hi.bit_length() + signed, (-lo - 1).bit_length() + 1 if signed else 0, 1)
    if width > max_width:
        return None
    return _make(width, width - frac, signed)

