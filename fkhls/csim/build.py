"""Build and run the standalone C simulation of a project with g++ (no Vivado), exchanging raw words.

The binary is rendered from hls_templates/csim_main.cpp.j2, compiled against the ap_types
headers hls4ml ships inside the project, and cached by a hash of everything that goes into
the compile, so repeated calls do not recompile. Weights are read at run time from the
project's ``firmware/weights/*.txt`` (hls4ml's C-sim path), so the same binary serves a
project whose .txt files were rewritten only if the headers are unchanged; the hash covers both.

No path reaches the compiler as code: ``WEIGHTS_DIR`` is the fixed relative ``firmware/weights``,
include paths are relative, g++ runs in the project directory, and every binary runs with the
project as its working directory (``run_program``), so any directory name a user can create works.
A cached binary is trusted only if its sha256 (recorded next to it at build time) still matches;
otherwise it is rebuilt.
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

from fkhls.core.files import sha256_file
from fkhls.core.errors import BuildError, ProjectError
from fkhls.core.fixedpoint import to_raw, wrap_raw
from fkhls.project.manifest import Manifest, load_manifest
from fkhls.project.weights import check_weight_files
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


def _usable_cache_dir() -> Path:
    """``cache_root()/csim``, created if needed; a clear error when it is not a writable directory."""
    root = cache_root()
    source = "FKHLS_CACHE_DIR" if os.environ.get("FKHLS_CACHE_DIR") else "the compile cache"
    directory = root / "csim"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"{source} {str(root)!r} is not a usable directory ({exc.strerror or exc}); "
                         "set FKHLS_CACHE_DIR to a writable directory") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BuildError(f"{source} {str(root)!r} is not writable; set FKHLS_CACHE_DIR to a writable directory")
    return directory


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
    """A compiled C-sim program; it reads the weights of ``project`` (its working directory when run)."""

    path: Path
    source: Path
    cached: bool
    project: Path


# The only macro and include paths the compiler sees: fixed, relative to the project (g++ runs there).
# The program reads firmware/weights/*.txt relative to its working directory, the project.
PROJECT_FLAGS = ('-DWEIGHTS_DIR="firmware/weights"', "-I.", "-Ifirmware", "-Ifirmware/ap_types")
DIGEST_SUFFIX = ".sha256"




def _intact(binary: Path) -> bool:
    """The cached binary still has the sha256 recorded when it was built."""
    try:
        recorded = binary.with_name(binary.name + DIGEST_SUFFIX).read_text().strip()
        return binary.is_file() and recorded == sha256_file(binary)
    except OSError:
        return False


def _discard(build_dir: Path) -> None:
    """Move a damaged cache entry aside (atomic) and delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".damaged-{build_dir.name}-", dir=build_dir.parent))
    try:
        os.replace(build_dir, trash / "entry")
    except OSError:
        pass  # gone already (another process discarded it)
    shutil.rmtree(trash, ignore_errors=True)


# Source keys whose weight files passed check_weight_files in this process.
_CHECKED: set[str] = set()


def compile_program(project: Path, source_text: str, name: str, extra_flags: tuple[str, ...] = ()) -> CsimBinary:
    """Compile a generated main (one TU with the project's top function), cached by content hash.

    Every C-sim program is built here, so this is where a damaged project is refused
    (``fkhls.project.weights.check_weight_files``) before anything runs. A cached binary whose
    sha256 no longer matches the one recorded at build time is rebuilt.
    """
    compiler = find_compiler()
    project = Path(project).resolve()
    flags = (*CXXFLAGS, optimization_flag(), *extra_flags, *PROJECT_FLAGS)
    key = _source_digest(project, source_text + "\0".join(flags) + compiler)
    if key not in _CHECKED:  # the key covers every weight file: checked once per content and process
        check_weight_files(load_manifest(project))
        _CHECKED.add(key)
    cache = _usable_cache_dir()
    build_dir = cache / f"{name}-{key}"
    binary = build_dir / name
    source = build_dir / f"{name}.cpp"
    if build_dir.exists():
        if _intact(binary):
            os.utime(binary)  # last use, for `fkhls cache prune --older-than`
            return CsimBinary(binary, source, cached=True, project=project)
        _discard(build_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        (staging / source.name).write_text(source_text)
        log = staging / "build.log"
        cmd = [compiler, *flags, str(staging / source.name), "-o", str(staging / name)]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
        log.write_text(f"cd {project}\n" + " ".join(cmd) + "\n" + result.stdout + result.stderr)
        if result.returncode != 0:
            failed = cache / f"failed-{name}-{key}"
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(staging, failed)
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:300])
            raise BuildError(f"C-sim build failed (log: {failed / 'build.log'}): {first.strip()}")
        (staging / (name + DIGEST_SUFFIX)).write_text(sha256_file(staging / name) + "\n")
        try:
            os.replace(staging, build_dir)
        except OSError:  # another process built the same key first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return CsimBinary(binary, source, cached=False, project=project)


def run_program(binary: CsimBinary | Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a C-sim program with its project as working directory (where it finds firmware/weights).

    A bare path is a program built by a project's own build_csim.sh: it runs in its own directory.
    """
    if isinstance(binary, CsimBinary):
        path, cwd = binary.path, cwd or binary.project
    else:
        path, cwd = Path(binary).resolve(), cwd or Path(binary).resolve().parent
    return subprocess.run([str(path), *args], capture_output=True, text=True, cwd=cwd)


def build_csim(manifest: Manifest) -> CsimBinary:
    """The standalone golden C-sim of a project (raw words in, raw words out)."""
    text = render("csim_main.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)))
    return compile_program(manifest.project_dir, text, "csim")


def input_words(manifest: Manifest, inputs: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Check the shape and grid of float inputs and return their raw words (samples x features)."""
    inputs = np.asarray(inputs)
    if np.iscomplexobj(inputs):
        raise ProjectError(f"{what} are complex ({inputs.dtype}); fixed-point inputs are real numbers")
    if not (np.issubdtype(inputs.dtype, np.number) or inputs.dtype == np.bool_):
        raise ProjectError(f"{what} have dtype {inputs.dtype}; expected a numeric array")
    shape = tuple(manifest.input_shape)
    if inputs.shape[1:] != shape:
        if inputs.shape == shape:
            inputs = inputs[None]
        else:
            raise ProjectError(f"{what} have shape {inputs.shape}; the model expects (N, {', '.join(map(str, shape))})")
    if inputs.shape[0] == 0:
        raise ProjectError(f"{what} hold no samples")
    raw = to_raw(manifest.input_ptype, inputs, what=what)
    return raw.reshape(inputs.shape[0], -1)


def run_binary(binary: CsimBinary | Path, x_raw: np.ndarray, extra_args: tuple[str, ...] = ()) -> np.ndarray:
    """Run a compiled C-sim on raw input words; returns (samples, outputs) unsigned low bits of each word."""
    x_raw = np.ascontiguousarray(x_raw, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="fkhls-csim-") as tmp:
        in_path, out_path = Path(tmp).resolve() / "x.bin", Path(tmp).resolve() / "y.bin"
        x_raw.tofile(in_path)
        result = run_program(binary, [str(x_raw.shape[0]), str(in_path), str(out_path), *extra_args])
        if result.returncode != 0:
            raise BuildError(f"C-sim run failed (exit {result.returncode}): {(result.stderr or result.stdout)[-500:]}")
        out = np.fromfile(out_path, dtype=np.int64)
    return out.reshape(x_raw.shape[0], -1)


def run_csim(manifest: Manifest, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the project's C-sim as raw words (samples x outputs, sign-extended)."""
    x_raw = input_words(manifest, inputs)
    binary = build_csim(manifest)
    low_bits = run_binary(binary, x_raw)
    return wrap_raw(manifest.output_ptype, low_bits)
