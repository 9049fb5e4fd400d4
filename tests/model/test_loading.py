"""Getting the model in (issue 10): JSON architecture + weights .h5, one loader for every format, one hash.

The same QKeras model saved as .h5, as a SavedModel and as model.to_json() + save_weights() must load to
the same weights, the same outputs (compared as raw float32 bit patterns, which for quantized outputs are
the words) and the same model_hash; damaged or mismatched files are refused with one line naming them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import ProjectError
from tests import models
from tests.entry import assert_error, run_fkhls

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"


def save_json_pair(model, directory: Path) -> tuple[Path, Path]:
    """The pair hls4ml's examples ship: the architecture JSON and the weights .h5."""
    directory.mkdir(parents=True, exist_ok=True)
    arch, weights = directory / "model.json", directory / "model_weights.h5"
    arch.write_text(model.to_json())
    model.save_weights(weights)
    return arch, weights


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Sequential and functional models, each saved as .h5, SavedModel and JSON + weights."""
    out = {}
    for name, build in (("sequential", models.sequential_model), ("functional", models.dense_model)):
        model = build()
        base = tmp_path_factory.mktemp(name)
        model.save(base / "model.h5")
        model.save(base / "saved_model", save_format="tf")
        out[name] = (model, base, *save_json_pair(model, base / "json"))
    return out


@pytest.mark.parametrize("name", ["sequential", "functional"])
def test_json_and_weights_load_the_same_model(saved, name):
    from fkhls.model.spec import describe_model, load_keras_model

    model, _, arch, weights = saved[name]
    loaded = load_keras_model(arch, weights)
    assert type(loaded).__name__ == type(model).__name__
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for expected, got in zip(model.get_weights(), loaded.get_weights()):
        assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    x = models.inputs_for(model, 64)
    assert_array_equal(loaded.predict(x, verbose=0).view(np.uint32), model.predict(x, verbose=0).view(np.uint32))
    assert describe_model(loaded) == describe_model(model)


@pytest.mark.parametrize("name", ["sequential", "functional"])
def test_model_hash_is_the_same_in_every_format(saved, name):
    from fkhls.model.spec import load_keras_model, model_hash

    model, base, arch, weights = saved[name]
    hashes = {"memory": model_hash(model), "h5": model_hash(load_keras_model(base / "model.h5")),
              "savedmodel": model_hash(load_keras_model(base / "saved_model")),
              "json": model_hash(load_keras_model(arch, weights)),
              "json + whole-model .h5 as weights": model_hash(load_keras_model(arch, base / "model.h5"))}
    assert len(set(hashes.values())) == 1, hashes
    changed = load_keras_model(arch, weights)
    layer = next(layer for layer in changed.layers if layer.weights)
    kernel, *rest = layer.get_weights()
    kernel.flat[0] += 0.25
    layer.set_weights([kernel, *rest])
    assert model_hash(changed) != hashes["memory"]


def test_damaged_and_mismatched_files_are_refused(saved, tmp_path):
    import h5py

    from fkhls.model.spec import load_keras_model

    _, base, arch, weights = saved["functional"]
    _, _, seq_arch, seq_weights = saved["sequential"]
    cases = []
    with pytest.raises(ProjectError, match="without weights") as e:
        load_keras_model(arch)
    cases.append(e)
    with pytest.raises(ProjectError, match="goes only with a .json") as e:
        load_keras_model(base / "model.h5", weights)
    cases.append(e)
    text = tmp_path / "model.txt"
    text.write_text("not a model")
    with pytest.raises(ProjectError, match=r"model\.txt.*accepted: .*\.h5.*SavedModel.*\.json") as e:
        load_keras_model(text)
    cases.append(e)
    with pytest.raises(ProjectError, match="not a format fkhls reads") as e:
        load_keras_model(tmp_path)  # a directory without saved_model.pb
    cases.append(e)
    broken = tmp_path / "broken.json"
    broken.write_text(arch.read_text()[:200])
    with pytest.raises(ProjectError, match="broken.json.*not a readable JSON") as e:
        load_keras_model(broken, weights)
    cases.append(e)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"class_name": "Dense", "config": {}}))
    with pytest.raises(ProjectError, match="not a Keras model architecture.*'Dense'") as e:
        load_keras_model(other, weights)
    cases.append(e)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(arch.read_text().replace('"QActivation"', '"QMystery"'))
    with pytest.raises(ProjectError, match="QMystery") as e:
        load_keras_model(unknown, weights)
    cases.append(e)
    with pytest.raises(ProjectError, match=r"does not match the architecture at layer 'd1'") as e:
        load_keras_model(arch, seq_weights)  # another model's weights
    cases.append(e)
    with pytest.raises(ProjectError, match=r"layer 's1'") as e:
        load_keras_model(seq_arch, weights)
    cases.append(e)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(weights.read_bytes()[:3000])
    with pytest.raises(ProjectError, match="truncated.h5.*not a readable Keras weights") as e:
        load_keras_model(arch, truncated)
    cases.append(e)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as handle:
        handle["data"] = np.zeros(3)
    with pytest.raises(ProjectError, match="plain.h5.*not Keras weights") as e:
        load_keras_model(arch, plain)
    cases.append(e)
    assert all("\n" not in str(case.value) for case in cases)


def test_cli_exports_and_verifies_a_json_pair(demo_project_session, tmp_path):
    """`fkhls export model.json --weights ...` builds the same project; `verify --model` of the pair sees the
    very model the demo project came from (same hash across formats) and is bit-exact."""
    from fkhls.model.spec import load_keras_model

    arch, weights = save_json_pair(load_keras_model(DATA / "demo_model.h5"), tmp_path / "pair")
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:40])
    exported = run_fkhls("export", arch, "--weights", weights, "-o", tmp_path / "prj")
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "prj" / "fkhls.json").read_text())
    assert manifest["model_hash"] == demo_project_session.model_hash
    verified = run_fkhls("verify", demo_project_session.project_dir, "--inputs", x, "--model", arch,
                         "--weights", weights)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "differs from the model" not in verified.stderr and "bit-exact: every output word" in verified.stdout
    seq_arch, _ = save_json_pair(models.sequential_model(), tmp_path / "seq")
    assert_error(run_fkhls("export", seq_arch, "--weights", weights, "-o", tmp_path / "bad"),
                 "does not match the architecture at layer", str(weights))
    assert not (tmp_path / "bad").exists()


def test_api_export_takes_weights(tmp_path):
    import fkhls

    model = models.sequential_model()
    arch, weights = save_json_pair(model, tmp_path / "pair")
    project = fkhls.export(str(arch), tmp_path / "prj", weights=weights)
    x = models.inputs_for(model, 30)
    report = project.verify(x)
    assert report.all_exact and report.outputs_compared == 90


def test_verify_model_accepts_the_older_hash_and_names_a_different_model(demo_project_session, tmp_path):
    """A project exported before model_hash left out build_config records sha256(to_json + weights): verify
    --model of the same model stays quiet; any other recorded hash gets the warning."""
    from click.testing import CliRunner

    from fkhls.cli import main
    from fkhls.model.spec import _to_json_model_hash, load_keras_model, model_hash
    from tests.conftest import copy_project

    model = load_keras_model(DATA / "demo_model.h5")
    assert _to_json_model_hash(model) != model_hash(model)
    project = copy_project(demo_project_session.project_dir, tmp_path / "old")
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:20])
    for recorded, warned in ((_to_json_model_hash(model), False), ("0" * 64, True)):
        manifest = json.loads((project / "fkhls.json").read_text())
        manifest["model_hash"] = recorded
        (project / "fkhls.json").write_text(json.dumps(manifest, indent=2))
        result = CliRunner().invoke(main, ["verify", str(project), "--inputs", str(x), "--model",
                                           str(DATA / "demo_model.h5")])
        assert result.exit_code == 0, result.output
        assert ("differs from the model this project was exported from" in result.output) is warned, result.output
