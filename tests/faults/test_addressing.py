"""Address map tests: proved against the C-sim (flip the mapped bit in hardware, compare with the TF core).

The C-sim proof renders hls_templates/addressing_probe.cpp.j2 once per project: it loads the
weights, flips ``w[element][bit]`` in memory for each probe, runs the inputs and flips back, so
one ~5 s build tests every bit of a configuration. The expectation comes from the TF core
(``emulate.faulty_model_outputs(method="tf")``: FKeras's quantize-XOR-predict on the same LBI),
which never looks at the address map; the inputs sit on a coarse grid so QKeras's float32 is exact.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from fkhls.faults.addressing import (  # noqa: E402
    AddressMap,
    address_map,
    bit_counterparts,
    element_of,
    flat_index_of,
    from_array_bit,
    from_memory_bit,
    map_faults,
    map_lbi,
)
from fkhls.core.errors import AddressError  # noqa: E402
from fkhls.core.fixedpoint import parse_type, to_raw, type_from_dict, wrap_raw  # noqa: E402
from fkhls.project.manifest import ArrayRecord  # noqa: E402
from tests.entry import assert_error, run_fkhls  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "fkhls" / "data" / "demo_model.h5"

# name -> (model, backend, io_type, strategy, reuse factor). Each is built and probed once.
CONFIGS = {
    "conv2d-vivado-parallel-latency": ("conv2d", "Vivado", "io_parallel", "Latency", 1),
    "conv2d-vivado-parallel-resource1": ("conv2d", "Vivado", "io_parallel", "Resource", 1),
    "conv2d-vivado-parallel-resource3": ("conv2d", "Vivado", "io_parallel", "Resource", 3),
    "conv2d-vivado-stream-latency": ("conv2d", "Vivado", "io_stream", "Latency", 1),
    "conv2d-vitis-stream-resource3": ("conv2d", "Vitis", "io_stream", "Resource", 3),
    "conv2d-vitis-parallel-resource3": ("conv2d", "Vitis", "io_parallel", "Resource", 3),
    "conv1d-vivado-stream-resource2": ("conv1d", "Vivado", "io_stream", "Resource", 2),
    # depthwise (18 weights, n_filt 2) + pointwise (2 x 3): hls4ml's three depthwise Resource kernels by R vs n_filt
    "separable-vivado-stream-resource2": ("separable", "Vivado", "io_stream", "Resource", 2),
    "separable-vivado-stream-resource6": ("separable", "Vivado", "io_stream", "Resource", 6),
    # R=9 > n_filt, 9 % 2 != 0 (a separable cannot: its pointwise then needs DenseResource_rf_gt_nin, which
    # hls4ml 1.3.0 names but does not define, so the project does not compile)
    "depthwise-vitis-stream-resource9": ("depthwise", "Vitis", "io_stream", "Resource", 9),
}


# ----------------------------------------------------------------------------- fixtures


def _spread(model, seed: int) -> None:
    """Weights across the whole quantizer range so sign bits and LSBs all matter."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.uniform(-1.0, 1.0, size=w.shape).astype(np.float32) for w in layer.get_weights()])


def _build_models() -> dict:
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QConv2D, QDense, QDepthwiseConv2D, QSeparableConv2D
    from qkeras.quantizers import quantized_bits, quantized_relu

    def q():
        return quantized_bits(6, 0, alpha=1)

    inp = tf.keras.Input(shape=(5, 5, 2), name="x")
    h = QConv2D(3, (3, 3), name="conv", kernel_quantizer=q(), bias_quantizer=q())(inp)
    h = QActivation(quantized_relu(6), name="relu")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(4, name="fc", kernel_quantizer=q(), bias_quantizer=q())(h)
    conv2d = tf.keras.Model(inp, out, name="addr_conv2d")

    inp = tf.keras.Input(shape=(8, 2), name="x")
    h = QConv1D(3, 3, name="conv", kernel_quantizer=q(), bias_quantizer=q())(inp)
    h = QActivation(quantized_relu(6), name="relu")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="fc", kernel_quantizer=q(), bias_quantizer=q())(h)
    conv1d = tf.keras.Model(inp, out, name="addr_conv1d")
    inp = tf.keras.Input(shape=(5, 5, 2), name="x")
    h = QSeparableConv2D(3, (3, 3), name="sep", depthwise_quantizer=q(), pointwise_quantizer=q(),
                         bias_quantizer=q())(inp)
    h = QActivation(quantized_relu(6), name="relu")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="fc", kernel_quantizer=q(), bias_quantizer=q())(h)
    separable = tf.keras.Model(inp, out, name="addr_separable")

    inp = tf.keras.Input(shape=(5, 5, 2), name="x")
    h = QDepthwiseConv2D((3, 3), name="dw", depthwise_quantizer=q(), bias_quantizer=q())(inp)
    h = QActivation(quantized_relu(6), name="relu")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    out = QDense(2, name="fc", kernel_quantizer=q(), bias_quantizer=q())(h)
    depthwise = tf.keras.Model(inp, out, name="addr_depthwise")
    _spread(conv2d, 11)
    _spread(conv1d, 12)
    _spread(separable, 13)
    _spread(depthwise, 14)
    return {"conv2d": conv2d, "conv1d": conv1d, "separable": separable, "depthwise": depthwise}


@pytest.fixture(scope="session")
def models():
    return _build_models()


@pytest.fixture(scope="session")
def projects(models, tmp_path_factory):
    """Lazily exported golden projects, one per configuration (never modified by the tests)."""
    from fkhls.project.export import ExportOptions, export_model

    cache: dict = {}
    root = tmp_path_factory.mktemp("addressing")

    def get(name: str):
        if name not in cache:
            kind, backend, io_type, strategy, rf = CONFIGS[name]
            options = ExportOptions(backend=backend, io_type=io_type, strategy=strategy, reuse_factor=rf)
            cache[name] = export_model(models[kind], root / name, options)
        return cache[name]

    return get


def _inputs(model, n: int = 6, seed: int = 3) -> np.ndarray:
    """Inputs on a 1/8 grid in [-2, 2): float32 QKeras sums of these models stay exact."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.input_shape[1:])
    return (rng.integers(-16, 16, size=(n, *shape)) / 8.0).astype(np.float32)


def _run_probes(manifest, x: np.ndarray, probes: list[list[tuple[str, int, int]]]) -> np.ndarray:
    """C-sim outputs (1 + len(probes), N, n_out) as raw words: golden first, then each probe's bits flipped."""
    from fkhls.csim.build import compile_program, input_words, run_binary
    from fkhls.core.templates import render

    arrays = [{"name": a.array, "size": a.size, "width": int(a.type["width"])} for a in manifest.arrays()]
    ids = {a["name"]: i for i, a in enumerate(arrays)}
    n_out = int(np.prod(manifest.output_shape))
    text = render("addressing_probe.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=n_out, arrays=arrays)
    binary = compile_program(manifest.project_dir, text, "addressing_probe")
    words: list[int] = []
    for probe in probes:
        words.append(len(probe))
        for array, element, bit in probe:
            words += [ids[array], element, bit]
    x_raw = input_words(manifest, x)
    probe_file = Path(manifest.project_dir).parent / f"{Path(manifest.project_dir).name}-probes.bin"
    np.asarray(words, dtype=np.int64).tofile(probe_file)
    out = run_binary(binary, x_raw, extra_args=(str(probe_file),))
    out = out.ravel().reshape(1 + len(probes), x_raw.shape[0], n_out)
    return wrap_raw(type_from_dict(manifest.output_type), out)


def _tf_core(model, scenarios: list[list[tuple[str, str, int]]], x: np.ndarray, output_type) -> np.ndarray:
    """The TF core's outputs (raw words) for each scenario of (layer, tensor, lbi) flips."""
    from fkhls.emulate.emulator import faulty_model_outputs
    from fkhls.faults.descriptors import BitFault, FaultScenario, FaultSet
    from fkhls.model.spec import describe_model

    spec = describe_model(model)
    fault_set = FaultSet(0, tuple(
        FaultScenario(f"s{i}", tuple(BitFault.at(spec, layer, tensor, lbi) for layer, tensor, lbi in scenario))
        for i, scenario in enumerate(scenarios)))
    values = faulty_model_outputs(model, fault_set, x, spec=spec, method="tf")
    return to_raw(output_type, values.reshape(len(scenarios), x.shape[0], -1).astype(np.float64), "TF outputs")


# ----------------------------------------------------------------------------- C-sim proof


def _chosen_lbis(amap: AddressMap, layer: str, tensor: str, rng) -> list[int]:
    """Sign bit and LSB of the first, the last and a random weight (LBIs computed without the map)."""
    from fkhls.faults.descriptors import wb_index_to_lb_index

    fk, _ = amap.types(layer, tensor)
    size = amap.layout(layer, tensor).size
    flats = sorted({0, size - 1, int(rng.integers(0, size))})
    return [wb_index_to_lb_index(f, b, fk.width) for f in flats for b in (fk.width - 1, 0)]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_mapped_flip_in_csim_reproduces_tf_core(name, models, projects):
    """Every mapped bit, flipped in the C-sim's weight array, gives exactly the TF core's output."""
    manifest = projects(name)
    model = models[CONFIGS[name][0]]
    amap = address_map(manifest)
    rng = np.random.default_rng(len(name))
    scenarios: list[list[tuple[str, str, int]]] = []
    for layer, tensor in amap.tensors():
        scenarios += [[(layer, tensor, lbi)] for lbi in _chosen_lbis(amap, layer, tensor, rng)]
    # A memory word/bit of a Resource build, traced back to its weight bit, must flip that weight bit.
    traced = []
    for layer, tensor in amap.tensors():
        layout = amap.layout(layer, tensor)
        if tensor == "kernel" and layout.kind is not None:
            for _ in range(2):
                hbit = from_memory_bit(manifest, layer, int(rng.integers(0, layout.depth)),
                                       int(rng.integers(0, min(layout.word_width, layout.size * 6))))
                traced.append(hbit)
                scenarios.append([(hbit.layer, hbit.tensor, hbit.lbi)])
    # One multi-bit scenario across tensors.
    scenarios.append([s[0] for s in scenarios[::5]])
    probes = [[(h.array, h.element, h.array_bit) for h in map_faults(manifest, _faults(s))] for s in scenarios]
    # Negative control: under Resource the Keras flat index is NOT the array element.
    naive = [[(h.array, h.flat_index, h.array_bit)] for h in map_faults(manifest, _faults([s[0] for s in scenarios]))
             if h.flat_index != h.element]
    x = _inputs(model)
    out_type = type_from_dict(manifest.output_type)
    expected = _tf_core(model, [[]] + scenarios, x, out_type)
    got = _run_probes(manifest, x, probes + naive)
    np.testing.assert_array_equal(got[0], expected[0], err_msg=f"{name}: golden C-sim != QKeras")
    for i, scenario in enumerate(scenarios):
        np.testing.assert_array_equal(got[1 + i], expected[1 + i], err_msg=f"{name}: flip {scenario} -> {probes[i]}")
    changed = sum(not np.array_equal(expected[1 + i], expected[0]) for i in range(len(scenarios)))
    assert changed >= len(scenarios) // 2, f"{name}: only {changed} of {len(scenarios)} flips change the output"
    if manifest.strategy == "Resource":
        assert naive, "Resource build: expected transposed elements"
        wrong = [i for i, probe in enumerate(naive)
                 if not np.array_equal(got[1 + len(probes) + i], expected[1 + _index_of(scenarios, probe, manifest)])]
        assert wrong, f"{name}: flipping element = flat_index also matched: the test would not catch a wrong map"
        assert traced and all(h.memory in ("BRAM", "ROM", "registers") for h in traced)


def _faults(scenario):
    class F:
        def __init__(self, layer, tensor, lbi):
            self.layer, self.tensor, self.lbi = layer, tensor, lbi
    return [F(*item) for item in scenario]


def _index_of(scenarios, naive_probe, manifest) -> int:
    """Scenario whose (single) bit has the naive probe's array and array_bit at that flat index."""
    array, flat, array_bit = naive_probe[0]
    for i, scenario in enumerate(scenarios):
        h = map_lbi(manifest, *scenario[0])
        if h.array == array and h.flat_index == flat and h.array_bit == array_bit:
            return i
    raise AssertionError("naive probe without a scenario")


# ----------------------------------------------------------------------------- identities


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_then_inverse_is_identity_on_every_bit(name, projects):
    manifest = projects(name)
    amap = AddressMap(manifest)
    for layer, tensor in amap.tensors():
        fk, _ = amap.types(layer, tensor)
        layout = amap.layout(layer, tensor)
        lbis = np.arange(layout.size * fk.width)
        mapped = amap.map_lbis(layer, tensor, lbis)
        elements = sorted(h.element for h in mapped[::fk.width])
        assert elements == list(range(layout.size)), f"{layer}.{tensor}: elements are not a permutation"
        for h in mapped:
            assert h.keras_index == tuple(int(v) for v in np.unravel_index(h.flat_index, _record(amap, h).keras_shape))
            assert amap.from_array_bit(h.array, h.element, h.array_bit) == h
            if layout.kind is None:
                assert h.memory is None and h.memory_word is None and "Latency" in h.note
            else:
                assert amap.from_memory_bit(layer, h.memory_word, h.memory_bit, tensor) == h
        if layout.kind is not None:  # every memory bit that holds an element maps to a distinct LBI
            cells = {(h.memory_word, h.memory_bit) for h in mapped}
            assert len(cells) == len(mapped)


def _record(amap, hbit) -> ArrayRecord:
    return next(r for r in amap.manifest.arrays() if r.array == hbit.array)


def test_element_of_and_flat_index_of_are_inverse(projects):
    manifest = projects("conv2d-vivado-parallel-resource3")
    for record in manifest.arrays():
        expected = np.arange(record.size).reshape(record.keras_shape).transpose(record.axes).ravel()
        for element in range(record.size):
            flat = flat_index_of(record, element)
            assert flat == expected[element]
            assert element_of(record, flat) == element


def test_resource_layouts_follow_the_directives(projects):
    """Word/lane formula of the reshaped memory and the memory kind, per configuration."""
    r3 = address_map(projects("conv2d-vivado-parallel-resource3"))
    fc = r3.layout("fc", "kernel")  # Dense 27 x 4, R=3: block factor 36, 3 words of 36 x 6 bits, BRAM
    assert (fc.kind, fc.depth, fc.lanes, fc.word_width) == ("BRAM", 3, 36, 216)
    conv = r3.layout("conv", "kernel")  # io_parallel conv_2d_resource_cl: reshape, no BRAM directive
    assert (conv.kind, conv.depth, conv.lanes) == ("ROM", 3, 18)
    hbit = map_lbi(r3, "fc", "kernel", 6 * 1 + 0)  # keras (0, 1) -> element 1*27 + 0 = 27
    assert (hbit.keras_index, hbit.element, hbit.memory_word, hbit.memory_bit) == ((0, 1), 27, 0, 9 * 6 + 5)
    assert r3.layout("fc", "bias").kind == "registers"
    r1 = address_map(projects("conv2d-vivado-parallel-resource1"))
    assert (r1.layout("fc", "kernel").kind, r1.layout("fc", "kernel").depth) == ("registers", 1)
    stream = address_map(projects("conv2d-vitis-stream-resource3"))
    assert stream.layout("conv", "kernel").kind == "BRAM"  # stream conv -> dense_resource kernel
    vitis = address_map(projects("conv2d-vitis-parallel-resource3")).layout("conv", "kernel")
    assert "weights_2d" in vitis.directive and vitis.depth == 3


@pytest.mark.parametrize("name, rf, function, depth", [
    ("separable-vivado-stream-resource2", 2, "depthwise_product_resource_rf_leq_nout", 2),
    ("separable-vivado-stream-resource6", 6, "depthwise_product_resource_rf_gt_nout_rem0", 6),
    ("depthwise-vitis-stream-resource9", 9, "depthwise_product_resource_gt_nout", 9),
])
def test_depthwise_and_pointwise_resource_layouts(name, rf, function, depth, projects):
    """hls4ml 1.3.0 io_stream: the depthwise mult kernel is DepthwiseDenseResource_* chosen by R against n_filt
    (convolution_templates.py), ARRAY_RESHAPE block factor ceil(18/R), read weights[ir + im*R] in cycle ir; the
    pointwise kernel is dense_resource over its n_chan x n_filt words (the C-sim proof is
    test_mapped_flip_in_csim_reproduces_tf_core on the same projects)."""
    manifest = projects(name)
    layer, step = ("sep", "sep_depthwise") if name.startswith("separable") else ("dw", "dw")
    assert manifest.layer(step).reuse_factor == rf  # hls4ml kept the reuse factor asked for
    amap = address_map(manifest)
    dw = amap.layout(layer, "depthwise_kernel")
    assert (dw.source, dw.depth, dw.lanes, dw.kind) == (f"nnet_depthwise_product.h:{function}", depth, 18 // depth,
                                                         "ROM")
    assert f"block factor={18 // depth}" in dw.directive
    hbit = map_lbi(manifest, layer, "depthwise_kernel", 6 * 17)  # MSB of the last weight: element 17
    assert (hbit.element, hbit.memory_word, hbit.memory_bit) == (17, 17 % depth, (17 // depth) * 6 + 5)
    if layer == "dw":
        return
    pw = amap.layout("sep", "pointwise_kernel")
    assert pw.source.startswith("nnet_dense_resource.h:dense_resource_") and pw.depth * pw.lanes == 6
    assert amap.layout("sep", "bias").kind == "registers"


def test_depthwise_resource_in_io_parallel_says_hls4ml_has_none(projects):
    """The address map's reason for a depthwise step under Resource in io_parallel (export refuses such a project;
    a manifest edited to claim it still gets the exact reason, not an invented address)."""
    manifest = projects("separable-vivado-stream-resource2")
    amap = AddressMap(replace(manifest, io_type="io_parallel"))
    layout = amap.layout("sep", "depthwise_kernel")
    assert layout.kind is None and layout.source == "nnet_sepconv2d.h:depthwise_conv_2d_cl"
    assert "no Resource kernel for DepthwiseConv2D in io_parallel" in layout.note
    assert map_lbi(amap, "sep", "depthwise_kernel", 0).memory_word is None


def test_reuse_factor_not_dividing_the_size_follows_block_reshape(projects, tmp_path):
    """L=108, R=5 (hls4ml never emits it): block factor 22 lanes of ceil(108/22)=5 elements."""
    manifest = projects("conv2d-vivado-parallel-resource3")
    layers = tuple(replace(layer, reuse_factor=5) if layer.name == "fc" else layer for layer in manifest.layers)
    amap = AddressMap(replace(manifest, layers=layers))
    layout = amap.layout("fc", "kernel")
    assert (layout.depth, layout.lanes) == (5, 22) and "does not divide" in layout.note
    hbit = amap.from_array_bit("w6", 107, 0)
    assert (hbit.memory_word, hbit.memory_bit) == (107 % 5, (107 // 5) * 6)
    with pytest.raises(AddressError, match="padding"):
        amap.from_memory_bit("fc", 3, 21 * 6)  # lane 21, word 3 -> element 108 >= 108


def test_words_that_differ_pair_bits_by_weight(projects):
    """FKeras ap_ufixed<6,0> vs hardware ap_fixed<6,1>: same power of two, unmatched bits marked."""
    manifest = projects("conv2d-vivado-parallel-resource3")
    fk = parse_type("ap_ufixed<6,0>")
    assert bit_counterparts(fk, parse_type("ap_fixed<6,1>")).tolist() == [-1, 0, 1, 2, 3, 4]
    assert bit_counterparts(parse_type("ap_fixed<6,1>"), fk).tolist() == [1, 2, 3, 4, 5, -1]
    amap = AddressMap(manifest, fkeras_types={("fc", "kernel"): fk})
    lsb = amap.map_lbi("fc", "kernel", 5)  # FKeras LSB (2^-6): no hardware bit
    assert lsb.array_bit is None and lsb.memory_bit is None and "no counterpart" in lsb.note
    msb = amap.map_lbi("fc", "kernel", 0)  # FKeras bit 5 (2^-1) -> hardware bit 4, not the sign bit
    assert msb.array_bit == 4
    sign = amap.from_array_bit("w6", 0, 5)
    assert sign.lbi is None and "no counterpart" in sign.note
    assert amap.from_array_bit("w6", 0, 4).lbi == 0


# ----------------------------------------------------------------------------- errors


def test_bad_coordinates_give_clear_errors(projects):
    manifest = projects("conv2d-vivado-parallel-resource3")
    cases = [
        (lambda: from_array_bit(manifest, "w9", 0, 0), r"unknown array 'w9'.*w2"),
        (lambda: from_array_bit(manifest, "w2", 54, 0), r"element of w2 .* 54 is outside the valid range 0\.\.53"),
        (lambda: from_array_bit(manifest, "w2", 0, 6), r"bit of w2 .* 6 is outside the valid range 0\.\.5"),
        (lambda: from_array_bit(manifest, "w2", -1, 0), r"-1 is outside the valid range 0\.\.53"),
        (lambda: map_lbi(manifest, "fc", "kernel", 648), r"648 is outside the valid range 0\.\.647"),
        (lambda: map_lbi(manifest, "nope", "kernel", 0), r"no weight tensor 'nope'"),
        (lambda: from_memory_bit(manifest, "fc", 3, 0), r"memory word .* 3 is outside the valid range 0\.\.2"),
        (lambda: from_memory_bit(manifest, "fc", 0, 216), r"memory bit .* 216 is outside the valid range 0\.\.215"),
        (lambda: from_memory_bit(manifest, "zz", 0, 0), r"no kernel memory of layer 'zz'"),
    ]
    for call, pattern in cases:
        with pytest.raises(AddressError, match=pattern):
            call()
    latency = projects("conv2d-vivado-parallel-latency")
    with pytest.raises(AddressError, match="no addressable weight memory"):
        from_memory_bit(latency, "fc", 0, 0)


# ----------------------------------------------------------------------------- CLI and speed


def _cli(*args):
    from fkhls.cli.addressing import faultmap, locate

    command = {"faultmap": faultmap, "locate": locate}[args[0]]
    return CliRunner().invoke(command, [str(a) for a in args[1:]])


def test_faultmap_csv_and_json(projects, tmp_path):
    import csv

    manifest = projects("conv2d-vivado-parallel-resource3")
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"seed": 7, "faults": [
        {"layer": "conv", "bits": [0, 5]},
        {"layer": "fc", "regions": [[0, 59, 0.1]]},
        {"layer": "fc", "tensor": "bias", "bits": [23]}]}))
    out = tmp_path / "map.csv"
    result = _cli("faultmap", manifest.project_dir, "--faults", faults, "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    required = "layer tensor lbi keras_index flat_index bit array element array_bit memory memory_word memory_bit"
    assert set(required.split()) <= set(rows[0])
    assert len(rows) == 2 + 6 + 1  # ber 0.1 of 60 bits -> int(6) bits, drawn with the seed
    for row in rows:
        hbit = map_lbi(manifest, row["layer"], row["tensor"], int(row["lbi"]))
        assert (row["array"], int(row["element"]), int(row["array_bit"])) == (hbit.array, hbit.element, hbit.array_bit)
        assert int(row["memory_word"]) == hbit.memory_word and int(row["memory_bit"]) == hbit.memory_bit
    first = out.read_text()
    assert_error(run_fkhls("faultmap", manifest.project_dir, "--faults", faults, "-o", out), "map.csv", "--force")
    assert out.read_text() == first
    out.write_text("a user's file")
    forced = run_fkhls("faultmap", manifest.project_dir, "--faults", faults, "-o", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text() == first  # --force replaced the file with the same map
    out_json = tmp_path / "map.json"
    assert _cli("faultmap", manifest.project_dir, "--faults", faults, "-o", out_json).exit_code == 0
    data = json.loads(out_json.read_text())
    assert [r["lbi"] for r in data["rows"]] == [int(r["lbi"]) for r in rows]  # same seed, same draw
    assert data["memories"]["w6"]["kind"] == "BRAM"
    latency = projects("conv2d-vivado-parallel-latency")
    out_lat = tmp_path / "lat.csv"
    assert _cli("faultmap", latency.project_dir, "--faults", faults, "-o", out_lat).exit_code == 0
    lat_rows = list(csv.DictReader(out_lat.open()))
    assert all(r["memory"] == "" and r["memory_word"] == "" and "Latency" in r["note"] for r in lat_rows)


def test_locate_prints_the_weight_bit(projects):
    manifest = projects("conv2d-vivado-parallel-resource3")
    result = _cli("locate", manifest.project_dir, "--layer", "fc", "--memory-word", 2, "--memory-bit", 41)
    assert result.exit_code == 0, result.output
    hbit = from_memory_bit(manifest, "fc", 2, 41)
    assert f"lbi         {hbit.lbi}" in result.output and str(hbit.keras_index) in result.output
    before, after = address_map(manifest).values(hbit)
    assert f"{before!r} -> {after!r}" in result.output
    result = _cli("locate", manifest.project_dir, "--array", "w2", "--index", 0, "--bit", 5)
    assert result.exit_code == 0 and "lbi         " in result.output
    assert_error(run_fkhls("locate", manifest.project_dir, "--array", "w2", "--index", 99, "--bit", 0), "99", "0..53")


def test_exhaustive_demo_map_covers_every_bit(tmp_path):
    """Every single bit of the demo maps to a distinct BRAM bit (its speed: scripts/bench_addressing.py)."""
    from fkhls.project.export import ExportOptions, export_model
    from fkhls.faults.descriptors import exhaustive_faults

    from fkhls.faults.addressing import spec_from_manifest

    manifest = export_model(DEMO, tmp_path / "demo", ExportOptions(strategy="Resource", reuse_factor=4))
    faults = exhaustive_faults(spec_from_manifest(manifest))
    assert len(faults) == 26334
    mapped = map_faults(AddressMap(manifest), faults)
    assert all(h.memory == "BRAM" for h in mapped if h.tensor == "kernel")
    assert {(h.memory_word, h.memory_bit, h.layer) for h in mapped if h.tensor == "kernel"}.__len__() == 4256 * 6
