"""Pool workers that never outlive the campaign that started them.

A worker of a forkserver pool is a child of the forkserver, not of the campaign process, so
when the campaign is killed (``kill -9``: no cleanup runs) nothing tells it. ``install`` (the
pool initializer calls it) makes a worker exit, after killing its own children (C-sim
binaries), as soon as the campaign process is gone: a thread waits on a pidfd of that process
(polling where pidfds are missing), and on Linux ``PR_SET_PDEATHSIG`` also covers a worker
whose direct parent dies. SIGTERM and SIGINT do the same. Once the workers are gone the
forkserver and the resource tracker see their pipes close and exit by themselves.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time

__all__ = ["install", "kill_children", "process_alive"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def kill_children() -> None:
    """SIGKILL every direct child of this process (the C-sim binaries a worker started)."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == me:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def _leave(code: int) -> None:
    kill_children()
    os._exit(code)


def _wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux) or already gone
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable once the process has exited
        return
    while process_alive(pid):
        time.sleep(0.5)


def _watch(pid: int) -> None:
    _wait_for_exit(pid)
    _leave(1)


def _on_signal(signum, frame) -> None:  # noqa: ARG001 (signal handler signature)
    _leave(128 + signum)


def install(campaign_pid: int) -> None:
    """Make this worker process exit (children first) when ``campaign_pid`` exits or on SIGTERM/SIGINT."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog thread below still covers it
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    threading.Thread(target=_watch, args=(campaign_pid,), name="fkhls-parent-watch", daemon=True).start()
    if not process_alive(campaign_pid):  # died before the watch started
        _leave(1)
