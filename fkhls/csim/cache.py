"""The compile cache (``build.cache_root()/csim``): what is in it, and removing what fkhls built there.

``fkhls.csim.build.compile_program`` keeps one directory per content hash, ``<program>-<24 hex>`` (a binary, its
source and ``build.log``; a cone harness also keeps ``golden-<24 hex>.bin``, its golden activations per input set,
``fkhls.csim.cone.golden_file``), and ``failed-<program>-<24 hex>`` for a build that failed; a killed build
can leave a ``.<program>-*`` staging directory. Only names of those three shapes are listed or
removed: anything else a user put under the cache root is left alone.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fkhls.core.errors import FkhlsError
from fkhls.csim.build import cache_root

_ENTRY_RE = re.compile(r"^(?P<failed>failed-)?(?P<program>[a-z_]+)-(?P<key>[0-9a-f]{24})$")
_STAGING_RE = re.compile(r"^\.(?P<program>[a-z_]+)-[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    program: str  # csim, fault_harness, cone_harness, trace_harness, ...
    state: str  # "built" | "failed" | "staging" (an interrupted build)
    size: int  # bytes
    modified: float  # epoch seconds of the newest file

    @property
    def age_days(self) -> float:
        return max(0.0, (time.time() - self.modified) / 86400.0)

    @property
    def project(self) -> str | None:
        """The project the entry was built from, read from its build log (None when the log has no command)."""
        log = self.path / "build.log"
        if not log.is_file():
            return None
        first = log.read_text(errors="replace").split("\n", 1)[0]  # compile_program's "cd PROJECT"
        return first[3:] if first.startswith("cd ") else None


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]


def cache_dir() -> Path:
    return cache_root() / "csim"


def cache_entries() -> list[CacheEntry]:
    """Every fkhls-built entry of the cache, oldest first."""
    root = cache_dir()
    if not root.is_dir():
        return []
    entries = []
    for path in root.iterdir():
        if not path.is_dir() or path.is_symlink():
            continue
        match = _ENTRY_RE.match(path.name)
        staging = _STAGING_RE.match(path.name)
        if not match and not staging:
            continue
        state = "staging" if staging else "failed" if match["failed"] else "built"
        files = _files(path)
        modified = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
        entries.append(CacheEntry(path, (match or staging)["program"], state, sum(p.stat().st_size for p in files),
                                  modified))
    return sorted(entries, key=lambda e: e.modified)


def prune_cache(older_than_days: float | None = None, everything: bool = False) -> list[CacheEntry]:
    """Remove fkhls-built entries older than ``older_than_days`` (or all with ``everything``); returns them."""
    if not everything and older_than_days is None:
        raise FkhlsError("say what to prune: an age in days (--older-than DAYS) or everything (--all)")
    if older_than_days is not None and not older_than_days >= 0:
        raise FkhlsError(f"--older-than {older_than_days!r} is not valid: give a number of days >= 0")
    removed = []
    for entry in cache_entries():
        if everything or entry.age_days > older_than_days:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry)
    return removed
