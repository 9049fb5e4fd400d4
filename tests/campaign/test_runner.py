"""fkhls.campaign.runner: engines agree, results independent of workers, resume after a kill, refusal of another campaign."""

from __future__ import annotations

import json
from dataclasses import replace
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from fkhls.campaign.runner import (
    SHARD_DIR,
    CampaignConfig,
    CampaignMismatchError,
    Selection,
    default_shard_size,
    engine_agreement,
    fault_metrics,
    load_results,
    run_campaign,
)
from fkhls.campaign.results_store import read_shard
from fkhls.core.errors import FkhlsError
from fkhls.project.export import ExportOptions, export_model

from tests import models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(dense_project_session):
    """The dense test model (every activation kind), 24 inputs and labels (shared with the whole session)."""
    return dense_project_session


def _config(project, engine="both", labels=True, shard_size=64, **selection) -> CampaignConfig:
    project_dir, x, y = project
    selection = Selection(**{"mode": "exhaustive", **selection})
    return CampaignConfig(project_dir, x, engine, selection, y if labels else None, shard_size)


def _shards(results_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """Every shard's result columns (timings excluded)."""
    out = {}
    for path in sorted((results_dir / SHARD_DIR).glob("shard-*.parquet")):
        data = read_shard(path)
        out[int(path.stem.split("-")[1])] = {k: v for k, v in data.items() if not k.startswith("seconds_")}
    return out


def _assert_same_shards(a: Path, b: Path) -> None:
    sa, sb = _shards(a), _shards(b)
    assert sorted(sa) == sorted(sb)
    for index in sa:
        assert sorted(sa[index]) == sorted(sb[index])
        for key in sa[index]:
            assert_array_equal(sa[index][key], sb[index][key], err_msg=f"shard {index} column {key}")


# ----------------------------------------------------------------------------- per-shard arithmetic


def test_fault_metrics_by_hand():
    golden = np.array([[5, 1], [0, 3], [2, 2]])  # argmax 0, 1, 0
    outputs = np.array([golden, [[5, 9], [0, 3], [2, 2]], [[-5, 1], [4, 3], [2, 1]]])
    m = fault_metrics(golden, outputs, labels=np.array([0, 1, 1]))
    assert_array_equal(m["outputs_changed"], [0, 1, 3])
    assert_array_equal(m["samples_changed"], [0, 1, 3])
    assert_array_equal(m["max_abs_error_lsb"], [0, 8, 10])
    assert_array_equal(m["top1_changed"], [0, 1, 2])  # sample 0 -> class 1; sample 1 -> class 0
    assert_array_equal(m["correct"], [2, 1, 0])


def test_engine_agreement_counts_words_and_first_sample():
    a = np.zeros((2, 4, 3), dtype=np.int64)
    b = a.copy()
    b[1, 2, 0], b[1, 3, 2] = 3, -1
    agree = engine_agreement(a, b)
    assert_array_equal(agree["mismatched_words"], [0, 2])
    assert_array_equal(agree["max_lsb_diff"], [0, 3])
    assert_array_equal(agree["first_mismatch_sample"], [-1, 2])


def test_engine_agreement_and_metrics_see_one_lsb_of_a_wide_word():
    """62-bit words (fixedpoint.MAX_WIDTH) above 2**53: one LSB apart is a mismatch, as integers."""
    big = (1 << 60) + 3
    a = np.array([[[big, -big]]], dtype=np.int64)
    b = a + np.array([[[1, 0]]])
    assert float(big) == float(big + 1)  # a float comparison could not tell
    agree = engine_agreement(a, b)
    assert_array_equal(agree["mismatched_words"], [1])
    assert_array_equal(agree["max_lsb_diff"], [1])
    m = fault_metrics(a[0], b)
    assert_array_equal(m["outputs_changed"], [1])
    assert_array_equal(m["max_abs_error_lsb"], [1])


def test_metrics_of_no_scenario_are_empty_columns():
    """A shard where --csim-sample drew no fault hands the C-sim engine zero scenarios."""
    golden = np.zeros((4, 3), dtype=np.int64)
    none = np.zeros((0, 4, 3), dtype=np.int64)
    m = fault_metrics(golden, none, labels=np.zeros(4, dtype=np.int64))
    assert all(v.shape == (0,) and v.dtype == np.int64 for v in m.values()), m
    agree = engine_agreement(none, none)
    assert all(v.shape == (0,) for v in agree.values()), agree


def test_workers_get_only_their_shards_scenarios(project):
    """Each ShardTask carries scenarios lo..hi-1 of the campaign's list and its --csim-sample offsets; the
    state sent once per worker has no per-fault field."""
    import dataclasses

    from fkhls.campaign.runner import ScenarioList, _State, campaign_scenarios, shard_tasks
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.faults.descriptors import FaultScenario, exhaustive_faults

    from fkhls.project.manifest import load_manifest

    spec = spec_from_manifest(load_manifest(project[0]))
    scenarios = campaign_scenarios(spec, Selection("exhaustive"))
    assert isinstance(scenarios, ScenarioList)
    full = exhaustive_faults(spec)
    assert [s.faults[0] for s in scenarios] == full
    assert scenarios[7] == FaultScenario(f"{full[7].layer}.{full[7].tensor}[lbi={full[7].lbi}]", (full[7],))
    last = (len(full) - 1) // 100
    tasks = list(shard_tasks(scenarios, [0, 1, last], 100))
    assert [(t.index, t.lo, len(t.scenarios)) for t in tasks[:2]] == [(0, 0, 100), (1, 100, 100)]
    assert list(tasks[1].scenarios) == scenarios[100:200]
    assert tasks[2].lo + len(tasks[2].scenarios) == len(full) and tasks[2].csim_rows is None
    # --csim-sample: the sampled rows in C-sim shards of 2 (a chunk each), spread among the other shards
    rows = np.array([0, 3, 99, 100, 101, len(full) - 1])
    tasks = list(shard_tasks(scenarios, [0, 1, last], 100, rows, [0, 2], 2))
    assert [(t.index, t.csim_part) for t in tasks] == [(last + 1, 0), (0, None), (last + 3, 2), (1, None),
                                                         (last, None)]
    assert_array_equal(tasks[0].csim_rows, [0, 3])
    assert_array_equal(tasks[2].csim_rows, [101, len(full) - 1])
    assert list(tasks[2].scenarios) == [scenarios[101], scenarios[len(full) - 1]]
    assert all(t.csim_rows is None for t in tasks if t.csim_part is None)
    assert not {"scenarios", "hw", "csim_rows"} & {f.name for f in dataclasses.fields(_State)}


def test_selection_is_validated():
    with pytest.raises(FkhlsError, match="--ber RATE, --trials N and --seed S"):
        Selection("ber", ber=0.01)
    with pytest.raises(FkhlsError, match="exhaustive campaign only"):
        Selection("ber", ber=0.01, trials=2, seed=0, bits=(1,))
    with pytest.raises(FkhlsError, match="valid engines"):
        CampaignConfig(Path("."), Path("x.npy"), "vivado", Selection("exhaustive"))


# ----------------------------------------------------------------------------- whole campaigns


@pytest.fixture(scope="module")
def full_run(project, tmp_path_factory):
    """Every single bit of the dense model through both engines, in this process."""
    out = tmp_path_factory.mktemp("runs") / "full"
    result = run_campaign(_config(project), out, workers=1, quiet=True)
    return result, out


def test_exhaustive_both_engines_are_bit_exact(full_run):
    result, out = full_run
    table = result.table
    n_bits = 10 * 8 * 8 + 8 * 8 + 8 * 7 * 5 + 7 * 6 + 7 * 6 * 4 + 6 * 4 + 6 * 3 * 6 + 3 * 6
    assert len(table) == n_bits and result.shards_total == -(-n_bits // 64)
    assert int(table.columns["mismatched_words"].sum()) == 0, table.columns["scenario"][
        table.columns["mismatched_words"] > 0][:10]
    for key in ("outputs_changed", "top1_changed", "max_abs_error_lsb", "accuracy_drop"):
        assert_array_equal(table.columns[f"tf_{key}"], table.columns[f"csim_{key}"], err_msg=key)
    assert table.columns["tf_outputs_changed"].max() > 0  # the campaign is not vacuous
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"] == n_bits and summary["bit_exact"] == summary["outputs_compared"]
    assert summary["outputs_compared"] == n_bits * 24 * 3 and summary["mismatching_scenarios"] == []
    assert summary["timings"]["csim_engine"] == "cone"  # the fast engine ran (a silent fallback would also agree)
    assert summary["sensitivity"]["outputs_changed_fraction"]["rows"][:2] == ["d1 kernel", "d1 bias"]
    for name in ("campaign.json", "golden.npz", "report.md", "heatmap.png", "histograms.png", "results.csv"):
        assert (out / name).is_file(), name


def test_rows_name_the_fault_in_every_coordinate(full_run, project):
    from fkhls.faults.addressing import map_lbi
    from fkhls.project.manifest import load_manifest

    table = full_run[0].table
    manifest = load_manifest(project[0])
    for i in (0, 7, 641, len(table) - 1):
        row = table.row(i)
        hbit = map_lbi(manifest, row["layer"], row["tensor"], row["lbi"])
        assert (row["array"], row["element"], row["array_bit"], row["flat_index"], row["bit"]) == \
            (hbit.array, hbit.element, hbit.array_bit, hbit.flat_index, hbit.bit)
    assert table.row(0)["model_bit"] == 0 and table.row(len(table) - 1)["model_bit"] == len(table) - 1


def test_results_do_not_depend_on_the_number_of_workers(full_run, tmp_path):
    config = full_run[0].identity
    out = tmp_path / "two"
    result = run_campaign(_config((Path(config["project"]), Path(config["inputs"]), Path(config["labels"]))), out,
                          workers=2, quiet=True)
    assert result.shards_run == result.shards_total
    _assert_same_shards(full_run[1], out)


def test_resume_runs_only_missing_shards(project, tmp_path):
    config = _config(project, engine="tf", shard_size=100, layers=("d2", "out"))
    partial = run_campaign(config, tmp_path / "r", workers=1, quiet=True, max_shards=2)
    assert partial.table is None and partial.shards_run == 2
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r" / SHARD_DIR).glob("shard-*.parquet")}
    with pytest.raises(Exception, match="unfinished"):
        load_results(tmp_path / "r")
    resumed = run_campaign(config, tmp_path / "r", workers=2, quiet=True)
    assert resumed.shards_run == resumed.shards_total - 2
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r" / SHARD_DIR).glob("shard-*.parquet")}
    assert all(after[name] == mtime for name, mtime in before.items())  # finished work is not redone
    whole = run_campaign(config, tmp_path / "w", workers=1, quiet=True)
    _assert_same_shards(tmp_path / "r", tmp_path / "w")
    again = run_campaign(config, tmp_path / "w", workers=1, quiet=True)  # finished: nothing to do
    assert again.shards_run == 0 and len(again.table) == len(whole.table)
    # without --shard-size, a resumed campaign keeps the size it recorded (not today's default)
    default = run_campaign(replace(config, shard_size=None), tmp_path / "w", workers=1, quiet=True)
    assert default.shards_run == 0 and default.identity["shard_size"] == 100


def test_default_shard_size_bounds_memory_and_leaves_shards_for_every_worker():
    assert default_shard_size(1000, 5) == 2048  # 16 M words / 5,000 per fault, as a power of two
    assert default_shard_size(1000, 5, 26334) == 1024  # the demo: 26 shards, not 13
    assert default_shard_size(1000, 5, 1000) == 256  # never below 256 faults per shard
    assert default_shard_size(1000, 5, 10**7) == 2048 and default_shard_size(10**6, 100, 10**7) == 1  # the memory cap wins


def test_another_campaign_in_the_directory_is_refused_unless_forced(project, tmp_path):
    config = _config(project, engine="tf", layers=("out",))
    run_campaign(config, tmp_path, workers=1, quiet=True, report=False)
    other = _config(project, engine="tf", layers=("out",), shard_size=10)
    with pytest.raises(CampaignMismatchError, match=r"shard_size: on disk 64, asked 10.*--force"):
        run_campaign(other, tmp_path, workers=1, quiet=True)
    with pytest.raises(CampaignMismatchError, match="selection"):
        run_campaign(_config(project, engine="tf", layers=("d3",)), tmp_path, workers=1, quiet=True)
    (tmp_path / "keep.txt").write_text("user file")
    result = run_campaign(other, tmp_path, workers=1, quiet=True, force=True)
    assert result.identity["shard_size"] == 10 and result.shards_run == result.shards_total
    assert (tmp_path / "keep.txt").read_text() == "user file"  # --force removes only campaign files


def test_ber_campaign_is_seeded_and_engines_agree(project, tmp_path):
    config = _config(project, shard_size=4, mode="ber", ber=0.01, trials=10, seed=3)
    result = run_campaign(config, tmp_path / "a", workers=1, quiet=True)
    table = result.table
    assert len(table) == 10 and set(table.columns["n_bits"]) == {int(1344 * 0.01)}
    assert int(table.columns["mismatched_words"].sum()) == 0
    assert result.identity["seeds"] == {"ber_trials": 3}
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["seeds"] == {"ber_trials": 3} and "sensitivity" not in summary
    assert not (tmp_path / "a" / "heatmap.png").exists()
    other = run_campaign(_config(project, engine="tf", shard_size=4, mode="ber", ber=0.01, trials=10, seed=4),
                         tmp_path / "b", workers=1, quiet=True)
    assert not np.array_equal(other.table.columns["tf_outputs_changed"], table.columns["tf_outputs_changed"])


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_campaign_resumes_to_the_uninterrupted_result(project, tmp_path, workers):
    """A campaign killed (SIGKILL) mid-way, then resumed, equals one that ran straight through.

    With ``--workers 2`` the process pool is killed with it (the whole process group, as a job
    kill does), so no worker can finish a shard after the count below.
    """
    project_dir, x, y = project
    killed = tmp_path / "killed"
    args = [sys.executable, "-m", "fkhls.cli", "campaign", str(project_dir), "--inputs", str(x), "--labels", str(y),
            "--engine", "csim", "--exhaustive", "--layers", "d3,out", "--shard-size", "3", "--workers", str(workers),
            "--quiet", "-o", str(killed)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((killed / SHARD_DIR).glob("shard-*.parquet"))) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"campaign ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
        if workers == 2:  # the pool is really running: parent, forkserver and two workers
            assert len(_group_members(proc.pid)) >= 4, _group_members(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)  # the campaign and, with a pool, its workers
    finally:
        proc.wait()
    _wait_group_gone(proc.pid)
    done = len(list((killed / SHARD_DIR).glob("shard-*.parquet")))
    n_shards = json.loads((killed / "campaign.json").read_text())["n_shards"]
    assert 3 <= done < n_shards
    config = _config(project, engine="csim", shard_size=3, layers=("d3", "out"))
    resumed = run_campaign(config, killed, workers=2, quiet=True)
    assert resumed.shards_run == n_shards - done
    straight = tmp_path / "straight"
    run_campaign(config, straight, workers=1, quiet=True)
    _assert_same_shards(killed, straight)
    assert not list((killed / SHARD_DIR).glob(".*"))  # no temporary file left behind


def _group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid`` (Linux /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_group_gone(pgid: int, seconds: float = 30.0) -> None:
    """Wait until no process of the killed group is left (SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _group_members(pgid):  # zombies left for init to reap do not count: they cannot write
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still alive {seconds} s after SIGKILL")


# ----------------------------------------------------------------------------- CLI


def test_cli_campaign_and_report(project, tmp_path):
    from fkhls.cli import main

    project_dir, x, y = project
    out = tmp_path / "cli"
    runner = CliRunner()
    result = runner.invoke(main, ["campaign", str(project_dir), "--inputs", str(x), "--engine", "tf", "--exhaustive",
                                  "--layers", "out", "--bits", "5,0", "-o", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "faults" in result.output and "42" in result.output  # (18 kernel + 3 bias words) x 2 bits
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"] == (18 + 3) * 2 and summary["selection"]["bits"] == [5, 0]
    again = runner.invoke(main, ["campaign-report", str(out)])
    assert again.exit_code == 0 and "heatmap" in again.output
    bad = runner.invoke(main, ["campaign", str(project_dir), "--inputs", str(x), "--exhaustive", "--ber", "0.1",
                               "-o", str(tmp_path / "both")])
    assert bad.exit_code == 2 and "exactly one of --exhaustive or --ber" in bad.output
    bad = runner.invoke(main, ["campaign", str(project_dir), "--inputs", str(x), "--engine", "tf", "--exhaustive",
                               "--layers", "nope", "-o", str(tmp_path / "n")])
    assert bad.exit_code == 1 and "nope" in bad.output


@pytest.mark.parametrize("io_type,strategy,rf", [("io_parallel", "Resource", 2), ("io_stream", "Latency", 1)])
def test_conv_campaign_engines_agree(tmp_path, io_type, strategy, rf):
    """Conv2D projects, both io types (both run the cone harness; io_stream its own): every word of every fault agrees."""
    model = models.build("conv2d")
    manifest = export_model(model, tmp_path / "conv", ExportOptions("Vivado", io_type, strategy, rf))
    x = models.inputs_for(model, n=12, seed=9)
    np.save(tmp_path / "x.npy", x)
    config = CampaignConfig(manifest.project_dir, tmp_path / "x.npy", "both",
                            Selection(mode="exhaustive", bits=(4, 0)), None, 64)
    result = run_campaign(config, tmp_path / "out", workers=2, quiet=True)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    n_words = sum(t.size for t in describe_spec(model).tensors())
    assert summary["faults"] == 2 * n_words and result.shards_run == result.shards_total
    assert summary["outputs_compared"] == summary["bit_exact"] == 2 * n_words * 12 * 3
    assert summary["scenarios_mismatching"] == 0
    assert summary["timings"]["csim_engine"] == "cone"


def describe_spec(model):
    from fkhls.model.spec import describe_model

    return describe_model(model)
