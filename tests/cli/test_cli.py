"""The command line as a new user meets it: export + verify on the demo, and every bad input of issue 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fkhls.cli import main

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    target = tmp_path_factory.mktemp("cli") / "demo"
    result = CliRunner().invoke(main, ["export", str(DATA / "demo_model.h5"), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "fc1" in result.output and "ap_fixed<26,11>" in result.output  # the table of what was built
    return target


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_verify_demo_is_bit_exact(project, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:200])
    result = invoke("verify", project, "--inputs", x)
    assert result.exit_code == 0, result.output
    assert "1000" in result.output and "1000 (100.00%)" in result.output  # 200 samples x 5 outputs
    assert "bit-exact: every output word matches" in result.output


def test_verify_off_grid_inputs_name_the_first_bad_index(project, tmp_path):
    x = np.load(DATA / "demo_inputs.npy")[:10].copy()
    x[3, 7] += 2.0**-12  # finer than ap_fixed<16,6>'s 2**-10 grid
    path = tmp_path / "x.npy"
    np.save(path, x)
    result = invoke("verify", project, "--inputs", path)
    assert result.exit_code == 1
    assert "inputs[(3, 7)]" in result.output and "ap_fixed<16,6>" in result.output


def test_verify_out_of_range_and_wrong_shape(project, tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.full((2, 16), 40.0))  # beyond ap_fixed<16,6>'s [-32, 32)
    result = invoke("verify", project, "--inputs", path)
    assert result.exit_code == 1 and "range [-32.0, 31.9990234375]" in result.output
    np.save(path, np.zeros((4, 15)))
    result = invoke("verify", project, "--inputs", path)
    assert result.exit_code == 1 and "shape (4, 15)" in result.output and "(N, 16)" in result.output
    (tmp_path / "bad.npy").write_text("not numpy")
    result = invoke("verify", project, "--inputs", tmp_path / "bad.npy")
    assert result.exit_code == 1 and "cannot read inputs" in result.output


def test_verify_reports_a_broken_project_with_exit_3(project, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    defines = broken / "firmware" / "defines.h"
    defines.write_text(defines.read_text().replace("typedef ap_fixed<26,11> fc1_accum_t;",
                                                   "typedef ap_fixed<16,6> fc1_accum_t;"))
    x = tmp_path / "x.npy"
    np.save(x, np.load(DATA / "demo_inputs.npy")[:100])
    result = invoke("verify", broken, "--inputs", x)
    assert result.exit_code == 3, result.output
    assert "NOT bit-exact" in result.output


def test_not_a_project_and_existing_output(project, tmp_path):
    result = invoke("verify", tmp_path, "--inputs", DATA / "demo_inputs.npy")
    assert result.exit_code == 1 and "not an fkhls project" in result.output
    result = invoke("export", DATA / "demo_model.h5", "-o", project)
    assert result.exit_code == 1 and "--force" in result.output
    result = invoke("export", DATA / "demo_model.h5", "-o", tmp_path / "p", "--input-type", "float")
    assert result.exit_code == 1 and "cannot parse fixed-point type 'float'" in result.output
    result = invoke("export", DATA / "demo_model.h5", "-o", tmp_path / "q", "--reuse-factor", "0")
    assert result.exit_code == 2  # click's own range check names the option
