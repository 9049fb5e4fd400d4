"""The real ``fkhls`` entry point for tests: a subprocess ``python -m fkhls.cli``, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fkhls(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``fkhls ARGS`` in a fresh interpreter (inherits the suite's FKHLS_CACHE_DIR); text output captured."""
    return subprocess.run([sys.executable, "-m", "fkhls.cli", *[str(a) for a in args]], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def assert_error(proc: subprocess.CompletedProcess, *needles: str, code: int = 1) -> str:
    """The promise of every command: exit ``code``, no traceback, and for exit 1 exactly one stderr line
    ``fkhls: error: ...`` (the last) naming the thing (each of ``needles`` appears in it). Returns that line."""
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    if code == 1:
        # Library warnings (TF/Keras UserWarnings) may come first; the error itself is one line, the last.
        errors = [line for line in lines if line.startswith("fkhls: error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], f"expected one 'fkhls: error:' line, last: {proc.stderr}"
        line = errors[0]
    else:  # click's usage error: the usage line, a hint, then "Error: ..."
        assert lines and lines[0].startswith("Usage: "), proc.stderr
        line = lines[-1]
        assert line.startswith("Error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line
