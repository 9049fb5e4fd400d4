"""fkhls harden: TMR of a ranking's most sensitive words, proven in C-sim on raw output words.

One small model (every word of every array rankable), its exact exhaustive campaign as the truth,
the exhaustive ranking from it, and two hardened copies (a budget of words, a truth coverage).
Proofs: golden parity bit for bit; every single-bit fault in any copy of a protected word masked;
every fault in an unprotected word giving exactly the original project's output words.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from fkhls.campaign.runner import CampaignConfig, Selection, csim_engine, load_results, run_campaign
from fkhls.cli import main
from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.csim import build as csim
from fkhls.csim.cone import cone_support
from fkhls.csim.harness import run_fault_harness
from fkhls.csim.inject import read_array_words
from fkhls.csim.trace import run_trace
from fkhls.faults.addressing import spec_from_manifest
from fkhls.harden.project import harden_project
from fkhls.harden.select import select_words
from fkhls.project.export import ExportOptions, export_model
from fkhls.project.manifest import load_manifest
from fkhls.rank.bitorder import BitSpace
from fkhls.rank.methods import rank_project
from fkhls.rank.ranking import read_ranking, write_ranking
from fkhls.rank.truth import truth_from_campaign

from tests import models

N = 100


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("harden")
    model = models.build("dense")
    golden = export_model(model, base / "golden", ExportOptions())
    x = models.inputs_for(model, n=N)
    np.save(base / "x.npy", x)
    config = CampaignConfig(golden.project_dir, base / "x.npy", "tf", Selection(mode="exhaustive"))
    run_campaign(config, base / "truth", workers=1, quiet=True)
    ranking = rank_project(golden.project_dir, "exhaustive", campaign=base / "truth")
    write_ranking(golden, ranking, base / "exhaustive.csv")
    write_ranking(golden, rank_project(golden.project_dir, "random", seed=5), base / "random.csv")
    before = _tree_digest(golden.project_dir)
    budget = harden_project(golden.project_dir, base / "exhaustive.csv", base / "hard_budget", budget=12,
                            truth_dir=base / "truth")
    cover = harden_project(golden.project_dir, base / "random.csv", base / "hard_cover", coverage=0.5,
                           truth_dir=base / "truth")
    assert _tree_digest(golden.project_dir) == before, "harden wrote into the golden project"
    x_raw = csim.input_words(golden, x)
    return {"base": base, "golden": golden, "x": x, "x_raw": x_raw, "budget": budget, "cover": cover,
            "space": BitSpace.of(spec_from_manifest(golden)),
            "golden_out": run_fault_harness(golden, x_raw, [[]])[0]}


def _protected(manifest) -> list[tuple[str, int, list[str], int, int]]:
    """(array, element, replicas, replica element, width) of every protected word, from the manifest section."""
    return [(a["array"], w["element"], [r["array"] for r in a["replicas"]], w["replica_element"], a["width"])
            for a in manifest.hardening["arrays"] for w in a["words"]]


@pytest.mark.parametrize("which", ["budget", "cover"])
def test_golden_parity_bit_for_bit(setup, which):
    hardened = setup[which].manifest
    assert_array_equal(run_fault_harness(hardened, setup["x_raw"], [[]])[0], setup["golden_out"])
    # the standalone C-sim (csim_main.cpp.j2) too: the project as `fkhls csim` builds it
    assert_array_equal(csim.run_csim(hardened, setup["x"]), csim.run_csim(setup["golden"], setup["x"]))


@pytest.mark.parametrize("which", ["budget", "cover"])
def test_every_fault_in_one_copy_of_a_protected_word_is_masked(setup, which):
    hardened = setup[which].manifest
    scenarios, names = [], []
    for array, element, (r1, r2), j, width in _protected(hardened):
        for bit in range(width):
            scenarios += [[(array, element, bit)], [(r1, j, bit)], [(r2, j, bit)]]
            names += [f"{array}[{element}] bit {bit}", f"{r1}[{j}] bit {bit}", f"{r2}[{j}] bit {bit}"]
    assert len(scenarios) == 3 * sum(p[4] for p in _protected(hardened)) > 0
    out = run_fault_harness(hardened, setup["x_raw"], scenarios)
    changed = (out != setup["golden_out"][None]).reshape(len(scenarios), -1).sum(axis=1)
    assert changed.sum() == 0, f"not masked: {[n for n, c in zip(names, changed) if c][:5]}"
    # the same primary faults do damage on the original project: the vote is what masks them
    primaries = scenarios[0::3]
    damage = (run_fault_harness(setup["golden"], setup["x_raw"], primaries) != setup["golden_out"][None]).sum()
    assert damage > 0


def test_faults_in_unprotected_words_give_the_original_words(setup):
    hardened, golden = setup["budget"].manifest, setup["golden"]
    protected = {(a, e) for a, e, *_ in _protected(hardened)}
    scenarios = [[(r.array, e, b)] for r in golden.arrays() for e in range(r.size) for b in range(r.ptype.width)
                 if (r.array, e) not in protected]
    on_hardened = run_fault_harness(hardened, setup["x_raw"], scenarios)
    on_golden = run_fault_harness(golden, setup["x_raw"], scenarios)
    assert_array_equal(on_hardened, on_golden)
    assert np.count_nonzero(on_golden != setup["golden_out"][None]) > 0


def test_two_faulty_copies_outvote_the_good_one(setup):
    """The vote really is 2-of-3: the same bit wrong in two copies wins, exactly as the fault alone on the original."""
    hardened, golden = setup["budget"].manifest, setup["golden"]
    array, element, (r1, r2), j, width = _protected(hardened)[0]
    scenarios_h = [[(array, element, b), (r1, j, b)] for b in range(width)] + \
                  [[(r1, j, b), (r2, j, b)] for b in range(width)]
    expected = run_fault_harness(golden, setup["x_raw"], [[(array, element, b)] for b in range(width)])
    assert_array_equal(run_fault_harness(hardened, setup["x_raw"], scenarios_h), np.concatenate([expected, expected]))


def test_replay_harnesses_refuse_and_the_reference_harness_runs(setup):
    hardened = setup["budget"].manifest
    ok, reason = cone_support(hardened)
    assert not ok and "hardened (TMR)" in reason
    plan, name = csim_engine(hardened)
    assert not plan.supported and name.startswith("harness")
    with pytest.raises(ProjectError, match="hardened"):
        run_trace(hardened, setup["x_raw"][:2])
    assert cone_support(setup["golden"])[0]  # the golden project keeps its cone harness


def test_campaign_on_the_hardened_project(setup):
    """A csim campaign of every bit: protected words' rows masked, the others equal to the truth campaign's."""
    hardened, base = setup["budget"], setup["base"]
    with pytest.raises(FkhlsError, match="TF engine does not model its vote"):
        run_campaign(CampaignConfig(hardened.project_dir, base / "x.npy", "tf", Selection(mode="exhaustive")),
                     base / "tf_on_hardened", workers=1, quiet=True)
    run_campaign(CampaignConfig(hardened.project_dir, base / "x.npy", "csim", Selection(mode="exhaustive")),
                 base / "hardened_campaign", workers=1, quiet=True)
    mine, truth = load_results(base / "hardened_campaign").columns, load_results(base / "truth").columns
    key = lambda cols, i: (str(cols["layer"][i]), str(cols["tensor"][i]), int(cols["lbi"][i]))  # noqa: E731
    truth_rows = {key(truth, i): i for i in range(len(truth["lbi"]))}
    words = {(w.layer, w.tensor, w.flat_index): w for w in hardened.selection.words}
    space = setup["space"]
    widths = dict(zip(zip(space.layers, space.tensors), space.widths))
    n_masked = 0
    for i in range(len(mine["lbi"])):
        layer, tensor, lbi = key(mine, i)
        if (layer, tensor, lbi // widths[(layer, tensor)]) in words:
            assert mine["csim_outputs_changed"][i] == 0
            n_masked += 1
        else:
            t = truth_rows[(layer, tensor, lbi)]
            assert mine["csim_outputs_changed"][i] == truth["tf_outputs_changed"][t]
            assert mine["csim_top1_changed"][i] == truth["tf_top1_changed"][t]
    assert n_masked == sum(w.width for w in hardened.selection.words)


def test_replicas_hold_the_golden_words_and_nothing_else_changed(setup):
    golden, result = setup["golden"], setup["budget"]
    hardened = result.manifest
    assert hardened.arrays() == golden.arrays() and hardened.layers == golden.layers
    for entry in hardened.hardening["arrays"]:
        _, record = golden.array(entry["array"])
        elements = [w["element"] for w in entry["words"]]
        primary = read_array_words(golden.project_dir, record)
        for replica in hardened.replica_arrays():
            if replica.array.startswith(entry["array"] + "_tmr"):
                assert_array_equal(read_array_words(hardened.project_dir, replica), primary[elements])
    for record in golden.arrays():  # primaries untouched: same .h and .txt bytes
        for suffix in (".h", ".txt"):
            rel = Path("firmware/weights") / f"{record.array}{suffix}"
            assert (hardened.project_dir / rel).read_bytes() == (golden.project_dir / rel).read_bytes()
    source = (hardened.project_dir / "firmware" / "myproject.cpp").read_text()
    assert "fkhls_tmr::vote_" in source and str(golden.project_dir) not in (
        hardened.project_dir / "hls4ml_config.yml").read_text()


def test_selection_walks_words_in_ranking_order(setup):
    golden, base = setup["golden"], setup["base"]
    space = setup["space"]
    ranking = read_ranking(base / "exhaustive.csv", space)
    truth = truth_from_campaign(base / "truth", space)
    sel = select_words(golden, ranking, budget=12, truth=truth)
    assert [w.word_rank for w in sel.words] == list(range(12))
    ranks = [w.rank for w in sel.words]
    assert ranks == sorted(ranks) and ranks[0] == 0
    assert len({(w.array, w.element) for w in sel.words}) == 12
    assert sel.words == setup["budget"].selection.words
    assert np.all(sel.truth_curve <= sel.oracle_truth_curve + 1e-12)
    cover = setup["cover"].selection
    k = len(cover.words)
    assert cover.truth_curve[k - 1] >= 0.5 > (cover.truth_curve[k - 2] if k > 1 else 0)
    with pytest.raises(FkhlsError, match="valid range 1..220"):
        select_words(golden, ranking, budget=221)
    with pytest.raises(FkhlsError, match=r"valid range \(0, 1\]"):
        select_words(golden, ranking, coverage=1.5)


def test_report_shows_coverage_and_cost(setup):
    result = setup["budget"]
    summary = json.loads(result.summary.read_text())
    widths = [w.width for w in result.selection.words]
    assert summary["cost"]["total"]["extra_bits"] == 2 * sum(widths)
    assert summary["cost"]["total"]["vote_luts"] == sum(widths)
    assert sum(layer["words"] for layer in summary["cost"]["layers"]) == 12
    chosen = [row for row in summary["coverage"] if row["chosen"]]
    assert chosen[0]["words"] == 12
    assert chosen[0]["truth_coverage"] == pytest.approx(float(result.selection.truth_curve[11]))
    assert len(summary["protected"]) == 12 and summary["truth"]["kind"] == "campaign"
    text = result.report.read_text()
    assert "12 (chosen)" in text and "vote LUTs" in text


def test_cli(setup, tmp_path):
    base, golden = setup["base"], setup["golden"]
    runner = CliRunner()
    out = tmp_path / "h"
    args = ["harden", str(golden.project_dir), "--ranking", str(base / "exhaustive.csv"), "-o", str(out)]
    result = runner.invoke(main, [*args, "--coverage", "0.9", "--truth", str(base / "truth")])
    assert result.exit_code == 0, result.output
    assert "weight words protected by TMR" in result.output and "damage covered (truth)" in result.output
    assert load_manifest(out).hardening["rule"] == "coverage"
    again = runner.invoke(main, [*args, "--budget", "3"])
    assert again.exit_code == 1 and "pass --force" in again.output
    assert runner.invoke(main, [*args, "--budget", "3", "--force"]).exit_code == 0
    both = runner.invoke(main, [*args, "--budget", "3", "--coverage", "0.5", "--force"])
    assert both.exit_code == 1 and "exactly one of --budget" in both.output
    twice = runner.invoke(main, ["harden", str(out), "--ranking", str(base / "exhaustive.csv"), "-o",
                                 str(tmp_path / "h2"), "--budget", "3"])
    assert twice.exit_code == 1 and "already hardened" in twice.output
    # the output rule every copy of a project follows (fkhls.project.copy): a foreign directory is refused,
    # --force or not, and left as it was; the golden project is never a target
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("mine")
    refused = runner.invoke(main, ["harden", str(golden.project_dir), "--ranking", str(base / "exhaustive.csv"), "-o",
                                   str(foreign), "--budget", "3", "--force"])
    assert refused.exit_code == 1 and "holds files fkhls did not write" in refused.output
    assert [p.name for p in foreign.iterdir()] == ["chapter1.tex"]
    inside = runner.invoke(main, ["harden", str(golden.project_dir), "--ranking", str(base / "exhaustive.csv"), "-o",
                                  str(golden.project_dir / "hardened"), "--budget", "3"])
    assert inside.exit_code == 1 and "must be outside the golden project" in inside.output


def test_verify_proves_and_catches_a_broken_copy(setup, tmp_path):
    import shutil

    from fkhls.csim.inject import render_weight_txt
    from fkhls.harden.verify import verify_hardened

    result = verify_hardened(setup["budget"].project_dir, setup["x_raw"][:30], unprotected=None)
    assert result.ok and result.parity_mismatching_words == 0 and result.protected_changed_words == 0
    assert result.protected_faults == 3 * sum(w.width for w in setup["budget"].selection.words)
    assert result.unprotected_faults == result.unprotected_total == setup["space"].n_bits - result.protected_faults // 3
    assert result.unprotected_changed_words > 0
    # two copies of one word damaged on disk (primary and replica 1, same bit): the vote cannot mask that
    broken = tmp_path / "broken"
    shutil.copytree(setup["budget"].project_dir, broken)
    manifest = load_manifest(broken)
    entry = manifest.hardening["arrays"][0]
    word = entry["words"][0]
    _, primary = manifest.array(entry["array"])
    for record, element in ((primary, word["element"]), (manifest.replica_arrays()[0], word["replica_element"])):
        raw = read_array_words(broken, record)
        raw[element] ^= 1 << (entry["width"] - 2)  # the bit below the sign: stays in the type's range
        (broken / "firmware" / "weights" / f"{record.array}.txt").write_text(render_weight_txt(record, raw))
    bad = verify_hardened(broken, setup["x_raw"][:30], unprotected=0)
    assert not bad.ok and bad.parity_mismatching_words > 0
    runner = CliRunner()
    np.save(tmp_path / "x.npy", setup["x"][:30])
    cli = runner.invoke(main, ["harden-verify", str(broken), "--inputs", str(tmp_path / "x.npy"), "--unprotected", "0"])
    assert cli.exit_code == 3 and "NOT verified" in cli.output
    assert json.loads((broken / "verify.json").read_text())["ok"] is False
    again = runner.invoke(main, ["harden-verify", str(broken), "--inputs", str(tmp_path / "x.npy")])
    assert again.exit_code == 1 and "pass --force" in again.output


def test_ranking_of_another_project_is_refused(setup, tmp_path):
    import shutil

    base = setup["base"]
    shutil.copy(base / "exhaustive.csv", tmp_path / "r.csv")
    meta = json.loads((base / "exhaustive.csv.json").read_text())
    (tmp_path / "r.csv.json").write_text(json.dumps({**meta, "project_hash": "0" * 64}))
    with pytest.raises(ProjectError, match="made on another project"):
        harden_project(setup["golden"].project_dir, tmp_path / "r.csv", tmp_path / "h", budget=3)
    assert not (tmp_path / "h").exists()


def test_a_top_function_it_cannot_edit_is_refused(setup, tmp_path):
    import shutil

    golden = tmp_path / "golden"
    shutil.copytree(setup["golden"].project_dir, golden)
    top = golden / "firmware" / "myproject.cpp"
    top.write_text(top.read_text().replace("loaded_weights = true;", "loaded_weights = (true);"))
    shutil.copy(setup["base"] / "exhaustive.csv", tmp_path / "r.csv")  # no sidecar: no project hash to compare
    with pytest.raises(ProjectError, match="exactly one 'loaded_weights = true;'"):
        harden_project(golden, tmp_path / "r.csv", tmp_path / "h", budget=3)
    assert not (tmp_path / "h").exists()
