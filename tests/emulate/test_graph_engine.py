"""The single-bit engine's generic path (fkhls.emulate.graph_engine) against the full forward, on every fault.

Every graph model and every chain model with arrays the fast path does not take (batch norm and
ApplyAlpha scales/biases, depthwise and pointwise kernels), plus chain models forced through the
generic path; each in four modes: the defaults; every accumulating step updated from its golden
accumulator plus the change and every elementwise step mapping only the changed words; every
fault's step by its own forward (the path of kinds without a per-channel shortcut); and every step
recomputed in small row batches.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.emulate import emulator as emulate
from fkhls.emulate import graph_engine
from fkhls.faults.descriptors import exhaustive_faults
from fkhls.model.layers import handler_for_kind
from fkhls.model.spec import describe_model
from tests import models

GRAPH_MODELS = ["residual", "concat", "merges", "concat_axes"]
ARRAY_MODELS = ["batchnorm", "alpha", "convbn", "depthwise", "separable", "separable1d", "pointwise", "dense_po2",
                "binary_po2", "binary_po2_conv", "po2_conv"]
FORCED_MODELS = ["shapes", "pooling", "zeropad", "upsampling", "permute", "softmax", "binary", "plain_dense"]

_BUILT: dict = {}


def _built(name: str):
    """(spec, golden weights, input words) of a test model, built once per session."""
    if name not in _BUILT:
        model = models.build(name)
        spec = describe_model(model)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x_raw = emulate.input_raw(spec, models.grid_inputs(shape, 12, 5, fractional=3, scale=1.5))
        _BUILT[name] = spec, emulate.golden_weights(model, spec), x_raw
    return _BUILT[name]


def _set_mode(monkeypatch, mode: str) -> None:
    if mode == "golden_plus_change":  # accumulating steps: golden accumulator + change; activations: changed words
        monkeypatch.setattr(graph_engine, "_ELEMENTWISE_MIN_WORDS", 0)
        monkeypatch.setattr(graph_engine, "_SPARSE_FRACTION", float("inf"))
        monkeypatch.setattr(graph_engine, "_SPARSE_FRACTION_DENSE", float("inf"))
        monkeypatch.setattr(graph_engine, "_SPARSE_MIN_MACS", 0)
    elif mode == "step_forward":  # no per-channel shortcut at entry or downstream, no float sums: each step's forward
        monkeypatch.setattr(graph_engine, "_ACCUMULATING", ())
        monkeypatch.setattr(graph_engine, "_PER_CHANNEL", ())
        monkeypatch.setattr(graph_engine, "_SPARSE_FRACTION", -1.0)
    elif mode == "recompute_small_batches":  # every downstream step recomputed, rows 5 at a time, 3 faults a chunk
        monkeypatch.setattr(graph_engine, "_SPARSE_FRACTION", -1.0)
        monkeypatch.setattr(graph_engine, "_SPARSE_FRACTION_DENSE", -1.0)
        original = emulate._generic_effects
        monkeypatch.setattr(emulate, "_generic_effects",
                            lambda g, index, faults, max_rows: original(g, index, faults, 5))
        monkeypatch.setattr(emulate._iter_effects, "__defaults__", (12 * 3 * 8, 7))


@pytest.mark.parametrize("mode", ["default", "golden_plus_change", "step_forward", "recompute_small_batches"])
@pytest.mark.parametrize("name", GRAPH_MODELS + ARRAY_MODELS + FORCED_MODELS)
def test_generic_path_equals_full_forward_on_every_fault(name, mode, monkeypatch):
    spec, weights, x_raw = _built(name)
    if name in FORCED_MODELS:
        monkeypatch.setattr(emulate, "_FAST_KINDS", ())
    _set_mode(monkeypatch, mode)
    faults = exhaustive_faults(spec)
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    golden = emulate.forward_raw(spec, weights, x_raw)
    changed = 0
    for k, fault in enumerate(faults):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
        assert_array_equal(batched[k], expected, err_msg=f"{name} [{mode}]: {fault}")
        changed += bool(np.any(expected != golden))
    assert changed, f"{name}: no fault changed an output (the comparison would prove nothing)"
    summary = emulate.summarize_single_bit_faults(spec, weights, x_raw, faults)
    diff = (batched != golden[None]).reshape(len(faults), len(x_raw), -1)
    assert_array_equal(summary.samples_changed, diff.any(axis=2).sum(axis=1))
    assert_array_equal(summary.outputs_changed, diff.sum(axis=(1, 2)))


@pytest.mark.parametrize("name", ["residual", "depthwise", "separable1d", "pointwise", "zeropad", "concat_axes"])
def test_accumulator_from_golden_plus_change_equals_the_sum(name):
    """For every accumulating step: its golden accumulator plus a scattered change of random input words (rows with
    0 to many changed words) equals the handler's own accumulator of the changed inputs."""
    spec, weights, x_raw = _built(name)
    _, traced = emulate.forward_raw(spec, weights, x_raw, trace=True)
    outs = [traced[s.name] for s in spec.layers]
    sources = spec.sources()
    in_types = [emulate._step_inputs(spec, sources[i], outs, None)[0] for i in range(len(outs))]
    g = graph_engine.GraphGolden(spec, weights, outs, in_types,
                                 lambda j, x: emulate._step(spec.layers[j], in_types[j], x, weights))
    rng = np.random.default_rng(3)
    steps = [j for j, s in enumerate(spec.layers) if graph_engine._accumulating(s) and len(sources[j]) == 1]
    assert steps
    for j in steps:
        layer = spec.layers[j]
        golden_in = g.golden_in(j)
        samples = rng.integers(0, len(x_raw), 40)
        x = golden_in[samples].copy()
        flat = x.reshape(len(samples), -1)
        lo, hi = int(golden_in.min()), int(golden_in.max()) + 1
        for r in range(len(samples)):  # row r changes r % 4 words (row 3, 7 ...: dense changes)
            where = rng.choice(flat.shape[1], size=min(flat.shape[1], (r % 4) * (1 + r // 8)), replace=False)
            flat[r, where] = rng.integers(lo, hi, len(where))
        expected = handler_for_kind(layer.kind).accumulate(layer, in_types[j], x, weights).acc
        for fraction in (float("inf"), 0.3):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(graph_engine, "_SPARSE_FRACTION", fraction)
                mp.setattr(graph_engine, "_SPARSE_FRACTION_DENSE", fraction)
                mine, acc = graph_engine._accumulate_change(g, j, x, samples)
            assert_array_equal(acc, expected[mine], err_msg=f"{name}.{layer.name} fraction {fraction}")
            if fraction == float("inf"):
                assert len(mine) == len(samples)
        recomputed = graph_engine._recompute(g, j, x).reshape(expected.shape[0], -1)
        assert_array_equal(recomputed, emulate._step(layer, in_types[j], x, weights).reshape(len(x), -1))
