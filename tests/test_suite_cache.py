"""Issue 14.7: the suite compiles into its own cache (``.test-cache/``), never into the user's ~/.cache/fkhls."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import DEMO_DATA as DATA, SUITE_CACHE
from tests.entry import run_fkhls


def test_a_csim_built_by_the_suite_lands_in_the_suite_cache(demo_project_session, tmp_path, monkeypatch):
    from fkhls.csim.build import build_csim, cache_root

    assert cache_root() == SUITE_CACHE
    np.save(tmp_path / "x.npy", np.load(DATA / "demo_inputs.npy")[:3])
    # The user's cache is $XDG_CACHE_HOME/fkhls: point it at an empty directory the build must leave alone
    # (cache keys do not depend on where a project sits, so the real user cache may hold the same entry).
    user_home = tmp_path / "user-cache-home"
    user_home.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_home))
    proc = run_fkhls("csim", demo_project_session.project_dir, "--inputs", tmp_path / "x.npy", "-o",
                     tmp_path / "y.npy")  # a subprocess, as the CLI tests run: it inherits the suite's cache
    assert proc.returncode == 0, proc.stderr
    binary = build_csim(demo_project_session)
    assert binary.cached, "the subprocess built somewhere else than this process looks"
    assert SUITE_CACHE in binary.path.parents and binary.path.is_file()
    monkeypatch.delenv("FKHLS_CACHE_DIR")
    user_cache = cache_root()  # where the user's builds would go: $XDG_CACHE_HOME/fkhls
    assert user_cache == user_home / "fkhls" and user_cache != SUITE_CACHE
    assert list(user_home.iterdir()) == [], "the suite wrote into the user's cache"
    assert Path(user_cache).resolve() not in binary.path.resolve().parents
