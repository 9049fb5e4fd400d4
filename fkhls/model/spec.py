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


def describe_model(model, input_type: str | FixedPrecisionType = DEFAULT_INPUT_TYPE) -> ModelSpec:
    """Validate a QKeras model and derive the exact hardware type of every step.

    Every layer is checked before anything is refused, so one error lists every blocker.
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
    walk = Walk(in_type, input_shape)
    steps: list[LayerSpec] = [LayerSpec(
        name=first.name if first.__class__.__name__ == "InputLayer" else "input", keras_name="input", kind="input",
        keras_class="InputLayer", input_shape=input_shape, output_shape=input_shape, result_type=in_type)]
    blockers: list[str] = []
    for layer in model.layers:
        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        if cls == "InputLayer":
            continue
        handler = handler_for_class(cls)
        if isinstance(layer.input, (list, tuple)) or len(layer._inbound_nodes) != 1:
            reasons = [f"{where}: only sequential (single-input chain) models are supported"]
        elif handler is None:
            reasons = [f"{where}: layer type {cls} is not supported (supported: {SUPPORTED_LAYERS})"]
        else:
            reasons = handler.blockers(layer)
        if not reasons and not blockers:
            try:
                steps += handler.describe(layer, walk)
            except UnsupportedModelError as exc:
                reasons = [str(exc) if str(exc).startswith("layer ") else f"{where}: {exc}"]
        blockers += reasons
        walk.shape = keras_shape(layer.output_shape)
    if blockers:
        raise _blocked(model, blockers)
    if not any(s.kernel is not None for s in steps):
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

