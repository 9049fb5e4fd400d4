"""fkhls.csim.cone_stream: the io_stream cone harness gives the reference harness's words, byte for byte.

Small io_stream projects (a dense MLP, conv2d + max pooling + global pooling, a residual Add
and a Concatenate, both behind hls4ml's clone_stream, a depthwise conv whose zero bias array is
no fault target), each exported and both harnesses built
once per module. Every single-bit fault of every weight array, plus multi-bit scenarios across
layers and the empty scenario, is compared raw word for raw word with the reference harness; the
plan must list the Dense calls that take the neuron delta (DELTA), so those faults go through it, and the calls
that take the sparse input step (SPARSE); the conv2d model's builds with the step (and its product tables) switched
off and with its step counts printed show that it ran, on a strided conv after a conv and a Dense after a Flatten.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import ProjectError
from fkhls.csim import build as csim
from fkhls.csim import cone
from fkhls.csim.harness import build_harness, prepare_harness, run_fault_harness, run_harness_slice
from fkhls.project.export import ExportOptions, export_model
from fkhls.project.manifest import load_manifest

from tests import models

# dense; conv2d + pooling; Add + Clone; Concatenate + Clone; depthwise (a bias array that is no fault target);
# quantized_po2 kernels (hls4ml's {sign, exponent} struct words: flipped through _weight_word.cpp.j2); conv2d (same
# padding, a ZeroPadding call of its own in io_stream, and a strided conv)
MODELS = ["dense", "pooling", "residual", "concat", "depthwise", "dense_po2", "conv2d"]
# The io_stream Dense (neuron delta) and Conv2D (channel delta) calls that take a delta; conv2d's c2 has strides 2.
# dense's d3 has a rounding, saturating result type (not its accum_t), dense_po2's kernels are po2 shifts, and
# depthwise calls run cone + skip: each is in the plan's notes.
DELTA = {"dense": ("d1", "d2", "out"), "pooling": ("c1", "c2", "head"), "residual": ("c0", "c1", "c2", "head"),
         "concat": ("da", "db", "head"), "depthwise": ("head",), "dense_po2": (), "conv2d": ("c1", "c2", "head")}
# The delta calls that also take the sparse input step: every one after the first weighted call.
SPARSE = {name: layers[1:] if name not in ("depthwise", "dense_po2") else layers for name, layers in DELTA.items()}
NO_DELTA = {"dense": ("d3",), "pooling": (), "residual": (), "concat": (), "depthwise": ("dw1", "dw2"),
            "dense_po2": ("p1", "p2"), "conv2d": ()}


def _build(manifest):
    with ThreadPoolExecutor(2) as pool:  # two g++ runs at once
        cone_job = pool.submit(cone.build_cone_harness, manifest)
        reference_job = pool.submit(build_harness, manifest)
        return cone_job.result(), reference_job.result()


@pytest.fixture(scope="module", params=MODELS)
def project(request, tmp_path_factory):
    model = models.build(request.param)
    manifest = export_model(model, tmp_path_factory.mktemp("cone-stream") / request.param,
                            ExportOptions(io_type="io_stream"))
    x = models.inputs_for(model, n=24, seed=5)
    return request.param, manifest, csim.input_words(manifest, x), *_build(manifest)


def _every_fault(manifest, seed: int, multi: int = 12) -> list[list[tuple]]:
    """Every bit of every array, then seeded multi-bit scenarios over several arrays, then the empty scenario."""
    arrays = manifest.arrays()
    scenarios = [[(a.array, e, b)] for a in arrays for e in range(a.size) for b in range(a.ptype.width)]
    rng = np.random.default_rng(seed)
    for _ in range(multi):
        picks = rng.choice(len(arrays), size=3)
        scenarios.append([(arrays[k].array, int(rng.integers(arrays[k].size)), int(rng.integers(arrays[k].ptype.width)))
                          for k in picks])
    return scenarios + [[]]


def test_every_fault_equals_the_reference_harness(project):
    name, manifest, x_raw, cone_binary, reference_binary = project
    plan = cone.cone_plan(manifest)
    assert plan.supported and plan.reason.startswith("io_stream cone + skip"), plan.reason
    assert tuple(d.layer for d in plan.delta) == DELTA[name], plan.reason
    assert tuple(note.split(":")[0] for note in plan.notes) == NO_DELTA[name], plan.notes
    assert ("Conv2D: one channel) on " + ", ".join(DELTA[name] or ("no layer",))) in plan.reason
    assert ("while cheaper than the call) on " + ", ".join(SPARSE[name] or ("no layer",))) in plan.reason, plan.reason
    source = cone.render_cone_harness(manifest)
    assert "io_stream cone harness" in source.splitlines()[1]
    for d in plan.delta:  # the generated run_delta has a case for the layer's kernel and asserts its exactness
        assert f"case {[a.array for a in manifest.arrays()].index(d.kernel)}: {{  // {d.kernel}" in source
        assert f'"{d.layer}: result element type is not accum_t"' in source
    scenarios = _every_fault(manifest, seed=len(name))
    got = cone.run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary, workers=2)
    reference = run_fault_harness(manifest, x_raw, scenarios, binary=reference_binary, workers=2)
    assert got.shape == reference.shape == (len(scenarios), len(x_raw), int(np.prod(manifest.output_shape)))
    bad = np.flatnonzero((got != reference).any(axis=(1, 2)))
    assert len(bad) == 0, f"{name}: scenario {bad[:1]} {[scenarios[i] for i in bad[:1]]} differs from the reference"
    assert_array_equal(got, reference)
    changed = (got[:-1] != got[-1]).any(axis=2)  # (scenario, sample) pairs whose outputs the fault changed
    assert changed.any(axis=1).mean() > 0.5, "most faults should change some output"
    assert not changed.all(), "some (fault, sample) pairs should be masked (the skip path)"


@pytest.mark.parametrize("project", ["residual"], indirect=True)
def test_slices_and_memmap(project, tmp_path):
    """The reference harness's command line: contiguous slices fill one results file; a memmap comes back."""
    name, manifest, x_raw, cone_binary, _ = project
    arrays = manifest.arrays()
    scenarios = [[(a.array, 0, a.ptype.width - 1)] for a in arrays] + [[], [(arrays[0].array, 1, 0)]]
    whole = cone.run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary)
    mapped = cone.run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary, workers=3,
                                   out_path=tmp_path / "r.bin")
    assert isinstance(mapped, np.memmap)
    assert_array_equal(np.asarray(mapped), whole)
    job = prepare_harness(manifest, x_raw, scenarios, tmp_path / "s.bin", tmp_path / "work", cone_binary)
    run_harness_slice(job, 3, len(scenarios))
    run_harness_slice(job, 0, 3)
    assert_array_equal(np.fromfile(job.results, dtype=np.int64).reshape(whole.shape), whole)


@pytest.mark.parametrize("project", ["concat"], indirect=True)
def test_a_stream_with_two_readers_falls_back(project, tmp_path, monkeypatch):
    """A body the replay cannot keep exact (here: a stream read twice, hand-edited) is refused, and the campaign
    entry point runs the reference harness instead."""
    name, manifest, x_raw, _, _ = project
    copy = tmp_path / "edited"
    shutil.copytree(manifest.project_dir, copy)
    source = copy / "firmware" / f"{manifest.project_name}.cpp"
    text, count = re.subn(r"\(layer10_cpy2, layer5_out", "(layer10_cpy1, layer5_out", source.read_text())
    assert count == 1
    source.write_text(text)
    edited = load_manifest(copy)
    supported, reason = cone.cone_support(edited)
    assert not supported and "stream layer10_cpy1 is read by 2 calls (da, db)" in reason, reason
    assert "reference harness" in reason
    with pytest.raises(ProjectError, match="read by 2 calls"):
        cone.render_cone_harness(edited)
    calls = []
    monkeypatch.setattr(cone, "run_fault_harness", lambda *a, **k: calls.append(k) or "reference")
    assert cone.run_cone_harness(edited, x_raw, [[]], workers=2) == "reference"
    assert calls[0]["workers"] == 2


@pytest.mark.parametrize("project", ["dense"], indirect=True)
def test_a_hand_edited_accumulator_loses_the_delta(project, tmp_path):
    """defines.h no longer says what the manifest records (d1's accumulator made saturating by hand): d1 runs cone
    + skip, and the plan says why; the other layers keep the delta."""
    name, manifest, *_ = project
    copy = tmp_path / "edited"
    shutil.copytree(manifest.project_dir, copy)
    defines = copy / "firmware" / "defines.h"
    text, count = re.subn(r"typedef ap_fixed<27,12> d1_accum_t;", "typedef ap_fixed<27,12,AP_TRN,AP_SAT> d1_accum_t;",
                          defines.read_text())
    assert count == 1
    defines.write_text(text)
    plan = cone.cone_plan(load_manifest(copy))
    assert plan.supported
    assert tuple(d.layer for d in plan.delta) == ("d2", "out"), plan.reason
    assert "d1: firmware/defines.h has d1_accum_t = 'ap_fixed<27,12,AP_TRN,AP_SAT>'" in plan.reason, plan.reason


def _sparse_steps(binary, manifest, x_raw, scenarios, tmp_path) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """Run a -DFKHLS_SPARSE_STATS build on every scenario: its words and, per layer, (sparse steps, whole calls)."""
    job = prepare_harness(manifest, x_raw, scenarios, tmp_path / "r.bin", tmp_path, binary)
    command = [str(job.binary), str(job.n_samples), str(job.inputs), str(job.faults), str(job.offsets),
               str(job.n_scenarios), str(job.results), "0", str(job.n_scenarios)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=job.project)
    assert result.returncode == 0, result.stderr
    counts = {m[1]: (int(m[2]), int(m[3]))
              for m in re.finditer(r"^fkhls cone sparse: (\w+) (\d+) sparse (\d+) whole$", result.stderr, re.M)}
    words = np.fromfile(job.results, dtype=np.int64).reshape(job.n_scenarios, job.n_samples, job.n_out)
    return words, counts


@pytest.mark.parametrize("project", ["conv2d"], indirect=True)
def test_sparse_steps_run_and_change_no_word(project, tmp_path):
    """conv2d: c2 (a strided conv after the conv c1) and head (a Dense after the Flatten) take the sparse input step
    on faults upstream, and (without product tables) run whole when too many inputs changed (every c1 sign bit
    flipped at once); with and without the tables, and with the step off, every word is the reference harness's."""
    from fkhls.csim.build import compile_program

    name, manifest, x_raw, cone_binary, reference_binary = project
    plan = cone.cone_plan(manifest)
    assert "sparse input step (changed input elements only, while cheaper than the call) on c2, head" in plan.reason
    source = cone.render_cone_harness(manifest)
    stats = ("-DFKHLS_SPARSE_STATS",)
    variants = {"tables": stats, "no tables": (*stats, "-DFKHLS_PRODUCT_TABLE_BITS=0"),
                "step off": (*stats, "-DFKHLS_SPARSE_STREAM=0")}
    with ThreadPoolExecutor(2) as pool:
        jobs = {k: pool.submit(compile_program, manifest.project_dir, source, "cone_harness", extra_flags=flags)
                for k, flags in variants.items()}
        binaries = {k: job.result() for k, job in jobs.items()}
    layers = {r.hls_name: r for r in manifest.weighted_layers}
    all_signs = [(t.array, e, t.ptype.width - 1) for t in (layers["c1"].kernel, layers["c1"].bias)
                 for e in range(t.size)]
    scenarios = _every_fault(manifest, seed=11, multi=20) + [all_signs]
    reference = run_fault_harness(manifest, x_raw, scenarios, binary=reference_binary, workers=2)
    assert_array_equal(cone.run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary, workers=2), reference)
    counts = {}
    for variant, binary in binaries.items():
        words, counts[variant] = _sparse_steps(binary, manifest, x_raw, scenarios, tmp_path / variant.replace(" ", "_"))
        bad = np.flatnonzero((words != reference).any(axis=(1, 2)))
        assert len(bad) == 0, f"{variant}: scenario {[scenarios[i] for i in bad[:1]]} differs from the reference"
        assert_array_equal(words, reference)
    for variant in ("tables", "no tables"):
        assert set(counts[variant]) == {"c2", "head"}, counts
        for layer in ("c2", "head"):
            sparse, whole = counts[variant][layer]
            assert sparse > len(x_raw) * 100, (variant, layer, counts)
            # A call is reached as often either way (the step is exact); a table makes the step cheaper, so it
            # declines at most as often.
            assert sum(counts[variant][layer]) == sum(counts["no tables"][layer]), (variant, layer, counts)
            assert whole <= counts["no tables"][layer][1], (variant, layer, counts)
    assert counts["no tables"]["c2"][1] > 0 and counts["no tables"]["head"][1] > 0, counts  # declined, ran whole
    assert counts["step off"] == {"c2": (0, 0), "head": (0, 0)}, counts


@pytest.mark.parametrize("project", ["conv2d"], indirect=True)
def test_golden_streams_file(project):
    """The first run saves the golden streams beside the binary, later runs load them (same words, the file not
    rewritten); a file of other inputs, a damaged or a truncated one is recomputed and replaced, never trusted."""
    name, manifest, x_raw, cone_binary, reference_binary = project
    arrays = manifest.arrays()
    hw = [[(arrays[0].array, 1, arrays[0].ptype.width - 1)], [(arrays[-1].array, 0, 0)],
          [(arrays[1].array, 2, 2), (arrays[0].array, 0, 0)], []]
    x = x_raw[:13]
    reference = run_fault_harness(manifest, x, hw, binary=reference_binary)
    path = cone.golden_file(cone_binary, len(x), x)
    assert path.parent == cone_binary.path.parent
    path.unlink(missing_ok=True)
    first = cone.run_cone_harness(manifest, x, hw, binary=cone_binary)
    assert path.is_file()
    assert_array_equal(first, reference)
    inode = path.stat().st_ino
    assert_array_equal(cone.run_cone_harness(manifest, x, hw, binary=cone_binary, workers=2), first)
    assert path.stat().st_ino == inode, "a matching file is loaded, not rewritten"
    other = x_raw[13:26]
    cone.run_cone_harness(manifest, other, [[]], binary=cone_binary)
    for label, damage in [("other inputs", lambda: shutil.copyfile(cone.golden_file(cone_binary, len(other), other),
                                                                  path)),
                          ("damaged body", lambda: path.write_bytes(path.read_bytes()[:-100] + bytes(
                              b ^ 0xFF for b in path.read_bytes()[-100:]))),
                          ("truncated", lambda: path.write_bytes(path.read_bytes()[:-8]))]:
        damage()
        bad = path.read_bytes()
        assert_array_equal(cone.run_cone_harness(manifest, x, hw, binary=cone_binary), first, err_msg=label)
        assert path.read_bytes() != bad, f"{label}: the file is recomputed and rewritten"
