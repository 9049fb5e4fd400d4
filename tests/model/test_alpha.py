"""alpha='auto_po2' on a QDense: hls4ml 1.3.0's factorized kernel and ApplyAlpha step (the stages themselves run in
test_layers.py's STAGE_MODELS as "alpha")."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import FaultSpecError, UnsupportedModelError
from fkhls.core.fixedpoint import cpp_type
from fkhls.model.spec import describe_model
from tests import models


@pytest.fixture(scope="module")
def alpha():
    from fkhls.emulate import emulator as emulate

    model = models.build("alpha")
    spec = describe_model(model)
    return model, spec, emulate.golden_weights(model, spec)


def test_steps_words_and_scale(alpha):
    """The Dense keeps QKeras's kernel divided by its per-channel scale (alpha=1 words) and a zero bias; the
    ApplyAlpha step holds the scale (ap_ufixed, exact powers of two) and the quantized bias."""
    from fkhls.model.layers.alpha import kernel_scale
    from fkhls.model.spec import quantized_tensor

    model, spec, weights = alpha
    assert [(s.name, s.kind) for s in spec.layers] == [
        ("x", "input"), ("d1", "dense"), ("d1_alpha", "apply_alpha"), ("r1", "activation"), ("d2", "dense"),
        ("d2_alpha", "apply_alpha")]
    layer = model.get_layer("d1")
    quantized, scale = kernel_scale(layer)
    assert_array_equal(scale, [1.0, 0.25, 0.125, 2.0])  # what QKeras chose for this kernel
    step, alpha_step = spec.layer("d1"), spec.layer("d1_alpha")
    assert cpp_type(step.kernel.ptype) == "ap_fixed<5,1>" and cpp_type(alpha_step.kernel.ptype) == "ap_ufixed<5,2>"
    kernel = weights[("d1", "kernel")] * 2.0 ** -step.kernel.ptype.fractional
    assert_array_equal(kernel * scale, quantized)  # words x scale = QKeras's quantized kernel
    assert np.all(np.abs(weights[("d1", "kernel")]) <= 15)  # symmetric: never the type's -16
    assert_array_equal(weights[("d1", "bias")], 0)  # hls4ml moves the bias to ApplyAlpha
    assert_array_equal(weights[("d1_alpha", "scale")] * 2.0 ** -alpha_step.kernel.ptype.fractional, scale)
    assert_array_equal(weights[("d1_alpha", "bias")] * 2.0 ** -alpha_step.bias.ptype.fractional,
                       quantized_tensor(layer, "bias"))
    assert not alpha_step.approximate and not step.approximate  # a power-of-two scale: exact


def test_tf_way_refuses_factorized_arrays(alpha):
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault

    model, spec, _ = alpha
    x = models.grid_inputs((6,), 4, seed=3, fractional=3, scale=1.5)
    for fault in (BitFault("d1", "kernel", 0, 5), BitFault("d1_alpha", "scale", 0, 5)):
        with pytest.raises(FaultSpecError, match=f"{fault.layer}.{fault.tensor} is an array computed for the hardware.*auto_po2"):
            emulate.faulty_model_outputs(model, fault, x, spec=spec, method="tf")
    assert emulate.faulty_model_outputs(model, BitFault("d1_alpha", "scale", 0, 5), x, spec=spec).shape == (4, 3)


def test_alpha_refusals():
    """Per-channel alpha given as an array (hls4ml 1.3.0 cannot convert it) and auto_po2 on a depthwise convolution
    (hls4ml's qkeras_factorize_alpha handles Dense/Conv1D/Conv2D only; tests/model/test_binary_alpha.py has those)."""
    import tensorflow as tf
    from qkeras import QDense, QDepthwiseConv2D
    from qkeras.quantizers import quantized_bits

    b = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(3,))
    out = QDense(3, name="arr", kernel_quantizer=quantized_bits(5, 0, alpha=np.array([0.5, 1.0, 2.0])),
                 bias_quantizer=b)(x_in)
    with pytest.raises(UnsupportedModelError, match=r"'arr'.*alpha given per channel as an array.*auto_po2"):
        describe_model(tf.keras.Model(x_in, out))
    x_in = tf.keras.Input(shape=(5, 5, 2))
    h = QDepthwiseConv2D(3, name="conv", depthwise_quantizer=quantized_bits(5, 0, alpha="auto_po2"),
                         bias_quantizer=b)(x_in)
    with pytest.raises(UnsupportedModelError, match=r"'conv'.*auto_po2.*only on a QDense, QConv1D or QConv2D"):
        describe_model(tf.keras.Model(x_in, tf.keras.layers.Flatten()(h)))


@pytest.fixture(scope="module")
def alpha_project(alpha, tmp_path_factory):
    from fkhls.project.export import ExportOptions, export_model

    return export_model(alpha[0], tmp_path_factory.mktemp("alpha") / "prj", ExportOptions())


def test_project_names_alpha_tensors_as_the_model_does(alpha, alpha_project):
    """Regression (found by scripts/try_unseen_models.py): a project keyed every tensor by its Keras layer, so the
    ApplyAlpha's bias replaced the Dense's zero bias in the address map ({"layer": "d1", "tensor": "bias"} hit the
    alpha bias) and {"layer": "d1_alpha"} was refused by faultmap, campaign and crosscheck. A project names each
    tensor as the model spec does (the step for an ApplyAlpha), and every array maps back to itself."""
    from fkhls.faults.addressing import address_map, spec_from_manifest
    from fkhls.faults.descriptors import exhaustive_faults, load_fault_set

    _, spec, _ = alpha
    manifest = alpha_project
    from_project = spec_from_manifest(manifest)
    assert [(t.layer, t.tensor) for t in from_project.tensors()] == [(t.layer, t.tensor) for t in spec.tensors()]
    amap = address_map(manifest)
    for step in manifest.weighted_layers:
        for record in step.arrays():
            assert amap.map_lbi(record.owner_of(step), record.tensor, 0).array == record.array
    dense_bias, alpha_bias = manifest.layer("d1").bias.array, manifest.layer("d1_alpha").bias.array
    assert dense_bias != alpha_bias
    source = {"faults": [{"layer": "d1", "tensor": "bias", "bits": [1]},
                         {"layer": "d1_alpha", "tensor": "bias", "bits": [1]}]}
    scenarios = load_fault_set(source, from_project).scenarios
    assert [amap.map_faults(s.faults)[0].array for s in scenarios] == [dense_bias, alpha_bias]
    chosen = {(f.layer, f.tensor) for f in exhaustive_faults(from_project, layers=["d1_alpha"])}
    assert chosen == {("d1_alpha", "scale"), ("d1_alpha", "bias")}


def test_scale_fault_by_array_name(alpha, alpha_project, tmp_path):
    """The ApplyAlpha scale is addressable by its array name; C-sim with the flipped word equals the emulator."""
    from fkhls.csim.build import run_csim
    from fkhls.csim.inject import inject
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.addressing import address_map, spec_from_manifest
    from fkhls.faults.descriptors import load_fault_set
    from fkhls.project.manifest import load_manifest

    model, spec, weights = alpha
    manifest = alpha_project
    record = manifest.layer("d1_alpha")
    assert (record.hls_class, record.kernel.tensor, record.keras_name) == ("ApplyAlpha", "scale", "d1")
    hbit = address_map(manifest).map_lbi("d1_alpha", "scale", 4)
    assert (hbit.array, hbit.element, hbit.array_bit, hbit.memory) == (record.kernel.array, 0, 0, None)
    source = {"faults": [{"array": record.kernel.array, "bits": [5 + 2]}]}  # word 1 (0.25 = 0b00001): bit 2 -> 1.25
    faults = load_fault_set(source, spec_from_manifest(manifest)).scenarios[0].faults
    result = inject(manifest.project_dir, source, tmp_path / "faulty")
    x = models.grid_inputs((6,), 40, seed=4, fractional=3, scale=1.5)
    expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, faults), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(load_manifest(result.project_dir), x), expected.reshape(len(x), -1))
