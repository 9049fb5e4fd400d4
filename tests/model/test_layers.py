"""Layer handlers (issue 10): the registry, one error for every blocker, and each new kind through every stage.

A kind counts as supported when, on a small model containing it: export types it and reads the
types back from the project; the exact emulator equals QKeras's raw words (where the layer is
exact by nature) and the batched single-bit engine equals the full forward on every fault; the
golden C-sim (and its layer-by-layer trace) equals the emulator word for word; and an
exhaustive campaign agrees word for word across the TF and C-sim engines.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import cpp_type, to_raw
from fkhls.emulate import emulator as emulate
from fkhls.faults.descriptors import exhaustive_faults
from fkhls.model import layers
from fkhls.model.spec import SUPPORTED_LAYERS, describe_model
from tests import models


def _inputs(model, n: int, seed: int) -> np.ndarray:
    """Three fractional bits keep QKeras's float32 sums exact for these wide unquantized-relu types."""
    return models.grid_inputs(tuple(int(d) for d in model.inputs[0].shape[1:]), n, seed, fractional=3, scale=1.5)


# ----------------------------------------------------------------------------- registry and refusals


def test_every_supported_class_and_kind_has_one_handler():
    for name in SUPPORTED_LAYERS.split(", "):
        handler = layers.handler_for_class(name)
        assert handler is not None and name in handler.keras_classes, name
        for kind in handler.kinds:
            assert layers.handler_for_kind(kind) is handler and handler.role in layers.base.ROLES
    assert {"QDense", "QConv2D", "Dropout", "Reshape", "Activation"} <= set(SUPPORTED_LAYERS.split(", "))
    with pytest.raises(UnsupportedModelError, match="no layer handler for step kind 'nope'"):
        layers.handler_for_kind("nope")
    with pytest.raises(ValueError, match="already has a handler"):
        layers.layer_handler("QDense")(type("Again", (layers.LayerHandler,), {"kinds": ("again",)}))


def test_plain_keras_model_is_refused_as_not_quantized():
    import tensorflow as tf

    x_in = tf.keras.Input(shape=(4,))
    out = tf.keras.layers.Dense(2)(tf.keras.layers.Dense(3, activation="relu")(x_in))
    with pytest.raises(UnsupportedModelError, match="is not quantized") as info:
        describe_model(tf.keras.Model(x_in, out, name="floaty"))
    assert "'floaty'" in str(info.value) and "QDense" in str(info.value) and "hls4ml" in str(info.value)


def test_every_blocker_is_listed_in_one_error():
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q = quantized_bits(6, 0, alpha=1)
    x_in = tf.keras.Input(shape=(6, 6, 1))
    h = QConv2D(2, (3, 3), name="c1", kernel_quantizer=quantized_bits(6, 0, alpha="auto"), bias_quantizer=q)(x_in)
    h = tf.keras.layers.MaxPooling2D(name="pool", padding="same")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    spread = tf.keras.initializers.Constant(np.geomspace(1e-7, 3.0, 8 * 4))  # float weights no 32-bit type holds
    h = tf.keras.layers.Dense(4, name="plain", kernel_initializer=spread)(h)
    h = QActivation(quantized_relu(6, 0, use_sigmoid=1), name="leaky")(h)
    h = QDense(3, name="d", kernel_quantizer=q)(h)
    out = tf.keras.layers.Activation("elu", name="sm")(h)
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(tf.keras.Model(x_in, out, name="many"))
    message = str(info.value)
    assert "\n" not in message  # the CLI prints an error as one line
    lines = re.split(r" \[\d+\] ", " " + message.split(" it: ", 1)[1])[1:]
    expected = ["'c1'", "'pool'", "'plain'", "'leaky'", "'d'", "'sm'"]
    assert len(lines) == len(expected) and f"{len(expected)} problems" in message, message
    for line, name in zip(lines, expected):
        assert name in line, (name, line)
    assert "auto_po2" in lines[0] and "padding 'same'" in lines[1] and "unquantized kernel" in lines[2]
    assert "use_sigmoid" in lines[3] and "bias has no quantizer" in lines[4] and "'elu'" in lines[5]


def test_alpha_none_bias_is_the_alpha_one_grid():
    """QKeras 0.9.0 quantized_bits(alpha=None) is scale 1: the same values as alpha=1, so the same word type."""
    from qkeras.quantizers import quantized_bits

    values = np.random.default_rng(3).uniform(-3, 3, size=4000).astype(np.float32)
    assert_array_equal(quantized_bits(5, 1, alpha=None)(values).numpy(), quantized_bits(5, 1, alpha=1)(values).numpy())
    spec = describe_model(models.build("shapes"))
    assert cpp_type(spec.tensor("k1", "bias").ptype) == "ap_fixed<5,2>"


def test_unquantized_relu_is_typed_exactly():
    spec = describe_model(models.build("shapes"))
    kinds = [(s.name, s.kind) for s in spec.layers]
    assert kinds == [("seq", "input"), ("k1", "conv1d"), ("k1_activation", "activation"), ("drop", "dropout"),
                     ("reshape", "reshape"), ("d1", "dense"), ("d1_activation", "activation"), ("d2", "dense"),
                     ("relu", "activation"), ("head", "dense")]
    for name in ("k1_activation", "d1_activation", "relu"):
        index = [s.name for s in spec.layers].index(name)
        before, step = spec.layers[index - 1].result_type, spec.layers[index].result_type
        assert (step.width, step.integer, step.signed) == (before.width - 1, before.integer - 1, False), name
        lo, hi = -(1 << (before.width - 1)), (1 << (before.width - 1)) - 1
        raw = np.unique(np.concatenate([np.linspace(lo, hi, 20001).astype(np.int64), [lo, -1, 0, 1, hi]]))
        out = layers.handler_for_kind("activation").forward(spec.layers[index], before, raw, {})
        assert_array_equal(out, np.maximum(raw, 0), err_msg=name)  # no word of the input type is rounded or clipped


# ----------------------------------------------------------------------------- every stage on a small model


# Each model holds new kinds: shapes (Dropout, Reshape, unquantized relu, alpha=None bias), pooling
# (MaxPooling2D, GlobalMaxPooling2D), pooling1d (MaxPooling1D with strides, GlobalMaxPooling1D), avgpool
# (AveragePooling2D, GlobalAveragePooling2D over 4: exact), avgpool1d (AveragePooling1D and
# GlobalAveragePooling1D over 3: approximate by nature), zeropad (ZeroPadding2D on the input and on
# a conv accumulator), zeropad1d (ZeroPadding1D after an activation), sigmoid and tanh (hls4ml's tables),
# softmax (QDense(activation='softmax'): hls4ml's stable softmax, exp and inverse tables; Activation('softmax') is
# test_softmax_table_sizes_follow_a_narrow_input's), leaky (quantized_relu with negative_slope: hls4ml's LeakyReLU;
# relu_upper_bound under is_quantized_clip=True; a saturating quantized_relu), binary (binary and ternary kernels and
# biases as ap_fixed<2,2> words, in a QConv1D and QDense layers), hard (quantized_tanh, symmetric too, and
# quantized_sigmoid: hls4ml's HardActivation), plain_dense and plain_conv (a plain Keras Dense / Conv2D whose float
# weights fkhls types), residual (a residual Add whose skip tensor has two readers),
# concat (Concatenate of two dense branches of one input), merges (Subtract, Multiply, Average, Maximum, Minimum),
# batchnorm (BatchNormalization after a QConv2D and
# QBatchNormalization after a QDense: scale/bias arrays, approximate by nature), convbn (QConv2DBatchnorm: the folded
# quantized kernel and bias, exact), alpha (QDense with alpha='auto_po2': hls4ml's ApplyAlpha steps, exact),
# depthwise (QDepthwiseConv2D 'same' + inline relu, strided without
# bias), separable / separable1d (QSeparableConv2D/1D: hls4ml's depthwise + pointwise layers, three fault-target arrays),
# upsampling (UpSampling2D (2, 3): hls4ml Resize), upsampling1d (UpSampling1D, Permute((2, 1))), permute (Permute of 3 axes),
# pointwise (1x1 QConv2D strided and QConv1D: hls4ml's PointwiseConv2D/1D).
#
# The models are split in two lists, each run by its own module (this one and test_layers_more.py), so
# pytest-xdist's --dist loadfile runs the halves on both workers.
STAGE_MODELS = ["shapes", "pooling", "pooling1d", "avgpool", "avgpool1d", "zeropad", "zeropad1d", "sigmoid", "tanh",
                "softmax", "leaky", "binary", "hard", "plain_dense", "plain_conv"]
STAGE_MODELS_MORE = ["batchnorm", "convbn", "alpha", "residual", "concat", "merges", "depthwise", "separable",
                     "separable1d", "upsampling", "upsampling1d", "permute", "pointwise", "dense_po2", "binary_po2",
                     "binary_po2_conv", "po2_conv"]
# io_stream golden C-sims: one model per hls4ml stream kernel family (sigmoid shares tanh's table code; the
# po2 struct words and ApplyAlpha after a binary kernel are covered in io_stream by po2_conv and binary_po2_conv)
IO_STREAM_MODELS = ["shapes", "pooling1d", "avgpool1d", "zeropad", "tanh", "softmax", "leaky", "binary", "hard"]
IO_STREAM_MODELS_MORE = ["batchnorm", "alpha", "residual", "depthwise", "separable", "separable1d", "upsampling",
                         "upsampling1d", "permute", "pointwise", "binary_po2_conv", "po2_conv"]


def stage_fixture(name: str, tmp_path_factory):
    """(model, spec, golden weights, inputs, manifest, directory) of one stage model, exported io_parallel."""
    from fkhls.project.export import ExportOptions, export_model

    model = models.build(name)
    spec = describe_model(model)
    base = tmp_path_factory.mktemp(name)
    manifest = export_model(model, base / "prj", ExportOptions())
    x = _inputs(model, 40, seed=11)
    return model, spec, emulate.golden_weights(model, spec), x, manifest, base


@pytest.fixture(scope="module", params=STAGE_MODELS)
def shapes(request, tmp_path_factory):
    return stage_fixture(request.param, tmp_path_factory)


def test_export_types_read_back(shapes):
    """Every step's value lives in a C variable whose declared type (read from the project) is fkhls's type."""
    from fkhls.project.program import read_program
    from fkhls.project.readback import read_typedefs

    _, spec, _, _, manifest, _ = shapes
    typedefs = read_typedefs(manifest.project_dir)
    program = read_program(manifest)
    records = {r.name: r for r in manifest.layers}
    held = 0
    for step in spec.layers:
        record = records[step.name]
        assert record.kind == step.kind and record.result_type["cpp"] == cpp_type(step.result_type), step.name
        if record.output_var is not None and step.kind != "input":
            declared = typedefs[program.variable(record.output_var).type_name]
            assert cpp_type(declared) == cpp_type(step.result_type), step.name
            held += 1
    assert held >= len(spec.layers) - 3
    for record in manifest.layers:
        if record.kind in ("dropout",):
            assert record.hls_name is None  # hls4ml drops it; its value is the previous output
        if "pool" in record.kind:
            assert record.hls_class in ("Pooling1D", "Pooling2D", "GlobalPooling1D", "GlobalPooling2D")


def test_exact_forward_equals_qkeras_raw_words(shapes):
    """Exact models: the output words equal QKeras's. A model with an approximate-by-nature step: every step
    before it equals QKeras word for word, and the step itself is QKeras's value truncated toward zero (< 1 LSB)."""
    model, spec, weights, _, manifest, _ = shapes
    x = _inputs(model, 300, seed=12)
    raw, trace = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x), trace=True)
    approximate = [step for step in spec.layers if step.approximate]
    records = {r.name: r for r in manifest.layers}
    for step in spec.layers:
        expected = f"approximate by nature: {step.approximate}" if step.approximate else "exact"
        assert records[step.name].exactness == expected, step.name
    if not approximate:
        expected = to_raw(spec.output_type, emulate.qkeras_forward(model, x).astype(np.float64), what="QKeras outputs")
        assert_array_equal(raw, expected)
        assert len(np.unique(raw)) > 100  # not a degenerate model
        return
    import tensorflow as tf

    first = approximate[0]
    index = [s.name for s in spec.layers].index(first.name)
    before = spec.layers[index - 1]
    if first.keras_name == before.keras_name:  # an inline activation: Keras has no tensor before it, compare the step
        keras_step = emulate.qkeras_forward(model, x).astype(np.float64)
    else:
        probe = tf.keras.Model(model.inputs, [model.get_layer(before.keras_name).output, model.get_layer(first.name).output])
        keras_before, keras_step = (np.asarray(v, dtype=np.float64) for v in probe.predict(x, verbose=0))
        assert_array_equal(trace[before.name], to_raw(before.result_type, keras_before, what=before.name))
    lsb = 2.0 ** -first.result_type.fractional
    hw = trace[first.name] * lsb
    if "pool" in first.kind:  # a truncated quotient: toward zero, less than one LSB away
        assert np.all(np.abs(hw) <= np.abs(keras_step)) and np.all(np.abs(keras_step - hw) < lsb), first.name
    elif first.kind == "batchnorm":  # scale and bias words within 2 LSBs of hls4ml's float32 values (literal + floor)
        scale, bias = (2.0 ** (1 - t.ptype.fractional) for t in (first.kernel, first.bias))
        bound = np.abs(keras_before).max() * scale + bias + 1e-5 * (np.abs(keras_step) + 1)
        assert np.all(np.abs(keras_step - hw) <= bound), first.name
    elif first.kind == "softmax":  # measured in test_softmax_deviation_report
        assert np.all(np.abs(keras_step - hw) < 0.25), first.name  # coarse by default: see the deviation report
    else:  # a table over [-R, R): input step 2R/1024 times the slope (sigmoid 1/4, tanh 1), plus the table's LSB
        from fkhls.model.layers.tables import RANGE

        r, slope = RANGE[first.activation], {"sigmoid": 0.25, "tanh": 1.0}[first.activation]
        inside = np.abs(keras_before) < r
        assert np.all(np.abs(keras_step - hw)[inside] <= slope * 2 * r / 1024 + lsb), first.name
    assert np.any(hw != keras_step)  # the approximation is real on these inputs


def test_batched_engine_equals_full_forward_on_every_fault(shapes):
    _, spec, weights, x, _, _ = shapes
    x_raw = emulate.input_raw(spec, x[:12])
    faults = exhaustive_faults(spec)
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    for k, fault in enumerate(faults):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
        assert_array_equal(batched[k], expected, err_msg=str(fault))


def test_golden_csim_and_trace_equal_the_emulator(shapes):
    from fkhls.csim.build import run_csim
    from fkhls.csim.trace import run_trace

    _, spec, weights, x, manifest, _ = shapes
    x_raw = emulate.input_raw(spec, x)
    golden, trace = emulate.forward_raw(spec, weights, x_raw, trace=True)
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))
    traces = run_trace(manifest, x_raw.reshape(len(x), -1))
    compared = 0
    for record in manifest.layers:
        if record.hls_name is None or record.output_var not in traces or record.kind == "input":
            continue
        hw = traces[record.output_var]
        words = trace[record.name].reshape(len(x), -1)
        assert_array_equal(hw.words, words & ((1 << hw.width) - 1), err_msg=record.name)
        compared += 1
    assert compared >= len(spec.layers) - 3


def test_exhaustive_campaign_both_engines_agree(shapes):
    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign

    _, spec, _, x, manifest, base = shapes
    np.save(base / "x.npy", x[:16])
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", Selection(mode="exhaustive"), None, 256)
    result = run_campaign(config, base / "campaign", workers=1, quiet=True)
    summary = json.loads((base / "campaign" / "summary.json").read_text())
    n_faults = sum(t.n_bits for t in spec.tensors())
    assert summary["faults"] == n_faults and result.shards_run == result.shards_total
    n_out = int(np.prod(manifest.output_shape))
    assert summary["outputs_compared"] == summary["bit_exact"] == n_faults * 16 * n_out
    assert summary["scenarios_mismatching"] == 0
    assert result.table.columns["tf_outputs_changed"].max() > 0


@pytest.mark.parametrize("name", IO_STREAM_MODELS)
def test_io_stream_golden_csim_equals_emulator(name, tmp_path):
    """hls4ml's io_stream implementations (nnet_pooling_stream.h ...) compute the same words."""
    from fkhls.csim.build import run_csim
    from fkhls.project.export import ExportOptions, export_model

    model = models.build(name)
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions(io_type="io_stream"))
    x = _inputs(model, 40, seed=13)
    golden = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))


# ----------------------------------------------------------------------------- softmax (hls4ml's stable tables)


@pytest.mark.parametrize("shapes", ["softmax"], indirect=True)
def test_softmax_deviation_report(shapes):
    """The step is approximate by nature; measured on this model's outputs against QKeras's float softmax."""
    from fkhls.model.layers.softmax import softmax_deviation

    model, spec, weights, _, manifest, _ = shapes
    step = spec.layers[-1]
    assert step.kind == "softmax"
    record = next(r for r in manifest.layers if r.name == step.name)
    assert record.exactness.startswith("approximate by nature: softmax table") and "argmax agreement" in record.exactness
    x = _inputs(model, 500, seed=21)
    hw = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x))
    deviation = softmax_deviation(hw, emulate.qkeras_forward(model, x), step.result_type)
    print(f"softmax deviation on {len(x)} inputs: {deviation.describe()}, worst at {deviation.where}")
    assert 0 < deviation.max_lsb < 256  # hls4ml's 18-bit tables: never a full quarter off, never exact
    assert deviation.argmax_agreement >= 0.9


def test_softmax_table_sizes_follow_a_narrow_input(tmp_path):
    """A 6-bit input: hls4ml's table sizes become 64 (inverse) and 32 (exp); set, read back and C-simulated."""
    from fkhls.csim.build import run_csim
    from fkhls.model.layers.softmax import table_sizes
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.project.readback import config_struct, read_parameters

    model = models.build("softmax_narrow")
    spec = describe_model(model)
    step = spec.layers[-1]
    assert step.kind == "softmax" and cpp_type(spec.layers[-2].result_type).startswith("ap_fixed<6,3,")
    assert table_sizes(spec.layers[-2].result_type) == (32, 64)
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    record = next(r for r in manifest.layers if r.name == step.name)
    struct = config_struct(read_parameters(manifest.project_dir), record.hls_index)
    assert (struct["exp_table_size"], struct["inv_table_size"]) == ("32", "64")
    assert struct["inp_norm_t"].replace(" ", "") == "ap_ufixed<5,2>"
    x = _inputs(model, 200, seed=5)
    golden = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))


def test_softmax_tables_are_hls4ml_formulas():
    """Spot values: the exp table at index 0 is expf(-0) = 1, the inverse of 1.0 is 1.0, of 0 saturates."""
    from fkhls.core.fixedpoint import FixedPrecisionType, raw_bounds
    from fkhls.model.layers.softmax import SOFTMAX_TABLE_TYPE, exp_table, invert_table, norm_type, table_index

    norm = norm_type(FixedPrecisionType(15, 8, True))
    table = exp_table(norm, 1024)
    one = 1 << SOFTMAX_TABLE_TYPE.fractional
    assert table[0] == one and np.all(np.diff(table) <= 0)  # exp(-d) falls with d
    inverse = invert_table(SOFTMAX_TABLE_TYPE, 1024)
    assert inverse[table_index(np.array([one]), SOFTMAX_TABLE_TYPE, 1024)][0] == one
    assert inverse[0] == raw_bounds(SOFTMAX_TABLE_TYPE)[1]  # 1 / 0 = inf, saturated


def test_softmax_forms_and_refusals():
    """Keras's Softmax layer is the same step; a softmax over a 2-D tensor is refused with what to do."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(5, 1, alpha=1)
    x_in = tf.keras.Input(shape=(4,))
    out = tf.keras.layers.Softmax(name="smx")(QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q)(x_in))
    step = describe_model(tf.keras.Model(x_in, out)).layers[-1]
    assert (step.kind, step.keras_class, step.output_shape) == ("softmax", "Softmax", (3,)) and step.approximate
    x_in = tf.keras.Input(shape=(2, 4))
    out = tf.keras.layers.Activation("softmax", name="sm2")(QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q)(x_in))
    with pytest.raises(UnsupportedModelError, match="'sm2'.*1-D input only.*flatten"):
        describe_model(tf.keras.Model(x_in, out))


# ----------------------------------------------------------------------------- softmax implementations and bounds


@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
@pytest.mark.parametrize("implementation", ["latency", "argmax", "legacy"])
def test_softmax_implementation_golden_csim_equals_emulator(implementation, io_type, tmp_path):
    """hls4ml's other softmax implementations (stable is every stage's): set at export, read back, word for word."""
    from fkhls.csim.build import run_csim
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.project.readback import config_struct, read_parameters

    model = models.build("softmax")
    spec = describe_model(model, softmax_implementation=implementation)
    assert spec.layers[-1].activation == implementation and implementation in spec.layers[-1].approximate
    manifest = export_model(model, tmp_path / "prj", ExportOptions(io_type=io_type,
                                                                    softmax_implementation=implementation))
    assert manifest.describe_options == {"softmax_implementation": implementation}
    record = next(r for r in manifest.layers if r.kind == "softmax")
    struct = config_struct(read_parameters(manifest.project_dir), record.hls_index)
    assert struct["implementation"] == f"nnet::softmax_implementation::{implementation}"
    x = _inputs(model, 300, seed=17)
    golden = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))
    hw = run_csim(manifest, x)
    assert_array_equal(hw, golden.reshape(len(x), -1))
    if implementation == "argmax":  # one-hot of the first maximum, as (res_T)1
        assert_array_equal(hw.sum(axis=1), np.full(len(x), 1 << spec.output_type.fractional))
    assert len(np.unique(hw)) > 1


def test_softmax_forms_argmax_ties_and_refusal():
    from fkhls.core.errors import ProjectError
    from fkhls.core.fixedpoint import FixedPrecisionType
    from fkhls.model.layers.softmax import OUTPUT_TYPE, softmax_words
    from fkhls.project.export import ExportOptions

    words = softmax_words(np.array([[3, 7, 7, -1], [-4, -4, -4, -4]]), FixedPrecisionType(8, 4, True), OUTPUT_TYPE,
                          "argmax")
    one = 1 << OUTPUT_TYPE.fractional
    assert_array_equal(words, [[0, one, 0, 0], [one, 0, 0, 0]])  # data[i] > maximum: the first maximum wins
    with pytest.raises(ProjectError, match="softmax implementation 'fast'.*stable, latency, argmax, legacy"):
        ExportOptions(softmax_implementation="fast").validate()
    with pytest.raises(UnsupportedModelError, match="'fast' is not one of hls4ml"):
        describe_model(models.build("softmax"), softmax_implementation="fast")


@pytest.mark.parametrize("implementation", ["stable", "latency", "argmax", "legacy"])
@pytest.mark.parametrize("in_cpp", ["ap_fixed<16,6>", "ap_fixed<12,5>", "ap_fixed<18,8>"])
def test_softmax_declared_bound_holds(implementation, in_cpp):
    """The declared bound (LSBs of the output) against the float softmax, on seeded inputs inside its domain."""
    from fkhls.core.fixedpoint import parse_type, raw_bounds
    from fkhls.model.layers.softmax import OUTPUT_TYPE, softmax_bound, softmax_words

    in_type = parse_type(in_cpp)
    rng = np.random.default_rng(8)
    worst = 0.0
    for n, spread in ((5, 4.0), (10, 6.0), (3, 1.0)):  # x_max - x stays below inp_norm_t's range
        x_raw = np.clip(np.floor(rng.uniform(-spread / 2, spread / 2, (3000, n)) * 2.0**in_type.fractional),
                        *raw_bounds(in_type)).astype(np.int64)
        x = x_raw * 2.0**-in_type.fractional
        p = np.exp(x - x.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        hw = softmax_words(x_raw, in_type, OUTPUT_TYPE, implementation)
        measured = float(np.max(np.abs(hw - p * 2.0**OUTPUT_TYPE.fractional)))
        bound, why = softmax_bound(implementation, in_type, n)
        assert measured <= bound, (implementation, in_cpp, n, measured, bound, why)
        worst = max(worst, measured / bound)
    if implementation == "stable":  # derived from the tables, and tight: within 10% of what the inputs reach
        assert worst > 0.9 and softmax_bound("stable", in_type, 5)[0] < 256
    if implementation == "argmax":
        assert softmax_bound("argmax", in_type, 5)[0] == np.ceil(0.8 * 1024)


@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_table_bound_holds_on_every_input_word(function):
    """sigmoid/tanh: every word of a 20-bit input type, through hls4ml's table, within the declared bound."""
    from fkhls.core.fixedpoint import FixedPrecisionType
    from fkhls.model.layers.activation import ActivationHandler
    from fkhls.model.layers.tables import RANGE, TABLE_TYPE

    in_type = FixedPrecisionType(20, 6, True)  # 14 fractional bits: close to every cell's ends
    raw = np.arange(-(1 << 19), 1 << 19, dtype=np.int64)
    spec = describe_model(models.build(function))
    step = next(s for s in spec.layers if s.activation == function)
    approx = ActivationHandler().approximation(step, in_type)
    assert approx.cause == f"{function}_table" and "linear output" in approx.exact_alternative
    out = layers.handler_for_kind("activation").forward(step, in_type, raw, {})
    x = raw * 2.0**-in_type.fractional
    exact = 1 / (1 + np.exp(-x)) if function == "sigmoid" else np.tanh(x)
    measured = np.max(np.abs(out - exact * 2.0**TABLE_TYPE.fractional))
    slope = {"sigmoid": 0.25, "tanh": 1.0}[function]
    # slope times the index step, plus the table's truncation (one LSB) and the ceiling
    assert measured <= approx.bound_lsb <= slope * 2 * RANGE[function] / 1024 * 2**TABLE_TYPE.fractional + 2
    assert measured > approx.bound_lsb - 2, measured  # derived from the table, not padded


def test_verify_judges_every_layer(shapes):
    """Exact layers, fed QKeras's own input, equal it word for word; approximate ones stay within their declared
    bound; a layer fed an approximate layer's words is attributed to it; the C-sim equals the emulator."""
    from fkhls.crosscheck.verify import verify_project

    model, spec, _, x, manifest, _ = shapes
    report = verify_project(manifest, x, model)
    # a QBatchNormalization is a different layer in hls4ml (its quantizers are ignored): no bound, verify fails it
    unbounded = [v.name for v in report.layers if v.status == "no bound declared"]
    assert all(spec.layer(name).keras_class == "QBatchNormalization" for name in unbounded), unbounded
    assert report.passed == (not unbounded) and report.csim_equals_emulator, [(v.name, v.status) for v in report.layers]
    verdicts = {v.name: v for v in report.layers}
    for step in spec.layers[1:]:
        v = verdicts[step.name]
        assert (v.exactness == "approximate") == bool(step.approximate), step.name
        if v.exactness == "exact" and v.fed == "QKeras" and v.compared:
            assert v.status == "bit-exact" and v.bit_exact == v.compared, step.name
        if v.exactness == "approximate" and v.attributed_to is None and v.compared and v.name not in unbounded:
            assert v.status in ("bit-exact", "within bound") and v.max_lsb <= v.bound_lsb, step.name
    if manifest.model_name == "sigmoid_test":  # head reads the table's words: its differences are the table's
        assert verdicts["sig"].status == "within bound" and verdicts["sig"].cause == "sigmoid_table"
        assert (verdicts["head"].fed, verdicts["head"].status, verdicts["head"].attributed_to) == (
            "emulator", "attributed", "sig")
