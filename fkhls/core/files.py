"""Safe file writing: nothing a user owns is overwritten without --force, nothing is left half-written.

One rule for every directory fkhls writes (``check_output_dir``): never the golden project
(or inside it, or around it), never a home directory, the working directory, ``/`` or one
of their parents; an existing directory is used only when it is empty or when fkhls wrote
it (its ``Ownership`` marker is there), and replaced only with ``force``. A directory
holding anything else is refused, ``force`` or not. Single files follow ``check_output_file``.
"""

from __future__ import annotations

import errno
import hashlib
import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from fkhls.core.errors import ProjectError

LOCK_NAME = ".fkhls.lock"


@dataclass(frozen=True)
class Ownership:
    """How fkhls recognizes a directory it wrote: ``marker`` is a JSON object holding every one of ``keys``."""

    name: str  # what the directory is, for messages
    marker: str
    keys: tuple[str, ...]


PROJECT = Ownership("project", "fkhls.json", ("schema", "project_name", "layers"))
CAMPAIGN = Ownership("campaign results directory", "campaign.json", ("schema", "project_hash", "n_shards"))
CROSSCHECK = Ownership("cross-check report", "summary.json",
                       ("reference", "engine", "all_bit_exact", "scenario_results"))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (inputs, weights, binaries: what fkhls checks before trusting)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's own is 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_destination(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """A temporary sibling of ``path`` (``.NAME.*``) for the body to write; renamed over ``path`` when the body
    succeeds, removed when it fails, so readers never see a partial file. ``mode``: the permission bits
    (default: what a plain ``open()`` gives; e.g. 0o755 for a program)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (``atomic_destination``)."""
    with atomic_destination(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Write a binary file atomically (``atomic_destination``); ``mode`` as there."""
    with atomic_destination(path, mode) as tmp:
        tmp.write_bytes(data)


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` atomically (``atomic_destination``)."""
    with atomic_destination(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def atomic_savez(path: str | Path, arrays: dict) -> None:
    """``np.savez`` atomically (``atomic_destination``)."""
    with atomic_destination(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_array(path: str | Path, what: str = "inputs") -> np.ndarray:
    """A .npy array, with one clear error for a missing, empty, truncated or pickled file."""
    try:
        with open(path, "rb") as handle:
            return np.load(handle, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # an empty file is EOFError (click would print only "Aborted!")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise ProjectError(f"cannot read {what} {str(path)!r} (expected a .npy array): {reason}") from None


def is_owned(path: str | Path, owner: Ownership) -> bool:
    """True when ``path`` holds ``owner``'s marker: a readable JSON object with all of its keys."""
    marker = Path(path) / owner.marker
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in owner.keys)


def _around(a: Path, b: Path) -> bool:
    """``a`` is ``b``, inside it, or one of its parents."""
    return a == b or b in a.parents or a in b.parents


def _protected(resolved: Path) -> str | None:
    """Why a directory may never be written by fkhls, or None."""
    if resolved == Path(resolved.anchor):
        return "it is the filesystem root"
    for name, place in (("your home directory", Path.home()), ("the working directory", Path.cwd())):
        try:
            place = place.resolve()
        except OSError:
            continue
        if resolved == place or resolved in place.parents:
            return f"it is {name}" if resolved == place else f"it contains {name}"
    return None


def _foreign(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)


def classify_output_dir(path: str | Path, what: str = "output directory", *, owner: Ownership | None = None,
                        golden: str | Path | None = None) -> str:
    """``"absent"``, ``"empty"`` or ``"owned"`` (fkhls wrote it); refuses any other directory with a message.

    ``golden``: the project the command reads; the output may not be it, inside it or around it.
    """
    path = Path(path)
    resolved = path.resolve()
    reason = _protected(resolved)
    if reason:
        raise ProjectError(f"{what} {str(path)!r} is refused: {reason}; fkhls writes only new, empty or "
                           "fkhls-made directories")
    if golden is not None and _around(resolved, Path(golden).resolve()):
        raise ProjectError(f"{what} {str(path)!r} must be outside the golden project {str(golden)!r} "
                           "(and not contain it): the golden project is only read")
    if path.exists() and not path.is_dir():
        raise ProjectError(f"{what} {str(path)!r} exists and is not a directory")
    if not path.exists():
        return "absent"
    entries = _foreign(path)
    if not entries:
        return "empty"
    if owner is not None and is_owned(path, owner):
        return "owned"
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    made = f"an fkhls {owner.name} (with its {owner.marker})" if owner else "anything fkhls made"
    raise ProjectError(f"{what} {str(path)!r} holds files fkhls did not write ({shown}): it is not {made}; "
                       "choose a new or empty directory (--force replaces only what fkhls made)")


def check_output_dir(path: str | Path, force: bool, what: str = "output directory", *,
                     owner: Ownership | None = None, golden: str | Path | None = None) -> Path:
    """The one rule for a directory fkhls is about to (re)write; see the module docstring."""
    state = classify_output_dir(path, what, owner=owner, golden=golden)
    if state == "owned" and not force:
        raise ProjectError(f"{what} {str(path)!r} holds an earlier fkhls {owner.name}; pass --force to replace it")
    return Path(path)


def check_output_file(path: str | Path, force: bool, what: str = "output", *,
                      golden: str | Path | None = None) -> Path:
    """A single output file: never inside the golden project, never over an existing file without ``force``."""
    path = Path(path)
    if golden is not None and _around(path.resolve(), Path(golden).resolve()):
        raise ProjectError(f"{what} {str(path)!r} must be outside the golden project {str(golden)!r}: "
                           "the golden project is only read")
    if path.is_dir():
        raise ProjectError(f"{what} {str(path)!r} is a directory; name a file")
    if path.exists() and not force:
        raise ProjectError(f"{what} {str(path)!r} exists; pass --force to replace it")
    return path


@contextmanager
def directory_lock(directory: str | Path, what: str = "output directory") -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (``.fkhls.lock``, flock) for the body; a second holder is refused."""
    lock_path = Path(directory) / LOCK_NAME
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ProjectError(f"{what} {str(directory)!r} is in use by another fkhls process "
                                   "(wait for it to finish, or use another directory)") from None
            raise
        yield lock_path
    finally:
        handle.close()


@contextmanager
def staged_directory(target: str | Path, force: bool, what: str = "output directory", *,
                     owner: Ownership | None = PROJECT, golden: str | Path | None = None) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it into place only when the body succeeds.

    A failure half way leaves the target as it was (absent, or the user's old directory). The
    target follows ``check_output_dir``: only an empty or fkhls-made directory is replaced.
    """
    check_output_dir(target, force, what, owner=owner, golden=golden)
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
        check_output_dir(target, force, what, owner=owner, golden=golden)  # unchanged while we built?
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            backup.rmdir()
            os.replace(target, backup)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
