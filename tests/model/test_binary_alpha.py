"""binary() / ternary() kernels as QKeras builds them by default (alpha=None -> 'auto_po2' in a layer): hls4ml 1.3.0
keeps the +-1 (0) words in the Dense/Conv and an ApplyAlpha step with the per-channel power-of-two scale. The stages
run in test_layers.py's STAGE_MODELS_MORE as "binary_po2" and "binary_po2_conv"; here the words, a C-simulated fault
in each new array, and the refusals where hls4ml's build cannot equal QKeras."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import FaultSpecError, UnsupportedModelError
from fkhls.core.fixedpoint import cpp_type, to_raw
from fkhls.model.spec import describe_model
from tests import models

# (model, weighted layer, kernel quantizer class, the words its kernel may hold)
LAYERS = [("binary_po2", "bin", "binary", {-1, 1}), ("binary_po2", "ter", "ternary", {-1, 0, 1}),
          ("binary_po2_conv", "c2", "binary", {-1, 1}), ("binary_po2_conv", "c1", "ternary", {-1, 0, 1})]


@pytest.fixture(scope="module")
def built():
    from fkhls.emulate import emulator as emulate

    out = {}
    for name in ("binary_po2", "binary_po2_conv"):
        model = models.build(name)
        spec = describe_model(model)
        out[name] = model, spec, emulate.golden_weights(model, spec)
    return out


@pytest.mark.parametrize("name, layer_name, quantizer, words", LAYERS)
def test_default_kernel_alpha_is_factorized_into_apply_alpha(built, name, layer_name, quantizer, words):
    """The layer's kernel quantizer is QKeras's alpha='auto_po2'; the Dense/Conv keeps QKeras's kernel divided by its
    per-channel scale as ap_fixed<2,2> words, a zero bias, and the ApplyAlpha step holds the scale and the bias."""
    from fkhls.model.layers.alpha import kernel_scale
    from fkhls.model.spec import quantized_tensor

    model, spec, weights = built[name]
    layer = model.get_layer(layer_name)
    q = layer.kernel_quantizer_internal
    assert (q.__class__.__name__, q.alpha) == (quantizer, "auto_po2")  # QKeras's _set_trainable_parameter
    names = [s.name for s in spec.layers]
    assert names[names.index(layer_name) + 1] == f"{layer_name}_alpha"
    step, alpha = spec.layer(layer_name), spec.layer(f"{layer_name}_alpha")
    assert (alpha.kind, alpha.kernel.tensor, alpha.bias.tensor) == ("apply_alpha", "scale", "bias")
    assert cpp_type(step.kernel.ptype) == "ap_fixed<2,2>"
    quantized, scale = kernel_scale(layer)
    assert len(set(scale.tolist())) > 1  # the builder spreads the channels: several scales
    kernel = weights[(layer_name, "kernel")]
    assert set(np.unique(kernel).tolist()) <= words
    assert_array_equal(kernel, to_raw(step.kernel.ptype, quantized / scale, "QKeras kernel / scale"))
    assert_array_equal(weights[(layer_name, "bias")], 0)
    assert_array_equal(weights[(alpha.name, "scale")], to_raw(alpha.kernel.ptype, scale, "scale"))
    assert_array_equal(weights[(alpha.name, "bias")],
                       to_raw(alpha.bias.ptype, quantized_tensor(layer, "bias").reshape(-1), "bias"))


def test_tf_way_refuses_the_factorized_kernel(built):
    """The Dense's words are QKeras's kernel divided by the scale: not assignable to the Keras variable."""
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.descriptors import BitFault

    model, spec, _ = built["binary_po2"]
    x = models.grid_inputs((6,), 4, seed=3, fractional=3, scale=1.5)
    with pytest.raises(FaultSpecError, match="bin.kernel is an array computed for the hardware.*auto_po2"):
        emulate.faulty_model_outputs(model, BitFault("bin", "kernel", 0, 1), x, spec=spec, method="tf")


@pytest.fixture(scope="module")
def project(built, tmp_path_factory):
    from fkhls.project.export import ExportOptions, export_model

    return export_model(built["binary_po2"][0], tmp_path_factory.mktemp("binary_po2") / "prj", ExportOptions())


def test_project_multiplies_plainly_and_faults_in_kernel_and_scale_csim_equal_emulator(built, project, tmp_path):
    """hls4ml's xnor (weight_binary) and weight_ternary products are replaced by the plain multiply, so a flipped
    kernel bit makes -1 (0b11) the word -2 (0b10) and a flipped scale bit another power-of-two sum: injected and
    C-simulated, both equal the emulator word for word."""
    from fkhls.csim.build import run_csim
    from fkhls.csim.inject import inject
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.addressing import address_map, spec_from_manifest
    from fkhls.faults.descriptors import load_fault_set
    from fkhls.project.manifest import load_manifest

    _, spec, weights = built["binary_po2"]
    params = (project.project_dir / "firmware" / "parameters.h").read_text()
    assert "weight_binary" not in params and "weight_ternary" not in params
    for name in ("bin", "ter"):
        assert project.layer(name).kernel.array  # the kernel is a fault target of the project
    kernel = weights[("bin", "kernel")].reshape(-1)
    element = int(np.flatnonzero(kernel == -1)[0])
    scale = project.layer("ter_alpha").kernel
    amap = address_map(project)
    assert amap.map_lbi("bin", "kernel", 2 * element + 1).element == element  # FKeras lbi: MSB first, 2-bit words
    source = {"faults": [{"layer": "bin", "tensor": "kernel", "bits": [2 * element + 1]},
                         {"array": scale.array, "bits": [spec.layer("ter_alpha").kernel.ptype.width - 1]}]}
    # two scenarios (one per entry); inject flips every fault of the file in one copy
    faults = [f for scenario in load_fault_set(source, spec_from_manifest(project)).scenarios for f in scenario.faults]
    faulty = emulate.apply_faults(spec, weights, faults)
    assert faulty[("bin", "kernel")].reshape(-1)[element] == -2
    assert not np.array_equal(faulty[("ter_alpha", "scale")], weights[("ter_alpha", "scale")])
    result = inject(project.project_dir, source, tmp_path / "faulty")
    x = models.grid_inputs((6,), 40, seed=4, fractional=3, scale=1.5)
    expected = emulate.forward_raw(spec, faulty, emulate.input_raw(spec, x))
    golden = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x))
    assert not np.array_equal(expected, golden)
    assert_array_equal(run_csim(load_manifest(result.project_dir), x), expected.reshape(len(x), -1))


def _model(make_layer, shape):
    import tensorflow as tf

    x_in = tf.keras.Input(shape=shape)
    return tf.keras.Model(x_in, tf.keras.layers.Flatten()(make_layer()(x_in)))


@pytest.mark.parametrize("which, words", [
    ("depthwise", ["'dw'", "depthwise_quantizer", "binary(alpha='auto_po2') is supported only on a QDense, QConv1D or "
                   "QConv2D kernel", "give alpha=1 explicitly"]),
    ("conv_batchnorm", ["'cbn'", "kernel_quantizer", "ternary(alpha='auto_po2') is supported only on"]),
    ("auto", ["'auto'", "ternary(alpha='auto') is not supported", "least-squares", "use alpha='auto_po2'"]),
])
def test_default_alpha_where_hls4ml_keeps_no_scale_is_refused(which, words):
    """hls4ml 1.3.0's qkeras_factorize_alpha skips DepthwiseConv2D (and fkhls does not fold a scale into a
    QConv2DBatchnorm): the scale would be lost; alpha='auto' has a float scale no fixed-point type holds."""
    from qkeras import QConv2DBatchnorm, QDense, QDepthwiseConv2D
    from qkeras.quantizers import binary, quantized_bits, ternary

    b = quantized_bits(5, 1, alpha=1)
    make = {"depthwise": (lambda: QDepthwiseConv2D(3, name="dw", depthwise_quantizer=binary(), bias_quantizer=b),
                          (5, 5, 2)),
            "conv_batchnorm": (lambda: QConv2DBatchnorm(2, 3, name="cbn", kernel_quantizer=ternary(),
                                                        bias_quantizer=b), (5, 5, 2)),
            "auto": (lambda: QDense(3, name="d", kernel_quantizer=ternary(alpha="auto"), bias_quantizer=b), (4,))}
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(_model(*make[which]))
    for word in words:
        assert word in str(info.value), (word, str(info.value))
