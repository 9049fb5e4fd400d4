"""Progress bars show on a terminal (or as a Jupyter widget) and can be turned off."""

from __future__ import annotations

import io
import sys

from fkhls.core.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_on_a_terminal_and_is_off_when_asked(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(10, "campaign", "fault") as bar:
        assert not bar.disable
        bar.update(10)
    assert "campaign" in terminal.getvalue() and "10/10" in terminal.getvalue()
    terminal.truncate(0)
    with progress_bar(10, "campaign", "fault", enabled=False) as bar:
        assert bar.disable
        bar.update(10)
    assert terminal.getvalue().strip("\0") == ""


def test_no_text_bar_into_a_log_file(monkeypatch):
    log = io.StringIO()  # not a terminal: a CI log or a redirected stderr
    monkeypatch.setattr(sys, "stderr", log)
    with progress_bar(5, "crosscheck", "scenario") as bar:
        assert bar.disable
        bar.update(5)
    assert log.getvalue() == ""
