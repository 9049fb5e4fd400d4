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
