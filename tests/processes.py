"""Which processes are alive in a session: the tests that kill a campaign check that nothing outlives it."""

from __future__ import annotations

import os
from pathlib import Path


def session_processes(sid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes of session ``sid`` (a campaign started with start_new_session, and every
    process it started), as (pid, the start of its command line), read from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
        if int(fields[3]) == sid and fields[0] not in (b"Z", b"X"):
            out.append((int(entry), cmd[:120]))
    return out
