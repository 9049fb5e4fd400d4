"""Reading a layer's QKeras quantizers and activations (shared by the handlers)."""

from __future__ import annotations

from fkhls.core.errors import UnsupportedModelError


def quantizer_config(layer, key: str) -> dict | None:
    """The serialized {'class_name', 'config'} of a layer's ``kernel``/``bias`` quantizer, or None."""
    obj = getattr(layer, f"{key}_quantizer_internal", None)
    if obj is None:
        return None
    return {"class_name": obj.__class__.__name__, "config": obj.get_config()}


def activation_of(value, where: str) -> tuple[str, dict | None] | None:
    """An activation as (hls activation, quantizer config): None for linear; ('relu', None) for an
    unquantized relu (typed by fkhls); a refusal for anything else."""
    from qkeras.quantizers import get_quantizer

    if value is None:
        return None
    name = value if isinstance(value, str) else getattr(value, "__name__", None)
    if name in ("linear", "None"):
        return None
    if name == "relu":
        return "relu", None
    if name == "binary_tanh":  # a QKeras function (no config): hls4ml's converter maps it to nnet::binary_tanh
        from fkhls.core.fixedpoint import binary_activation_refusal

        raise UnsupportedModelError(f"{where}: {binary_activation_refusal(name)}")
    try:
        obj = get_quantizer(value) if not hasattr(value, "get_config") else value
    except Exception:
        obj = None
    if obj is None or not hasattr(obj, "get_config"):
        raise UnsupportedModelError(
            f"{where}: activation {name or value!r} is not supported (supported: linear, relu, quantized_relu, "
            "quantized_bits, quantized_sigmoid, quantized_tanh)"
        )
    config = {"class_name": obj.__class__.__name__, "config": obj.get_config()}
    if config["class_name"] == "quantized_relu":
        # not in QKeras's get_config, but it decides whether relu_upper_bound clips (see fixedpoint._relu_type)
        config["config"]["is_quantized_clip"] = bool(getattr(obj, "is_quantized_clip", True))
        # hls4ml's QKeras converter builds a LeakyReLU layer when the slope is not 0
        return ("leaky_relu" if config["config"].get("negative_slope") else "relu"), config
    if config["class_name"] in ("quantized_sigmoid", "quantized_tanh"):
        function = config["class_name"].removeprefix("quantized_")
        real = config["config"].get(f"use_real_{function}")
        return (function if real else f"hard_{function}"), config  # hls4ml: its table, or a HardActivation
    return "quantized_bits", config
