"""Fault descriptors: which bits of which quantized tensors flip, FKeras-compatible and seeded.

Coordinates (one name each, as in the README):

* ``lbi`` -- FKeras layer bit index inside one tensor (a layer's ``kernel`` or ``bias``):
  weights in numpy C-order of the Keras tensor, each ``width`` bits wide, MSB first, so
  LBI 0 is the MSB (sign bit when signed) of flat weight 0.
* ``flat_index``, ``bit`` -- ``lb_index_to_wb_index(lbi, width)``: the weight's C-order index and
  the bit position counted from the LSB (``width - 1`` is the MSB).
* ``model_bit`` -- FKeras's model-level index: tensors in ``ModelSpec.tensors()`` order (layers in
  model order, each layer's kernel bits then its bias bits), LBIs concatenated.

Fault-set file (JSON or YAML; same structure)::

    {"seed": 7,
     "description": "optional free text",
     "faults": [
        {"layer": "fc1", "tensor": "kernel", "regions": [[0, 0, 1.0], [10, 15, 0.5]]},
        {"layer": "output", "tensor": "bias", "bits": [3, 7]},
        {"model_bits": [12345]},
        {"name": "two MSBs", "layer": "fc2", "bits": [0, 6]},
        {"array": "s4", "bits": [0]}
     ]}

* ``seed`` (int >= 0, default 0) drives every random choice; it is recorded in the FaultSet.
* Each entry of ``faults`` is ONE scenario: all its bits are flipped together in one faulty
  model. ``split_single_bits`` turns a set into one scenario per distinct bit instead.
* ``layer`` is the Keras layer name; ``tensor`` is ``kernel`` (default) or ``bias`` (FKeras's
  forms), or the name of another hardware array the step holds: ``scale``/``bias`` of a batch
  normalization, ``scale`` of hls4ml's ApplyAlpha step ``<layer>_alpha``, ``depthwise_kernel`` ...
* ``array`` instead of ``layer``/``tensor``: the hls4ml array name (``w2``, ``b2``, ``s4`` ...),
  for any fault target of a project (the spec must come from its manifest:
  ``fkhls.faults.addressing.spec_from_manifest``, as every project command uses). LBIs count in
  the Keras (C-order) layout of the tensor the array holds, as for the other forms.
* ``regions``: ``[start_lbi, end_lbi, ber]``, inclusive on both ends (FKeras's convention).
  ``ber == 1`` flips every bit of the range; ``ber < 1`` flips exactly ``int(n_bits * ber)``
  distinct bits of the range (FKeras's count rule), drawn uniformly without replacement by
  ``numpy.random.default_rng([seed, entry_index, region_index])`` -- so a region's draw depends
  only on the seed and its position in the file, and the drawn bits are kept as BitFaults.
* ``bits``: LBIs of that tensor flipped with certainty. ``model_bits``: model-level indices
  flipped with certainty (the entry then needs no ``layer``/``tensor``).
* ``name`` (optional) names the scenario; the default is ``faults[<index>]``.
* A bit named more than once in one scenario is flipped once (a scenario is a set of bits, as
  FKeras v3's ``mask |= 1 << bit`` is).

Every out-of-range value raises ``FaultSpecError`` naming the value and the valid range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fkhls.core.errors import FaultSpecError
from fkhls.model.spec import ModelSpec, TensorSpec

__all__ = [
    "FaultList",
    "exhaustive_fault_list",
    "FaultyLayerBitRegion",
    "lb_index_to_wb_index",
    "wb_index_to_lb_index",
    "BitFault",
    "FaultScenario",
    "FaultSet",
    "load_fault_set",
    "fault_set_to_dict",
    "exhaustive_faults",
    "random_ber_scenarios",
    "split_single_bits",
    "model_bit_of",
    "fault_from_model_bit",
    "region_bits",
    "check_region",
    "TENSORS",
    "tensor_names",
]

# FKeras's tensor names. A model may hold others (tensor_names); in a selection "kernel"/"bias" also name a step's
# slot: "kernel" its multiplier array (kernel, depthwise_kernel, pointwise_kernel, a BN scale), "bias" its addend.
TENSORS = ("kernel", "bias")
_TOP_KEYS = {"seed", "faults", "description"}
_ENTRY_KEYS = {"name", "layer", "tensor", "array", "regions", "bits", "model_bits", "description"}


@dataclass(frozen=True)
class FaultyLayerBitRegion:
    """FKeras's region: LBIs ``start_lbi..end_lbi`` (inclusive), each flipped with rate ``ber``."""

    start_lbi: int
    end_lbi: int
    ber: float = 1.0


def lb_index_to_wb_index(lbi, bit_width: int):
    """FKeras's LBI -> (flat weight index, bit position from the LSB); LBI 0 is the MSB of weight 0.

    The one place this arithmetic lives: ints give ints, numpy arrays give arrays (element-wise).
    """
    if not isinstance(lbi, np.ndarray):
        lbi = int(lbi)
    return lbi // bit_width, bit_width - 1 - lbi % bit_width


def wb_index_to_lb_index(flat_index, bit, bit_width: int):
    """Inverse of ``lb_index_to_wb_index`` (ints or numpy arrays)."""
    if not isinstance(flat_index, np.ndarray) and not isinstance(bit, np.ndarray):
        flat_index, bit = int(flat_index), int(bit)
    return flat_index * bit_width + (bit_width - 1 - bit)


@dataclass(frozen=True, order=True)
class BitFault:
    """One bit of one quantized tensor, in FKeras's layer bit index; ``width`` is the word width."""

    layer: str
    tensor: str
    lbi: int
    width: int

    @property
    def flat_index(self) -> int:
        return lb_index_to_wb_index(self.lbi, self.width)[0]

    @property
    def bit(self) -> int:
        """Bit position from the LSB (``width - 1`` = MSB / sign bit)."""
        return lb_index_to_wb_index(self.lbi, self.width)[1]

    @classmethod
    def at(cls, spec: ModelSpec, layer: str, tensor: str, lbi: int) -> "BitFault":
        """A validated fault: the layer, tensor and LBI must exist in ``spec``."""
        tspec = _tensor_spec(spec, layer, tensor)
        _check_lbi(tspec, lbi, "lbi")
        return cls(layer, tensor, int(lbi), tspec.width)

    @classmethod
    def from_index(cls, spec: ModelSpec, layer: str, tensor: str, flat_index: int, bit: int) -> "BitFault":
        """A validated fault given the weight's flat C-order index and the bit from the LSB."""
        tspec = _tensor_spec(spec, layer, tensor)
        if not 0 <= bit < tspec.width:
            raise FaultSpecError(f"bit {bit} of {layer}.{tensor} is outside the valid range 0..{tspec.width - 1}")
        if not 0 <= flat_index < tspec.size:
            raise FaultSpecError(
                f"flat_index {flat_index} of {layer}.{tensor} is outside the valid range 0..{tspec.size - 1}"
            )
        return cls(layer, tensor, wb_index_to_lb_index(flat_index, bit, tspec.width), tspec.width)


@dataclass(frozen=True)
class FaultScenario:
    """A named group of bits flipped together in one faulty model (one descriptor entry or one BER trial)."""

    name: str
    faults: tuple[BitFault, ...]

    def by_tensor(self) -> dict[tuple[str, str], tuple[BitFault, ...]]:
        """The faults grouped per (layer, tensor), in first-seen order."""
        groups: dict[tuple[str, str], list[BitFault]] = {}
        for fault in self.faults:
            groups.setdefault((fault.layer, fault.tensor), []).append(fault)
        return {key: tuple(value) for key, value in groups.items()}


@dataclass(frozen=True)
class FaultSet:
    """Scenarios plus the seed that drew them and the descriptor they came from (for reports)."""

    seed: int
    scenarios: tuple[FaultScenario, ...]
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def n_bits(self) -> int:
        return sum(len(s.faults) for s in self.scenarios)

    @classmethod
    def from_regions(cls, spec: ModelSpec | Any, regions: Mapping[Any, Sequence[Any]], seed: int = 0,
                     name: str = "regions") -> "FaultSet":
        """One scenario from FKeras region lists per layer, as FKeras applies them to one faulty model.

        ``regions`` maps a layer name (its kernel), a ``(layer, tensor)`` pair or ``"layer/tensor"`` to a
        list of regions: FKeras's own ``FaultyLayerBitRegion`` objects (anything with ``start_lbi``,
        ``end_lbi``, ``ber``), ours, or ``(start_lbi, end_lbi, ber)`` triples. ``spec`` is a ModelSpec or
        anything with a ``.spec`` (an ``fkhls.Project``). Bits are drawn exactly as a fault-set file with
        one entry per key, in this order and with this seed, would draw them.
        """
        spec = getattr(spec, "spec", spec)
        if not isinstance(regions, Mapping) or not regions:
            raise FaultSpecError(f"regions must be a non-empty mapping of layer -> region list, got {regions!r}")
        entries = []
        for key, items in regions.items():
            layer, tensor = (key if isinstance(key, tuple) else
                             tuple(key.split("/", 1)) if isinstance(key, str) and "/" in key else (key, "kernel"))
            if isinstance(items, FaultyLayerBitRegion) or hasattr(items, "start_lbi"):
                items = [items]
            entries.append({"layer": layer, "tensor": tensor,
                            "regions": [[getattr(r, "start_lbi", None), getattr(r, "end_lbi", None),
                                         getattr(r, "ber", None)] if hasattr(r, "start_lbi") else r for r in items]})
        source = {"seed": seed, "faults": entries}
        drawn = load_fault_set(source, spec)
        faults = tuple(dict.fromkeys(f for s in drawn.scenarios for f in s.faults))
        return cls(drawn.seed, (FaultScenario(str(name), faults),), source)


# ----------------------------------------------------------------------------- validation helpers


def tensor_names(spec: ModelSpec) -> tuple[str, ...]:
    """Every tensor name the model's fault targets use: FKeras's kernel and bias first, then others in model order."""
    present = [t.tensor for t in spec.tensors()]
    return tuple(dict.fromkeys([*(t for t in TENSORS if t in present), *present]))


def _tensor_spec(spec: ModelSpec, layer: str, tensor: str) -> TensorSpec:
    """The TensorSpec of (layer, tensor), or a FaultSpecError that lists what exists."""
    if not isinstance(tensor, str) or not tensor:
        raise FaultSpecError(f"tensor {tensor!r} of layer {layer!r} is not valid; valid tensors: "
                             f"{list(tensor_names(spec))}")
    faultable = [t.layer for t in spec.tensors()]
    for tspec in spec.tensors():
        if tspec.layer == layer and tspec.tensor == tensor:
            return tspec
    if layer in faultable:
        raise FaultSpecError(f"layer {layer!r} has no {tensor!r} array (use_bias=False?); valid tensors of "
                             f"{layer!r}: {[t.tensor for t in spec.tensors() if t.layer == layer]}")
    names = [s.name for s in spec.layers] + [s.keras_name for s in spec.layers]
    what = "has no quantizer (no quantized kernel or bias to fault)" if layer in names else "does not exist"
    raise FaultSpecError(
        f"layer {layer!r} {what}; layers with fault-target arrays: {list(dict.fromkeys(faultable))}"
    )


def _array_spec(spec: ModelSpec, array: Any, where: str) -> TensorSpec:
    """The TensorSpec an hls4ml array name (``w2``, ``s4`` ...) holds; the spec must know array names."""
    known = {t.array: t for t in spec.tensors() if t.array}
    if not known:
        raise FaultSpecError(f"{where} names array {array!r}, but this spec has no hls4ml array names: the array "
                             "form needs a project (fkhls.faults.addressing.spec_from_manifest)")
    if not isinstance(array, str) or array not in known:
        raise FaultSpecError(f"{where}: array {array!r} does not exist; arrays of the project: {list(known)}")
    return known[array]


def _check_index(value: Any, n_bits: int, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FaultSpecError(f"{what} {value!r} of {where} is not an integer (valid range 0..{n_bits - 1})")
    if not 0 <= value < n_bits:
        raise FaultSpecError(f"{what} {value} of {where} is outside the valid range 0..{n_bits - 1}")
    return int(value)


def _check_lbi(tspec: TensorSpec, lbi: Any, what: str) -> int:
    where = f"{tspec.layer}.{tspec.tensor} ({tspec.size} weights x {tspec.width} bits)"
    return _check_index(lbi, tspec.n_bits, what, where)


def check_region(region: FaultyLayerBitRegion, n_bits: int, where: str) -> None:
    """Refuse a region outside ``0..n_bits-1``, reversed, or with a rate outside [0, 1]."""
    _check_index(region.start_lbi, n_bits, "start_lbi", where)
    _check_index(region.end_lbi, n_bits, "end_lbi", where)
    if region.start_lbi > region.end_lbi:
        raise FaultSpecError(
            f"region start_lbi {region.start_lbi} > end_lbi {region.end_lbi} in {where}; "
            "regions are inclusive [start_lbi, end_lbi] with start_lbi <= end_lbi"
        )
    ber = region.ber
    if isinstance(ber, bool) or not isinstance(ber, (int, float, np.floating, np.integer)) or not 0.0 <= ber <= 1.0:
        raise FaultSpecError(f"ber {ber!r} of a region in {where} is outside the valid range [0, 1]")


def region_bits(region: FaultyLayerBitRegion, rng: np.random.Generator | None) -> np.ndarray:
    """The LBIs a region flips: all of them at ber 1, else ``int(n * ber)`` distinct ones drawn by ``rng``."""
    n = region.end_lbi - region.start_lbi + 1
    if region.ber >= 1.0:
        return np.arange(region.start_lbi, region.end_lbi + 1, dtype=np.int64)
    count = int(n * region.ber)
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if rng is None:
        raise FaultSpecError(f"region {region} has ber < 1 and needs a seed (rng) to choose its bits")
    picked = rng.choice(n, size=count, replace=False)
    return region.start_lbi + np.sort(picked).astype(np.int64)


# ----------------------------------------------------------------------------- model-level index


def _offsets(spec: ModelSpec) -> list[tuple[TensorSpec, int]]:
    """Each tensor with the model_bit of its LBI 0."""
    out, offset = [], 0
    for tspec in spec.tensors():
        out.append((tspec, offset))
        offset += tspec.n_bits
    return out


def model_bit_of(spec: ModelSpec, fault: BitFault) -> int:
    """FKeras model-level bit index of a fault."""
    for tspec, offset in _offsets(spec):
        if tspec.layer == fault.layer and tspec.tensor == fault.tensor:
            return offset + fault.lbi
    _tensor_spec(spec, fault.layer, fault.tensor)  # raises the explanatory error
    raise AssertionError("unreachable")


def fault_from_model_bit(spec: ModelSpec, model_bit: int) -> BitFault:
    """The fault at a model-level bit index (layers in model order, kernel bits then bias bits)."""
    total = sum(t.n_bits for t in spec.tensors())
    if isinstance(model_bit, bool) or not isinstance(model_bit, (int, np.integer)) or not 0 <= model_bit < total:
        raise FaultSpecError(f"model_bit {model_bit!r} is outside the valid range 0..{total - 1}")
    for tspec, offset in _offsets(spec):
        if model_bit < offset + tspec.n_bits:
            return BitFault(tspec.layer, tspec.tensor, int(model_bit - offset), tspec.width)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- parsing


def _read(source: str | Path | Mapping[str, Any]) -> dict:
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.exists():
        raise FaultSpecError(f"fault-set file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json/yaml raise several types
        raise FaultSpecError(f"cannot parse fault-set file {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise FaultSpecError(f"fault-set file {str(path)!r} must hold a mapping with a 'faults' list")
    return data


def _as_list(entry: Mapping, key: str, where: str) -> list:
    value = entry.get(key, [])
    if not isinstance(value, (list, tuple)):
        raise FaultSpecError(f"{where}.{key} must be a list, got {value!r}")
    return list(value)


def _parse_region(item: Any, where: str) -> FaultyLayerBitRegion:
    if not isinstance(item, (list, tuple)) or len(item) != 3:
        raise FaultSpecError(f"{where}: region {item!r} must be [start_lbi, end_lbi, ber]")
    start, end, ber = item
    return FaultyLayerBitRegion(start, end, ber)


def _entry_faults(spec: ModelSpec, entry: Mapping, index: int, seed: int) -> list[BitFault]:
    """The bits one descriptor entry flips, validated and (for ber < 1) drawn from the seed."""
    where = f"faults[{index}]"
    if not isinstance(entry, Mapping):
        raise FaultSpecError(f"{where} must be a mapping, got {entry!r}")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise FaultSpecError(f"{where} has unknown keys {sorted(unknown)}; valid keys: {sorted(_ENTRY_KEYS)}")
    regions = _as_list(entry, "regions", where)
    bits = _as_list(entry, "bits", where)
    model_bits = _as_list(entry, "model_bits", where)
    if not (regions or bits or model_bits):
        raise FaultSpecError(f"{where} names no bits: give 'regions', 'bits' or 'model_bits'")
    faults = [fault_from_model_bit(spec, mb) for mb in model_bits]
    if regions or bits:
        if "array" in entry:
            if "layer" in entry or "tensor" in entry:
                raise FaultSpecError(f"{where} names both an 'array' and a 'layer'/'tensor': give one form")
            tspec = _array_spec(spec, entry["array"], where)
        elif "layer" not in entry:
            raise FaultSpecError(f"{where} has 'regions'/'bits' but no 'layer' (or 'array')")
        else:
            tspec = _tensor_spec(spec, entry["layer"], entry.get("tensor", "kernel"))
        lbis: list[int] = [_check_lbi(tspec, b, "bit") for b in bits]
        for r_index, item in enumerate(regions):
            region = _parse_region(item, where)
            check_region(region, tspec.n_bits, f"{tspec.layer}.{tspec.tensor} ({tspec.size} weights x {tspec.width} bits)")
            rng = np.random.default_rng([seed, index, r_index])
            lbis.extend(int(v) for v in region_bits(region, rng))
        faults.extend(BitFault(tspec.layer, tspec.tensor, lbi, tspec.width) for lbi in lbis)
    return list(dict.fromkeys(faults))  # a bit named twice flips once; order kept


def load_fault_set(source: str | Path | Mapping[str, Any], spec: ModelSpec) -> FaultSet:
    """Read (JSON/YAML file or dict) and validate a fault set against a ModelSpec; see the module docstring."""
    data = _read(source)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise FaultSpecError(f"fault set has unknown keys {sorted(unknown)}; valid keys: {sorted(_TOP_KEYS)}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FaultSpecError(f"seed {seed!r} is not valid; it must be an integer >= 0")
    entries = data.get("faults")
    if not isinstance(entries, (list, tuple)) or not entries:
        raise FaultSpecError("fault set needs a non-empty 'faults' list")
    scenarios = []
    for index, entry in enumerate(entries):
        faults = _entry_faults(spec, entry, index, int(seed))
        name = entry.get("name", f"faults[{index}]") if isinstance(entry, Mapping) else f"faults[{index}]"
        scenarios.append(FaultScenario(str(name), tuple(faults)))
    return FaultSet(int(seed), tuple(scenarios), data)


def fault_set_to_dict(fault_set: FaultSet, spec: ModelSpec) -> dict:
    """A descriptor that reloads to the same scenarios: every drawn bit written as an explicit LBI."""
    entries = []
    for scenario in fault_set.scenarios:
        for (layer, tensor), faults in scenario.by_tensor().items():
            entries.append({"name": scenario.name, "layer": layer, "tensor": tensor,
                            "bits": [f.lbi for f in faults]})
    return {"seed": fault_set.seed, "faults": entries}


# ----------------------------------------------------------------------------- generators


def _selected(spec: ModelSpec, layers: Iterable[str] | None, tensors: Sequence[str] | None) -> list[TensorSpec]:
    """The fault-target tensors of ``layers`` (None: every layer) named in ``tensors`` (None: every tensor), by
    array name or by slot ("kernel": each step's multiplier array, "bias": its addend), in model-bit order."""
    valid = tuple(dict.fromkeys([*TENSORS, *tensor_names(spec)]))
    if tensors is not None:
        if isinstance(tensors, str):
            tensors = (tensors,)
        for tensor in tensors:
            if tensor not in valid:
                raise FaultSpecError(f"tensor {tensor!r} is not valid; tensors of this model: {list(valid)}")
    if layers is not None:
        layers = list(layers)
        for layer in layers:
            if not any(t.layer == layer for t in spec.tensors()):
                _tensor_spec(spec, layer, "kernel")
    return [t for step in spec.weighted_layers for slot, t in (("kernel", step.kernel), ("bias", step.bias))
            if t is not None and (layers is None or t.layer in layers)
            and (tensors is None or t.tensor in tensors or slot in tensors)]


class LazySequence(Sequence):
    """A sequence whose items are made only when read (``_item``): an index (negative too) or a slice."""

    noun = "item"

    def _item(self, i: int):
        raise NotImplementedError

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.noun} {index} of {len(self)}")
        return self._item(index % len(self))


class FaultList(LazySequence):
    """Single-bit faults stored as one LBI array per tensor, made into ``BitFault`` objects only when read.

    Eight bytes per fault instead of a few hundred: the population of a campaign over a model with
    millions of weight bits fits in memory; an index or a slice gives ``BitFault`` / a list of them.
    """

    def __init__(self, segments: Sequence[tuple[TensorSpec, np.ndarray]]):
        self._tensors = tuple(t for t, _ in segments)
        self._lbis = tuple(np.asarray(lbis, dtype=np.int64) for _, lbis in segments)
        self._starts = np.concatenate([[0], np.cumsum([len(a) for a in self._lbis])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    noun = "fault"

    def _item(self, i: int) -> BitFault:
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        t = self._tensors[k]
        return BitFault(t.layer, t.tensor, int(self._lbis[k][i - self._starts[k]]), t.width)

    def __iter__(self):
        for t, lbis in zip(self._tensors, self._lbis):
            for lbi in lbis.tolist():
                yield BitFault(t.layer, t.tensor, lbi, t.width)


def exhaustive_fault_list(
    spec: ModelSpec,
    layers: Iterable[str] | None = None,
    tensors: Sequence[str] | None = None,
    bits: Iterable[int] | None = None,
) -> FaultList:
    """``exhaustive_faults`` as a compact ``FaultList`` (same faults, same order)."""
    wanted = None if bits is None else sorted(set(int(b) for b in bits))
    selected = _selected(spec, layers, tensors)
    if wanted is not None:
        widest = max(t.width for t in selected)
        if any(not 0 <= b < widest for b in wanted):
            raise FaultSpecError(f"bits {wanted} include a position outside 0..{widest - 1}, the positions of the "
                                 f"widest selected word")
    segments = []
    for tspec in selected:
        lbis = np.arange(tspec.n_bits)
        if wanted is not None:
            lbis = lbis[np.isin(lb_index_to_wb_index(lbis, tspec.width)[1], wanted)]
        segments.append((tspec, lbis))
    return FaultList(segments)


def exhaustive_faults(
    spec: ModelSpec,
    layers: Iterable[str] | None = None,
    tensors: Sequence[str] | None = None,
    bits: Iterable[int] | None = None,
) -> list[BitFault]:
    """Every single-bit fault of the chosen tensors (None: every array) in model-bit order; ``bits`` keeps only
    those positions (from the LSB).

    Words of different widths keep the positions they have (``bits=[5]`` is the MSB of a 6-bit
    word and absent from a 5-bit one); a position no selected word has is refused as a typo.
    """
    return list(exhaustive_fault_list(spec, layers, tensors, bits))


def random_ber_scenarios(
    spec: ModelSpec,
    ber: float,
    trials: int,
    seed: int,
    layers: Iterable[str] | None = None,
    tensors: Sequence[str] | None = None,
) -> list[FaultScenario]:
    """``trials`` seeded scenarios, each flipping ``int(n_bits * ber)`` distinct bits of the chosen tensors.

    FKeras's count rule (``int(n_bits * ber)``, uniform without replacement) on the model-level
    bit space of the chosen tensors; trial ``t`` uses ``default_rng([seed, t])``, so a trial is
    reproducible on its own and adding trials does not change earlier ones.
    """
    if isinstance(ber, bool) or not 0.0 <= float(ber) <= 1.0:
        raise FaultSpecError(f"ber {ber!r} is outside the valid range [0, 1]")
    if trials < 0:
        raise FaultSpecError(f"trials {trials} must be >= 0")
    chosen = _selected(spec, layers, tensors)
    starts = np.cumsum([0] + [t.n_bits for t in chosen])
    total = int(starts[-1])
    count = int(total * float(ber))
    scenarios = []
    for trial in range(trials):
        picked = np.sort(np.random.default_rng([int(seed), trial]).choice(total, size=count, replace=False))
        owner = np.searchsorted(starts, picked, side="right") - 1
        faults = tuple(
            BitFault(chosen[o].layer, chosen[o].tensor, int(p - starts[o]), chosen[o].width)
            for o, p in zip(owner, picked)
        )
        scenarios.append(FaultScenario(f"ber={ber} seed={seed} trial={trial}", faults))
    return scenarios


def split_single_bits(fault_set: FaultSet) -> FaultSet:
    """One scenario per distinct bit of the set (first-seen order): for campaigns that test bits one at a time."""
    seen = dict.fromkeys(f for s in fault_set.scenarios for f in s.faults)
    scenarios = tuple(FaultScenario(f"{f.layer}.{f.tensor}[lbi={f.lbi}]", (f,)) for f in seen)
    return FaultSet(fault_set.seed, scenarios, fault_set.source)
