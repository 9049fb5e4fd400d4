"""The Python API: the README's notebook example runs as written, and what it returns is exact.

The example is extracted from README.md and executed in a temporary directory with the model it
builds in memory; the assertions then check its objects: raw output words of the faulty C-sim
equal the exact emulation of the same bits, and the campaign's engines agree on every word.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API (notebooks)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md has no python block under '## Python API (notebooks)'"
    return match.group(1)


@pytest.fixture(scope="module", autouse=True)
def _fast_compile():
    """Few samples here: a faster g++ build beats a faster binary."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FKHLS_CXX_OPT", "-O0")
        yield


@pytest.fixture(scope="module")
def example(tmp_path_factory, _fast_compile):
    cwd = tmp_path_factory.mktemp("readme")
    namespace: dict = {"__name__": "readme_example"}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        exec(compile(readme_example(), "README.md", "exec"), namespace)
    namespace["cwd"] = cwd
    return namespace


def test_readme_example_is_exact(example):
    from fkhls.core.fixedpoint import from_raw, type_from_dict
    from fkhls.csim.build import input_words
    from fkhls.emulate.emulator import apply_faults, forward_raw, golden_weights
    from fkhls.model.spec import describe_model

    project, faulty, faults, x = example["project"], example["faulty"], example["faults"], example["x"]
    assert project.verify(x).all_exact
    assert example["check"].all_exact
    # Every bit of the regions, once: fc1 LBIs 0..5 and out's bias LBI 0 (ber 1 draws nothing at random).
    assert len(example["fault_map"]) == 7 == faults.n_bits
    assert list(example["fault_map"]["lbi"]) == [0, 1, 2, 3, 4, 5, 0]
    # The faulty project's C-sim words == the exact emulation of the same bits, as integers.
    model = example["model"]
    spec = describe_model(model, project.manifest.input_type["cpp"])
    x_raw = input_words(project.manifest, x).reshape(len(x), *spec.input_shape)
    words = forward_raw(spec, apply_faults(spec, golden_weights(model, spec), faults.scenarios[0].faults), x_raw)
    hw = faulty.csim(x, raw=True)
    np.testing.assert_array_equal(hw.reshape(len(x), -1), words.reshape(len(x), -1))
    np.testing.assert_array_equal(example["y"], from_raw(type_from_dict(project.manifest.output_type), hw))
    assert not np.array_equal(hw, project.csim(x, raw=True)), "the injected bits change no output: a weak example"


def test_readme_campaign_results(example):
    from matplotlib.figure import Figure

    rows, campaign = example["rows"], example["campaign"]
    out = example["project"].spec.layer("out")
    assert len(rows) == out.kernel.n_bits + out.bias.n_bits  # every bit of out's kernel and bias, once
    assert (rows["mismatched_words"] == 0).all()  # tf and csim engines agree on every output word
    assert isinstance(example["figure"], Figure)
    assert isinstance(campaign.histograms(), Figure)
    # Running the same call again resumes (nothing recomputed) and gives the same rows.
    again = example["project"].campaign(example["x"], example["cwd"] / "my_campaign", layers=["out"], progress=False)
    assert again.result.shards_run == 0
    assert again.to_pandas().equals(rows)


def test_from_regions_draws_like_a_fault_set_file(example):
    import fkhls
    from fkhls.faults.descriptors import load_fault_set

    project = example["project"]
    regions = {"fc1": [fkhls.FaultyLayerBitRegion(3, 90, 0.25), (100, 120, 1.0)], ("out", "bias"): [(1, 20, 0.5)]}
    built = fkhls.FaultSet.from_regions(project, regions, seed=11)
    loaded = load_fault_set({"seed": 11, "faults": [
        {"layer": "fc1", "regions": [[3, 90, 0.25], [100, 120, 1.0]]},
        {"layer": "out", "tensor": "bias", "regions": [[1, 20, 0.5]]}]}, project.spec)
    assert len(built.scenarios) == 1
    assert built.scenarios[0].faults == tuple(f for s in loaded.scenarios for f in s.faults)
    assert built.n_bits == 22 + 21 + 10


def test_locate_and_bad_input(example):
    from fkhls.core.errors import FkhlsError

    project = example["project"]
    row = example["fault_map"].iloc[0]
    hbit = project.locate(row["array"], int(row["element"]), int(row["array_bit"]))
    assert (hbit.layer, hbit.tensor, hbit.lbi) == ("fc1", "kernel", 0)
    with pytest.raises(FkhlsError, match="give either"):
        project.locate("w2", 0)
    with pytest.raises(FkhlsError, match="exists and holds other data"):
        project.campaign(example["x"][:10], example["cwd"] / "my_campaign", layers=["out"], progress=False)


def test_import_fkhls_is_cheap():
    code = ("import sys, fkhls; assert 'tensorflow' not in sys.modules and 'numpy' not in sys.modules; "
            "fkhls.Project; fkhls.FaultSet; assert 'tensorflow' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "ok", result.stderr
