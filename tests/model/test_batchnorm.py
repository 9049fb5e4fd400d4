"""Batch normalization as hls4ml 1.3.0 builds it: the words, the refusals, QBatchNormalization's quantizers and
hls4ml's fuse_batch_normalization kept off (the stages themselves run in test_layers.py's STAGE_MODELS)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cpp_type
from fkhls.model.layers.batchnorm import fitted_type, hls4ml_arrays, literal_words
from fkhls.model.spec import describe_model
from tests import models


def test_words_are_hls4ml_literals_truncated():
    """A literal with `fractional` decimals, parsed to a double, floored to the grid: also where rounding the
    decimal crosses a grid point (0.00006103 -> '0.00006' < 2**-14)."""
    ptype = FixedPrecisionType(16, 2, True)
    values = np.array([0.5, -0.5, 2.0**-14, 2.0**-14 - 1e-9, -1e-9, 1.99993896484375, 0.3], dtype=np.float32)
    words = literal_words(values, ptype)
    assert_array_equal(words[:5], [8192, -8192, 1, 0, -1])
    assert words[5] == 32767 and words[6] == int(np.floor(float(f"{float(np.float32(0.3)):.14f}") * 2**14))
    assert cpp_type(fitted_type(np.array([1.9, -0.5]), "s")) == "ap_fixed<16,2>"
    assert cpp_type(fitted_type(np.array([2.0, 0.1]), "s")) == "ap_fixed<16,3>"  # 2.0 needs 3 integer bits (signed)
    assert cpp_type(fitted_type(np.array([-2.0, 0.1]), "s")) == "ap_fixed<16,2>"
    with pytest.raises(UnsupportedModelError, match="do not fit a 16-bit word"):
        fitted_type(np.array([1e6]), "s")


def test_arrays_are_computed_as_hls4ml_does_and_refusals():
    import tensorflow as tf

    model = models.build("batchnorm")
    layer = model.get_layer("bn1")
    scale, bias = hls4ml_arrays(layer)
    gamma, beta, mean, var = layer.get_weights()
    assert scale.dtype == np.float32 and bias.dtype == np.float32
    assert_array_equal(scale, gamma / np.sqrt(var + np.float32(layer.epsilon)))
    assert_array_equal(bias, beta - scale * mean)
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(3, 4))
    h = tf.keras.layers.BatchNormalization(axis=1, name="bn_axis")(x_in)
    out = QDense(2, name="d", kernel_quantizer=q, bias_quantizer=q)(tf.keras.layers.Flatten(name="f")(h))
    with pytest.raises(UnsupportedModelError, match=r"'bn_axis'.*axis 1 is not supported.*axis=-1"):
        describe_model(tf.keras.Model(x_in, out))


def test_qbatchnorm_is_built_from_float_variables():
    """hls4ml 1.3.0 ignores QBatchNormalization's quantizers: the arrays come from the float variables, so QKeras
    (which computes with the quantized ones) can differ by far more than the words' rounding: measured, and said."""
    model = models.build("batchnorm")
    spec = describe_model(model)
    step = spec.layer("bn2")
    assert step.approximate.startswith("qbatchnorm: hls4ml 1.3.0 builds scale and bias from the float variables")
    assert "ap_fixed<16," in step.approximate
    assert spec.layer("bn1").approximate.startswith("float_batchnorm: a float scale and bias, rounded to ap_fixed<16,")
    from fkhls.emulate import emulator as emulate

    x = models.grid_inputs((4, 4, 1), 200, seed=5, fractional=3, scale=1.5)
    weights = emulate.golden_weights(model, spec)
    out = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x)) * 2.0 ** -spec.output_type.fractional
    keras = emulate.qkeras_forward(model, x)
    deviation = np.abs(out - keras).max()
    print(f"QBatchNormalization (QKeras default quantizers) vs hls4ml's float arrays: max |diff| {deviation:.4f}")
    assert deviation > 0.1  # not rounding: QKeras's po2 gamma/variance quantizers change the layer itself


def _bn_after_dense(use_bias: bool, center: bool):
    """QDense + a batch norm whose hls4ml scale is exactly 1 (gamma off, variance + epsilon == 1 in float32)."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4,), name="x")
    h = QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q if use_bias else None, use_bias=use_bias)(x_in)
    out = tf.keras.layers.BatchNormalization(name="bn", center=center, scale=False)(h)
    model = tf.keras.Model(x_in, out, name="unit_bn")
    models._spread_weights(model, 3)
    bn = model.get_layer("bn")
    beta = [np.array([0.5, -0.25, 0.125], np.float32)] if center else []
    bn.set_weights([*beta, np.zeros(3, np.float32), np.full(3, 1 - bn.epsilon, np.float32)])
    assert np.all(hls4ml_arrays(bn)[0] == 1)
    return model


def _hls4ml_classes(model, path) -> list[str]:
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado")
    converted = hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(path),
                                                           backend="Vivado")
    return [layer.class_name for layer in converted.get_layers()]


@pytest.mark.parametrize("use_bias, center", [(False, True), (True, False)])
def test_hls4ml_fuses_or_removes_a_unit_batchnorm_and_export_reproduces_it(use_bias, center, tmp_path):
    """(False, True): scale 1 after a QDense without a bias quantizer: hls4ml's fuse_batch_normalization folds the
    batch norm (its bias moves into the Dense) under the default config; export keeps it as its own layer.
    (True, False): scale 1 and bias 0: remove_nop_batch_normalization deletes it; fkhls's step is an identity with
    no arrays. Either way the C-sim equals the emulator word for word."""
    from fkhls.csim.build import run_csim
    from fkhls.emulate import emulator as emulate
    from fkhls.project.export import ExportOptions, export_model

    model = _bn_after_dense(use_bias, center)
    assert "BatchNormalization" not in _hls4ml_classes(model, tmp_path / "plain")  # hls4ml's own passes
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    record = manifest.layer("bn")
    if center:
        assert record.hls_class == "BatchNormalization" and record.kernel.tensor == "scale"
        assert ("bn", "bias") in spec.owners()
    else:
        assert record.hls_name is None and spec.layer("bn").tensors() == ()  # folded: nothing to fault
    x = models.grid_inputs((4,), 50, seed=1)
    expected = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(manifest, x), expected.reshape(len(x), -1))


def test_folded_conv_arrays_and_refusals():
    """QConv2DBatchnorm: the fault targets are QKeras's folded quantized arrays (not the variables), so the TF way
    refuses them; a folded bias without a quantizer is refused (QKeras would add it in float)."""
    import tensorflow as tf
    from qkeras import QConv2DBatchnorm
    from qkeras.quantizers import quantized_bits

    from fkhls.core.errors import FaultSpecError
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault
    from fkhls.model.spec import quantized_tensor

    model = models.build("convbn")
    spec = describe_model(model)
    layer = model.get_layer("cbn")
    weights = emulate.golden_weights(model, spec)
    kernel, bias = layer.get_folded_weights()
    assert_array_equal(weights[("cbn", "kernel")] * 2.0 ** -spec.tensor("cbn", "kernel").ptype.fractional,
                       layer.kernel_quantizer_internal(kernel).numpy())
    assert not np.array_equal(weights[("cbn", "kernel")] * 2.0 ** -spec.tensor("cbn", "kernel").ptype.fractional,
                              quantized_tensor(layer, "kernel"))  # the fold changes the words
    x = models.grid_inputs((4, 4, 2), 4, seed=3, fractional=3, scale=1.5)
    with pytest.raises(FaultSpecError, match="cbn.kernel is an array computed for the hardware.*QConv2DBatchnorm"):
        emulate.faulty_model_outputs(model, BitFault("cbn", "kernel", 0, 6), x, spec=spec, method="tf")
    x_in = tf.keras.Input(shape=(4, 4, 1))
    out = QConv2DBatchnorm(2, (3, 3), name="nob", kernel_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    with pytest.raises(UnsupportedModelError, match="'nob'.*folded bias has no quantizer"):
        describe_model(tf.keras.Model(x_in, tf.keras.layers.Flatten()(out)))
