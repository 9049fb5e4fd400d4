"""Keras merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate): two inputs, one output.

hls4ml 1.3.0 builds the first six as its ``Merge`` layer (``nnet::add`` ... in nnet_merge.h /
nnet_merge_stream.h) and Concatenate as ``Concatenate`` (``nnet::concatenate{1,2,3}d``). Each
output word is ``res_T`` assigned from an ap_fixed expression of the two input words, which C++
evaluates at full precision: ``a + b`` and ``a - b`` gain one integer bit, ``a * b`` is the full
product, Average is ``(a + b) * ap_ufixed<1,0>(0.5)`` (the sum with one more fractional bit: an
exact halving), Maximum / Minimum pick one word, Concatenate copies. fkhls types the result as
the narrowest type holding every value the expression can take for any input words of the
input types, so the assignment never rounds or wraps, even after a bit flip upstream. (hls4ml's
own inference, infer_precision.py, gives Average no extra fractional bit: its LSB would be
truncated.) QKeras computes the same value in float32, exact up to 24 significant bits: a sum,
difference, average or product whose exact result needs more is marked approximate by nature
(QKeras may round where the hardware is exact).

A model's steps keep Keras's input order (``LayerSpec.inputs``): hls4ml's ``data1`` is Keras's first
input. hls4ml merges two tensors only, and broadcasts only in io_parallel: different input
shapes are refused.
"""

from __future__ import annotations

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import MAX_WIDTH, FixedPrecisionType, cast_raw, cpp_type, max_magnitude, raw_bounds
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec

# Keras class -> (step kind, hls4ml's Merge ``op``); Concatenate is hls4ml's own class.
_ARITHMETIC = ("add", "subtract", "average", "multiply")  # the ops whose float32 result can round in QKeras
_FLOAT32_SIGNIFICANT = 24
_OPS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average", "Maximum": "maximum",
        "Minimum": "minimum", "Concatenate": "concatenate"}


def _fit(lo: int, hi: int, frac: int, where: str) -> FixedPrecisionType:
    """The narrowest ap_(u)fixed with ``frac`` fractional bits holding every raw word in [lo, hi]."""
    signed = lo < 0
    width = max(int(hi).bit_length() + signed, (int(-lo - 1).bit_length() + 1) if signed else 0, 1)
    if width > MAX_WIDTH:
        raise UnsupportedModelError(f"{where}: an exact result would need {width} bits (> {MAX_WIDTH}, the int64 "
                                    "emulation limit)")
    return FixedPrecisionType(width=width, integer=width - frac, signed=signed)


def _aligned_bounds(ptype: FixedPrecisionType, frac: int) -> tuple[int, int]:
    lo, hi = raw_bounds(ptype)
    return lo << (frac - ptype.fractional), hi << (frac - ptype.fractional)


def merge_type(op: str, a: FixedPrecisionType, b: FixedPrecisionType, where: str = "merge") -> FixedPrecisionType:
    """The exact result type of ``op`` on words of types ``a`` and ``b`` (see the module docstring)."""
    if op == "multiply":
        a_lo, a_hi = raw_bounds(a)
        b_lo, b_hi = raw_bounds(b)
        corners = [a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi]
        return _fit(min(corners), max(corners), a.fractional + b.fractional, where)
    frac = max(a.fractional, b.fractional)
    (a_lo, a_hi), (b_lo, b_hi) = _aligned_bounds(a, frac), _aligned_bounds(b, frac)
    if op in ("add", "average"):
        return _fit(a_lo + b_lo, a_hi + b_hi, frac + (op == "average"), where)
    if op == "subtract":
        return _fit(a_lo - b_hi, a_hi - b_lo, frac, where)
    if op == "maximum":
        return _fit(max(a_lo, b_lo), max(a_hi, b_hi), frac, where)
    if op == "minimum":
        return _fit(min(a_lo, b_lo), min(a_hi, b_hi), frac, where)
    if op == "concatenate":
        return _fit(min(a_lo, b_lo), max(a_hi, b_hi), frac, where)
    raise UnsupportedModelError(f"{where}: merge operation {op!r} is not one of {sorted(set(_OPS.values()))}")


def merge_raw(op: str, types: tuple[FixedPrecisionType, FixedPrecisionType], a: np.ndarray, b: np.ndarray,
              axis: int = -1) -> tuple[np.ndarray, int]:
    """The exact value of ``op`` on raw words ``a``, ``b`` (N, ...) as (raw words, fractional bits)."""
    ta, tb = types
    if op == "multiply":
        return a * b, ta.fractional + tb.fractional
    frac = max(ta.fractional, tb.fractional)
    a = a << (frac - ta.fractional)
    b = b << (frac - tb.fractional)
    if op == "add":
        return a + b, frac
    if op == "average":  # (a + b) * 0.5: the same integer at one more fractional bit
        return a + b, frac + 1
    if op == "subtract":
        return a - b, frac
    if op == "maximum":
        return np.maximum(a, b), frac
    if op == "minimum":
        return np.minimum(a, b), frac
    if op == "concatenate":
        return np.concatenate([a, b], axis=axis), frac
    raise UnsupportedModelError(f"merge operation {op!r} is not supported")


def _where(layer) -> str:
    return f"layer {layer.name!r} ({layer.__class__.__name__})"


def _input_shapes(layer) -> list[tuple]:
    shapes = layer.input_shape
    return [tuple(s)[1:] for s in shapes] if isinstance(shapes, list) else [tuple(shapes)[1:]]


@layer_handler(*_OPS)
class MergeHandler(LayerHandler):
    """Two-input merges: the exact expression of nnet_merge.h, cast to a type that holds it."""

    kinds = ("merge",)
    role = "window"  # an output word depends on words of two steps: the engine runs it whole (generic path)

    def blockers(self, layer) -> list[str]:
        cls = layer.__class__.__name__
        where = _where(layer)
        shapes = _input_shapes(layer)
        if len(shapes) != 2:
            return [f"{where}: it merges {len(shapes)} tensors; hls4ml 1.3.0 merges exactly two (chain "
                    f"{cls} layers of two inputs each)"]
        if cls == "Concatenate":
            rank = len(shapes[0])
            if rank > 3:
                return [f"{where}: concatenation of rank-{rank} tensors; hls4ml supports rank 1 to 3"]
            return []
        if shapes[0] != shapes[1]:
            return [f"{where}: inputs of shapes {shapes[0]} and {shapes[1]} would broadcast, which hls4ml builds in "
                    "io_parallel only and fkhls does not reproduce; give both inputs the same shape"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        where = _where(layer)
        if len(walk.in_types) != 2:
            raise UnsupportedModelError(f"{where}: expected two inputs, got {len(walk.in_types)}")
        op = _OPS[cls]
        axis = None
        if op == "concatenate":
            rank = len(walk.shapes[0])
            axis = int(layer.get_config().get("axis", -1))
            axis = axis - 1 if axis > 0 else rank + axis  # Keras counts the batch axis; the step's shapes do not
            if not 0 <= axis < rank:
                raise UnsupportedModelError(f"{where}: axis {layer.get_config().get('axis')} is outside the "
                                            f"rank-{rank} inputs")
        result = merge_type(op, walk.in_types[0], walk.in_types[1], where)
        approximate = ""
        magnitude = result.width - result.signed  # float32 holds integers up to 2**24 exactly
        if op in _ARITHMETIC and magnitude > _FLOAT32_SIGNIFICANT:
            approximate = (f"QKeras computes the {op} in float32 ({_FLOAT32_SIGNIFICANT} significant bits); the exact "
                           f"result needs {magnitude} ({cpp_type(result)}), so QKeras may round where the hardware "
                           "is exact")
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind="merge", keras_class=cls,
                          input_shape=tuple(walk.shapes[0]), output_shape=keras_shape(layer.output_shape),
                          result_type=result, activation=op, axis=axis, approximate=approximate)]

    def forward(self, step: LayerSpec, in_type, x, weights: dict) -> np.ndarray:
        if not isinstance(x, tuple) or len(x) != 2:
            raise UnsupportedModelError(f"layer {step.name!r}: a merge step reads two steps")
        a, b = (np.asarray(v, dtype=np.int64) for v in x)
        value, frac = merge_raw(step.activation, tuple(in_type), a, b, 1 + step.axis if step.axis is not None else -1)
        return cast_raw(value, frac, step.result_type).reshape(a.shape[0], *step.output_shape)

    def approximation(self, step: LayerSpec, in_type) -> Approximation | None:
        if not step.approximate:
            return None
        # One float32 operation on exact inputs rounds to nearest: |error| <= half an ulp of the largest
        # result, 2**(e - 24) with 2**e > max|result|; in LSBs of the exact result type.
        bound = float(2.0 ** (max_magnitude(step.result_type).bit_length() - _FLOAT32_SIGNIFICANT))
        return Approximation(
            "float32_merge", step.approximate, bound,
            f"one float32 rounding (half an ulp) of the largest {cpp_type(step.result_type)} result, in its LSBs",
            "narrow the inputs' quantizers so the exact result needs at most 24 significant bits")

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        if step.activation == "concatenate":
            return hls_layer.class_name == "Concatenate"
        return hls_layer.class_name == "Merge" and str(hls_layer.get_attr("op")).lower() == step.activation
