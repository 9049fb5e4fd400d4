"""The fixed-point word: grids, raw words, flips, casts and literals, checked against ap_fixed itself."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import OffGridError, UnsupportedModelError
from fkhls.core.fixedpoint import (
    cast_raw,
    cpp_type,
    flip_bits,
    from_raw,
    literal,
    parse_type,
    quantizer_type,
    raw_bounds,
    to_raw,
    type_from_dict,
    type_to_dict,
    wrap_raw,
)


@pytest.mark.parametrize("text", ["ap_fixed<16,6>", "ap_ufixed<6,0,AP_RND_CONV,AP_SAT>", "ap_fixed<8,-2>",
                                  "ap_fixed<5,9,AP_RND,AP_SAT_SYM>"])
def test_type_round_trips(text):
    ptype = parse_type(text)
    assert cpp_type(ptype) == text
    assert type_from_dict(type_to_dict(ptype)) == ptype


def test_parse_reads_hls4ml_spellings_and_refuses_nonsense():
    assert cpp_type(parse_type("ap_ufixed<6,0,AP_RND_CONV,AP_SAT,0>")) == "ap_ufixed<6,0,AP_RND_CONV,AP_SAT>"
    assert parse_type("ap_int<8>").fractional == 0
    for bad in ("float", "ap_fixed<>", "ap_fixed<0,0>", "ap_fixed<70,3>"):
        with pytest.raises(OffGridError):
            parse_type(bad)


def test_to_raw_is_exact_and_refuses_off_grid_values():
    ptype = parse_type("ap_fixed<5,2>")  # step 0.125, range [-2, 1.875]
    assert_array_equal(to_raw(ptype, [-2.0, -0.375, 0.0, 1.875]), [-16, -3, 0, 15])
    assert_array_equal(from_raw(ptype, [-16, -3, 15]), [-2.0, -0.375, 1.875])
    with pytest.raises(OffGridError, match=r"x\[\(1,\)\] = 0.1 .*ap_fixed<5,2>"):
        to_raw(ptype, [0.0, 0.1], what="x")
    with pytest.raises(OffGridError, match="out of range"):
        to_raw(ptype, [2.0])


def test_flip_bits_is_twos_complement():
    signed = parse_type("ap_fixed<5,2>")
    # the seed notebook's case: flipping the two MSBs of -0.375 (11101) gives 0.625 (00101)
    assert from_raw(signed, flip_bits(signed, to_raw(signed, [-0.375]), 0b11000))[0] == 0.625
    assert from_raw(signed, flip_bits(signed, to_raw(signed, [0.5]), 0b10000))[0] == -1.5
    unsigned = parse_type("ap_ufixed<4,1>")
    assert from_raw(unsigned, flip_bits(unsigned, to_raw(unsigned, [0.5]), 0b1000))[0] == 1.5
    with pytest.raises(OffGridError):
        flip_bits(signed, [0], 1 << 5)


def test_literals_read_back_exactly():
    for text in ("ap_fixed<16,6>", "ap_ufixed<6,0>", "ap_fixed<12,-3>", "ap_fixed<8,10>"):
        ptype = parse_type(text)
        lo, hi = raw_bounds(ptype)
        for raw in {lo, hi, 0, 1, -1 if ptype.signed else 2, lo // 3}:
            assert Fraction(literal(ptype, raw)) == Fraction(raw) * Fraction(2) ** -ptype.fractional


def test_wrap_raw_sign_extends():
    ptype = parse_type("ap_fixed<4,4>")
    assert_array_equal(wrap_raw(ptype, [7, 8, 15, 16, -9]), [7, -8, -1, 0, 7])


@pytest.mark.parametrize("config,expected", [
    ({"class_name": "quantized_bits", "config": {"bits": 6, "integer": 0, "keep_negative": 1, "alpha": 1}}, "ap_fixed<6,1>"),
    ({"class_name": "quantized_bits", "config": {"bits": 6, "integer": 0, "keep_negative": 0, "alpha": 1}}, "ap_ufixed<6,0>"),
    ({"class_name": "quantized_bits", "config": {"bits": 8, "integer": 3, "keep_negative": 1, "alpha": 1}}, "ap_fixed<8,4>"),
])
def test_quantizer_grid_equals_type_grid(config, expected):
    """Every value QKeras's quantizer can produce is a word of the type, and the type has no other words."""
    from qkeras.quantizers import get_quantizer

    ptype = quantizer_type(config)
    assert cpp_type(ptype) == expected
    quantizer = get_quantizer(config)
    lo, hi = raw_bounds(ptype)
    grid = from_raw(ptype, np.arange(lo, hi + 1))
    span = np.linspace(grid[0] - 1, grid[-1] + 1, 4001).astype(np.float32)
    produced = np.unique(quantizer(span).numpy().astype(np.float64))
    assert_array_equal(produced, grid)


def test_quantized_relu_is_a_rounding_saturating_unsigned_type():
    ptype = quantizer_type({"class_name": "quantized_relu", "config": {"bits": 6, "integer": 2}}, activation=True)
    assert cpp_type(ptype) == "ap_ufixed<6,2,AP_RND_CONV,AP_SAT>"
    with pytest.raises(UnsupportedModelError, match="alpha='auto'"):
        quantizer_type({"class_name": "quantized_bits", "config": {"bits": 6, "integer": 0, "alpha": "auto"}})
    with pytest.raises(UnsupportedModelError, match="quantized_po2 activation"):
        quantizer_type({"class_name": "quantized_po2", "config": {"bits": 4}}, activation=True)
    assert cpp_type(quantizer_type({"class_name": "quantized_po2", "config": {"bits": 4}})) == (
        "struct {ap_uint<1> sign;ap_int<4> weight; }")  # hls4ml's exponent struct (weights only)


@pytest.fixture(scope="module")
def ap_types_dir() -> Path:
    import hls4ml

    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


@pytest.mark.parametrize("dst", [
    "ap_fixed<8,3>", "ap_fixed<8,3,AP_RND>", "ap_fixed<8,3,AP_RND_CONV,AP_SAT>", "ap_ufixed<6,1,AP_RND_CONV,AP_SAT>",
    "ap_fixed<7,2,AP_TRN_ZERO,AP_SAT_SYM>", "ap_fixed<7,2,AP_RND_ZERO,AP_WRAP>", "ap_fixed<7,2,AP_RND_INF,AP_SAT>",
    "ap_fixed<7,2,AP_RND_MIN_INF,AP_SAT_ZERO>", "ap_ufixed<5,2>", "ap_fixed<20,8>",
])
def test_cast_raw_equals_ap_fixed(dst, ap_types_dir, tmp_path):
    """cast_raw against the real ap_fixed assignment, on every word of an ap_fixed<12,5> source."""
    src_w, src_i = 12, 5
    binary = tmp_path / "cast"
    source = Path(__file__).parent / "cpp" / "cast_check.cpp"
    subprocess.run(["g++", "-std=c++14", "-O0", "-w", f"-I{ap_types_dir}", f"-DSRC_W={src_w}", f"-DSRC_I={src_i}",
                    f"-DDST_T={dst}", str(source), "-o", str(binary)], check=True)
    words = np.arange(-(1 << (src_w - 1)), 1 << (src_w - 1), dtype=np.int64)
    out = subprocess.run([str(binary)], input="\n".join(map(str, words)), capture_output=True, text=True, check=True)
    dst_type = parse_type(dst)
    hardware = wrap_raw(dst_type, np.array(out.stdout.split(), dtype=np.int64))
    assert_array_equal(cast_raw(words, src_w - src_i, dst_type), hardware, err_msg=dst)
