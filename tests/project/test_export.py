"""Issue 2: exact QKeras -> hls4ml export, golden C-sim parity bit for bit, manifest, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import OffGridError, ProjectError, UnsupportedModelError
from fkhls.project.export import ExportOptions, export_model
from fkhls.core.fixedpoint import to_raw, type_from_dict
from fkhls.project.manifest import load_manifest
from fkhls.csim.build import run_csim
from tests import models

CONFIGS = [
    (backend, io_type, strategy, rf)
    for backend in ("Vivado", "Vitis")
    for io_type in ("io_parallel", "io_stream")
    for strategy, rf in (("Latency", 1), ("Resource", 1), ("Resource", 4))
]


@pytest.fixture(scope="module", autouse=True)
def quick_compiles():
    """Parity runs a few hundred samples: compile the C-sims at -O0 (about a third faster to build)."""
    import os

    old = os.environ.get("FKHLS_CXX_OPT")
    os.environ["FKHLS_CXX_OPT"] = "-O0"
    yield
    if old is None:
        os.environ.pop("FKHLS_CXX_OPT")
    else:
        os.environ["FKHLS_CXX_OPT"] = old


@pytest.fixture(scope="module")
def keras_models():
    return {name: models.build(name) for name in ("dense", "unsigned", "conv2d", "conv1d")}


def assert_golden_parity(manifest, model, x):
    """C-sim output words == QKeras output words, compared as raw integers."""
    hardware = run_csim(manifest, x)
    reference = model.predict(x, verbose=0)
    expected = to_raw(type_from_dict(manifest.output_type), reference.reshape(len(x), -1), what="QKeras outputs")
    assert_array_equal(hardware, expected, err_msg=f"{manifest.backend} {manifest.io_type} {manifest.strategy}")


@pytest.mark.parametrize("backend,io_type,strategy,rf", CONFIGS, ids=["-".join(map(str, c)) for c in CONFIGS])
def test_dense_golden_parity(keras_models, tmp_path, backend, io_type, strategy, rf):
    model = keras_models["dense"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions(backend, io_type, strategy, rf))
    assert manifest.backend == backend and manifest.io_type == io_type
    for layer in manifest.weighted_layers:
        assert layer.strategy == strategy
        assert layer.kernel.order == ("transposed" if strategy == "Resource" else "keras")
    assert_golden_parity(manifest, model, models.inputs_for(model, 300))


CONV_CONFIGS = [c for c in CONFIGS if c[0] == "Vivado"] + [("Vitis", "io_stream", "Resource", 2),
                                                            ("Vitis", "io_parallel", "Latency", 1)]


@pytest.mark.parametrize("backend,io_type,strategy,rf", CONV_CONFIGS, ids=["-".join(map(str, c)) for c in CONV_CONFIGS])
def test_conv2d_golden_parity(keras_models, tmp_path, backend, io_type, strategy, rf):
    model = keras_models["conv2d"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions(backend, io_type, strategy, rf))
    conv = manifest.layer("c1")
    assert conv.kernel.axes == ((3, 0, 1, 2) if strategy == "Resource" else (0, 1, 2, 3))
    assert_golden_parity(manifest, model, models.inputs_for(model, 60))


@pytest.mark.parametrize("io_type,strategy,rf", [("io_parallel", "Latency", 1), ("io_stream", "Resource", 2)])
def test_conv1d_golden_parity(keras_models, tmp_path, io_type, strategy, rf):
    model = keras_models["conv1d"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions("Vivado", io_type, strategy, rf))
    assert_golden_parity(manifest, model, models.inputs_for(model, 100))


@pytest.mark.parametrize("strategy,rf", [("Latency", 1), ("Resource", 3)])
def test_unsigned_weights_are_exact(keras_models, tmp_path, strategy, rf):
    """keep_negative=0 -> ap_ufixed<b,i> with exact literals (hls4ml alone gives ap_fixed<b,i+1>)."""
    model = keras_models["unsigned"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions("Vivado", "io_parallel", strategy, rf))
    kernel = manifest.layer("u1").kernel
    assert kernel.type["cpp"] == "ap_ufixed<6,0>" and not kernel.type["signed"]
    assert manifest.layer("u2").kernel.type["cpp"] == "ap_ufixed<7,1>"
    # The typedef and the literals are read back by export itself; what matters is that C-sim words equal QKeras's
    # (hls4ml's own typing, or a literal one digit short, gave 0 of 900 exact outputs).
    assert_golden_parity(manifest, model, models.inputs_for(model, 300))


def test_manifest_records_what_was_built(keras_models, tmp_path):
    model = keras_models["dense"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions("Vivado", "io_parallel", "Resource", 4))
    data = json.loads((tmp_path / "prj" / "fkhls.json").read_text())
    again = load_manifest(tmp_path / "prj")
    assert again == manifest
    assert data["model_hash"] == manifest.model_hash and len(data["model_hash"]) == 64
    assert set(data["versions"]) >= {"hls4ml", "qkeras", "tensorflow", "numpy", "fkhls"}
    d1 = again.layer("d1")
    assert (d1.hls_name, d1.kernel.array, d1.bias.array) == ("d1", f"w{d1.hls_index}", f"b{d1.hls_index}")
    assert d1.kernel.keras_shape == (10, 8) and d1.kernel.hls_shape == (8, 10)
    assert d1.kernel.type == {"cpp": "ap_fixed<8,3>", "width": 8, "integer": 3, "fractional": 5, "signed": True,
                              "rounding": "TRN", "saturation": "WRAP"}
    # wide enough for any word values: |10 * (-2**15) * (-2**7)| + bias < 2**26, plus a sign bit
    assert d1.accum_type["fractional"] == 10 + 5 and d1.accum_type["width"] == 27
    assert d1.n_in == 10 and d1.n_out == 8
    assert d1.reuse_factor == 5  # 4 is invalid for 10x8 in hls4ml; it picks the closest valid one
    parameters = (again.project_dir / "firmware" / "parameters.h").read_text()
    assert f"struct config{d1.hls_index} " in parameters
    hls_config = (again.project_dir / "hls4ml_config.yml").read_text()
    assert f"OutputDir: {again.project_dir.resolve()}" in hls_config and "staging" not in hls_config
    # the inline activation of d2 is its own step, as hls4ml builds it
    assert again.layer("d2_activation").kind == "activation"
    assert again.layer("lin").hls_name is None  # folded away by hls4ml: recorded, not invented


def test_changed_reuse_factor_is_recorded(keras_models, tmp_path):
    """hls4ml silently picks another RF when the asked one is invalid: the manifest says what was built."""
    model = keras_models["dense"]
    manifest = export_model(model, tmp_path / "prj", ExportOptions("Vivado", "io_parallel", "Resource", 7))
    built = {layer.name: layer.reuse_factor for layer in manifest.weighted_layers}
    parameters = (manifest.project_dir / "firmware" / "parameters.h").read_text()
    for layer in manifest.weighted_layers:
        block = parameters.split(f"struct config{layer.hls_index} ")[1].split("};")[0]
        assert f"reuse_factor = {layer.reuse_factor};" in block
    assert manifest.requested["changed_reuse_factor"] == {k: v for k, v in built.items() if v != 7}


def test_refuses_existing_directory_without_force(keras_models, tmp_path):
    target = tmp_path / "prj"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    for force in (False, True):  # a directory fkhls did not make is never replaced (issue 9)
        with pytest.raises(ProjectError, match="holds files fkhls did not write"):
            export_model(keras_models["dense"], target, force=force)
    assert (target / "keep.txt").read_text() == "user data"
    (target / "keep.txt").unlink()
    export_model(keras_models["dense"], target)
    with pytest.raises(ProjectError, match="--force"):
        export_model(keras_models["dense"], target)
    export_model(keras_models["dense"], target, force=True)  # an fkhls project is replaced with --force
    assert (target / "fkhls.json").exists()


def test_failed_export_leaves_nothing(tmp_path):
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    x_in = tf.keras.Input(shape=(4,))
    out = QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha="auto"), bias_quantizer=quantized_bits(6, 0))(x_in)
    with pytest.raises(UnsupportedModelError, match="alpha='auto'"):  # a float scale (auto_po2 is supported)
        export_model(tf.keras.Model(x_in, out), tmp_path / "prj")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case,match", [
    ("plain_dense", "unquantized kernel \\(float weights\\) that no ap_fixed type of at most 32 bits"),
    ("elu_activation", "Activation\\('elu'\\) is not supported"),
    ("pooling", "Cropping2D is not supported"),
    ("stochastic", "stochastic rounding"),
    ("no_bias_quantizer", "bias has no quantizer"),
    ("leaky", "use_sigmoid"),
])
def test_unsupported_models_name_the_layer(tmp_path, case, match):
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q = quantized_bits(6, 0, alpha=1)
    if case == "pooling":
        x_in = tf.keras.Input(shape=(4, 4, 1))
        h = QConv2D(2, (2, 2), kernel_quantizer=q, bias_quantizer=q, name="c")(x_in)
        out = tf.keras.layers.Cropping2D(1, name="pool")(h)
    else:
        x_in = tf.keras.Input(shape=(4,))
        layer = {
            "plain_dense": lambda: tf.keras.layers.Dense(2, name="bad", kernel_initializer=tf.keras.initializers.Constant(
                np.geomspace(1e-7, 3.0, 6))),  # float weights no 32-bit fixed-point type holds
            "elu_activation": lambda: tf.keras.layers.Activation("elu", name="bad"),
            "stochastic": lambda: QDense(2, name="bad", kernel_quantizer=quantized_bits(6, 0, alpha=1,
                                                                                        use_stochastic_rounding=True),
                                         bias_quantizer=q),
            "no_bias_quantizer": lambda: QDense(2, name="bad", kernel_quantizer=q),
            "leaky": lambda: QActivation(quantized_relu(6, 0, use_sigmoid=1), name="bad"),
        }[case]()
        out = layer(x_in) if case != "plain_dense" else layer(QDense(3, kernel_quantizer=q, bias_quantizer=q)(x_in))
        if case in ("elu_activation", "leaky"):
            out = QDense(2, kernel_quantizer=q, bias_quantizer=q)(out)
    with pytest.raises(UnsupportedModelError, match=match) as info:
        export_model(tf.keras.Model(x_in, out), tmp_path / "prj")
    assert "pool" in str(info.value) if case == "pooling" else "'bad'" in str(info.value)


def test_bad_options_are_refused(keras_models, tmp_path):
    with pytest.raises(ProjectError, match="backend 'Quartus'"):
        export_model(keras_models["dense"], tmp_path / "a", ExportOptions(backend="Quartus"))
    with pytest.raises(ProjectError, match="reuse factor 0"):
        export_model(keras_models["dense"], tmp_path / "b", ExportOptions(reuse_factor=0))
    with pytest.raises(OffGridError, match="cannot parse"):
        export_model(keras_models["dense"], tmp_path / "c", ExportOptions(input_type="float"))
    with pytest.raises(ProjectError, match="does not exist"):
        export_model(tmp_path / "missing.h5", tmp_path / "d")


def test_savedmodel_directory_exports_the_same_words(keras_models, tmp_path):
    """A SavedModel directory loads with QKeras's quantizers and exports the very words of the in-memory model."""
    from fkhls.emulate.emulator import golden_weights
    from fkhls.model.spec import describe_model, load_keras_model, model_hash

    model = keras_models["conv1d"]
    saved = tmp_path / "saved_model"
    model.save(saved, save_format="tf")
    assert (saved / "saved_model.pb").is_file()
    loaded = load_keras_model(saved)
    # Keras drops a layer's build_config after a SavedModel round trip; model_hash leaves it out, so it agrees.
    assert model_hash(loaded) == model_hash(model)
    spec = describe_model(loaded)
    assert spec == describe_model(model)
    original, reloaded = golden_weights(model, spec), golden_weights(loaded, spec)
    assert sorted(original) == sorted(reloaded)
    for key in original:
        assert_array_equal(reloaded[key], original[key], err_msg=str(key))
    manifest = export_model(saved, tmp_path / "prj")  # the path, as `fkhls export DIR` passes it
    assert manifest.model_hash == model_hash(loaded)
    assert_golden_parity(manifest, model, models.inputs_for(model, 60))


def test_symmetric_quantized_bits_saturates_like_qkeras(tmp_path):
    """quantized_bits(8, 0, symmetric=True) clips at -127/128, not -128/128: the type is AP_SAT_SYM, the words equal."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(11)
    x_in = tf.keras.Input(shape=(6,))
    h = QDense(4, name="d", kernel_quantizer=quantized_bits(8, 2, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1))(x_in)
    out = QActivation(quantized_bits(8, 0, alpha=1, symmetric=True), name="sym")(h)
    model = tf.keras.Model(x_in, out)
    models._spread_weights(model, 11)
    manifest = export_model(model, tmp_path / "prj")
    assert manifest.output_type["saturation"] == "SAT_SYM" and manifest.output_type["width"] == 8
    x = models.inputs_for(model, 200, seed=3)
    hardware = run_csim(manifest, x)
    expected = to_raw(type_from_dict(manifest.output_type), model.predict(x, verbose=0), what="QKeras outputs")
    assert_array_equal(hardware, expected)
    assert (expected == -127).sum() > 10 and (expected == -128).sum() == 0  # the symmetric bound is hit, and held
    assert (expected == 127).sum() > 10
