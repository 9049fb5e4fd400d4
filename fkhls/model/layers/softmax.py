"""Softmax as hls4ml 1.3.0's Vivado backend builds it (nnet_activation.h), word for word, in each implementation.

hls4ml's ``implementation`` (fpga_backend.py: ``latency``, ``stable`` = the default, ``argmax``,
``legacy``) is an export option (``fkhls export --softmax-implementation``); the same code runs
in io_parallel and io_stream (one pack = the whole 1-D vector). fkhls sets it explicitly with
hls4ml's default types and records them.

``stable``:
- ``d = x_max - x`` assigned to ``inp_norm_t = ap_ufixed<W-s, I-s>`` (TRN, WRAP: a difference
  beyond the type's range wraps, as in the C-sim);
- ``exp_table[top N bits of d]`` with ``N = log2(exp_table_size)``; entry ``i`` is the C
  library's ``expf`` of minus the float value of a word whose top N bits are ``i``, assigned to
  ``exp_table_t`` (RND, SAT);
- the sum by ``nnet::reduce``'s balanced tree, each partial sum cast to ``accum_t`` (SAT);
- ``invert_table[top bits of the sum as inv_inp_t]``, entry ``i`` = float ``1 / x`` of that
  word's value, assigned to ``inv_table_t``; the output is ``exp * inverse`` cast to the result type.

``latency``: the same without the max: the exp table is indexed by the top bits of the input word
itself (``init_exp_table<data_T>``, entry = ``expf(+value)``, saturating at the table type's max).

``argmax``: a one-hot vector, 1 at the first maximum (``data[i] > maximum``), 0 elsewhere.

``legacy``: for every ``i``, ``sum_j exp_table[int((x_j - x_i) * N / 16) + N/2]`` (the ``j == i``
term is 1) accumulated in ``activ_config``'s ``table_t = ap_fixed<18,8>`` (TRN, WRAP: the exp table
over [-8, 8) itself wraps above e^4.85), then ``invert_table[int(sum * N / 64)]`` (entry ``1.0 / (64 i / N)``,
0 at 0) cast to the result; ap_fixed divided by an int and converted to int truncate toward zero.
fkhls sets both table sizes to 1024 so io_stream (which reads ``activ_config::table_size``) matches.

Table sizes follow hls4ml: ``table_size = min(1024, 2**min(W_in, 18))`` (FixSoftmaxTableSize),
``exp_table_size = min(table_size, 2**(W_in - s))`` (SoftmaxConfigTemplate, stable only).

Every implementation is approximate by nature; ``SoftmaxHandler.approximation`` declares how far
from the float softmax each can be (``softmax_bound``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, RoundingMode, SaturationMode, cast_raw, cpp_type, raw_bounds, wrap_raw
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.layers.tables import _libm
from fkhls.model.steps import LayerSpec

IMPLEMENTATIONS = ("stable", "latency", "argmax", "legacy")  # hls4ml 1.3.0's ChoiceAttribute (fpga_backend.py)
IMPLEMENTATION = "stable"  # hls4ml 1.3.0's default for Softmax (fpga_backend.py), io_parallel and io_stream
TABLE_SIZE = 1024
# hls4ml's defaults for exp_table_t, inv_table_t, accum_t and inv_inp_t (fpga_backend.py)
SOFTMAX_TABLE_TYPE = FixedPrecisionType(18, 8, True, RoundingMode.RND, SaturationMode.SAT)
LEGACY_TABLE_TYPE = FixedPrecisionType(18, 8, True)  # nnet::activ_config::table_t (TRN, WRAP): legacy's only type
OUTPUT_TYPE = FixedPrecisionType(16, 6, True)  # hls4ml's model default precision, which it gives the Softmax output


def check_implementation(implementation: str) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise UnsupportedModelError(f"softmax implementation {implementation!r} is not one of hls4ml 1.3.0's "
                                    f"{', '.join(IMPLEMENTATIONS)}")
    return implementation


def table_sizes(in_type: FixedPrecisionType, implementation: str = IMPLEMENTATION) -> tuple[int, int]:
    """(exp_table_size, inv_table_size) hls4ml builds for a softmax of ``in_type`` words."""
    if implementation == "legacy":
        return TABLE_SIZE, TABLE_SIZE  # set by fkhls: io_stream's legacy reads activ_config::table_size = 1024
    inv_size = min(TABLE_SIZE, 2 ** min(in_type.width, SOFTMAX_TABLE_TYPE.width))
    if implementation != "stable":
        return inv_size, inv_size
    exp_size = min(inv_size, 2 ** (in_type.width - int(in_type.signed))) if in_type.signed else inv_size
    return exp_size, inv_size


def norm_type(in_type: FixedPrecisionType) -> FixedPrecisionType:
    """hls4ml's ``inp_norm_t`` for x_max - x: ap_ufixed<W - s, I - s> (TRN, WRAP)."""
    s = int(in_type.signed)
    return FixedPrecisionType(in_type.width - s, in_type.integer - s, False)


def _address_bits(size: int) -> int:
    return int(np.ceil(np.log2(size))) if size > 1 else 0  # hls4ml's ceillog2


def table_index(raw, ptype: FixedPrecisionType, size: int) -> np.ndarray:
    """softmax_idx_from_real_val: the top ceillog2(size) bits of the word, as an unsigned number."""
    n = _address_bits(size)
    unsigned = np.asarray(raw, dtype=np.int64) & ((1 << ptype.width) - 1)
    return unsigned >> (ptype.width - n)


def _index_values(ptype: FixedPrecisionType, size: int) -> np.ndarray:
    """softmax_real_val_from_idx: the value of the word whose top bits are i and the rest 0 (exact in float)."""
    n = _address_bits(size)
    raw = np.arange(size, dtype=np.int64) << (ptype.width - n)
    if ptype.signed:
        raw = np.where(raw >= 1 << (ptype.width - 1), raw - (1 << ptype.width), raw)
    return raw * 2.0 ** -ptype.fractional


def _float_to_raw(values: np.ndarray, ptype: FixedPrecisionType) -> np.ndarray:
    """Assign floats to an ap_fixed with RND and SAT (ap_fixed_base(double)); +-inf saturate."""
    if ptype.rounding_mode != RoundingMode.RND or ptype.saturation_mode != SaturationMode.SAT:
        raise UnsupportedModelError(f"softmax table type {cpp_type(ptype)}: only AP_RND, AP_SAT tables are reproduced")
    lo, hi = raw_bounds(ptype)
    scaled = np.clip(np.asarray(values, dtype=np.float64) * 2.0**ptype.fractional, lo - 1.0, hi + 1.0)
    return np.clip(np.floor(scaled + 0.5), lo, hi).astype(np.int64)  # exact: a float32 times a power of two


@lru_cache(maxsize=32)
def exp_table(index_type: FixedPrecisionType, size: int, table_t: FixedPrecisionType = SOFTMAX_TABLE_TYPE,
              negative: bool = True) -> np.ndarray:
    """Raw words of init_exp_table<index_type>(negative): expf(-+(value * exp_scale)), exp_scale = 1."""
    libm = _libm()
    sign = -1.0 if negative else 1.0
    values = np.array([libm.expf(float(sign * np.float32(v))) for v in _index_values(index_type, size)],
                      dtype=np.float64)
    return _float_to_raw(values, table_t)


@lru_cache(maxsize=32)
def invert_table(inv_inp: FixedPrecisionType, size: int, table_t: FixedPrecisionType = SOFTMAX_TABLE_TYPE) -> np.ndarray:
    """Raw words of init_invert_table<inv_inp_t>: the float ``1 / x`` (x = 0 gives +inf, saturated)."""
    x = _index_values(inv_inp, size).astype(np.float32)
    with np.errstate(divide="ignore"):
        values = (np.float32(1) / x).astype(np.float64)
    return _float_to_raw(values, table_t)


def _reduce_add(terms: np.ndarray, accum: FixedPrecisionType) -> np.ndarray:
    """nnet::reduce with Op_add<accum_t> over the last axis: balanced tree, each sum cast to accum_t."""
    n = terms.shape[-1]
    if n == 1:
        return terms[..., 0]
    if n == 2:
        return cast_raw(terms[..., 0] + terms[..., 1], accum.fractional, accum)
    left = 1 << int(np.floor(np.log2(n - 1)))  # pow2(floorlog2(N - 1))
    return cast_raw(_reduce_add(terms[..., :left], accum) + _reduce_add(terms[..., left:], accum), accum.fractional, accum)


def _normalize(exp_res: np.ndarray, inv_size: int, out_type: FixedPrecisionType) -> np.ndarray:
    """The tail shared by latency and stable: sum, inverse table of the sum, ``exp * inverse`` cast to the output."""
    table_t = SOFTMAX_TABLE_TYPE
    exp_sum = _reduce_add(exp_res, table_t)  # accum_t -> inv_inp_t: the same type
    inv = invert_table(table_t, inv_size)[table_index(exp_sum, table_t, inv_size)]
    return cast_raw(exp_res * inv[..., None], 2 * table_t.fractional, out_type)


def softmax_stable(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType) -> np.ndarray:
    """Output words of nnet::softmax_stable over the last axis of input words ``x``."""
    exp_size, inv_size = table_sizes(in_type, "stable")
    norm = norm_type(in_type)
    x = np.asarray(x, dtype=np.int64)
    d = cast_raw(x.max(axis=-1, keepdims=True) - x, in_type.fractional, norm)
    exp_res = exp_table(norm, exp_size)[table_index(d, norm, exp_size)]  # exp_table_t -> accum_t: the same type
    return _normalize(exp_res, inv_size, out_type)


def softmax_latency(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType) -> np.ndarray:
    """Output words of nnet::softmax_latency: the exp table indexed by the input word itself (no max subtracted)."""
    exp_size, inv_size = table_sizes(in_type, "latency")
    exp_res = exp_table(in_type, exp_size, negative=False)[table_index(x, in_type, exp_size)]
    return _normalize(exp_res, inv_size, out_type)


def softmax_argmax(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType) -> np.ndarray:
    """Output words of nnet::softmax_argmax: (res_T)1 at the first maximum, 0 elsewhere."""
    x = np.asarray(x, dtype=np.int64)
    one = cast_raw(np.array([1], dtype=np.int64), 0, out_type)[0]
    out = np.zeros(x.shape, dtype=np.int64)
    np.put_along_axis(out, np.argmax(x, axis=-1)[..., None], one, axis=-1)  # np.argmax: the first maximum
    return out


def _toward_zero_index(raw: np.ndarray, fractional: int, size: int, span: int) -> np.ndarray:
    """``int(word * size / span)``: ap_fixed times an int is exact, the divide and the int conversion truncate toward zero."""
    product = np.asarray(raw, dtype=np.int64) * size
    quotient = np.sign(product) * (np.abs(product) // span)
    if fractional < 0:
        return quotient << -fractional
    return np.sign(quotient) * (np.abs(quotient) >> fractional)


def _floor_to_raw(values: np.ndarray, ptype: FixedPrecisionType) -> np.ndarray:
    """A double assigned to an ap_fixed with TRN and WRAP: floor on its grid, then the low ``width`` bits."""
    scaled = np.floor(np.asarray(values, dtype=np.float64) * 2.0**ptype.fractional)  # exact: a power-of-two scale
    return wrap_raw(ptype, np.array([int(v) % (1 << ptype.width) for v in scaled], dtype=np.int64))


@lru_cache(maxsize=4)
def legacy_tables(size: int = TABLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(exp, invert) raw words of init_exp_table_legacy / init_invert_table_legacy in ``table_t`` (TRN, WRAP)."""
    libm = _libm()
    i = np.arange(size, dtype=np.float64)
    exp_in = (16.0 * (i - size / 2.0) / size).astype(np.float32)  # double arithmetic, stored as float (exact here)
    exp_values = np.array([libm.expf(float(v)) for v in exp_in], dtype=np.float64)
    inv_in = (64.0 * i / size).astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore"):
        inv_values = np.where(inv_in > 0, 1.0 / np.where(inv_in > 0, inv_in, 1.0), 0.0)  # double 1.0 / float
    return _floor_to_raw(exp_values, LEGACY_TABLE_TYPE), _floor_to_raw(inv_values, LEGACY_TABLE_TYPE)


def softmax_legacy(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType) -> np.ndarray:
    """Output words of nnet::softmax_legacy: 1 / sum_j exp(x_j - x_i), both by 1024-entry tables in ap_fixed<18,8>."""
    table_t, size = LEGACY_TABLE_TYPE, TABLE_SIZE
    exp_tab, inv_tab = legacy_tables(size)
    x = np.asarray(x, dtype=np.int64)
    diff = x[..., None, :] - x[..., :, None]  # [..., i, j] = x_j - x_i (data_T - data_T: exact)
    index = np.clip(_toward_zero_index(diff, in_type.fractional, size, 16) + 8 * size // 16, 0, size - 1)
    terms = exp_tab[index]
    n = x.shape[-1]
    terms[..., np.arange(n), np.arange(n)] = 1 << table_t.fractional  # the j == i term is exactly 1
    exp_res = wrap_raw(table_t, terms.sum(axis=-1))  # exp_res[i] += ...: each add wraps, so the total wraps
    inv_index = np.clip(_toward_zero_index(exp_res, table_t.fractional, size, 64), 0, size - 1)
    return cast_raw(inv_tab[inv_index], table_t.fractional, out_type)


_FORWARD = {"stable": softmax_stable, "latency": softmax_latency, "argmax": softmax_argmax, "legacy": softmax_legacy}


def softmax_words(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType,
                  implementation: str = IMPLEMENTATION) -> np.ndarray:
    """Output words of hls4ml's softmax ``implementation`` over the last axis of input words ``x``."""
    return _FORWARD[check_implementation(implementation)](x, in_type, out_type)


def _input_type(hls_layer) -> FixedPrecisionType:
    """The softmax input type export gave hls4ml (the previous layer's output, set before this layer's types)."""
    p = hls_layer.get_input_variable().type.precision
    return FixedPrecisionType(p.width, p.integer, p.signed)


@dataclass(frozen=True)
class SoftmaxDeviation:
    """How far hardware softmax words are from the float softmax quantized to the output type (TRN)."""

    max_lsb: int  # largest |hardware word - reference word|
    where: tuple[int, int]  # (sample, element) of that largest difference
    argmax_agreement: float  # fraction of samples whose argmax (first maximum) is the same
    samples: int

    def describe(self) -> str:
        return (f"max {self.max_lsb} LSB from the float softmax, argmax agreement {100 * self.argmax_agreement:.1f}% "
                f"over {self.samples} inputs")


def softmax_deviation(hw_raw: np.ndarray, reference: np.ndarray, out_type: FixedPrecisionType) -> SoftmaxDeviation:
    """Compare hardware words (N, n) with float softmax values (N, n), the latter floored onto ``out_type``."""
    hw = np.asarray(hw_raw, dtype=np.int64).reshape(len(hw_raw), -1)
    ref = np.asarray(reference, dtype=np.float64).reshape(hw.shape)
    lo, hi = raw_bounds(out_type)
    ref_raw = np.clip(np.floor(ref * 2.0**out_type.fractional), lo, hi).astype(np.int64)
    diff = np.abs(hw - ref_raw)
    flat = int(np.argmax(diff))
    agree = float(np.mean(np.argmax(hw, axis=1) == np.argmax(ref, axis=1))) if len(hw) else 1.0
    return SoftmaxDeviation(int(diff.max(initial=0)), (flat // hw.shape[1], flat % hw.shape[1]), agree, len(hw))


PROBE_SEED, PROBE_SAMPLES, PROBE_RANGE = 0, 2000, 4.0


@lru_cache(maxsize=32)
def probe_deviation(in_type: FixedPrecisionType, n: int, out_type: FixedPrecisionType = OUTPUT_TYPE,
                    implementation: str = IMPLEMENTATION) -> SoftmaxDeviation:
    """The deviation on seeded random inputs uniform in [-4, 4) (on the input grid): recorded with the step."""
    rng = np.random.default_rng(PROBE_SEED)
    lo, hi = raw_bounds(in_type)
    scale = 2.0**in_type.fractional
    x_raw = np.clip(np.floor(rng.uniform(-PROBE_RANGE, PROBE_RANGE, size=(PROBE_SAMPLES, n)) * scale), lo, hi).astype(np.int64)
    x = x_raw / scale
    reference = np.exp(x - x.max(axis=1, keepdims=True))
    reference /= reference.sum(axis=1, keepdims=True)
    return softmax_deviation(softmax_words(x_raw, in_type, out_type, implementation), reference, out_type)


# ----------------------------------------------------------------------------- the declared bounds


def _range_bound(out_type: FixedPrecisionType) -> float:
    """|hardware - float softmax| for any output word against any probability in [0, 1], in LSBs."""
    lo, hi = raw_bounds(out_type)
    return float(max(hi, (1 << out_type.fractional) - lo))


@lru_cache(maxsize=32)
def _stable_bound(in_type: FixedPrecisionType, n: int, out_type: FixedPrecisionType) -> tuple[float, str]:
    """The stable softmax's worst case against exp(x_i - x_max) / S, from its tables and types (see ``softmax_bound``)."""
    t = SOFTMAX_TABLE_TYPE
    exp_size, inv_size = table_sizes(in_type, "stable")
    norm = norm_type(in_type)
    s_exp = 2.0 ** (norm.width - _address_bits(exp_size) - norm.fractional)  # d truncated to this step
    s_inv = 2.0 ** (t.width - _address_bits(inv_size) - t.fractional)  # the sum truncated to this step
    accum_max = raw_bounds(t)[1] * 2.0**-t.fractional
    if s_inv > 1 or n > accum_max:  # the inverse index of a sum near 1 may be 0, or the sum may saturate
        return _range_bound(out_type), (f"no tighter bound: the inverse table step {s_inv:g} > 1 or {n} terms may "
                                        f"saturate {cpp_type(t)}; the output range bounds it")
    g = math.exp(s_exp)  # exp(-(d - s_exp)) / exp(-d): a truncated index overestimates exp(-d) by at most this factor
    a = 2.0 ** -(t.fractional + 1) + 2.0**-23  # RND to the table grid, plus expf's float rounding
    b = 2.0 ** -(t.fractional + 1) + 2.0**-23  # the same for the float 1/x of the inverse table
    out_lsb = 2.0**-out_type.fractional
    frac = np.linspace(0.0, 1.0, 2049)[None, :]
    cases = [(np.ones((1, 1)), 1.0 + (n - 1.0) * frac)]  # the maximum element: e = 1, its sum S in [1, n]
    if n > 1:  # every other element: e in [0, 1], S in [1 + e, n] (the maximum contributes 1)
        e = np.linspace(0.0, 1.0, 257)[:, None]
        cases.append((e, 1.0 + e + (n - 1.0 - e) * frac))
    worst = 0.0
    for e_ref, s_ref in cases:
        p = e_ref / s_ref
        e_hi, e_lo = np.minimum(1.0, g * e_ref + a), np.maximum(0.0, e_ref - a)
        u_lo = np.maximum(1.0, s_ref - n * a - s_inv)  # the truncated sum is a multiple of s_inv <= 1 and >= 1
        hi = e_hi * (1.0 / u_lo + b)
        lo = e_lo * np.maximum(0.0, 1.0 / np.minimum(g * s_ref + n * a, accum_max) - b) - out_lsb  # TRN output
        worst = max(worst, float(np.max(hi - p)), float(np.max(p - lo)))
    bound = math.ceil(worst / out_lsb) + 1  # one LSB for the grid the worst case is searched on
    return float(bound), (f"exp index step {s_exp:g} (factor e^{s_exp:g} at most), table rounding 2^-{t.fractional + 1}, "
                          f"inverse index step {s_inv:g} on a sum >= 1, output truncation; worst case over every "
                          f"probability and sum of {n} terms (+1 LSB): holds while x_max - x_i < "
                          f"{2.0 ** norm.integer:g} (else inp_norm_t wraps)")


def softmax_bound(implementation: str, in_type: FixedPrecisionType, n: int,
                  out_type: FixedPrecisionType = OUTPUT_TYPE) -> tuple[float, str]:
    """(bound in LSBs of ``out_type``, why): how far the implementation's words can be from the float softmax."""
    if implementation == "stable":
        return _stable_bound(in_type, n, out_type)
    if implementation == "argmax":
        worst = max(1.0 - 1.0 / n, 0.5 if n > 1 else 0.0)  # the maximum's probability is >= 1/n, another's <= 1/2
        return float(math.ceil(worst * 2**out_type.fractional)), (
            f"a one-hot output: the maximum's probability is at least 1/{n}, any other's at most 1/2")
    why = ("indexes exp by the raw input (no max subtracted): the exp table and the sum saturate at "
           f"{cpp_type(SOFTMAX_TABLE_TYPE)}'s max" if implementation == "latency" else
           f"its exp table over [-8, 8) and its sums wrap in {cpp_type(LEGACY_TABLE_TYPE)}")
    return _range_bound(out_type), f"no useful bound over the input type: {why}; the output range bounds it"


@layer_handler("Softmax")
class SoftmaxHandler(LayerHandler):
    """Activation('softmax') and keras Softmax on a 1-D input: every output word depends on every input word."""

    kinds = ("softmax",)
    role = "window"

    def blockers(self, layer) -> list[str]:
        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        shape = layer.input_shape
        axis = layer.get_config().get("axis", -1)
        if len(shape) != 2 or axis not in (-1, 1):
            return [f"{where}: softmax is supported over a 1-D input only (got input shape {tuple(shape[1:])}, "
                    f"axis {axis}); flatten before it"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        return softmax_steps(layer.name, layer.__class__.__name__, walk, keras_shape(layer.output_shape))

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        return softmax_words(x, in_type, step.result_type, step.activation)

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation:
        bound, why = softmax_bound(step.activation, in_type, int(np.prod(step.output_shape)), step.result_type)
        return Approximation(
            "softmax_table" if step.activation != "argmax" else "softmax_argmax", step.approximate, bound, why,
            "a linear output (drop the softmax and take the argmax of the logits: the same class, exact words)")

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == "Softmax"

    def set_hls_types(self, step: LayerSpec, hls_layer, hw) -> None:
        exp_size, inv_size = table_sizes(_input_type(hls_layer), step.activation)
        hls_layer.set_attr("implementation", step.activation)
        hls_layer.set_attr("table_size", inv_size)
        hls_layer.set_attr("exp_table_size", exp_size)
        hls_layer.set_attr("inv_table_size", inv_size)
        for name in ("exp_table_t", "inv_table_t", "accum_t", "inv_inp_t"):
            hls_layer.types[name].precision = hw(SOFTMAX_TABLE_TYPE)
        # hls4ml rendered the config struct while converting (its template pass stores config_cpp): render it again
        # now that the sizes and the input type are fkhls's (Vitis uses the Vivado templates).
        from hls4ml.backends.vivado.passes.core_templates import SoftmaxConfigTemplate

        SoftmaxConfigTemplate().transform(hls_layer.model, hls_layer)

    def hls_type_checks(self, step: LayerSpec, hls_layer) -> list:
        return [(hls_layer.types[name].name, SOFTMAX_TABLE_TYPE, f"the {name} of {step.name}")
                for name in ("exp_table_t", "inv_table_t", "accum_t", "inv_inp_t")]

    def hls_config_checks(self, step: LayerSpec, hls_layer) -> list[tuple[str, str, str]]:
        in_type = _input_type(hls_layer)
        exp_size, inv_size = table_sizes(in_type, step.activation)
        norm = cpp_type(norm_type(in_type)) if step.activation == "stable" else "ap_fixed<1,0>"
        return [("implementation", f"nnet::softmax_implementation::{step.activation}",
                 f"the implementation of {step.name}"),
                ("exp_table_size", str(exp_size), f"the exp table size of {step.name}"),
                ("inv_table_size", str(inv_size), f"the inverse table size of {step.name}"),
                ("exp_scale", "1.0", f"the exp scale of {step.name}"),
                ("inp_norm_t", norm, f"the normalized input type of {step.name}")]


def softmax_steps(name: str, keras_class: str, walk: Walk, shape: tuple[int, ...],
                  keras_name: str | None = None) -> list[LayerSpec]:
    """The softmax step of a layer (or of an inline ``activation='softmax'``), advancing ``walk``.

    The step's ``activation`` holds hls4ml's implementation (``walk.softmax_implementation``).
    """
    in_type = walk.in_type
    implementation = check_implementation(walk.softmax_implementation)
    if len(shape) != 1:
        raise UnsupportedModelError(f"layer {keras_name or name!r}: softmax is supported over a 1-D input only (got "
                                    f"shape {shape}); flatten before it")
    if in_type.width > 40:
        raise UnsupportedModelError(f"layer {name!r}: a {in_type.width}-bit softmax input is wider than 40 bits")
    exp_size, inv_size = table_sizes(in_type, implementation)
    probe = probe_deviation(in_type, int(np.prod(shape)), OUTPUT_TYPE, implementation)
    what = (f"exp table {exp_size} and inverse table {inv_size} entries of {cpp_type(SOFTMAX_TABLE_TYPE)}"
            if implementation in ("stable", "latency") else
            f"exp and inverse tables of {TABLE_SIZE} entries of {cpp_type(LEGACY_TABLE_TYPE)}"
            if implementation == "legacy" else "a one-hot of the first maximum, not probabilities")
    step = LayerSpec(name=name, keras_name=keras_name or name, kind="softmax", keras_class=keras_class,
                     input_shape=shape, output_shape=shape, result_type=OUTPUT_TYPE, activation=implementation,
                     accum_type=None, approximate=f"softmax table (hls4ml {implementation}: {what}); "
                     f"{probe.describe()} uniform in [-{PROBE_RANGE:g}, {PROBE_RANGE:g}) (seed {PROBE_SEED})")
    walk.in_type = OUTPUT_TYPE
    return [step]
