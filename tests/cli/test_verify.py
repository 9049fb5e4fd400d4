"""``fkhls verify`` per layer (issue 10): exact or approximate by nature, measured, held to the declared bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fkhls.cli import main
from fkhls.model.layers import Approximation
from fkhls.model.layers.softmax import SoftmaxHandler
from tests import models

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def softmax_project(tmp_path_factory):
    """The softmax classifier (QDense(activation='softmax')) exported with the defaults, and 200 inputs."""
    from fkhls.project.export import ExportOptions, export_model

    base = tmp_path_factory.mktemp("verify")
    model = models.build("softmax")
    manifest = export_model(model, base / "prj", ExportOptions())
    x = models.grid_inputs((5,), 200, 3, fractional=3, scale=1.5)
    np.save(base / "x.npy", x)
    return manifest.project_dir, base / "x.npy", model, x


def test_verify_softmax_within_its_declared_bound_exits_0_with_a_table_and_json(softmax_project, tmp_path):
    from fkhls.emulate import emulator as emulate
    from fkhls.model.spec import describe_model

    project, x_path, model, x = softmax_project
    result = invoke("verify", project, "--inputs", x_path, "--json", tmp_path / "out" / "verify.json")
    assert result.exit_code == 0, result.output
    assert "approximate (softmax_table)" in result.output and "within bound" in result.output
    assert "note: exact path for 'head_activation': a linear output" in result.output
    report = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert report["passed"] is True and report["csim_equals_emulator"] is True
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert list(layers) == ["d1", "r1", "head", "head_activation"]
    for name in ("d1", "r1", "head"):  # every exact layer, fed QKeras's own input, equals QKeras word for word
        assert (layers[name]["exactness"], layers[name]["status"], layers[name]["fed"]) == ("exact", "bit-exact",
                                                                                            "QKeras"), name
        assert layers[name]["bit_exact"] == layers[name]["compared"] > 0
    sm = layers["head_activation"]
    assert (sm["exactness"], sm["cause"], sm["status"], sm["compared"]) == ("approximate", "softmax_table",
                                                                            "within bound", 1000)
    # the measured figure is the real distance: recompute it from the emulator and QKeras's float softmax
    spec = describe_model(model)
    hw = emulate.forward_raw(spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x)).reshape(200, -1)
    distance = np.abs(hw - emulate.qkeras_forward(model, x).reshape(200, -1).astype(np.float64) * 2.0**10)
    assert sm["max_lsb"] == pytest.approx(distance.max()) and tuple(sm["where"]) == np.unravel_index(
        np.argmax(distance), distance.shape)
    assert 0 < sm["max_lsb"] <= sm["bound_lsb"] < 256
    assert report["output"]["argmax_agreement"] == np.mean(np.argmax(hw, 1) == np.argmax(
        emulate.qkeras_forward(model, x).reshape(200, -1), 1))
    refused = invoke("verify", project, "--inputs", x_path, "--json", tmp_path / "out" / "verify.json")
    assert refused.exit_code == 1 and "--force" in refused.output  # never overwrites the user's file unasked


def test_verify_exits_3_beyond_the_declared_bound_or_without_one(softmax_project, tmp_path, monkeypatch):
    project, x_path, _, _ = softmax_project

    def tight(self, step, in_type):
        return Approximation("softmax_table", step.approximate, 1.0, "a bound too tight on purpose")

    monkeypatch.setattr(SoftmaxHandler, "approximation", tight)
    result = invoke("verify", project, "--inputs", x_path, "--json", tmp_path / "v.json")
    assert result.exit_code == 3, result.output
    assert "NOT verified: layer 'head_activation' exceeds bound" in result.output and "> bound 1)" in result.output
    assert json.loads((tmp_path / "v.json").read_text())["passed"] is False
    monkeypatch.setattr(SoftmaxHandler, "approximation", lambda self, step, in_type: Approximation(
        "softmax_table", step.approximate, None, "none declared"))
    result = invoke("verify", project, "--inputs", x_path)
    assert result.exit_code == 3 and "layer 'head_activation' no bound declared" in result.output, result.output


def test_verify_exact_model_every_layer_bit_exact(demo_project_session, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:100])
    result = invoke("verify", demo_project_session.project_dir, "--inputs", x, "--json", tmp_path / "v.json")
    assert result.exit_code == 0 and "bit-exact: every output word matches" in result.output, result.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] and report["output"]["all_exact"] and report["output"]["argmax_agreement"] == 1.0
    judged = [layer for layer in report["layers"] if layer["compared"]]
    assert len(judged) >= 4 and all(layer["status"] == "bit-exact" and layer["exactness"] == "exact"
                                    for layer in report["layers"])
