"""Nothing run, nothing trusted that is damaged (issue 9, points 1, 4, 6, 7): paths, weight files, cache, manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import BuildError, FkhlsError, OffGridError, ProjectError
from fkhls.core.files import sha256_file
from fkhls.csim import build
from fkhls.csim.build import build_csim, input_words, run_binary, run_csim
from fkhls.project.manifest import load_manifest
from fkhls.project.weights import check_weight_files
from tests import models

ROOT = Path(__file__).resolve().parents[2]
# Every character a shell or a C++ string literal would take as code: quotes, backslash, $(...), backticks, and
# the payload of issue 9 that ran `touch` through -DWEIGHTS_DIR.
HOSTILE = 'a "q" \\b $(touch PWNED_1) `touch PWNED_2` x"+std::string((system("touch PWNED_3"),""))+"y'


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    from fkhls.project.export import export_model

    target = tmp_path_factory.mktemp("safety") / "golden"
    export_model(models.dense_model(), target)
    return target


@pytest.fixture(scope="module")
def x():
    return models.grid_inputs((10,), 24, seed=5)


def _copy(golden: Path, target: Path) -> Path:
    shutil.copytree(golden, target, ignore=shutil.ignore_patterns("*.so", "*.o", "*_prj"))
    return target


def _pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("PWNED*")]


# ----------------------------------------------------------------------------- 1. paths never reach a compiler


def test_a_project_under_a_hostile_path_simulates_and_runs_nothing(golden, x, tmp_path, monkeypatch):
    expected = run_csim(load_manifest(golden), x)
    hostile = _copy(golden, tmp_path / HOSTILE / "prj")
    monkeypatch.setenv("FKHLS_CACHE_DIR", str(tmp_path / HOSTILE / "cache"))  # the cache path too
    monkeypatch.chdir(tmp_path)
    manifest = load_manifest(hostile)
    assert_array_equal(run_csim(manifest, x), expected)
    from fkhls.csim.harness import run_fault_harness

    faulty = run_fault_harness(manifest, input_words(manifest, x), [[], [("w2", 3, 7)]])
    assert_array_equal(faulty[0], expected)
    assert not np.array_equal(faulty[1], expected)
    assert _pwned(tmp_path, ROOT) == []


def test_the_standalone_build_script_works_under_a_hostile_path(golden, x, tmp_path):
    from fkhls.csim.inject import inject_bits

    faulty = inject_bits(golden, tmp_path / "faulty", [("w2", 0, 5)]).project_dir
    moved = tmp_path / HOSTILE / "faulty"
    moved.parent.mkdir()
    os.replace(faulty, moved)
    subprocess.run(["bash", str(moved / "build_csim.sh")], check=True, capture_output=True, cwd=tmp_path)
    low = run_binary(moved / "fkhls_csim", input_words(load_manifest(moved), x))
    assert_array_equal(low, run_binary(build_csim(load_manifest(moved)), input_words(load_manifest(moved), x)))
    assert _pwned(tmp_path, ROOT) == []


@pytest.mark.parametrize("name", ['with"quote', "back\\slash", "new\nline"])
def test_export_and_inject_refuse_paths_hls4ml_would_paste_into_cpp(golden, tmp_path, name):
    from fkhls.csim.inject import inject_bits
    from fkhls.project.export import export_model

    with pytest.raises(ProjectError, match="hls4ml's build_lib.sh|control character"):
        export_model(models.dense_model(), tmp_path / name / "prj")
    with pytest.raises(ProjectError, match="hls4ml's build_lib.sh|control character"):
        inject_bits(golden, tmp_path / name / "faulty", [("w2", 0, 5)])
    assert list(tmp_path.iterdir()) == []  # refused before hls4ml (or anything) wrote a file


# ----------------------------------------------------------------------------- 4. damaged weight files


def _damage(project: Path, array: str, edit) -> Path:
    path = project / "firmware" / "weights" / f"{array}.txt"
    path.write_text(edit(path.read_text()))
    return path


@pytest.mark.parametrize("how, error, message", [
    ("half", ProjectError, r"w2\.txt'? holds 40 values, w2 has 80"),
    ("extra", ProjectError, r"w2\.txt'? holds 1080 values, w2 has 80"),
    ("off grid", OffGridError, r"w2\.txt.*\[\(0,\)\] = 0\.015625 is not representable by ap_fixed<8,3>"),
    ("out of range", OffGridError, r"w2\.txt.*\[\(1,\)\] = 4\.0 is not representable by ap_fixed<8,3>"),
    ("not a number", ProjectError, r"w2\.txt'? holds a value that is not a decimal literal"),
    ("two lines", ProjectError, r"w2\.txt'? spans several lines"),
])
def test_damaged_weight_files_are_refused_before_any_csim_run(golden, x, tmp_path, how, error, message):
    project = _copy(golden, tmp_path / "prj")
    edits = {
        "half": lambda t: ", ".join(t.split(", ")[:40]),
        "extra": lambda t: t + ", 0" * 1000,
        "off grid": lambda t: ", ".join(["0.015625", *t.split(", ")[1:]]),
        "out of range": lambda t: ", ".join([t.split(", ")[0], "4.0", *t.split(", ")[2:]]),
        "not a number": lambda t: t.replace(",", ", x", 1),
        "two lines": lambda t: t.replace(", ", "\n", 1),
    }
    _damage(project, "w2", edits[how])
    manifest = load_manifest(project)
    with pytest.raises(error, match=message):
        check_weight_files(manifest)
    with pytest.raises(error, match=message):
        run_csim(manifest, x)


@pytest.mark.parametrize("count", [40, 1080])
def test_the_cpp_loader_never_reads_or_writes_past_an_array(golden, x, tmp_path, count):
    """Bypassing the Python check (a file changed after the build), the C-sim stops with a message, exit 4."""
    project = _copy(golden, tmp_path / "prj")
    manifest = load_manifest(project)
    binary = build_csim(manifest)
    _damage(project, "w2", lambda t: ", ".join((t.split(", ") * 20)[:count]))
    with pytest.raises(BuildError, match=rf"exit 4\).*w2\.txt holds {count} values, its array has 80"):
        run_binary(binary, input_words(manifest, x))


# ----------------------------------------------------------------------------- 6. the compile cache


def test_a_damaged_cached_binary_is_rebuilt(golden, x, tmp_path, monkeypatch):
    monkeypatch.setenv("FKHLS_CACHE_DIR", str(tmp_path / "cache"))
    manifest = load_manifest(golden)
    first = build_csim(manifest)
    expected = run_binary(first, input_words(manifest, x))
    digest = first.path.with_name(first.path.name + ".sha256")
    assert digest.read_text().strip() == sha256_file(first.path)
    assert build_csim(manifest).cached
    for damage in ("truncate", "flip a byte"):
        data = first.path.read_bytes()
        if damage == "truncate":
            first.path.write_bytes(data[: len(data) // 3])
        else:
            middle = len(data) // 2
            first.path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
        again = build_csim(manifest)
        assert not again.cached and again.path == first.path, damage
        assert digest.read_text().strip() == sha256_file(again.path)
        assert_array_equal(run_binary(again, input_words(manifest, x)), expected)
    assert [p.name for p in (tmp_path / "cache" / "csim").iterdir()] == [first.path.parent.name]  # nothing left over


@pytest.mark.parametrize("kind", ["a file", "unwritable"])
def test_an_unusable_cache_directory_is_one_clear_error(golden, tmp_path, monkeypatch, kind):
    if kind == "a file":
        cache = tmp_path / "cache"
        cache.write_text("not a directory")
    else:
        cache = tmp_path / "ro"
        cache.mkdir()
        cache.chmod(0o555)
        if os.access(cache, os.W_OK):  # root ignores modes: a directory nobody may create files in
            cache = Path("/proc/fkhls-cache")
    monkeypatch.setenv("FKHLS_CACHE_DIR", str(cache))
    with pytest.raises(BuildError, match=rf"FKHLS_CACHE_DIR '{cache}' is not (a usable directory|writable)"):
        build_csim(load_manifest(golden))


# ----------------------------------------------------------------------------- 7. manifest and inputs


def _edit_manifest(project: Path, edit) -> None:
    path = project / "fkhls.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _kernel(data: dict, name: str = "d1") -> dict:
    return next(layer for layer in data["layers"] if layer["name"] == name)["kernel"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: _kernel(d)["type"].update(width="8"), r"field layers\[1\]\.kernel\.type\.width is '8'; expected an "
                                                     r"integer in 1\.\.62"),
    (lambda d: _kernel(d)["type"].update(width=0), r"width is 0; expected an integer in 1\.\.62"),
    (lambda d: _kernel(d).update(keras_shape=[10, "8"]), r"keras_shape\[1\] is '8'"),
    (lambda d: _kernel(d).update(size=81), r"kernel\.size is 81; expected an integer in 80\.\.80"),
    (lambda d: d.update(project_name='x(); system("touch PWNED_4"); //'), r"project_name is .*a C identifier"),
    (lambda d: d.update(layers={}), r"field layers is \{\}; expected a non-empty list"),
    (lambda d: d.update(input_shape=None), r"field input_shape is None"),
    (lambda d: d.update(model_file="../../etc/passwd"), r"model_file is .*inside the project"),
    (lambda d: d.pop("output_var"), r"field output_var is missing"),
])
def test_a_manifest_field_of_the_wrong_type_or_range_is_refused(golden, tmp_path, edit, message):
    project = _copy(golden, tmp_path / "prj")
    _edit_manifest(project, edit)
    with pytest.raises(ProjectError, match=message):
        load_manifest(project)


def test_a_hand_edited_width_is_refused_not_given_wrong_coordinates(golden, tmp_path):
    project = _copy(golden, tmp_path / "prj")
    _edit_manifest(project, lambda d: _kernel(d)["type"].update(width=9, integer=4, fractional=5, cpp="ap_fixed<9,4>"))
    with pytest.raises(ProjectError, match=r"defines\.h declares weight2_t as ap_fixed<8,3>, the manifest says "
                                           r"ap_fixed<9,4> for w2"):
        load_manifest(project)


@pytest.mark.parametrize("values, message", [
    (lambda x: x.astype(np.complex128), r"are complex \(complex128\)"),
    (lambda x: x.astype(str), r"have dtype <U\d+; expected a numeric array"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), r"\[\(0, 3\)\] = nan is not"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 4, np.inf, x), r"\[\(0, 4\)\] = inf is not"),
])
def test_complex_non_numeric_and_non_finite_inputs_are_refused(golden, x, values, message):
    with pytest.raises(FkhlsError, match=message):
        run_csim(load_manifest(golden), values(x))


def test_the_trace_harness_refuses_a_fault_record_outside_an_array(golden, x, tmp_path):
    from fkhls.csim.trace import build_trace_harness, run_trace

    manifest = load_manifest(golden)
    x_raw = input_words(manifest, x)
    traces = run_trace(manifest, x_raw, [("w2", 79, 7)])
    assert_array_equal(traces[manifest.output_var].words.shape, (len(x), 3))
    binary = build_trace_harness(manifest)
    x_raw.tofile(tmp_path / "x.bin")
    for element, bit in ((80, 0), (-1, 0), (0, 8)):  # w2 is ap_fixed<8,3>[80]
        np.array([0, element, bit], dtype=np.int64).tofile(tmp_path / "faults.bin")
        result = build.run_program(binary, [str(len(x)), str(tmp_path / "x.bin"), str(tmp_path / "faults.bin"), "1",
                                            str(tmp_path / "trace.bin"), str(tmp_path / "layout.txt")])
        assert result.returncode == 2, (element, bit, result.returncode)
        assert f"element {element} bit {bit} is outside an array of 80 8-bit words" in result.stderr
