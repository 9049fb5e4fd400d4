"""The TF bit-flip core and exact faulty-model evaluation.

Three layers of API, from FKeras-compatible to fast:

* ``quantize_and_bitflip`` -- FKeras's core (quantize, XOR a mask on the integer word, scale back)
  on the hardware word of ``fixedpoint.quantizer_type``; equals FKeras's
  ``quantize_and_bitflip_deterministic_v3`` for its single-bit, ber 1 regions and also handles
  multi-bit regions and ber < 1.
* ``forward_raw`` -- the model evaluated on hardware words (raw int64 ``value * 2**fractional``)
  step by step from a ``ModelSpec``: what the hls4ml fixed-point project computes when its types
  are the ModelSpec's (exact accumulators, as fkhls exports them). ``faulty_model_outputs``
  applies a fault scenario with it (or, for FKeras parity, through TF and ``model.predict``).
* ``evaluate_single_bit_faults`` / ``summarize_single_bit_faults`` -- many single-bit faults at
  once, reusing golden activations: exact, and ~3 orders of magnitude faster than one
  ``model.predict`` per fault.

Exactness of the integer path: every weighted layer sums integer products. The sum is done in
float64 BLAS when ``n_terms * max|x word| * max|w word| <= 2**53`` for the *types* (so it holds
for any faulty weight too): every product and partial sum is then an integer below 2**53, which
float64 represents exactly whatever the summation order, so the result equals the integer sum.
Otherwise the sum is done in int64 (slower, exact while the accumulator fits in 62 bits, which
``model_spec.accumulator_type`` enforces). Biases, alignment shifts and every cast
(``fixedpoint.cast_raw``: ap_fixed rounding and saturation) are done on int64.

TensorFlow is imported lazily: only the TF-facing functions pay its ~5 s import.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np

from fkhls.errors import FaultSpecError, OffGridError, UnsupportedModelError
from fkhls.faults import BitFault, FaultScenario, FaultSet, FaultyLayerBitRegion, check_region, region_bits
from fkhls.fixedpoint import (
    FixedPrecisionType,
    cast_raw,
    cpp_type,
    flip_bits,
    from_raw,
    quantizer_type,
    raw_bounds,
    to_raw,
)
from fkhls.model_spec import WEIGHTED_KINDS, LayerSpec, ModelSpec, quantized_tensor

__all__ = [
    "Weights",
    "quantize_and_bitflip",
    "fault_mask",
    "golden_weights",
    "input_raw",
    "apply_faults",
    "forward_raw",
    "qkeras_forward",
    "faulty_model_outputs",
    "evaluate_single_bit_faults",
    "summarize_single_bit_faults",
    "FaultSummary",
    "float64_is_exact",
]

Weights = dict  # (layer name, "kernel" | "bias") -> raw int64 array in Keras shape

_FLOAT64_EXACT = 2**53
_ELEMENTWISE = ("activation", "linear")


# ----------------------------------------------------------------------------- the bit-flip core


def fault_mask(size: int, width: int, regions: Sequence[FaultyLayerBitRegion], seed: int = 0,
               where: str = "tensor") -> np.ndarray:
    """Per-word XOR masks (bit 0 = LSB) of FKeras regions over ``size`` words of ``width`` bits.

    A bit named by several regions is flipped once (FKeras v3 ORs masks). Region ``k`` with
    ber < 1 draws its bits from ``default_rng([seed, k])``.
    """
    mask = np.zeros(size, dtype=np.int64)
    chosen = []
    for index, region in enumerate(regions):
        check_region(region, size * width, f"{where} ({size} weights x {width} bits)")
        chosen.append(region_bits(region, np.random.default_rng([int(seed), index])))
    if chosen:
        lbis = np.unique(np.concatenate(chosen))
        np.bitwise_or.at(mask, lbis // width, np.left_shift(np.int64(1), width - 1 - lbis % width))
    return mask


def quantize_and_bitflip(tensor, quantizer, regions: Sequence[FaultyLayerBitRegion], seed: int = 0):
    """Quantize ``tensor`` with a QKeras quantizer and flip the bits of ``regions`` in the words.

    The word is ``fixedpoint.quantizer_type`` of the quantizer (ap_fixed<b, i+1> for
    keep_negative=1, ap_ufixed<b, i> for keep_negative=0); a flip of the sign bit wraps as the
    hardware does. Returns a tf.Tensor of the quantizer's dtype (float32), like FKeras.
    """
    import tensorflow as tf

    quantized = quantizer(tf.convert_to_tensor(tensor))
    config = {"class_name": quantizer.__class__.__name__, "config": quantizer.get_config()}
    ptype = quantizer_type(config, where="quantize_and_bitflip quantizer")
    values = quantized.numpy().astype(np.float64)
    raw = to_raw(ptype, values, "quantized tensor")
    mask = fault_mask(raw.size, ptype.width, regions, seed).reshape(raw.shape)
    faulty = from_raw(ptype, flip_bits(ptype, raw, mask))
    return tf.convert_to_tensor(faulty.astype(quantized.dtype.as_numpy_dtype))


# ----------------------------------------------------------------------------- weights and inputs


def golden_weights(model, spec: ModelSpec) -> Weights:
    """Raw words of every quantized kernel/bias, from QKeras's own quantizers (exact)."""
    weights = {}
    for tspec in spec.tensors():
        values = quantized_tensor(model.get_layer(tspec.layer), tspec.tensor)
        weights[(tspec.layer, tspec.tensor)] = to_raw(tspec.ptype, values, f"{tspec.layer}.{tspec.tensor}")
    return weights


def input_raw(spec: ModelSpec, x) -> np.ndarray:
    """Input values -> raw words of the input type; refuses values off its grid (they would not be exact)."""
    return to_raw(spec.input_type, np.asarray(x, dtype=np.float64), "inputs")


def apply_faults(spec: ModelSpec, weights: Weights, faults: Sequence[BitFault]) -> Weights:
    """A copy of ``weights`` with every fault's bit flipped (a bit listed twice flips once)."""
    out = dict(weights)
    groups: dict[tuple[str, str], set[BitFault]] = {}
    for fault in faults:
        groups.setdefault((fault.layer, fault.tensor), set()).add(fault)
    for key, group in groups.items():
        tspec = spec.tensor(*key)
        raw = np.asarray(weights[key], dtype=np.int64)
        lbis = np.array(sorted(f.lbi for f in group), dtype=np.int64)
        if lbis[-1] >= tspec.n_bits or lbis[0] < 0:
            raise FaultSpecError(f"lbi {int(lbis[-1])} of {key[0]}.{key[1]} is outside 0..{tspec.n_bits - 1}")
        mask = np.zeros(raw.size, dtype=np.int64)
        np.bitwise_or.at(mask, lbis // tspec.width, np.left_shift(np.int64(1), tspec.width - 1 - lbis % tspec.width))
        out[key] = flip_bits(tspec.ptype, raw, mask.reshape(raw.shape))
    return out


# ----------------------------------------------------------------------------- one step at a time


def float64_is_exact(layer: LayerSpec, in_type: FixedPrecisionType) -> bool:
    """True when every product and partial sum of the layer is an integer below 2**53 for any words of its types."""
    x_lo, x_hi = raw_bounds(in_type)
    w_lo, w_hi = raw_bounds(layer.kernel.ptype)
    return layer.n_terms * max(-x_lo, x_hi) * max(-w_lo, w_hi) <= _FLOAT64_EXACT


def _matmul(a: np.ndarray, b: np.ndarray, exact_float: bool) -> np.ndarray:
    """Integer matrix product; float64 BLAS when proven exact (see module docstring), else int64."""
    if exact_float:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF/hls4ml 'same' padding: out = ceil(size/stride), the extra row/column goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _patches(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    """im2col: (N, positions, kh*kw*cin) in the kernel's C-order, zero padding as TF/hls4ml."""
    ksize = layer.kernel.shape[:-2]
    nd = len(ksize)
    if layer.padding == "same":
        pads = [_same_pads(x.shape[1 + d], ksize[d], layer.strides[d]) for d in range(nd)]
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    axes = tuple(range(1, 1 + nd))
    win = np.lib.stride_tricks.sliding_window_view(x, ksize, axis=axes)  # (N, *pos, cin, *k)
    win = win[(slice(None), *[slice(None, None, s) for s in layer.strides])]
    order = (0, *axes, *range(nd + 2, 2 * nd + 2), nd + 1)  # (N, *pos, *k, cin)
    win = win.transpose(order)
    return win.reshape(x.shape[0], -1, int(np.prod(layer.kernel.shape[:-1])))


@dataclass(frozen=True)
class _Acc:
    """A weighted layer's exact accumulator (N, positions, n_out) at scale 2**-frac, plus its im2col input."""

    acc: np.ndarray
    frac: int
    patches: np.ndarray  # (N, positions, n_terms)


def _accumulate(layer: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: Weights) -> _Acc:
    """sum(x * w) aligned to the exact fractional position, plus the bias aligned to it."""
    kernel = weights[(layer.name, "kernel")]
    n = x.shape[0]
    patches = x.reshape(n, 1, -1) if layer.kind == "dense" else _patches(layer, x)
    frac_p = in_type.fractional + layer.kernel.ptype.fractional
    frac = frac_p if layer.bias is None else max(frac_p, layer.bias.ptype.fractional)
    flat = _matmul(patches.reshape(-1, patches.shape[-1]), kernel.reshape(-1, kernel.shape[-1]),
                   float64_is_exact(layer, in_type))
    acc = flat.reshape(n, patches.shape[1], -1) << (frac - frac_p)
    if layer.bias is not None:
        acc += weights[(layer.name, "bias")] << (frac - layer.bias.ptype.fractional)
    return _Acc(acc, frac, patches)


def _finish(layer: LayerSpec, acc: np.ndarray, frac: int) -> np.ndarray:
    """Accumulator -> the layer's result words: hls4ml casts accum_t to result_t (identity when equal)."""
    if layer.accum_type.fractional == frac and layer.result_type == layer.accum_type:
        return acc  # the exact sum always fits accum_t (model_spec.accumulator_type), so no cast changes it
    return cast_raw(cast_raw(acc, frac, layer.accum_type), layer.accum_type.fractional, layer.result_type)


def _elementwise(layer: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray) -> np.ndarray:
    """relu / quantized_bits / linear on words: hls4ml's relu assigns max(x, 0) into the result type."""
    if layer.kind == "linear":
        return x
    if layer.activation == "relu":
        return cast_raw(np.maximum(x, 0), in_type.fractional, layer.result_type)
    if layer.activation == "quantized_bits":
        return cast_raw(x, in_type.fractional, layer.result_type)
    raise UnsupportedModelError(f"layer {layer.name!r}: activation {layer.activation!r} is not supported")


def _step(layer: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: Weights) -> np.ndarray:
    """One compute step on a batch of input words -> its output words (N, *output_shape)."""
    if layer.kind in WEIGHTED_KINDS:
        acc = _accumulate(layer, in_type, x, weights)
        return _finish(layer, acc.acc, acc.frac).reshape(x.shape[0], *layer.output_shape)
    if layer.kind in _ELEMENTWISE:
        return _elementwise(layer, in_type, x)
    if layer.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if layer.kind == "input":
        return x
    raise UnsupportedModelError(f"layer {layer.name!r}: kind {layer.kind!r} is not supported")


def _check_inputs(spec: ModelSpec, x_raw) -> np.ndarray:
    x_raw = np.asarray(x_raw)
    if not np.issubdtype(x_raw.dtype, np.integer):
        raise OffGridError(f"x_raw must hold integer words of {cpp_type(spec.input_type)}, got dtype {x_raw.dtype}")
    x_raw = x_raw.astype(np.int64)
    if x_raw.shape[1:] != spec.input_shape:
        raise OffGridError(f"x_raw has shape {x_raw.shape}; expected (N, *{spec.input_shape})")
    lo, hi = raw_bounds(spec.input_type)
    if x_raw.size and (x_raw.min() < lo or x_raw.max() > hi):
        raise OffGridError(f"x_raw words must lie in [{lo}, {hi}] ({cpp_type(spec.input_type)}), "
                           f"got [{x_raw.min()}, {x_raw.max()}]")
    return x_raw


def forward_raw(spec: ModelSpec, weights: Weights, x_raw, trace: bool = False):
    """Output words of the model for input words ``x_raw`` (N, *input_shape).

    With ``trace=True`` returns ``(output, {layer name: output words})`` for every step, for a
    layer-by-layer comparison with the C simulation.
    """
    x = _check_inputs(spec, x_raw)
    outputs = {}
    in_type = spec.input_type
    for layer in spec.layers:
        x = _step(layer, in_type, x, weights)
        in_type = layer.result_type
        if trace:
            outputs[layer.name] = x
    return (x, outputs) if trace else x


def qkeras_forward(model, x) -> np.ndarray:
    """What QKeras computes: ``model.predict`` in float32 (not exact in general; see FIELD_NOTES)."""
    return np.asarray(model.predict(np.asarray(x, dtype=np.float32), verbose=0, batch_size=1024))


# ----------------------------------------------------------------------------- faulty models


def _scenarios(faults) -> tuple[list[FaultScenario], bool]:
    if isinstance(faults, FaultSet):
        return list(faults.scenarios), True
    if isinstance(faults, FaultScenario):
        return [faults], False
    if isinstance(faults, BitFault):
        return [FaultScenario(f"{faults.layer}.{faults.tensor}[lbi={faults.lbi}]", (faults,))], False
    raise FaultSpecError(f"expected a FaultScenario, FaultSet or BitFault, got {type(faults).__name__}")


def _predict_with(model, spec: ModelSpec, faulty: Weights, keys, x) -> np.ndarray:
    """Set faulty quantized values into the Keras variables and predict (the FKeras way)."""
    for key in keys:
        tspec = spec.tensor(*key)
        layer = model.get_layer(key[0])
        variable = layer.kernel if key[1] == "kernel" else layer.bias
        variable.assign(from_raw(tspec.ptype, faulty[key]).astype(np.float32))
    return qkeras_forward(model, x)


def faulty_model_outputs(model, faults, x, *, spec: ModelSpec | None = None, method: str = "exact") -> np.ndarray:
    """Outputs of ``model`` on inputs ``x`` with a fault scenario (or each scenario of a FaultSet) applied.

    ``method="exact"`` evaluates hardware words with ``forward_raw`` and returns their float64
    values (exact); ``method="tf"`` writes the faulty quantized values into the Keras variables
    and runs ``model.predict`` (float32, FKeras's way), restoring every weight bit for bit in a
    ``finally`` block. Shape (N, *out) for one scenario, (S, N, *out) for a FaultSet. The model
    is never left modified.
    """
    from fkhls.model_spec import describe_model

    if method not in ("exact", "tf"):
        raise FaultSpecError(f"method {method!r} is not valid; valid methods: ['exact', 'tf']")
    spec = spec or describe_model(model)
    scenarios, many = _scenarios(faults)
    weights = golden_weights(model, spec)
    results = []
    if method == "exact":
        x_raw = input_raw(spec, x)
        for scenario in scenarios:
            raw = forward_raw(spec, apply_faults(spec, weights, scenario.faults), x_raw)
            results.append(from_raw(spec.output_type, raw))
    else:
        saved = [np.array(w, copy=True) for w in model.get_weights()]
        try:
            for scenario in scenarios:
                keys = list(scenario.by_tensor())
                results.append(_predict_with(model, spec, apply_faults(spec, weights, scenario.faults), keys, x))
                model.set_weights(saved)
        finally:
            model.set_weights(saved)
    return np.stack(results) if many else results[0]


# ----------------------------------------------------------------------------- batched single-bit engine


# Elementwise steps whose input word is at most this wide run as a table of all 2**W words.
_TABLE_MAX_WIDTH = 20
# Words (and exact accumulators) of types at most this wide are cached as int32: half the memory
# traffic, and any difference of two such words still fits in int32.
_NARROW_WIDTH = 30


def _compact(words: np.ndarray, narrow: bool) -> np.ndarray:
    return words.astype(np.int32) if narrow else words


@dataclass
class _Golden:
    """Golden words of every step, the accumulators and im2col inputs of weighted steps.

    Also holds, per elementwise step with a narrow input type, a table of its output for every
    possible input word (built with the same ``cast_raw``), so faulty rows cost one gather.
    """

    spec: ModelSpec
    weights: Weights
    outs: list[np.ndarray]  # outs[l] = output words of spec.layers[l], (N, *shape)
    in_types: list[FixedPrecisionType]
    accs: dict[int, _Acc] = field(default_factory=dict)
    tables: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)
    fused: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def run(cls, spec: ModelSpec, weights: Weights, x_raw: np.ndarray) -> "_Golden":
        x = _check_inputs(spec, x_raw)
        outs, in_types, accs, tables = [], [], {}, {}
        in_type = spec.input_type
        for index, layer in enumerate(spec.layers):
            in_types.append(in_type)
            if layer.kind in WEIGHTED_KINDS:
                acc = _accumulate(layer, in_type, x, weights)
                x = _finish(layer, acc.acc, acc.frac).reshape(x.shape[0], *layer.output_shape)
                narrow = acc.frac == layer.accum_type.fractional and layer.accum_type.width <= _NARROW_WIDTH
                accs[index] = _Acc(_compact(acc.acc, narrow), acc.frac, acc.patches)
            else:
                if layer.kind == "activation" and in_type.width <= _TABLE_MAX_WIDTH:
                    lo, hi = raw_bounds(in_type)
                    table = _elementwise(layer, in_type, np.arange(lo, hi + 1, dtype=np.int64))
                    tables[index] = (lo, _compact(table, layer.result_type.width <= _NARROW_WIDTH))
                x = _step(layer, in_type, x, weights)
            outs.append(_compact(x, layer.result_type.width <= _NARROW_WIDTH))
            in_type = layer.result_type
        for index, acc in accs.items():  # im2col of the compact inputs, for the cheap per-fault deltas
            accs[index] = _Acc(acc.acc, acc.frac, acc.patches.astype(outs[index - 1].dtype))
        return cls(spec, weights, outs, in_types, accs, tables)

    @property
    def final(self) -> np.ndarray:
        return self.outs[-1]

    def step(self, index: int, x: np.ndarray) -> np.ndarray:
        """Step ``index`` on faulty words; inputs are words of the step's input type by construction."""
        if index in self.tables:
            lo, table = self.tables[index]
            return table[x - lo]
        return _step(self.spec.layers[index], self.in_types[index], x, self.weights)


def _float_dtype(layer: LayerSpec, in_type: FixedPrecisionType):
    """The narrowest float type in which the layer's sums, bias and table offset are exact, or None.

    float32 holds every integer up to 2**24, float64 up to 2**53: the product-sum bound of the
    types and the accumulator width (which bounds the aligned sum plus bias) must both fit.
    """
    x_lo, x_hi = raw_bounds(in_type)
    w_lo, w_hi = raw_bounds(layer.kernel.ptype)
    bound = layer.n_terms * max(-x_lo, x_hi) * max(-w_lo, w_hi)
    width = layer.accum_type.width + 1  # + 1: the table offset may double the magnitude
    if bound <= 2**24 and width <= 24:
        return np.float32
    if bound <= _FLOAT64_EXACT and width <= 53:
        return np.float64
    return None


def _dense_table(g: _Golden, index: int, rows: np.ndarray) -> np.ndarray | None:
    """Dense step ``index`` fused with the table activation after it, in exact floats; None if not applicable.

    Words stay exact (``_float_dtype``): every product, partial sum, bias and table index is an
    integer the float type represents. One BLAS call, one add, one cast, one gather per row.
    """
    layer = g.spec.layers[index]
    if (layer.kind != "dense" or index + 1 not in g.tables or layer.result_type != layer.accum_type
            or layer.accum_type.fractional != g.accs[index].frac):
        return None
    cache = g.fused.get(index)
    if cache is None:
        dtype = _float_dtype(layer, g.in_types[index])
        if dtype is None:
            return None
        acc = g.accs[index]
        frac_p = g.in_types[index].fractional + layer.kernel.ptype.fractional
        kernel = g.weights[(layer.name, "kernel")] << (acc.frac - frac_p)
        offset = np.zeros(kernel.shape[-1], dtype=np.int64) - g.tables[index + 1][0]
        if layer.bias is not None:
            offset += g.weights[(layer.name, "bias")] << (acc.frac - layer.bias.ptype.fractional)
        cache = g.fused[index] = (kernel.astype(dtype), offset.astype(dtype))
    kernel, offset = cache
    summed = rows.astype(kernel.dtype) @ kernel
    summed += offset
    return g.tables[index + 1][1][summed.astype(np.int32)]


def _propagate(g: _Golden, start: int, rows: np.ndarray, samples: np.ndarray, ids: np.ndarray):
    """Run steps ``start..`` on faulty rows, dropping rows equal to golden after activations and at the end.

    A dropped row's final output is golden (all later steps are deterministic in their input).
    """
    layers = g.spec.layers
    index = start
    while index < len(layers) and rows.shape[0]:
        fused = _dense_table(g, index, rows)
        if fused is not None:
            rows, index = fused, index + 1
        else:
            rows = g.step(index, rows)
        if layers[index].kind not in WEIGHTED_KINDS or index + 1 == len(layers):
            keep = (rows != g.outs[index][samples]).reshape(rows.shape[0], -1).any(axis=1)
            rows, samples, ids = rows[keep], samples[keep], ids[keep]
        index += 1
    return rows, samples, ids


def _fault_deltas(g: _Golden, index: int, tensor: str, faults: Sequence[BitFault]):
    """Per fault: output channel, kernel row (-1 for a bias) and the accumulator delta per unit input word."""
    layer = g.spec.layers[index]
    tspec = layer.kernel if tensor == "kernel" else layer.bias
    raw = g.weights[(layer.name, tensor)].reshape(-1)
    lbis = np.array([f.lbi for f in faults], dtype=np.int64)
    flat, bit = lbis // tspec.width, tspec.width - 1 - lbis % tspec.width
    old = raw[flat]
    new = flip_bits(tspec.ptype, old, np.left_shift(np.int64(1), bit))
    in_frac = g.in_types[index].fractional if tensor == "kernel" else 0
    delta = ((new - old) << (g.accs[index].frac - (tspec.ptype.fractional + in_frac))).astype(g.accs[index].acc.dtype)
    n_out = layer.kernel.shape[-1]
    if tensor == "kernel":
        return flat % n_out, flat // n_out, delta
    return flat, np.full(flat.shape, -1), delta


def _channel_values(g: _Golden, index: int, tensor: str, faults: Sequence[BitFault]):
    """Faulty words of the one output channel each fault touches, (F, N, positions), carried through
    the elementwise steps that follow; returns (last step index, channel, faulty, golden)."""
    layers = g.spec.layers
    layer = layers[index]
    channel, row, delta = _fault_deltas(g, index, tensor, faults)
    acc = g.accs[index]
    values = acc.acc[:, :, channel].transpose(2, 0, 1)  # golden accumulators (F, N, P)
    if tensor == "kernel":
        values = values + delta[:, None, None] * acc.patches[:, :, row].transpose(2, 0, 1)
    else:
        values = values + delta[:, None, None]
    values = _finish(layer, values, acc.frac)
    step = index
    while step + 1 < len(layers) and layers[step + 1].kind in _ELEMENTWISE:
        step += 1
        values = g.step(step, values)
    n = g.outs[0].shape[0]
    golden = g.outs[step].reshape(n, -1, layer.kernel.shape[-1])[:, :, channel].transpose(2, 0, 1)
    return step, channel, values, golden


def _unique_states(samples: np.ndarray, channel: np.ndarray, values: np.ndarray):
    """Group pairs whose faulty state (sample, channel, word) is identical: downstream results are equal.

    Returns (representative pair index per state, state of each pair), or None when the key
    would not fit in int64. Small key spaces use a direct table instead of a sort.
    """
    v_lo = int(values.min())
    spans = [int(samples.max()) + 1, int(channel.max()) + 1, int(values.max()) - v_lo + 1]
    space = float(spans[0]) * spans[1] * spans[2]
    if space >= 2.0**62:
        return None
    key = (samples * spans[1] + channel) * spans[2] + (values - v_lo)
    if space > max(1 << 24, 8 * len(key)):
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse
    owner = np.full(int(space), -1, dtype=np.int64)
    owner[key] = np.arange(len(key))  # any pair of a key represents it: they are the same state
    used = owner >= 0
    state_of_key = np.cumsum(used) - 1
    return owner[used], state_of_key[key]


def _downstream(g: _Golden, step: int, channel: np.ndarray, samples: np.ndarray, values: np.ndarray,
                golden: np.ndarray):
    """Final rows of faulty states whose channel words differ after ``step``; returns (rows, kept indices)."""
    layers = g.spec.layers
    ids = np.arange(len(samples))
    n_chan = layers[step].output_shape[-1] if layers[step].kind != "flatten" else golden.shape[-1]
    if step + 1 == len(layers):
        rows = g.outs[step][samples].reshape(len(samples), -1, n_chan).copy()
        rows[ids, :, channel] = values
        return rows.reshape(len(samples), *g.outs[step].shape[1:]), ids
    nxt = layers[step + 1]
    if nxt.kind == "dense" and values.shape[1] == 1 and g.outs[step].ndim == 2:
        # Rank-1 update: only input column `channel` differs, so the next dense's exact accumulator
        # moves by (new - old) * W[channel, :] (integers): no full matmul.
        # Every term is a difference of two accumulators of the type, so the accumulator's dtype holds it.
        nacc = g.accs[step + 1]
        shift = nacc.frac - (g.in_types[step + 1].fractional + nxt.kernel.ptype.fractional)
        w = (g.weights[(nxt.name, "kernel")] << shift).astype(nacc.acc.dtype)
        diff = (values[:, 0] - golden[:, 0]).astype(nacc.acc.dtype)
        rows = nacc.acc[samples, 0]
        rows += diff[:, None] * w[channel]
        rows, _, ids = _propagate(g, step + 2, _finish(nxt, rows, nacc.frac), samples, ids)
        return rows, ids
    rows = g.outs[step][samples].reshape(len(samples), -1, n_chan).copy()
    rows[ids, :, channel] = values
    rows, _, ids = _propagate(g, step + 1, rows.reshape(len(samples), *g.outs[step].shape[1:]), samples, ids)
    return rows, ids


@dataclass(frozen=True)
class _Effects:
    """Faulty (fault, sample) pairs of one chunk and the distinct final rows they map to.

    Pair ``k`` is fault ``faults[k]`` on sample ``samples[k]``; its output is ``rows[row[k]]``,
    or golden when ``row[k] == -1``. Pairs with equal downstream state share one row.
    """

    faults: np.ndarray
    samples: np.ndarray
    row: np.ndarray
    rows: np.ndarray  # (R, *out) final words, each different from golden
    row_samples: np.ndarray  # (R,) the sample each row belongs to


def _effects_of_group(g: _Golden, index: int, tensor: str, faults: Sequence[BitFault], max_rows: int):
    """The effects (positions in ``faults``) of single-bit faults of one tensor on the outputs."""
    step, channel, values, golden = _channel_values(g, index, tensor, faults)
    fpos, samples = np.nonzero((values != golden).any(axis=2))
    vals, gold, chan = values[fpos, samples], golden[fpos, samples], channel[fpos]
    states = _unique_states(samples, chan, vals[:, 0]) if vals.shape[1] == 1 and len(fpos) else None
    if states is None:
        first, inverse = np.arange(len(fpos)), np.arange(len(fpos))
    else:
        first, inverse = states
    slot = np.full(len(first), -1)
    blocks, done = [], 0
    for lo in range(0, len(first), max_rows):
        rep = first[lo:lo + max_rows]
        rows, kept = _downstream(g, step, chan[rep], samples[rep], vals[rep], gold[rep])
        slot[lo + kept] = done + np.arange(len(kept))
        blocks.append((rows, samples[rep[kept]]))
        done += len(kept)
    out_shape = g.final.shape[1:]
    rows = np.concatenate([b[0] for b in blocks]) if blocks else np.empty((0, *out_shape), dtype=np.int64)
    row_samples = np.concatenate([b[1] for b in blocks]) if blocks else np.empty(0, dtype=np.int64)
    return _Effects(fpos, samples, slot[inverse], rows, row_samples)


def _check_faults(spec: ModelSpec, faults: Sequence[BitFault]) -> dict[tuple[str, str], list[int]]:
    """Validate faults against the spec; group their positions per (layer, tensor) in first-seen order."""
    sizes = {(t.layer, t.tensor): (t.n_bits, t.width) for t in spec.tensors()}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, fault in enumerate(faults):
        n_bits, width = sizes.get((fault.layer, fault.tensor), (0, 0))
        if not n_bits:
            raise FaultSpecError(f"fault {fault} names no quantized tensor; valid: {sorted(sizes)}")
        if not 0 <= fault.lbi < n_bits or fault.width != width:
            raise FaultSpecError(f"fault {fault} is outside {fault.layer}.{fault.tensor}: lbi 0..{n_bits - 1}, "
                                 f"width {width}")
        groups.setdefault((fault.layer, fault.tensor), []).append(i)
    return groups


def _iter_effects(spec: ModelSpec, weights: Weights, x_raw, faults: Sequence[BitFault],
                  chunk_elements: int = 1 << 22, max_rows: int = 1 << 17) -> Iterator:
    """Yield the golden run, then (fault indices, samples, faulty final rows), chunked to bound memory."""
    groups = _check_faults(spec, faults)
    g = _Golden.run(spec, weights, x_raw)
    yield g
    position = {layer.name: i for i, layer in enumerate(spec.layers)}
    n = g.outs[0].shape[0]
    for (name, tensor), members in groups.items():
        index = position[name]
        step = max(1, chunk_elements // max(n * g.accs[index].acc.shape[1], 1))
        for lo in range(0, len(members), step):
            chunk = np.asarray(members[lo:lo + step])
            effects = _effects_of_group(g, index, tensor, [faults[i] for i in chunk], max_rows)
            yield replace(effects, faults=chunk[effects.faults])


def evaluate_single_bit_faults(spec: ModelSpec, weights: Weights, x_raw, faults: Sequence[BitFault]) -> np.ndarray:
    """Output words (F, N, *out) of the model with each fault applied alone, exactly as ``forward_raw``.

    Golden activations are computed once; a fault changes one output channel of its layer by an
    exact integer delta on the cached accumulator, and only samples whose words changed are
    carried downstream. Memory is F*N*outputs int64: use ``summarize_single_bit_faults`` for
    large campaigns.
    """
    effects = _iter_effects(spec, weights, x_raw, faults)
    g = next(effects)
    out = np.broadcast_to(g.final, (len(faults), *g.final.shape)).copy()
    for e in effects:
        hit = e.row >= 0
        out[e.faults[hit], e.samples[hit]] = e.rows[e.row[hit]]
    return out


@dataclass(frozen=True)
class FaultSummary:
    """Per-fault effect on the outputs (index i describes ``faults[i]``); errors are in output LSBs.

    ``argmax_changed`` counts samples whose first maximal output (numpy argmax) moved.
    ``outputs`` holds the full output words (N, *out) of the faults asked for by index.
    """

    faults: tuple[BitFault, ...]
    golden: np.ndarray  # (N, *out) output words
    samples_changed: np.ndarray  # (F,) samples with any output word changed
    outputs_changed: np.ndarray  # (F,) output words changed over all samples
    max_abs_error_lsb: np.ndarray  # (F,) largest |faulty - golden| word difference
    argmax_changed: np.ndarray  # (F,)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)


def _max_at(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """target[index] = max(target[index], values), fast when ``index`` is sorted (it is, per chunk)."""
    if not len(index):
        return
    if np.all(index[1:] >= index[:-1]):
        starts = np.concatenate(([0], np.nonzero(index[1:] != index[:-1])[0] + 1))
        np.maximum.at(target, index[starts], np.maximum.reduceat(values, starts))
    else:
        np.maximum.at(target, index, values)


def summarize_single_bit_faults(
    spec: ModelSpec, weights: Weights, x_raw, faults: Sequence[BitFault], keep_outputs: Sequence[int] = ()
) -> FaultSummary:
    """Per-fault summaries of ``evaluate_single_bit_faults`` without holding F*N*out words in memory."""
    effects = _iter_effects(spec, weights, x_raw, faults)
    g = next(effects)
    n_faults = len(faults)
    golden = g.final.reshape(g.final.shape[0], -1)
    golden_arg = golden.argmax(axis=1)
    samples_changed = np.zeros(n_faults, dtype=np.int64)
    outputs_changed = np.zeros(n_faults, dtype=np.int64)
    max_err = np.zeros(n_faults, dtype=np.int64)
    arg_changed = np.zeros(n_faults, dtype=np.int64)
    keep = {int(k): g.final.copy() for k in keep_outputs}
    for e in effects:
        flat = e.rows.reshape(e.rows.shape[0], -1)
        diff = np.abs(flat - golden[e.row_samples])
        hit = e.row >= 0
        f, r = e.faults[hit], e.row[hit]
        samples_changed += np.bincount(f, minlength=n_faults)
        outputs_changed += np.bincount(f, weights=(diff != 0).sum(axis=1)[r], minlength=n_faults).astype(np.int64)
        _max_at(max_err, f, diff.max(axis=1, initial=0)[r])
        moved = flat.argmax(axis=1) != golden_arg[e.row_samples] if len(flat) else np.zeros(0, bool)
        arg_changed += np.bincount(f, weights=moved[r], minlength=n_faults).astype(np.int64)
        for k in keep:
            mine = np.nonzero(f == k)[0]
            keep[k][e.samples[hit][mine]] = e.rows[r[mine]]
    return FaultSummary(tuple(faults), g.final, samples_changed, outputs_changed, max_err, arg_changed, keep)
