"""fkhls.csim.harness: one compiled binary, bits flipped in memory per scenario, equal to inject + csim and the emulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.csim import build as csim
from fkhls.faults.addressing import map_faults
from fkhls.csim.inject import inject_bits
from fkhls.core.errors import AddressError, BuildError, ProjectError
from fkhls.project.export import ExportOptions, export_model
from fkhls.csim.harness import (
    build_harness,
    encode_scenarios,
    open_results,
    prepare_harness,
    run_fault_harness,
    run_harness_slice,
    split_range,
)
from fkhls.project.manifest import load_manifest

from tests import models



@pytest.fixture(scope="session")
def demo(golden_demo_project, demo_inputs):
    manifest = golden_demo_project  # shared (conftest), read-only
    x = demo_inputs[:200]
    return manifest, x, csim.input_words(manifest, x), build_harness(manifest)


@pytest.fixture(scope="session")
def conv(tmp_path_factory):
    """Transposed kernels (Resource), io_stream, Vitis: element order and stream I/O in the harness."""
    model = models.build("conv2d")
    manifest = export_model(model, tmp_path_factory.mktemp("harness") / "conv",
                            ExportOptions("Vitis", "io_stream", "Resource", 2))
    x = models.inputs_for(model, n=24)
    return manifest, model, x, csim.input_words(manifest, x), build_harness(manifest)


def _emulated(model, manifest, scenarios_of_bitfaults, x):
    """Raw outputs of the exact integer emulator for each scenario of BitFaults."""
    from fkhls.emulate.emulator import apply_faults, forward_raw, golden_weights
    from fkhls.model.spec import describe_model

    spec = describe_model(model, manifest.input_type["cpp"])
    weights = golden_weights(model, spec)
    x_raw = csim.input_words(manifest, x).reshape(len(x), *manifest.input_shape)
    return np.stack([forward_raw(spec, apply_faults(spec, weights, faults), x_raw).reshape(len(x), -1)
                     for faults in scenarios_of_bitfaults])


def _random_faults(spec, rng, n):
    from fkhls.faults.descriptors import BitFault

    tensors = spec.tensors()
    out = []
    for _ in range(n):
        t = tensors[rng.integers(len(tensors))]
        out.append(BitFault(t.layer, t.tensor, int(rng.integers(t.n_bits)), t.width))
    return out


def test_empty_scenario_is_the_golden_csim(demo):
    manifest, x, x_raw, binary = demo
    y = run_fault_harness(manifest, x_raw, [[]], binary=binary)
    assert y.shape == (1, len(x), 5)
    assert_array_equal(y[0], csim.run_csim(manifest, x))


def test_harness_equals_inject_plus_csim_on_a_sample(demo, tmp_path):
    """Done-when: per-fault outputs of the harness == a faulty project built by inject and run by csim."""
    manifest, x, x_raw, binary = demo
    scenarios = [
        [("w2", 0, 5)],  # sign bit of the first weight
        [("w5", 100, 4), ("w5", 100, 1), ("b8", 3, 5), ("w11", 17, 0)],  # multi-bit: two in one word, three arrays
        [("b2", 63, 2)],
    ]
    y = run_fault_harness(manifest, x_raw, scenarios, binary=binary)
    golden = csim.run_csim(manifest, x)
    for index, scenario in enumerate(scenarios):
        faulty = inject_bits(manifest.project_dir, tmp_path / f"f{index}", scenario)
        expected = csim.run_csim(load_manifest(faulty.project_dir), x)
        assert_array_equal(y[index], expected, err_msg=f"scenario {index} {scenario}")
        assert (expected != golden).any() or index == 2
    # and the golden arrays are restored after every scenario: a golden run after them is golden
    y2 = run_fault_harness(manifest, x_raw, [*scenarios, []], binary=binary)
    assert_array_equal(y2[-1], golden)


def test_harness_equals_exact_emulator_for_many_faults(demo):
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.model.spec import load_keras_model

    manifest, x, x_raw, binary = demo
    model = load_keras_model(manifest.model_path)
    rng = np.random.default_rng(5)
    spec = spec_from_manifest(manifest)
    singles = [[f] for f in _random_faults(spec, rng, 150)]
    multis = [_random_faults(spec, rng, 4) for _ in range(10)]
    scenarios = singles + multis
    hw = [[(h.array, h.element, h.array_bit) for h in map_faults(manifest, s)] for s in scenarios]
    got = run_fault_harness(manifest, x_raw[:60], hw, binary=binary)
    assert_array_equal(got, _emulated(model, manifest, scenarios, x[:60]))


def test_stream_resource_project(conv, tmp_path):
    manifest, model, x, x_raw, binary = conv
    rng = np.random.default_rng(9)
    from fkhls.faults.addressing import spec_from_manifest

    faults = _random_faults(spec_from_manifest(manifest), rng, 12)
    scenarios = [[f] for f in faults[:8]] + [faults[8:]]
    hw = [[(h.array, h.element, h.array_bit) for h in map_faults(manifest, s)] for s in scenarios]
    got = run_fault_harness(manifest, x_raw, hw, binary=binary)
    assert_array_equal(got, _emulated(model, manifest, scenarios, x))
    faulty = inject_bits(manifest.project_dir, tmp_path / "faulty", hw[-1])
    assert_array_equal(got[-1], csim.run_csim(load_manifest(faulty.project_dir), x))


def test_slices_workers_and_memmap(demo, tmp_path):
    manifest, x, x_raw, binary = demo
    scenarios = [[("w2", e, b)] for e in range(0, 40, 4) for b in (0, 5)] + [[]]
    whole = run_fault_harness(manifest, x_raw[:30], scenarios, binary=binary)
    mapped = run_fault_harness(manifest, x_raw[:30], scenarios, binary=binary, workers=3, out_path=tmp_path / "r.bin")
    assert isinstance(mapped, np.memmap) and mapped.shape == (len(scenarios), 30, 5)
    assert_array_equal(np.asarray(mapped), whole)
    # A worker-style run: prepare once, run disjoint slices in any order into the same file.
    job = prepare_harness(manifest, x_raw[:30], scenarios, tmp_path / "s.bin", tmp_path / "work", binary)
    for start, stop in reversed(split_range(len(scenarios), 4)):
        run_harness_slice(job, start, stop)
    assert_array_equal(np.asarray(open_results(job.results, len(scenarios), 30, 5)), whole)
    with pytest.raises(ProjectError, match="slice"):
        run_harness_slice(job, 3, len(scenarios) + 1)


def test_split_range():
    assert split_range(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert split_range(2, 8) == [(0, 1), (1, 2)]
    assert split_range(5, 1) == [(0, 5)]
    assert split_range(0, 4) == []


def test_encoding_validates_and_dedups(demo):
    manifest, *_ = demo
    enc = encode_scenarios(manifest, [[("w2", 1, 2), ("w2", 1, 2), ("b11", 4, 5)], [], [("w11", 0, 0)]])
    assert_array_equal(enc.offsets, [0, 2, 2, 3])
    assert enc.arrays[int(enc.records[1, 0])] == "b11"
    with pytest.raises(AddressError, match="w99"):
        encode_scenarios(manifest, [[("w99", 0, 0)]])
    with pytest.raises(AddressError, match="0..159"):
        encode_scenarios(manifest, [[("w11", 160, 0)]])
    with pytest.raises(AddressError, match="0..5"):
        encode_scenarios(manifest, [[("w11", 0, 6)]])


def test_bad_inputs_and_binary_errors(demo, tmp_path):
    manifest, x, x_raw, binary = demo
    with pytest.raises(ProjectError, match=r"\(N >= 1, 16\)"):
        run_fault_harness(manifest, x_raw[:, :5], [[]], binary=binary)
    assert run_fault_harness(manifest, x_raw[:3], [], binary=binary).shape == (0, 3, 5)
    # The binary checks records itself too (a caller bypassing encode_scenarios).
    job = prepare_harness(manifest, x_raw[:2], [[("w2", 0, 0)]], tmp_path / "r.bin", tmp_path / "w", binary)
    np.asarray([[0, 5000, 0]], dtype=np.int64).tofile(job.faults)
    with pytest.raises(BuildError, match="out of range"):
        run_harness_slice(job, 0, 1)
