"""Statistical fault injection: sample sizes, the stratified draw, intervals that hold the exhaustive truth,
and what a C-sim cross-check sample proves."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.stats import binom

from fkhls.campaign.report import RATES, VULNERABILITY, FaultTable, csim_sample_bound, domain_estimates
from fkhls.campaign.runner import (
    CampaignConfig,
    CampaignMismatchError,
    Selection,
    csim_sample_rows,
    run_campaign,
    sample_design,
)
from fkhls.campaign.statistics import (
    beta_interval,
    clopper_pearson_upper,
    disagreement_bound,
    domain_estimate,
    normal_quantile,
    sample_size,
    wilson_interval,
)
from fkhls.core.errors import FaultSpecError, FkhlsError
from fkhls.faults.descriptors import exhaustive_faults
from fkhls.faults.sampling import strata_of, stratified_draw
from fkhls.model.spec import describe_model, load_keras_model
from fkhls.project.export import ExportOptions, export_model

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"
N_INPUTS = 100


# ----------------------------------------------------------------------------- sample sizes (by hand)


def test_normal_quantile_is_two_sided():
    assert normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.99) == pytest.approx(2.575829, abs=1e-6)
    assert normal_quantile(0.90) == pytest.approx(1.644854, abs=1e-6)


def test_sample_size_matches_hand_computed_values():
    # N=1000, 95 %, 5 %, p=0.5: t^2 p(1-p) = 1.959964^2 / 4 = 0.960365; e^2 (N-1) = 2.4975;
    # n = 1000 / (1 + 2.4975 / 0.960365) = 1000 / 3.600575 = 277.73 -> 278.
    assert sample_size(1000, 0.95, 0.05) == 278
    # The demo model's 26,334 single-bit faults at 99 % / 1 %: t^2/4 = 2.575829^2 / 4 = 1.658724;
    # n = 26334 / (1 + 0.0001 * 26333 / 1.658724) = 26334 / 2.587546 = 10177.2 -> 10178.
    assert sample_size(26334, 0.99, 0.01) == 10178
    # A prior p = 0.1: t^2 p(1-p) = 3.841459 * 0.09 = 0.345731; n = 1000 / (1 + 2.4975 / 0.345731) = 121.6 -> 122.
    assert sample_size(1000, 0.95, 0.05, prior=0.1) == 122
    # An infinite population tends to t^2 p(1-p) / e^2 = 384.15 -> 385.
    assert sample_size(10**12, 0.95, 0.05) == 385
    assert sample_size(1, 0.99, 0.01) == 1 and sample_size(0, 0.99, 0.01) == 0
    assert sample_size(30, 0.99, 0.01) == 30  # a small stratum is measured whole


@pytest.mark.parametrize("args, match", [((100, 1.0, 0.01), "confidence 1.0"), ((100, 0.9, 0.0), "margin 0.0"),
                                         ((100, 0.9, 0.1, 1.5), "prior 1.5"), ((-1, 0.9, 0.1), "population -1")])
def test_sample_size_refuses_bad_input(args, match):
    with pytest.raises(FkhlsError, match=match):
        sample_size(*args)


# ----------------------------------------------------------------------------- bounds and estimates (by hand)


def test_zero_disagreements_bound_is_the_closed_form():
    for n in (1, 46, 1000, 10_000):
        assert disagreement_bound(0, n, 0.99) == pytest.approx(1 - 0.01 ** (1 / n), rel=1e-12)
    assert 10_000 * disagreement_bound(0, 10_000, 0.99) == pytest.approx(4.6, abs=0.01)  # "about 4.6/n"


@pytest.mark.parametrize("k, n", [(1, 50), (3, 1000), (17, 400)])
def test_clopper_pearson_bound_leaves_exactly_one_minus_c_below(k, n):
    """At the bound u, seeing k or fewer events in n trials has probability 1 - c (its definition)."""
    upper = clopper_pearson_upper(k, n, 0.99)
    assert binom.cdf(k, n, upper) == pytest.approx(0.01, rel=1e-6)
    assert clopper_pearson_upper(n, n, 0.99) == 1.0


def test_wilson_and_clopper_pearson_intervals_by_hand():
    # Wilson, p = 0.5, n = 100, 95 %: (0.5 + 1.96^2/200) / (1 + 1.96^2/100) +- ... = [0.4038, 0.5962].
    low, high = wilson_interval(0.5, 100, 0.95)
    assert (low, high) == (pytest.approx(0.40383, abs=1e-5), pytest.approx(0.59617, abs=1e-5))
    # Clopper-Pearson with no event in 10: [0, 1 - 0.025^(1/10)] = [0, 0.30850].
    assert beta_interval(0.0, 10, 0.95) == (0.0, pytest.approx(1 - 0.025 ** 0.1))
    low, high = beta_interval(0.3, 10, 0.95)  # 3 of 10: the textbook [0.0667, 0.6525]
    assert (low, high) == (pytest.approx(0.06674, abs=1e-5), pytest.approx(0.65245, abs=1e-5))


def test_domain_estimate_weights_strata_by_population_and_applies_the_fpc():
    # Stratum 0: N=10, measured [1, 0, 1, 1] (mean 0.75); stratum 1: N=100, measured [0, 0, 0, 1] (0.25).
    values = np.array([1, 0, 1, 1, 0, 0, 0, 1], dtype=float)
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    est = domain_estimate(values, strata, np.array([10, 100]), 0.95, method="normal")
    assert est.value == pytest.approx((10 * 0.75 + 100 * 0.25) / 110)
    # Variance: sum_h N_h^2 (1 - n_h/N_h) s_h^2 / n_h / N^2 with s_h^2 (ddof 1) of the residuals
    # y - value: the residuals' variance equals that of y inside each stratum (0.25 both).
    var = (10 ** 2 * (1 - 4 / 10) * 0.25 / 4 + 100 ** 2 * (1 - 4 / 100) * 0.25 / 4) / 110 ** 2
    # The quantile is Student's t with (measured - 1) degrees of freedom: 8 rows -> t(7) = 2.364624.
    assert est.high - est.value == pytest.approx(2.364624 * math.sqrt(var), rel=1e-6)
    # Domain = stratum 0 alone: a simple random sample of 4 of 10 (residuals outside the domain are 0).
    own = domain_estimate(values, strata, np.array([10, 100]), 0.95, domain=strata == 0, domain_population=10,
                          method="normal")
    assert own.value == pytest.approx(0.75)
    assert own.value - own.low == pytest.approx(3.182446 * math.sqrt((1 - 4 / 10) * 0.25 / 4), rel=1e-6)  # t(3)
    assert own.high == 1.0  # clipped to the bounds


def test_an_unbounded_population_has_no_finite_population_correction():
    """Random-BER trials: independent draws, so the interval is the plain Student-t one of the mean."""
    values = np.array([0.1, 0.3, 0.2, 0.6, 0.3])
    est = domain_estimate(values, np.zeros(5, dtype=int), np.array([np.inf]), 0.95, method="normal")
    assert est.value == pytest.approx(0.3) and est.population is None and not est.exact
    assert est.high - est.value == pytest.approx(2.776445 * values.std(ddof=1) / math.sqrt(5), rel=1e-6)  # t(4)


def test_a_domain_measured_whole_is_exact_and_an_empty_one_is_nan():
    values = np.array([0.2, 0.4, 0.9])
    est = domain_estimate(values, np.zeros(3, dtype=int), np.array([3]), 0.99)
    assert (est.value, est.low, est.high, est.exact) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5),
                                                         True)
    empty = domain_estimate(values, np.zeros(3, dtype=int), np.array([9]), 0.99, domain=np.zeros(3, bool),
                            domain_population=3)
    assert math.isnan(empty.value) and empty.measured == 0


def test_a_sample_without_any_effect_still_has_an_upper_bound():
    """All-zero sample of 50 of 1000: the interval is [0, u] with u > 0, never the point 0."""
    est = domain_estimate(np.zeros(50), np.zeros(50, dtype=int), np.array([1000]), 0.99)
    assert est.low == 0.0 and 0.05 < est.high < 0.15


# ----------------------------------------------------------------------------- the stratified draw


@pytest.fixture(scope="module")
def demo_spec():
    return describe_model(load_keras_model(DATA / "demo_model.h5"))


def test_strata_follow_the_population(demo_spec):
    faults = exhaustive_faults(demo_spec)
    by_layer, owner = strata_of(faults, "layer")
    assert [s.label for s in by_layer] == [f"{t.layer} {t.tensor}" for t in demo_spec.tensors()]
    assert [s.population for s in by_layer] == [t.n_bits for t in demo_spec.tensors()]
    assert_array_equal(np.bincount(owner), [s.population for s in by_layer])
    by_bit, owner = strata_of(faults, "bit")
    assert [s.key for s in by_bit] == [(b,) for b in range(5, -1, -1)] and {s.population for s in by_bit} == {4389}
    assert all(faults[i].bit == by_bit[h].key[0] for i, h in enumerate(owner))
    cells, _ = strata_of(faults, "layer-bit")
    assert len(cells) == 8 * 6
    with pytest.raises(FaultSpecError, match="'channel' is not valid"):
        strata_of(faults, "channel")


def test_stratified_draw_is_seeded_distinct_and_sized(demo_spec):
    faults = exhaustive_faults(demo_spec)
    strata, owner = strata_of(faults, "layer")
    sizes = [sample_size(s.population, 0.9, 0.05) for s in strata]
    a, b, c = (stratified_draw(owner, sizes, seed) for seed in (7, 7, 8))
    assert_array_equal(a, b)  # deterministic per seed
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) == len(a) == sum(sizes)  # no duplicates
    assert np.all(np.diff(a) > 0)  # population (model-bit) order
    assert_array_equal(np.bincount(owner[a], minlength=len(strata)), sizes)  # counts per stratum
    # A stratum's draw depends only on the seed, its index and its size: growing another stratum leaves it alone.
    grown = stratified_draw(owner, [sizes[0] + 5, *sizes[1:]], 7)
    assert_array_equal(grown[owner[grown] != 0], a[owner[a] != 0])
    with pytest.raises(FaultSpecError, match="outside the valid range 0..30"):
        stratified_draw(owner, [*sizes[:-1], 31], 7)


# ----------------------------------------------------------------------------- the demo: truth vs intervals


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo project, 100 inputs with labels, and its exhaustive TF campaign (the truth)."""
    base = tmp_path_factory.mktemp("stats")
    manifest = export_model(DATA / "demo_model.h5", base / "demo", ExportOptions())
    np.save(base / "x.npy", np.load(DATA / "demo_inputs.npy")[:N_INPUTS])
    np.save(base / "y.npy", np.load(DATA / "demo_labels.npy")[:N_INPUTS])
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "tf", Selection("exhaustive"), base / "y.npy")
    result = run_campaign(config, base / "exhaustive", workers=1, quiet=True)
    return base, manifest, result.table


def _subtable(full: FaultTable, chosen: np.ndarray, owner: np.ndarray, notes: dict) -> FaultTable:
    """The rows a sampled TF campaign would produce (the engine is deterministic: same rows as the truth's)."""
    cols = {k: np.asarray(v)[chosen] for k, v in full.columns.items()}
    cols["stratum"] = owner[chosen]
    return FaultTable(cols, full.engines, full.n_samples, full.n_outputs, full.output_lsb, full.has_labels,
                      {**full.notes, "design": notes})


def test_exhaustive_campaign_reports_exact_rates(demo):
    base, _, full = demo
    stats = json.loads((base / "exhaustive" / "summary.json").read_text())["statistics"]
    assert stats["confidence"] is None
    for rate, est in stats["rates"]["tf"].items():
        assert est["exact"] and est["low"] == est["value"] == est["high"], rate
        assert est["measured"] == est["population"] == len(full)
    fraction = full.columns["tf_samples_changed"] / N_INPUTS
    assert stats["rates"]["tf"]["output_vulnerability"]["value"] == pytest.approx(fraction.mean())
    for entry in stats["vulnerability"]["per_layer"]:
        mine = np.char.add(np.char.add(full.columns["layer"].astype(str), " "), full.columns["tensor"].astype(str)) \
            == entry["layer"]
        assert entry["output_vulnerability"]["value"] == pytest.approx(fraction[mine].mean())
        assert entry["top1_vulnerability"]["exact"]


SEEDS = 200
CONFIDENCE, MARGIN = 0.90, 0.05
# Intervals meant to hold at about the stated rate, and those built to hold at least at it
# (Clopper-Pearson for rare top-1 changes, Bonferroni for the signed accuracy drop).
NOMINAL = ("faults_changing_outputs", "outputs_changed_fraction", "output_vulnerability")
CONSERVATIVE = ("faults_changing_top1", "top1_vulnerability", "accuracy_drop")


def test_intervals_hold_the_exhaustive_truth_at_the_stated_rate(demo):
    """200 seeded stratified samples (per layer, 90 %, margin 5 %) of the demo: the model-wide rates' intervals
    hold the exhaustive truth in a binomial(200, 0.90) share of the seeds (99.9 % band), the conservative
    ones at least that often; the per-layer vulnerability intervals too, pooled."""
    _, manifest, full = demo
    truth = {rate: domain_estimates(full, rate, "model")[0][1] for rate in RATES}
    truth_layer = {rate: dict(domain_estimates(full, rate, "layer")) for rate in VULNERABILITY}
    assert all(t.exact for t in truth.values())
    spec = describe_model(load_keras_model(manifest.model_path), manifest.input_type["cpp"])
    design = sample_design(spec, Selection("sampled", confidence=CONFIDENCE, margin=MARGIN, per="layer", seed=0))
    notes = design.notes(Selection("sampled", confidence=CONFIDENCE, margin=MARGIN, per="layer", seed=0))
    covered = {rate: 0 for rate in RATES}
    layer_hits, layer_trials = 0, 0
    for seed in range(SEEDS):
        chosen = stratified_draw(design.owner, design.sizes, seed)  # what sample_design draws for this seed
        table = _subtable(full, chosen, design.owner, notes)
        for rate in RATES:
            est = domain_estimates(table, rate, "model")[0][1]
            assert not est.exact and est.measured == sum(design.sizes)
            covered[rate] += est.contains(truth[rate].value)
        for rate in VULNERABILITY:
            for name, est in domain_estimates(table, rate, "layer"):
                if not est.exact:
                    layer_trials += 1
                    layer_hits += est.contains(truth_layer[rate][name].value)
    low, high = binom.ppf(0.0005, SEEDS, CONFIDENCE), binom.ppf(0.9995, SEEDS, CONFIDENCE)
    for rate in NOMINAL:
        assert low <= covered[rate] <= high, (rate, covered[rate], (low, high))
    for rate in CONSERVATIVE:
        assert covered[rate] >= low, (rate, covered[rate], low)
    assert layer_hits / layer_trials >= CONFIDENCE - 0.03, (layer_hits, layer_trials)


def test_sampled_campaign_runs_exactly_the_drawn_faults(demo, tmp_path):
    base, manifest, full = demo
    selection = Selection("sampled", confidence=0.95, margin=0.05, per="layer-bit", seed=11)
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "tf", selection, base / "y.npy", shard_size=512)
    result = run_campaign(config, tmp_path / "s", workers=1, quiet=True)
    spec = describe_model(load_keras_model(manifest.model_path), manifest.input_type["cpp"])
    design = sample_design(spec, selection)
    assert_array_equal(design.chosen, stratified_draw(design.owner, design.sizes, 11))
    table = result.table
    assert len(table) == len(design.chosen) == sum(design.sizes)
    # The sampled rows are the exhaustive campaign's rows for the same faults, word counts equal as integers.
    for key in ("model_bit", "tf_outputs_changed", "tf_samples_changed", "tf_top1_changed", "tf_max_abs_error_lsb"):
        assert_array_equal(table.columns[key], np.asarray(full.columns[key])[design.chosen], err_msg=key)
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    stats = summary["statistics"]
    assert stats["design"]["per"] == "layer-bit" and stats["design"]["seed"] == 11
    assert stats["confidence"] == 0.95 and stats["design"]["margin"] == 0.05
    assert [s["sample"] for s in stats["design"]["strata"]] == list(design.sizes)
    assert [s["population"] for s in stats["design"]["strata"]] == [s.population for s in design.strata]
    identity = json.loads((tmp_path / "s" / "campaign.json").read_text())
    assert identity["selection"]["confidence"] == 0.95 and identity["seeds"] == {"stratified_draw": 11}
    assert identity["strata"] == stats["design"]["strata"]
    # Intervals in summary.json, report.md (interval column) and the heatmap cells.
    est = stats["rates"]["tf"]["top1_vulnerability"]
    assert est["low"] <= est["value"] <= est["high"] and est["low"] < est["high"]
    cells = summary["sensitivity"]["top1_change_rate"]
    assert len(cells["low"]) == len(cells["values"]) == 8
    report = (tmp_path / "s" / "report.md").read_text()
    assert "95% confidence intervals" in report and "| interval" in report and "Vulnerability per bit position" in report
    assert (tmp_path / "s" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    # Resumable like any campaign: the same command runs nothing; an interrupted one completes to the same rows;
    # another seed is another campaign.
    again = run_campaign(config, tmp_path / "s", workers=1, quiet=True, report=False)
    assert again.shards_run == 0
    partial = run_campaign(config, tmp_path / "r", workers=1, quiet=True, report=False, max_shards=2)
    assert partial.table is None and partial.shards_run == 2 < partial.shards_total
    resumed = run_campaign(config, tmp_path / "r", workers=1, quiet=True, report=False)
    assert resumed.shards_run == partial.shards_total - 2
    for key in ("tf_outputs_changed", "tf_top1_changed", "tf_samples_changed", "stratum"):
        assert_array_equal(resumed.table.columns[key], table.columns[key], err_msg=key)
    with pytest.raises(CampaignMismatchError, match="selection"):
        run_campaign(CampaignConfig(manifest.project_dir, base / "x.npy", "tf",
                                    Selection("sampled", confidence=0.95, margin=0.05, per="layer-bit", seed=12),
                                    base / "y.npy", shard_size=512), tmp_path / "s", workers=1, quiet=True)


def test_sampled_selection_is_validated():
    with pytest.raises(FkhlsError, match="--confidence C, --margin E and --seed S"):
        Selection("sampled", confidence=0.9, per="layer")
    with pytest.raises(FkhlsError, match="valid values"):
        Selection("sampled", confidence=0.9, margin=0.1, per="neuron", seed=0)
    with pytest.raises(FkhlsError, match="margin 2.0 is outside"):
        Selection("sampled", confidence=0.9, margin=2.0, per="layer", seed=0)
    with pytest.raises(FkhlsError, match="sampled campaign only"):
        Selection("exhaustive", margin=0.1)
    with pytest.raises(FkhlsError, match="confidence 1.5 is outside the valid range"):
        Selection("ber", ber=0.01, trials=3, seed=0, confidence=1.5)
    assert Selection("exhaustive", confidence=0.9).confidence == 0.9  # the --csim-sample bound's
    with pytest.raises(FkhlsError, match="needs --engine both"):
        CampaignConfig(Path("."), Path("x.npy"), "tf", Selection("exhaustive"), csim_sample=10, csim_seed=0)


def test_ber_campaign_rates_carry_intervals(demo, tmp_path):
    base, manifest, _ = demo
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "tf", Selection("ber", ber=0.001, trials=40, seed=5),
                            base / "y.npy")
    result = run_campaign(config, tmp_path / "ber", workers=1, quiet=True)
    stats = json.loads((tmp_path / "ber" / "summary.json").read_text())["statistics"]
    assert stats["design"]["mode"] == "ber" and stats["confidence"] == 0.99 and stats["vulnerability"] == {}
    rate = np.asarray(result.table.columns["tf_top1_changed"]) / N_INPUTS
    est = stats["rates"]["tf"]["top1_vulnerability"]
    assert est["value"] == pytest.approx(rate.mean()) and est["population"] is None and not est["exact"]
    assert est["low"] <= est["value"] <= est["high"] and est["low"] < est["high"]
    assert "Rates over random-BER trials (99% confidence intervals)" in (tmp_path / "ber" / "report.md").read_text()
    # --confidence reaches the BER intervals: same trials, 90 % intervals, recorded, strictly inside the 99 % ones
    run_campaign(replace(config, selection=replace(config.selection, confidence=0.9)), tmp_path / "ber90", workers=1,
                 quiet=True)
    summary90 = json.loads((tmp_path / "ber90" / "summary.json").read_text())
    est90 = summary90["statistics"]["rates"]["tf"]["top1_vulnerability"]
    assert summary90["statistics"]["confidence"] == summary90["confidence"] == 0.9
    assert json.loads((tmp_path / "ber90" / "campaign.json").read_text())["selection"]["confidence"] == 0.9
    assert est90["value"] == est["value"] and est["low"] < est90["low"] <= est90["high"] < est["high"]
    assert "Rates over random-BER trials (90% confidence intervals)" in (tmp_path / "ber90" / "report.md").read_text()


# ----------------------------------------------------------------------------- --csim-sample


def test_csim_sample_cross_checks_a_seeded_subset_and_states_the_bound(demo, tmp_path):
    base, manifest, full = demo
    selection = Selection("exhaustive", layers=("output",))  # 990 faults
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", selection, base / "y.npy", shard_size=256,
                            csim_sample=40, csim_seed=3)
    result = run_campaign(config, tmp_path / "c", workers=1, quiet=True)
    table = result.table
    rows = csim_sample_rows(len(table), 40, 3)
    assert_array_equal(np.flatnonzero(table.columns["csim_checked"]), rows)
    assert table.primary == "tf"
    for key in ("outputs_changed", "samples_changed", "top1_changed", "max_abs_error_lsb"):
        csim = np.asarray(table.columns[f"csim_{key}"])
        assert_array_equal(csim[rows], np.asarray(table.columns[f"tf_{key}"])[rows], err_msg=key)  # bit-exact
        assert np.all(np.delete(csim, rows) == -1), key  # not run
    assert_array_equal(np.asarray(table.columns["mismatched_words"])[rows], 0)
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    bound = summary["csim_sample"]
    assert bound["faults_checked"] == 40 and bound["faults_total"] == len(table) == 990 and bound["disagreeing"] == 0
    assert bound["disagreement_rate_upper_bound"] == pytest.approx(1 - 0.01 ** (1 / 40))
    assert summary["outputs_compared"] == 40 * N_INPUTS * 5
    assert json.loads((tmp_path / "c" / "campaign.json").read_text())["seeds"]["csim_sample"] == 3
    assert "0 of 40 sampled faults disagree: at 99% confidence" in (tmp_path / "c" / "report.md").read_text()
    assert summary["confidence"] == 0.99
    timings = summary["timings"]  # the C-sim rate counts the faults it ran, not the TF engine's
    assert timings["csim_fault_samples_per_second"] == pytest.approx(40 * N_INPUTS / timings["csim_engine_seconds"])
    # --confidence reaches the bound of an exhaustive campaign's C-sim sample
    run_campaign(replace(config, selection=replace(selection, confidence=0.95)), tmp_path / "c95", workers=1,
                 quiet=True)
    summary95 = json.loads((tmp_path / "c95" / "summary.json").read_text())
    assert summary95["confidence"] == summary95["csim_sample"]["confidence"] == 0.95
    assert summary95["csim_sample"]["disagreement_rate_upper_bound"] == pytest.approx(1 - 0.05 ** (1 / 40))
    assert "0 of 40 sampled faults disagree: at 95% confidence" in (tmp_path / "c95" / "report.md").read_text()
    with pytest.raises(FkhlsError, match="--csim-sample 991 is outside the valid range 1..990"):
        run_campaign(CampaignConfig(manifest.project_dir, base / "x.npy", "both", selection, csim_sample=991,
                                    csim_seed=3), tmp_path / "bad", workers=1, quiet=True)
    assert not (tmp_path / "bad" / "campaign.json").exists()


def test_csim_sample_runs_in_csim_shards_that_resume_and_equal_the_full_cross_check(demo, tmp_path):
    """The sampled faults run as a few C-sim shards (a unit of work and of resume each): their C-sim and
    agreement columns equal those of a campaign that runs every fault through both engines."""
    from fkhls.campaign.runner import csim_chunk_size

    base, manifest, _ = demo
    selection = Selection("exhaustive", layers=("output",))  # 990 faults: 4 shards of 256
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", selection, base / "y.npy", shard_size=256,
                            csim_sample=70, csim_seed=4)
    assert csim_chunk_size(70, 256) == 32 and csim_chunk_size(10_000, 2048) == 625 and csim_chunk_size(5, 2) == 2
    partial = run_campaign(config, tmp_path / "s", workers=1, quiet=True, max_shards=4)
    assert partial.table is None and partial.shards_total == 4 + 3 and partial.identity["csim_shards"] == 3
    done = sorted(p.name for p in (tmp_path / "s" / "shards").iterdir())
    assert done == ["csim-00000.parquet", "csim-00001.parquet", "shard-00000.parquet", "shard-00001.parquet"], done
    resumed = run_campaign(config, tmp_path / "s", workers=2, quiet=True)
    assert resumed.shards_run == 3
    whole = run_campaign(replace(config, csim_sample=None, csim_seed=None), tmp_path / "w", workers=2, quiet=True)
    rows = csim_sample_rows(990, 70, 4)
    table = resumed.table
    assert_array_equal(np.flatnonzero(table.columns["csim_checked"]), rows)
    for key in ("csim_outputs_changed", "csim_samples_changed", "csim_top1_changed", "csim_max_abs_error_lsb",
                "mismatched_words", "max_lsb_diff", "first_mismatch_sample", "tf_outputs_changed"):
        assert_array_equal(np.asarray(table.columns[key])[rows], np.asarray(whole.table.columns[key])[rows], key)
    for key in ("tf_outputs_changed", "tf_top1_changed", "tf_accuracy_drop"):
        assert_array_equal(table.columns[key], whole.table.columns[key], key)
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["csim_sample"]["faults_checked"] == 70


def test_csim_shards_on_dask_equal_the_process_pool(demo, tmp_path):
    """C-sim shards are Dask tasks like the others (their own keys): the same files as in the process pool."""
    from fkhls.campaign.results_store import read_shard

    base, manifest, _ = demo
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", Selection("exhaustive", layers=("output",)),
                            base / "y.npy", shard_size=256, csim_sample=70, csim_seed=4)
    run_campaign(config, tmp_path / "pool", workers=1, quiet=True, report=False)
    run_campaign(config, tmp_path / "dask", workers=2, quiet=True, report=False, scheduler="dask-local")
    names = sorted(p.name for p in (tmp_path / "pool" / "shards").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "dask" / "shards").iterdir()) and len(names) == 4 + 3
    for name in names:
        a, b = (read_shard(tmp_path / d / "shards" / name) for d in ("pool", "dask"))
        for key in a:
            if not key.startswith("seconds_"):
                assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")


def test_csim_sample_campaign_written_before_csim_shards_is_still_read(demo, tmp_path):
    """A --csim-sample directory of the layout before C-sim shards (C-sim columns inside every shard, -1 where
    not run; no csim_chunk in campaign.json) gives the same table and report; resuming it is refused."""
    import shutil

    from fkhls.campaign.results_store import read_shard, write_shard
    from fkhls.campaign.runner import load_results, report_campaign

    base, manifest, _ = demo
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "both", Selection("exhaustive", layers=("output",)),
                            base / "y.npy", shard_size=256, csim_sample=40, csim_seed=3)
    new = tmp_path / "new"
    run_campaign(config, new, workers=1, quiet=True)
    old = tmp_path / "old"
    shutil.copytree(new, old)
    identity = json.loads((old / "campaign.json").read_text())
    sampled = read_shard(new / "shards" / "csim-00000.parquet")
    for extra in sorted((old / "shards").glob("csim-*")):
        extra.unlink()
    sampled = {k: np.concatenate([sampled[k], read_shard(new / "shards" / f"csim-{j:05d}.parquet")[k]])
               for j in range(1, identity["csim_shards"]) for k in sampled if not k.startswith("seconds_")} \
        if identity["csim_shards"] > 1 else {k: v for k, v in sampled.items() if not k.startswith("seconds_")}
    rows = sampled.pop("scenario")
    for i in range(identity["n_shards"]):
        path = old / "shards" / f"shard-{i:05d}.parquet"
        shard = read_shard(path)
        lo, hi = shard["scenario"][0], shard["scenario"][-1] + 1
        inside = (rows >= lo) & (rows < hi)
        shard["csim_checked"] = np.isin(np.arange(lo, hi), rows)
        for key, value in sampled.items():
            column = np.full(hi - lo, -1, dtype=value.dtype)
            column[rows[inside] - lo] = value[inside]
            shard[key] = column
        write_shard(path, shard)
    del identity["csim_chunk"], identity["csim_shards"]
    (old / "campaign.json").write_text(json.dumps(identity, indent=2) + "\n")
    a, b = load_results(new), load_results(old)
    assert list(a.columns) == list(b.columns)
    for key in a.columns:
        assert_array_equal(a.columns[key], b.columns[key], err_msg=key)
    report_campaign(old)
    assert (old / "results.csv").read_text() == (new / "results.csv").read_text()
    # report.md up to its timings (the C-sim shards' seconds went with them)
    assert (old / "report.md").read_text().split("## Timings")[0] == (new / "report.md").read_text().split(
        "## Timings")[0]
    assert json.loads((old / "summary.json").read_text())["csim_sample"] == \
        json.loads((new / "summary.json").read_text())["csim_sample"]
    with pytest.raises(CampaignMismatchError, match="csim_chunk: on disk None"):
        run_campaign(config, old, workers=1, quiet=True)


def test_csim_sample_bound_with_disagreements_is_clopper_pearson():
    n = 12
    cols = {"scenario": np.arange(n), "n_bits": np.ones(n, dtype=int), "csim_checked": np.arange(n) < 10,
            "mismatched_words": np.array([0, 3, 0, 0, 0, 0, 1, 0, 0, 0, -1, -1])}
    table = FaultTable(cols, ("tf", "csim"), 4, 2, 1.0, notes={"csim_sample": {"seed": 1, "confidence": 0.95}})
    bound = csim_sample_bound(table)
    assert (bound["faults_checked"], bound["disagreeing"]) == (10, 2)
    assert bound["disagreement_rate_upper_bound"] == pytest.approx(clopper_pearson_upper(2, 10, 0.95))
    assert binom.cdf(2, 10, bound["disagreement_rate_upper_bound"]) == pytest.approx(0.05, rel=1e-6)
    assert "Clopper-Pearson" in bound["statement"]


# ----------------------------------------------------------------------------- the command line


def test_cli_statistical_campaign(demo, tmp_path):
    from click.testing import CliRunner

    from fkhls.cli import main

    base, manifest, _ = demo
    common = ["campaign", str(manifest.project_dir), "--inputs", str(base / "x.npy"), "--engine", "tf",
              "--workers", "1", "--quiet"]
    runner = CliRunner()
    result = runner.invoke(main, [*common, "--labels", str(base / "y.npy"), "--confidence", "0.95", "--margin", "0.1",
                                  "--per", "bit", "--seed", "2", "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "top1 vulnerability" in result.output and "at 0.95" in result.output
    stats = json.loads((tmp_path / "cli" / "summary.json").read_text())["statistics"]
    assert stats["design"]["per"] == "bit" and len(stats["design"]["strata"]) == 6
    bad = runner.invoke(main, [*common, "--exhaustive", "--margin", "0.1", "-o", str(tmp_path / "b1")])
    assert bad.exit_code == 2 and "belong to a statistical campaign" in bad.output
    bad = runner.invoke(main, [*common, "--exhaustive", "--csim-sample", "5", "--seed", "1", "-o", str(tmp_path / "b2")])
    assert bad.exit_code == 1 and "needs --engine both" in bad.output
    bad = runner.invoke(main, [*common, "--confidence", "0.9", "--margin", "0.1", "-o", str(tmp_path / "b3")])
    assert bad.exit_code == 1 and "--seed S" in bad.output
    bad = runner.invoke(main, [*common, "--confidence", "1.5", "--margin", "0.1", "--seed", "0", "-o",
                               str(tmp_path / "b4")])
    assert bad.exit_code == 2 and "--confidence" in bad.output
    bad = runner.invoke(main, [*common, "--exhaustive", "--confidence", "0.9", "-o", str(tmp_path / "b5")])
    assert bad.exit_code == 2 and "--csim-sample bound only" in bad.output
    # --confidence with --ber: the intervals of the trials' rates
    result = runner.invoke(main, [*common, "--ber", "0.001", "--trials", "8", "--seed", "3", "--confidence", "0.8",
                                  "-o", str(tmp_path / "ber")])
    assert result.exit_code == 0, result.output
    assert "at 0.8" in result.output
    assert json.loads((tmp_path / "ber" / "summary.json").read_text())["statistics"]["confidence"] == 0.8


# ----------------------------------------------------------------------------- reports streamed from the shards

REPORT_FILES = ("summary.json", "report.md", "results.csv", "heatmap.png", "histograms.png")


def _report_files(results_dir: Path) -> dict[str, bytes]:
    return {name: (results_dir / name).read_bytes() for name in REPORT_FILES if (results_dir / name).is_file()}


@pytest.mark.parametrize("case", ["exhaustive", "sampled", "ber", "csim_sample"])
def test_report_streamed_from_the_shards_equals_the_report_of_the_table_in_memory(demo, tmp_path, case):
    """The report accumulates exact integers batch by batch (``report.Digest``): streamed from the shards in
    small batches (bounded memory) it writes the same bytes as from the whole table in memory."""
    import shutil

    from fkhls.campaign.runner import load_results, open_results, report_campaign

    base, manifest, _ = demo
    if case == "exhaustive":
        shutil.copytree(base / "exhaustive", tmp_path / case)
    else:
        selection = {"sampled": Selection("sampled", confidence=0.95, margin=0.05, per="layer-bit", seed=5),
                     "ber": Selection("ber", ber=1e-3, trials=300, seed=2),
                     "csim_sample": Selection("exhaustive", layers=("output",))}[case]
        engine = "both" if case == "csim_sample" else "tf"
        sample = {"csim_sample": 40, "csim_seed": 3} if case == "csim_sample" else {}
        run_campaign(CampaignConfig(manifest.project_dir, base / "x.npy", engine, selection, base / "y.npy",
                                    shard_size=256, **sample), tmp_path / case, workers=1, quiet=True)
    results = tmp_path / case
    table = load_results(results)
    assert sum(1 for _ in open_results(results).batches(97)) > json.loads(
        (results / "campaign.json").read_text())["n_shards"]  # batches smaller than the shards
    report_campaign(results, table)
    whole = _report_files(results)
    assert {"summary.json", "report.md", "results.csv", "histograms.png"} <= set(whole)
    report_campaign(results, batch_rows=97)
    streamed = _report_files(results)
    for name in whole:
        assert streamed[name] == whole[name], name
    if case == "sampled":  # the exact sums give the numbers of the row-wise estimator (up to float rounding)
        from fkhls.campaign.report import rate_values

        notes = table.notes["design"]
        populations = np.array([st["population"] for st in notes["strata"]], dtype=np.float64)
        strata = np.asarray(table.columns["stratum"])
        for rate in ("top1_vulnerability", "outputs_changed_fraction", "faults_changing_outputs"):
            rv = rate_values(table, rate)
            for name, est in domain_estimates(table, rate, "layer"):
                mine = np.char.add(np.char.add(table.columns["layer"], " "), table.columns["tensor"]) == name
                row_wise = domain_estimate(rv.values, strata, populations, 0.95, mine, est.population, rv.bounds,
                                           rv.method, rv.units)
                for got, want in zip((est.value, est.low, est.high), (row_wise.value, row_wise.low, row_wise.high)):
                    assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (rate, name)
