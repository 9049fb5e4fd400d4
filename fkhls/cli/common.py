"""What every fkhls command shares: the group that turns errors into one line, exit codes, input loading."""

from __future__ import annotations

import click
import numpy as np

from fkhls import __version__
from fkhls.core.errors import FkhlsError

EXIT_MISMATCH = 3


class FkhlsGroup(click.Group):
    """Turns every FkhlsError, and every OSError about a named file, into one clear line on stderr and exit 1.

    An OSError without a file name is not about the user's paths: it stays a traceback (a bug to report).
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FkhlsError as exc:
            click.secho(f"fkhls: error: {exc}", fg="red", err=True)
            ctx.exit(1)
        except OSError as exc:
            if exc.filename is None:
                raise
            names = " -> ".join(repr(str(name)) for name in (exc.filename, exc.filename2) if name is not None)
            click.secho(f"fkhls: error: {names}: {exc.strerror or exc}", fg="red", err=True)
            ctx.exit(1)


def version_text() -> str:
    """fkhls and the tools whose exact versions bit-exactness rests on, as installed (pins noted if different)."""
    from fkhls.core.versions import compiler_version, pinned_versions, python_tool_versions
    from fkhls.csim.build import CXX

    pins = pinned_versions()
    lines = [f"fkhls {__version__}"]
    for name, version in python_tool_versions().items():
        if name == "fkhls":
            continue
        pin = pins.get(name)
        note = f"  (fkhls pins {pin})" if pin and pin != version else ""
        lines.append(f"{name} {version or 'not installed'}{note}")
    lines.append(f"{CXX} {compiler_version(CXX) or 'not found on PATH'}")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit(0)


@click.group(cls=FkhlsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show fkhls's version and the installed tensorflow, qkeras, hls4ml, numpy and g++ versions.")
def main() -> None:
    """Bridge FKeras-style fault emulation and hls4ml fixed-point hardware for QKeras models."""


def load_inputs(path: str) -> np.ndarray:
    """Read a .npy array of inputs, with a clear error for a missing, empty or unreadable file."""
    from fkhls.core.files import load_array

    return load_array(path, "inputs")
