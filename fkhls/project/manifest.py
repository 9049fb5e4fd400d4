"""The project manifest (``PROJECT_DIR/fkhls.json``): what was really built, read back from hls4ml.

Export writes it once; every later stage (address map, fault injection, C-sim, campaigns)
reads it instead of re-deriving anything from the model or from hls4ml's config.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.core.fixedpoint import FixedPrecisionType, type_from_dict

MANIFEST_NAME = "fkhls.json"
MODEL_COPY_NAME = "fkhls_model.h5"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArrayRecord:
    """One hls4ml weight array (``w2``/``b2``, a batch norm's ``s4``/``b4``) and how its elements relate to the
    Keras-shaped tensor it holds (``LayerRecord.kernel`` is the multiplier slot, ``.bias`` the addend).

    ``axes`` is the permutation hls4ml applied: array element order is
    ``keras_tensor.transpose(axes).ravel()`` (identity = Keras C-order).
    """

    tensor: str  # the tensor's name in fault descriptors: kernel | bias | scale ...
    array: str  # w2, b2, s4 ...
    type_name: str  # weight2_t ...
    type: dict  # fixedpoint.type_to_dict
    keras_shape: tuple[int, ...]
    axes: tuple[int, ...]
    order: str  # "keras" or "transposed"
    size: int
    # the layer fault descriptors name this tensor under (the model spec's TensorSpec.layer): the Keras layer for
    # a separable conv's two steps, the step itself for an ApplyAlpha (its bias would collide with the Dense's);
    # "" in a manifest written before this field: the step's keras_name (LayerRecord.owner)
    layer: str = ""

    @cached_property
    def ptype(self) -> FixedPrecisionType:
        """The word type, parsed once (the dict is what fkhls.json stores)."""
        return type_from_dict(self.type)

    @property
    def hls_shape(self) -> tuple[int, ...]:
        return tuple(self.keras_shape[a] for a in self.axes)


@dataclass(frozen=True)
class LayerRecord:
    """One compute step as built: Keras and hls4ml names, types, strategy and reuse factor."""

    name: str  # fkhls step name (Keras layer name, or <layer>_activation for an inline activation)
    keras_name: str
    kind: str
    hls_name: str | None  # None when hls4ml folded the step away (Flatten, linear)
    hls_index: int | None
    hls_class: str | None
    output_var: str | None  # C variable holding the step's output (layer2_out ...)
    result_type: dict
    accum_type: dict | None = None
    strategy: str | None = None
    reuse_factor: int | None = None
    n_in: int | None = None  # dense-equivalent fan-in (conv: kernel volume * channels)
    n_out: int | None = None
    kernel: ArrayRecord | None = None
    bias: ArrayRecord | None = None
    # "exact", or "approximate by nature: <reason>" when the step cannot equal QKeras bit for bit (verify reports it)
    exactness: str = "exact"
    inputs: tuple[str, ...] = ()  # names of the layers (steps) it reads, in order: the model's graph

    def arrays(self) -> tuple[ArrayRecord, ...]:
        return tuple(a for a in (self.kernel, self.bias) if a is not None)

    def owner(self, record: ArrayRecord) -> str:
        """The layer name fault descriptors use for ``record`` (``{"layer": owner, "tensor": record.tensor}``)."""
        return record.layer or self.keras_name

    @cached_property
    def result_ptype(self) -> FixedPrecisionType:
        return type_from_dict(self.result_type)

    @cached_property
    def accum_ptype(self) -> FixedPrecisionType | None:
        return type_from_dict(self.accum_type) if self.accum_type else None


@dataclass(frozen=True)
class Manifest:
    project_dir: Path = field(compare=False)
    project_name: str
    backend: str
    io_type: str
    strategy: str
    reuse_factor: int
    input_type: dict
    output_type: dict
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_var: str
    output_var: str
    layers: tuple[LayerRecord, ...]
    model_name: str
    model_hash: str
    model_file: str  # relative to project_dir
    versions: dict
    requested: dict  # what the user asked for (reuse factor, strategy) when hls4ml changed it
    schema: int = SCHEMA_VERSION
    # ``fkhls harden``: protected words and their replica arrays (fkhls.harden.tmr); None for an exported project
    hardening: dict | None = None

    @cached_property
    def input_ptype(self) -> FixedPrecisionType:
        """The input word type, parsed once (as every typed field of the manifest: ``*_ptype``)."""
        return type_from_dict(self.input_type)

    @cached_property
    def output_ptype(self) -> FixedPrecisionType:
        return type_from_dict(self.output_type)

    @property
    def weighted_layers(self) -> tuple[LayerRecord, ...]:
        return tuple(layer for layer in self.layers if layer.kernel is not None)

    @property
    def describe_options(self) -> dict:
        """The export options ``describe_model`` needs to re-derive the spec the project was built from."""
        return {"softmax_implementation": self.requested.get("softmax_implementation", "stable")}

    def arrays(self) -> tuple[ArrayRecord, ...]:
        return tuple(a for layer in self.weighted_layers for a in layer.arrays())

    def replica_arrays(self) -> tuple[ArrayRecord, ...]:
        """Replica arrays a hardened project adds (``w2_tmr1``...): fault targets beside ``arrays()``."""
        if not self.hardening:
            return ()
        return tuple(_array(r) for entry in self.hardening["arrays"] for r in entry["replicas"])

    def layer(self, name: str) -> LayerRecord:
        for record in self.layers:
            if name in (record.name, record.hls_name):
                return record
        raise ProjectError(
            f"no layer {name!r} in project {str(self.project_dir)!r}; weighted layers: "
            f"{[layer.name for layer in self.weighted_layers]}"
        )

    def array(self, name: str) -> tuple[LayerRecord, ArrayRecord]:
        for layer in self.weighted_layers:
            for record in layer.arrays():
                if record.array == name:
                    return layer, record
        raise ProjectError(
            f"no weight array {name!r} in project {str(self.project_dir)!r}; arrays: "
            f"{[a.array for a in self.arrays()]}"
        )

    @property
    def model_path(self) -> Path:
        return self.project_dir / self.model_file

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("project_dir")
        if data["hardening"] is None:
            data.pop("hardening")  # exported projects keep the manifest they always had
        return data

    def write(self, path: Path | None = None) -> Path:
        from fkhls.core.files import atomic_write_text

        target = path or self.project_dir / MANIFEST_NAME
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2) + "\n")
        return target


# ----------------------------------------------------------------------------- validation on load
# A manifest is data a user can edit; several fields reach generated C++ (names, types), so each is checked
# for its JSON type and range before anything trusts it.

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Checker:
    """Checks one manifest file; every error names the file, the field, the value and what is expected."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, value, expected: str):
        raise ProjectError(f"{self.path}: field {where} is {value!r}; expected {expected}")

    def field(self, data: dict, key: str, where: str):
        if not isinstance(data, dict):
            self.fail(where or "(top level)", data, "a JSON object")
        if key not in data:
            raise ProjectError(f"{self.path}: field {where}{'.' if where else ''}{key} is missing")
        return data[key]

    def integer(self, value, where: str, low: int | None = None, high: int | None = None) -> int:
        if type(value) is not int or (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
            self.fail(where, value, f"an integer in {bounds}")
        return value

    def text(self, value, where: str, choices: tuple[str, ...] | None = None, identifier: bool = False) -> str:
        if not isinstance(value, str) or (choices and value not in choices) or \
                (identifier and not _IDENTIFIER.match(value)):
            self.fail(where, value, f"one of {list(choices)}" if choices else
                      "a C identifier (letters, digits, _)" if identifier else "a string")
        return value

    def optional(self, check, value, where: str, *args, **kwargs):
        return None if value is None else check(value, where, *args, **kwargs)

    def shape(self, value, where: str) -> None:
        if not isinstance(value, list) or not value:
            self.fail(where, value, "a non-empty list of positive integers")
        for i, item in enumerate(value):
            self.integer(item, f"{where}[{i}]", 1)

    def fixed_type(self, value, where: str) -> None:
        from fkhls.core.fixedpoint import MAX_WIDTH, cpp_type

        if not isinstance(value, dict):
            self.fail(where, value, "a fixed-point type object")
        width = self.integer(self.field(value, "width", where), f"{where}.width", 1, MAX_WIDTH)
        integer = self.integer(self.field(value, "integer", where), f"{where}.integer", -MAX_WIDTH, MAX_WIDTH)
        if "fractional" in value and value["fractional"] != width - integer:
            self.fail(f"{where}.fractional", value["fractional"], f"width - integer = {width - integer}")
        if not isinstance(self.field(value, "signed", where), bool):
            self.fail(f"{where}.signed", value["signed"], "true or false")
        for key in ("rounding", "saturation"):
            if key in value:
                self.text(value[key], f"{where}.{key}")
        try:
            cpp = cpp_type(type_from_dict(value))
        except (FkhlsError, KeyError, ValueError, TypeError) as exc:
            raise ProjectError(f"{self.path}: field {where} is not a valid fixed-point type: {exc}") from None
        if value.get("cpp", cpp) != cpp:
            self.fail(f"{where}.cpp", value.get("cpp"), f"{cpp!r} (the type its other fields describe)")

    def array(self, value, where: str) -> None:
        if value is None:
            return
        self.text(self.field(value, "tensor", where), f"{where}.tensor", identifier=True)  # kernel, bias, scale, depthwise_kernel ...
        self.text(self.field(value, "array", where), f"{where}.array", identifier=True)
        self.text(self.field(value, "type_name", where), f"{where}.type_name", identifier=True)
        self.fixed_type(self.field(value, "type", where), f"{where}.type")
        shape = self.field(value, "keras_shape", where)
        self.shape(shape, f"{where}.keras_shape")
        axes = self.field(value, "axes", where)
        if not isinstance(axes, list) or sorted(a for a in axes if type(a) is int) != list(range(len(shape))):
            self.fail(f"{where}.axes", axes, f"a permutation of 0..{len(shape) - 1}")
        self.text(self.field(value, "order", where), f"{where}.order", ("keras", "transposed"))
        size = 1
        for dim in shape:
            size *= dim
        self.integer(self.field(value, "size", where), f"{where}.size", size, size)
        if "layer" in value:
            self.text(value["layer"], f"{where}.layer")

    def layer(self, value, where: str) -> None:
        for key in ("name", "keras_name"):
            self.text(self.field(value, key, where), f"{where}.{key}")
        self.text(self.field(value, "kind", where), f"{where}.kind")
        self.optional(self.text, value.get("hls_name"), f"{where}.hls_name")
        self.optional(self.integer, value.get("hls_index"), f"{where}.hls_index", 0)
        self.optional(self.text, value.get("hls_class"), f"{where}.hls_class")
        self.optional(self.text, value.get("output_var"), f"{where}.output_var", identifier=True)
        self.fixed_type(self.field(value, "result_type", where), f"{where}.result_type")
        self.optional(self.fixed_type, value.get("accum_type"), f"{where}.accum_type")
        self.optional(self.text, value.get("strategy"), f"{where}.strategy", ("Latency", "Resource"))
        for key in ("reuse_factor", "n_in", "n_out"):
            self.optional(self.integer, value.get(key), f"{where}.{key}", 1)
        for key in ("kernel", "bias"):
            self.array(value.get(key), f"{where}.{key}")
        inputs = value.get("inputs", [])
        if not isinstance(inputs, list):
            self.fail(f"{where}.inputs", inputs, "a list of layer names")
        for i, name in enumerate(inputs):
            self.text(name, f"{where}.inputs[{i}]")

    def manifest(self, data) -> None:
        if not isinstance(data, dict):
            self.fail("(top level)", type(data).__name__, "a JSON object")
        self.text(self.field(data, "project_name", ""), "project_name", identifier=True)
        self.text(self.field(data, "backend", ""), "backend", ("Vivado", "Vitis"))
        self.text(self.field(data, "io_type", ""), "io_type", ("io_parallel", "io_stream"))
        self.text(self.field(data, "strategy", ""), "strategy", ("Latency", "Resource"))
        self.integer(self.field(data, "reuse_factor", ""), "reuse_factor", 1)
        for key in ("input_type", "output_type"):
            self.fixed_type(self.field(data, key, ""), key)
        for key in ("input_shape", "output_shape"):
            self.shape(self.field(data, key, ""), key)
        for key in ("input_var", "output_var"):
            self.text(self.field(data, key, ""), key, identifier=True)
        for key in ("model_name", "model_hash"):
            self.text(self.field(data, key, ""), key)
        model_file = self.text(self.field(data, "model_file", ""), "model_file")
        if Path(model_file).is_absolute() or ".." in Path(model_file).parts:
            self.fail("model_file", model_file, "a file name inside the project")
        for key in ("versions", "requested"):
            if not isinstance(self.field(data, key, ""), dict):
                self.fail(key, data[key], "a JSON object")
        layers = self.field(data, "layers", "")
        if not isinstance(layers, list) or not layers:
            self.fail("layers", layers, "a non-empty list of layer objects")
        seen: set[str] = set()
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict):
                self.fail(f"layers[{i}]", layer, "a layer object")
            self.layer(layer, f"layers[{i}]")
            for k, name in enumerate(layer.get("inputs", [])):
                if name not in seen:
                    self.fail(f"layers[{i}].inputs[{k}]", name, f"the name of an earlier layer (one of {sorted(seen)})")
            seen.add(layer["name"])


def _array(data: dict | None) -> ArrayRecord | None:
    if data is None:
        return None
    return ArrayRecord(**{**data, "keras_shape": tuple(data["keras_shape"]), "axes": tuple(data["axes"])})


def load_manifest(project_dir: str | Path) -> Manifest:
    """Read ``fkhls.json`` from a project made by ``fkhls export``; a clear error otherwise."""
    project_dir = Path(project_dir)
    path = project_dir / MANIFEST_NAME
    if not path.is_file():
        raise ProjectError(
            f"{str(project_dir)!r} is not an fkhls project: {MANIFEST_NAME} is missing (create one with `fkhls export`)"
        )
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            schema = data.get("schema") if isinstance(data, dict) else None
            raise ProjectError(f"{path}: manifest schema {schema!r}, this fkhls reads {SCHEMA_VERSION}")
        _Checker(path).manifest(data)
        layers = tuple(
            LayerRecord(**{**layer, "kernel": _array(layer.get("kernel")), "bias": _array(layer.get("bias")),
                           "inputs": tuple(layer.get("inputs", ()))})
            for layer in data.pop("layers")
        )
        manifest = Manifest(
            project_dir=project_dir,
            layers=layers,
            **{
                **data,
                "input_shape": tuple(data["input_shape"]),
                "output_shape": tuple(data["output_shape"]),
            },
        )
    except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ProjectError(f"{path} is malformed: {exc}") from None
    except OSError as exc:
        raise ProjectError(f"{path} cannot be read: {exc.strerror or exc}") from None
    from fkhls.project.weights import check_declarations  # weights reads manifests: imported late

    check_declarations(manifest)  # a hand-edited type or size is refused before anything trusts it
    return manifest
