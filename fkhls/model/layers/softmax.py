"""Softmax as hls4ml 1.3.0's Vivado backend builds it (nnet_activation.h ``softmax_stable``), word for word.

hls4ml's default implementation is ``stable`` (fpga_backend.py), the same in io_parallel and
io_stream; fkhls sets it explicitly with hls4ml's default types and records them:

- ``d = x_max - x`` assigned to ``inp_norm_t = ap_ufixed<W-s, I-s>`` (TRN, WRAP: a difference
  beyond the type's range wraps, as in the C-sim);
- ``exp_table[top N bits of d]`` with ``N = log2(exp_table_size)``; entry ``i`` is the C
  library's ``expf`` of minus the float value of a word whose top N bits are ``i``, assigned to
  ``exp_table_t`` (RND, SAT);
- the sum by ``nnet::reduce``'s balanced tree, each partial sum cast to ``accum_t`` (SAT);
- ``invert_table[top bits of the sum as inv_inp_t]``, entry ``i`` = float ``1 / x`` of that
  word's value, assigned to ``inv_table_t``; the output is ``exp * inverse`` cast to the result type.

Table sizes follow hls4ml: ``table_size = min(1024, 2**min(W_in, 18))`` (FixSoftmaxTableSize),
``exp_table_size = min(table_size, 2**(W_in - s))`` (SoftmaxConfigTemplate, stable).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, RoundingMode, SaturationMode, cast_raw, cpp_type, raw_bounds
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.layers.tables import _libm
from fkhls.model.steps import LayerSpec

IMPLEMENTATION = "stable"  # hls4ml 1.3.0's default for Softmax (fpga_backend.py), io_parallel and io_stream
TABLE_SIZE = 1024
# hls4ml's defaults for exp_table_t, inv_table_t, accum_t and inv_inp_t (fpga_backend.py)
SOFTMAX_TABLE_TYPE = FixedPrecisionType(18, 8, True, RoundingMode.RND, SaturationMode.SAT)
OUTPUT_TYPE = FixedPrecisionType(16, 6, True)  # hls4ml's model default precision, which it gives the Softmax output


def table_sizes(in_type: FixedPrecisionType) -> tuple[int, int]:
    """(exp_table_size, inv_table_size) hls4ml builds for a softmax of ``in_type`` words (stable)."""
    inv_size = min(TABLE_SIZE, 2 ** min(in_type.width, SOFTMAX_TABLE_TYPE.width))
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
def exp_table(norm: FixedPrecisionType, size: int, table_t: FixedPrecisionType = SOFTMAX_TABLE_TYPE) -> np.ndarray:
    """Raw words of init_exp_table<inp_norm_t>(negative=true): expf(-(value * exp_scale)), exp_scale = 1."""
    libm = _libm()
    values = np.array([libm.expf(float(-np.float32(v))) for v in _index_values(norm, size)], dtype=np.float64)
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


def softmax_stable(x: np.ndarray, in_type: FixedPrecisionType, out_type: FixedPrecisionType) -> np.ndarray:
    """Output words of nnet::softmax_stable over the last axis of input words ``x``."""
    exp_size, inv_size = table_sizes(in_type)
    norm, table_t = norm_type(in_type), SOFTMAX_TABLE_TYPE
    x = np.asarray(x, dtype=np.int64)
    d = cast_raw(x.max(axis=-1, keepdims=True) - x, in_type.fractional, norm)
    exp_res = exp_table(norm, exp_size)[table_index(d, norm, exp_size)]  # exp_table_t -> accum_t: the same type
    exp_sum = _reduce_add(exp_res, table_t)  # accum_t -> inv_inp_t: the same type
    inv = invert_table(table_t, inv_size)[table_index(exp_sum, table_t, inv_size)]
    return cast_raw(exp_res * inv[..., None], 2 * table_t.fractional, out_type)


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
def probe_deviation(in_type: FixedPrecisionType, n: int, out_type: FixedPrecisionType = OUTPUT_TYPE) -> SoftmaxDeviation:
    """The deviation on seeded random inputs uniform in [-4, 4) (on the input grid): recorded with the step."""
    rng = np.random.default_rng(PROBE_SEED)
    lo, hi = raw_bounds(in_type)
    scale = 2.0**in_type.fractional
    x_raw = np.clip(np.floor(rng.uniform(-PROBE_RANGE, PROBE_RANGE, size=(PROBE_SAMPLES, n)) * scale), lo, hi).astype(np.int64)
    x = x_raw / scale
    reference = np.exp(x - x.max(axis=1, keepdims=True))
    reference /= reference.sum(axis=1, keepdims=True)
    return softmax_deviation(softmax_stable(x_raw, in_type, out_type), reference, out_type)


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
        return softmax_stable(x, in_type, step.result_type)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == "Softmax"

    def set_hls_types(self, step: LayerSpec, hls_layer, hw) -> None:
        exp_size, inv_size = table_sizes(_input_type(hls_layer))
        hls_layer.set_attr("implementation", IMPLEMENTATION)
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
        exp_size, inv_size = table_sizes(in_type)
        return [("implementation", f"nnet::softmax_implementation::{IMPLEMENTATION}", f"the implementation of {step.name}"),
                ("exp_table_size", str(exp_size), f"the exp table size of {step.name}"),
                ("inv_table_size", str(inv_size), f"the inverse table size of {step.name}"),
                ("exp_scale", "1.0", f"the exp scale of {step.name}"),
                ("inp_norm_t", cpp_type(norm_type(in_type)), f"the normalized input type of {step.name}")]


def softmax_steps(name: str, keras_class: str, walk: Walk, shape: tuple[int, ...],
                  keras_name: str | None = None) -> list[LayerSpec]:
    """The softmax step of a layer (or of an inline ``activation='softmax'``), advancing ``walk``."""
    in_type = walk.in_type
    if len(shape) != 1:
        raise UnsupportedModelError(f"layer {keras_name or name!r}: softmax is supported over a 1-D input only (got "
                                    f"shape {shape}); flatten before it")
    if in_type.width > 40:
        raise UnsupportedModelError(f"layer {name!r}: a {in_type.width}-bit softmax input is wider than 40 bits")
    exp_size, inv_size = table_sizes(in_type)
    probe = probe_deviation(in_type, int(np.prod(shape)))
    step = LayerSpec(name=name, keras_name=keras_name or name, kind="softmax", keras_class=keras_class,
                     input_shape=shape, output_shape=shape, result_type=OUTPUT_TYPE, activation="softmax",
                     accum_type=None, approximate=f"softmax table (hls4ml {IMPLEMENTATION}: exp table {exp_size} and "
                     f"inverse table {inv_size} entries of {cpp_type(SOFTMAX_TABLE_TYPE)}); {probe.describe()} uniform "
                     f"in [-{PROBE_RANGE:g}, {PROBE_RANGE:g}) (seed {PROBE_SEED})")
    walk.in_type = OUTPUT_TYPE
    return [step]
