"""Build and run the standalone C simulation of a project with g++ (no Vivado), exchanging raw words.

The binary is rendered from hls_templates/csim_main.cpp.j2, compiled against the ap_types
headers hls4ml ships inside the project, and cached by a hash of everything that goes into
the compile, so repeated calls do not recompile. Weights are read at run time from the
project's ``firmware/weights/*.txt`` (hls4ml's C-sim path), so the same binary serves a
project whose .txt files were rewritten only if the headers are unchanged; the hash covers both.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fkhls.core.errors import BuildError, ProjectError
from fkhls.core.fixedpoint import to_raw, type_from_dict, wrap_raw
from fkhls.project.manifest import Manifest
from fkhls.core.templates import render

CXX = os.environ.get("FKHLS_CXX", "g++")
CXXFLAGS = ("-std=c++17", "-w")


def optimization_flag() -> str:
    """-O2 unless $FKHLS_CXX_OPT says otherwise (tests that run few samples build faster at -O0)."""
    return os.environ.get("FKHLS_CXX_OPT", "-O2")


def cache_root() -> Path:
    """Where compiled C-sims live: $FKHLS_CACHE_DIR, else $XDG_CACHE_HOME/fkhls, else ~/.cache/fkhls."""
    if os.environ.get("FKHLS_CACHE_DIR"):
        return Path(os.environ["FKHLS_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fkhls"


def find_compiler() -> str:
    path = shutil.which(CXX)
    if path is None:
        raise BuildError(f"C++ compiler {CXX!r} not found on PATH: install g++ (or set FKHLS_CXX)")
    return path


def _source_digest(project: Path, extra: str) -> str:
    """Hash of every firmware source and weight file plus the generated main and flags."""
    digest = hashlib.sha256(extra.encode())
    firmware = project / "firmware"
    for path in sorted(firmware.rglob("*")):
        if path.is_file() and path.suffix in (".h", ".cpp", ".hpp", ".txt"):
            digest.update(str(path.relative_to(firmware)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class CsimBinary:
    path: Path
    source: Path
    cached: bool


def compile_program(project: Path, source_text: str, name: str, extra_flags: tuple[str, ...] = ()) -> CsimBinary:
    """Compile a generated main (one TU with the project's top function), cached by content hash."""
    compiler = find_compiler()
    project = project.resolve()
    weights_dir = project / "firmware" / "weights"
    flags = (*CXXFLAGS, optimization_flag(), *extra_flags, f'-DWEIGHTS_DIR="{weights_dir}"', f"-I{project}", f"-I{project / 'firmware'}",
             f"-I{project / 'firmware' / 'ap_types'}")
    key = _source_digest(project, source_text + "\0".join(flags) + compiler)
    build_dir = cache_root() / "csim" / f"{name}-{key}"
    binary = build_dir / name
    source = build_dir / f"{name}.cpp"
    if binary.is_file():
        os.utime(binary)  # last use, for `fkhls cache prune --older-than`
        return CsimBinary(binary, source, cached=True)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=build_dir.parent))
    try:
        (staging / source.name).write_text(source_text)
        log = staging / "build.log"
        cmd = [compiler, *flags, str(staging / source.name), "-o", str(staging / name)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        log.write_text(" ".join(cmd) + "\n" + result.stdout + result.stderr)
        if result.returncode != 0:
            failed = build_dir.parent / f"failed-{name}-{key}"
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(staging, failed)
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:300])
            raise BuildError(f"C-sim build failed (log: {failed / 'build.log'}): {first.strip()}")
        try:
            os.replace(staging, build_dir)
        except OSError:  # another process built the same key first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return CsimBinary(binary, source, cached=False)


def build_csim(manifest: Manifest) -> CsimBinary:
    """The standalone golden C-sim of a project (raw words in, raw words out)."""
    text = render("csim_main.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)))
    return compile_program(manifest.project_dir, text, "csim")


def input_words(manifest: Manifest, inputs: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Check the shape and grid of float inputs and return their raw words (samples x features)."""
    inputs = np.asarray(inputs)
    shape = tuple(manifest.input_shape)
    if inputs.shape[1:] != shape:
        if inputs.shape == shape:
            inputs = inputs[None]
        else:
            raise ProjectError(f"{what} have shape {inputs.shape}; the model expects (N, {', '.join(map(str, shape))})")
    if inputs.shape[0] == 0:
        raise ProjectError(f"{what} hold no samples")
    raw = to_raw(type_from_dict(manifest.input_type), inputs, what=what)
    return raw.reshape(inputs.shape[0], -1)


def run_binary(binary: Path, x_raw: np.ndarray, extra_args: tuple[str, ...] = ()) -> np.ndarray:
    """Run a compiled C-sim on raw input words; returns (samples, outputs) unsigned low bits of each word."""
    x_raw = np.ascontiguousarray(x_raw, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="fkhls-csim-") as tmp:
        in_path, out_path = Path(tmp) / "x.bin", Path(tmp) / "y.bin"
        x_raw.tofile(in_path)
        cmd = [str(binary), str(x_raw.shape[0]), str(in_path), str(out_path), *extra_args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"C-sim run failed (exit {result.returncode}): {(result.stderr or result.stdout)[-500:]}")
        out = np.fromfile(out_path, dtype=np.int64)
    return out.reshape(x_raw.shape[0], -1)


def run_csim(manifest: Manifest, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the project's C-sim as raw words (samples x outputs, sign-extended)."""
    x_raw = input_words(manifest, inputs)
    binary = build_csim(manifest)
    low_bits = run_binary(binary.path, x_raw)
    return wrap_raw(type_from_dict(manifest.output_type), low_bits)
