"""engine_agreement returns early when the engines agree on every word (the usual, bit-exact case): the same
columns as the full computation, and the full computation when one word differs."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_array_equal

from fkhls.campaign.runner import engine_agreement


def test_engine_agreement_when_equal_and_when_not():
    rng = np.random.default_rng(3)
    a = rng.integers(-100, 100, size=(6, 20, 4))
    same = engine_agreement(a, a.copy())
    assert_array_equal(same["mismatched_words"], np.zeros(6))
    assert_array_equal(same["max_lsb_diff"], np.zeros(6))
    assert_array_equal(same["first_mismatch_sample"], np.full(6, -1))
    assert all(v.dtype == np.int64 for v in same.values())
    b = a.copy()
    b[2, 5, 1] += 7
    b[2, 9, 0] -= 1
    differ = engine_agreement(a, b)
    assert_array_equal(differ["mismatched_words"], [0, 0, 2, 0, 0, 0])
    assert_array_equal(differ["max_lsb_diff"], [0, 0, 7, 0, 0, 0])
    assert_array_equal(differ["first_mismatch_sample"], [-1, -1, 5, -1, -1, -1])
