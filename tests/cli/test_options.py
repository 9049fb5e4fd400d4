"""Issue 14.5: command-line options that no other test runs, each checked by what it changes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from fkhls.cli import main
from fkhls.project.manifest import load_manifest

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_backend_io_type_strategy_reuse_note_and_force(tmp_path):
    target = tmp_path / "prj"
    result = invoke("export", DATA / "demo_model.h5", "-o", target, "--backend", "Vitis", "--io-type", "io_stream",
                    "--strategy", "Resource", "--reuse-factor", 3)
    assert result.exit_code == 0, result.output
    manifest = load_manifest(target)
    assert (manifest.backend, manifest.io_type) == ("Vitis", "io_stream")
    assert {layer.strategy for layer in manifest.weighted_layers} == {"Resource"}
    assert "hls::stream" in (target / "firmware" / "myproject.cpp").read_text()  # what io_stream builds
    changed = manifest.requested["changed_reuse_factor"]
    assert changed, "3 is not a valid reuse factor for the demo's layers: hls4ml picks another"
    for name, reuse in changed.items():
        assert reuse != 3 and manifest.layer(name).reuse_factor == reuse
        assert f"note: hls4ml used reuse factor {reuse} for {name} (asked 3): recorded as built" in result.output
    kept = [layer.name for layer in manifest.weighted_layers if layer.name not in changed]
    assert all(manifest.layer(name).reuse_factor == 3 for name in kept)
    assert result.output.count("note: hls4ml used reuse factor") == len(changed)

    (target / "user.txt").write_text("mine")
    refused = invoke("export", DATA / "demo_model.h5", "-o", target)
    assert refused.exit_code == 1 and load_manifest(target).backend == "Vitis"  # untouched without --force
    forced = invoke("export", DATA / "demo_model.h5", "-o", target, "--force")
    assert forced.exit_code == 0, forced.output
    again = load_manifest(target)
    assert (again.backend, again.io_type) == ("Vivado", "io_parallel")  # replaced, defaults now
    assert {layer.strategy for layer in again.weighted_layers} == {"Latency"}
    assert not (target / "user.txt").exists() and "note:" not in forced.output


def test_verify_model_option_compares_against_that_model(demo_project_session, tmp_path):
    from fkhls.model.spec import load_keras_model, model_hash

    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:50])
    same = invoke("verify", demo_project_session.project_dir, "--inputs", x, "--model", DATA / "demo_model.h5")
    assert same.exit_code == 0 and "differs from the model" not in same.output, same.output
    model = load_keras_model(DATA / "demo_model.h5")
    layer = model.get_layer("output")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.25])  # another model: every output moves by a quarter
    other = tmp_path / "other.h5"
    model.save(other)
    assert model_hash(load_keras_model(other)) != demo_project_session.model_hash
    result = invoke("verify", demo_project_session.project_dir, "--inputs", x, "--model", other)
    assert result.exit_code == 3, result.output
    assert "warning: --model differs from the model this project was exported from" in result.output
    assert "NOT bit-exact: 250 output words differ" in result.output  # 50 samples x 5 outputs, all moved


FAULTS = {"seed": 3, "faults": [{"name": "two", "layer": "fc1", "bits": [0, 7]}, {"layer": "output", "bits": [4]}]}


def test_crosscheck_single_bits_reference_tf_and_force(demo_project_session, tmp_path):
    faults, x, report = tmp_path / "f.json", tmp_path / "x.npy", tmp_path / "report"
    faults.write_text(json.dumps(FAULTS))
    np.save(x, np.load(DATA / "demo_inputs.npy")[:30])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "summary.json").write_text("an old report")
    args = ["crosscheck", demo_project_session.project_dir, "--faults", faults, "--inputs", x, "--workers", 1]
    # a directory fkhls did not write is refused, --force or not, and left as it was
    assert invoke(*args, "--report", foreign, "--force").exit_code == 1
    assert (foreign / "summary.json").read_text() == "an old report"
    assert invoke(*args, "--report", report).exit_code == 0
    first = json.loads((report / "summary.json").read_text())
    assert first["reference"] == "exact"
    assert invoke(*args, "--report", report).exit_code == 1  # fkhls's own report: replaced only with --force
    result = invoke(*args, "--report", report, "--single-bits", "--reference", "tf", "--force")
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "summary.json").read_text())  # replaced
    assert summary["reference"] == "tf" and summary["all_bit_exact"]  # the demo's float32 sums are exact
    names = [s["name"] for s in summary["scenario_results"]]
    assert names == ["fc1.kernel[lbi=0]", "fc1.kernel[lbi=7]", "output.kernel[lbi=4]"]  # one scenario per bit
    assert all(s["n_bits"] == 1 for s in summary["scenario_results"])
    assert "Emulation (tf) vs C-sim" in (report / "report.md").read_text()


def test_campaign_ber_tensors_and_force(dense_project_session, tmp_path):
    project, x, y = dense_project_session
    out = tmp_path / "ber"
    args = ["campaign", project, "--inputs", x, "--labels", y, "--engine", "both", "--ber", "0.05", "--trials", 3,
            "--tensors", "bias", "-o", out, "--workers", 1, "--quiet"]
    result = invoke(*args, "--seed", 2)
    assert result.exit_code == 0, result.output
    assert "bit-exact: tf and csim agree on every output word of every fault" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"] == 3 and summary["seeds"] == {"ber_trials": 2}
    assert summary["selection"]["tensors"] == ["bias"] and summary["selection"]["ber"] == 0.05
    bias_bits = 8 * 8 + 7 * 6 + 6 * 4 + 3 * 6  # every bias word of d1, d2, d3, out
    rows = (out / "results.csv").read_text().splitlines()
    cells = list(csv.DictReader(rows))
    assert {c["tensor"] for c in cells} == {"bias"} and {int(c["n_bits"]) for c in cells} == {int(bias_bits * 0.05)}
    first = json.loads((out / "campaign.json").read_text())

    (out / "user.txt").write_text("mine")
    refused = invoke(*args, "--seed", 4)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert json.loads((out / "campaign.json").read_text()) == first
    forced = invoke(*args, "--seed", 4, "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "campaign.json").read_text())["seeds"] == {"ber_trials": 4}
    assert (out / "user.txt").read_text() == "mine"  # --force removes the campaign's files only
    assert (out / "results.csv").read_text().splitlines()[1:] != rows[1:]  # other draws, other rows




def test_verify_names_the_layers_that_are_approximate_by_nature(tmp_path):
    """A softmax model cannot equal QKeras bit for bit: verify says which layer and why, not only 'NOT bit-exact'."""
    from fkhls.project.export import ExportOptions, export_model
    from tests import models

    model = models.build("softmax")
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    np.save(tmp_path / "x.npy", models.inputs_for(model, n=40, seed=3))
    approximate = [layer for layer in manifest.layers if layer.exactness != "exact"]
    assert [layer.kind for layer in approximate] == ["softmax"], [layer.kind for layer in approximate]
    result = invoke("verify", manifest.project_dir, "--inputs", tmp_path / "x.npy")
    lines = [line for line in result.output.splitlines() if line.startswith("note: layer ")]
    assert len(lines) == 1 and lines[0].startswith(f"note: layer {approximate[0].name!r} is approximate by nature "
                                                   "(softmax_table): softmax table"), lines
    assert "declared bound" in lines[0]
    # the differing output words are blamed on the approximate layer and held to its declared bound, not hidden
    assert result.exit_code == 0, result.output
    assert "1 approximate-by-nature layer(s) within their declared bounds" in result.output
