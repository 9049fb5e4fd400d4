"""QKeras quantizers and activations beyond quantized_bits/quantized_relu (issue 10): what is reproduced word for
word, what is approximate and why, and what is refused with a message naming the layer, the quantizer and what to do.

Each supported form also runs through every stage in tests/model/test_layers.py (STAGE_MODELS).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cpp_type, raw_bounds, to_raw
from fkhls.model import layers
from fkhls.model.spec import describe_model


def get_quantizer(text: str):
    """A QKeras quantizer from its text, by QKeras's own parser (as QActivation('quantized_relu(6,2)') does)."""
    from qkeras.quantizers import get_quantizer as qkeras_get_quantizer

    return qkeras_get_quantizer(text)


def _one_activation(quantizer, before=None, name: str = "act"):
    """QDense -> [QActivation(before)] -> QActivation(quantizer): a model around one activation."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4,))
    h = QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q)(x_in)
    if before is not None:
        h = QActivation(before, name="before")(h)
    return tf.keras.Model(x_in, QActivation(quantizer, name=name)(h))


def _every_word(in_type: FixedPrecisionType) -> np.ndarray:
    lo, hi = raw_bounds(in_type)
    return np.arange(lo, hi + 1, dtype=np.int64)


# ----------------------------------------------------------------------------- quantized_relu: leaky, upper bound


@pytest.mark.parametrize("slope", [0.25, 0.5, 1.0, 2.0])
def test_leaky_relu_is_qkeras_on_every_word_of_a_bounded_input(slope):
    """After quantized_bits(8, 2) (words in [-4, 4)), hls4ml's leaky_relu equals QKeras on all 256 input words."""
    from qkeras.quantizers import quantized_bits, quantized_relu

    quantizer = quantized_relu(6, 2 if slope <= 1 else 3, negative_slope=slope)
    spec = describe_model(_one_activation(quantizer, before=quantized_bits(8, 2, alpha=1)))
    step, before = spec.layers[-1], spec.layers[-2]
    assert (step.activation, step.param) == ("leaky_relu", slope)
    assert cpp_type(step.result_type) == f"ap_fixed<6,{quantizer.integer + 1},AP_RND_CONV,AP_SAT>"
    words = _every_word(before.result_type)
    hw = layers.handler_for_kind("activation").forward(step, before.result_type, words, {})
    values = words * 2.0 ** -before.result_type.fractional
    expected = quantizer(values.astype(np.float32)).numpy().astype(np.float64)
    assert not step.approximate
    assert_array_equal(hw, to_raw(step.result_type, expected, what="QKeras leaky_relu"))
    assert np.any(hw < 0) and np.any(hw > 0)


def test_leaky_relu_on_a_wide_input_is_marked_approximate_with_the_reason():
    """Straight after a dense accumulator the input reaches below -2**i / slope: QKeras clips at -slope * 2**i, the
    hardware saturates at -2**i. The step says so (the emulator reproduces the hardware); words above agree."""
    from qkeras.quantizers import quantized_relu

    quantizer = quantized_relu(6, 1, negative_slope=0.5)
    spec = describe_model(_one_activation(quantizer))
    step, before = spec.layers[-1], spec.layers[-2]
    assert "QKeras clips at -1.0" in step.approximate and "below -2.0 differ" in step.approximate
    words = _every_word(before.result_type)
    hw = layers.handler_for_kind("activation").forward(step, before.result_type, words, {})
    values = words * 2.0 ** -before.result_type.fractional
    qkeras = to_raw(FixedPrecisionType(12, 6, True), quantizer(values.astype(np.float32)).numpy(), what="QKeras")
    qkeras = qkeras >> (FixedPrecisionType(12, 6, True).fractional - step.result_type.fractional)
    assert_array_equal(hw[values >= -2.0], qkeras[values >= -2.0])
    assert np.all(hw[values < -2.25] < qkeras[values < -2.25])  # the hardware goes on to -2, QKeras stops at -1


def test_relu_upper_bound_under_the_default_clip_is_the_plain_grid():
    """QKeras's default is_quantized_clip=True: the bound only shapes the gradient, the forward value is the grid's."""
    from qkeras.quantizers import quantized_relu

    bounded, plain = quantized_relu(6, 2, relu_upper_bound=1.5), quantized_relu(6, 2)
    values = np.linspace(-5, 5, 4001).astype(np.float32)
    assert_array_equal(bounded(values).numpy(), plain(values).numpy())
    assert describe_model(_one_activation(bounded)).layers[-1].result_type == \
        describe_model(_one_activation(plain)).layers[-1].result_type


@pytest.mark.parametrize("quantizer, words", [
    ("quantized_relu(6, 2, relu_upper_bound=1.5, is_quantized_clip=False)", ["relu_upper_bound=1.5",
                                                                            "does not save is_quantized_clip"]),
    ("quantized_relu(6, 2, use_sigmoid=1)", ["use_sigmoid", "no hls4ml equivalent"]),
])
def test_refused_quantized_relu_forms_say_why(quantizer, words):
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(_one_activation(get_quantizer(quantizer), name="odd"))
    message = str(info.value)
    assert "'odd'" in message and "QActivation" in message
    for word in words:
        assert word in message, (word, message)


# ----------------------------------------------------------------------------- binary / ternary weights, po2


def _one_dense(kernel, bias=None, name: str = "d"):
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    x_in = tf.keras.Input(shape=(4,))
    out = QDense(3, name=name, kernel_quantizer=kernel, bias_quantizer=bias or quantized_bits(5, 1, alpha=1))(x_in)
    return tf.keras.Model(x_in, out)


def test_binary_and_ternary_weights_are_two_bit_signed_words():
    """The QKeras values -1, 0, +1 sit on the ap_fixed<2,2> grid; hls4ml's xnor / weight_ternary products are replaced
    by the plain multiply (test_layers' 'binary' model checks the rendered config and C-sim)."""
    from qkeras.quantizers import binary, ternary

    from fkhls.emulate.emulator import golden_weights

    model = _one_dense(ternary(alpha=1), binary())
    spec = describe_model(model)
    assert cpp_type(spec.tensor("d", "kernel").ptype) == cpp_type(spec.tensor("d", "bias").ptype) == "ap_fixed<2,2>"
    weights = golden_weights(model, spec)
    assert set(np.unique(weights[("d", "kernel")])) <= {-1, 0, 1} and set(np.unique(weights[("d", "bias")])) <= {-1, 1}


@pytest.mark.parametrize("kernel, words", [
    ("quantized_relu_po2(6)", ["quantized_relu_po2(6) weights", "64 bits", "quantized_po2(bits)"]),
    ("quantized_po2(4, qnoise_factor=0.5)", ["qnoise_factor=0.5", "not powers of two"]),
    ("binary(use_01=True, alpha=1)", ["use_01", "both to 1", "binary(alpha=1)"]),
    ("binary(alpha='auto')", ["alpha='auto'", "ApplyAlpha", "no power of two", "auto_po2"]),
    ("ternary(alpha='auto')", ["alpha='auto'", "least-squares", "auto_po2"]),
    ("ternary(alpha=0.5)", ["alpha=0.5", "ApplyAlpha"]),
    ("stochastic_ternary(alpha=1)", ["stochastic"]),
])
def test_refused_weight_quantizers_say_why(kernel, words):
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(_one_dense(get_quantizer(kernel), name="odd"))
    message = str(info.value)
    assert "'odd'" in message and "kernel_quantizer" in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("activation, words", [
    ("quantized_po2(4)", ["quantized_po2 activation", "no layer"]),
    ("quantized_relu_po2(4)", ["quantized_relu_po2 activation", "no layer"]),
    ("binary(alpha=1)", ["binary activation", "xnor"]),
    ("ternary(alpha=1)", ["ternary activation", "0.5/threshold", "|x| >= threshold"]),
    ("binary_tanh", ["binary_tanh(0) is -1", "data >= 0", "xnor"]),
])
def test_refused_activation_quantizers_say_why(activation, words):
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(_one_activation(get_quantizer(activation), name="odd"))
    message = str(info.value)
    assert "'odd'" in message and "QActivation" in message
    for word in words:
        assert word in message, (word, message)


# ----------------------------------------------------------------------------- quantized_sigmoid / quantized_tanh


@pytest.mark.parametrize("quantizer, before", [
    ("quantized_tanh(6)", None), ("quantized_tanh(4, symmetric=True)", "quantized_bits(6, 0, alpha=1)"),
    ("quantized_sigmoid(5)", None), ("quantized_sigmoid(7)", "quantized_bits(8, 3, alpha=1)"),
])
def test_hard_activations_are_qkeras_on_every_input_word(quantizer, before):
    """hls4ml's hard_sigmoid / hard_tanh equal QKeras's quantized_sigmoid / quantized_tanh on every input word."""
    quantizer = get_quantizer(quantizer)
    spec = describe_model(_one_activation(quantizer, before=get_quantizer(before) if before else None))
    step, prev = spec.layers[-1], spec.layers[-2]
    assert step.activation == ("hard_tanh" if "tanh" in type(quantizer).__name__ else "hard_sigmoid")
    assert not step.approximate
    words = _every_word(prev.result_type)
    hw = layers.handler_for_kind("activation").forward(step, prev.result_type, words, {})
    values = (words * 2.0 ** -prev.result_type.fractional).astype(np.float32)
    assert_array_equal(hw, to_raw(step.result_type, quantizer(values).numpy(), what="QKeras"))
    lo, hi = raw_bounds(step.result_type)
    assert (hw.min(), hw.max()) == (lo + bool(quantizer.symmetric), hi)  # both ends reached: the clips are tested


def test_real_sigmoid_and_tanh_are_hls4ml_tables_cast_to_the_quantizer():
    from qkeras.quantizers import quantized_sigmoid, quantized_tanh

    for quantizer, function in ((quantized_sigmoid(6, use_real_sigmoid=True), "sigmoid"),
                                (quantized_tanh(6, use_real_tanh=True), "tanh")):
        step = describe_model(_one_activation(quantizer)).layers[-1]
        assert step.activation == function and f"hls4ml's {function} table" in step.approximate
        assert "cast to ap_" in step.approximate


def test_refused_sigmoid_forms_say_why():
    from qkeras import quantizers
    from qkeras.quantizers import quantized_sigmoid, quantized_tanh

    with pytest.raises(UnsupportedModelError, match="'odd'.*symmetric=True.*reaches 0"):
        describe_model(_one_activation(quantized_sigmoid(5, symmetric=True), name="odd"))
    with pytest.raises(UnsupportedModelError, match="'d'.*quantized_tanh is only supported as an activation"):
        describe_model(_one_dense(quantized_tanh(4)))
    quantizers.set_internal_sigmoid("smooth")
    try:
        with pytest.raises(UnsupportedModelError, match="'odd'.*internal sigmoid is not 'hard'.*set_internal_sigmoid"):
            describe_model(_one_activation(quantized_tanh(5), name="odd"))
    finally:
        quantizers.set_internal_sigmoid("hard")


def test_real_sigmoid_and_tanh_csim_equals_the_emulator_within_one_lsb_of_qkeras(tmp_path):
    """use_real_sigmoid / use_real_tanh: hls4ml's tables cast to the quantizer's type; the emulator reproduces the
    C-sim word for word, and QKeras (the real function, rounded) is at most one LSB away."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_sigmoid, quantized_tanh

    from fkhls.csim.build import run_csim
    from fkhls.emulate import emulator as emulate
    from fkhls.project.export import ExportOptions, export_model
    from tests import models

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(5,))
    h = QDense(6, name="d1", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = QActivation(quantized_sigmoid(6, use_real_sigmoid=True), name="s")(h)
    h = QDense(4, name="d2", kernel_quantizer=q, bias_quantizer=q)(h)
    model = tf.keras.Model(x_in, QActivation(quantized_tanh(6, use_real_tanh=True), name="t")(h))
    models._spread_weights(model, 3)
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    assert [r.exactness.startswith("approximate by nature: hls4ml's") for r in manifest.layers] == \
        [False, False, True, False, True]
    x = models.grid_inputs((5,), 300, 3, fractional=3, scale=1.5)
    golden, trace = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x),
                                        trace=True)
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))
    keras = tf.keras.Model(model.inputs, model.get_layer("s").output).predict(x, verbose=0)
    deviation = np.abs(to_raw(spec.layer("s").result_type, keras, what="QKeras sigmoid") - trace["s"])
    assert deviation.max() == 1 and 0 < np.mean(deviation) < 0.2


# ----------------------------------------------------------------------------- an unquantized Dense inside a QKeras model


def _plain_dense_model(kernel_values, bias_values):
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4,))
    h = QActivation(quantized_relu(6, 2), name="r")(QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q)(x_in))
    plain = tf.keras.layers.Dense(2, name="plain")
    model = tf.keras.Model(x_in, plain(h))
    plain.set_weights([np.asarray(kernel_values, np.float32).reshape(3, 2), np.asarray(bias_values, np.float32)])
    return model


def test_plain_dense_weights_get_the_narrowest_exact_type():
    spec = describe_model(_plain_dense_model([0.5, -0.25, 1.75, 0, 1, -2], [3, 0.125]))
    step = spec.layer("plain")
    assert cpp_type(step.kernel.ptype) == "ap_fixed<4,2>" and cpp_type(step.bias.ptype) == "ap_ufixed<5,2>"
    assert not step.approximate  # a 14-bit exact sum: float32 holds it


def test_plain_dense_with_long_sums_is_marked_approximate():
    """Weights needing 22 fractional bits: the exact sum is wider than float32's significand; Keras may round."""
    step = describe_model(_plain_dense_model(np.arange(1, 7) * 2.0**-22 + 1, [0, 0])).layer("plain")
    assert cpp_type(step.kernel.ptype) == "ap_ufixed<23,1>" and "float32" in step.approximate and "needs 31 bits" in \
        step.approximate


def test_plain_dense_with_float_weights_off_every_grid_is_refused():
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(_plain_dense_model([0.1, 1e-6, 3.3, -2.7, 0.001, 5], [0, 0]))
    message = str(info.value)
    assert "'plain' (Dense)" in message and "unquantized kernel" in message and "32 bits" in message
    assert "QDense" in message and "'plain' (Dense): unquantized bias" not in message  # the zero bias fits


# ----------------------------------------------------------------------------- quantized_po2 weights (exponent struct)


def test_po2_word_is_sign_then_exponent_code():
    """A po2 word is hls4ml's {sign, exponent} struct as one (bits+1)-bit code: MSB the sign field (1 = +), then
    the exponent in two's complement; hls4ml's literal text, the type it declares, and every code round trip."""
    from fkhls.core.fixedpoint import Po2Type, flip_bits, from_raw, literal, parse_type, type_from_dict, type_to_dict

    ptype = Po2Type(4)
    raw = to_raw(ptype, [0.125, -0.5, 1.0, -2.0, 2.0**-8, 2.0**7])
    assert_array_equal(raw, [0b11101, 0b01111, 0b10000, 0b00001, 0b11000, 0b10111])
    assert [literal(ptype, r) for r in raw[:2]] == ["{1.0, -3}", "{0.0, -1}"]  # as hls4ml's ExponentWeightVariable
    every = np.arange(32)
    assert_array_equal(to_raw(ptype, from_raw(ptype, every)), every)
    assert_array_equal(from_raw(ptype, flip_bits(ptype, raw[:1], 1 << 4)), [-0.125])  # the sign field
    assert_array_equal(from_raw(ptype, flip_bits(ptype, raw[:1], 1 << 3)), [32.0])  # exponent MSB: -3 -> 5
    assert parse_type("struct exponent_weight2_t {ap_uint<1> sign;ap_int<4> weight; }") == ptype
    assert type_from_dict(type_to_dict(ptype)) == ptype and ptype != FixedPrecisionType(5, 5, False)
    for bad, words in ((0.0, "no zero"), (0.3, "power of two"), (2.0**8, "[-8, 7]")):
        with pytest.raises(Exception) as info:
            to_raw(ptype, [bad], what="w")
        assert "w[(0,)]" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("where, build, words", [
    ("bias", lambda q: _one_dense(q.quantized_po2(4, max_value=1), q.quantized_po2(4), name="odd"),
     ["quantized_po2 biases", "does not compile", "quantized_bits"]),
    ("depthwise", None, ["depthwise_quantizer: quantized_po2 weights are supported in QDense, QConv1D and QConv2D "
                         "only"]),
])
def test_po2_refusals_name_layer_and_way_out(where, build, words):
    import tensorflow as tf
    from qkeras import quantizers as q

    if where == "depthwise":
        from qkeras import QDepthwiseConv2D

        x_in = tf.keras.Input(shape=(4, 4, 2))
        model = tf.keras.Model(x_in, QDepthwiseConv2D(2, name="odd", depthwise_quantizer=q.quantized_po2(4),
                                                      bias_quantizer=q.quantized_bits(5, 1, alpha=1))(x_in))
    else:
        model = build(q)
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(model)
    for word in ["'odd'", *words]:
        assert word in str(info.value), (word, str(info.value))


def test_po2_shift_truncation_is_emulated_and_declared():
    """hls4ml's weight_exponential shifts the input inside ap_fixed<2K,K>: with a 2-fraction-bit input a 2**-8
    weight drops bits. The emulator computes the hardware's words (floor of each product to 2^-K), the step is
    declared approximate with a bound, and exact steps stay exact."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras import quantizers as q

    from fkhls.emulate import emulator as emulate
    from fkhls.model.layers import po2

    x_in = tf.keras.Input(shape=(3,))
    h = QActivation(q.quantized_relu(2), name="r")(x_in)
    out = QDense(1, name="d", kernel_quantizer=q.quantized_po2(4, max_value=1), use_bias=False)(h)
    model = tf.keras.Model(x_in, out)
    model.get_layer("d").set_weights([np.array([[2.0**-8], [2.0**-2], [-(2.0**-7)]], dtype=np.float32)])
    spec = describe_model(model)
    step = spec.layer("d")
    assert "truncated" in step.approximate and "ap_fixed<12,6>" in step.approximate
    approx = layers.handler_for_kind("dense").approximation(step, spec.layer("r").result_type)
    assert approx.cause == "po2_shift" and approx.bound_lsb == 3 * 2.0 ** (step.result_type.fractional - 6)
    weights = emulate.golden_weights(model, spec)
    x = np.array([[0.75, 0.5, 0.75], [0.25, 0.0, 0.25]])
    raw = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x))
    # per product: floor(x * 2**e * 2**6) in r_T LSBs; a negative weight negates the floored shift
    lsb = 2.0 ** -6
    expected = [np.floor(0.75 * 2**-8 / lsb) + np.floor(0.5 * 2**-2 / lsb) - np.floor(0.75 * 2**-7 / lsb),
                np.floor(0.25 * 2**-8 / lsb) + 0 - np.floor(0.25 * 2**-7 / lsb)]
    got = raw.reshape(2) * 2.0 ** (6 - step.result_type.fractional)
    assert_array_equal(got, expected)
    assert po2.truncation(spec.layer("r").result_type, step.kernel.ptype, weights[("d", "kernel")][1:2]) == ""


def test_po2_arrays_are_refused_by_the_tf_way():
    """FKeras's flip is fixed-point arithmetic and QKeras re-quantizes an assigned value: the TF way refuses po2."""
    from qkeras import quantizers as q

    from fkhls.core.errors import FaultSpecError
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault

    model = _one_dense(q.quantized_po2(4), name="d")
    spec = describe_model(model)
    x = np.zeros((2, 4))
    with pytest.raises(FaultSpecError, match="quantized_po2 array.*exponent"):
        emulate.faulty_model_outputs(model, BitFault("d", "kernel", 0, 5), x, spec=spec, method="tf")
    with pytest.raises(FaultSpecError, match="quantized_po2 array"):
        emulate.quantize_and_bitflip(np.ones(4), q.quantized_po2(4), [])
    exact = emulate.faulty_model_outputs(model, BitFault("d", "kernel", 0, 5), x, spec=spec, method="exact")
    assert exact.shape == (2, 3)


def test_po2_single_bit_engine_equals_full_forward_between_fixed_layers():
    """A po2 Dense between two quantized_bits Dense layers: every single-bit fault of every tensor, through the
    batched engine (a po2 fault updates one output channel by its products), equals a full forward."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras import quantizers as q

    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault
    from tests.models import _spread_weights, grid_inputs

    tf.keras.utils.set_random_seed(3)
    bits = dict(bias_quantizer=q.quantized_bits(5, 0, alpha=1))
    x_in = tf.keras.Input(shape=(6,))
    h = QDense(5, name="a", kernel_quantizer=q.quantized_bits(5, 0, alpha=1), activation=q.quantized_relu(6, 2),
               **bits)(x_in)
    h = QDense(4, name="b", kernel_quantizer=q.quantized_po2(4), activation=q.quantized_relu(6, 2), **bits)(h)
    model = tf.keras.Model(x_in, QDense(3, name="c", kernel_quantizer=q.quantized_bits(5, 0, alpha=1), **bits)(h))
    _spread_weights(model, 3)
    spec = describe_model(model)
    weights = emulate.golden_weights(model, spec)
    x_raw = emulate.input_raw(spec, grid_inputs((6,), 30, seed=1))
    faults = [BitFault(t.layer, t.tensor, lbi, t.width) for t in spec.tensors() for lbi in range(t.n_bits)]
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    full = np.stack([emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [f]), x_raw) for f in faults])
    assert_array_equal(batched.reshape(full.shape), full)
    po2_faults = [k for k, f in enumerate(faults) if f.layer == "b" and f.tensor == "kernel"]
    golden = emulate.forward_raw(spec, weights, x_raw)
    assert (full[po2_faults] != golden).any(axis=(1, 2)).sum() > len(po2_faults) // 2
