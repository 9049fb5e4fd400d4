"""fkhls.campaign.dask_engine: a LocalCluster on loopback gives the pool's results and survives a killed worker."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from numpy.testing import assert_array_equal

from fkhls.campaign.results_store import read_shard
from fkhls.campaign.runner import SHARD_DIR, CampaignConfig, Selection, load_results, run_campaign
from fkhls.core.errors import FkhlsError
from fkhls.project.export import ExportOptions, export_model

from tests import models
from tests.processes import session_processes

SHARD = 32  # 42 shards for the dense model: enough for a kill to land mid-campaign


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The dense test model, 24 inputs and labels, and its campaign through the process pool (the reference)."""
    base = tmp_path_factory.mktemp("dask")
    model = models.build("dense")
    manifest = export_model(model, base / "dense", ExportOptions())
    x = models.inputs_for(model, n=24, seed=5)
    np.save(base / "x.npy", x)
    np.save(base / "y.npy", np.arange(24) % 3)
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", Selection(mode="exhaustive"),
                            base / "y.npy", SHARD)
    run_campaign(config, base / "pool", workers=2, quiet=True)
    return config, base


def _shard_columns(results_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """Every shard's result columns (timings excluded: they are the only thing allowed to differ)."""
    out = {}
    for path in sorted((results_dir / SHARD_DIR).glob("shard-*")):
        columns = read_shard(path)
        out[int(path.name.split("-")[1].split(".")[0])] = {k: v for k, v in columns.items()
                                                           if not k.startswith("seconds_")}
    return out


def _assert_same_results(a: Path, b: Path) -> None:
    sa, sb = _shard_columns(a), _shard_columns(b)
    assert sorted(sa) == sorted(sb) and sa
    for index in sa:
        assert sorted(sa[index]) == sorted(sb[index])
        for key in sa[index]:
            assert sa[index][key].dtype == sb[index][key].dtype, f"shard {index} column {key}"
            assert_array_equal(sa[index][key], sb[index][key], err_msg=f"shard {index} column {key}")
    ta, tb = load_results(a), load_results(b)
    assert sorted(ta.columns) == sorted(tb.columns)
    for key in ta.columns:
        assert_array_equal(ta.columns[key], tb.columns[key], err_msg=f"results column {key}")


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def _wait_no_new_children(before: set[int], seconds: float = 20.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _children() - before
        if not left:
            return left
        time.sleep(0.2)
    return _children() - before


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_local_equals_pool_and_leaves_no_process(setup, workers):
    config, base = setup
    before = _children()
    result = run_campaign(config, base / f"dask{workers}", workers=workers, quiet=True, scheduler="dask-local")
    assert result.shards_run == result.shards_total == 42
    _assert_same_results(base / "pool", base / f"dask{workers}")
    assert _wait_no_new_children(before) == set(), "a Dask process outlived the campaign"


def test_killed_worker_loses_nothing(setup, tmp_path):
    """SIGKILL one worker of a running cluster mid-campaign: Dask reruns its shard; results equal the pool's."""
    from distributed import Client, LocalCluster

    config, base = setup
    results = tmp_path / "killed"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
    client = Client(cluster)
    killed: dict = {}

    def killer() -> None:
        """After the first shard file, SIGKILL a worker that is running a shard task at that moment."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((results / SHARD_DIR).glob("shard-*")):
            time.sleep(0.02)
        pids = client.run(os.getpid)  # worker address -> pid
        while time.monotonic() < deadline:
            busy = [(address, keys) for address, keys in client.processing().items() if keys and address in pids]
            if busy:
                address, keys = busy[0]
                killed.update(pid=pids[address], task=keys[0],
                              shards_done=len(list((results / SHARD_DIR).glob("shard-*"))))
                os.kill(pids[address], signal.SIGKILL)
                return
            time.sleep(0.01)

    try:
        thread = threading.Thread(target=killer)
        thread.start()
        result = run_campaign(config, results, quiet=True, scheduler=cluster.scheduler_address)
        thread.join()
        assert "pid" in killed, "the killer found no busy worker"
        assert str(killed["task"]).startswith("fkhls-shard-")
        assert killed["shards_done"] < result.shards_total, "the kill landed after the campaign"
        assert not psutil.pid_exists(killed["pid"]) or psutil.Process(killed["pid"]).status() == psutil.STATUS_ZOMBIE
        assert result.shards_run == result.shards_total
        _assert_same_results(base / "pool", results)
    finally:
        client.close()
        cluster.close()


def test_bad_scheduler_is_refused(setup, tmp_path):
    config, _ = setup
    with pytest.raises(FkhlsError, match=r"scheduler 'http://x:1' is not valid; valid: 'local-pool', 'dask-local'"):
        run_campaign(config, tmp_path / "r", scheduler="http://x:1")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra, message", [
    (["--scheduler", "bogus"], "scheduler 'bogus' is not valid"),
    (["--dask", "--scheduler", "local-pool"], "--dask runs on Dask; --scheduler local-pool is the process pool"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers sizes a local pool or cluster"),
])
def test_cli_scheduler_options_are_checked(tmp_path, extra, message):
    """Refused before anything is read or written (the project and inputs here are never opened)."""
    from click.testing import CliRunner

    from fkhls.cli import main

    (tmp_path / "project").mkdir()
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    result = CliRunner().invoke(main, ["campaign", str(tmp_path / "project"), "--inputs", str(tmp_path / "x.npy"),
                                       "--exhaustive", "-o", str(tmp_path / "r"), *extra])
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert not (tmp_path / "r").exists()




def test_killed_dask_campaign_leaves_no_process(setup, tmp_path):
    """kill -9 of `fkhls campaign --dask --workers 2` mid-run: its Dask workers (and their C-sims) exit too."""
    import subprocess
    import sys

    config, _ = setup
    results = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    args = [sys.executable, "-m", "fkhls.cli", "campaign", str(config.project_dir), "--inputs", str(config.inputs),
            "--exhaustive", "--shard-size", "4", "--dask", "--workers", "2", "--quiet", "-o", str(results)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= {pid for pid, _ in session_processes(proc.pid)}
            if len(list((results / SHARD_DIR).glob("shard-*.parquet"))) >= 2 and len(seen) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"campaign ended before it could be killed: {proc.stderr.read().decode()[-800:]}"
        assert len(seen) >= 3, f"expected the campaign and two Dask workers, saw {len(seen)} processes"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 15
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []
