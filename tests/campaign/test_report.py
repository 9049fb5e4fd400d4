"""fkhls.campaign.report on hand-made tables: sensitivity cells, worst-first order, agreement, JSON, Markdown, PNGs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fkhls.campaign.report import (
    FaultTable,
    agreement,
    build_summary,
    heatmap_figure,
    plot_heatmap,
    render_markdown,
    sensitivity,
    worst_faults,
    write_report,
    write_summary,
)

N_SAMPLES, N_OUT = 10, 2  # 20 output words per fault


def _table(both: bool = True, labels: bool = True, multi: bool = False) -> FaultTable:
    """Six single-bit faults: a 3-bit kernel (bits 2,1,0 twice) ... and a 2-bit bias (bit 1)."""
    layer = np.array(["a", "a", "a", "a", "a", "a", "b"])
    tensor = np.array(["kernel"] * 6 + ["bias"])
    bit = np.array([2, 1, 0, 2, 1, 0, 1])
    changed = np.array([20, 4, 0, 10, 2, 0, 6])  # output words changed
    top1 = np.array([5, 0, 0, 3, 0, 0, 1])
    n = len(layer)
    cols = {
        "scenario": np.arange(n), "name": np.array([f"f{i}" for i in range(n)]),
        "n_bits": np.full(n, 2 if multi else 1), "layer": layer, "tensor": tensor, "lbi": np.arange(n),
        "bit": bit, "flat_index": np.arange(n) // 3, "model_bit": np.arange(n), "array": np.array(["w1"] * 6 + ["b1"]),
        "element": np.arange(n) // 3, "array_bit": bit,
    }
    engines = ("tf", "csim") if both else ("tf",)
    for e in engines:
        cols[f"{e}_outputs_changed"] = changed
        cols[f"{e}_samples_changed"] = np.minimum(changed, N_SAMPLES)
        cols[f"{e}_max_abs_error_lsb"] = changed * 3
        cols[f"{e}_max_abs_error"] = changed * 3 / 8.0
        cols[f"{e}_top1_changed"] = top1
        if labels:
            cols[f"{e}_accuracy_drop"] = top1 / N_SAMPLES
    if both:
        cols["mismatched_words"] = np.array([0, 0, 0, 0, 2, 0, 0])
        cols["max_lsb_diff"] = np.array([0, 0, 0, 0, 1, 0, 0])
        cols["first_mismatch_sample"] = np.array([-1, -1, -1, -1, 7, -1, -1])
    return FaultTable(cols, engines, N_SAMPLES, N_OUT, 1 / 8.0, labels, {"widths": {"a kernel": 3, "b bias": 2}})


def test_sensitivity_cells_are_means_per_tensor_and_bit():
    sens = sensitivity(_table(), "outputs_changed_fraction")
    assert sens.rows == ("a kernel", "b bias")
    assert sens.bits == (2, 1, 0)
    assert_allclose(sens.values[0], [(20 + 10) / 2 / 20, (4 + 2) / 2 / 20, 0.0])
    assert math.isnan(sens.values[1, 0]) and math.isnan(sens.values[1, 2])  # b1: only bit 1 was run
    assert sens.values[1, 1] == pytest.approx(6 / 20)
    assert_array_equal(sens.counts, [[2, 2, 2], [0, 1, 0]])
    top1 = sensitivity(_table(), "top1_change_rate")
    assert top1.values[0, 0] == pytest.approx((5 + 3) / 2 / N_SAMPLES)


def test_worst_faults_order_top1_then_outputs_then_error():
    worst = worst_faults(_table(), k=4)
    assert [w["scenario"] for w in worst] == [0, 3, 6, 1]


def test_agreement_counts_words_and_lists_mismatches():
    a = agreement(_table())
    assert a["outputs_compared"] == 7 * N_SAMPLES * N_OUT
    assert a["bit_exact"] == a["outputs_compared"] - 2
    assert a["scenarios_mismatching"] == 1 and a["max_lsb_diff"] == 1
    assert a["mismatching_scenarios"][0]["scenario"] == 4
    assert a["mismatching_scenarios"][0]["first_mismatch_sample"] == 7
    assert agreement(_table(both=False)) == {}


def test_summary_is_plain_json_with_required_keys(tmp_path):
    summary = build_summary(_table(), {"seeds": {"ber_trials": 3}, "timings": {"x": np.float64(1.5)}})
    path = write_summary(tmp_path / "summary.json", summary)
    data = json.loads(path.read_text())
    for key in ("faults", "samples", "engines", "outputs_compared", "bit_exact", "max_lsb_diff",
                "mismatching_scenarios", "sensitivity", "worst_faults", "timings", "seeds"):
        assert key in data, key
    assert data["faults"] == 7 and data["seeds"] == {"ber_trials": 3} and data["timings"]["x"] == 1.5
    assert data["sensitivity"]["outputs_changed_fraction"]["values"][1][0] is None  # NaN -> null
    assert data["totals"]["csim"]["faults_changing_top1"] == 3


def test_markdown_has_agreement_sensitivity_and_worst_tables():
    table = _table()
    text = render_markdown(table, build_summary(table, {}), title="t")
    assert text.startswith("# Fault campaign: t")
    assert "## Engine agreement (tf vs csim)" in text and "| 140 " in text.replace(",", "")
    assert "| a kernel | 0.750 | 0.150 | 0.000 |" in text
    assert "## Worst 20 faults (csim engine)" in text
    assert "Mismatching scenarios" in text


def test_write_report_writes_every_file_and_png_headers(tmp_path):
    paths = write_report(tmp_path, _table(), {"mode": "exhaustive"})
    assert set(paths) == {"summary", "heatmap", "histograms", "report", "results"}
    for name in ("heatmap", "histograms"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = paths["results"].read_text().splitlines()
    assert len(lines) == 8 and lines[0].startswith("scenario,name,n_bits,layer")


def test_heatmap_draws_the_sensitivity_table(tmp_path):
    """The heatmap's pixels come from the per-tensor, per-bit means: read back what each panel drew."""
    from matplotlib.image import imread

    fig = heatmap_figure(_table())
    outputs_panel, top1_panel = [ax for ax in fig.axes if ax.images]  # the two panels (colorbars draw no image)
    expected = {
        outputs_panel: [[0.75, 0.15, 0.0], [np.nan, 6 / 20, np.nan]],  # (20+10)/2/20, (4+2)/2/20, 0; b: bit 1 only
        top1_panel: [[0.4, 0.0, 0.0], [np.nan, 0.1, np.nan]],  # (5+3)/2/10; b bias bit 1: 1/10
    }
    for ax, values in expected.items():
        drawn = ax.images[0].get_array()
        assert_allclose(drawn.filled(np.nan), values)
        assert_array_equal(np.ma.getmaskarray(drawn), np.isnan(values))  # grey: no fault there
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a kernel", "b bias"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["b2\nMSB", "b1", "b0"]
        cells = sorted((t.get_position(), t.get_text()) for t in ax.texts)
        assert [c[1] for c in cells] == [f"{v:.2g}" for row in np.array(values).T for v in row if not np.isnan(v)]
    assert fig.axes[0].images[0].get_clim() == (0.0, 0.75)  # the colour scale spans the data
    width, height = fig.get_size_inches() * 110
    path = plot_heatmap(tmp_path / "h.png", _table())
    image = imread(path)
    assert image.shape[:2] == (round(height), round(width)) and image.std() > 0  # that figure, drawn


def test_multi_bit_campaign_has_no_heatmap(tmp_path):
    table = _table(both=False, labels=False, multi=True)
    assert plot_heatmap(tmp_path / "h.png", table) is None
    paths = write_report(tmp_path, table, {})
    assert "heatmap" not in paths and not (tmp_path / "heatmap.png").exists()
    assert "heatmap.png" not in paths["report"].read_text()
    assert "sensitivity" not in json.loads(paths["summary"].read_text())
