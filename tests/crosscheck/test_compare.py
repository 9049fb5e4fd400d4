"""Issue 6: cross-check emulation vs C-sim, with real, explained mismatches on hand-broken projects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fkhls.faults.addressing import spec_from_manifest
from fkhls.cli import main
from fkhls.crosscheck.compare import crosscheck
from fkhls.crosscheck.report import write_crosscheck_report
from fkhls.project.export import ExportOptions, export_model
from fkhls.faults.descriptors import load_fault_set
from fkhls.project.manifest import load_manifest

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"
FAULTS = {"seed": 7, "faults": [
    {"layer": "fc1", "tensor": "kernel", "regions": [[0, 0, 1.0], [10, 15, 0.5]]},
    {"layer": "output", "tensor": "bias", "bits": [3, 7]},
    {"model_bits": [12345]},
    {"name": "fc2 sign", "layer": "fc2", "bits": [0]},
    {"name": "fc3 lsb", "layer": "fc3", "bits": [5]},
]}


@pytest.fixture(scope="module")
def demo_project(golden_demo_project):
    return golden_demo_project  # shared (conftest), read-only: edits go to broken_copy


@pytest.fixture(scope="module")
def inputs(demo_inputs):
    return demo_inputs[:120]


def broken_copy(project: Path, tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the project with one typedef edited by hand (the golden project stays as it is)."""
    target = tmp_path / "edited"
    shutil.copytree(project, target)
    defines = target / "firmware" / "defines.h"
    text = defines.read_text()
    assert old in text
    defines.write_text(text.replace(old, new))
    return target


def run(manifest, inputs, faults=FAULTS, **kwargs):
    return crosscheck(manifest, load_fault_set(faults, spec_from_manifest(manifest)), inputs, **kwargs)


def test_exported_project_is_bit_exact_fault_by_fault(demo_project, inputs, tmp_path):
    report = run(demo_project, inputs)
    assert report.engine == "cone harness"  # the fast engine ran, not the reference harness
    assert report.all_exact and report.golden.exact
    assert len(report.scenarios) == 5 and report.outputs_compared == 5 * 120 * 5
    assert report.bit_exact == report.outputs_compared and report.max_lsb_diff == 0
    summary_path, markdown_path = write_crosscheck_report(report, tmp_path / "r")
    summary = json.loads(summary_path.read_text())
    assert {"scenarios", "outputs_compared", "bit_exact", "max_lsb_diff", "mismatching"} <= set(summary)
    assert summary["mismatching"] == [] and summary["seed"] == 7
    assert "all bit-exact" in markdown_path.read_text()


def test_narrow_accumulator_is_explained_as_rounding(demo_project, inputs, tmp_path):
    edited = broken_copy(demo_project.project_dir, tmp_path, "typedef ap_fixed<26,11> fc1_accum_t;",
                         "typedef ap_fixed<16,6> fc1_accum_t;")
    report = run(load_manifest(edited), inputs)
    assert not report.golden.exact and report.mismatching
    for result in report.mismatching:
        assert result.divergence.layer == "fc1"
        assert result.divergence.cause == "accumulator_rounding"
        assert result.divergence.words_differing > 0


def test_accumulator_overflow_is_explained_as_wrap(demo_project, inputs, tmp_path):
    edited = broken_copy(demo_project.project_dir, tmp_path, "typedef ap_fixed<26,11> fc1_accum_t;",
                         "typedef ap_fixed<18,3> fc1_accum_t;")
    report = run(load_manifest(edited), inputs)
    causes = {r.divergence.cause for r in report.mismatching}
    assert causes == {"accumulator_wrap"}
    assert "outside the accumulator ap_fixed<18,3>" in report.mismatching[0].divergence.explanation


def test_truncating_activation_is_explained_as_rounding_mode(demo_project, inputs, tmp_path):
    edited = broken_copy(demo_project.project_dir, tmp_path, "typedef ap_ufixed<6,0,AP_RND_CONV,AP_SAT,0> layer4_t;",
                         "typedef ap_ufixed<6,0,AP_TRN,AP_SAT,0> layer4_t;")
    report = run(load_manifest(edited), inputs)
    assert report.mismatching
    assert {(r.divergence.layer, r.divergence.cause) for r in report.mismatching} == {("relu1", "rounding_mode")}


def test_a_wrong_mapping_is_caught(demo_project, inputs, monkeypatch):
    """If the map sent a fault to the wrong element, the C-sim flips another weight and the diagnosis says so."""
    import dataclasses

    import fkhls.crosscheck.compare as compare

    real = compare.map_faults

    def shifted(manifest, faults):
        return [dataclasses.replace(b, element=(b.element + 1) % 1024) if b.array == "w2" else b
                for b in real(manifest, faults)]

    monkeypatch.setattr(compare, "map_faults", shifted)
    report = run(demo_project, inputs, {"faults": [{"layer": "fc1", "bits": [0]}, {"layer": "fc2", "bits": [0]}]})
    assert [r.name for r in report.mismatching] == ["faults[0]"]
    assert report.mismatching[0].divergence.cause == "mapping"


def test_cli_exit_codes_and_report(demo_project, tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps(FAULTS))
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:40])
    runner = CliRunner()
    ok = runner.invoke(main, ["crosscheck", str(demo_project.project_dir), "--faults", str(faults), "--inputs", str(x),
                              "--report", str(tmp_path / "ok"), "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(main, ["crosscheck", str(demo_project.project_dir), "--faults", str(faults), "--inputs",
                                 str(x), "--report", str(tmp_path / "ok")])
    assert again.exit_code == 1 and "--force" in again.output
    edited = broken_copy(demo_project.project_dir, tmp_path, "typedef ap_fixed<26,11> fc1_accum_t;",
                         "typedef ap_fixed<16,6> fc1_accum_t;")
    bad = runner.invoke(main, ["crosscheck", str(edited), "--faults", str(faults), "--inputs", str(x),
                               "--report", str(tmp_path / "bad"), "--workers", "1", "--trace-samples", "3"])
    assert bad.exit_code == 3, bad.output
    text = (tmp_path / "bad" / "report.md").read_text()
    assert "accumulator_rounding" in text and "fc1" in text
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    # --trace-samples: at most that many differing samples are traced per scenario (the default is 16)
    traced = [m["divergence"]["samples_traced"] for m in summary["mismatching"]]
    assert traced and set(traced) == {3} and summary["golden"]["divergence"]["samples_traced"] == 3


def test_float32_rounding_in_tf_is_named(tmp_path):
    """A model whose sums need more than 24 significant bits: QKeras's float32 rounds, the hardware does not."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    tf.keras.utils.set_random_seed(5)
    x_in = tf.keras.Input(shape=(32,))
    out = QDense(4, name="wide", kernel_quantizer=quantized_bits(16, 1, alpha=1),
                 bias_quantizer=quantized_bits(16, 1, alpha=1))(x_in)
    model = tf.keras.Model(x_in, out)
    rng = np.random.default_rng(0)
    model.layers[1].set_weights([rng.uniform(-2, 2, (32, 4)).astype(np.float32),
                                 rng.uniform(-2, 2, 4).astype(np.float32)])
    manifest = export_model(model, tmp_path / "wide")
    x = (np.round(rng.normal(0, 8, (50, 32)) * 1024) / 1024).astype(np.float32)
    exact = run(manifest, x, {"faults": [{"layer": "wide", "bits": [0]}]}, model=model)
    assert exact.all_exact  # the integer emulation is the hardware
    tf_ref = run(manifest, x, {"faults": [{"layer": "wide", "bits": [0]}]}, model=model, reference="tf")
    assert not tf_ref.all_exact
    assert {r.divergence.cause for r in tf_ref.mismatching} == {"float_rounding_in_tf"}


def test_io_stream_conv_project_is_traced_and_explained(tmp_path):
    """Streams too: an io_stream Resource conv project is exact, and a narrowed conv accumulator is found in c1."""
    from tests import models

    model = models.build("conv2d")
    manifest = export_model(model, tmp_path / "stream", ExportOptions("Vivado", "io_stream", "Resource", 2))
    x = models.inputs_for(model, 30)
    faults = {"seed": 1, "faults": [{"layer": "c1", "bits": [0, 5]}, {"layer": "c2", "tensor": "bias", "bits": [4]},
                                    {"layer": "head", "bits": [17]}]}
    exact = run(manifest, x, faults, model=model)
    assert exact.all_exact and exact.engine == "cone harness"  # io_stream's own (fkhls.csim.cone_stream)
    accum = f"typedef {manifest.layer('c1').accum_type['cpp']} c1_accum_t;"
    edited = broken_copy(manifest.project_dir, tmp_path, accum, "typedef ap_fixed<12,4> c1_accum_t;")
    report = run(load_manifest(edited), x, faults, model=model)
    assert report.mismatching and not report.golden.exact
    assert {(r.divergence.layer, r.divergence.cause) for r in report.mismatching} <= {
        ("c1", "accumulator_rounding"), ("c1", "accumulator_wrap")}


def test_tf_reference_names_the_approximate_layer_not_the_bridge(tmp_path):
    """A softmax model against FKeras's float model: the differences are the softmax table's (its declared cause),
    the exact emulation of the same faulty words agrees with the C-sim, and the report says so."""
    from tests import models

    model = models.build("softmax")
    manifest = export_model(model, tmp_path / "prj")
    x = models.grid_inputs((5,), 60, 3, fractional=3, scale=1.5)
    faults = {"faults": [{"layer": "d1", "bits": [0]}, {"layer": "head", "tensor": "bias", "bits": [2]}]}
    assert run(manifest, x, faults, model=model).all_exact  # the bridge: emulation == C-sim, fault by fault
    report = run(manifest, x, faults, model=model, reference="tf")
    assert not report.all_exact and not report.golden.exact
    for result in (report.golden, *report.mismatching):
        assert (result.divergence.cause, result.divergence.layer) == ("softmax_table", "head_activation")
        assert "agrees with the C-sim bit for bit" in result.divergence.explanation
    assert report.explained_by_approximation and report.to_summary()["explained_by_approximate_layers"] is True
    assert run(manifest, x, faults, model=model).explained_by_approximation is False  # nothing differs there
