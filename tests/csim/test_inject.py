"""fkhls.csim.inject and `fkhls inject` / `fkhls csim`: faulty projects, exact weight files, testbench scripts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from fkhls.csim import inject as codegen

from fkhls.csim import build as csim
from fkhls.cli.inject import csim as csim_command
from fkhls.cli.inject import inject as inject_command
from fkhls.csim.inject import (
    FAULTS_JSON,
    GENERATED_FILES,
    inject,
    inject_bits,
    read_array_words,
    read_header_words,
    render_project_scripts,
    render_weight_header,
    render_weight_txt,
)
from fkhls.core.errors import AddressError, BuildError, ProjectError
from fkhls.core.fixedpoint import from_raw, to_raw, type_from_dict
from fkhls.project.manifest import load_manifest
from tests.entry import assert_error, run_fkhls


FAULT_SET = {
    "seed": 11,
    "faults": [
        {"name": "fc1 sign bits", "layer": "fc1", "bits": [0, 6, 13]},  # LBI 0 = sign bit of weight 0
        {"name": "output bias", "layer": "output", "tensor": "bias", "bits": [2, 9]},
        {"name": "fc2 BER", "layer": "fc2", "regions": [[0, 1199, 0.005]]},
        {"name": "fc3 two bits of one word", "layer": "fc3", "bits": [60, 63]},
        {"name": "again", "layer": "fc1", "bits": [6]},  # the same bit twice: flipped once, two origins
    ],
}


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def golden(golden_demo_project) -> Path:
    return Path(golden_demo_project.project_dir)  # shared (conftest), read-only


@pytest.fixture(scope="session")
def inputs(demo_inputs) -> np.ndarray:
    return demo_inputs[:300]


@pytest.fixture(scope="session")
def fault_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.json"
    path.write_text(json.dumps(FAULT_SET))
    return path


@pytest.fixture(scope="session")
def injected(golden, fault_file, tmp_path_factory):
    before = checksums(golden)
    result = inject(golden, fault_file, tmp_path_factory.mktemp("inj") / "faulty")
    return result, before


def test_templates_reproduce_hls4ml_weight_files_byte_for_byte(golden):
    manifest = load_manifest(golden)
    for record in manifest.arrays():
        raw = read_array_words(golden, record)
        header_raw, shape_text = read_header_words(golden, record)
        assert_array_equal(header_raw, raw, err_msg=f"{record.array}: .h and .txt disagree")
        weights = golden / "firmware" / "weights"
        assert render_weight_header(record, raw, shape_text) == (weights / f"{record.array}.h").read_text()
        assert render_weight_txt(record, raw) == (weights / f"{record.array}.txt").read_text()


def test_inject_leaves_golden_untouched(injected, golden):
    _, before = injected
    assert checksums(golden) == before


def test_faulty_files_differ_from_golden_in_exactly_the_listed_words(injected, golden):
    result, _ = injected
    manifest = load_manifest(golden)
    listed: dict[str, dict[int, object]] = {}
    for change in result.changes:
        listed.setdefault(change.array, {})[change.element] = change
    for record in manifest.arrays():
        gold = read_array_words(golden, record)
        txt = read_array_words(result.project_dir, record)
        header, _ = read_header_words(result.project_dir, record)
        assert_array_equal(header, txt, err_msg=f"faulty {record.array}: .h initializer != .txt")
        differs = np.flatnonzero(txt != gold)
        assert_array_equal(differs, sorted(listed.get(record.array, {})), err_msg=f"{record.array}: changed elements")
        for element, change in listed.get(record.array, {}).items():
            assert (int(gold[element]), int(txt[element])) == (change.raw_before, change.raw_after)
            mask = sum(1 << b for b in change.bits)
            width = record.ptype.width
            assert (change.raw_before ^ change.raw_after) & ((1 << width) - 1) == mask
    # Every other file is the golden file, byte for byte (build outputs aside).
    faulty, gold = checksums(result.project_dir), checksums(golden)
    rewritten = set(result.changed_files) | set(GENERATED_FILES) | {FAULTS_JSON, "hls4ml_config.yml"}
    # hls4ml's own config must send its tools to the faulty copy, never back into the golden project.
    hls_config = (result.project_dir / "hls4ml_config.yml").read_text()
    assert f"OutputDir: {result.project_dir}" in hls_config and str(golden.resolve()) not in hls_config
    assert set(result.changed_files) == {f"firmware/weights/{a}.{ext}" for a in listed for ext in ("h", "txt")}
    for name, digest in gold.items():
        if name not in rewritten and not name.endswith(".so"):
            assert faulty.get(name) == digest, name
    # Header: only the metadata comment lines and the initializer line change.
    for array in listed:
        a = (golden / "firmware" / "weights" / f"{array}.h").read_text().splitlines()
        b = (result.project_dir / "firmware" / "weights" / f"{array}.h").read_text().splitlines()
        b = [line for line in b if not line.startswith("// fkhls")]
        changed = [x for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and all(x.startswith(("//Min", "//Max", "//Number of zeros", "weight", "bias"))
                                        for x in changed), changed


def test_faults_json_lists_every_changed_word(injected, golden):
    result, _ = injected
    doc = json.loads(result.faults_json.read_text())
    assert doc["schema"] == codegen.FAULTS_SCHEMA and doc["seed"] == 11
    assert [s["name"] for s in doc["scenarios"]] == [f["name"] for f in FAULT_SET["faults"]]
    assert doc["n_words"] == len(doc["words"]) == len(result.changes)
    assert doc["n_bits"] == sum(len(w["bits"]) for w in doc["words"])
    manifest = load_manifest(golden)
    for word in doc["words"]:
        _, record = manifest.array(word["array"])
        ptype = record.ptype
        assert word["value_before"] == float(from_raw(ptype, word["raw_before"]))
        assert word["value_after"] == float(from_raw(ptype, word["raw_after"]))
        assert float(word["literal_after"]) == word["value_after"]
        assert word["origins"], word
        for origin in word["origins"]:
            assert origin["lbi"] == origin["flat_index"] * ptype.width + ptype.width - 1 - origin["bit"]
            assert origin["bit"] in word["bits"] and origin["flat_index"] == word["flat_index"]
    # The two-bit word of fc3 (LBIs 60 and 63 = weight 10, bits 5 and 2) is one word with both bits.
    fc3 = [w for w in doc["words"] if w["layer"] == "fc3"]
    assert len(fc3) == 1 and fc3[0]["bits"] == [5, 2] and fc3[0]["flat_index"] == 10
    # A bit named by two scenarios is flipped once and keeps both origins.
    twice = [w for w in doc["words"] if w["layer"] == "fc1" and w["flat_index"] == 1]
    assert len(twice) == 1 and twice[0]["bits"] == [5]
    assert sorted(o["scenario"] for o in twice[0]["origins"]) == ["again", "fc1 sign bits"]
    for entry in doc["changed_files"]:
        assert entry["sha256_golden"] != entry["sha256_faulty"]


def test_inject_plus_csim_equals_tf_core(injected, golden, inputs):
    """Done-when: the faulty project's C-sim == FKeras-style TF core (and the exact core) with the same faults."""
    from fkhls.emulate.emulator import faulty_model_outputs
    from fkhls.faults.descriptors import FaultScenario, load_fault_set
    from fkhls.model.spec import describe_model, load_keras_model

    result, _ = injected
    manifest = load_manifest(result.project_dir)
    model = load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_type["cpp"])
    fault_set = load_fault_set(FAULT_SET, spec)
    together = FaultScenario("all", tuple(dict.fromkeys(f for s in fault_set.scenarios for f in s.faults)))
    out_type = type_from_dict(manifest.output_type)
    hw = csim.run_csim(manifest, inputs)
    golden_words = csim.run_csim(load_manifest(golden), inputs)
    assert (hw != golden_words).any(), "the faults should change some outputs"
    for method in ("tf", "exact"):
        emulated = faulty_model_outputs(model, together, inputs, spec=spec, method=method)
        assert_array_equal(hw, to_raw(out_type, emulated), err_msg=f"C-sim of the faulty project != {method} core")


def test_build_script_builds_the_same_csim(injected, inputs, tmp_path):
    result, _ = injected
    manifest = load_manifest(result.project_dir)
    script = result.project_dir / "build_csim.sh"
    assert os.access(script, os.X_OK)
    subprocess.run([str(script)], check=True, capture_output=True)
    x_raw = csim.input_words(manifest, inputs[:50])
    low = csim.run_binary(result.project_dir / "fkhls_csim", x_raw)
    from fkhls.core.fixedpoint import wrap_raw

    assert_array_equal(wrap_raw(type_from_dict(manifest.output_type), low), csim.run_csim(manifest, inputs[:50]))
    (result.project_dir / "fkhls_csim").unlink()


def test_hls_scripts_are_consistent_and_their_testbench_builds_as_hls_does(injected, inputs, tmp_path):
    """The Vivado/Vitis tcl cannot run here: check what it names exists, and build its file list like csim_design."""
    result, _ = injected
    project = result.project_dir
    manifest = load_manifest(project)
    tcl = (project / "fkhls_hls.tcl").read_text()
    assert "set_top ${project_name}" in tcl and "source [file join $tcldir project.tcl]" in tcl
    design = re.findall(r"^add_files (?!-tb)(\S+)", tcl, re.M)
    benches = re.findall(r"^add_files -tb (\S+)", tcl, re.M)
    assert design == ["firmware/${project_name}.cpp"] and benches == ["fkhls_hls_tb.cpp", "firmware/weights"]
    project_tcl = (project / "project.tcl").read_text()
    for var in ("project_name", "part", "clock_period", "clock_uncertainty", "maximum_size"):
        assert f"set {var} " in project_tcl and re.search(rf"\$\{{?{var}\b", tcl), var
    # csim_design passes exactly the three arguments the testbench's main takes.
    argv = re.search(r'csim_design -argv "([^"]*)"', tcl)[1].split()
    assert len(argv) == 3 and "argc != 4" in (project / "fkhls_hls_tb.cpp").read_text()
    # Vitis variant: same flow, its own solution options.
    vitis = render_project_scripts(replace(manifest, backend="Vitis"), faulty=True)["fkhls_hls.tcl"]
    assert "-flow_target vivado" in vitis and "vitis_hls" in vitis and "-flow_target" not in tcl
    assert re.findall(r"^add_files.*$", vitis, re.M) == re.findall(r"^add_files.*$", tcl, re.M)
    # Build design and testbench as separate translation units (as csim_design does) and run from a
    # directory holding `weights/` (add_files -tb firmware/weights copies it there): exact, sign-extended words.
    run_dir = tmp_path / "csim_build"
    shutil.copytree(project / "firmware" / "weights", run_dir / "weights")
    cxx = csim.find_compiler()
    flags = ["-std=c++0x", "-O1", "-w", f"-I{project}", f"-I{project / 'firmware' / 'ap_types'}"]
    objs = []
    for src in (project / "firmware" / f"{manifest.project_name}.cpp", project / "fkhls_hls_tb.cpp"):
        obj = run_dir / (src.stem + ".o")
        subprocess.run([cxx, *flags, "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
        objs.append(str(obj))
    subprocess.run([cxx, *objs, "-o", str(run_dir / "csim.exe")], check=True, capture_output=True)
    x_raw = csim.input_words(manifest, inputs[:40])
    x_raw.tofile(run_dir / "x.bin")
    subprocess.run([str(run_dir / "csim.exe"), "40", "x.bin", "y.bin"], check=True, cwd=run_dir, capture_output=True)
    got = np.fromfile(run_dir / "y.bin", dtype=np.int64).reshape(40, -1)
    assert_array_equal(got, csim.run_csim(manifest, inputs[:40]))


def test_existing_output_refused_without_force_and_replaced_with_it(golden, tmp_path):
    target = tmp_path / "faulty"
    inject_bits(golden, target, [("w2", 0, 5)])
    with pytest.raises(ProjectError, match="--force"):
        inject_bits(golden, target, [("w2", 0, 4)])
    inject_bits(golden, target, [("w2", 0, 4)], force=True)
    doc = json.loads((target / FAULTS_JSON).read_text())
    assert [w["bits"] for w in doc["words"]] == [[4]]


def test_failure_half_way_leaves_nothing_behind(golden, tmp_path, monkeypatch):
    target = tmp_path / "faulty"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(codegen, "render_project_scripts", boom)
    with pytest.raises(RuntimeError):
        inject_bits(golden, target, [("w2", 0, 5)])
    assert list(tmp_path.iterdir()) == []


def test_bad_targets_and_bits_are_refused(golden, tmp_path):
    with pytest.raises(ProjectError, match="outside the golden project"):
        inject_bits(golden, golden / "faulty", [("w2", 0, 5)])
    with pytest.raises(ProjectError, match="outside the golden project"):
        inject_bits(golden, golden, [("w2", 0, 5)], force=True)
    with pytest.raises(AddressError, match="0..5"):
        inject_bits(golden, tmp_path / "x", [("w2", 0, 6)])
    with pytest.raises(AddressError, match="0..1023"):
        inject_bits(golden, tmp_path / "x", [("w2", 1024, 0)])
    with pytest.raises(ProjectError, match="no weight array"):
        inject_bits(golden, tmp_path / "x", [("w99", 0, 0)])
    with pytest.raises(ProjectError, match="empty"):
        inject_bits(golden, tmp_path / "x", [])
    assert not (tmp_path / "x").exists()


def test_cli_inject_and_csim(golden, fault_file, inputs, tmp_path):
    runner = CliRunner()
    faulty = tmp_path / "faulty"
    res = runner.invoke(inject_command, [str(golden), "--faults", str(fault_file), "-o", str(faulty)])
    assert res.exit_code == 0, res.output
    assert "flipped" in res.output and (faulty / FAULTS_JSON).is_file()
    before = sorted((p.relative_to(faulty), p.stat().st_mtime_ns) for p in faulty.rglob("*"))
    assert_error(run_fkhls("inject", golden, "--faults", fault_file, "-o", faulty), str(faulty), "--force")
    assert sorted((p.relative_to(faulty), p.stat().st_mtime_ns) for p in faulty.rglob("*")) == before  # untouched
    x_path = tmp_path / "x.npy"
    np.save(x_path, inputs[:64])
    y_path, raw_path = tmp_path / "y.npy", tmp_path / "y_raw.npy"
    res = runner.invoke(csim_command, [str(faulty), "--inputs", str(x_path), "-o", str(y_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(csim_command, [str(faulty), "--inputs", str(x_path), "-o", str(raw_path), "--raw"])
    assert res.exit_code == 0 and "cached binary" in res.output, res.output  # second call: no recompile
    manifest = load_manifest(faulty)
    words = csim.run_csim(manifest, inputs[:64])
    raw, values = np.load(raw_path), np.load(y_path)
    assert raw.dtype == np.int64 and values.dtype == np.float64
    assert_array_equal(raw, words)
    assert_array_equal(values, from_raw(type_from_dict(manifest.output_type), words))
    assert_error(run_fkhls("csim", faulty, "--inputs", x_path, "-o", y_path), "y.npy", "--force")
    assert_array_equal(np.load(y_path), values)  # the refused output is untouched
    np.save(x_path, inputs[:4, :7])
    assert_error(run_fkhls("csim", faulty, "--inputs", x_path, "-o", tmp_path / "z.npy"), "(4, 7)", "(N, 16)")
    assert not (tmp_path / "z.npy").exists()


def test_csim_errors_name_the_cause(golden, inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(csim, "CXX", "no-such-g++")
    with pytest.raises(BuildError, match="no-such-g\\+\\+.*not found"):
        csim.run_csim(load_manifest(golden), inputs[:2])
    monkeypatch.undo()
    broken = tmp_path / "broken"
    inject_bits(golden, broken, [("b2", 0, 0)])
    header = broken / "firmware" / "weights" / "b2.h"
    header.write_text(header.read_text().replace("bias2_t b2[64];", "bias2_t b2[64] oops;"))
    monkeypatch.setenv("FKHLS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(BuildError, match=r"log: .*build\.log\): .*error") as info:
        csim.run_csim(load_manifest(broken), inputs[:2])
    log = Path(re.search(r"log: (\S+build\.log)", str(info.value))[1])
    assert log.is_file()
