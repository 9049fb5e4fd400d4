"""A QKeras model without a single weight array (quantizers, pooling and shape layers only, as hls4ml's own quantizer
tests build): export and verify work on it, every fault stage refuses its project with one clear message."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fkhls.core.errors import FaultSpecError  # noqa: E402
from tests.entry import assert_error, run_fkhls  # noqa: E402

NEEDLES = ("has no weight array", "nothing to fault", "export, verify and csim work on it")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import tensorflow as tf
    from qkeras import QActivation
    from qkeras.quantizers import quantized_bits, quantized_relu

    from fkhls.project.export import ExportOptions, export_model

    model = tf.keras.Sequential([
        tf.keras.Input((4, 4, 2)), QActivation(quantized_bits(6, 2, alpha=1), name="q"),
        tf.keras.layers.MaxPooling2D(name="pool"), tf.keras.layers.Flatten(name="flat"),
        QActivation(quantized_relu(5, 1), name="relu")], name="no_weights")
    base = tmp_path_factory.mktemp("no_weights")
    x = (np.random.default_rng(5).integers(-40, 40, (24, 4, 4, 2)) / 8).astype(np.float32)
    np.save(base / "x.npy", x)
    model.save(base / "model.h5")
    return model, export_model(model, base / "prj", ExportOptions()), x, base


def test_export_and_verify_are_exact(project):
    from fkhls.crosscheck.verify import verify_project

    model, manifest, x, _ = project
    assert manifest.weighted_layers == () or not any(layer.arrays() for layer in manifest.weighted_layers)
    report = verify_project(manifest, x, model)
    assert report.passed and report.parity.all_exact and report.csim_equals_emulator, report.to_dict()


def test_fault_stages_refuse_with_one_message(project):
    from fkhls.faults.addressing import address_map, spec_from_manifest

    _, manifest, _, base = project
    for build in (address_map, spec_from_manifest):
        with pytest.raises(FaultSpecError) as info:
            build(manifest)
        for needle in NEEDLES:
            assert needle in str(info.value), (needle, str(info.value))
    prj = manifest.project_dir
    assert_error(run_fkhls("campaign", prj, "--inputs", base / "x.npy", "--exhaustive", "-o", base / "camp"), *NEEDLES)
    assert_error(run_fkhls("rank", prj, "--inputs", base / "x.npy", "--method", "msb", "-o", base / "r.csv"), *NEEDLES)
    assert not (base / "r.csv").exists()
