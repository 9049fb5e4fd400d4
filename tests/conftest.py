"""Suite-wide set-up shared by every test module.

The compile cache is the suite's own (``.test-cache/`` in the checkout), never the user's
``~/.cache/fkhls``: tests neither read binaries a user built nor leave theirs behind. Set at
import time so pytest-xdist workers and the subprocesses tests start inherit it.
"""

from __future__ import annotations

import os
from pathlib import Path

SUITE_CACHE = Path(__file__).resolve().parents[1] / ".test-cache" / "csim"
os.environ["FKHLS_CACHE_DIR"] = str(SUITE_CACHE)


# ----------------------------------------------------------------------------- shared golden projects
# Exported once per test process (pytest-xdist: once per worker) instead of once per test file.
# They are read-only: a test that edits a project copies it first (``copy_project``); the teardown
# fails loudly if any test changed a file of a shared project.

import hashlib  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

DEMO_DATA = Path(__file__).resolve().parents[1] / "fkhls" / "data"


def project_checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under a project directory (what "unchanged" means for a shared project)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def copy_project(project: Path, target: Path) -> Path:
    """A private, editable copy of a shared project (its manifest reads the new location)."""
    shutil.copytree(project, target)
    return target


@pytest.fixture(scope="session")
def golden_demo_project(tmp_path_factory):
    """The bundled demo model (fkhls/data/demo_model.h5) exported with the default options, as a Manifest.

    Vivado, io_parallel, Latency, reuse factor 1. Read-only: copy it (``copy_project``) to edit it.
    """
    from fkhls.project.export import ExportOptions, export_model

    manifest = export_model(DEMO_DATA / "demo_model.h5", tmp_path_factory.mktemp("golden") / "demo", ExportOptions())
    before = project_checksums(manifest.project_dir)
    yield manifest
    after = project_checksums(manifest.project_dir)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"a test modified the shared golden demo project (copy it first): {changed[:5]}"


@pytest.fixture(scope="session")
def demo_inputs():
    """The bundled demo inputs (1000 samples on the ap_fixed<16,6> grid); slice what a test needs."""
    import numpy as np

    return np.load(DEMO_DATA / "demo_inputs.npy")


# ----------------------------------------------------------------------------- issue 14: shared projects
# Exported once per session and only read by tests (a test that edits one works on a copy).

import numpy as np  # noqa: E402


@pytest.fixture(scope="session")
def demo_project_session(golden_demo_project):
    """The shared golden demo project (one export per process): read-only, copy it to edit."""
    return golden_demo_project


@pytest.fixture(scope="session")
def dense_project_session(tmp_path_factory):
    """``tests.models.dense_model`` exported with the defaults, with 24 inputs (x.npy) and labels (y.npy)."""
    from fkhls.project.export import ExportOptions, export_model

    from tests import models

    base = tmp_path_factory.mktemp("dense_session")
    model = models.build("dense")
    manifest = export_model(model, base / "dense", ExportOptions())
    np.save(base / "x.npy", models.inputs_for(model, n=24, seed=5))
    np.save(base / "y.npy", np.arange(24) % 3)
    return manifest.project_dir, base / "x.npy", base / "y.npy"


def edited_copy(project: Path, target: Path, old: str, new: str, file: str = "firmware/defines.h") -> Path:
    """A copy of ``project`` with one line of ``file`` edited by hand (the original stays as it is)."""
    import shutil

    shutil.copytree(project, target)
    path = target / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
    return target
