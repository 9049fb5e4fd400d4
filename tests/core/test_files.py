"""The one output rule (issue 9, points 2 and 3): fkhls writes only new, empty or fkhls-made directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fkhls.core.errors import ProjectError
from fkhls.core.files import (
    CAMPAIGN,
    CROSSCHECK,
    PROJECT,
    check_output_dir,
    check_output_file,
    classify_output_dir,
    directory_lock,
    is_owned,
    load_array,
    staged_directory,
)


def _project_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "fkhls.json").write_text(json.dumps({"schema": 1, "project_name": "myproject", "layers": []}))
    (path / "firmware").mkdir()
    return path


def test_new_empty_and_owned_directories_are_classified(tmp_path):
    assert classify_output_dir(tmp_path / "new") == "absent"
    (tmp_path / "empty").mkdir()
    assert classify_output_dir(tmp_path / "empty", owner=PROJECT) == "empty"
    assert classify_output_dir(_project_dir(tmp_path / "prj"), owner=PROJECT) == "owned"
    results = tmp_path / "results"
    results.mkdir()
    (results / "campaign.json").write_text(json.dumps({"schema": 1, "project_hash": "x", "n_shards": 2}))
    assert classify_output_dir(results, owner=CAMPAIGN) == "owned"
    assert is_owned(results, CAMPAIGN) and not is_owned(results, PROJECT) and not is_owned(results, CROSSCHECK)


@pytest.mark.parametrize("force", [False, True])
def test_a_directory_of_user_files_is_refused_force_or_not(tmp_path, force):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("years of work")
    (thesis / ".ssh").mkdir()
    (thesis / ".ssh" / "id_ed25519").write_text("key")
    # a user's own results.csv/report.md/summary.json do not make a campaign or cross-check directory
    for name in ("results.csv", "report.md", "summary.json"):
        (thesis / name).write_text("{}" if name.endswith(".json") else "mine")
    for owner in (PROJECT, CAMPAIGN, CROSSCHECK, None):
        with pytest.raises(ProjectError, match=r"holds files fkhls did not write \(\.ssh, report\.md, results\.csv"):
            check_output_dir(thesis, force, "output directory", owner=owner)
    with pytest.raises(ProjectError, match="did not write"):
        with staged_directory(thesis, force, "project directory", owner=PROJECT) as staging:
            (staging / "fkhls.json").write_text("{}")
    assert (thesis / "thesis.tex").read_text() == "years of work"
    assert (thesis / ".ssh" / "id_ed25519").read_text() == "key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging directory left behind


def test_an_fkhls_directory_is_replaced_only_with_force(tmp_path):
    target = _project_dir(tmp_path / "prj")
    with pytest.raises(ProjectError, match="earlier fkhls project; pass --force"):
        check_output_dir(target, False, owner=PROJECT)
    with staged_directory(target, True, "project directory", owner=PROJECT) as staging:
        (staging / "fkhls.json").write_text("{}")
    assert (target / "fkhls.json").read_text() == "{}" and not (target / "firmware").exists()


@pytest.mark.parametrize("where", ["home", "cwd", "root", "parent of cwd"])
def test_home_working_directory_and_root_are_never_outputs(tmp_path, monkeypatch, where):
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    target = {"home": tmp_path / "home", "cwd": Path("."), "root": Path("/"), "parent of cwd": work.parent}[where]
    with pytest.raises(ProjectError, match="is refused: it (is|contains)"):
        check_output_dir(target, True, owner=PROJECT)


def test_outputs_inside_or_around_the_golden_project_are_refused(tmp_path):
    golden = _project_dir(tmp_path / "golden")
    for target in (golden, golden / "out", tmp_path):
        with pytest.raises(ProjectError, match="outside the golden project"):
            check_output_dir(target, True, owner=PROJECT, golden=golden)
    with pytest.raises(ProjectError, match="outside the golden project"):
        check_output_file(golden / "y.npy", True, golden=golden)
    with pytest.raises(ProjectError, match="exists; pass --force"):
        (tmp_path / "y.npy").write_bytes(b"mine")
        check_output_file(tmp_path / "y.npy", False)
    with pytest.raises(ProjectError, match="is a directory"):
        check_output_file(golden, True)


def test_a_locked_directory_is_refused_to_a_second_process(tmp_path):
    code = ("import sys; from fkhls.core.files import directory_lock\n"
            "try:\n    with directory_lock(sys.argv[1]): pass\nexcept Exception as e:\n    print(e); sys.exit(7)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with directory_lock(tmp_path):
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert other.returncode == 7 and "in use by another fkhls process" in other.stdout, other.stderr
    again = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout  # released when the holder is done
    assert classify_output_dir(tmp_path) == "empty"  # the lock file alone is not a user file


def test_damaged_npy_files_get_one_clear_error(tmp_path):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.arange(100.0))
    truncated.write_bytes(truncated.read_bytes()[:90])
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for path in (empty, truncated, pickled, tmp_path / "missing.npy", tmp_path):
        with pytest.raises(ProjectError, match=rf"cannot read inputs '{path}' \(expected a \.npy array\)"):
            load_array(path)
