"""The tool versions fkhls runs with (installed, not assumed): recorded in manifests, printed by ``--version``."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata

from fkhls import __version__

# Exactness depends on these: QKeras's quantizers, hls4ml's writers and ap_types, the compiler of the C-sim.
PYTHON_TOOLS = ("tensorflow", "qkeras", "hls4ml", "numpy")


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def pinned_versions() -> dict[str, str]:
    """``name -> version`` pinned in fkhls's own metadata (empty when run from a checkout without install)."""
    try:
        requirements = metadata.requires("fkhls") or []
    except metadata.PackageNotFoundError:
        return {}
    pins = {}
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*==\s*([^;\s]+)\s*(;.*)?$", requirement)
        if match and "extra ==" not in (match[3] or ""):
            pins[match[1].lower()] = match[2]
    return pins


def compiler_version(compiler: str) -> str | None:
    """``g++ -dumpfullversion`` (None when the compiler is not on PATH)."""
    path = shutil.which(compiler)
    if path is None:
        return None
    result = subprocess.run([path, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True)
    return result.stdout.strip() or None if result.returncode == 0 else None


def python_tool_versions() -> dict[str, str | None]:
    """The Python tools' installed versions plus fkhls's own (no import of any of them)."""
    return {name: installed_version(name) for name in PYTHON_TOOLS} | {"fkhls": __version__}
