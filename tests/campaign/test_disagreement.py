"""Issue 14.3: the disagreement path end to end -- a campaign on a hand-broken project, through the real CLI.

The copy's ``out`` accumulator is narrowed to ap_fixed<12,3> (range [-4, 4)): its sums wrap, the
exact emulation (the model's words, exact types) does not, so the engines disagree on some
words of every scenario. Each output of that path is checked against an independent count.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tests.conftest import edited_copy
from tests.entry import run_fkhls

OLD, NEW = "typedef ap_fixed<16,7> out_accum_t;", "typedef ap_fixed<12,3> out_accum_t;"


@pytest.fixture(scope="module")
def broken_campaign(dense_project_session, tmp_path_factory):
    project_dir, x, y = dense_project_session
    base = tmp_path_factory.mktemp("disagree")
    broken = edited_copy(project_dir, base / "broken", OLD, NEW)
    out = base / "results"
    proc = run_fkhls("campaign", broken, "--inputs", x, "--labels", y, "--engine", "both", "--exhaustive",
                     "--layers", "out", "--bits", "5,0", "--shard-size", "16", "--workers", "1", "--quiet", "-o", out)
    return broken, x, out, proc


@pytest.fixture(scope="module")
def expected(broken_campaign):
    """Per scenario, the tf and csim output words computed here, without the campaign runner."""
    from fkhls.campaign.runner import Selection, campaign_scenarios
    from fkhls.csim.build import input_words
    from fkhls.csim.harness import run_fault_harness
    from fkhls.emulate.emulator import apply_faults, forward_raw, golden_weights
    from fkhls.faults.addressing import map_faults, spec_from_manifest
    from fkhls.model.spec import describe_model, load_keras_model
    from fkhls.project.manifest import load_manifest

    broken, x, _, _ = broken_campaign
    manifest = load_manifest(broken)
    scenarios = campaign_scenarios(spec_from_manifest(manifest), Selection("exhaustive", layers=("out",), bits=(5, 0)))
    model = load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_type["cpp"])
    weights = golden_weights(model, spec)
    x_raw = input_words(manifest, np.load(x))
    shaped = x_raw.reshape(len(x_raw), *spec.input_shape)
    tf = np.stack([forward_raw(spec, apply_faults(spec, weights, s.faults), shaped).reshape(len(x_raw), -1)
                   for s in scenarios])
    triples = [[(b.array, b.element, b.array_bit) for b in map_faults(manifest, s.faults)] for s in scenarios]
    csim = np.asarray(run_fault_harness(manifest, x_raw, triples)).reshape(tf.shape)  # the reference harness
    return scenarios, tf, csim


def test_exit_code_3_and_the_one_line_verdict(broken_campaign, expected):
    _, _, _, proc = broken_campaign
    scenarios, tf, csim = expected
    differing = int(((tf != csim).reshape(len(tf), -1).any(axis=1)).sum())
    assert 0 < differing
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"engines disagree on {differing} scenarios" in proc.stdout
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in proc.stdout.splitlines()
                if re.search(r"\S\s{2,}\S", line))
    assert rows["output words compared"] == f"{tf.size:,}"
    assert rows["bit-exact"] == f"{tf.size - int((tf != csim).sum()):,}"
    assert rows["scenarios differing"] == f"{differing:,}"


def test_mismatched_words_per_scenario_match_an_independent_count(broken_campaign, expected):
    _, _, out, _ = broken_campaign
    scenarios, tf, csim = expected
    differs = (tf != csim)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [s.name for s in scenarios]
    assert_array_equal([int(r["mismatched_words"]) for r in rows], differs.reshape(len(tf), -1).sum(axis=1))
    assert_array_equal([int(r["max_lsb_diff"]) for r in rows], np.abs(tf - csim).reshape(len(tf), -1).max(axis=1))
    per_sample = differs.any(axis=2)
    first = np.where(per_sample.any(axis=1), per_sample.argmax(axis=1), -1)
    assert_array_equal([int(r["first_mismatch_sample"]) for r in rows], first)


def test_summary_json_lists_every_mismatching_scenario(broken_campaign, expected):
    _, _, out, _ = broken_campaign
    scenarios, tf, csim = expected
    summary = json.loads((out / "summary.json").read_text())
    counts = (tf != csim).reshape(len(tf), -1).sum(axis=1)
    bad = np.nonzero(counts)[0]
    assert summary["outputs_compared"] == tf.size
    assert summary["bit_exact"] == tf.size - int(counts.sum())
    assert summary["scenarios_mismatching"] == len(bad) and summary["scenarios_bit_exact"] == len(tf) - len(bad)
    assert summary["max_lsb_diff"] == int(np.abs(tf - csim).max())
    listed = summary["mismatching_scenarios"]
    assert [m["scenario"] for m in listed] == bad.tolist()
    assert [m["mismatched_words"] for m in listed] == counts[bad].tolist()
    assert [m["name"] for m in listed] == [scenarios[i].name for i in bad]
    assert summary["timings"]["csim_engine"] == "cone"  # the campaign ran the cone harness, not a fallback
    with np.load(out / "golden.npz") as golden:
        assert not np.array_equal(golden["golden_tf"], golden["golden_csim"])  # the golden run already differs


def test_report_md_has_the_disagreement_section(broken_campaign, expected):
    _, _, out, _ = broken_campaign
    scenarios, tf, csim = expected
    text = (out / "report.md").read_text()
    counts = (tf != csim).reshape(len(tf), -1).sum(axis=1)
    compared, words = tf.size, int(counts.sum())
    section = text.split("## Engine agreement (tf vs csim)", 1)[1].split("\n## ", 1)[0]
    assert f"| {compared:,} " in section and f"| {compared - words:,} " in section
    assert f"{len(tf) - np.count_nonzero(counts)} / {len(tf)}" in section
    listing = section.split("Mismatching scenarios (first 20):", 1)[1]
    lines = [line for line in listing.splitlines() if line.startswith("|")][2:]  # header and rule first
    first = np.nonzero(counts)[0][:20]
    assert len(lines) == len(first)
    for line, index in zip(lines, first):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == str(index) and cells[1] == scenarios[index].name and cells[5] == str(counts[index])
