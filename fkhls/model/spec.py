"""What a QKeras model computes, step by step, in exact fixed-point types.

``describe_model`` walks a Keras model once through the layer handlers (``fkhls.model.layers``,
one per layer kind), refuses anything fkhls cannot reproduce exactly -- every blocker of the
model in one message, naming the layer, why and what to do -- and returns a ``ModelSpec``: the
ordered compute steps with the ap_(u)fixed type of every weight, bias, accumulator and result.
Export uses it to type the hls4ml project; the emulator uses it to compute the same words in
integers; fault descriptors use its tensor list for bit indices. One source of truth for "what
is exact".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError, UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, parse_type
from fkhls.model.layers import Walk, handler_for_class, kinds_with_role, supported_classes
from fkhls.model.layers.dense import accumulator_type  # noqa: F401  (re-exported)
from fkhls.model.steps import LayerSpec, ModelSpec, TensorSpec  # noqa: F401  (re-exported)

DEFAULT_INPUT_TYPE = "ap_fixed<16,6>"

SUPPORTED_LAYERS = ", ".join(supported_classes())

WEIGHTED_KINDS = kinds_with_role("weighted")


MODEL_FORMATS = ("a .h5/.hdf5 or .keras model file, a SavedModel directory, "
                 "or a .json architecture with --weights WEIGHTS.h5")
_WHOLE_MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
_JSON_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def load_keras_model(path: str | Path, weights: str | Path | None = None):
    """Load a saved QKeras model with QKeras's custom objects: one loader for every format fkhls accepts.

    ``path`` is a whole model (.h5/.hdf5, .keras, SavedModel directory) or a JSON architecture, in which case
    ``weights`` names the weights .h5 (hls4ml's KerasJson + KerasH5 pair). Anything else is refused before
    TensorFlow sees it.
    """
    import tensorflow as tf

    quiet_tensorflow()
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"model file {str(path)!r} does not exist")
    if path.suffix.lower() == ".json":
        if weights is None:
            raise ProjectError(f"model file {str(path)!r} is a JSON architecture without weights: pass its weights "
                               "file (--weights model_weights.h5)")
        return _load_json_model(path, Path(weights))
    if weights is not None:
        raise ProjectError(f"weights file {str(weights)!r} given with model {str(path)!r}: --weights goes only "
                           "with a .json architecture (a whole model file already holds its weights)")
    is_savedmodel = path.is_dir() and (path / "saved_model.pb").is_file()
    if not is_savedmodel and not (path.is_file() and path.suffix.lower() in _WHOLE_MODEL_SUFFIXES):
        raise ProjectError(f"model file {str(path)!r} is not a format fkhls reads; accepted: {MODEL_FORMATS}")
    try:
        return tf.keras.models.load_model(path, custom_objects=_custom_objects(), compile=False)
    except Exception as exc:  # TF raises many types for unreadable files
        hint = ""
        if path.suffix == ".keras":
            # Measured with TF 2.15.1 + QKeras 0.9.0: QKeras layers saved in the Keras v3 format do not deserialize.
            hint = (" (QKeras models saved in the .keras format do not load back under TF 2.15; save with "
                    "model.save('model.h5') or as a SavedModel directory)")
        raise ProjectError(f"cannot load Keras model {str(path)!r}: {_one_line(exc)}{hint}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _custom_objects() -> dict:
    """QKeras's objects plus Keras's own built-in classes, by name.

    With tf_keras installed beside keras (TF 2.15), a config entry ``"module": "keras.layers"`` resolves
    through TF's export table to tf_keras's class, and a functional model that mixes tf_keras's InputLayer
    with keras's QKeras layers never finishes rebuilding (measured). Naming keras's classes here pins them.
    """
    import inspect

    import tensorflow as tf
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict = {}
    for namespace in (tf.keras.constraints, tf.keras.regularizers, tf.keras.initializers, tf.keras.layers):
        objects.update({name: value for name, value in vars(namespace).items()
                        if not name.startswith("_") and inspect.isclass(value)})
    objects.update(Sequential=tf.keras.Sequential, Functional=tf.keras.Model, Model=tf.keras.Model)
    _add_supported_quantized_objects(objects)
    return objects


def _pin_builtins(config, objects: dict):
    """Point every Keras built-in entry of a model config at keras's class (see ``_custom_objects``)."""
    if isinstance(config, list):
        return [_pin_builtins(item, objects) for item in config]
    if not isinstance(config, dict):
        return config
    pinned = {key: _pin_builtins(value, objects) for key, value in config.items()}
    module, name = pinned.get("module"), pinned.get("class_name")
    if isinstance(module, str) and module.split(".")[0] == "keras" and name in objects:
        pinned["registered_name"] = name  # looked up in custom_objects before the module's export table
    activation = pinned.get("config", {}).get("activation") if name == "QActivation" else None
    if isinstance(activation, dict) and activation.get("class_name") in objects:
        # QActivation.from_config takes a quantizer object or its string, not the dict TF 2.15's to_json writes.
        quantizer = objects[activation["class_name"]]
        pinned["config"] = {**pinned["config"], "activation": quantizer(**activation.get("config", {}))}
    return pinned


def _load_json_model(path: Path, weights: Path):
    """A JSON architecture (model.to_json()) plus its weights .h5, checked layer by layer before loading."""
    import tensorflow as tf

    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProjectError(f"model file {str(path)!r} is not a readable JSON architecture ({_one_line(exc)}); "
                           f"accepted: {MODEL_FORMATS}") from exc
    if (not isinstance(config, dict) or config.get("class_name") not in _JSON_MODEL_CLASSES
            or not isinstance(config.get("config"), dict) or not isinstance(config["config"].get("layers"), list)):
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ProjectError(f"model file {str(path)!r} is JSON but not a Keras model architecture (class_name "
                           f"{found!r}; expected one of {', '.join(_JSON_MODEL_CLASSES)} with a layer list, "
                           "as model.to_json() writes)")
    objects = _custom_objects()
    unknown = sorted({str(layer.get("class_name")) for layer in config["config"]["layers"]
                      if not isinstance(layer, dict) or layer.get("class_name") not in objects})
    if unknown:  # refused here: an unknown class would otherwise fall through to tf_keras (see _custom_objects)
        raise ProjectError(f"model file {str(path)!r} uses layer classes neither Keras nor QKeras provides: "
                           f"{', '.join(unknown)}")
    try:
        pinned = _pin_builtins(config, objects)
        cls = tf.keras.Sequential if pinned["class_name"] == "Sequential" else tf.keras.Model
        model = cls.from_config(pinned["config"], custom_objects=objects)
    except Exception as exc:  # Keras raises many types for a bad config
        raise ProjectError(f"cannot build the model in {str(path)!r}: {_one_line(exc)}") from exc
    _check_weights_file(model, weights)
    try:
        model.load_weights(weights, by_name=True)
    except Exception as exc:
        raise ProjectError(f"cannot load weights file {str(weights)!r}: {_one_line(exc)}") from exc
    return model


def _check_weights_file(model, weights: Path) -> None:
    """Every layer's weights are in the file under its name with the model's shapes, and nothing else is."""
    import h5py

    if not weights.is_file():
        raise ProjectError(f"weights file {str(weights)!r} does not exist")
    try:
        with h5py.File(weights, "r") as handle:
            group = handle
            if "layer_names" not in handle.attrs and "model_weights" in handle:
                group = handle["model_weights"]  # a whole-model .h5 keeps its weights in this group
            if "layer_names" not in group.attrs:
                raise ProjectError(f"weights file {str(weights)!r} is HDF5 but not Keras weights (no layer_names; "
                                   "write it with model.save_weights('model_weights.h5'))")
            stored = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                names = group[name].attrs.get("weight_names", [])
                stored[name] = [tuple(group[name][n.decode() if isinstance(n, bytes) else n].shape) for n in names]
    except ProjectError:
        raise
    except Exception as exc:  # h5py raises OSError/KeyError for damaged files
        raise ProjectError(f"weights file {str(weights)!r} is not a readable Keras weights .h5: "
                           f"{_one_line(exc)}") from exc
    for layer in model.layers:
        expected = [tuple(int(d) for d in w.shape) for w in layer.weights]
        found = stored.pop(layer.name, [])
        if found != expected:
            raise ProjectError(f"weights file {str(weights)!r} does not match the architecture at layer "
                               f"{layer.name!r}: the model needs weight shapes {expected}, the file has {found}")
    extra = sorted(name for name, shapes in stored.items() if shapes)
    if extra:
        raise ProjectError(f"weights file {str(weights)!r} has weights for layers the architecture does not have: "
                           f"{', '.join(extra)}")


def quiet_tensorflow() -> None:
    """Silence TF's Python-side warnings (legacy .h5 notices, uncompiled-metrics notes) for CLI users."""
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(keras|tensorflow|qkeras).*")


def model_hash(model) -> str:
    """sha256 of every layer's config and every weight array: identifies the model a project came from.

    The same model hashes the same whether it came from memory, .h5, a SavedModel or JSON + weights:
    ``build_config`` (which Keras drops after a SavedModel round trip) is left out.
    """
    import tensorflow as tf

    architecture = _without_build_config(model.get_config())
    # An object left in a config (none in the models tested) is hashed by its Keras serialization, never by
    # str(), whose "at 0x..." address would change from run to run.
    text = json.dumps(architecture, sort_keys=True, default=tf.keras.utils.serialize_keras_object)
    digest = hashlib.sha256(text.encode())
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def matches_model_hash(model, recorded: str) -> bool:
    """Is ``model`` the one a manifest's ``model_hash`` names? Accepts the hash of projects exported before
    the hash left out build_config (sha256 of ``to_json()`` and the weights), so their verify stays quiet."""
    return recorded in (model_hash(model), _to_json_model_hash(model))


def _to_json_model_hash(model) -> str:
    digest = hashlib.sha256(model.to_json().encode())
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _without_build_config(config):
    if isinstance(config, dict):
        return {key: _without_build_config(value) for key, value in config.items() if key != "build_config"}
    if isinstance(config, (list, tuple)):
        return [_without_build_config(value) for value in config]
    return config


def keras_shape(tensor_shape) -> tuple[int, ...]:
    """A Keras shape without its batch dimension; refuses unknown dimensions."""
    shape = tuple(tensor_shape)[1:]
    if any(d is None for d in shape):
        raise UnsupportedModelError(f"shape {tensor_shape} has an unknown dimension besides the batch")
    return tuple(int(d) for d in shape)


def _is_quantized(model) -> bool:
    return any(type(layer).__module__.startswith("qkeras") for layer in model.layers)


def _blocked(model, blockers: list[str]) -> UnsupportedModelError:
    # One line (the CLI prints an error as one line), each blocker numbered.
    listed = " ".join(f"[{k}] {reason.rstrip('.')}." for k, reason in enumerate(blockers, 1))
    return UnsupportedModelError(
        f"model {model.name!r} cannot be reproduced exactly; {len(blockers)} "
        f"{'problem blocks' if len(blockers) == 1 else 'problems block'} it: {listed}"
    )


def describe_model(model, input_type: str | FixedPrecisionType = DEFAULT_INPUT_TYPE, *,
                   softmax_implementation: str = "stable") -> ModelSpec:
    """Validate a QKeras model and derive the exact hardware type of every step.

    Every layer is checked before anything is refused, so one error lists every blocker.
    ``softmax_implementation`` is hls4ml's Softmax implementation the project builds (an export option).
    """
    in_type = parse_type(input_type) if isinstance(input_type, str) else input_type
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError("only single-input, single-output models are supported")
    if not _is_quantized(model):
        raise UnsupportedModelError(
            f"model {model.name!r} is not quantized: none of its layers is a QKeras layer. fkhls reproduces QKeras "
            "quantizers bit for bit; quantize the model with QKeras (QDense/QConv2D with quantized_bits kernel and "
            "bias quantizers, QActivation(quantized_relu(...)); qkeras.utils.model_quantize converts a Keras model) "
            "and train it, or convert the float model with hls4ml directly"
        )
    input_shape = keras_shape(model.inputs[0].shape)
    first = model.layers[0]
    steps: list[LayerSpec] = [LayerSpec(
        name=first.name if first.__class__.__name__ == "InputLayer" else "input", keras_name="input", kind="input",
        keras_class="InputLayer", input_shape=input_shape, output_shape=input_shape, result_type=in_type)]
    # Keras layer name -> the step holding its output; Keras lists a model's layers in a topological order.
    produced: dict[str, LayerSpec] = {}
    blockers: list[str] = []
    for layer in model.layers:
        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        if cls == "InputLayer":
            produced[layer.name] = steps[0]
            continue
        handler = handler_for_class(cls)
        if len(layer._inbound_nodes) != 1:
            reasons = [f"{where}: it is applied {len(layer._inbound_nodes)} times (a shared layer); fkhls needs every "
                       "layer applied once (give each use its own layer)"]
        elif handler is None:
            reasons = [f"{where}: layer type {cls} is not supported (supported: {SUPPORTED_LAYERS})"]
        else:
            reasons = handler.blockers(layer)
        if not reasons and not blockers:
            try:
                steps += _describe_layer(layer, handler, produced, steps, softmax_implementation)
            except UnsupportedModelError as exc:
                reasons = [str(exc) if str(exc).startswith("layer ") else f"{where}: {exc}"]
        blockers += reasons
    if blockers:
        raise _blocked(model, blockers)
    output_layer = model.outputs[0]._keras_history.layer
    if produced.get(output_layer.name) is not steps[-1]:
        raise UnsupportedModelError(f"model {model.name!r}: its output (layer {output_layer.name!r}) is not the last "
                                    "step of Keras's layer order; fkhls needs the output computed last")
    return ModelSpec(name=model.name, input_type=in_type, input_shape=input_shape, layers=tuple(steps))


def _inbound_layers(layer) -> list:
    inbound = layer._inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _describe_layer(layer, handler, produced: dict[str, LayerSpec], steps: list[LayerSpec],
                    softmax_implementation: str = "stable") -> list[LayerSpec]:
    """The steps of one layer of a graph: the handler's, the first reading the steps that hold the layer's inputs.

    A step reading the step just before it keeps ``inputs`` empty (a chain stays a chain); any other source is named.
    """
    sources = []
    for inbound in _inbound_layers(layer):
        if inbound.__class__.__name__ == "InputLayer":
            sources.append(steps[0])
        elif inbound.name in produced:
            sources.append(produced[inbound.name])
        else:
            raise UnsupportedModelError(f"it reads layer {inbound.name!r}, which Keras lists after it")
    walk = Walk(sources[0].result_type, sources[0].output_shape, tuple(s.result_type for s in sources),
                tuple(s.output_shape for s in sources), softmax_implementation)
    described = handler.describe(layer, walk)
    if not described:
        produced[layer.name] = sources[0]
        return []
    names = tuple(s.name for s in sources)
    if len(names) > 1 or names[0] != steps[-1].name:
        described[0] = replace(described[0], inputs=names)
    produced[layer.name] = described[-1]
    return described


def quantized_tensor(layer, tensor: str) -> np.ndarray:
    """The quantized values QKeras uses for a layer's ``tensor`` variable (kernel, bias, depthwise_kernel ...)
    through its ``<tensor>_quantizer_internal``, as float64 (exact)."""
    import tensorflow as tf

    variable = getattr(layer, tensor, None)
    quantizer = getattr(layer, f"{tensor}_quantizer_internal", None)
    if variable is None:
        raise UnsupportedModelError(f"layer {layer.name!r} has no variable {tensor!r}")
    if quantizer is None:  # an unquantized layer (plain Dense): its float weights, typed by fkhls
        return np.asarray(variable.numpy(), dtype=np.float64)
    return np.asarray(quantizer(tf.convert_to_tensor(variable)).numpy(), dtype=np.float64)


def to_json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False)

