"""Progress bars: a widget in Jupyter, text on a terminal, nothing in a log file or when turned off."""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, initial: int = 0):
    """A tqdm.auto bar (rate and ETA); disabled when ``enabled`` is False or text would go to a non-terminal."""
    from tqdm.auto import tqdm

    widget = tqdm.__module__.startswith("tqdm.notebook")  # tqdm.auto picked the Jupyter widget
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True, file=sys.stderr,
                disable=not enabled or not (widget or sys.stderr.isatty()), smoothing=0.1)
