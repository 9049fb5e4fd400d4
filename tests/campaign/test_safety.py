"""Campaign results directories and workers (issue 9, points 2, 5 and 7): nothing overwritten, nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fkhls.campaign.runner import SHARD_DIR, CampaignConfig, Selection, run_campaign
from fkhls.core.errors import ProjectError
from fkhls.core.files import directory_lock
from fkhls.project.export import export_model
from tests import models
from tests.processes import session_processes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    base = tmp_path_factory.mktemp("campaign-safety")
    model = models.dense_model()
    manifest = export_model(model, base / "dense")
    np.save(base / "x.npy", models.grid_inputs((10,), 16, seed=2))
    np.save(base / "x_many.npy", models.grid_inputs((10,), 3000, seed=3))
    return manifest.project_dir, base / "x.npy", base / "x_many.npy"


def _config(project, **selection) -> CampaignConfig:
    project_dir, x, _ = project
    return CampaignConfig(project_dir, x, "tf", Selection(mode="exhaustive", **selection), None, 16)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("force", [False, True])
def test_results_never_go_into_the_project_or_over_user_files(project, tmp_path, force):
    project_dir = project[0]
    before = _tree(project_dir)
    for target in (project_dir, project_dir / "results"):
        with pytest.raises(ProjectError, match="outside the golden project"):
            run_campaign(_config(project, layers=("d3",)), target, workers=1, quiet=True, force=force)
    assert _tree(project_dir) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in (("results.csv", "a,b\n1,2\n"), ("report.md", "# my report\n"), ("summary.json", "{}\n")):
        (mine / name).write_text(text)
    with pytest.raises(ProjectError, match=r"did not write \(report\.md, results\.csv, summary\.json"):
        run_campaign(_config(project, layers=("d3",)), mine, workers=1, quiet=True, force=force)
    assert _tree(mine) == {"report.md": b"# my report\n", "results.csv": b"a,b\n1,2\n", "summary.json": b"{}\n"}


def test_a_forced_campaign_is_refused_while_another_runs_in_the_directory(project, tmp_path):
    results = tmp_path / "r"
    first = run_campaign(_config(project, layers=("d3",)), results, workers=1, quiet=True, report=False)
    before = _tree(results)
    with directory_lock(results):  # what the running campaign holds
        with pytest.raises(ProjectError, match="is in use by another fkhls process"):
            run_campaign(_config(project, layers=("out",)), results, workers=1, quiet=True, force=True)
    assert _tree(results) == before  # the running campaign's shards and header are untouched
    again = run_campaign(_config(project, layers=("out",)), results, workers=1, quiet=True, force=True)
    assert again.identity["selection"]["layers"] == ["out"] and first.identity["selection"]["layers"] == ["d3"]
    assert not [p for p in (results / SHARD_DIR).iterdir() if p.name.startswith(".")]




@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc")
def test_a_killed_campaign_leaves_no_process(project, tmp_path):
    """kill -9 of `fkhls campaign --workers 2` mid-run: workers, forkserver, resource tracker and C-sims all exit."""
    project_dir, _, x_many = project
    results = tmp_path / "killed"
    args = [sys.executable, "-m", "fkhls.cli", "campaign", str(project_dir), "--inputs", str(x_many), "--engine",
            "both", "--exhaustive", "--shard-size", "2", "--workers", "2", "--quiet", "-o", str(results)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env,
                            start_new_session=True)  # its session id is its pid: descendants keep it
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= {pid for pid, _ in session_processes(proc.pid)}
            if len(list((results / SHARD_DIR).glob("shard-*.parquet"))) >= 2 and len(seen) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"campaign ended before it could be killed: {proc.stderr.read().decode()[-800:]}"
        assert len(seen) >= 4, f"expected the campaign, a forkserver and two workers, saw {len(seen)} processes"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 10
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []
    stray = [p.name for p in (results / SHARD_DIR).iterdir() if not p.name.startswith("shard-")]
    assert all(name.startswith(".shard-") for name in stray)  # at most temporaries, removed by the next resume
    identity = json.loads((results / "campaign.json").read_text())
    assert len(list((results / SHARD_DIR).glob("shard-*.parquet"))) < identity["n_shards"]
