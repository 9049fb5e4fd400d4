"""The bit-flip core (FKeras v3 parity), the exact forward pass and the batched single-bit engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fkhls
from fkhls.emulate import emulator as emulate
from fkhls.core.errors import FaultSpecError, OffGridError
from fkhls.faults.descriptors import BitFault, FaultScenario, FaultyLayerBitRegion, exhaustive_faults, load_fault_set
from fkhls.core.fixedpoint import from_raw
from fkhls.model.spec import describe_model, load_keras_model
from tests import models

DATA = Path(fkhls.__file__).parent / "data"


# ----------------------------------------------------------------------------- FKeras v3, transcribed


def fkeras_v3_reference(values, quantizer, regions):
    """FKeras's quantize_and_bitflip_deterministic_v3, transcribed from the seed notebook (loops on purpose).

    Scale by 2**(bits - integer - keep_negative), cast to int64, per region OR ``1 << bit`` of its
    *start* LBI into the mask, then ``mask = (mask & rval_mask) - (mask & sign_mask)`` with
    sign_mask = 2**(bits - keep_negative), XOR, cast back to float32, scale back.
    """
    import tensorflow as tf

    cfg = quantizer.get_config()
    bits, integer, keep_negative = cfg["bits"], cfg["integer"], cfg["keep_negative"]
    scaling_exponent = bits - integer - keep_negative
    quantized = quantizer(tf.convert_to_tensor(values))
    words = tf.cast(quantized * (2**scaling_exponent), tf.int64).numpy().flatten()
    mask = np.zeros(words.shape, dtype=np.int64)
    for region in regions:
        weight = int(region.start_lbi / bits)
        bit = (bits - 1) - (region.start_lbi % bits)
        mask[weight] = mask[weight] | (1 << bit)
    sign_mask = 2 ** (bits - keep_negative)
    rval_mask = sign_mask - 1
    for i in range(mask.shape[0]):
        mask[i] = (mask[i] & rval_mask) - (mask[i] & sign_mask)
    flipped = tf.cast(tf.reshape(tf.bitwise.bitwise_xor(words, mask), quantized.shape), quantized.dtype)
    return (flipped * (2**-scaling_exponent)).numpy()


def _quantizer(bits, integer, keep_negative):
    from qkeras.quantizers import quantized_bits

    return quantized_bits(bits, integer, keep_negative=keep_negative, alpha=1)


@pytest.mark.parametrize("keep_negative", [0, 1])
def test_v3_parity_every_width_and_integer(keep_negative):
    """Single-bit, ber-1 regions: bit-for-bit equal to v3 for bits 2..16, integer 0..bits-1."""
    rng = np.random.default_rng(keep_negative)
    for bits in range(2, 17):
        for integer in range(bits):
            quantizer = _quantizer(bits, integer, keep_negative)
            top = 2.0**integer
            values = rng.uniform(-top if keep_negative else 0.0, top, size=2 * bits).astype(np.float32)
            # every bit position once (weight k gets bit k % bits); then two bits of one weight
            one_each = [FaultyLayerBitRegion(k * bits + k % bits, k * bits + k % bits, 1.0) for k in range(2 * bits)]
            two = [FaultyLayerBitRegion(0, 0, 1.0), FaultyLayerBitRegion(bits - 1, bits - 1, 1.0)]
            for regions in (one_each, two):
                ours = emulate.quantize_and_bitflip(values, quantizer, regions).numpy()
                ref = fkeras_v3_reference(values, quantizer, regions)
                np.testing.assert_array_equal(ours.view(np.int32), ref.view(np.int32),
                                              err_msg=f"bits={bits} integer={integer} keep_negative={keep_negative}")


def test_hand_worked_twos_complement():
    q5 = _quantizer(5, 1, 1)  # ap_fixed<5,2>: step 1/8, range [-2, 1.875]
    lbi = lambda *b: [FaultyLayerBitRegion(i, i, 1.0) for i in b]  # noqa: E731
    # the notebook: -0.375 = 11101; flipping LBI 0 (sign) and 1 -> 00101 = 0.625
    assert emulate.quantize_and_bitflip([-0.375], q5, lbi(0, 1)).numpy().tolist() == [0.625]
    # 0.5 = 00100; sign flip -> 10100 = -1.5
    assert emulate.quantize_and_bitflip([0.5], q5, lbi(0)).numpy().tolist() == [-1.5]
    # LSB of 0.0 -> 0.125; LSB of -2.0 (10000) -> 10001 = -1.875
    assert emulate.quantize_and_bitflip([0.0, -2.0], q5, lbi(4, 9)).numpy().tolist() == [0.125, -1.875]
    # unsigned ap_ufixed<4,1>: 0.5 = 0100, MSB flip -> 1100 = 1.5
    assert emulate.quantize_and_bitflip([0.5], _quantizer(4, 1, 0), lbi(0)).numpy().tolist() == [1.5]


def test_multi_bit_region_and_seeded_ber():
    q5 = _quantizer(5, 1, 1)
    # a whole word inverted: r -> ~r = -r - 1 (0.375 = 00011 -> 11100 = -0.5)
    assert emulate.quantize_and_bitflip([0.375, 0.25], q5, [FaultyLayerBitRegion(0, 4, 1.0)]).numpy().tolist() == [-0.5, 0.25]
    values = np.zeros(100, dtype=np.float32)
    region = [FaultyLayerBitRegion(0, 499, 0.1)]
    a = emulate.quantize_and_bitflip(values, q5, region, seed=5).numpy()
    assert np.array_equal(a, emulate.quantize_and_bitflip(values, q5, region, seed=5).numpy())
    assert not np.array_equal(a, emulate.quantize_and_bitflip(values, q5, region, seed=6).numpy())
    words = (a * 8).astype(np.int64) & 31
    assert sum(bin(int(w)).count("1") for w in words) == 50  # int(500 * 0.1) distinct bits
    with pytest.raises(FaultSpecError, match="0..499"):
        emulate.quantize_and_bitflip(values, q5, [FaultyLayerBitRegion(0, 500, 1.0)])


# ----------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def demo():
    model = load_keras_model(DATA / "demo_model.h5")
    spec = describe_model(model)
    x = np.load(DATA / "demo_inputs.npy")[:300]
    return model, spec, emulate.golden_weights(model, spec), x


def _extra_conv_model():
    """Conv1D same + strides, unsigned conv2d-free kernel, quantized_bits activation: cases tests.models lacks."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(9)
    x_in = tf.keras.Input(shape=(9, 2))
    h = QConv1D(3, 3, strides=2, padding="same", name="s1", kernel_quantizer=quantized_bits(5, 0, keep_negative=0, alpha=1),
                bias_quantizer=quantized_bits(5, 1, alpha=1))(x_in)
    h = QActivation(quantized_bits(6, 2, alpha=1), name="qb")(h)
    h = QActivation(quantized_relu(5, 1), name="r")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="conv1d_same")
    models._spread_weights(model, 9)
    return model


def _conv_chain_model():
    """Conv1D same (one filter) -> relu -> Conv1D strided valid reading that one channel: a conv fed by a conv."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(11)
    x_in = tf.keras.Input(shape=(10, 2))
    q = dict(kernel_quantizer=quantized_bits(6, 1, alpha=1), bias_quantizer=quantized_bits(6, 1, alpha=1))
    h = QConv1D(1, 3, padding="same", name="k1", **q)(x_in)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = QConv1D(3, 3, strides=2, padding="valid", name="k2", **q)(h)
    h = QActivation(quantized_relu(6, 2), name="r2")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="head", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(h)
    model = tf.keras.Model(x_in, out, name="conv1d_chain")
    models._spread_weights(model, 11)
    return model


@pytest.fixture(scope="module")
def small():
    built = {name: models.build(name) for name in ("dense", "unsigned", "conv2d", "conv1d")}
    built["conv1d_same"] = _extra_conv_model()
    built["conv1d_chain"] = _conv_chain_model()
    out = {}
    for name, model in built.items():
        spec = describe_model(model)
        out[name] = (model, spec, emulate.golden_weights(model, spec), models.inputs_for(model, n=60, seed=1))
    return out


def test_forward_raw_equals_qkeras_golden(demo, small):
    for name, (model, spec, weights, x) in {"demo": demo, **small}.items():
        raw, trace = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x), trace=True)
        assert list(trace) == [layer.name for layer in spec.layers]
        np.testing.assert_array_equal(from_raw(spec.output_type, raw), emulate.qkeras_forward(model, x).astype(np.float64),
                                      err_msg=name)


def test_forward_raw_refuses_off_grid_inputs(demo):
    _, spec, weights, x = demo
    with pytest.raises(OffGridError, match="not representable"):
        emulate.input_raw(spec, x + 2.0**-12)
    with pytest.raises(OffGridError, match="shape"):
        emulate.forward_raw(spec, weights, np.zeros((2, 3), dtype=np.int64))


def _sample_faults(spec, n, seed):
    """A seeded sample of single-bit faults that always includes every tensor's sign/MSB and LSB of weight 0."""
    faults = exhaustive_faults(spec)
    rng = np.random.default_rng(seed)
    picked = [faults[i] for i in rng.choice(len(faults), size=min(n, len(faults)), replace=False)]
    for t in spec.tensors():
        picked += [BitFault(t.layer, t.tensor, 0, t.width), BitFault(t.layer, t.tensor, t.width - 1, t.width)]
    return picked


@pytest.mark.parametrize("name", ["demo", "dense", "unsigned", "conv2d", "conv1d", "conv1d_same"])
def test_batched_engine_equals_full_forward(demo, small, name):
    _, spec, weights, x = demo if name == "demo" else small[name]
    x_raw = emulate.input_raw(spec, x)
    faults = _sample_faults(spec, 40, seed=len(name))
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    golden = emulate.forward_raw(spec, weights, x_raw)
    for k, fault in enumerate(faults):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
        np.testing.assert_array_equal(batched[k], expected, err_msg=f"{name}: {fault}")
    summary = emulate.summarize_single_bit_faults(spec, weights, x_raw, faults, keep_outputs=[0, len(faults) - 1])
    diff = np.abs(batched - golden[None]).reshape(len(faults), len(x), -1)
    np.testing.assert_array_equal(summary.samples_changed, diff.any(axis=2).sum(axis=1))
    np.testing.assert_array_equal(summary.outputs_changed, (diff != 0).sum(axis=(1, 2)))
    np.testing.assert_array_equal(summary.max_abs_error_lsb, diff.max(axis=(1, 2)))
    moved = batched.reshape(len(faults), len(x), -1).argmax(axis=2) != golden.reshape(len(x), -1).argmax(axis=1)
    np.testing.assert_array_equal(summary.argmax_changed, moved.sum(axis=1))
    np.testing.assert_array_equal(summary.outputs[len(faults) - 1], batched[-1])


@pytest.mark.parametrize("name, layers", [("conv2d", ["c1", "c2", "head"]), ("conv1d_chain", ["k1", "k2", "head"])])
def test_engine_whole_layer_exhaustive(small, monkeypatch, name, layers):
    """Every fault of a conv -> conv model (its first conv reads the input; conv2d's c1 pads 'same', c2 is strided;
    conv1d_chain's k2 reads one channel) against the full pass. The first conv's faults take the one-channel
    update of the next conv's accumulator, the second's the flat-position update of the dense after the flatten:
    both checked to have run."""
    _, spec, weights, x = small[name]
    x_raw = emulate.input_raw(spec, x[:20])
    faults = exhaustive_faults(spec, layers=layers)
    weighted = [layer.name for layer in spec.layers if any(t.layer == layer.name for t in spec.tensors())]
    assert weighted[0] == layers[0] and {f.layer for f in faults} == set(layers)
    moves = {"_channel_moves": [], "_flat_moves": []}
    for update, calls in moves.items():
        original = getattr(emulate, update)
        monkeypatch.setattr(emulate, update, lambda *a, calls=calls, original=original: calls.append(len(a[3]))
                            or original(*a))
    batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
    assert all(sum(calls) > 0 for calls in moves.values()), {k: sum(v) for k, v in moves.items()}
    for k, fault in enumerate(faults):
        expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [fault]), x_raw)
        np.testing.assert_array_equal(batched[k], expected, err_msg=str(fault))


def _expected_outputs(spec, weights, x_raw, faults):
    return np.stack([emulate.forward_raw(spec, emulate.apply_faults(spec, weights, [f]), x_raw) for f in faults])


@pytest.mark.parametrize("name", ["dense", "unsigned", "conv1d", "conv1d_same"])
def test_engine_exhaustive_every_path(small, monkeypatch, name):
    """Every single-bit fault of a small model (weights and biases) equals the full pass with the faulty weights.

    Run three ways: the fast path (bands, tables, rank-1 updates, state sharing, channel-ordered
    chunks); tiny chunks (faults of one channel split across chunks, rows across blocks of 7);
    and the fallbacks (no bands: outputs computed and compared; no tables).
    """
    _, spec, weights, x = small[name]
    x_raw = emulate.input_raw(spec, x)
    faults = exhaustive_faults(spec)
    expected = _expected_outputs(spec, weights, x_raw, faults)
    golden = emulate.forward_raw(spec, weights, x_raw)

    def check(label):
        batched = emulate.evaluate_single_bit_faults(spec, weights, x_raw, faults)
        bad = np.nonzero((batched != expected).reshape(len(faults), -1).any(axis=1))[0]
        assert not len(bad), f"{name} [{label}]: {len(bad)} faults differ, first {faults[bad[0]]}"
        summary = emulate.summarize_single_bit_faults(spec, weights, x_raw, faults, keep_outputs=[len(faults) // 2])
        diff = np.abs(expected - golden[None]).reshape(len(faults), len(x), -1)
        np.testing.assert_array_equal(summary.samples_changed, diff.any(axis=2).sum(axis=1), err_msg=label)
        np.testing.assert_array_equal(summary.outputs_changed, (diff != 0).sum(axis=(1, 2)), err_msg=label)
        np.testing.assert_array_equal(summary.max_abs_error_lsb, diff.max(axis=(1, 2)), err_msg=label)
        moved = expected.reshape(len(faults), len(x), -1).argmax(axis=2) != golden.reshape(len(x), -1).argmax(axis=1)
        np.testing.assert_array_equal(summary.argmax_changed, moved.sum(axis=1), err_msg=label)
        np.testing.assert_array_equal(summary.outputs[len(faults) // 2], expected[len(faults) // 2], err_msg=label)

    check("fast path")
    monkeypatch.setattr(emulate._iter_effects, "__defaults__", (len(x) * 3, 7))
    check("tiny chunks")
    monkeypatch.setattr(emulate, "_is_monotone", lambda *args: False)
    monkeypatch.setattr(emulate, "_TABLE_MAX_WIDTH", 0)
    check("no bands, no tables")
    monkeypatch.setattr(emulate, "_FAST_KINDS", ())
    check("generic path (what graphs and non-kernel tensors take)")


def test_graph_spec_forward_and_generic_engine(small):
    """A spec whose steps name their inputs (a graph: one output read twice, a dead branch) runs in
    topological order; its single-bit faults (generic path) equal the full pass with the faulty weights."""
    import dataclasses

    _, spec, weights, x = small["conv1d_same"]
    names = [s.name for s in spec.layers]
    qb = names.index("qb")
    # 'r' reads the conv output directly, skipping 'qb', which is left as a dead branch
    steps = list(spec.layers)
    steps[qb + 1] = dataclasses.replace(steps[qb + 1], inputs=(names[qb - 1],))
    graph = dataclasses.replace(spec, layers=tuple(steps))
    assert not graph.is_chain and graph.sources()[qb + 1] == (qb - 1,)
    chain = dataclasses.replace(spec, layers=tuple(s for i, s in enumerate(spec.layers) if i != qb))
    x_raw = emulate.input_raw(spec, x[:20])
    assert_array_equal(emulate.forward_raw(graph, weights, x_raw), emulate.forward_raw(chain, weights, x_raw))
    assert not np.array_equal(emulate.forward_raw(graph, weights, x_raw), emulate.forward_raw(spec, weights, x_raw))
    faults = exhaustive_faults(graph)
    batched = emulate.evaluate_single_bit_faults(graph, weights, x_raw, faults)
    assert_array_equal(batched, _expected_outputs(graph, weights, x_raw, faults))
    assert (batched != emulate.forward_raw(graph, weights, x_raw)[None]).any()


def test_bands_match_the_table(small):
    """A band holds exactly the accumulator words whose block output equals the golden word's."""
    _, spec, weights, x = small["dense"]
    g = emulate._Golden.run(spec, weights, emulate.input_raw(spec, x))
    checked = 0
    for block in g.blocks.values():
        if block.lo is None or block.table is None:
            continue
        first, table = block.table
        acc = block.acc.reshape(len(x), -1).astype(np.int64)
        for s, k in [(0, 0), (len(x) - 1, acc.shape[1] - 1), (len(x) // 2, acc.shape[1] // 2)]:
            same = np.flatnonzero(table == table[acc[s, k] - first]) + first
            assert (int(block.lo[s, k]), int(block.hi[s, k])) == (same[0], same[-1]), (block.start, s, k)
            assert len(same) == same[-1] - same[0] + 1  # an interval: the map is monotone
            checked += 1
    assert checked


def test_engine_refuses_foreign_faults(demo):
    _, spec, weights, x = demo
    with pytest.raises(FaultSpecError, match="0..6143"):
        emulate.evaluate_single_bit_faults(spec, weights, emulate.input_raw(spec, x), [BitFault("fc1", "kernel", 6144, 6)])


def _weights_bytes(model):
    return [w.tobytes() for w in model.get_weights()]


def test_faulty_model_outputs_exact_and_tf_agree_and_model_untouched(small):
    model, spec, _, x = small["dense"]
    before = _weights_bytes(model)
    fault_set = load_fault_set({"seed": 2, "faults": [
        {"layer": "d1", "regions": [[0, 0, 1.0], [8, 31, 0.5]]},
        {"layer": "out", "tensor": "bias", "bits": [0, 11]},
        {"model_bits": [5, 700]},
    ]}, spec)
    exact = emulate.faulty_model_outputs(model, fault_set, x, spec=spec)
    via_tf = emulate.faulty_model_outputs(model, fault_set, x, spec=spec, method="tf")
    assert exact.shape == (3, len(x), 3)
    np.testing.assert_array_equal(exact, via_tf.astype(np.float64))
    assert _weights_bytes(model) == before
    one = emulate.faulty_model_outputs(model, fault_set.scenarios[1], x, spec=spec)
    np.testing.assert_array_equal(one, exact[1])
    assert not np.array_equal(one, from_raw(spec.output_type, emulate.forward_raw(
        spec, emulate.golden_weights(model, spec), emulate.input_raw(spec, x))))


def test_tf_path_restores_weights_after_an_error(small, monkeypatch):
    model, spec, _, x = small["conv2d"]
    before = _weights_bytes(model)

    def boom(*args, **kwargs):
        raise RuntimeError("predict failed")

    monkeypatch.setattr(emulate, "qkeras_forward", boom)
    scenario = FaultScenario("sign", (BitFault("c1", "kernel", 0, 6), BitFault("c1", "bias", 0, 6)))
    with pytest.raises(RuntimeError, match="predict failed"):
        emulate.faulty_model_outputs(model, scenario, x, spec=spec, method="tf")
    assert _weights_bytes(model) == before
