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


@click.group(cls=FkhlsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fkhls")
def main() -> None:
    """Bridge FKeras-style fault emulation and hls4ml fixed-point hardware for QKeras models."""


def load_inputs(path: str) -> np.ndarray:
    """Read a .npy array of inputs, with a clear error for a missing, empty or unreadable file."""
    from fkhls.core.files import load_array

    return load_array(path, "inputs")
