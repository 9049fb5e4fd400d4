"""fkhls.rank.bitorder: FKeras's conventions from parameter scores to a bit order, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import FkhlsError
from fkhls.rank.bitorder import BitSpace, bit_order, param_order

# two tensors: a (2 weights x 3 bits) and b (1 weight x 2 bits); parameters 0, 1 in a, 2 in b
SPACE = BitSpace(("L", "L"), ("kernel", "bias"), (2, 1), (3, 2))


def test_space_counts_and_all_bits():
    assert SPACE.n_params == 3 and SPACE.n_bits == 8
    tensor, lbi = SPACE.all_bits()
    assert_array_equal(tensor, [0, 0, 0, 0, 0, 0, 1, 1])
    assert_array_equal(lbi, [0, 1, 2, 3, 4, 5, 0, 1])
    assert_array_equal(SPACE.model_bit_offsets(), [0, 6])


def test_param_order_is_by_magnitude_with_ties_by_index():
    assert_array_equal(param_order(np.array([1.0, -5.0, 3.0, 5.0])), [1, 3, 2, 0])
    with pytest.raises(FkhlsError, match="finite"):
        param_order(np.array([1.0, np.nan]))


def test_msb_groups_puts_every_msb_first_in_parameter_rank_order():
    # parameter rank: 1 (|5|), 2 (|3|), 0 (|1|)
    tensor, lbi, score, param = bit_order(SPACE, np.array([1.0, -5.0, 3.0]), "msb-groups")
    # (tensor, lbi): MSBs of p1, p2, p0; then MSB-1 of p1, p2, p0; then MSB-2 of p1, p0 (p2 has 2 bits)
    expected = [(0, 3), (1, 0), (0, 0), (0, 4), (1, 1), (0, 1), (0, 5), (0, 2)]
    assert list(zip(tensor.tolist(), lbi.tolist())) == expected
    assert_array_equal(score, [5, 3, 1, 5, 3, 1, 5, 1])
    assert_array_equal(param, [-5, 3, 1, -5, 3, 1, -5, 1])


def test_weighted_sorts_on_score_times_two_to_the_bit():
    tensor, lbi, score, _ = bit_order(SPACE, np.array([1.0, -5.0, 3.0]), "weighted")
    # bit scores: p0: 4,2,1  p1: 20,10,5  p2 (2 bits): 6,3
    assert_array_equal(score, [20, 10, 6, 5, 4, 3, 2, 1])
    assert list(zip(tensor.tolist(), lbi.tolist())) == [(0, 3), (0, 4), (1, 0), (0, 5), (0, 0), (1, 1), (0, 1),
                                                        (0, 2)]


def test_bad_arguments_are_refused():
    with pytest.raises(FkhlsError, match="3 parameters"):
        bit_order(SPACE, np.ones(4))
    with pytest.raises(FkhlsError, match="valid bit orders"):
        bit_order(SPACE, np.ones(3), "lsb-first")
