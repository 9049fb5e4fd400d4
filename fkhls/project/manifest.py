"""The project manifest (``PROJECT_DIR/fkhls.json``): what was really built, read back from hls4ml.

Export writes it once; every later stage (address map, fault injection, C-sim, campaigns)
reads it instead of re-deriving anything from the model or from hls4ml's config.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fkhls.core.errors import ProjectError
from fkhls.core.fixedpoint import FixedPrecisionType, type_from_dict

MANIFEST_NAME = "fkhls.json"
MODEL_COPY_NAME = "fkhls_model.h5"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArrayRecord:
    """One hls4ml weight array (``w2``/``b2``) and how its elements relate to the Keras tensor.

    ``axes`` is the permutation hls4ml applied: array element order is
    ``keras_tensor.transpose(axes).ravel()`` (identity = Keras C-order).
    """

    tensor: str  # kernel | bias
    array: str  # w2, b2 ...
    type_name: str  # weight2_t ...
    type: dict  # fixedpoint.type_to_dict
    keras_shape: tuple[int, ...]
    axes: tuple[int, ...]
    order: str  # "keras" or "transposed"
    size: int

    @property
    def ptype(self) -> FixedPrecisionType:
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

    def arrays(self) -> tuple[ArrayRecord, ...]:
        return tuple(a for a in (self.kernel, self.bias) if a is not None)


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

    @property
    def weighted_layers(self) -> tuple[LayerRecord, ...]:
        return tuple(layer for layer in self.layers if layer.kernel is not None)

    def arrays(self) -> tuple[ArrayRecord, ...]:
        return tuple(a for layer in self.weighted_layers for a in layer.arrays())

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
        return data

    def write(self, path: Path | None = None) -> Path:
        from fkhls.core.files import atomic_write_text

        target = path or self.project_dir / MANIFEST_NAME
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2) + "\n")
        return target


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
        if data.get("schema") != SCHEMA_VERSION:
            raise ProjectError(f"{path}: manifest schema {data.get('schema')!r}, this fkhls reads {SCHEMA_VERSION}")
        layers = tuple(
            LayerRecord(**{**layer, "kernel": _array(layer.get("kernel")), "bias": _array(layer.get("bias"))})
            for layer in data.pop("layers")
        )
        return Manifest(
            project_dir=project_dir,
            layers=layers,
            **{
                **data,
                "input_shape": tuple(data["input_shape"]),
                "output_shape": tuple(data["output_shape"]),
            },
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path} is malformed: {exc}") from exc
