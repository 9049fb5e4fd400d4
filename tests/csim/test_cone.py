"""fkhls.csim.cone: the cone harness gives the reference harness's words, byte for byte, and the exact emulator's.

Each project is exported and both binaries are built once (module fixtures). Faults cover every
weight array, sign bit and LSB, kernel and bias, multi-bit scenarios across layers, Latency and
Resource (R = 2, 3: transposed kernels), Dense and Conv2D, a Dense whose result type is not its
accumulator, and a project whose accumulator typedef was narrowed by hand (neuron delta refused).
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.csim import cone

from fkhls.csim import build as csim
from fkhls.faults.addressing import map_faults
from fkhls.core.errors import ProjectError
from fkhls.project.export import ExportOptions, export_model
from fkhls.faults.descriptors import BitFault
from fkhls.csim.harness import build_harness, prepare_harness, run_fault_harness, run_harness_slice
from fkhls.project.manifest import load_manifest

from tests import models

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"


@dataclass
class Project:
    manifest: object
    model: object
    x: np.ndarray
    x_raw: np.ndarray
    cone_binary: object
    reference_binary: object


def _project(model, directory: Path, options: ExportOptions, x: np.ndarray, manifest=None) -> Project:
    manifest = manifest or export_model(model, directory, options)
    with ThreadPoolExecutor(2) as pool:  # two g++ runs at once
        cone_job = pool.submit(cone.build_cone_harness, manifest)
        reference_job = pool.submit(build_harness, manifest)
        binaries = cone_job.result(), reference_job.result()
    return Project(manifest, model, x, csim.input_words(manifest, x), *binaries)


def _load(name: str):
    from fkhls.model.spec import load_keras_model

    return load_keras_model(DATA / name)


@pytest.fixture(scope="module")
def demo(golden_demo_project, demo_inputs):
    """The shared golden demo project (conftest, read-only) with both harnesses built."""
    return _project(_load("demo_model.h5"), None, ExportOptions(), demo_inputs[:64], manifest=golden_demo_project)


@pytest.fixture(scope="module")
def conv_resource(tmp_path_factory):
    model = models.build("conv2d")
    return _project(model, tmp_path_factory.mktemp("cone") / "conv", ExportOptions("Vivado", "io_parallel",
                                                                                   "Resource", 2),
                    models.inputs_for(model, n=40))


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    model = models.build("dense")
    return _project(model, tmp_path_factory.mktemp("cone") / "dense", ExportOptions("Vivado", "io_parallel", "Resource",
                                                                                    3), models.inputs_for(model, n=60))


def _faults(manifest, rng, per_tensor: int = 6, multi: int = 6) -> list[list[BitFault]]:
    """Per tensor: its sign bit, its LSB and random bits; then multi-bit scenarios over several layers."""
    from fkhls.faults.addressing import spec_from_manifest

    tensors = spec_from_manifest(manifest).tensors()
    scenarios = []
    for t in tensors:
        words = t.n_bits // t.width
        scenarios.append([BitFault(t.layer, t.tensor, int(rng.integers(words)) * t.width, t.width)])  # sign bit
        scenarios.append([BitFault(t.layer, t.tensor, int(rng.integers(words)) * t.width + t.width - 1, t.width)])
        scenarios += [[BitFault(t.layer, t.tensor, int(rng.integers(t.n_bits)), t.width)] for _ in range(per_tensor)]
    for _ in range(multi):
        picks = rng.choice(len(tensors), size=3)
        scenarios.append([BitFault(tensors[k].layer, tensors[k].tensor, int(rng.integers(tensors[k].n_bits)),
                                   tensors[k].width) for k in picks])
    first = tensors[0]  # two bits of one word, and a kernel + bias pair of one layer
    scenarios.append([BitFault(first.layer, first.tensor, 0, first.width),
                      BitFault(first.layer, first.tensor, first.width - 1, first.width),
                      BitFault(tensors[1].layer, tensors[1].tensor, 3, tensors[1].width)])
    return scenarios


def _hardware(manifest, scenarios):
    return [[(h.array, h.element, h.array_bit) for h in map_faults(manifest, s)] for s in scenarios]


def _emulated(project: Project, scenarios) -> np.ndarray:
    from fkhls.emulate.emulator import apply_faults, forward_raw, golden_weights
    from fkhls.model.spec import describe_model

    manifest = project.manifest
    spec = describe_model(project.model, manifest.input_type["cpp"])
    weights = golden_weights(project.model, spec)
    x_raw = project.x_raw.reshape(len(project.x_raw), *manifest.input_shape)
    return np.stack([forward_raw(spec, apply_faults(spec, weights, faults), x_raw).reshape(len(x_raw), -1)
                     for faults in scenarios])


def _assert_same(got: np.ndarray, expected: np.ndarray, scenarios, what: str) -> None:
    assert got.shape == expected.shape, what
    bad = np.argwhere((got != expected).any(axis=(1, 2)))
    assert len(bad) == 0, f"{what}: scenario {int(bad[0][0])} {scenarios[int(bad[0][0])]} differs"
    assert_array_equal(got, expected, err_msg=what)


def _check_project(project: Project, seed: int, expect_delta: set[str]) -> np.ndarray:
    manifest = project.manifest
    supported, reason = cone.cone_support(manifest)
    assert supported, reason
    assert {d.layer for d in cone.cone_plan(manifest).delta} == expect_delta, reason
    scenarios = _faults(manifest, np.random.default_rng(seed))
    hw = _hardware(manifest, scenarios) + [[]]
    got = cone.run_cone_harness(manifest, project.x_raw, hw, binary=project.cone_binary)
    reference = run_fault_harness(manifest, project.x_raw, hw, binary=project.reference_binary)
    _assert_same(got, reference, hw, "cone vs reference harness")
    _assert_same(got[:-1], _emulated(project, scenarios), hw, "cone vs exact emulator")
    assert_array_equal(got[-1], reference[-1])  # the empty scenario: golden (== csim, see test_harness)
    changed = (got[:-1] != got[-1]).any(axis=(1, 2))
    assert changed.mean() > 0.5, "the sample of faults should mostly change outputs"
    return got


def test_demo_latency(demo):
    _check_project(demo, 1, {"fc1", "fc2", "fc3", "output"})


def test_conv2d_resource(conv_resource):
    manifest = conv_resource.manifest
    supported, reason = cone.cone_support(manifest)
    assert "c1:" in reason and "not an io_parallel nnet::dense call" in reason
    assert manifest.layer("head").kernel.axes == (1, 0)  # hls4ml Resource strategy transposes Dense to (out, in)
    head = next(d for d in cone.cone_plan(manifest).delta if d.layer == "head")
    assert (head.i_stride, head.j_stride) == (1, 36)
    _check_project(conv_resource, 3, {"head"})


def test_dense_with_folded_activation(dense):
    """d3's call writes the folded quantized_bits activation, not its accumulator: no neuron delta there."""
    assert dense.manifest.layer("d2").kernel.axes == (1, 0)
    plan = cone.cone_plan(dense.manifest)
    assert any(note.startswith("d3:") and "not materialized" in note for note in plan.notes), plan.notes
    _check_project(dense, 4, {"d1", "d2", "out"})


def test_every_bit_of_a_small_layer(dense):
    """Exhaustive over the output layer's kernel and bias (all delta paths), plus every bit of one d1 word."""
    manifest = dense.manifest
    hw = [[(a.array, e, b)] for a in manifest.layer("out").arrays() for e in range(a.size) for b in range(a.ptype.width)]
    w2 = manifest.layer("d1").kernel
    hw += [[("w2", 13, b)] for b in range(w2.ptype.width)]
    got = cone.run_cone_harness(manifest, dense.x_raw, hw, binary=dense.cone_binary, workers=2)
    _assert_same(got, run_fault_harness(manifest, dense.x_raw, hw, binary=dense.reference_binary), hw,
                 "cone vs reference, exhaustive")


def test_narrowed_accumulator_falls_back(dense, tmp_path):
    """A hand-edited accumulator typedef: the plan refuses the delta on that layer, outputs still equal the reference."""
    copy = tmp_path / "narrow"
    shutil.copytree(dense.manifest.project_dir, copy)
    defines = copy / "firmware" / "defines.h"
    text, count = re.subn(r"typedef ap_fixed<27,12> d1_accum_t;", "typedef ap_fixed<12,3> d1_accum_t;",
                          defines.read_text())
    assert count == 1
    defines.write_text(text)
    manifest = load_manifest(copy)
    supported, reason = cone.cone_support(manifest)
    assert supported and "d1: firmware/defines.h has d1_accum_t = 'ap_fixed<12,3>'" in reason, reason
    assert "d1" not in {d.layer for d in cone.cone_plan(manifest).delta}
    narrow = _project(dense.model, copy, ExportOptions(), dense.x, manifest=manifest)
    hw = _hardware(manifest, _faults(manifest, np.random.default_rng(6), per_tensor=4)) + [[]]
    got = cone.run_cone_harness(manifest, narrow.x_raw, hw, binary=narrow.cone_binary)
    _assert_same(got, run_fault_harness(manifest, narrow.x_raw, hw, binary=narrow.reference_binary), hw,
                 "cone vs reference, narrowed accumulator")
    golden = run_fault_harness(dense.manifest, dense.x_raw, [[]], binary=dense.reference_binary)[0]
    assert (got[-1] != golden).any(), "the narrowed accumulator should change outputs"


def test_workers_memmap_and_reference_slices(demo, tmp_path):
    manifest = demo.manifest
    hw = [[("w2", e, b)] for e in range(0, 60, 6) for b in (0, 5)] + [[], [("w5", 7, 3), ("b11", 2, 5)]]
    whole = cone.run_cone_harness(manifest, demo.x_raw, hw, binary=demo.cone_binary)
    mapped = cone.run_cone_harness(manifest, demo.x_raw, hw, binary=demo.cone_binary, workers=3,
                                   out_path=tmp_path / "r.bin")
    assert isinstance(mapped, np.memmap) and mapped.shape == (len(hw), len(demo.x), 5)
    assert_array_equal(np.asarray(mapped), whole)
    # The binary takes the reference harness's command line: a campaign can run contiguous slices of it.
    job = prepare_harness(manifest, demo.x_raw, hw, tmp_path / "s.bin", tmp_path / "work", demo.cone_binary)
    run_harness_slice(job, 5, len(hw))
    run_harness_slice(job, 0, 5)
    assert_array_equal(np.fromfile(job.results, dtype=np.int64).reshape(whole.shape), whole)
    assert cone.run_cone_harness(manifest, demo.x_raw[:3], [], binary=demo.cone_binary).shape == (0, 3, 5)


def test_io_stream_falls_back_to_the_reference_harness(demo, monkeypatch):
    """A manifest saying io_stream over a body of arrays: the io_stream cone harness (test_cone_stream.py) refuses."""
    stream = replace(demo.manifest, io_type="io_stream")
    supported, reason = cone.cone_support(stream)
    assert not supported and "reference harness" in reason and "not hls::stream objects" in reason
    with pytest.raises(ProjectError, match="io_stream"):
        cone.render_cone_harness(stream)
    calls = []
    monkeypatch.setattr(cone, "run_fault_harness", lambda *a, **k: calls.append((a, k)) or "reference")
    assert cone.run_cone_harness(stream, demo.x_raw, [[]], workers=2) == "reference"
    assert calls[0][1]["workers"] == 2


def test_golden_activations_file(demo, tmp_path):
    """The first run saves the golden activations beside the binary, later runs load them (same words); a file that
    does not match (other inputs, damaged bytes) is recomputed, never trusted."""
    manifest, binary = demo.manifest, demo.cone_binary
    hw = [[("w2", 5, 5)], [("w5", 40, 0)], [("b8", 3, 2)], [("w11", 7, 4), ("w2", 1, 0)], []]
    reference = run_fault_harness(manifest, demo.x_raw, hw, binary=demo.reference_binary)
    x = demo.x_raw[:17]
    path = cone.golden_file(binary, len(x), x)
    assert path.parent == binary.path.parent and path != cone.golden_file(binary, len(x) - 1, x[:-1])
    path.unlink(missing_ok=True)
    first = cone.run_cone_harness(manifest, x, hw, binary=binary)
    assert path.is_file()
    inode = path.stat().st_ino
    again = cone.run_cone_harness(manifest, x, hw, binary=binary, workers=2)
    assert path.stat().st_ino == inode, "a matching file is loaded, not rewritten"
    assert_array_equal(first, reference[:, :17])
    assert_array_equal(again, first)
    # Another input set's file under this name: the inputs hash in its header differs.
    other = demo.x_raw[17:34]
    cone.run_cone_harness(manifest, other, [[]], binary=binary)
    shutil.copyfile(cone.golden_file(binary, len(other), other), path)
    inode = path.stat().st_ino
    assert_array_equal(cone.run_cone_harness(manifest, x, hw, binary=binary), first)
    assert path.stat().st_ino != inode, "a file of other inputs is recomputed and replaced"
    # Damaged activations (header intact): the body hash differs, the pass runs again and rewrites the file.
    data = bytearray(path.read_bytes())
    inode = path.stat().st_ino
    data[-100:] = bytes(b ^ 0xFF for b in data[-100:])
    path.write_bytes(bytes(data))
    assert_array_equal(cone.run_cone_harness(manifest, x, hw, binary=binary), first)
    assert path.stat().st_ino != inode and path.read_bytes() != bytes(data)
    # A truncated file: likewise.
    path.write_bytes(path.read_bytes()[:-8])
    assert_array_equal(cone.run_cone_harness(manifest, x, hw, binary=binary), first)


@pytest.mark.parametrize("project_name", ["demo", "dense"])
def test_product_tables_and_memo_change_no_word(project_name, request, tmp_path):
    """The same binary built without the product tables and the elementwise memo (the plain product<> and nnet::
    calls per sample) gives the same words as with them, and as the reference harness."""
    from fkhls.csim.build import compile_program

    project = request.getfixturevalue(project_name)
    manifest = project.manifest
    plain = compile_program(manifest.project_dir, cone.render_cone_harness(manifest), "cone_harness",
                            extra_flags=("-DFKHLS_PRODUCT_TABLE_BITS=0", "-DFKHLS_MEMO_BITS=0"))
    assert plain.path != project.cone_binary.path
    hw = _hardware(manifest, _faults(manifest, np.random.default_rng(8), per_tensor=5)) + [[]]
    with_memos = cone.run_cone_harness(manifest, project.x_raw, hw, binary=project.cone_binary)
    without = cone.run_cone_harness(manifest, project.x_raw, hw, binary=plain)
    _assert_same(with_memos, without, hw, "with vs without product tables and memo")
    _assert_same(with_memos, run_fault_harness(manifest, project.x_raw, hw, binary=project.reference_binary), hw,
                 "cone vs reference")
