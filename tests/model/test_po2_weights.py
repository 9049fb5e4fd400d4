"""quantized_relu_po2 weights as exact fixed-point words, quantized_po2 kernels in convolutions, and their refusals.

Measured with hls4ml 1.3.0 (Vivado, io_parallel Latency and io_stream): a QConv1D/QConv2D with quantized_po2 kernels
converts and compiles with ``nnet::product::weight_exponential`` and {sign, exponent} struct weights, its predict
equal to QKeras on 50 inputs; a quantized_relu_po2 kernel gets hls4ml's "Unsupported quantizer" fallback
ap_fixed<16,6>, which wraps relu_po2(4)'s 2**5..2**7. The stage model ``po2_conv`` runs every stage.
"""

from __future__ import annotations

import numpy as np
import pytest

from fkhls.core.errors import FaultSpecError, UnsupportedModelError
from fkhls.core.fixedpoint import cpp_type, from_raw, quantizer_type, to_raw
from fkhls.model.spec import describe_model


def _quantizer(text: str):
    from qkeras.quantizers import get_quantizer

    return get_quantizer(text)


def _config(quantizer) -> dict:
    return {"class_name": quantizer.__class__.__name__, "config": quantizer.get_config()}


@pytest.mark.parametrize("text, expected", [
    ("quantized_relu_po2(3)", "ap_ufixed<8,4>"),  # exponents -4..3
    ("quantized_relu_po2(3, max_value=2)", "ap_ufixed<6,2>"),  # -4..1
    ("quantized_relu_po2(3, max_value=1)", "ap_ufixed<9,1>"),  # no exponent sign bit: -8..0
    ("quantized_relu_po2(4, negative_slope=0.25)", "ap_fixed<17,9>"),  # +-2**(-8..7)
    ("quantized_relu_po2(2, quadratic_approximation=True)", "ap_ufixed<5,1>"),  # even exponents -4..0
    ("quantized_relu_po2(3, log2_rounding='floor')", "ap_ufixed<8,4>"),
])
def test_relu_po2_weight_type_holds_every_qkeras_output_and_no_more(text, expected):
    """Every value QKeras outputs (weights from -1e6 to 1e6, zero included: QKeras never outputs 0) is a word of the
    type, and the type is the narrowest: its LSB and its top magnitude bit are both outputs."""
    import tensorflow as tf

    quantizer = _quantizer(text)
    ptype = quantizer_type(_config(quantizer), where="w")
    assert cpp_type(ptype) == expected
    mags = np.geomspace(1e-9, 1e6, 4001)
    x = np.concatenate([-mags[::-1], [0.0], mags]).astype(np.float32)
    values = quantizer(tf.constant(x)).numpy().astype(np.float64)
    raw = to_raw(ptype, values, what=text)  # raises if any output is off the type's grid or out of its range
    np.testing.assert_array_equal(from_raw(ptype, raw), values)
    lsb, top = 2.0 ** -ptype.fractional, 2.0 ** (ptype.integer - 1 - ptype.signed)
    assert np.abs(values).min() == lsb and np.abs(values).max() == top
    assert (values < 0).any() == ptype.signed


@pytest.mark.parametrize("text, words", [
    ("quantized_relu_po2(6)", ["quantized_relu_po2(6) weights", "2**-32 .. 2**31", "64 bits", "ap_fixed<16,6>",
                               "quantized_po2(bits)"]),
    ("quantized_relu_po2(5, max_value=1)", ["2**-32 .. 2**0", "33 bits"]),  # fits: no refusal expected below
    ("quantized_relu_po2(4, qnoise_factor=0.5)", ["qnoise_factor=0.5", "not powers of two"]),
])
def test_relu_po2_refusals_name_layer_reason_and_way_out(text, words):
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    x_in = tf.keras.Input(shape=(4,))
    model = tf.keras.Model(x_in, QDense(3, name="odd", kernel_quantizer=_quantizer(text),
                                        bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in))
    if "33 bits" in words:  # 33 bits <= 62: supported, the type spans the whole exponent range
        assert cpp_type(describe_model(model).tensor("odd", "kernel").ptype) == "ap_ufixed<33,1>"
        return
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(model)
    for word in ["'odd'", "kernel_quantizer", *words]:
        assert word in str(info.value), (word, str(info.value))


def test_relu_po2_arrays_are_refused_by_the_tf_way_because_qkeras_requantizes():
    """The hardware word is fixed point, so a flip makes a value that is not a power of two; QKeras re-quantizes the
    assigned variable to a power of two on every call (measured here), so FKeras's way cannot compute the fault."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits, quantized_relu_po2

    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault

    x_in = tf.keras.Input(shape=(4,))
    model = tf.keras.Model(x_in, QDense(3, name="d", kernel_quantizer=quantized_relu_po2(3),
                                        bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in))
    spec = describe_model(model)
    layer = model.get_layer("d")
    layer.kernel.assign(np.full((4, 3), 0.25, dtype=np.float32))
    weights = emulate.golden_weights(model, spec)
    width = spec.tensor("d", "kernel").width
    fault = BitFault("d", "kernel", width - 1, width)  # weight 0's LSB: 0.25 + 2**-4, not a power of two
    faulty = from_raw(spec.tensor("d", "kernel").ptype, emulate.apply_faults(spec, weights, [fault])[("d", "kernel")])
    assert faulty.ravel()[0] == 0.3125
    requantized = layer.kernel_quantizer_internal(tf.constant(faulty, dtype=tf.float32)).numpy()
    assert requantized.ravel()[0] == 0.25  # what QKeras would compute with: the fault vanishes
    x = np.ones((2, 4))
    with pytest.raises(FaultSpecError, match="quantized_relu_po2 array.*re-quantizes"):
        emulate.faulty_model_outputs(model, fault, x, spec=spec, method="tf")
    exact = emulate.faulty_model_outputs(model, fault, x, spec=spec, method="exact")
    golden = from_raw(spec.output_type, emulate.forward_raw(spec, weights, emulate.input_raw(spec, x)))
    np.testing.assert_array_equal(exact[:, 0] - golden[:, 0], [2.0 ** -4] * 2)  # the hardware sees 0.3125


@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
def test_po2_conv_kernels_are_exponent_structs_with_the_shift_product(kind):
    """QConv1D/QConv2D quantized_po2 kernels: Po2Type words and po2's product/accumulator types, exact and not
    truncating for a wide enough input (the stage model checks the words against QKeras and the C-sim)."""
    import tensorflow as tf
    from qkeras import QConv1D, QConv2D
    from qkeras.quantizers import quantized_bits, quantized_po2

    from fkhls.core.fixedpoint import is_po2
    from fkhls.model.layers import po2

    shape, layer = (((6, 2), QConv1D(2, 3, name="c", kernel_quantizer=quantized_po2(4),
                                     bias_quantizer=quantized_bits(5, 1, alpha=1))) if kind == "conv1d" else
                    ((4, 4, 2), QConv2D(2, (2, 2), name="c", kernel_quantizer=quantized_po2(4),
                                        bias_quantizer=quantized_bits(5, 1, alpha=1))))
    x_in = tf.keras.Input(shape=shape)
    spec = describe_model(tf.keras.Model(x_in, layer(x_in)))
    step = spec.layer("c")
    assert step.kind == kind and is_po2(step.kernel.ptype) and step.approximate == ""
    r_type = po2.product_type(spec.input_type, step.kernel.ptype)
    assert step.accum_type.fractional == r_type.fractional


def test_po2_kernels_stay_refused_in_folded_and_depthwise_layers():
    """A folded QConv2DBatchnorm and a QDepthwiseConv2D with (relu_)po2 kernels are refused, naming the layer."""
    import tensorflow as tf
    from qkeras import QConv2DBatchnorm, QDepthwiseConv2D
    from qkeras.quantizers import quantized_bits, quantized_po2, quantized_relu_po2

    x_in = tf.keras.Input(shape=(4, 4, 2))
    folded = tf.keras.Model(x_in, QConv2DBatchnorm(2, (2, 2), name="fold", kernel_quantizer=quantized_po2(4),
                                                   bias_quantizer=quantized_bits(8, 3, alpha=1))(x_in))
    depthwise = tf.keras.Model(x_in, QDepthwiseConv2D(2, name="dw", depthwise_quantizer=quantized_relu_po2(3),
                                                      bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in))
    for model, words in ((folded, ["'fold'", "quantized_po2 kernels", "folded batch-normalized", "quantized_bits"]),
                         (depthwise, ["'dw'", "quantized_relu_po2 weights", "QDense, QConv1D and QConv2D only"])):
        with pytest.raises(UnsupportedModelError) as info:
            describe_model(model)
        for word in words:
            assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("text, words", [
    ("{1.0, -3}, {0.0, 2}, 7", ["not a po2 literal", "'7'"]),  # a plain number among the structs
    ("{1.0, -3}, {2.0, 1}", ["not a po2 literal", "2.0"]),  # a sign field that is neither 0 nor 1
    ("{1.0, -3}, {1.0; 1}", ["not a po2 literal"]),  # damaged punctuation
])
def test_damaged_po2_weight_files_are_refused_naming_the_file(tmp_path, text, words):
    """A po2 .txt is {sign, exponent} literals and nothing else: damaged text is refused before C-sim loads it."""
    from fkhls.core.errors import ProjectError
    from fkhls.core.fixedpoint import Po2Type
    from fkhls.project.weights import read_txt_values

    path = tmp_path / "w2.txt"
    path.write_text(text + "\n")
    good = tmp_path / "w1.txt"
    good.write_text("{1.0, -3}, {0.0, 2}\n")
    assert read_txt_values(good, Po2Type(4)).tolist() == [0.125, -4.0]
    with pytest.raises(ProjectError) as info:
        read_txt_values(path, Po2Type(4))
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_po2_words_outside_the_exponent_range_are_off_grid():
    """An exponent the struct's ap_int cannot hold (or a zero, which po2 has none of) is refused by to_raw."""
    from fkhls.core.errors import OffGridError
    from fkhls.core.fixedpoint import Po2Type

    ptype = Po2Type(4)  # exponents -8 .. 7
    assert from_raw(ptype, to_raw(ptype, np.array([2.0**-8, -(2.0**7)]), what="w")).tolist() == [2.0**-8, -(2.0**7)]
    for bad in (2.0**8, 2.0**-9, 0.0, 0.75):
        with pytest.raises(OffGridError, match=r"^w\["):
            to_raw(ptype, np.array([bad]), what="w")
