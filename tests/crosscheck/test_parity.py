"""Issue 14.1: a result called bit-exact is decided on raw integer words, also for words wider than a float64's 53 bits."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.crosscheck import compare
from fkhls.crosscheck.compare import _same_values, crosscheck
from fkhls.crosscheck.parity import compare_words, exact_words, word_differences
from fkhls.faults.addressing import spec_from_manifest
from fkhls.faults.descriptors import load_fault_set

FRAC = 42  # ap_fixed<59,17>: the output type of the wide model below
BIG = (1 << 57) + (1 << 20)  # a 59-bit word above 2**53: float64 cannot hold BIG + 1


def test_exact_words_are_integers_and_off_grid_is_detected():
    values = np.array([1.5, -0.25, 2.0**-42, 2.0**-43, np.inf, np.nan, 2.0**30])
    words, on_grid = exact_words(values, FRAC)
    assert words.dtype == np.int64
    assert_array_equal(on_grid, [True, True, True, False, False, False, False])  # 2**30 * 2**42 > 2**62
    assert_array_equal(words[:3], [3 << 41, -(1 << 40), 1])
    assert_array_equal(words[3:], 0)


def test_compare_words_sees_an_lsb_difference_above_2_to_the_53():
    hardware = np.array([[BIG + 1, BIG], [-BIG - 1, 5]], dtype=np.int64)
    reference = np.array([[BIG, BIG], [-BIG, 5]], dtype=np.float64) * 2.0**-FRAC  # BIG is a float64: exact
    assert float(BIG + 1) == float(BIG)  # what a float comparison would have seen: equal
    report = compare_words(reference, hardware, FRAC, "ap_fixed<59,17>")
    assert report.outputs_compared == 4 and report.bit_exact == 2
    assert report.first_mismatch == (0, 0) and report.max_lsb_diff == 1.0
    same = compare_words(reference, np.array([[BIG, BIG], [-BIG, 5]]), FRAC, "ap_fixed<59,17>")
    assert same.all_exact and same.max_lsb_diff == 0


def test_compare_words_counts_an_off_grid_reference_as_a_mismatch():
    report = compare_words(np.array([[0.5 + 2.0**-44]]), np.array([[1 << 41]]), FRAC, "t")
    assert report.bit_exact == 0 and report.max_lsb_diff == pytest.approx(0.25)


def test_word_differences_and_layer_trace_compare_as_integers():
    a = np.array([BIG, BIG + 1, -BIG], dtype=np.int64)
    exact, distance = word_differences(a, a + np.array([0, 1, -1]))
    assert_array_equal(exact, [True, False, False])
    assert_array_equal(distance, [0, 1, 1])
    # The layer trace: hardware words at 2**-42 against emulated words at 2**-40 (a different type).
    differ, lsb = _same_values(a * 4 + np.array([0, 0, 1]), FRAC, a, FRAC - 2)
    assert_array_equal(differ, [False, False, True]) and lsb == 0.25


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A QDense whose accumulator and output are ap_fixed<59,17>, with inputs that make words above 2**53."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    from fkhls.project.export import ExportOptions, export_model

    tf.keras.utils.set_random_seed(5)
    x_in = tf.keras.Input(shape=(8,))
    out = QDense(3, name="wide", kernel_quantizer=quantized_bits(20, 1, alpha=1),
                 bias_quantizer=quantized_bits(20, 1, alpha=1))(x_in)
    model = tf.keras.Model(x_in, out)
    rng = np.random.default_rng(0)
    model.layers[1].set_weights([rng.uniform(-2, 2, (8, 3)).astype(np.float32),
                                 rng.uniform(-2, 2, 3).astype(np.float32)])
    manifest = export_model(model, tmp_path_factory.mktemp("wide") / "p", ExportOptions(input_type="ap_fixed<36,12>"))
    assert manifest.output_type["cpp"] == "ap_fixed<59,17>"
    x = np.round(rng.uniform(-2000, 2000, (12, 8)) * 2**24) / 2**24
    return manifest, model, x


def test_crosscheck_reports_one_lsb_in_a_59_bit_word(wide, monkeypatch):
    manifest, model, x = wide
    faults = load_fault_set({"faults": [{"layer": "wide", "bits": [0]}, {"layer": "wide", "bits": [40]}]},
                            spec_from_manifest(manifest))
    clean = crosscheck(manifest, faults, x, model=model, workers=1)
    assert clean.engine == "cone harness"  # the engine this project must run on
    assert clean.all_exact and clean.golden.exact and clean.bit_exact == clean.outputs_compared == 2 * 12 * 3
    real = compare._csim_outputs
    seen = {}

    def off_by_one_lsb(*args, **kwargs):
        words, engine = real(*args, **kwargs)
        words = np.array(words, copy=True)
        seen["word"] = int(words[1, 4, 2])
        words[1, 4, 2] += 1  # scenario 0 (index 1 after the golden run), sample 4, output 2
        return words, engine

    monkeypatch.setattr(compare, "_csim_outputs", off_by_one_lsb)
    report = crosscheck(manifest, faults, x, model=model, workers=1)
    assert abs(seen["word"]) > 1 << 53  # a float64 could not tell the two words apart
    assert [r.index for r in report.mismatching] == [0] and report.golden.exact
    bad = report.mismatching[0]
    assert bad.bit_exact == bad.outputs_compared - 1 and bad.first_mismatch == (4, 2) and bad.max_lsb_diff == 1.0
