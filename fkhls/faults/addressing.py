"""Address map: FKeras bit index <-> Keras index <-> hls4ml array element/bit <-> weight-memory word/bit.

Driven only by the project manifest (``fkhls.json``) and the HLS headers inside the project, so
it needs no TensorFlow. Four coordinates of one weight bit (one name each, as in the README):

* FKeras: ``(layer, tensor, lbi)``; ``lbi // W`` is the C-order ``flat_index`` of the Keras
  tensor, ``W-1 - lbi % W`` the ``bit`` counted from the LSB (``fkhls.faults.descriptors.lb_index_to_wb_index``).
* Keras: ``keras_index``, the flat index unravelled in the Keras shape.
* hls4ml: ``array`` (``w2``/``b2``), ``element`` = position in ``keras.transpose(axes).ravel()``
  (identity under Latency; Resource transposes Dense to (out, in), Conv to (cout, ...)),
  ``array_bit`` of the ap_(u)fixed word.
* Memory: what the directives hls4ml emits imply (see ``MemoryLayout``). Latency strategy has
  no addressable weight memory (weights are constants folded into logic): the map says so and
  gives no address rather than inventing one.

When the FKeras word and the hardware word differ (another width or binary point), bits are
paired by weight (same power of two, sign bit only with sign bit); a bit without a partner gets
``None`` and a note, never a shifted neighbour. Projects made by ``fkhls export`` always have
identical words (export refuses anything else), so this only matters for ``fkeras_types``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from fkhls.core.errors import AddressError, FaultSpecError
from fkhls.core.fixedpoint import FixedPrecisionType, cpp_type, flip_bits, from_raw
from fkhls.faults.descriptors import lb_index_to_wb_index, wb_index_to_lb_index
from fkhls.project.manifest import ArrayRecord, LayerRecord, Manifest
from fkhls.project.program import function_body

__all__ = [
    "HardwareBit",
    "MemoryLayout",
    "AddressMap",
    "address_map",
    "map_lbi",
    "map_faults",
    "from_array_bit",
    "from_memory_bit",
    "element_of",
    "flat_index_of",
    "bit_counterparts",
    "memory_layout",
    "spec_from_manifest",
    "NO_MEMORY_NOTE",
]

NO_MEMORY_NOTE = (
    "no addressable weight memory: Latency strategy, weights are constants folded into logic"
)


@dataclass(frozen=True)
class HardwareBit:
    """One weight bit in every coordinate system; ``None`` where a coordinate does not exist."""

    layer: str
    tensor: str
    lbi: int | None  # None only for a hardware bit without an FKeras counterpart
    keras_index: tuple[int, ...]
    flat_index: int
    bit: int | None
    array: str
    element: int
    array_bit: int | None  # None only for an FKeras bit without a hardware counterpart
    memory: str | None  # "BRAM" | "registers" | "ROM" (Resource); None under Latency
    memory_word: int | None
    memory_bit: int | None
    note: str = ""


# ----------------------------------------------------------------------------- element order


def _order(record: ArrayRecord) -> np.ndarray:
    """flat_index (Keras C-order) of every array element: ``keras.transpose(axes).ravel()``."""
    return np.arange(record.size, dtype=np.int64).reshape(record.keras_shape).transpose(record.axes).ravel()


def _check_range(value, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AddressError(f"{what} {value!r} is not an integer (valid range 0..{size - 1})")
    if not 0 <= value < size:
        raise AddressError(f"{what} {value} is outside the valid range 0..{size - 1}")
    return int(value)


def element_of(record: ArrayRecord, flat_index: int) -> int:
    """Element of hls4ml array ``record`` holding the Keras weight at C-order ``flat_index``."""
    flat_index = _check_range(flat_index, record.size, f"flat_index of {record.array}")
    keras_index = np.unravel_index(flat_index, record.keras_shape)
    return int(np.ravel_multi_index(tuple(keras_index[a] for a in record.axes), record.hls_shape))


def flat_index_of(record: ArrayRecord, element: int) -> int:
    """Inverse of ``element_of``: the Keras C-order flat index of an array element."""
    element = _check_range(element, record.size, f"element of {record.array}")
    hls_index = np.unravel_index(element, record.hls_shape)
    keras_index = [0] * len(record.keras_shape)
    for position, axis in enumerate(record.axes):
        keras_index[axis] = int(hls_index[position])
    return int(np.ravel_multi_index(tuple(keras_index), record.keras_shape))


# ----------------------------------------------------------------------------- bit pairing


def bit_counterparts(src: FixedPrecisionType, dst: FixedPrecisionType) -> np.ndarray:
    """For each bit of ``src`` (from the LSB), the bit of ``dst`` with the same weight, or -1.

    A bit's weight is 2**(bit - fractional); the sign bit of a signed word weighs
    -2**(W-1-fractional), so it pairs only with the sign bit of the other word.
    """
    out = np.full(src.width, -1, dtype=np.int64)
    for bit in range(src.width):
        target = bit - src.fractional + dst.fractional
        src_sign = bool(src.signed) and bit == src.width - 1
        if 0 <= target < dst.width and (bool(dst.signed) and target == dst.width - 1) == src_sign:
            out[bit] = target
    return out


# ----------------------------------------------------------------------------- memory layout


@dataclass(frozen=True)
class MemoryLayout:
    """Where an array's elements sit in the weight memory the HLS directives describe.

    Element ``e`` is at word ``e % depth``, lane ``e // depth``; lane ``j`` occupies bits
    ``[j*W, (j+1)*W)`` of the ``lanes*W``-bit word (lower lane = lower bits). ``kind`` is None
    when there is no addressable memory (``note`` says why).
    """

    array: str
    kind: str | None  # "BRAM" | "registers" | "ROM" | None
    depth: int  # words
    lanes: int  # elements per word
    element_width: int
    size: int
    source: str  # header and function the directive was read from
    directive: str
    note: str = ""

    @property
    def word_width(self) -> int:
        return self.lanes * self.element_width

    def word_lane(self, element):
        element = np.asarray(element, dtype=np.int64)
        return element % self.depth, element // self.depth


_RESHAPE_RE = re.compile(r"#pragma\s+HLS\s+ARRAY_RESHAPE\s+variable=weights\s+block\s+factor=(\w+)", re.I)
_BRAM_RE = re.compile(r"#pragma\s+HLS\s+RESOURCE\s+variable=weights\s+core=(\w+)", re.I)
_BIAS_RE = re.compile(r"#pragma\s+HLS\s+ARRAY_PARTITION\s+variable=biases\s+complete", re.I)


def _resource_kernel_source(manifest: Manifest, layer: LayerRecord) -> tuple[str, str]:
    """(header, function) whose directives shape the kernel of a Resource layer.

    Dense (both io types) and io_stream convolutions call ``dense_resource`` (the stream conv's
    mult_config kernel is DenseResource_*), which dispatches on the reuse factor exactly like
    this; io_parallel convolutions call ``conv_{1,2}d_resource_cl`` directly.
    """
    if layer.kind.startswith("depthwise"):
        # io_stream (io_parallel has no Resource depthwise kernel): the mult_config kernel is
        # DepthwiseDenseResource_*, chosen by R against n_out = n_filt (vivado convolution_templates.py)
        rf, n_filt = int(layer.reuse_factor), _depthwise_filters(layer)
        if rf <= n_filt:
            return "nnet_depthwise_product.h", "depthwise_product_resource_rf_leq_nout"
        if rf % n_filt == 0:
            return "nnet_depthwise_product.h", "depthwise_product_resource_rf_gt_nout_rem0"
        return "nnet_depthwise_product.h", "depthwise_product_resource_gt_nout"
    if layer.kind in ("conv1d", "conv2d", "pointwise1d", "pointwise2d") and manifest.io_type == "io_parallel":
        # pointwise_conv_{1,2}d_cl calls the convolution's Resource kernel (nnet_conv{1,2}d.h)
        dim = layer.kind[-2:]
        return f"nnet_conv{dim}_resource.h", f"conv_{dim}_resource_cl"
    rf, n_in = int(layer.reuse_factor), int(layer.n_in)
    if rf <= n_in:
        function = "dense_resource_rf_leq_nin"
    elif rf % n_in == 0:
        function = "dense_resource_rf_gt_nin_rem0"
    else:
        function = "dense_resource_rf_gt_nin"
    return "nnet_dense_resource.h", function


def _depthwise_filters(layer: LayerRecord) -> int:
    """n_filt = channels x depth multiplier: the depthwise kernel's Keras shape ends (..., n_chan, multiplier)."""
    shape = layer.kernel.keras_shape
    return int(shape[-2]) * int(shape[-1])


# Steps whose arrays hls4ml passes to nnet::normalize (batch normalization, ApplyAlpha): kind -> header per io type.
_NORMALIZE_HEADERS = {"io_parallel": "nnet_batchnorm.h", "io_stream": "nnet_batchnorm_stream.h"}
_NORMALIZE_KINDS = ("batchnorm", "apply_alpha")
_PARTITION_RE = r"#pragma\s+HLS\s+ARRAY_PARTITION\s+variable={name}\s+complete"
_INSTANTIATE_RE = re.compile(r"#pragma\s+HLS\s+function_instantiate\s+variable=([\w,]+)", re.I)


def _normalize_layout(manifest: Manifest, layer: LayerRecord, record: ArrayRecord, base: dict) -> MemoryLayout:
    """A scale or bias array of nnet::normalize, from its directives (the same under either strategy).

    io_parallel partitions both arrays completely and instantiates the function per call: constants folded into
    logic, nothing to address. io_stream only partitions them: one register per element (word = element).
    """
    header = _NORMALIZE_HEADERS.get(manifest.io_type, "nnet_batchnorm.h")
    slot = "bias" if record.array == getattr(layer.bias, "array", None) else "scale"
    path = Path(manifest.project_dir) / "firmware" / "nnet_utils" / header
    body = (function_body(path.read_text(), "normalize") if path.is_file() else None) or ""
    source = f"{header}:normalize"
    partition = re.search(_PARTITION_RE.format(name=slot), body, re.I)
    instantiated = _INSTANTIATE_RE.search(body)
    if not partition:
        return MemoryLayout(kind=None, depth=0, lanes=0, source=source, directive="",
                            note=f"no partition directive for {slot} in {source}: no address given", **base)
    directive = f"ARRAY_PARTITION variable={slot} complete"
    if instantiated and slot in instantiated.group(1).split(","):
        return MemoryLayout(kind=None, depth=0, lanes=0, source=source,
                            directive=f"{directive}; function_instantiate variable={instantiated.group(1)}",
                            note=f"{slot} completely partitioned and the function instantiated per call: constants "
                                 "folded into logic, no addressable weight memory", **base)
    return MemoryLayout(kind="registers", depth=record.size, lanes=1, source=source, directive=directive,
                        note=f"{slot} completely partitioned: one register per element (word = element)", **base)


def memory_layout(manifest: Manifest, layer: LayerRecord, record: ArrayRecord) -> MemoryLayout:
    """The weight memory an array becomes, read from the directives in the project's nnet_utils headers."""
    width = int(record.type["width"])
    base = dict(array=record.array, element_width=width, size=record.size)
    if layer.kind in _NORMALIZE_KINDS:
        return _normalize_layout(manifest, layer, record, base)
    if layer.strategy != "Resource":
        return MemoryLayout(kind=None, depth=0, lanes=0, source=f"{layer.strategy} strategy", directive="",
                            note=NO_MEMORY_NOTE, **base)
    if "po2_exponent_bits" in record.type:
        # hls4ml's exponent struct {ap_uint<1> sign; ap_int<b> weight;}: the project's sources do not say in which
        # order HLS packs the two fields into a reshaped memory word, so no memory bit rather than a guessed one.
        return MemoryLayout(kind=None, depth=0, lanes=0, source="hls4ml exponent struct", directive="",
                            note="a po2 weight is a struct {sign; weight;}: how HLS packs its fields into a memory "
                                 "word is not in the project's sources, so no memory address is given (the array "
                                 "element and bit are)", **base)
    if layer.kind.startswith("depthwise") and manifest.io_type == "io_parallel":
        dim = layer.kind[-2:]
        return MemoryLayout(kind=None, depth=0, lanes=0, source=f"nnet_sepconv{dim}.h:depthwise_conv_{dim}_cl",
                            directive="", note=f"hls4ml 1.3.0 has no Resource kernel for {layer.hls_class} in "
                            f"io_parallel (depthwise_conv_{dim}_cl asserts 'Resource strategy for {layer.hls_class} "
                            "is not supported'; fkhls export refuses it): no weight memory to address", **base)
    header, function = _resource_kernel_source(manifest, layer)
    path = Path(manifest.project_dir) / "firmware" / "nnet_utils" / header
    body = (function_body(path.read_text(), function) if path.is_file() else None) or ""
    source = f"{header}:{function}"
    if not body:
        return MemoryLayout(kind=None, depth=0, lanes=0, source=source, directive="",
                            note=f"{source} not found in the project: no weight-memory directive to read", **base)
    if record.array == getattr(layer.bias, "array", None):  # the addend slot: hls4ml's biases
        if _BIAS_RE.search(body):
            return MemoryLayout(kind="registers", depth=record.size, lanes=1, source=source,
                                directive="ARRAY_PARTITION variable=biases complete",
                                note="biases completely partitioned: one register per element (word = element)",
                                **base)
        return MemoryLayout(kind=None, depth=0, lanes=0, source=source, directive="",
                            note=f"no bias directive in {source}: no address given", **base)
    rf, size = int(layer.reuse_factor), record.size
    if layer.kind.startswith("depthwise"):  # depthwise_product_resource_*: rufactor = MIN(reuse_factor, n_in)
        rf = min(rf, size)
    reshape, bram = _RESHAPE_RE.search(body), _BRAM_RE.search(body)
    block_factor = math.ceil(size / rf)
    if reshape:
        # Xilinx block reshape with factor N: N blocks of ceil(L/N) consecutive elements, side by
        # side in one word. With hls4ml's N = ceil(L/R) the depth is R whenever R divides L (the
        # only case hls4ml emits: FPGABackend._validate_reuse_factor requires L % R == 0).
        depth = math.ceil(size / block_factor)
        directive = f"ARRAY_RESHAPE variable=weights block factor={block_factor} (ceil({size}/{rf}))"
        note = ""
        if size % rf:
            note = (f"R={rf} does not divide {size}: assumed block reshape into {block_factor} lanes of "
                    f"ceil({size}/{block_factor})={depth} consecutive elements; last lane padded")
    elif "weights_2d" in body:
        # Vitis conv_*_resource_cl: no ARRAY_RESHAPE ("Vitis figures this out on its own"); the
        # kernel reads weights_2d[i_blk][i_rf] = weights[i_blk*R + i_rf] in reuse cycle i_rf.
        depth = rf
        directive = f"none (Vitis infers from weights_2d[{block_factor}][{rf}], read column i_rf per cycle)"
        note = "layout inferred from the access pattern, not from a directive"
    else:
        return MemoryLayout(kind=None, depth=0, lanes=0, source=source, directive="",
                            note=f"no ARRAY_RESHAPE of the weights in {source}: no address given", **base)
    lanes = math.ceil(size / depth)
    if rf == 1:
        kind = "registers"
        note = (note + "; " if note else "") + "R=1: a single word holding every element, no BRAM directive"
    elif bram and "reuse_factor > 1" in body:
        kind = "BRAM"
        directive += f"; RESOURCE core={bram.group(1)} (reuse_factor > 1)"
    else:
        kind = "ROM"
        note = (note + "; " if note else "") + "no storage directive: HLS chooses BRAM, LUTRAM or registers"
    return MemoryLayout(kind=kind, depth=depth, lanes=lanes, source=source, directive=directive, note=note, **base)


# ----------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class _Tensor:
    layer: LayerRecord
    record: ArrayRecord
    hw: FixedPrecisionType
    fk: FixedPrecisionType
    layout: MemoryLayout
    flat_of_element: np.ndarray = field(repr=False)
    element_of_flat: np.ndarray = field(repr=False)
    hw_of_fk: np.ndarray = field(repr=False)  # per FKeras bit: hardware bit or -1
    fk_of_hw: np.ndarray = field(repr=False)

    @property
    def n_bits(self) -> int:
        return self.record.size * self.fk.width


class AddressMap:
    """Every weight array of a project, indexed both ways. Build once, query many times."""

    def __init__(self, manifest: Manifest, fkeras_types: Mapping[tuple[str, str], FixedPrecisionType] | None = None):
        require_fault_targets(manifest)
        self.manifest = manifest
        self._tensors: dict[tuple[str, str], _Tensor] = {}
        self._arrays: dict[str, _Tensor] = {}
        self._words: dict[str, np.ndarray] = {}
        fkeras_types = dict(fkeras_types or {})
        for layer in manifest.weighted_layers:
            for record in layer.arrays():
                hw = record.ptype
                fk = fkeras_types.pop((record.owner_of(layer), record.tensor), hw)
                flat_of_element = _order(record)
                element_of_flat = np.empty_like(flat_of_element)
                element_of_flat[flat_of_element] = np.arange(record.size, dtype=np.int64)
                entry = _Tensor(layer, record, hw, fk, memory_layout(manifest, layer, record), flat_of_element,
                                element_of_flat, bit_counterparts(fk, hw), bit_counterparts(hw, fk))
                # Keyed as fault descriptors name a tensor: the Keras layer that owns it (a separable conv's
                # depthwise and pointwise steps both belong to its Keras layer) and the array's tensor name.
                self._tensors[(record.owner_of(layer), record.tensor)] = entry
                self._arrays[record.array] = entry
        if fkeras_types:
            raise AddressError(f"fkeras_types names tensors not in the project: {sorted(fkeras_types)}")

    # -- lookups

    def tensors(self) -> list[tuple[str, str]]:
        return list(self._tensors)

    def layout(self, layer: str, tensor: str = "kernel") -> MemoryLayout:
        """The memory layout of one tensor (``kernel``, ``bias``, a batch norm's ``scale`` ...)."""
        return self._tensor(layer, tensor).layout

    def types(self, layer: str, tensor: str) -> tuple[FixedPrecisionType, FixedPrecisionType]:
        """(FKeras word type, hardware word type) of a tensor."""
        entry = self._tensor(layer, tensor)
        return entry.fk, entry.hw

    def _tensor(self, layer: str, tensor: str) -> _Tensor:
        entry = self._tensors.get((layer, tensor))
        if entry is None:
            valid = [f"{name}.{t}" for name, t in self._tensors]
            raise AddressError(f"no weight tensor {layer!r}.{tensor!r} in the project; valid: {valid}")
        return entry

    def _array(self, array: str) -> _Tensor:
        entry = self._arrays.get(array)
        if entry is None:
            raise AddressError(f"unknown array {array!r}; arrays of the project: {list(self._arrays)}")
        return entry

    def _layer_kernel(self, layer: str, tensor: str) -> _Tensor:
        if (layer, tensor) in self._tensors:
            return self._tensors[(layer, tensor)]
        for entry in self._tensors.values():  # accept the hls4ml layer name too
            if entry.layer.hls_name == layer and entry.record.tensor == tensor:
                return entry
        mine = [t for (name, t), entry in self._tensors.items() if layer in (name, entry.layer.hls_name)]
        if mine:
            raise AddressError(f"no {tensor!r} memory of layer {layer!r}; its tensors: {mine}")
        raise AddressError(
            f"no {tensor} memory of layer {layer!r}; weighted layers: {list(dict.fromkeys(k[0] for k in self._tensors))}"
        )

    # -- forward: (layer, tensor, lbi) -> everything

    def map_lbis(self, layer: str, tensor: str, lbis) -> list[HardwareBit]:
        """Map many LBIs of one tensor at once (vectorized)."""
        entry = self._tensor(layer, tensor)
        lbis = np.asarray(lbis, dtype=np.int64).ravel()
        bad = (lbis < 0) | (lbis >= entry.n_bits)
        if bad.any():
            raise AddressError(
                f"lbi {int(lbis[bad][0])} of {layer}.{tensor} is outside the valid range 0..{entry.n_bits - 1} "
                f"({entry.record.size} weights x {entry.fk.width} bits)"
            )
        width = entry.fk.width
        flat, bit = lb_index_to_wb_index(lbis, width)
        element = entry.element_of_flat[flat]
        array_bit = entry.hw_of_fk[bit]
        keras = np.stack(np.unravel_index(flat, entry.record.keras_shape), axis=-1)
        layout = entry.layout
        if layout.kind is not None:
            word, lane = layout.word_lane(element)
            memory_bit = np.where(array_bit >= 0, lane * layout.element_width + array_bit, -1)
        else:
            word = memory_bit = np.full(lbis.shape, -1, dtype=np.int64)
        return [
            HardwareBit(
                layer=entry.record.owner_of(entry.layer), tensor=entry.record.tensor, lbi=int(lbis[i]),
                keras_index=tuple(int(v) for v in keras[i]), flat_index=int(flat[i]), bit=int(bit[i]),
                array=entry.record.array, element=int(element[i]),
                array_bit=int(array_bit[i]) if array_bit[i] >= 0 else None,
                memory=layout.kind,
                memory_word=int(word[i]) if layout.kind is not None else None,
                memory_bit=int(memory_bit[i]) if memory_bit[i] >= 0 else None,
                note=self._note(entry, int(bit[i]), int(array_bit[i])),
            )
            for i in range(lbis.size)
        ]

    def _note(self, entry: _Tensor, fk_bit: int | None, hw_bit: int | None) -> str:
        notes = []
        if fk_bit is None or fk_bit < 0:
            notes.append(f"hardware bit {hw_bit} of {cpp_type(entry.hw)} has no counterpart in the FKeras word "
                         f"{cpp_type(entry.fk)}")
        elif hw_bit is None or hw_bit < 0:
            notes.append(f"FKeras bit {fk_bit} of {cpp_type(entry.fk)} (weight 2^{fk_bit - entry.fk.fractional}) "
                         f"has no counterpart in the hardware word {cpp_type(entry.hw)}")
        if entry.layout.note:
            notes.append(entry.layout.note)
        return "; ".join(notes)

    def map_lbi(self, layer: str, tensor: str, lbi: int) -> HardwareBit:
        entry = self._tensor(layer, tensor)
        _check_range(lbi, entry.n_bits, f"lbi of {layer}.{tensor} ({entry.record.size} weights x {entry.fk.width} bits)")
        return self.map_lbis(layer, tensor, [lbi])[0]

    def element_bits(self, layer: str, tensor: str, lbis) -> tuple[str, np.ndarray, np.ndarray]:
        """(array, element, array_bit) of many LBIs as arrays (-1: no hardware bit): ``map_lbis`` without
        building an object per bit, for tables of millions of faults."""
        entry = self._tensor(layer, tensor)
        lbis = np.asarray(lbis, dtype=np.int64).ravel()
        if lbis.size and (lbis.min() < 0 or lbis.max() >= entry.n_bits):
            raise AddressError(f"an lbi of {layer}.{tensor} is outside the valid range 0..{entry.n_bits - 1}")
        flat, bit = lb_index_to_wb_index(lbis, entry.fk.width)
        return entry.record.array, entry.element_of_flat[flat].astype(np.int64), entry.hw_of_fk[bit].astype(np.int64)

    def map_faults(self, faults: Iterable) -> list[HardwareBit]:
        """Map items with ``.layer .tensor .lbi`` (``fkhls.faults.descriptors.BitFault``), keeping their order."""
        faults = list(faults)
        groups: dict[tuple[str, str], list[int]] = {}
        for position, fault in enumerate(faults):
            groups.setdefault((fault.layer, fault.tensor), []).append(position)
        out: list[HardwareBit | None] = [None] * len(faults)
        for (layer, tensor), positions in groups.items():
            mapped = self.map_lbis(layer, tensor, [faults[p].lbi for p in positions])
            for position, bit in zip(positions, mapped):
                out[position] = bit
        return out  # type: ignore[return-value]

    # -- inverse

    def from_array_bit(self, array: str, element: int, bit: int) -> HardwareBit:
        entry = self._array(array)
        element = _check_range(element, entry.record.size, f"element of {array} ({entry.record.size} elements)")
        bit = _check_range(bit, entry.hw.width, f"bit of {array} ({cpp_type(entry.hw)})")
        flat = int(entry.flat_of_element[element])
        fk_bit = int(entry.fk_of_hw[bit])
        if fk_bit < 0:
            layout = entry.layout
            word, lane = layout.word_lane(element) if layout.kind else (None, None)
            return HardwareBit(
                layer=entry.record.owner_of(entry.layer), tensor=entry.record.tensor, lbi=None,
                keras_index=tuple(int(v) for v in np.unravel_index(flat, entry.record.keras_shape)),
                flat_index=flat, bit=None, array=array, element=element, array_bit=bit, memory=layout.kind,
                memory_word=int(word) if word is not None else None,
                memory_bit=int(lane) * layout.element_width + bit if lane is not None else None,
                note=self._note(entry, None, bit),
            )
        lbi = wb_index_to_lb_index(flat, fk_bit, entry.fk.width)
        return self.map_lbis(entry.record.owner_of(entry.layer), entry.record.tensor, [lbi])[0]

    def from_memory_bit(self, layer: str, memory_word: int, memory_bit: int, tensor: str = "kernel") -> HardwareBit:
        entry = self._layer_kernel(layer, tensor)
        layout = entry.layout
        if layout.kind is None:
            raise AddressError(f"layer {entry.layer.name!r} {tensor}: {layout.note} (source: {layout.source})")
        word = _check_range(memory_word, layout.depth,
                            f"memory word of {entry.layer.name} {tensor} ({layout.kind}, {layout.depth} words)")
        offset = _check_range(memory_bit, layout.word_width,
                              f"memory bit of {entry.layer.name} {tensor} ({layout.word_width}-bit words)")
        lane, bit = divmod(offset, layout.element_width)
        element = lane * layout.depth + word
        if element >= entry.record.size:
            raise AddressError(
                f"memory word {word} bit {offset} of {entry.layer.name} {tensor} is padding: lane {lane} of word {word} "
                f"would hold element {element}, beyond the {entry.record.size} elements of {entry.record.array}"
            )
        return self.from_array_bit(entry.record.array, element, bit)

    # -- values

    def words(self, array: str) -> np.ndarray:
        """Golden raw words of an array, in element order, read from the project's weight .txt file."""
        if array not in self._words:
            from fkhls.project.weights import read_array_words

            self._words[array] = read_array_words(self.manifest.project_dir, self._array(array).record)
        return self._words[array]

    def values(self, hbit: HardwareBit) -> tuple[float, float]:
        """The weight's value before and after flipping this bit in the hardware word."""
        entry = self._array(hbit.array)
        raw = int(self.words(hbit.array)[hbit.element])
        before = float(from_raw(entry.hw, raw))
        if hbit.array_bit is None:
            return before, before
        after = float(from_raw(entry.hw, flip_bits(entry.hw, raw, np.int64(1) << hbit.array_bit)))
        return before, after

    def values_many(self, hbits: list[HardwareBit]) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized ``values``: float64 arrays (before, after) for many bits, each flipped alone."""
        before = np.zeros(len(hbits))
        after = np.zeros(len(hbits))
        groups: dict[str, list[int]] = {}
        for position, hbit in enumerate(hbits):
            groups.setdefault(hbit.array, []).append(position)
        for array, positions in groups.items():
            entry = self._array(array)
            index = np.asarray(positions)
            raw = self.words(array)[[hbits[p].element for p in positions]]
            bits = np.array([-1 if hbits[p].array_bit is None else hbits[p].array_bit for p in positions])
            mask = np.where(bits >= 0, np.left_shift(np.int64(1), np.maximum(bits, 0)), 0)
            before[index] = from_raw(entry.hw, raw)
            after[index] = from_raw(entry.hw, flip_bits(entry.hw, raw, mask))
        return before, after

    def model_bit_offsets(self) -> dict[tuple[str, str], int]:
        """FKeras model_bit of each tensor's LBI 0 (layers in model order, kernel then bias)."""
        out, offset = {}, 0
        for key, entry in self._tensors.items():
            out[key] = offset
            offset += entry.n_bits
        return out


# ----------------------------------------------------------------------------- module-level API

_CACHE: dict[int, tuple[Manifest, AddressMap]] = {}


def address_map(manifest: Manifest | AddressMap) -> AddressMap:
    """The AddressMap of a manifest (cached per manifest object)."""
    if isinstance(manifest, AddressMap):
        return manifest
    cached = _CACHE.get(id(manifest))
    if cached is None or cached[0] is not manifest:
        if len(_CACHE) > 32:
            _CACHE.clear()
        cached = (manifest, AddressMap(manifest))
        _CACHE[id(manifest)] = cached
    return cached[1]


def map_lbi(manifest: Manifest | AddressMap, layer: str, tensor: str, lbi: int) -> HardwareBit:
    return address_map(manifest).map_lbi(layer, tensor, lbi)


def map_faults(manifest: Manifest | AddressMap, faults: Iterable) -> list[HardwareBit]:
    return address_map(manifest).map_faults(faults)


def from_array_bit(manifest: Manifest | AddressMap, array: str, element: int, bit: int) -> HardwareBit:
    return address_map(manifest).from_array_bit(array, element, bit)


def from_memory_bit(manifest: Manifest | AddressMap, layer: str, memory_word: int, memory_bit: int,
                    tensor: str = "kernel") -> HardwareBit:
    return address_map(manifest).from_memory_bit(layer, memory_word, memory_bit, tensor)


def require_fault_targets(manifest: Manifest) -> None:
    """Refuse a project without a single weight array (a QKeras model of only QActivation/pooling/shape layers):
    export, verify and csim work on it; every fault stage starts from this map or ``spec_from_manifest``."""
    if not any(layer.arrays() for layer in manifest.weighted_layers):
        raise FaultSpecError(
            f"project {str(manifest.project_dir)!r} (model {manifest.model_name!r}) has no weight array: none of its "
            "layers holds a kernel, bias or scale (QDense, QConv, BatchNormalization ...), so there is nothing to "
            "fault; export, verify and csim work on it, faultmap, inject, crosscheck, campaign, rank and harden do not")


def spec_from_manifest(manifest: Manifest):
    """A ModelSpec holding only the weighted layers' tensors, rebuilt from the manifest without TF.

    Enough for ``fkhls.faults.descriptors.load_fault_set`` (names, shapes, word types); not for emulation.
    """
    from fkhls.model.spec import LayerSpec, ModelSpec, TensorSpec

    require_fault_targets(manifest)

    def tensor(layer: LayerRecord, record: ArrayRecord | None):
        if record is None:
            return None
        return TensorSpec(record.owner_of(layer), record.tensor, tuple(record.keras_shape), record.ptype, {},
                          array=record.array)

    layers = []
    for layer in manifest.weighted_layers:
        layers.append(LayerSpec(
            name=layer.name, keras_name=layer.keras_name, kind=layer.kind, keras_class=layer.hls_class or "",
            input_shape=(), output_shape=(), result_type=layer.result_ptype,
            accum_type=layer.accum_ptype,
            kernel=tensor(layer, layer.kernel), bias=tensor(layer, layer.bias),  # the multiplier and addend slots
        ))
    return ModelSpec(name=manifest.model_name, input_type=manifest.input_ptype,
                     input_shape=tuple(manifest.input_shape), layers=tuple(layers))
