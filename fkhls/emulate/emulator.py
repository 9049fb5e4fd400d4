"""The TF bit-flip core and exact faulty-model evaluation.

Three layers of API, from FKeras-compatible to fast:

* ``quantize_and_bitflip`` -- FKeras's core (quantize, XOR a mask on the integer word, scale back)
  on the hardware word of ``fkhls.core.fixedpoint.quantizer_type``; equals FKeras's
  ``quantize_and_bitflip_deterministic_v3`` for its single-bit, ber 1 regions and also handles
  multi-bit regions and ber < 1.
* ``forward_raw`` -- the model evaluated on hardware words (raw int64 ``value * 2**fractional``)
  step by step from a ``ModelSpec``, each step by its layer handler's exact forward
  (``fkhls.model.layers``): what the hls4ml fixed-point project computes when its types
  are the ModelSpec's (exact accumulators, as fkhls exports them). ``faulty_model_outputs``
  applies a fault scenario with it (or, for FKeras parity, through TF and ``model.predict``).
* ``evaluate_single_bit_faults`` / ``summarize_single_bit_faults`` -- many single-bit faults at
  once, reusing golden accumulators: exact, and ~3 orders of magnitude faster than one
  ``model.predict`` per fault. How, and why it stays exact, is written above the engine below
  (bands, fault entry, rank-1 updates, float sums, integer widths).

Exactness of the integer path: every weighted layer sums integer products. The sum is done in
float64 BLAS when ``n_terms * max|x word| * max|w word| <= 2**53`` for the *types* (so it holds
for any faulty weight too): every product and partial sum is then an integer below 2**53, which
float64 represents exactly whatever the summation order, so the result equals the integer sum.
Otherwise the sum is done in int64 (slower, exact while the accumulator fits in 62 bits, which
``fkhls.model.layers.dense.accumulator_type`` enforces). Biases, alignment shifts and every cast
(``fkhls.core.fixedpoint.cast_raw``: ap_fixed rounding and saturation) are done on int64.

TensorFlow is imported lazily: only the TF-facing functions pay its ~5 s import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
from hls4ml.model.types import SaturationMode

from fkhls.core.errors import FaultSpecError, OffGridError
from fkhls.faults.descriptors import (
    BitFault,
    FaultScenario,
    FaultSet,
    FaultyLayerBitRegion,
    check_region,
    lb_index_to_wb_index,
    region_bits,
)
from fkhls.core.fixedpoint import (
    FixedPrecisionType,
    cpp_type,
    flip_bits,
    from_raw,
    is_po2,
    quantizer_type,
    raw_bounds,
    to_raw,
)
from fkhls.emulate import graph_engine
from fkhls.model.layers import handler_for_kind, role_of
from fkhls.model.layers.activation import is_lossless
from fkhls.model.layers.dense import Accumulated, WeightedHandler, float64_is_exact, sum_magnitude
from fkhls.model.spec import LayerSpec, ModelSpec

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

Weights = dict  # (tensor layer, tensor name) -> raw int64 array in Keras shape (TensorSpec.layer/.tensor)

_FLOAT64_EXACT = 2**53
_FLOAT32_EXACT = 2**24


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
        flat, bit = lb_index_to_wb_index(lbis, width)
        np.bitwise_or.at(mask, flat, np.left_shift(np.int64(1), bit))
    return mask


def quantize_and_bitflip(tensor, quantizer, regions: Sequence[FaultyLayerBitRegion], seed: int = 0):
    """Quantize ``tensor`` with a QKeras quantizer and flip the bits of ``regions`` in the words.

    The word is ``fkhls.core.fixedpoint.quantizer_type`` of the quantizer (ap_fixed<b, i+1> for
    keep_negative=1, ap_ufixed<b, i> for keep_negative=0); a flip of the sign bit wraps as the
    hardware does. Returns a tf.Tensor of the quantizer's dtype (float32), like FKeras.
    """
    import tensorflow as tf

    quantized = quantizer(tf.convert_to_tensor(tensor))
    config = {"class_name": quantizer.__class__.__name__, "config": quantizer.get_config()}
    ptype = quantizer_type(config, where="quantize_and_bitflip quantizer")
    if is_po2(ptype):
        raise FaultSpecError(PO2_TF_REFUSAL.format(what=f"a {quantizer} tensor"))
    values = quantized.numpy().astype(np.float64)
    raw = to_raw(ptype, values, "quantized tensor")
    mask = fault_mask(raw.size, ptype.width, regions, seed).reshape(raw.shape)
    faulty = from_raw(ptype, flip_bits(ptype, raw, mask))
    return tf.convert_to_tensor(faulty.astype(quantized.dtype.as_numpy_dtype))


# ----------------------------------------------------------------------------- weights and inputs


def golden_weights(model, spec: ModelSpec) -> Weights:
    """Raw words of every fault-target tensor, as its handler computes them (QKeras's own quantizers: exact)."""
    weights = {}
    for step in spec.layers:
        handler = handler_for_kind(step.kind)
        for tspec in step.tensors():
            values = handler.tensor_values(model.get_layer(step.keras_name), tspec)  # tspec.layer: the step
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
        flat, bit = lb_index_to_wb_index(lbis, tspec.width)
        np.bitwise_or.at(mask, flat, np.left_shift(np.int64(1), bit))
        out[key] = flip_bits(tspec.ptype, raw, mask.reshape(raw.shape))
    return out


# ----------------------------------------------------------------------------- one step at a time


# Each kind's exact forward lives in its handler (fkhls.model.layers); these names are what the engine uses.
_finish = WeightedHandler.finish


def _weighted(layer: LayerSpec) -> WeightedHandler:
    return handler_for_kind(layer.kind)


def _accumulate(layer: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: Weights) -> Accumulated:
    """The exact accumulator of a weighted step (its handler's sum), plus its im2col input."""
    return _weighted(layer).accumulate(layer, in_type, x, weights)


def _patches(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    return _weighted(layer).patches(layer, x)


def _is_elementwise(layer: LayerSpec) -> bool:
    return role_of(layer.kind) == "elementwise"


def _step(layer: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: Weights) -> np.ndarray:
    """One compute step on a batch of input words -> its output words (N, *output_shape)."""
    return handler_for_kind(layer.kind).forward(layer, in_type, x, weights)


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


def _step_inputs(spec: ModelSpec, sources: tuple[int, ...], outs, x_in: np.ndarray):
    """(input type, input words) of a step reading ``sources``: one array, or tuples for several inputs."""
    if not sources:
        return spec.input_type, x_in
    if len(sources) == 1:
        return spec.layers[sources[0]].result_type, outs[sources[0]]
    return tuple(spec.layers[j].result_type for j in sources), tuple(outs[j] for j in sources)


def _last_use(sources: tuple[tuple[int, ...], ...]) -> list[int]:
    """Per step, the index of the last step reading its output (its own index when none does)."""
    last = list(range(len(sources)))
    for i, srcs in enumerate(sources):
        for j in srcs:
            last[j] = max(last[j], i)
    return last


def forward_raw(spec: ModelSpec, weights: Weights, x_raw, trace: bool = False):
    """Output words of the model for input words ``x_raw`` (N, *input_shape).

    Steps run in ``spec.layers`` order (a topological order of the graph), each on the outputs
    of the steps it reads; the model output is the last step's. With ``trace=True`` returns
    ``(output, {layer name: output words})`` for every step, for a layer-by-layer comparison
    with the C simulation.
    """
    x = _check_inputs(spec, x_raw)
    sources = spec.sources()
    last = _last_use(sources)
    outs: dict[int, np.ndarray] = {}
    traced = {}
    for i, layer in enumerate(spec.layers):
        in_type, x_in = _step_inputs(spec, sources[i], outs, x)
        outs[i] = _step(layer, in_type, x_in, weights)
        if trace:
            traced[layer.name] = outs[i]
        for j in sources[i]:
            if last[j] == i and j != len(spec.layers) - 1:
                del outs[j]  # no later step reads it: bound memory to the live tensors
    final = outs[len(spec.layers) - 1]
    return (final, traced) if trace else final


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


def _is_variable(spec: ModelSpec, key: tuple[str, str]) -> bool:
    """Is the tensor a Keras variable QKeras computes with? Weighted steps' kernels and biases are; arrays
    hls4ml computes (a batch norm's scale and bias, an ApplyAlpha scale) are not."""
    owner = spec.layers[spec.owners()[key]]
    return handler_for_kind(owner.kind).is_keras_variable(owner)


# FKeras's flip is fixed-point arithmetic (scale, XOR, scale back); a po2 word is an exponent struct. A faulty
# value assigned to the Keras variable is re-quantized by quantized_po2, which clips the exponent to its range.
PO2_TF_REFUSAL = ("{what} is a quantized_po2 array (hls4ml's exponent struct: sign bit + exponent bits): FKeras's "
                  "bit flip is fixed-point arithmetic and cannot express a flip of its sign or exponent field, and "
                  "QKeras re-quantizes an assigned faulty value (clipping the exponent); use method='exact' / "
                  "--reference emulator")

# A relu_po2 word is plain fixed point, but QKeras re-quantizes the assigned variable to a power of two on every
# call, so a flipped word that is not a power of two (most are) never reaches the model's product.
RELU_PO2_TF_REFUSAL = ("{what} is a quantized_relu_po2 array: its hardware word is fixed point, but QKeras "
                       "re-quantizes an assigned faulty value to a power of two, so the TF way (FKeras's) computes "
                       "with other values than the hardware; use method='exact' / --reference emulator")


def _predict_with(model, spec: ModelSpec, faulty: Weights, keys, x) -> np.ndarray:
    """Set faulty quantized values into the Keras variables and predict (the FKeras way)."""
    variables = []
    for key in keys:
        if is_po2(spec.tensor(*key).ptype):
            raise FaultSpecError(PO2_TF_REFUSAL.format(what=f"{key[0]}.{key[1]}"))
        if (spec.tensor(*key).quantizer or {}).get("class_name") == "quantized_relu_po2":
            raise FaultSpecError(RELU_PO2_TF_REFUSAL.format(what=f"{key[0]}.{key[1]}"))
        names = {layer.name for layer in model.layers}
        variable = getattr(model.get_layer(key[0]), key[1], None) if key[0] in names else None
        if variable is None or not hasattr(variable, "assign") or not _is_variable(spec, key):
            raise FaultSpecError(f"{key[0]}.{key[1]} is an array computed for the hardware (a batch norm's scale "
                                 "or bias, a QConv2DBatchnorm's folded kernel, an auto_po2 kernel divided by its scale "
                                 "or its ApplyAlpha arrays), not a Keras variable QKeras computes "
                                 "with: the TF way (FKeras's) flips Keras variables only; use method='exact'")
        variables.append((variable, key))
    for variable, key in variables:
        variable.assign(from_raw(spec.tensor(*key).ptype, faulty[key]).astype(np.float32))
    return qkeras_forward(model, x)


def faulty_model_outputs(model, faults, x, *, spec: ModelSpec | None = None, method: str = "exact") -> np.ndarray:
    """Outputs of ``model`` on inputs ``x`` with a fault scenario (or each scenario of a FaultSet) applied.

    ``method="exact"`` evaluates hardware words with ``forward_raw`` and returns their float64
    values (exact); ``method="tf"`` writes the faulty quantized values into the Keras variables
    and runs ``model.predict`` (float32, FKeras's way), restoring every weight bit for bit in a
    ``finally`` block. Shape (N, *out) for one scenario, (S, N, *out) for a FaultSet. The model
    is never left modified.
    """
    from fkhls.model.spec import describe_model

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
#
# The engine works on *blocks*: a weighted step plus the elementwise / reshape steps after it
# (activations, flatten). A block maps accumulator words to its output words by an elementwise
# function ``f``; a fault's effect is carried from block to block as exact accumulator rows, and a
# row leaves the computation as soon as its block output equals golden (every later step is
# deterministic in its input, so its final output is golden). Steps of role ``window`` (pooling)
# and whatever follows them up to the next weighted step run whole on the changed rows
# (``_Golden.carry``), which again drops the rows that came back to golden.
#
# Bands. When ``f`` is monotone non-decreasing (below), the accumulator words with the same
# output word as a golden word ``a`` form an interval [lo(a), hi(a)]; it is found exactly by
# integer bisection with ``f`` itself, once per distinct golden output word. Then
# ``f(a') == f(a)`` iff ``lo(a) <= a' <= hi(a)``: two integer comparisons decide whether a faulty
# accumulator word changes the block output, and ``f`` is evaluated only where it does.
# ``f`` is monotone when the accumulator -> result cast is the identity and every activation is
# relu / quantized_bits / linear whose result type saturates (SAT, SAT_SYM) or, for relu, holds every
# max(x, 0) exactly (fkhls's type for an unquantized relu): max(x, 0), every
# ap_fixed rounding mode (a floor or a round-to-nearest with a tie rule) and clipping are
# monotone, and so is their composition. Otherwise (WRAP or SAT_ZERO activations, a real
# accumulator cast) there are no bands and block outputs are compared with golden instead.
#
# Fault entry. A single-bit fault of weight w[i, c] (or bias b[c]) of a weighted step moves
# accumulator channel ``c`` by the exact integer ``d * x[:, i]`` (``d * 1`` for a bias), where
# ``d = (new - old) << shift`` aligns the word difference to the accumulator's fraction: the sum
# is linear in every weight. With bands, (fault, sample) pairs are kept where that move leaves
# the band: ``d * x < lo - a`` or ``d * x > hi - a``, with the slack ``lo - a``, ``hi - a``
# cached per (channel, sample). A bias is a weight whose input word is the constant 1 (at
# fraction 0), so kernel and bias faults share this code. Pairs of one dense layer whose new
# output word (sample, c, word) is equal have equal downstream results and are propagated once;
# a layer's faults are chunked in channel order so that a chunk holds all faults of a channel.
#
# Downstream, a row's accumulator words inside their band give golden output words, so only the
# words outside it are mapped through ``f`` and written over the golden outputs of the block.
#
# Next block. After a dense block whose one output word changed, the next dense accumulator
# moves by ``(new - old) * W'[c, :]`` (W' the aligned kernel): a rank-1 update in integers.
# After a conv block whose one output channel changed, the next conv's accumulator moves by that
# channel's change convolved with the kernel taps of that input channel (im2col of one channel:
# kh*kw terms instead of kh*kw*cin), when that move is exact in the next block's float dtype.
# After a conv block whose flattened output feeds a dense, one changed channel (P words) moves
# the dense accumulator by those P changes times the kernel rows p*C + channel.
# Otherwise the next accumulator (dense, or conv over im2col patches) is a full product, in float32 / float64 BLAS when
# ``n_terms * max|x| * max|w| << shift  +  max|b| << shift_b`` is at most 2**24 / 2**53 (every
# product, partial sum and the biased sum is then an integer the float represents, whatever the
# summation order), else in int64.
#
# Integer widths. Accumulators and words of types at most ``_NARROW_WIDTH`` (30) bits wide are
# held in int32: a word difference, a slack or a faulty accumulator (an accumulator of the
# faulty weights, which the accumulator type bounds for any weight words) stays below 2**31.


# A block whose accumulator type is at most this wide maps words through a table of all 2**W words.
_TABLE_MAX_WIDTH = 20
# Words (and exact accumulators) of types at most this wide are held as int32.
_NARROW_WIDTH = 30
_MONOTONE_SATURATION = (SaturationMode.SAT, SaturationMode.SAT_SYM)
# Largest (sample, channel, word) key space deduplicated through a direct table (int32: 128 MiB).
_STATE_TABLE = 1 << 25


# Weighted kinds whose faults the fast path carries (a kernel matrix over im2col patches);
# faults in any other step's tensors, and every fault of a graph model, take the generic path (graph_engine.py).
_FAST_KINDS = ("dense", "conv1d", "conv2d")


def _fast(layer: LayerSpec) -> bool:
    # a po2 kernel's product is a shift, not linear in the word: its faults take the generic path
    return layer.kind in _FAST_KINDS and layer.kernel is not None and not is_po2(layer.kernel.ptype)


def _compact(words: np.ndarray, narrow: bool) -> np.ndarray:
    return words.astype(np.int32) if narrow else words


def _sum_dtype(layer: LayerSpec, in_type: FixedPrecisionType, frac: int):
    """float32 / float64 when the layer's sums are exact in that float (see above), else None (int64).

    The bound covers every aligned product, partial sum and biased sum, and a rank-1 move
    ``(new - old) * w`` of one input word (at most twice one product).
    """
    bound = sum_magnitude(layer, in_type, frac, n_terms=max(layer.n_terms, 2))
    return next((dtype for dtype in (np.float32, np.float64) if _exact_in(dtype, bound)), None)


def _exact_in(dtype, bound: int) -> bool:
    """True when integers up to ``bound`` in magnitude (every term and partial sum of a bounded sum) are exact in the
    float ``dtype``."""
    return bound <= (_FLOAT32_EXACT if dtype == np.float32 else _FLOAT64_EXACT)


@dataclass(frozen=True)
class _Block:
    """Steps ``start`` (weighted) .. ``stop``: accumulator words at scale 2**-frac -> output words.

    Accumulators are held in ``dtype``: the exact float type of a dense block's sums, else the
    integer ``idtype`` (int32 when narrow). ``lo`` / ``hi`` (N, P*C): per golden accumulator
    word, the interval of words with the same output word (None without bands). ``table``:
    (first word, output word of every word) or None. ``feed`` (N, P*C): golden output words in
    the dtype the next block consumes (integer when whole steps run between, ``end > stop``).
    """

    start: int
    stop: int
    end: int  # steps stop+1 .. end (pooling ...) run whole on changed rows before the next block
    frac: int
    dtype: type
    idtype: type
    acc: np.ndarray  # (N, P, C) golden accumulator words
    lo: np.ndarray | None
    hi: np.ndarray | None
    table: tuple[int, np.ndarray] | None
    feed: np.ndarray


def _block_function(spec: ModelSpec, in_types: list, start: int, stop: int, frac: int):
    """The block's map on a 1-D array of accumulator words (flatten only reshapes, so it is skipped)."""
    layers = spec.layers

    def f(words: np.ndarray) -> np.ndarray:
        x = _finish(layers[start], np.asarray(words, dtype=np.int64), frac)
        for k in range(start + 1, stop + 1):
            if _is_elementwise(layers[k]):
                x = _step(layers[k], in_types[k], x, None)
        return x

    return f


def _is_monotone(spec: ModelSpec, start: int, stop: int, frac: int) -> bool:
    """True when the block's map is monotone non-decreasing on accumulator words (see above)."""
    layer = spec.layers[start]
    if layer.accum_type.fractional != frac or layer.result_type != layer.accum_type:
        return False
    return all(spec.layers[k].kind != "activation"
               or spec.layers[k].result_type.saturation_mode in _MONOTONE_SATURATION
               or is_lossless(spec.layers[k], spec.layers[k - 1].result_type)
               for k in range(start + 1, stop + 1))


def _bands(f, acc: np.ndarray, out: np.ndarray, d_lo: int, d_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] per golden word of the words in [d_lo, d_hi] that ``f`` (monotone) maps to its output.

    One integer bisection per distinct output word; checked at both ends.
    """
    levels, first, inverse = np.unique(out.reshape(-1), return_index=True, return_inverse=True)
    a0 = acc.reshape(-1)[first].astype(np.int64)
    lo, top = np.full_like(a0, d_lo), a0.copy()
    while np.any(lo < top):  # smallest word mapping to the level: f < level below it
        mid = (lo + top) >> 1
        same = f(mid) == levels
        top, lo = np.where(same, mid, top), np.where(same, lo, mid + 1)
    bottom, hi = a0.copy(), np.full_like(a0, d_hi)
    while np.any(bottom < hi):  # largest word mapping to the level
        mid = (bottom + hi + 1) >> 1
        same = f(mid) == levels
        bottom, hi = np.where(same, mid, bottom), np.where(same, hi, mid - 1)
    if not (np.array_equal(f(lo), levels) and np.array_equal(f(hi), levels)):
        raise AssertionError("band bisection: the block map is not monotone")  # unreachable by the proof
    return lo[inverse].reshape(acc.shape[0], -1), hi[inverse].reshape(acc.shape[0], -1)


@dataclass
class _Golden:
    """Golden words of every step and, per weighted step, its block (accumulators, bands, table).

    Also holds, per elementwise step with a narrow input type, a table of its output for every
    possible input word (built with the same ``cast_raw``), for blocks without bands.
    """

    spec: ModelSpec
    weights: Weights
    outs: list[np.ndarray]  # outs[l] = output words of spec.layers[l], (N, *shape)
    in_types: list[FixedPrecisionType]
    blocks: dict[int, _Block]
    tables: dict[int, tuple[int, np.ndarray]]
    kernels: dict[int, tuple] = field(default_factory=dict)
    entry: dict[int, tuple] = field(default_factory=dict)
    graph: graph_engine.GraphGolden | None = None  # the generic path's caches, built on its first fault

    @classmethod
    def run(cls, spec: ModelSpec, weights: Weights, x_raw: np.ndarray) -> "_Golden":
        if not spec.is_chain:  # a graph: golden words only, every fault takes the generic path
            _, traced = forward_raw(spec, weights, x_raw, trace=True)
            outs = [traced[step.name] for step in spec.layers]
            sources = spec.sources()
            in_types = [_step_inputs(spec, sources[i], outs, None)[0] for i in range(len(outs))]
            return cls(spec, weights, outs, in_types, {}, {})
        x = _check_inputs(spec, x_raw)
        outs, in_types, accs, tables = [], [], {}, {}
        in_type = spec.input_type
        for index, layer in enumerate(spec.layers):
            in_types.append(in_type)
            if _fast(layer):
                acc = _accumulate(layer, in_type, x, weights)
                x = _finish(layer, acc.acc, acc.frac).reshape(x.shape[0], *layer.output_shape)
                accs[index] = (acc.acc, acc.frac)
            else:
                if layer.kind == "activation" and in_type.width <= _TABLE_MAX_WIDTH:
                    lo, hi = raw_bounds(in_type)
                    table = _step(layer, in_type, np.arange(lo, hi + 1, dtype=np.int64), weights)
                    tables[index] = (lo, _compact(table, layer.result_type.width <= _NARROW_WIDTH))
                x = _step(layer, in_type, x, weights)
            outs.append(_compact(x, layer.result_type.width <= _NARROW_WIDTH))
            in_type = layer.result_type
        g = cls(spec, weights, outs, in_types, {}, tables)
        starts = sorted(accs)
        ends = [s - 1 for s in starts[1:]] + [len(spec.layers) - 1]
        dtypes = [_sum_dtype(spec.layers[s], in_types[s], accs[s][1]) for s in starts]
        for k, (start, end) in enumerate(zip(starts, ends)):
            stop = start  # the block: elementwise / reshape steps after the weighted one; the rest runs whole
            while stop < end and role_of(spec.layers[stop + 1].kind) in ("elementwise", "reshape"):
                stop += 1
            acc, frac = accs[start]
            layer = spec.layers[start]
            narrow = frac == layer.accum_type.fractional and layer.accum_type.width <= _NARROW_WIDTH
            idtype = np.int32 if narrow else np.int64
            dtype = dtypes[k] or idtype
            f = _block_function(spec, in_types, start, stop, frac)
            d_lo, d_hi = raw_bounds(layer.accum_type)
            lo = hi = table = None
            if _is_monotone(spec, start, stop, frac):
                lo, hi = (band.astype(dtype) for band in _bands(f, acc, outs[stop], d_lo, d_hi))
            if layer.accum_type.fractional == frac and layer.accum_type.width <= _TABLE_MAX_WIDTH:
                words = f(np.arange(d_lo, d_hi + 1, dtype=np.int64))
                table = (d_lo, _compact(words, spec.layers[stop].result_type.width <= _NARROW_WIDTH))
            feed = outs[stop].reshape(len(x), -1)
            if k + 1 < len(starts) and dtypes[k + 1] is not None and stop == end:
                feed = feed.astype(dtypes[k + 1])
            g.blocks[start] = _Block(start, stop, end, frac, dtype, idtype, acc.astype(dtype), lo, hi, table, feed)
        return g

    @property
    def final(self) -> np.ndarray:
        return self.outs[-1]

    def step(self, index: int, x: np.ndarray) -> np.ndarray:
        """Step ``index`` on faulty words; inputs are words of the step's input type by construction."""
        if index in self.tables:
            lo, table = self.tables[index]
            return table[x - lo]
        return _step(self.spec.layers[index], self.in_types[index], x, self.weights)

    def next_block(self, block: _Block) -> _Block | None:
        return self.blocks.get(block.end + 1)

    def carry(self, block: _Block, rows: np.ndarray, samples: np.ndarray, ids: np.ndarray):
        """Block output rows through the whole steps after the block (pooling ...) up to the next block,
        keeping only the rows whose result still differs from golden."""
        if block.end == block.stop or not len(samples):
            return rows, samples, ids
        for k in range(block.stop + 1, block.end + 1):
            rows = self.step(k, rows)
        keep = (rows != self.outs[block.end][samples]).reshape(len(samples), -1).any(axis=1)
        return rows[keep], samples[keep], ids[keep]

    def apply(self, block: _Block, acc: np.ndarray) -> np.ndarray:
        """Block output words (R, *shape) of accumulator rows (R, P, C), every word computed."""
        shape = (acc.shape[0], *self.outs[block.stop].shape[1:])
        acc = acc.astype(np.int64)
        if block.table is not None:
            first, table = block.table
            return table[acc - first].reshape(shape)
        layer = self.spec.layers[block.start]
        x = _finish(layer, acc, block.frac).reshape(acc.shape[0], *layer.output_shape)
        for k in range(block.start + 1, block.stop + 1):
            x = self.step(k, x)
        return x.reshape(shape)

    def words(self, block: _Block, acc: np.ndarray) -> np.ndarray:
        """Block output words of accumulator words (any shape): the block's map is elementwise."""
        acc = acc.astype(np.int64)
        if block.table is not None:
            first, table = block.table
            return table.take(acc - first)
        f = _block_function(self.spec, self.in_types, block.start, block.stop, block.frac)
        return f(acc.reshape(-1)).reshape(acc.shape)

    def kernel(self, index: int):
        """The aligned kernel (n_terms, C) and bias of weighted step ``index`` in its block's dtype (exact, see above)."""
        cached = self.kernels.get(index)
        if cached is None:
            layer, block = self.spec.layers[index], self.blocks[index]
            in_type = self.in_types[index]
            kernel = self.weights[(layer.kernel.layer, layer.kernel.tensor)].reshape(-1, layer.kernel.shape[-1])
            kernel = kernel << (block.frac - in_type.fractional - layer.kernel.ptype.fractional)
            offset = np.zeros(kernel.shape[-1], dtype=np.int64)
            if layer.bias is not None:
                offset += self.weights[(layer.bias.layer, layer.bias.tensor)] << (block.frac - layer.bias.ptype.fractional)
            cached = self.kernels[index] = (kernel.astype(block.dtype), offset.astype(block.dtype))
        return cached

    def accumulate(self, block: _Block, rows: np.ndarray) -> np.ndarray:
        """Exact accumulator rows (R, P, C) of ``block`` for its input rows (R, *input_shape)."""
        layer = self.spec.layers[block.start]
        if layer.kind == "dense" or np.issubdtype(block.dtype, np.floating):
            kernel, offset = self.kernel(block.start)
            if layer.kind == "dense":
                summed = rows.astype(kernel.dtype, copy=False) @ kernel
                summed += offset
                return summed[:, None, :]
            patches = _patches(layer, rows.astype(kernel.dtype, copy=False))  # im2col in the exact float type
            summed = patches.reshape(-1, patches.shape[-1]) @ kernel
            summed += offset
            return summed.reshape(len(rows), patches.shape[1], -1)
        return _accumulate(layer, self.in_types[block.start], rows, self.weights).acc.astype(block.dtype, copy=False)

    def fault_entry(self, index: int):
        """Per weighted step: its inputs and a row of ones (for the bias) as (n_terms + 1, N, P) and, with bands, the slack ``lo - acc`` and
        ``hi - acc`` as (C, N, P) -- layouts in which one fault's rows are contiguous -- in ``idtype``."""
        cached = self.entry.get(index)
        if cached is None:
            layer, block = self.spec.layers[index], self.blocks[index]
            x = self.outs[index - 1]
            patches = _patches(layer, x)
            n, p, _ = block.acc.shape
            x_t = np.empty((patches.shape[2] + 1, n, p), dtype=block.idtype)
            x_t[:-1] = patches.transpose(2, 0, 1)
            x_t[-1] = 1  # a bias is a weight whose input word is 1 at fraction 0
            slack = None
            if block.lo is not None:
                c = block.acc.shape[2]
                slack = tuple(np.ascontiguousarray((band.reshape(n, p, c) - block.acc).transpose(2, 0, 1))
                              .astype(block.idtype) for band in (block.lo, block.hi))
            cached = self.entry[index] = (x_t, slack)
        return cached


def _fault_deltas(g: _Golden, index: int, faults: Sequence[BitFault]):
    """Per fault: output channel, input row (``n_terms`` for a bias: its input is the constant 1) and
    the accumulator delta per unit input word, ``(new - old) << shift`` (module notes)."""
    layer = g.spec.layers[index]
    block = g.blocks[index]
    channel = np.empty(len(faults), dtype=np.int64)
    row = np.empty(len(faults), dtype=np.int64)
    delta = np.empty(len(faults), dtype=block.idtype)
    bias_name = layer.bias.tensor if layer.bias is not None else None
    is_bias = np.fromiter((f.tensor == bias_name for f in faults), dtype=bool, count=len(faults))
    lbis = np.fromiter((f.lbi for f in faults), dtype=np.int64, count=len(faults))
    n_out = layer.kernel.shape[-1]
    for tensor, mine in (("kernel", ~is_bias), ("bias", is_bias)):
        if not mine.any():
            continue
        tspec = layer.kernel if tensor == "kernel" else layer.bias
        flat, bit = lb_index_to_wb_index(lbis[mine], tspec.width)
        old = g.weights[(tspec.layer, tspec.tensor)].reshape(-1)[flat]
        new = flip_bits(tspec.ptype, old, np.left_shift(np.int64(1), bit))
        in_frac = g.in_types[index].fractional if tensor == "kernel" else 0
        delta[mine] = (new - old) << (block.frac - (tspec.ptype.fractional + in_frac))
        channel[mine] = flat % n_out
        row[mine] = flat // n_out if tensor == "kernel" else layer.n_terms
    return channel, row, delta


def _changed_pairs(g: _Golden, index: int, faults: Sequence[BitFault]):
    """The (fault, sample) pairs whose block output changes, with the changed channel's new output
    words: (positions in ``faults``, samples, channel per pair, words (pairs, P)), sorted by fault."""
    block = g.blocks[index]
    channel, row, delta = _fault_deltas(g, index, faults)
    x_t, slack = g.fault_entry(index)
    n, p, c = block.acc.shape
    moved = delta[:, None, None] * x_t[row]  # (F, N, P) accumulator moves
    if slack is not None:
        changed = (moved < slack[0][channel]) | (moved > slack[1][channel])
    else:
        words = g.words(block, block.acc[:, :, channel].transpose(2, 0, 1).astype(np.int64) + moved)
        changed = words != g.outs[block.stop].reshape(n, p, -1)[:, :, channel].transpose(2, 0, 1)
    if p == 1:
        where = np.flatnonzero(changed)
        fpos = where // n
        samples = where - fpos * n
        chan = channel.take(fpos)
        acc = block.acc.reshape(-1).take(samples * c + chan).astype(np.int64) + moved.reshape(-1).take(where)
        acc = acc[:, None]
    else:
        fpos, samples = np.nonzero(changed.any(axis=2))
        chan = channel[fpos]
        acc = block.acc[samples, :, chan].astype(np.int64) + moved[fpos, samples]  # (pairs, P)
    return fpos, samples, chan, g.words(block, acc)


def _unique_states(samples: np.ndarray, channel: np.ndarray, values: np.ndarray):
    """Group pairs whose faulty state (sample, channel, word) is identical: downstream results are equal.

    Returns (representative pair index per state, state of each pair), or None when the key
    would not fit in int64. Key spaces up to ``_STATE_TABLE`` use a direct table, touched only
    where keys land (O(pairs), no sort); larger ones a sort.
    """
    v_lo = int(values.min())
    spans = [int(samples.max()) + 1, int(channel.max()) + 1, int(values.max()) - v_lo + 1]
    space = float(spans[0]) * spans[1] * spans[2]
    if space >= 2.0**62:
        return None
    key = (samples * spans[1] + channel) * spans[2] + (values - v_lo)
    if space > max(_STATE_TABLE, 8 * len(key)):
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse
    owner = np.empty(int(space), dtype=np.int32 if len(key) < 2**31 else np.int64)  # read only where written
    pairs = np.arange(len(key), dtype=owner.dtype)
    owner[key] = pairs  # any pair of a key represents it: they are the same state
    rep = owner[key]
    is_rep = rep == pairs
    state = np.cumsum(is_rep) - 1
    return np.nonzero(is_rep)[0], state[rep]


def _run_blocks(g: _Golden, block: _Block, acc: np.ndarray, samples: np.ndarray, ids: np.ndarray):
    """Carry accumulator rows of ``block`` to the model output, dropping rows whose block output is golden.

    With bands only the words outside their band are mapped; the others are golden. Returns
    (final rows, their samples, their ids); every returned row differs from golden.
    """
    while len(samples):
        n = len(samples)
        if block.lo is not None:
            flat = acc.reshape(n, -1)
            width = flat.shape[1]
            outside = (flat < block.lo.take(samples, axis=0)) | (flat > block.hi.take(samples, axis=0))
            where = np.flatnonzero(outside)  # changed words of kept rows, row by row
            row = where // width
            new_row = np.ones(len(row), dtype=bool)
            np.not_equal(row[1:], row[:-1], out=new_row[1:])
            kept = row.compress(new_row)
            samples, ids = samples.take(kept), ids.take(kept)
            words = g.words(block, flat.reshape(-1).take(where))
            rows = block.feed.take(samples, axis=0)
            shift = np.cumsum(new_row)  # kept rows so far: the word moves up by the rows dropped before it
            shift -= 1
            shift -= row
            shift *= width
            shift += where
            rows.reshape(-1)[shift] = words
            rows = rows.reshape(len(samples), *g.outs[block.stop].shape[1:])
        else:
            rows = g.apply(block, acc)
            keep = (rows != g.outs[block.stop][samples]).reshape(n, -1).any(axis=1)
            rows, samples, ids = rows[keep], samples[keep], ids[keep]
        rows, samples, ids = g.carry(block, rows, samples, ids)
        nxt = g.next_block(block)
        if nxt is None:
            return rows, samples, ids
        acc, block = g.accumulate(nxt, rows), nxt
    return np.empty((0, *g.final.shape[1:]), dtype=g.final.dtype), samples, ids


def _flat_update(g: _Golden, block: _Block, nxt: _Block) -> bool:
    """True when dense ``nxt`` reads conv ``block``'s output flattened (no step between but the flatten) and the move
    of one channel's P positions (at most 2P products) is exact in ``nxt``'s dtype (always in int64)."""
    golden = g.outs[block.stop]
    n, p, c = block.acc.shape
    nxt_layer = g.spec.layers[nxt.start]
    if block.end != block.stop or p == 1 or nxt_layer.kind != "dense" or golden.shape != (n, p * c):
        return False
    if not np.issubdtype(nxt.dtype, np.floating):
        return True
    bound = sum_magnitude(nxt_layer, g.in_types[nxt.start], nxt.frac, n_terms=2 * p)
    return _exact_in(nxt.dtype, bound)


def _flat_moves(g: _Golden, block: _Block, nxt: _Block, channel: np.ndarray, samples: np.ndarray,
                words: np.ndarray) -> np.ndarray:
    """Accumulator rows (R, 1, C') of dense ``nxt`` when only channel ``channel[r]`` of the flattened (P, C) conv
    output moved to ``words[r]`` (P words): golden + the change @ the kernel rows p*C + channel, channel by channel."""
    kernel, _ = g.kernel(nxt.start)
    _, p, c = block.acc.shape
    acc = nxt.acc.take(samples, axis=0)
    for ch in np.unique(channel):
        mine = np.flatnonzero(channel == ch)
        rows = np.arange(p) * c + ch  # flat index of (position, channel) in C-order
        moved = words[mine].astype(nxt.dtype) - block.feed[samples[mine][:, None], rows]
        acc[mine, 0] += moved @ kernel[rows]
    return acc


def _channel_update(g: _Golden, block: _Block, nxt: _Block) -> bool:
    """True when ``nxt`` is a conv of the same kind fed directly by conv ``block``, its sums exact in its float dtype
    and a one-channel move (at most twice kh*kw products) exact too."""
    layer, nxt_layer = g.spec.layers[block.start], g.spec.layers[nxt.start]
    if layer.kind not in ("conv1d", "conv2d") or nxt_layer.kind != layer.kind:
        return False
    if not np.issubdtype(nxt.dtype, np.floating):
        return False
    taps = int(np.prod(nxt_layer.kernel.shape[:-2]))
    bound = sum_magnitude(nxt_layer, g.in_types[nxt.start], nxt.frac, n_terms=2 * taps)
    return _exact_in(nxt.dtype, bound)


def _channel_moves(g: _Golden, block: _Block, nxt: _Block, channel: np.ndarray, samples: np.ndarray,
                   words: np.ndarray) -> np.ndarray:
    """Accumulator rows (R, P', C') of conv ``nxt`` when only input channel ``channel[r]`` moved to ``words[r]``:
    golden + im2col of the one-channel change @ the kernel rows of that channel, channel by channel."""
    nxt_layer = g.spec.layers[nxt.start]
    kernel, _ = g.kernel(nxt.start)
    cin = nxt_layer.kernel.shape[-2]
    golden = g.outs[block.stop]
    spatial = golden.shape[1:-1]
    acc = nxt.acc.take(samples, axis=0)
    for c in np.unique(channel):
        mine = np.flatnonzero(channel == c)
        moved = words[mine].astype(nxt.dtype) - golden[samples[mine], ..., c].reshape(len(mine), -1)
        patches = _patches(nxt_layer, moved.reshape(len(mine), *spatial, 1))  # (r, P', taps)
        acc[mine] += (patches.reshape(-1, patches.shape[-1]) @ kernel[c::cin]).reshape(len(mine), acc.shape[1], -1)
    return acc


def _downstream(g: _Golden, block: _Block, channel: np.ndarray, samples: np.ndarray, words: np.ndarray):
    """Final rows of faulty states (sample, channel, new block output words (R, P)) that differ from
    golden; returns (rows, kept indices)."""
    ids = np.arange(len(samples))
    golden = g.outs[block.stop]
    n, p, c = block.acc.shape
    nxt = g.next_block(block)
    rank1 = block.end == block.stop and p == 1 and golden.ndim == 2
    if nxt is not None and rank1 and g.spec.layers[nxt.start].kind == "dense":
        # Rank-1 update: only input column `channel` of the next dense changed (module notes).
        kernel, _ = g.kernel(nxt.start)
        diff = words[:, 0].astype(nxt.dtype) - block.feed[samples, channel]
        acc = nxt.acc.take(samples, axis=0)
        acc += diff[:, None, None] * kernel[channel][:, None, :]
        rows, _, ids = _run_blocks(g, nxt, acc, samples, ids)
        return rows, ids
    if nxt is not None and not rank1 and _flat_update(g, block, nxt):
        # One channel of a conv's flattened output changed: the next dense accumulator moves by that channel's
        # changes times the kernel rows of its flat positions (module notes).
        rows, _, ids = _run_blocks(g, nxt, _flat_moves(g, block, nxt, channel, samples, words), samples, ids)
        return rows, ids
    if nxt is not None and block.end == block.stop and _channel_update(g, block, nxt):
        # One channel of a conv's output changed: the next conv's accumulator moves by that channel's change
        # convolved with the kernel's taps of that input channel (module notes).
        rows, _, ids = _run_blocks(g, nxt, _channel_moves(g, block, nxt, channel, samples, words), samples, ids)
        return rows, ids
    rows = golden[samples].reshape(len(samples), p, c).copy()
    rows[ids, :, channel] = words
    rows = rows.reshape(len(samples), *golden.shape[1:])
    rows, samples, ids = g.carry(block, rows, samples, ids)
    if nxt is None:
        return rows, ids
    if not len(samples):  # every row became golden again: nothing to accumulate (numpy cannot reshape 0 rows by -1)
        return np.empty((0, *g.final.shape[1:]), dtype=g.final.dtype), ids
    rows, _, ids = _run_blocks(g, nxt, g.accumulate(nxt, rows), samples, ids)
    return rows, ids


@dataclass(frozen=True)
class _Effects:
    """Faulty (fault, sample) pairs of one chunk and the distinct final rows they map to.

    Pair ``k`` is fault ``faults[k]`` on sample ``samples[k]``; its output is ``rows[row[k]]``,
    or golden when ``row[k] == -1``. Pairs with equal downstream state share one row. Pairs are
    sorted by fault.
    """

    faults: np.ndarray
    samples: np.ndarray
    row: np.ndarray
    rows: np.ndarray  # (R, *out) final words, each different from golden
    row_samples: np.ndarray  # (R,) the sample each row belongs to


def _effects_of_group(g: _Golden, index: int, faults: Sequence[BitFault], max_rows: int):
    """The effects (positions in ``faults``) of single-bit faults of one weighted layer on the outputs."""
    block = g.blocks[index]
    fpos, samples, chan, words = _changed_pairs(g, index, faults)
    dedup = words.shape[1] == 1 and len(fpos) and g.next_block(block) is not None
    states = _unique_states(samples, chan, words[:, 0]) if dedup else None
    if states is None:
        first, inverse = np.arange(len(fpos)), np.arange(len(fpos))
    else:
        first, inverse = states
    slot = np.full(len(first), -1)
    blocks, done = [], 0
    for lo in range(0, len(first), max_rows):
        rep = first[lo:lo + max_rows]
        rows, kept = _downstream(g, block, chan[rep], samples[rep], words[rep])
        slot[lo + kept] = done + np.arange(len(kept))
        blocks.append((rows, samples[rep[kept]]))
        done += len(kept)
    out_shape = g.final.shape[1:]
    rows = np.concatenate([b[0] for b in blocks]) if blocks else np.empty((0, *out_shape), dtype=g.final.dtype)
    row_samples = np.concatenate([b[1] for b in blocks]) if blocks else np.empty(0, dtype=np.int64)
    return _Effects(fpos, samples, slot[inverse], rows, row_samples)


def _generic_effects(g: _Golden, index: int, faults: Sequence[BitFault], max_rows: int = 1 << 14) -> _Effects:
    """Effects of single-bit faults in any tensor of step ``index``, for any graph: exact
    (``fkhls.emulate.graph_engine``: batched entry from golden accumulators, changed rows only downstream).

    Used where the fast path's block algebra does not apply (graphs, steps other than dense/conv kernels).
    """
    if g.graph is None:
        g.graph = graph_engine.GraphGolden(g.spec, g.weights, g.outs, g.in_types, g.step)
    fpos, samples, rows = graph_engine.single_bit_effects(g.graph, index, faults, max_rows)
    rows = rows.astype(g.final.dtype, copy=False)
    return _Effects(fpos, samples, np.arange(len(fpos)), rows, samples)


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
                  chunk_elements: int = 1 << 22, max_rows: int = 1 << 14) -> Iterator:
    """Yield the golden run, then one ``_Effects`` per chunk of faults, chunked to bound memory.

    A layer's faults (kernel and bias) are taken in order of output channel, so a chunk holds
    every fault of most of its channels and equal faulty states are propagated once.
    """
    groups = _check_faults(spec, faults)
    g = _Golden.run(spec, weights, x_raw)
    yield g
    owners = spec.owners()
    layers: dict[int, list[int]] = {}
    for key, members in groups.items():
        layers.setdefault(owners[key], []).extend(members)
    n = g.outs[0].shape[0]
    for index, members in layers.items():
        layer = spec.layers[index]
        members = np.asarray(members)
        if index not in g.blocks:
            step = max(1, chunk_elements // max(n * int(np.prod(layer.output_shape)), 1))
            for lo in range(0, len(members), step):
                chunk = members[lo:lo + step]
                yield chunk, _generic_effects(g, index, [faults[i] for i in chunk], max_rows)
            continue
        channel = np.array([faults[i].flat_index for i in members]) % layer.kernel.shape[-1]
        members = members[np.argsort(channel, kind="stable")]
        step = max(1, chunk_elements // max(n * g.blocks[index].acc.shape[1], 1))
        for lo in range(0, len(members), step):
            chunk = members[lo:lo + step]
            yield chunk, _effects_of_group(g, index, [faults[i] for i in chunk], max_rows)


def evaluate_single_bit_faults(spec: ModelSpec, weights: Weights, x_raw, faults: Sequence[BitFault]) -> np.ndarray:
    """Output words (F, N, *out) of the model with each fault applied alone, exactly as ``forward_raw``.

    Golden accumulators are computed once; a fault moves one accumulator channel of its layer by
    an exact integer, and only (fault, sample) pairs whose block output changed are carried
    downstream, each distinct faulty state once. Memory is F*N*outputs words: use
    ``summarize_single_bit_faults`` for large campaigns.
    """
    effects = _iter_effects(spec, weights, x_raw, faults)
    g = next(effects)
    out = np.broadcast_to(g.final, (len(faults), *g.final.shape)).copy()
    for chunk, e in effects:
        hit = e.row >= 0
        out[chunk[e.faults[hit]], e.samples[hit]] = e.rows[e.row[hit]]
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
    wanted = np.zeros(n_faults, dtype=bool)
    wanted[list(keep)] = True
    for chunk, e in effects:
        flat = e.rows.reshape(len(e.rows), golden.shape[1])
        diff = np.abs(flat - golden[e.row_samples])
        hit = e.row >= 0
        f, r = e.faults[hit], e.row[hit]  # f: positions in the chunk, sorted
        size = len(chunk)
        samples_changed[chunk] += np.bincount(f, minlength=size)
        outputs_changed[chunk] += np.bincount(f, weights=(diff != 0).sum(axis=1)[r], minlength=size).astype(np.int64)
        if len(f):
            starts = np.flatnonzero(np.concatenate(([True], f[1:] != f[:-1])))
            worst = np.maximum.reduceat(diff.max(axis=1, initial=0)[r], starts)
            max_err[chunk[f[starts]]] = np.maximum(max_err[chunk[f[starts]]], worst)
        moved = flat.argmax(axis=1) != golden_arg[e.row_samples] if len(flat) else np.zeros(0, bool)
        arg_changed[chunk] += np.bincount(f, weights=moved[r], minlength=size).astype(np.int64)
        if keep:
            mine = np.nonzero(wanted[chunk[f]])[0]
            for k, s, row in zip(chunk[f[mine]].tolist(), e.samples[hit][mine], r[mine]):
                keep[k][s] = e.rows[row]
    return FaultSummary(tuple(faults), g.final, samples_changed, outputs_changed, max_err, arg_changed, keep)
