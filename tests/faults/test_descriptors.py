"""Fault descriptors: FKeras's LBI convention, fault-set files, validation, seeded draws."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fkhls.core.errors import FaultSpecError
from fkhls.faults.descriptors import (
    BitFault,
    FaultyLayerBitRegion,
    exhaustive_faults,
    fault_from_model_bit,
    fault_set_to_dict,
    lb_index_to_wb_index,
    load_fault_set,
    model_bit_of,
    random_ber_scenarios,
    split_single_bits,
    wb_index_to_lb_index,
)

ISSUE_EXAMPLE = {
    "seed": 7,
    "faults": [
        {"layer": "fc1", "tensor": "kernel", "regions": [[0, 0, 1.0], [10, 15, 0.5]]},
        {"layer": "output", "tensor": "bias", "bits": [3, 7]},
        {"model_bits": [12345]},
    ],
}


@pytest.fixture(scope="module")
def spec():
    from fkhls.model.spec import describe_model, load_keras_model
    from pathlib import Path

    import fkhls

    return describe_model(load_keras_model(Path(fkhls.__file__).parent / "data" / "demo_model.h5"))


def test_lb_index_to_wb_index_is_fkeras_msb_first():
    # FKeras docstring: two 3-bit weights, LBI 0..5 -> (0,2) (0,1) (0,0) (1,2) (1,1) (1,0)
    assert [lb_index_to_wb_index(i, 3) for i in range(6)] == [(0, 2), (0, 1), (0, 0), (1, 2), (1, 1), (1, 0)]
    assert lb_index_to_wb_index(0, 5) == (0, 4)  # the seed notebook's check
    for lbi in range(40):
        assert wb_index_to_lb_index(*lb_index_to_wb_index(lbi, 6), 6) == lbi


def test_region_name_fields_and_repr():
    region = FaultyLayerBitRegion(10, 15, 0.5)
    assert (region.start_lbi, region.end_lbi, region.ber) == (10, 15, 0.5)
    assert repr(region) == "FaultyLayerBitRegion(start_lbi=10, end_lbi=15, ber=0.5)"


def test_bit_fault_coordinates(spec):
    fault = BitFault.at(spec, "fc1", "kernel", 7)
    assert (fault.flat_index, fault.bit) == (1, 4)
    assert BitFault.from_index(spec, "fc1", "kernel", 1, 4) == fault


def test_issue_example_loads(spec):
    fs = load_fault_set(ISSUE_EXAMPLE, spec)
    assert fs.seed == 7 and len(fs.scenarios) == 3
    first = fs.scenarios[0].faults
    assert first[0] == BitFault("fc1", "kernel", 0, 6)
    drawn = [f.lbi for f in first[1:]]
    assert len(drawn) == int(6 * 0.5) and all(10 <= b <= 15 for b in drawn) and len(set(drawn)) == 3
    assert [f.lbi for f in fs.scenarios[1].faults] == [3, 7]
    assert fs.scenarios[1].faults[0].tensor == "bias"
    # model bits: fc1 kernel 6144 + fc1 bias 384 bits come first, then fc2 kernel
    assert fs.scenarios[2].faults == (BitFault("fc2", "kernel", 12345 - 6144 - 384, 6),)


def test_yaml_and_json_files_agree(spec, tmp_path):
    import yaml

    (tmp_path / "f.json").write_text(json.dumps(ISSUE_EXAMPLE))
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(ISSUE_EXAMPLE))
    assert load_fault_set(tmp_path / "f.json", spec) == load_fault_set(tmp_path / "f.yaml", spec)


def test_seeded_ber_is_reproducible_and_seed_dependent(spec):
    desc = {"seed": 3, "faults": [{"layer": "fc2", "regions": [[0, 12287, 0.01]]}]}
    a = load_fault_set(desc, spec)
    assert a == load_fault_set(desc, spec)
    assert len(a.scenarios[0].faults) == int(12288 * 0.01)
    b = load_fault_set({**desc, "seed": 4}, spec)
    assert a.scenarios[0].faults != b.scenarios[0].faults
    # the drawn bits are recorded: written back as explicit bits they reload to the same set
    assert load_fault_set(fault_set_to_dict(a, spec), spec).scenarios[0].faults == a.scenarios[0].faults


def test_duplicate_bits_flip_once(spec):
    fs = load_fault_set({"faults": [{"layer": "fc1", "bits": [4, 4], "regions": [[4, 4, 1.0]]}]}, spec)
    assert fs.scenarios[0].faults == (BitFault("fc1", "kernel", 4, 6),)


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"layer": "fc1", "bits": [6144]}, ["6144", "0..6143"]),
        ({"layer": "fc1", "regions": [[5, 3, 1.0]]}, ["start_lbi 5 > end_lbi 3"]),
        ({"layer": "fc1", "regions": [[0, 3, 1.5]]}, ["1.5", "[0, 1]"]),
        ({"layer": "fc1", "regions": [[0, 6144, 1.0]]}, ["end_lbi 6144", "0..6143"]),
        ({"layer": "nope", "bits": [0]}, ["'nope'", "does not exist", "fc1"]),
        ({"layer": "fc1", "tensor": "gamma", "bits": [0]}, ["'gamma'", "kernel"]),
        ({"layer": "relu1", "bits": [0]}, ["'relu1'", "no quantizer"]),
        ({"model_bits": [26334]}, ["26334", "0..26333"]),
        ({"layer": "fc1", "bitz": [0]}, ["bitz", "valid keys"]),
        ({"layer": "fc1"}, ["names no bits"]),
    ],
)
def test_bad_descriptors_name_value_and_range(spec, entry, words):
    with pytest.raises(FaultSpecError) as info:
        load_fault_set({"seed": 1, "faults": [entry]}, spec)
    for word in words:
        assert word in str(info.value)


def test_bad_seed_and_missing_file(spec, tmp_path):
    with pytest.raises(FaultSpecError, match="seed -1"):
        load_fault_set({"seed": -1, "faults": [{"model_bits": [0]}]}, spec)
    with pytest.raises(FaultSpecError, match="does not exist"):
        load_fault_set(tmp_path / "missing.json", spec)


def test_exhaustive_counts_and_order(spec):
    faults = exhaustive_faults(spec)
    assert len(faults) == 26334  # 4,389 parameters x 6 bits
    assert [model_bit_of(spec, f) for f in faults[:: 997]] == list(range(0, 26334, 997))
    assert fault_from_model_bit(spec, 6144) == BitFault("fc1", "bias", 0, 6)
    signs = exhaustive_faults(spec, layers=["output"], tensors=("bias",), bits=[5])
    assert [(f.flat_index, f.bit) for f in signs] == [(i, 5) for i in range(5)]
    with pytest.raises(FaultSpecError, match="0..5"):
        exhaustive_faults(spec, bits=[6])


def test_fault_list_is_the_exhaustive_list_made_on_read(spec):
    """The compact FaultList a campaign keeps holds exactly exhaustive_faults, in order, by index and by slice."""
    from fkhls.faults.descriptors import exhaustive_fault_list

    for kwargs in ({}, {"layers": ["fc2", "output"], "bits": [5, 0]}, {"tensors": ("bias",)}):
        full, compact = exhaustive_faults(spec, **kwargs), exhaustive_fault_list(spec, **kwargs)
        assert len(compact) == len(full) and list(compact) == full, kwargs
        assert compact[-1] == full[-1] and compact[len(full) // 3] == full[len(full) // 3]
        assert compact[5:40:7] == full[5:40:7]
    with pytest.raises(IndexError):
        exhaustive_fault_list(spec)[26334]


def test_exhaustive_bits_on_mixed_widths():
    """bits=[7] is the MSB of an 8-bit kernel and absent from 4- to 6-bit words: kept where it exists."""
    from fkhls.model.spec import describe_model
    from tests import models

    spec = describe_model(models.build("dense"))  # d1 kernel 8 bits, d1 bias 8, d2 5/6, d3 4/4, out 6/6
    faults = exhaustive_faults(spec, bits=[7, 0])
    widths = {(t.layer, t.tensor): t.width for t in spec.tensors()}
    assert {f.bit for f in faults if widths[(f.layer, f.tensor)] < 8} == {0}
    assert {f.bit for f in faults if (f.layer, f.tensor) == ("d1", "kernel")} == {7, 0}
    assert len(faults) == sum(t.size * (2 if t.width == 8 else 1) for t in spec.tensors())


def test_random_ber_scenarios(spec):
    runs = random_ber_scenarios(spec, 1e-3, trials=3, seed=11)
    assert [len(s.faults) for s in runs] == [26] * 3
    assert runs == random_ber_scenarios(spec, 1e-3, trials=3, seed=11)
    assert runs[:2] == random_ber_scenarios(spec, 1e-3, trials=2, seed=11)  # adding trials keeps earlier ones
    assert runs[0].faults != runs[1].faults
    only = random_ber_scenarios(spec, 0.01, trials=1, seed=0, layers=["fc3"])
    assert {f.layer for f in only[0].faults} == {"fc3"} and len(only[0].faults) == int((6144 + 192) * 0.01)
    with pytest.raises(FaultSpecError, match=r"\[0, 1\]"):
        random_ber_scenarios(spec, 2.0, trials=1, seed=0)


def test_split_single_bits(spec):
    whole = load_fault_set(ISSUE_EXAMPLE, spec)
    fs = split_single_bits(whole)
    assert [len(s.faults) for s in fs.scenarios] == [1] * (4 + 2 + 1)
    assert fs.seed == 7
    bits = [(s.faults[0].layer, s.faults[0].tensor, s.faults[0].lbi) for s in fs.scenarios]
    assert bits[0] == ("fc1", "kernel", 0)  # region [0, 0, 1.0]
    drawn = bits[1:4]  # region [10, 15, 0.5]: three distinct bits of 10..15, drawn with the seed
    assert {b[:2] for b in drawn} == {("fc1", "kernel")} and len({b[2] for b in drawn}) == 3
    assert all(10 <= b[2] <= 15 for b in drawn)
    assert bits[4:] == [("output", "bias", 3), ("output", "bias", 7), ("fc2", "kernel", 12345 - 6144 - 384)]
    assert [f for s in fs.scenarios for f in s.faults] == [f for s in whole.scenarios for f in s.faults]
    assert [s.name for s in fs.scenarios] == [f"{layer}.{tensor}[lbi={lbi}]" for layer, tensor, lbi in bits]
    # A bit named by two scenarios is run once, where it was first seen.
    twice = split_single_bits(load_fault_set({"faults": [{"layer": "fc1", "bits": [4, 2]},
                                                         {"layer": "fc1", "bits": [2, 9]}]}, spec))
    assert [s.faults[0].lbi for s in twice.scenarios] == [4, 2, 9]
