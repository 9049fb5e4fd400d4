"""``fkhls cache`` / ``cache prune`` on a cache of its own, and ``fkhls --version``."""

from __future__ import annotations

import os
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from fkhls.cli import main

HEX = "0123456789abcdef01234567"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache with two built entries (one 10 days old), a failed build, a staging leftover and a user's file."""
    root = tmp_path / "cache"
    monkeypatch.setenv("FKHLS_CACHE_DIR", str(root))
    csim = root / "csim"
    entries = {}
    for name, age_days in (("csim-" + HEX, 0), ("cone_harness-" + HEX[::-1], 10), ("failed-csim-" + "f" * 24, 3),
                           (".fault_harness-ab12cd", 1)):
        path = csim / name
        path.mkdir(parents=True)
        (path / "build.log").write_text(f"cd /somewhere/proj_{age_days}\n"  # as compile_program writes it
                                        'g++ -std=c++17 -DWEIGHTS_DIR="firmware/weights" -I. x.cpp\n')
        (path / "payload").write_bytes(b"x" * 2048)
        stamp = time.time() - age_days * 86400
        for file in path.iterdir():
            os.utime(file, (stamp, stamp))
        entries[name] = path
    (csim / "notes-of-mine").mkdir()
    (csim / "notes-of-mine" / "keep.txt").write_text("mine")
    (root / "other.txt").write_text("mine too")
    return root, entries


def test_cache_shows_location_size_age_and_project(cache):
    root, entries = cache
    result = invoke("cache")
    assert result.exit_code == 0, result.output
    assert str(root / "csim") in result.output
    assert "4 entries" in result.output
    for name in entries:
        assert name in result.output
    assert "/somewhere/proj_10" in result.output and "failed" in result.output and "staging" in result.output
    assert "notes-of-mine" not in result.output
    line = next(l for l in result.output.splitlines() if l.startswith("cone_harness-"))
    assert "10.0" in line  # age in days


def test_prune_older_than_removes_only_old_fkhls_entries(cache):
    root, entries = cache
    result = invoke("cache", "prune", "--older-than", "2")
    assert result.exit_code == 0, result.output
    assert "removed 2 entries" in result.output
    assert entries["csim-" + HEX].is_dir() and entries[".fault_harness-ab12cd"].is_dir()
    assert not entries["cone_harness-" + HEX[::-1]].exists() and not entries["failed-csim-" + "f" * 24].exists()
    assert (root / "csim" / "notes-of-mine" / "keep.txt").is_file() and (root / "other.txt").is_file()


def test_prune_all_keeps_what_fkhls_did_not_build(cache):
    root, entries = cache
    assert invoke("cache", "prune", "--all").exit_code == 0
    assert not any(path.exists() for path in entries.values())
    assert (root / "csim" / "notes-of-mine" / "keep.txt").is_file() and (root / "other.txt").is_file()
    assert "0 entries" in invoke("cache").output


def test_prune_needs_a_choice_and_a_valid_age(cache):
    result = invoke("cache", "prune")
    assert result.exit_code == 2 and "--older-than DAYS or --all" in result.output
    result = invoke("cache", "prune", "--older-than", "-1")
    assert result.exit_code == 2 and "--older-than" in result.output


def test_a_cache_hit_counts_as_use(tmp_path, monkeypatch, golden_demo_project):
    """Reusing a cached binary refreshes its age, so prune --older-than removes what is not used."""
    from fkhls.csim import build

    monkeypatch.setenv("FKHLS_CACHE_DIR", str(tmp_path / "c"))
    project = golden_demo_project.project_dir  # only read: the build runs there and writes into the cache
    source = "int main() { return 0; }\n"
    first = build.compile_program(project, source, "probe", ("-O0",))
    old = time.time() - 30 * 86400
    os.utime(first.path, (old, old))
    again = build.compile_program(project, source, "probe", ("-O0",))
    assert again.cached and again.path == first.path
    assert time.time() - again.path.stat().st_mtime < 3600


def test_version_prints_the_installed_tools():
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("fkhls ")
    for name in ("tensorflow", "qkeras", "hls4ml", "numpy"):
        assert f"{name} {metadata.version(name)}" in lines
    gxx = subprocess.run(["g++", "-dumpfullversion", "-dumpversion"], capture_output=True, text=True).stdout.strip()
    assert f"g++ {gxx}" in lines
