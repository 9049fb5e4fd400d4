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


# ----------------------------------------------------------------------------- issue 14: shared projects
# Exported once per session and only read by tests (a test that edits one works on a copy).

import numpy as np  # noqa: E402
import pytest  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "fkhls" / "data"


@pytest.fixture(scope="session")
def demo_project_session(tmp_path_factory):
    """The bundled demo model exported with the default options (Vivado, io_parallel, Latency)."""
    from fkhls.project.export import export_model

    return export_model(DATA / "demo_model.h5", tmp_path_factory.mktemp("demo_session") / "demo")


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
