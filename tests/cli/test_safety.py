"""Every failure of issue 9 through the real entry point: one line on stderr, exit 1, no traceback, nothing lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fkhls.core.files import directory_lock
from fkhls.project.export import export_model
from tests import models

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "fkhls" / "data"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli-safety")
    export_model(models.dense_model(), base / "golden")
    np.save(base / "x.npy", models.grid_inputs((10,), 8, seed=1))
    (base / "faults.json").write_text(json.dumps({"faults": [{"layer": "d1", "bits": [0]}]}))
    return base / "golden", base / "x.npy", base / "faults.json"


def fkhls(*args, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fkhls.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env or ENV)


def assert_one_line_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("fkhls: error: ") and re.search(pattern, lines[0]), lines[0]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_force_never_deletes_a_directory_fkhls_did_not_make(golden, tmp_path):
    project, _, faults = golden
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("secret")
    (home / "thesis.tex").write_text("chapter 1")
    before = _tree(home)
    env = {**ENV, "HOME": str(home)}
    assert_one_line_error(fkhls("inject", project, "--faults", faults, "-o", ".", "--force", cwd=home, env=env),
                          r"directory '\.' is refused: it is (your home|the working) directory")
    assert_one_line_error(fkhls("inject", project, "--faults", faults, "-o", home, "--force", cwd=tmp_path, env=env),
                          r"'.*home' is refused: it is your home directory")
    thesis = tmp_path / "thesis"
    shutil.copytree(home, thesis)
    assert_one_line_error(fkhls("inject", project, "--faults", faults, "-o", thesis, "--force"),
                          r"'.*thesis' holds files fkhls did not write \(\.ssh, thesis\.tex\)")
    assert_one_line_error(fkhls("export", DATA / "demo_model.h5", "-o", thesis, "--force"),
                          r"project directory .* holds files fkhls did not write")
    assert _tree(home) == before and _tree(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "thesis"]


def test_outputs_inside_the_golden_project_are_refused(golden, tmp_path):
    project, x, faults = golden
    before = _tree(project)
    assert_one_line_error(fkhls("campaign", project, "--inputs", x, "--engine", "tf", "--exhaustive", "-o", project),
                          "outside the golden project")
    assert_one_line_error(fkhls("crosscheck", project, "--faults", faults, "--inputs", x, "--report",
                                project / "cc", "--force"), "outside the golden project")
    assert_one_line_error(fkhls("csim", project, "--inputs", x, "-o", project / "y.npy"), "outside the golden project")
    assert_one_line_error(fkhls("faultmap", project, "--faults", faults, "-o", project / "map.csv"),
                          "outside the golden project")
    assert _tree(project) == before


def test_damaged_inputs_cache_manifest_and_outputs_are_one_line(golden, tmp_path):
    project, x, _ = golden
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert_one_line_error(fkhls("csim", project, "--inputs", empty, "-o", tmp_path / "y.npy"),
                          r"cannot read inputs .*empty\.npy' \(expected a \.npy array\)")
    complex_x = tmp_path / "complex.npy"
    np.save(complex_x, np.load(x).astype(np.complex64))
    assert_one_line_error(fkhls("csim", project, "--inputs", complex_x, "-o", tmp_path / "y.npy"), "are complex")
    cache_file = tmp_path / "cache-file"
    cache_file.write_text("")
    assert_one_line_error(fkhls("csim", project, "--inputs", x, "-o", tmp_path / "y.npy",
                                env={**ENV, "FKHLS_CACHE_DIR": str(cache_file)}),
                          r"FKHLS_CACHE_DIR '.*cache-file' is not a usable directory")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # running as root: a directory even root cannot create files in
        read_only = Path("/sys")
    assert_one_line_error(fkhls("csim", project, "--inputs", x, "-o", read_only / "y.npy"),
                          rf"'{read_only}/\.y\.npy\.\w+.*': Permission denied|'{read_only}.*': Permission denied")
    edited = tmp_path / "edited"
    shutil.copytree(project, edited)
    data = json.loads((edited / "fkhls.json").read_text())
    data["reuse_factor"] = "1"
    (edited / "fkhls.json").write_text(json.dumps(data))
    assert_one_line_error(fkhls("csim", edited, "--inputs", x, "-o", tmp_path / "y.npy"),
                          r"field reuse_factor is '1'; expected an integer in 1\.\.inf")
    assert not (tmp_path / "y.npy").exists()


def test_a_second_forced_campaign_in_a_running_ones_directory_is_refused(golden, tmp_path):
    project, x, _ = golden
    results = tmp_path / "r"
    results.mkdir()
    with directory_lock(results):
        assert_one_line_error(fkhls("campaign", project, "--inputs", x, "--engine", "tf", "--exhaustive", "--force",
                                    "-o", results), "in use by another fkhls process")
    assert [p.name for p in results.iterdir()] == [".fkhls.lock"]
