"""Every stage for the second half of the stage models (graphs, batch norm, ApplyAlpha, depthwise/separable,
upsampling, permute, pointwise), and the convolution-family tests that use them.

The stage tests are test_layers.py's, collected here again with this module's ``shapes`` fixture
(pytest resolves a fixture from the module that collects the test): the split only lets
pytest-xdist's --dist loadfile run the two halves on both workers.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import to_raw
from fkhls.emulate import emulator as emulate
from fkhls.model import layers
from fkhls.model.spec import SUPPORTED_LAYERS, describe_model
from tests import models
from tests.model.test_layers import (  # noqa: F401  (collected again here, on this module's models)
    IO_STREAM_MODELS_MORE,
    STAGE_MODELS_MORE,
    _inputs,
    stage_fixture,
    test_batched_engine_equals_full_forward_on_every_fault,
    test_exact_forward_equals_qkeras_raw_words,
    test_exhaustive_campaign_both_engines_agree,
    test_export_types_read_back,
    test_golden_csim_and_trace_equal_the_emulator,
    test_verify_judges_every_layer,
)
from tests.model.test_layers import test_io_stream_golden_csim_equals_emulator as _io_stream_case


@pytest.fixture(scope="module", params=STAGE_MODELS_MORE)
def shapes(request, tmp_path_factory):
    return stage_fixture(request.param, tmp_path_factory)


@pytest.mark.parametrize("name", IO_STREAM_MODELS_MORE)
def test_io_stream_golden_csim_equals_emulator_more(name, tmp_path):
    _io_stream_case(name, tmp_path)


# ----------------------------------------------------------------------------- depthwise and separable convolutions


@pytest.mark.parametrize("shapes", ["separable"], indirect=True)
def test_separable_arrays_are_addressable_fault_targets(shapes):
    """The Keras layer's three arrays map to the two hls4ml layers' arrays; a fault in each changes its own step only."""
    from fkhls.faults.addressing import map_lbi
    from fkhls.faults.descriptors import BitFault

    model, spec, weights, x, manifest, _ = shapes
    records = {r.name: r for r in manifest.layers}
    dw, pw = records["sep_depthwise"], records["sep_pointwise"]
    assert (dw.hls_class, pw.hls_class) == ("DepthwiseConv2D", "PointwiseConv2D")
    assert (dw.kernel.tensor, dw.bias, pw.kernel.tensor, pw.bias.tensor) == ("depthwise_kernel", None,
                                                                             "pointwise_kernel", "bias")
    for tensor, array in (("depthwise_kernel", dw.kernel.array), ("pointwise_kernel", pw.kernel.array),
                          ("bias", pw.bias.array)):
        tspec = spec.tensor("sep", tensor)
        last = tspec.n_bits - 1
        hb = map_lbi(manifest, "sep", tensor, last)  # the LSB of the last word
        assert (hb.layer, hb.tensor, hb.array, hb.element, hb.array_bit) == ("sep", tensor, array, tspec.size - 1, 0)
    # The word between the two steps is the depthwise sum, exact: a depthwise fault changes it, a pointwise one does not.
    x_raw = emulate.input_raw(spec, x)
    _, golden = emulate.forward_raw(spec, weights, x_raw, trace=True)
    for tensor, changes_mid in (("depthwise_kernel", True), ("pointwise_kernel", False)):
        fault = BitFault("sep", tensor, 0, spec.tensor("sep", tensor).width)
        _, faulty = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw, trace=True)
        assert np.array_equal(faulty["sep_depthwise"], golden["sep_depthwise"]) != changes_mid, tensor
        assert not np.array_equal(faulty["sep_pointwise"], golden["sep_pointwise"]), tensor


@pytest.mark.parametrize("shapes", ["separable", "depthwise"], indirect=True)
def test_depthwise_faults_the_fkeras_way_equal_the_exact_engine(shapes):
    """The new arrays are Keras variables: written faulty into QKeras (FKeras's way), the outputs are the exact words."""
    from fkhls.faults.descriptors import BitFault

    model, spec, _, x, _, _ = shapes
    layer = spec.layers[1].keras_name
    for tensor in spec.tensors():
        if tensor.layer != layer:
            continue
        for lbi in (0, tensor.n_bits // 2, tensor.n_bits - 1):  # a sign bit, a middle bit, an LSB
            fault = BitFault(layer, tensor.tensor, lbi, tensor.width)
            exact = emulate.faulty_model_outputs(model, fault, x, spec=spec, method="exact")
            tf_way = emulate.faulty_model_outputs(model, fault, x, spec=spec, method="tf")
            assert_array_equal(to_raw(spec.output_type, tf_way.astype(np.float64), what="tf"),
                               to_raw(spec.output_type, exact, what="exact"), err_msg=str(fault))


def test_depthwise_refusals_say_what_hls4ml_builds():
    """depth_multiplier > 1 (hls4ml's kernels assert n_filt == n_chan) and dilation (hls4ml ignores it) are refused."""
    import tensorflow as tf
    from qkeras import QConv1D, QDepthwiseConv2D, QSeparableConv2D
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 0, alpha=1)
    x_in = tf.keras.Input(shape=(6, 6, 2))
    h = QDepthwiseConv2D((2, 2), depth_multiplier=2, name="dm", depthwise_quantizer=q, bias_quantizer=q)(x_in)
    h = QSeparableConv2D(2, (2, 2), dilation_rate=2, name="dil", depthwise_quantizer=q, pointwise_quantizer=q,
                         bias_quantizer=q)(h)
    h = tf.keras.layers.Reshape((-1, 2))(h)
    out = QConv1D(2, 2, dilation_rate=2, name="dil1", kernel_quantizer=q, bias_quantizer=q)(h)
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(tf.keras.Model(x_in, out))
    message = str(info.value)
    assert "3 problems" in message, message
    assert re.search(r"'dm'.*depth_multiplier=2.*hls4ml 1\.3\.0.*depth_multiplier=1", message)
    for name in ("dil", "dil1"):
        assert re.search(rf"'{name}'.*dilation_rate=.*hls4ml 1\.3\.0 does not build dilated convolutions.*"
                         r"use dilation_rate=1", message), name


def test_transposed_convolutions_are_refused_with_what_to_build_instead():
    """hls4ml 1.3.0 has no converter for Conv2DTranspose: refused (not listed as supported), pointing to UpSampling + conv."""
    import tensorflow as tf
    from qkeras import QConv2D
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 0, alpha=1)
    x_in = tf.keras.Input(shape=(3, 3, 1))
    h = QConv2D(2, (2, 2), name="c", kernel_quantizer=q, bias_quantizer=q)(x_in)
    out = tf.keras.layers.Conv2DTranspose(2, (2, 2), strides=2, name="deconv")(h)
    with pytest.raises(UnsupportedModelError, match=r"'deconv' \(Conv2DTranspose\): transposed convolutions are not "
                                                    r"supported: hls4ml 1\.3\.0 does not build them.*UpSampling2D"):
        describe_model(tf.keras.Model(x_in, out))
    assert "Conv2DTranspose" not in SUPPORTED_LAYERS and layers.handler_for_class("QConv2DTranspose") is not None


def test_depthwise_resource_io_parallel_is_refused(tmp_path):
    """hls4ml's io_parallel depthwise_conv_2d_cl asserts under the Resource strategy: export says so, writes nothing."""
    from fkhls.project.export import ExportOptions, export_model

    with pytest.raises(UnsupportedModelError, match=r"'dw1'.*no Resource strategy for depthwise.*Latency, or io_stream"):
        export_model(models.build("depthwise"), tmp_path / "prj", ExportOptions(strategy="Resource"))
    assert not (tmp_path / "prj").exists()


# ----------------------------------------------------------------------------- upsampling and permute


def test_nearest_index_map_is_keras_repeat_until_hls4ml_ratio_is_too_coarse():
    """hls4ml's io_parallel (i * ratio) >> 16 map repeats each row `factor` times for these sizes, not for huge ones."""
    from fkhls.model.layers.upsampling import nearest_rows

    for size in range(1, 40):
        for factor in (1, 2, 3, 5, 8):
            assert_array_equal(nearest_rows(size, size * factor), np.arange(size * factor) // factor, err_msg=(size, factor))
    assert not np.array_equal(nearest_rows(11000, 33000), np.arange(33000) // 3)


def test_upsampling_and_permute_refusals():
    """bilinear (no hls4ml kernel), a size hls4ml's ratio cannot repeat, and Permute -> Flatten -> Dense (hls4ml deletes
    the Permute and reorders the Dense weights) are refused, each saying what to do."""
    import tensorflow as tf
    from qkeras import QConv1D, QConv2D, QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 0, alpha=1)
    x_in = tf.keras.Input(shape=(3, 3, 1))
    h = QConv2D(2, (2, 2), name="c", kernel_quantizer=q, bias_quantizer=q)(x_in)
    h = tf.keras.layers.UpSampling2D(2, interpolation="bilinear", name="bil")(h)
    h = tf.keras.layers.Permute((3, 1, 2), name="perm")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="d", kernel_quantizer=q, bias_quantizer=q)(h)
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(tf.keras.Model(x_in, out))
    message = str(info.value)
    assert "2 problems" in message, message
    assert re.search(r"'bil'.*interpolation='bilinear'.*hls4ml 1\.3\.0.*use interpolation='nearest'", message)
    assert re.search(r"'perm'.*RemoveTransposeBeforeFlatten.*put a layer between", message)
    x_in = tf.keras.Input(shape=(11000, 1))
    h = tf.keras.layers.UpSampling1D(3, name="long")(QConv1D(1, 1, name="k", kernel_quantizer=q, bias_quantizer=q)(x_in))
    with pytest.raises(UnsupportedModelError, match=r"'long'.*would not repeat axis 0 \(size 11000, factor 3\)"):
        describe_model(tf.keras.Model(x_in, h))


def test_separable_resource_io_stream_campaign_and_addresses(tmp_path):
    """Resource + io_stream (hls4ml transposes the Conv arrays): golden C-sim exact, every separable bit agrees across
    engines (the element map is right), and the memory layout of these kernels is the one their Resource kernels'
    directives imply (proved by C-sim in tests/faults/test_addressing.py)."""
    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign
    from fkhls.csim.build import run_csim
    from fkhls.faults.addressing import address_map
    from fkhls.project.export import ExportOptions, export_model

    model = models.build("separable")
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions(io_type="io_stream", strategy="Resource",
                                                                   reuse_factor=2))
    x = _inputs(model, 16, seed=17)
    golden = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))
    amap = address_map(manifest)
    for tensor, function in (("depthwise_kernel", "depthwise_product_resource_"), ("pointwise_kernel", "dense_resource_")):
        layout = amap.layout("sep", tensor)
        assert layout.kind is not None and function in layout.source and layout.depth == 2, (tensor, layout)
    assert {r.kernel.order for r in manifest.layers if r.kernel is not None} == {"transposed"}
    np.save(tmp_path / "x.npy", x)
    config = CampaignConfig(manifest.project_dir, tmp_path / "x.npy", "both", Selection(mode="exhaustive", layers=("sep",)),
                            None, 256)
    run_campaign(config, tmp_path / "campaign", workers=1, quiet=True)
    summary = json.loads((tmp_path / "campaign" / "summary.json").read_text())
    assert summary["faults"] == sum(t.n_bits for t in spec.tensors() if t.layer == "sep")
    assert summary["scenarios_mismatching"] == 0 and summary["bit_exact"] == summary["outputs_compared"] > 0


@pytest.mark.parametrize("shapes", ["separable"], indirect=True)
def test_separable_through_crosscheck_rank_and_harden(shapes):
    """The commands a user runs after export take the separable arrays by their names: crosscheck (bit-exact
    on faults in each array), rank, harden and harden-verify."""
    from tests.entry import run_fkhls

    model, spec, _, x, manifest, base = shapes
    np.save(base / "xs.npy", x[:20])
    faults = {"seed": 1, "faults": [{"layer": "sep", "tensor": t.tensor, "regions": [[k, k, 1.0]]}
                                    for t in spec.tensors() if t.layer == "sep" for k in (0, t.n_bits - 1)]}
    (base / "faults.json").write_text(json.dumps(faults))
    project = manifest.project_dir
    proc = run_fkhls("crosscheck", project, "--faults", base / "faults.json", "--inputs", base / "xs.npy",
                     "--report", base / "cc")
    assert proc.returncode == 0 and "bit-exact: every scenario, every output word" in proc.stdout, proc.stderr
    assert run_fkhls("rank", project, "--method", "msb", "-o", base / "rank.csv").returncode == 0
    ranked = (base / "rank.csv").read_text()
    assert ",sep,depthwise_kernel," in ranked and ",sep,pointwise_kernel," in ranked
    proc = run_fkhls("harden", project, "--ranking", base / "rank.csv", "--budget", 40, "-o", base / "hard")
    assert proc.returncode == 0, proc.stderr
    protected = {a["tensor"] for a in json.loads((base / "hard" / "fkhls.json").read_text())["hardening"]["arrays"]}
    assert {"depthwise_kernel", "pointwise_kernel"} <= protected, protected
    proc = run_fkhls("harden-verify", base / "hard", "--inputs", base / "xs.npy")
    assert proc.returncode == 0 and "0 output words changed" in proc.stdout, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- quantized_po2 kernels


@pytest.mark.parametrize("shapes", ["dense_po2"], indirect=True)
def test_po2_faults_injected_in_hls4ml_exponent_format_equal_the_emulator(shapes):
    """A sign-field flip, an exponent-MSB flip and an exponent-LSB flip, written by ``inject`` as hls4ml's
    {sign, exponent} literals: the faulty project's words read back flipped, and its C-sim equals the emulator."""
    from fkhls.csim.build import run_csim
    from fkhls.csim.inject import inject
    from fkhls.faults.descriptors import BitFault
    from fkhls.project.manifest import load_manifest
    from fkhls.project.weights import read_array_words, read_header_words

    _, spec, weights, x, manifest, base = shapes
    width = spec.tensor("p1", "kernel").width
    assert width == 5  # quantized_po2(4): sign field + 4 exponent bits
    lbis = [0, width + 1, 3 * width + 4]  # weight 0's sign, weight 1's exponent MSB, weight 3's exponent LSB
    document = {"faults": [{"layer": "p1", "tensor": "kernel", "bits": lbis}, {"layer": "p2", "tensor": "kernel",
                                                                               "bits": [2]}]}
    result = inject(manifest.project_dir, document, base / "faulty_po2")
    faulty_manifest = load_manifest(result.project_dir)
    faults = [BitFault("p1", "kernel", lbi, width) for lbi in lbis] + [BitFault("p2", "kernel", 2, width)]
    flipped = emulate.apply_faults(spec, weights, faults)
    for record in faulty_manifest.arrays():
        expected = flipped[(record.owner, record.tensor)].ravel()
        assert_array_equal(read_array_words(faulty_manifest.project_dir, record), expected, err_msg=record.array)
        assert_array_equal(read_header_words(faulty_manifest.project_dir, record)[0], expected, err_msg=record.array)
    golden = weights[("p1", "kernel")].ravel()
    assert (flipped[("p1", "kernel")].ravel() != golden).sum() == 3
    x_raw = emulate.input_raw(spec, x)
    expected_out = emulate.forward_raw(spec, flipped, x_raw).reshape(len(x), -1)
    assert not np.array_equal(expected_out, emulate.forward_raw(spec, weights, x_raw).reshape(len(x), -1))
    assert_array_equal(run_csim(faulty_manifest, x), expected_out)


def test_po2_resource_strategy_transposes_structs_and_gives_no_memory_bit(tmp_path):
    """Under Resource strategy hls4ml transposes the exponent structs like any kernel (C-sim == emulator); the
    struct's packing into a memory word is not in the sources, so the address map names the element, not a word."""
    from fkhls.csim.build import run_csim
    from fkhls.faults.addressing import map_lbi
    from fkhls.project.export import ExportOptions, export_model

    model = models.build("dense_po2")
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions(strategy="Resource", reuse_factor=2))
    assert [r.order for r in manifest.arrays()] == ["transposed", "keras", "transposed", "keras"]
    x = _inputs(model, 40, seed=11)
    golden = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))
    hb = map_lbi(manifest, "p1", "kernel", 7)  # Keras weight (0, 1), exponent bit 2 -> (out, in) element 1*8 + 0
    assert (hb.element, hb.array_bit, hb.memory_word, hb.memory_bit) == (8, 2, None, None)
    assert "struct" in hb.note


def test_po2_shift_wrap_under_faults_equals_csim(tmp_path):
    """An integer input (ap_ufixed<2,2>) shifted by a faulty exponent up to +7 leaves weight_exponential's
    ap_fixed<12,6> and wraps; every single-bit kernel fault, C-simulated, equals the emulator word for word."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_po2, quantized_relu

    from fkhls.csim.build import input_words
    from fkhls.csim.harness import run_fault_harness
    from fkhls.faults.addressing import map_lbi
    from fkhls.faults.descriptors import BitFault
    from fkhls.project.export import ExportOptions, export_model

    tf.keras.utils.set_random_seed(5)
    x_in = tf.keras.Input(shape=(4,))
    h = QActivation(quantized_relu(2, 2), name="r")(x_in)
    out = QDense(3, name="d", kernel_quantizer=quantized_po2(4), bias_quantizer=quantized_bits(6, 3, alpha=1))(h)
    model = tf.keras.Model(x_in, out)
    spec = describe_model(model)
    assert not spec.layer("d").approximate  # golden exponents -4..3 on integers: no bit lost
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    x = np.array([[3, 2, 1, 0], [1, 3, 3, 2], [2, 0, 3, 1]], dtype=np.float64)
    weights = emulate.golden_weights(model, spec)
    x_raw = emulate.input_raw(spec, x)
    tspec = spec.tensor("d", "kernel")
    faults = [BitFault("d", "kernel", lbi, tspec.width) for lbi in range(tspec.n_bits)]
    expected = np.stack([emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [f]), x_raw) for f in faults])
    scenarios = [[(hb.array, hb.element, hb.array_bit)] for hb in (map_lbi(manifest, "d", "kernel", f.lbi)
                                                                   for f in faults)]
    got = run_fault_harness(manifest, input_words(manifest, x), scenarios)
    assert_array_equal(got, expected.reshape(got.shape))
    # some fault does wrap: the emulator's word differs from the unbounded x * 2**e sum
    from fkhls.core.fixedpoint import from_raw
    ideal = [x @ from_raw(tspec.ptype, emulate.apply_faults(spec, weights, [f])[("d", "kernel")])
             + from_raw(spec.tensor("d", "bias").ptype, weights[("d", "bias")]) for f in faults]
    values = expected.reshape(len(faults), len(x), -1) * 2.0 ** -spec.layer("d").result_type.fractional
    assert np.any(np.asarray(ideal) != values)
