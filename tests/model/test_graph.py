"""Graphs (issue 10): functional models with merges and tensors read several times, through every stage.

The stage tests of tests/model/test_layers.py run the residual, concat and merges models through
export, the exact forward, the batched single-bit engine, golden C-sim + trace and an exhaustive
both-engine campaign. Here: the graph walk and its refusals, the merge types against every pair of
words, hls4ml's graph checked at export and recorded in the manifest, every concatenation axis in
io_parallel and io_stream, the cone harness replaying a graph, and the cross-check naming the
first diverging layer in graph order.
"""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import ProjectError, UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType, cast_raw, cpp_type, raw_bounds, to_raw
from fkhls.emulate import emulator as emulate
from fkhls.model.layers.merge import merge_raw, merge_type
from fkhls.model.spec import describe_model
from tests import models


def _inputs(model, n: int, seed: int) -> np.ndarray:
    return models.grid_inputs(tuple(int(d) for d in model.inputs[0].shape[1:]), n, seed, fractional=3, scale=1.5)


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    from fkhls.project.export import ExportOptions, export_model

    model = models.build("residual")
    spec = describe_model(model)
    manifest = export_model(model, tmp_path_factory.mktemp("residual") / "prj", ExportOptions())
    return model, spec, manifest


# ----------------------------------------------------------------------------- the graph walk


def test_steps_read_the_steps_holding_their_inputs():
    spec = describe_model(models.build("residual"))
    names = [s.name for s in spec.layers]
    assert names == ["x", "c0", "r0", "c1", "r1", "c2", "add", "r2", "flat", "head"]
    add = spec.layer("add")
    assert (add.kind, add.activation, add.inputs) == ("merge", "add", ("c2", "r0")) and not spec.is_chain
    assert spec.sources()[names.index("add")] == (names.index("c2"), names.index("r0"))
    # Every other step reads the step before it; the skip tensor r0 has two readers.
    assert all(not s.inputs for s in spec.layers if s.name != "add")
    spec = describe_model(models.build("merges"))
    steps = {s.name: s for s in spec.layers}
    assert steps["db"].inputs == ("x",) and steps["ra"].inputs == ("da",) and steps["min"].inputs == ("max", "qb")
    assert spec.layers[-1].name == "head"
    assert describe_model(models.build("dense")).is_chain  # a chain keeps empty inputs


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"])
def test_merge_types_hold_every_result_exactly(op):
    """For every pair of words of small signed/unsigned types: the result type holds the exact value (the cast in
    nnet_merge.h changes nothing) and is the narrowest that does."""
    types = [FixedPrecisionType(4, 2, True), FixedPrecisionType(3, 0, False), FixedPrecisionType(5, 4, True)]
    for ta, tb in itertools.product(types, repeat=2):
        a = np.arange(raw_bounds(ta)[0], raw_bounds(ta)[1] + 1, dtype=np.int64)
        b = np.arange(raw_bounds(tb)[0], raw_bounds(tb)[1] + 1, dtype=np.int64)
        aa, bb = (v.reshape(-1, 1) for v in np.meshgrid(a, b, indexing="ij"))
        value, frac = merge_raw(op, (ta, tb), aa.reshape(-1, 1), bb.reshape(-1, 1), axis=1)
        result = merge_type(op, ta, tb)
        assert result.fractional == frac, (op, ta, tb)
        assert_array_equal(cast_raw(value, frac, result), value, err_msg=f"{op} {cpp_type(ta)} {cpp_type(tb)}")
        lo, hi = raw_bounds(result)
        narrower = FixedPrecisionType(result.width - 1, result.integer - 1, result.signed)
        n_lo, n_hi = raw_bounds(narrower)
        assert value.min() >= lo and value.max() <= hi
        assert value.min() < n_lo or value.max() > n_hi, f"{op}: {cpp_type(result)} is not the narrowest"
        if op == "average":  # (a + b) * 0.5 with the exact values, from floats
            exact = (aa * 2.0**-ta.fractional + bb * 2.0**-tb.fractional) / 2
            assert_array_equal(value.reshape(-1) * 2.0**-frac, exact.reshape(-1))


def test_graph_blockers_are_listed_in_one_error():
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(4, 0, alpha=1)
    x_in = tf.keras.Input(shape=(4,))
    shared = QDense(4, name="shared", kernel_quantizer=q, bias_quantizer=q)
    a, b = shared(x_in), shared(x_in)
    c = QDense(4, name="c", kernel_quantizer=q, bias_quantizer=q)(x_in)
    three = tf.keras.layers.Add(name="three")([a, b, c])
    one = QDense(1, name="one", kernel_quantizer=q, bias_quantizer=q)(x_in)
    out = tf.keras.layers.Multiply(name="broadcast")([three, one])
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(tf.keras.Model(x_in, out, name="bad_graph"))
    message = str(info.value)
    assert "3 problems" in message, message
    assert "'shared'" in message and "applied 2 times" in message
    assert "'three'" in message and "merges 3 tensors" in message
    assert "'broadcast'" in message and "broadcast" in message and "(4,) and (1,)" in message


def test_a_fold_read_by_other_layers_is_refused(tmp_path):
    """hls4ml folds a quantized_bits activation into the dense before it; another reader of that dense would then
    read the quantized value, not the one Keras hands it."""
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits

    from fkhls.project.export import export_model

    q = quantized_bits(4, 0, alpha=1)
    x_in = tf.keras.Input(shape=(4,), name="x")
    d = QDense(3, name="d", kernel_quantizer=q, bias_quantizer=q)(x_in)
    a = QActivation(quantized_bits(4, 1, alpha=1), name="qa")(d)
    out = QDense(2, name="head", kernel_quantizer=q, bias_quantizer=q)(tf.keras.layers.Add(name="add")([a, d]))
    with pytest.raises(UnsupportedModelError, match="folds 'qa'.*output type of 'd', which other layers read"):
        export_model(tf.keras.Model(x_in, out), tmp_path / "prj")
    assert not (tmp_path / "prj").exists()


# ----------------------------------------------------------------------------- export and the manifest


def test_export_refuses_a_graph_hls4ml_wires_differently(tmp_path):
    from fkhls.project import export

    model = models.build("merges")
    spec = describe_model(model)
    hls_model = export._convert(model, spec, export.ExportOptions(), tmp_path)
    export._match_layers(spec, hls_model)  # as built: accepted
    sub = next(layer for layer in hls_model.get_layers() if layer.name == "sub")
    sub.inputs = list(reversed(sub.inputs))  # a - b read as b - a
    with pytest.raises(UnsupportedModelError, match="graph differs from the model at 'sub'.*reads \\['db', 'ra'\\]"):
        export._match_layers(spec, hls_model)


def test_manifest_records_the_graph(residual, tmp_path):
    from fkhls.project.manifest import MANIFEST_NAME, load_manifest

    _, spec, manifest = residual
    records = {r.name: r for r in manifest.layers}
    assert records["add"].inputs == ("c2", "r0") and records["add"].hls_class == "Merge"
    assert records["c1"].inputs == ("r0",) and records["x"].inputs == ()
    assert load_manifest(manifest.project_dir).layers == manifest.layers
    copy = tmp_path / "copy"
    shutil.copytree(manifest.project_dir, copy)
    data = json.loads((copy / MANIFEST_NAME).read_text())
    index = [layer["name"] for layer in data["layers"]].index("add")
    data["layers"][index]["inputs"] = ["c2", "head"]  # a later layer: not a graph in topological order
    (copy / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"layers\[\d+\]\.inputs\[1\] is 'head'; expected the name of an earlier"):
        load_manifest(copy)


@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
def test_concatenate_every_axis(io_type, tmp_path):
    """Rank 3 along axes 1, 2, 3, rank 2 along 1, 2 and rank 1: C-sim and its trace == emulator == QKeras."""
    from fkhls.csim.build import run_csim
    from fkhls.csim.trace import run_trace
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.project.program import read_program

    model = models.build("concat_axes")
    spec = describe_model(model)
    cats = [s for s in spec.layers if s.kind == "merge"]
    assert {(len(s.input_shape), s.axis) for s in cats} == {(3, 0), (3, 1), (3, 2), (2, 0), (2, 1), (1, 0)}
    manifest = export_model(model, tmp_path / "prj", ExportOptions(io_type=io_type))
    x = _inputs(model, 30, seed=4)
    x_raw = emulate.input_raw(spec, x)
    golden, trace = emulate.forward_raw(spec, emulate.golden_weights(model, spec), x_raw, trace=True)
    assert_array_equal(golden, to_raw(spec.output_type, emulate.qkeras_forward(model, x).astype(np.float64), "QKeras"))
    assert_array_equal(run_csim(manifest, x), golden.reshape(len(x), -1))
    program = read_program(manifest)  # each call's read and written variables: two in for a merge, copies out of a Clone
    concats = [call for call in program.calls if "concatenate" in call.function]
    assert len(concats) == len(cats) and all(len(c.inputs) == 2 and len(c.outputs) == 1 for c in concats)
    clones = [call for call in program.calls if "clone" in call.function]
    assert (io_type == "io_stream") == bool(clones)
    assert all(len(c.inputs) == 1 and c.outputs == c.args[1:] and len(c.outputs) >= 2 for c in clones)
    traces = run_trace(manifest, x_raw.reshape(len(x), -1))
    for record in manifest.layers:
        if record.kind == "merge":
            hw = traces[record.output_var]
            assert_array_equal(hw.words, trace[record.name].reshape(len(x), -1) & ((1 << hw.width) - 1),
                               err_msg=record.name)


# ----------------------------------------------------------------------------- cone harness and cross-check


def test_cone_harness_replays_a_graph(residual):
    """The cone recomputes the calls downstream of a fault along the graph: its words == the reference harness's
    == the emulator's, for single bits of every array and multi-bit scenarios across branches."""
    from fkhls.csim import cone
    from fkhls.csim.build import input_words
    from fkhls.csim.harness import run_fault_harness
    from fkhls.faults.addressing import map_faults
    from fkhls.faults.descriptors import BitFault

    model, spec, manifest = residual
    supported, reason = cone.cone_support(manifest)
    assert supported, reason
    rng = np.random.default_rng(8)
    tensors = spec.tensors()
    singles = [[BitFault(t.layer, t.tensor, int(lbi), t.width)] for t in tensors
               for lbi in rng.choice(t.n_bits, size=min(12, t.n_bits), replace=False)]
    pairs = [[BitFault(a.layer, a.tensor, 0, a.width), BitFault(b.layer, b.tensor, b.n_bits - 1, b.width)]
             for a, b in itertools.combinations(tensors, 2)]
    scenarios = singles + pairs
    x = _inputs(model, 12, seed=6)
    x_raw = input_words(manifest, x)
    encoded = [[(b.array, b.element, b.array_bit) for b in map_faults(manifest, s)] for s in scenarios]
    via_cone = cone.run_cone_harness(manifest, x_raw, encoded)
    reference = run_fault_harness(manifest, x_raw, encoded)
    assert_array_equal(via_cone, reference)
    weights = emulate.golden_weights(model, spec)
    x_emu = emulate.input_raw(spec, x)
    for k, scenario in enumerate(scenarios):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, scenario), x_emu)
        assert_array_equal(via_cone[k], expected.reshape(len(x), -1), err_msg=str(scenario))
    assert np.any(via_cone != via_cone[:1])  # the faults change outputs


def test_crosscheck_names_the_first_diverging_layer_in_graph_order(tmp_path):
    """A merge whose output type was narrowed by hand: the diagnosis walks the graph in order and stops there."""
    from fkhls.crosscheck.compare import crosscheck
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.faults.descriptors import load_fault_set
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.project.manifest import load_manifest

    model = models.build("merges")
    manifest = export_model(model, tmp_path / "prj", ExportOptions())
    defines = manifest.project_dir / "firmware" / "defines.h"
    text = defines.read_text()
    assert "typedef ap_fixed<6,3> sub_result_t;" in text
    defines.write_text(text.replace("typedef ap_fixed<6,3> sub_result_t;", "typedef ap_fixed<4,1> sub_result_t;"))
    manifest = load_manifest(manifest.project_dir)
    faults = {"seed": 1, "faults": [{"name": "db bias", "layer": "db", "tensor": "bias", "bits": [2]}]}
    report = crosscheck(manifest, load_fault_set(faults, spec_from_manifest(manifest)), _inputs(model, 40, seed=2))
    assert not report.golden.exact and report.mismatching
    for result in report.mismatching:
        assert result.divergence.layer == "sub", result.divergence
        assert result.divergence.cause == "output_wrap", result.divergence


def test_inject_into_a_graph_equals_both_cores(residual, tmp_path):
    """Faults in both branches of the residual block, injected into a project copy and C-simulated, equal the
    FKeras-style TF core and the exact core with the same bits flipped."""
    from fkhls.core.fixedpoint import type_from_dict
    from fkhls.csim.build import run_csim
    from fkhls.csim.inject import inject
    from fkhls.emulate.emulator import faulty_model_outputs
    from fkhls.faults.descriptors import FaultScenario, load_fault_set
    from fkhls.project.manifest import load_manifest

    model, spec, manifest = residual
    faults = {"seed": 5, "faults": [{"layer": "c0", "tensor": "kernel", "bits": [0, 7]},
                                    {"layer": "c2", "tensor": "bias", "bits": [1]},
                                    {"layer": "c1", "tensor": "kernel", "regions": [[0, 179, 0.05]]}]}
    result = inject(manifest.project_dir, faults, tmp_path / "faulty")
    fault_set = load_fault_set(faults, spec)
    together = FaultScenario("all", tuple(dict.fromkeys(f for s in fault_set.scenarios for f in s.faults)))
    x = _inputs(model, 60, seed=9)
    hw = run_csim(load_manifest(result.project_dir), x)
    assert (hw != run_csim(manifest, x)).any()
    out_type = type_from_dict(manifest.output_type)
    for method in ("tf", "exact"):
        emulated = faulty_model_outputs(model, together, x, spec=spec, method=method)
        assert_array_equal(hw, to_raw(out_type, emulated).reshape(len(x), -1), err_msg=method)


def test_ber_campaign_on_a_graph_engines_agree(residual, tmp_path):
    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign

    model, spec, manifest = residual
    np.save(tmp_path / "x.npy", _inputs(model, 16, seed=3))
    selection = Selection(mode="ber", ber=0.01, trials=12, seed=4)
    result = run_campaign(CampaignConfig(manifest.project_dir, tmp_path / "x.npy", "both", selection, None, 4),
                          tmp_path / "campaign", workers=1, quiet=True)
    summary = json.loads((tmp_path / "campaign" / "summary.json").read_text())
    assert len(result.table) == 12 and summary["seeds"] == {"ber_trials": 4}
    assert summary["scenarios_mismatching"] == 0 and summary["outputs_compared"] == summary["bit_exact"] == 12 * 16 * 2
    assert int(result.table.columns["mismatched_words"].sum()) == 0
    assert result.table.columns["tf_outputs_changed"].max() > 0


@pytest.mark.parametrize("name", ["residual", "merges"])
def test_generic_engine_equals_full_forward_in_small_row_batches(name, monkeypatch):
    """The generic path (every fault of a graph) runs the rows of many faults together, a few at a time here, and a
    dense/conv fault from its golden accumulator: each fault's output words == the full forward's."""
    model = models.build(name)
    spec = describe_model(model)
    weights = emulate.golden_weights(model, spec)
    x_raw = emulate.input_raw(spec, _inputs(model, 50, seed=14))
    original = emulate._generic_effects
    monkeypatch.setattr(emulate, "_generic_effects", lambda g, index, faults, max_rows: original(g, index, faults, 37))
    from fkhls.faults.descriptors import exhaustive_faults

    faults = exhaustive_faults(spec)
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    for k, fault in enumerate(faults):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
        assert_array_equal(batched[k], expected, err_msg=str(fault))
    assert np.any(batched != emulate.forward_raw(spec, weights, x_raw))


def test_a_merge_wider_than_float32_is_marked_approximate():
    """QKeras sums and multiplies in float32: a result needing more than 24 significant bits may be rounded there
    while the hardware is exact, so the step says so; a narrow one, and max/min/concatenate (copies), are exact."""
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_bits

    q = quantized_bits(8, 3, alpha=1)
    x_in = tf.keras.Input(shape=(4,))
    a = QDense(3, name="a", kernel_quantizer=q, bias_quantizer=q)(x_in)
    b = QDense(3, name="b", kernel_quantizer=q, bias_quantizer=q)(x_in)
    wide = tf.keras.layers.Multiply(name="wide")([a, b])
    top = tf.keras.layers.Maximum(name="top")([a, b])
    out = tf.keras.layers.Concatenate(name="cat")([wide, top])
    spec = describe_model(tf.keras.Model(x_in, out))
    steps = {s.name: s for s in spec.layers}
    assert steps["a"].result_type.width > 20  # the dense accumulators: a product of two needs > 40 bits
    assert "float32" in steps["wide"].approximate and cpp_type(steps["wide"].result_type) in steps["wide"].approximate
    assert steps["top"].approximate == "" and steps["cat"].approximate == ""
    narrow = describe_model(models.build("merges"))
    assert all(not s.approximate for s in narrow.layers)


def test_faults_in_an_io_stream_graph_equal_the_emulator(tmp_path):
    """io_stream (Clone streams for the skip tensor, padding layers): the io_stream cone harness replays it, and its
    faulty words and the reference harness's equal the emulator's for faults in every array."""
    from fkhls.csim import cone
    from fkhls.csim.build import input_words
    from fkhls.csim.harness import run_fault_harness
    from fkhls.faults.addressing import map_faults
    from fkhls.faults.descriptors import BitFault
    from fkhls.project.export import ExportOptions, export_model

    model = models.build("residual")
    spec = describe_model(model)
    manifest = export_model(model, tmp_path / "prj", ExportOptions(io_type="io_stream"))
    supported, reason = cone.cone_support(manifest)
    assert supported and reason.startswith("io_stream cone"), reason
    rng = np.random.default_rng(1)
    scenarios = [[BitFault(t.layer, t.tensor, int(lbi), t.width)] for t in spec.tensors()
                 for lbi in rng.choice(t.n_bits, size=min(8, t.n_bits), replace=False)]
    x = _inputs(model, 20, seed=3)
    encoded = [[(b.array, b.element, b.array_bit) for b in map_faults(manifest, s)] for s in scenarios]
    hw = run_fault_harness(manifest, input_words(manifest, x), encoded)
    assert_array_equal(cone.run_cone_harness(manifest, input_words(manifest, x), encoded), hw)
    weights = emulate.golden_weights(model, spec)
    x_raw = emulate.input_raw(spec, x)
    for k, scenario in enumerate(scenarios):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, scenario), x_raw)
        assert_array_equal(hw[k], expected.reshape(len(x), -1), err_msg=str(scenario))
    assert np.any(hw != emulate.forward_raw(spec, weights, x_raw).reshape(len(x), -1))
