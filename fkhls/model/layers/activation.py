"""Elementwise activations: QActivation, Activation, and an activation written inline in a QDense/QConv.

A quantized activation (quantized_relu, quantized_bits) takes its quantizer's type. An
unquantized ``relu`` is typed by fkhls: max(x, 0) of an ap_fixed<W, I> word fits
ap_ufixed<W-1, I-1> exactly, so the step is exact whatever QKeras computed in float.
``linear`` steps copy the words. A leaky quantized_relu (``negative_slope``) is hls4ml's
LeakyReLU layer (``leaky.py``); a ``relu_upper_bound`` counts only where QKeras's forward uses it
(``fixedpoint.quantizer_type``). ``quantized_sigmoid`` / ``quantized_tanh`` are hls4ml's exact
HardActivation (``hard.py``), or with ``use_real_*`` its table cast to the quantizer's type.
``Activation('sigmoid' | 'tanh')`` is hls4ml's lookup table (``tables.py``), its result typed
as the table: approximate by nature. ``Activation('softmax')``
becomes a ``softmax`` step owned by ``softmax.py``.
"""

from __future__ import annotations

import math

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw, cpp_type, quantizer_type, raw_bounds
from fkhls.model.layers import hard, leaky
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.layers.quantizers import activation_of
from fkhls.model.layers.softmax import SoftmaxHandler, softmax_steps
from fkhls.model.layers.tables import RANGE, TABLE_SIZE, TABLE_TYPE, activation_table, table_bound, table_index
from fkhls.model.steps import LayerSpec


def relu_type(in_type: FixedPrecisionType) -> FixedPrecisionType:
    """The narrowest type holding max(x, 0) exactly for every word x of ``in_type``."""
    if not in_type.signed:
        return FixedPrecisionType(in_type.width, in_type.integer, False)
    return FixedPrecisionType(max(in_type.width - 1, 1), in_type.integer - 1, False)


def is_lossless(step: LayerSpec, in_type: FixedPrecisionType) -> bool:
    """True for a relu whose result type holds max(x, 0) of every input word (its cast changes nothing)."""
    out = step.result_type
    return (step.activation == "relu" and out.fractional >= in_type.fractional
            and out.integer >= (in_type.integer - 1 if in_type.signed else in_type.integer))


def activation_steps(name: str, keras_name: str, keras_class: str, value, walk: Walk, out_shape,
                     where: str) -> list[LayerSpec]:
    """The step of an activation (None for linear when ``value`` is inline), advancing ``walk``."""
    if value == "softmax":  # inline: hls4ml splits it into its own Softmax layer
        return softmax_steps(name, keras_class, walk, tuple(out_shape), keras_name=keras_name)
    act = activation_of(value, where)
    if act is None:
        return []
    kind, config = act
    result = relu_type(walk.in_type) if config is None else quantizer_type(config, activation=True, where=where)
    extra = {}
    if kind == "leaky_relu":
        slope = float(config["config"]["negative_slope"])
        leaky.slope_exponent(slope, where)
        extra = dict(param=slope, approximate=leaky.deviation(walk.in_type, slope, result))
    elif kind in hard.FUNCTIONS:
        hard.check_internal_sigmoid(where)
    elif kind in RANGE:  # quantized_sigmoid/tanh(use_real_*): hls4ml's table, cast to the quantizer's type
        extra = dict(approximate=_table_reason(kind, walk.in_type, where) + f", cast to {cpp_type(result)}")
    walk.in_type = result
    return [LayerSpec(name=name, keras_name=keras_name, kind="activation", keras_class=keras_class,
                      input_shape=tuple(out_shape), output_shape=tuple(out_shape), result_type=result,
                      activation=kind, **extra)]


def _table_reason(function: str, in_type: FixedPrecisionType, where: str) -> str:
    """Why a table step is approximate; refuses an input too wide for the table index arithmetic."""
    if in_type.width + 11 > 62:
        raise UnsupportedModelError(f"{where}: a {in_type.width}-bit input is too wide for the {function} "
                                    "table index (at most 51 bits)")
    r = RANGE[function]
    return f"hls4ml's {function} table ({TABLE_SIZE} entries over [-{r}, {r}), {TABLE_TYPE.fractional} fractional bits)"


def _linear(layer, walk: Walk, out_shape) -> list[LayerSpec]:
    return [LayerSpec(name=layer.name, keras_name=layer.name, kind="linear", keras_class=layer.__class__.__name__,
                      input_shape=walk.shape, output_shape=out_shape, result_type=walk.in_type)]


def _check(value, where: str) -> list[str]:
    try:
        act = activation_of(value, where)
        if act is not None and act[1] is not None:
            quantizer_type(act[1], activation=True, where=where)
            if act[0] == "leaky_relu":
                leaky.slope_exponent(float(act[1]["config"]["negative_slope"]), where)
            if act[0] in hard.FUNCTIONS:
                hard.check_internal_sigmoid(where)
    except UnsupportedModelError as exc:
        return [str(exc)]
    return []


@layer_handler("QActivation", "Activation")
class ActivationHandler(LayerHandler):
    """relu (quantized or typed by fkhls), quantized_bits and linear, one word at a time."""

    kinds = ("activation", "linear")
    role = "elementwise"

    def blockers(self, layer) -> list[str]:
        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        value = layer.get_config().get("activation")
        if value == "softmax":
            return SoftmaxHandler().blockers(layer)
        if layer.__class__.__name__ == "Activation" and value not in ("linear", "relu", *RANGE):
            return [f"{where}: Activation({value!r}) is not supported; only 'linear', 'relu', 'sigmoid', 'tanh' and "
                    "'softmax' "
                    "(use QActivation(quantized_relu(...)) or quantized_bits for a quantized activation)"]
        if value in RANGE:
            return []
        return _check(value, where)

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        out_shape = keras_shape(layer.output_shape)
        function = layer.get_config().get("activation")
        if function == "softmax":  # hls4ml turns Activation('softmax') into its Softmax layer
            return softmax_steps(layer.name, "Activation", walk, out_shape)
        if function in RANGE:
            reason = _table_reason(function, walk.in_type, where)
            walk.in_type = TABLE_TYPE
            return [LayerSpec(name=layer.name, keras_name=layer.name, kind="activation", keras_class="Activation",
                              input_shape=walk.shape, output_shape=out_shape, result_type=TABLE_TYPE,
                              activation=function, approximate=reason)]
        steps = activation_steps(layer.name, layer.name, layer.__class__.__name__, layer.get_config().get("activation"),
                                 walk, out_shape, where)
        return steps or _linear(layer, walk, out_shape)

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        """hls4ml's relu assigns max(x, 0) into the result type; quantized_bits is that cast alone."""
        if step.kind == "linear":
            return x
        if step.activation == "relu":
            return cast_raw(np.maximum(x, 0), in_type.fractional, step.result_type)
        if step.activation == "leaky_relu":
            return leaky.forward(x, in_type, step.param, step.result_type)
        if step.activation in hard.FUNCTIONS:
            return hard.forward(step.activation, x, in_type, step.result_type)
        if step.activation == "quantized_bits":
            return cast_raw(x, in_type.fractional, step.result_type)
        if step.activation in RANGE:
            table = activation_table(step.activation, TABLE_SIZE, TABLE_TYPE.width, TABLE_TYPE.integer)
            return cast_raw(table[table_index(step.activation, x, in_type)], TABLE_TYPE.fractional, step.result_type)
        raise UnsupportedModelError(f"layer {step.name!r}: activation {step.activation!r} is not supported")

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation | None:
        if step.activation == "leaky_relu" and step.approximate:
            lowest = int(leaky.forward(np.array([raw_bounds(in_type)[0]]), in_type, step.param, step.result_type)[0])
            bound = max(leaky.qkeras_clip_raw(step.param, step.result_type) - lowest, 0)
            return Approximation(
                "leaky_relu_saturation", step.approximate, float(bound),
                "QKeras clips slope*x at -slope*2^i; hls4ml only at the result type's minimum, reached by the "
                "input type's lowest word: the distance between the two is the largest difference",
                "bound the input (a quantized_bits activation before it) so slope*x never passes QKeras's clip")
        if step.activation not in RANGE:
            return None
        bound = table_bound(step.activation, TABLE_SIZE, TABLE_TYPE.width, TABLE_TYPE.integer)
        why = (f"the largest distance between {step.activation}(x) and the table entry hls4ml reads for x, over every "
               f"x (index step {2 * RANGE[step.activation] / TABLE_SIZE:g}, entries rounded to "
               f"2^-{TABLE_TYPE.fractional}, clipped ends)")
        if step.result_type != TABLE_TYPE:  # quantized_sigmoid/tanh(use_real_*): the entry is cast to the quantizer
            bound = math.ceil(bound * 2.0 ** (step.result_type.fractional - TABLE_TYPE.fractional)) + 1
            why += f", in LSBs of {cpp_type(step.result_type)}, plus one LSB for the cast"
        return Approximation(
            f"{step.activation}_table", step.approximate, bound, why,
            "as the model's output: a linear output (the logits); inside the model: QActivation(quantized_relu(...)) "
            "or the hard quantized_sigmoid/quantized_tanh (exact)")

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        if step.activation == "leaky_relu":
            return (hls_layer.class_name in ("LeakyReLU", "ParametrizedActivation")
                    and hls_layer.get_attr("activation") == "leaky_relu"
                    and float(hls_layer.get_attr("activ_param")) == step.param)
        if step.activation in hard.FUNCTIONS:
            return (hls_layer.class_name == "HardActivation" and hls_layer.get_attr("activation") == step.activation
                    and float(hls_layer.get_attr("slope")) == hard.SLOPE
                    and float(hls_layer.get_attr("shift")) == hard.SHIFT)
        if hls_layer.class_name != "Activation":
            return False
        wanted = step.activation if step.activation in ("relu", *RANGE) else "linear"
        return hls_layer.get_attr("activation") == wanted

    def folds(self, step: LayerSpec) -> bool:
        # hls4ml drops a linear step, and folds a quantized_bits activation into the previous layer's output type.
        return step.kind == "linear" or step.activation == "quantized_bits"

    def set_hls_types(self, step: LayerSpec, hls_layer, hw) -> None:
        if step.activation in RANGE:  # the table the emulator reproduces: hls4ml's default, fixed here
            hls_layer.set_attr("table_size", TABLE_SIZE)
            hls_layer.types["table_t"].precision = hw(TABLE_TYPE)
        if step.activation == "leaky_relu":  # alpha must hold the slope exactly
            hls_layer.types["param_t"].precision = hw(leaky.param_type(step.param))
        if step.activation in hard.FUNCTIONS:
            for name in ("slope_t", "shift_t"):
                hls_layer.types[name].precision = hw(hard.PARAM_TYPE)

    def hls_type_checks(self, step: LayerSpec, hls_layer) -> list:
        if step.activation in RANGE:
            return [(hls_layer.types["table_t"].name, TABLE_TYPE, f"the table of {step.name}")]
        if step.activation == "leaky_relu":
            return [(hls_layer.types["param_t"].name, leaky.param_type(step.param), f"the slope of {step.name}")]
        if step.activation in hard.FUNCTIONS:
            return [(hls_layer.types[name].name, hard.PARAM_TYPE, f"the {name} of {step.name}")
                    for name in ("slope_t", "shift_t")]
        return []

    def hides_previous(self, step: LayerSpec) -> bool:
        return step.kind == "activation"  # the previous output is cast: the exact accumulator is not materialized
