"""What a QKeras model computes, step by step, in exact fixed-point types.

``describe_model`` walks a Keras model once, refuses anything fkhls cannot reproduce exactly
(naming the layer and what is supported), and returns a ``ModelSpec``: the ordered compute
steps with the ap_(u)fixed type of every weight, bias, accumulator and result. Export uses it
to type the hls4ml project; the emulator uses it to compute the same words in integers; fault
descriptors use its tensor list for bit indices. One source of truth for "what is exact".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError, UnsupportedModelError
from fkhls.core.fixedpoint import (
    MAX_WIDTH,
    FixedPrecisionType,
    parse_type,
    quantizer_type,
    raw_bounds,
)

DEFAULT_INPUT_TYPE = "ap_fixed<16,6>"

SUPPORTED_LAYERS = (
    "InputLayer, QDense, QConv1D, QConv2D, QActivation(quantized_relu | quantized_bits), "
    "Flatten, Activation('linear')"
)

WEIGHTED_KINDS = ("dense", "conv1d", "conv2d")


@dataclass(frozen=True)
class TensorSpec:
    """One quantized weight tensor (a layer's kernel or bias) as QKeras stores it."""

    layer: str
    tensor: str  # "kernel" or "bias"
    shape: tuple[int, ...]
    ptype: FixedPrecisionType
    quantizer: dict = field(compare=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def width(self) -> int:
        return self.ptype.width

    @property
    def n_bits(self) -> int:
        return self.size * self.ptype.width


@dataclass(frozen=True)
class LayerSpec:
    """One compute step: its kind, shapes, exact types and (for weighted kinds) tensors.

    ``keras_name`` is the Keras layer the step comes from; an activation written inline in a
    QDense/QConv becomes its own step named ``<layer>_activation`` as hls4ml splits it too.
    """

    name: str
    keras_name: str
    kind: str  # input | dense | conv1d | conv2d | activation | flatten | linear
    keras_class: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    result_type: FixedPrecisionType
    accum_type: FixedPrecisionType | None = None
    kernel: TensorSpec | None = None
    bias: TensorSpec | None = None
    activation: str | None = None  # relu | quantized_bits (for kind == activation)
    strides: tuple[int, ...] = ()
    padding: str = "valid"

    @property
    def n_terms(self) -> int:
        """Products summed per output: fan-in of a dense or conv output."""
        if self.kernel is None:
            return 0
        return int(np.prod(self.kernel.shape[:-1]))

    def tensors(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in (self.kernel, self.bias) if t is not None)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_type: FixedPrecisionType
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]

    @property
    def output_type(self) -> FixedPrecisionType:
        return self.layers[-1].result_type

    @property
    def weighted_layers(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.kind in WEIGHTED_KINDS)

    def tensors(self) -> tuple[TensorSpec, ...]:
        """Every quantized tensor in FKeras model-bit order: layers in model order, kernel then bias."""
        return tuple(t for layer in self.weighted_layers for t in layer.tensors())

    def tensor(self, layer: str, tensor: str) -> TensorSpec:
        for spec in self.tensors():
            if spec.layer == layer and spec.tensor == tensor:
                return spec
        names = sorted({t.layer for t in self.tensors()})
        raise UnsupportedModelError(
            f"no quantized {tensor!r} tensor in layer {layer!r}; layers with quantized tensors: {names}"
        )

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise UnsupportedModelError(f"no layer {name!r}; layers: {[s.name for s in self.layers]}")


def load_keras_model(path: str | Path):
    """Load a saved QKeras model (.h5, .keras or SavedModel directory) with QKeras's custom objects."""
    import tensorflow as tf
    from qkeras.utils import _add_supported_quantized_objects

    quiet_tensorflow()
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"model file {str(path)!r} does not exist")
    custom_objects: dict = {}
    _add_supported_quantized_objects(custom_objects)
    try:
        return tf.keras.models.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as exc:  # TF raises many types for unreadable files
        hint = ""
        if path.suffix == ".keras":
            # Measured with TF 2.15.1 + QKeras 0.9.0: QKeras layers saved in the Keras v3 format do not deserialize.
            hint = (" (QKeras models saved in the .keras format do not load back under TF 2.15; save with "
                    "model.save('model.h5') or as a SavedModel directory)")
        raise ProjectError(f"cannot load Keras model {str(path)!r}: {exc}{hint}") from exc


def quiet_tensorflow() -> None:
    """Silence TF's Python-side warnings (legacy .h5 notices, uncompiled-metrics notes) for CLI users."""
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(keras|tensorflow|qkeras).*")


def model_hash(model) -> str:
    """sha256 of the architecture JSON and every weight array: identifies the model a project came from."""
    digest = hashlib.sha256(model.to_json().encode())
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def accumulator_type(
    in_type: FixedPrecisionType, w_type: FixedPrecisionType, b_type: FixedPrecisionType | None, n_terms: int
) -> FixedPrecisionType:
    """Narrowest type that holds every sum of ``n_terms`` products plus the bias, for any word values.

    Any partial sum lies in the same range, so neither rounding nor overflow can happen even
    after a bit flip makes a weight its type's extreme value.
    """
    x_lo, x_hi = raw_bounds(in_type)
    w_lo, w_hi = raw_bounds(w_type)
    corners = [x_lo * w_lo, x_lo * w_hi, x_hi * w_lo, x_hi * w_hi]
    frac_p = in_type.fractional + w_type.fractional
    frac = frac_p if b_type is None else max(frac_p, b_type.fractional)
    lo = n_terms * min(corners) << (frac - frac_p)
    hi = n_terms * max(corners) << (frac - frac_p)
    if b_type is not None:
        b_lo, b_hi = raw_bounds(b_type)
        lo += b_lo << (frac - b_type.fractional)
        hi += b_hi << (frac - b_type.fractional)
    signed = lo < 0
    width = max(int(hi).bit_length() + signed, (int(-lo - 1).bit_length() + 1) if signed else 0, 1)
    if width > MAX_WIDTH:
        raise UnsupportedModelError(
            f"an exact accumulator would need {width} bits (> {MAX_WIDTH}, the int64 emulation limit)"
        )
    return FixedPrecisionType(width=width, integer=width - frac, signed=signed)


def _quantizer_config(layer, key: str) -> dict | None:
    """The serialized {'class_name', 'config'} of a layer's quantizer, or None."""
    obj = getattr(layer, f"{key}_quantizer_internal", None)
    if obj is None:
        return None
    return {"class_name": obj.__class__.__name__, "config": obj.get_config()}


def _activation_quantizer(value, where: str) -> tuple[str, dict] | None:
    """(hls activation, quantizer config) of an activation, None for linear, or a refusal."""
    from qkeras.quantizers import get_quantizer

    if value is None:
        return None
    if isinstance(value, str) and value in ("linear", "None"):
        return None
    if callable(value) and getattr(value, "__name__", "") == "linear":
        return None
    try:
        obj = get_quantizer(value) if not hasattr(value, "get_config") else value
    except Exception:
        obj = None
    if obj is None or not hasattr(obj, "get_config"):
        name = getattr(value, "__name__", value)
        raise UnsupportedModelError(
            f"{where}: activation {name!r} is not supported (supported: linear, quantized_relu, quantized_bits)"
        )
    config = {"class_name": obj.__class__.__name__, "config": obj.get_config()}
    kind = "relu" if config["class_name"] == "quantized_relu" else "quantized_bits"
    return kind, config


def _shape(tensor_shape) -> tuple[int, ...]:
    shape = tuple(tensor_shape)[1:]
    if any(d is None for d in shape):
        raise UnsupportedModelError(f"shape {tensor_shape} has an unknown dimension besides the batch")
    return tuple(int(d) for d in shape)


def describe_model(model, input_type: str | FixedPrecisionType = DEFAULT_INPUT_TYPE) -> ModelSpec:
    """Validate a QKeras model and derive the exact hardware type of every step."""
    in_type = parse_type(input_type) if isinstance(input_type, str) else input_type
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError("only single-input, single-output models are supported")
    steps: list[LayerSpec] = []
    current = in_type
    input_shape = _shape(model.inputs[0].shape)
    shape = input_shape
    steps.append(LayerSpec(name=model.layers[0].name if model.layers[0].__class__.__name__ == "InputLayer"
                           else "input", keras_name="input", kind="input", keras_class="InputLayer",
                           input_shape=shape, output_shape=shape, result_type=current))
    for layer in model.layers:
        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        if cls == "InputLayer":
            continue
        if isinstance(layer.input, (list, tuple)) or len(layer._inbound_nodes) != 1:
            raise UnsupportedModelError(f"{where}: only sequential (single-input chain) models are supported")
        out_shape = _shape(layer.output_shape)
        if cls in ("QDense", "QConv1D", "QConv2D"):
            kind = {"QDense": "dense", "QConv1D": "conv1d", "QConv2D": "conv2d"}[cls]
            config = layer.get_config()
            if kind != "dense":
                if config.get("data_format", "channels_last") != "channels_last":
                    raise UnsupportedModelError(f"{where}: only data_format='channels_last' is supported")
                if any(d != 1 for d in np.atleast_1d(config.get("dilation_rate", 1))):
                    raise UnsupportedModelError(f"{where}: dilation_rate != 1 is not supported")
                if config.get("padding") not in ("valid", "same"):
                    raise UnsupportedModelError(f"{where}: padding {config.get('padding')!r} is not supported")
            if kind == "dense" and len(shape) != 1:
                raise UnsupportedModelError(f"{where}: QDense on a {len(shape)}-D input is not supported; Flatten first")
            k_cfg = _quantizer_config(layer, "kernel")
            if k_cfg is None:
                raise UnsupportedModelError(f"{where}: the kernel has no quantizer; every weight needs quantized_bits")
            w_type = quantizer_type(k_cfg, where=f"{where} kernel_quantizer")
            kernel = TensorSpec(layer.name, "kernel", tuple(int(d) for d in layer.kernel.shape), w_type, k_cfg)
            bias = None
            if config.get("use_bias", True):
                b_cfg = _quantizer_config(layer, "bias")
                if b_cfg is None:
                    raise UnsupportedModelError(
                        f"{where}: the bias has no quantizer; give bias_quantizer=quantized_bits(...) or use_bias=False"
                    )
                b_type = quantizer_type(b_cfg, where=f"{where} bias_quantizer")
                bias = TensorSpec(layer.name, "bias", tuple(int(d) for d in layer.bias.shape), b_type, b_cfg)
            n_terms = int(np.prod(kernel.shape[:-1]))
            acc = accumulator_type(current, w_type, bias.ptype if bias else None, n_terms)
            strides = tuple(int(s) for s in np.atleast_1d(config.get("strides", 1))) if kind != "dense" else ()
            steps.append(LayerSpec(name=layer.name, keras_name=layer.name, kind=kind, keras_class=cls,
                                   input_shape=shape, output_shape=out_shape, result_type=acc, accum_type=acc,
                                   kernel=kernel, bias=bias, strides=strides,
                                   padding=config.get("padding", "valid") if kind != "dense" else "valid"))
            current = acc
            inline = _activation_quantizer(config.get("activation"), f"{where} activation")
            if inline is not None:
                act_kind, act_cfg = inline
                current = quantizer_type(act_cfg, activation=True, where=f"{where} activation")
                steps.append(LayerSpec(name=f"{layer.name}_activation", keras_name=layer.name, kind="activation",
                                       keras_class=cls, input_shape=out_shape, output_shape=out_shape,
                                       result_type=current, activation=act_kind))
        elif cls == "QActivation":
            act = _activation_quantizer(layer.get_config().get("activation"), where)
            if act is None:
                steps.append(LayerSpec(name=layer.name, keras_name=layer.name, kind="linear", keras_class=cls,
                                       input_shape=shape, output_shape=out_shape, result_type=current))
            else:
                act_kind, act_cfg = act
                current = quantizer_type(act_cfg, activation=True, where=where)
                steps.append(LayerSpec(name=layer.name, keras_name=layer.name, kind="activation", keras_class=cls,
                                       input_shape=shape, output_shape=out_shape, result_type=current,
                                       activation=act_kind))
        elif cls == "Activation":
            if layer.get_config().get("activation") != "linear":
                raise UnsupportedModelError(
                    f"{where}: Activation({layer.get_config().get('activation')!r}) is not supported; "
                    "only 'linear' (use QActivation(quantized_relu(...)) for a quantized ReLU)"
                )
            steps.append(LayerSpec(name=layer.name, keras_name=layer.name, kind="linear", keras_class=cls,
                                   input_shape=shape, output_shape=out_shape, result_type=current))
        elif cls == "Flatten":
            steps.append(LayerSpec(name=layer.name, keras_name=layer.name, kind="flatten", keras_class=cls,
                                   input_shape=shape, output_shape=out_shape, result_type=current))
        else:
            raise UnsupportedModelError(f"{where}: layer type {cls} is not supported (supported: {SUPPORTED_LAYERS})")
        shape = out_shape
    if not any(s.kind in WEIGHTED_KINDS for s in steps):
        raise UnsupportedModelError("the model has no QDense/QConv layer: nothing to fault")
    return ModelSpec(name=model.name, input_type=in_type, input_shape=input_shape, layers=tuple(steps))


def quantized_tensor(layer, tensor: str) -> np.ndarray:
    """The quantized values QKeras uses for a layer's kernel or bias, as float64 (exact)."""
    import tensorflow as tf

    variable = layer.kernel if tensor == "kernel" else layer.bias
    quantizer = getattr(layer, f"{tensor}_quantizer_internal")
    return np.asarray(quantizer(tf.convert_to_tensor(variable)).numpy(), dtype=np.float64)


def to_json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False)

