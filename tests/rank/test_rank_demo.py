"""Rankings on the demo model scored against its exact exhaustive campaign (all 1000 bundled inputs).

The campaign (TF engine) is the truth; the exhaustive ranking must be the oracle (100% of the
damage at the smallest possible k), the random one must follow the diagonal, the FKeras methods
must run and write every bit in every coordinate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign
from fkhls.cli import main
from fkhls.core.errors import FkhlsError
from fkhls.faults.addressing import address_map, spec_from_manifest
from fkhls.project.export import ExportOptions, export_model
from fkhls.rank.bitorder import BitSpace
from fkhls.rank.evaluate import FRACTIONS, oracle_score, score_ranking
from fkhls.rank.methods import HessianOptions, rank_project
from fkhls.rank.ranking import read_ranking, sidecar_path, write_ranking
from fkhls.rank.truth import truth_from_campaign

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"
N = 1000  # fewer inputs leave few critical bits (41 with the first 200): the diagonal test needs thousands


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo project (Resource, RF 4: weights in BRAM, so memory coordinates exist), inputs, labels, TF campaign."""
    base = tmp_path_factory.mktemp("rank")
    manifest = export_model(DATA / "demo_model.h5", base / "demo", ExportOptions(strategy="Resource", reuse_factor=4))
    np.save(base / "x.npy", np.load(DATA / "demo_inputs.npy")[:N])
    np.save(base / "y.npy", np.load(DATA / "demo_labels.npy")[:N])
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "tf", Selection(mode="exhaustive"), base / "y.npy")
    run_campaign(config, base / "campaign", workers=1, quiet=True)
    space = BitSpace.of(spec_from_manifest(manifest))
    return {"base": base, "project": manifest.project_dir, "manifest": manifest, "x": base / "x.npy",
            "y": base / "y.npy", "campaign": base / "campaign", "space": space,
            "truth": truth_from_campaign(base / "campaign", space)}


def test_engine_truth_equals_campaign_truth(demo):
    from_engine = rank_project(demo["project"], "exhaustive", inputs=demo["x"])
    from_campaign = rank_project(demo["project"], "exhaustive", campaign=demo["campaign"])
    assert len(from_engine) == demo["space"].n_bits == 26334
    assert_array_equal(from_engine.model_bit, from_campaign.model_bit)
    assert_array_equal(from_engine.score, from_campaign.score)
    assert from_campaign.info["inputs_hash"] == from_engine.info["inputs_hash"]


def test_exhaustive_ranking_is_the_oracle(demo):
    truth = demo["truth"]
    score = score_ranking(rank_project(demo["project"], "exhaustive", campaign=demo["campaign"]), truth)
    oracle = oracle_score(truth)
    n_damaging = int(np.count_nonzero(truth.damage))
    assert n_damaging == score.n_critical > 0
    # 100% of the damage exactly at k = number of damaging bits: no ranking can do it with fewer
    assert score.curve[n_damaging - 1] == 1.0 and score.curve[n_damaging - 2] < 1.0
    assert_array_equal(score.curve, oracle.curve)
    assert score.damage_at == oracle.damage_at
    for q in FRACTIONS:
        assert score.k_critical[q] == math.ceil(q * n_damaging)
    assert score.precision_at[n_damaging] == 1.0


def test_random_ranking_follows_the_diagonal_and_its_seed(demo):
    truth, n = demo["truth"], demo["space"].n_bits
    a = rank_project(demo["project"], "random", seed=3)
    b = rank_project(demo["project"], "random", seed=3)
    c = rank_project(demo["project"], "random", seed=4)
    assert_array_equal(a.model_bit, b.model_bit)
    assert not np.array_equal(a.model_bit, c.model_bit)
    for ranking in (a, c):
        score = score_ranking(ranking, truth)
        k = np.arange(1, n + 1)
        # ~4,000 critical bits: a uniform order stays within ~1.63/sqrt(4000) = 0.026 of k/n (Kolmogorov, 99%)
        assert np.abs(score.curve - k / n).max() < 0.05
        assert np.abs(score.critical_found / score.n_critical - k / n).max() < 0.05
        assert abs(score.kendall_tau) < 0.03 and abs(score.auc - 0.5) < 0.03
        for fraction, covered in score.damage_at.items():
            assert abs(covered - fraction) < 0.05


def test_msb_ranking_is_bit_position_first(demo):
    ranking = rank_project(demo["project"], "msb")
    widths = np.asarray(demo["space"].widths)[ranking.tensor]
    from_msb = ranking.lbi % widths
    assert np.all(np.diff(from_msb) >= 0)
    first = ranking.model_bit[from_msb == 0]
    assert np.all(np.diff(first) > 0)  # model-bit order inside a position


@pytest.mark.parametrize("method", ["gradient", "taylor", "hessian"])
def test_fkeras_methods_rank_every_bit_and_beat_random(demo, method):
    ranking = rank_project(demo["project"], method, inputs=demo["x"], labels=demo["y"], seed=1,
                           hessian=HessianOptions(top_k=2, max_iter=8, max_samples=128))
    ranking.check_complete()
    assert "labels" in ranking.info["loss"] and ranking.info["seed"] == 1
    if method == "hessian":
        h = ranking.info["hessian"]
        assert len(h["eigenvalues"]) == 2 and h["samples_used"] == 128 and max(h["iterations"]) <= 8
    score = score_ranking(ranking, demo["truth"])
    assert score.auc > 0.6 and score.kendall_tau > 0.1  # random: 0.5 and 0 (test above)


def test_own_top1_loss_when_no_labels(demo):
    ranking = rank_project(demo["project"], "gradient", inputs=demo["x"])
    assert "own exact top-1" in ranking.info["loss"]


def test_csv_holds_every_coordinate_and_reads_back(demo, tmp_path):
    ranking = rank_project(demo["project"], "taylor", inputs=demo["x"], labels=demo["y"])
    path, side = write_ranking(demo["manifest"], ranking, tmp_path / "taylor.csv")
    assert side == sidecar_path(path) and json.loads(side.read_text())["method"] == "taylor"
    back = read_ranking(path, demo["space"])
    assert_array_equal(back.model_bit, ranking.model_bit)
    import csv

    rows = list(csv.DictReader(open(path)))
    amap = address_map(demo["manifest"])
    for i in (0, 1, 777, len(rows) - 1):
        row = rows[i]
        hbit = amap.map_lbi(row["layer"], row["tensor"], int(row["lbi"]))
        assert (row["array"], int(row["element"]), int(row["array_bit"])) == (hbit.array, hbit.element, hbit.array_bit)
        if row["tensor"] == "kernel":  # Resource, RF 4: kernels sit in a weight memory
            assert (int(row["memory_word"]), int(row["memory_bit"])) == (hbit.memory_word, hbit.memory_bit)
    with pytest.raises(FkhlsError, match="--force"):
        write_ranking(demo["manifest"], ranking, path)
    # a ranking that loses a bit is refused when read
    path.write_text("".join(open(path).readlines()[:-1]))
    with pytest.raises(FkhlsError, match="1 bits missing"):
        read_ranking(path, demo["space"])


def test_cli_rank_and_rank_eval(demo, tmp_path):
    runner = CliRunner()
    args = [str(demo["project"]), "--inputs", str(demo["x"]), "--labels", str(demo["y"])]
    for method, extra in (("random", ["--seed", "9"]), ("hessian", ["--hessian-iters", "4", "--hessian-samples", "64"]),
                          ("exhaustive", [])):
        result = runner.invoke(main, ["rank", *args, "--method", method, *extra, "-o", str(tmp_path / f"{method}.csv")])
        assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "random.csv.json").read_text())
    assert meta["seed"] == 9 and meta["method"] == "random" and len(meta["inputs_hash"]) == 64
    report = tmp_path / "report"
    result = runner.invoke(main, ["rank-eval", str(demo["project"]), "--rankings", *[str(tmp_path / f"{m}.csv") for m in
                                  ("random", "hessian", "exhaustive")], "--truth", str(demo["campaign"]),
                                  "--report", str(report)])
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    assert (report / "curves.png").stat().st_size > 10_000 and "| exhaustive" in (report / "report.md").read_text()
    exhaustive = summary["rankings"][2]
    assert exhaustive["k_critical"] == summary["oracle"]["k_critical"]
    assert summary["truth"]["n_critical"] == int(demo["truth"].critical.sum())
    # the report directory is not overwritten without --force; errors are one line, exit 1
    again = runner.invoke(main, ["rank-eval", str(demo["project"]), "--rankings", str(tmp_path / "random.csv"),
                                 "--truth", str(demo["campaign"]), "--report", str(report)])
    assert again.exit_code == 1 and "--force" in again.output
    np.save(tmp_path / "short.npy", np.zeros(10, dtype=np.int64))
    bad = runner.invoke(main, ["rank", *args[:3], "--labels", str(tmp_path / "short.npy"), "--method", "gradient",
                               "-o", str(tmp_path / "g.csv")])
    assert bad.exit_code == 1 and "labels" in bad.output and not (tmp_path / "g.csv").exists()


def test_any_output_criterion_counts_changed_samples(demo):
    truth = truth_from_campaign(demo["campaign"], demo["space"], "any")
    from fkhls.campaign.runner import load_results

    table = load_results(demo["campaign"])
    assert_array_equal(np.sort(truth.damage), np.sort(table.columns["tf_samples_changed"]))
    assert np.all(truth.damage >= demo["truth"].damage)  # a top-1 change needs a changed output


def test_ordered_campaign_injects_the_top_bits_in_ranking_order(demo, tmp_path):
    from fkhls.campaign.runner import load_results

    ranking = rank_project(demo["project"], "hessian", inputs=demo["x"], seed=2,
                           hessian=HessianOptions(top_k=1, max_iter=5, max_samples=64))
    path, _ = write_ranking(demo["manifest"], ranking, tmp_path / "h.csv")
    runner = CliRunner()
    args = ["campaign", str(demo["project"]), "--inputs", str(demo["x"]), "--labels", str(demo["y"]), "--engine", "tf",
            "--order", str(path), "--budget", "300", "-o", str(tmp_path / "ordered"), "--workers", "1", "--quiet"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    ordered = load_results(tmp_path / "ordered")
    assert_array_equal(ordered.columns["model_bit"], ranking.model_bit[:300])
    # each row equals the exhaustive campaign's row for the same bit, word for word in every metric
    full = load_results(demo["campaign"])
    rows = np.searchsorted(full.columns["model_bit"], ordered.columns["model_bit"])
    for key in ("tf_top1_changed", "tf_outputs_changed", "tf_samples_changed", "tf_max_abs_error_lsb"):
        assert_array_equal(ordered.columns[key], full.columns[key][rows], err_msg=key)
    # an exhaustive campaign's identity is unchanged by the new mode (directories from before still resume)
    assert "model_bits" not in json.loads((demo["campaign"] / "campaign.json").read_text())["selection"]
    usage = runner.invoke(main, args[:8] + ["--budget", "3", "--exhaustive", "-o", str(tmp_path / "x")])
    assert usage.exit_code == 2 and "--budget goes with --order" in usage.output


def test_truth_must_cover_every_bit(demo, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(demo["x"])[:20])
    config = CampaignConfig(demo["project"], x, "tf", Selection(mode="exhaustive", layers=("output",)))
    run_campaign(config, tmp_path / "partial", workers=1, quiet=True, report=False)
    with pytest.raises(FkhlsError, match="covers 990 of the model's 26334 bits"):
        truth_from_campaign(tmp_path / "partial", demo["space"])
    with pytest.raises(FkhlsError, match="differ from the inputs of campaign"):
        rank_project(demo["project"], "exhaustive", inputs=x, campaign=demo["campaign"])
    with pytest.raises(FkhlsError, match="for method 'exhaustive' only"):
        rank_project(demo["project"], "gradient", inputs=x, campaign=demo["campaign"])
