"""Render the Jinja2 templates in hls_templates/: all generated C++, headers and scripts come from there.

The repository keeps ``hls_templates/`` at its top level; the wheel ships the same files as
package data ``fkhls/hls_templates`` (pyproject.toml maps one to the other). They are found
through importlib.resources in an installed package and next to the package in a source
checkout run with PYTHONPATH, so both read the very same files.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2

from fkhls import __version__
from fkhls.core.errors import FkhlsError

_SUFFIX = ".j2"


@lru_cache(maxsize=1)
def template_root() -> Traversable:
    """The directory of templates: the installed package data, else the checkout's top-level folder."""
    installed = resources.files("fkhls").joinpath("hls_templates")
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[2] / "hls_templates"
    if checkout.is_dir():
        return checkout
    raise FkhlsError(f"fkhls templates not found (looked in {installed} and {checkout}): the installation is broken; "
                     "reinstall fkhls from a wheel or a clean checkout")


def template_names() -> list[str]:
    """Every template file shipped (including the ``_`` partials other templates include)."""
    return sorted(entry.name for entry in template_root().iterdir() if entry.name.endswith(_SUFFIX))


def _load(name: str) -> str:
    entry = template_root().joinpath(name)
    if not entry.is_file():
        raise jinja2.TemplateNotFound(name)
    return entry.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),  # reads through importlib.resources: works from any install
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, never an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # C++ and shell text, not HTML: values are validated by the callers, never escaped
    )


def render(name: str, **context) -> str:
    """Render ``hls_templates/<name>`` with ``context`` (plus the fkhls version)."""
    return _environment().get_template(name).render(fkhls_version=__version__, **context)
