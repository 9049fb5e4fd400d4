"""Render the Jinja2 templates in hls_templates/: all generated C++, headers and scripts come from there."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from fkhls import __version__

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "hls_templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, never an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context) -> str:
    """Render ``hls_templates/<name>`` with ``context`` (plus the fkhls version)."""
    return _environment().get_template(name).render(fkhls_version=__version__, **context)


def template_path(name: str) -> Path:
    return TEMPLATE_DIR / name
