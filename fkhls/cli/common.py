"""What every fkhls command shares: the group that turns errors into one line, exit codes, input loading."""

from __future__ import annotations

import click
import numpy as np

from fkhls import __version__
from fkhls.core.errors import FkhlsError

EXIT_MISMATCH = 3


class FkhlsGroup(click.Group):
    """Turns every FkhlsError into one clear line on stderr and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FkhlsError as exc:
            click.secho(f"fkhls: error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=FkhlsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fkhls")
def main() -> None:
    """Bridge FKeras-style fault emulation and hls4ml fixed-point hardware for QKeras models."""


def load_inputs(path: str) -> np.ndarray:
    """Read a .npy array of inputs, with a clear error for a missing or unreadable file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FkhlsError(f"cannot read inputs {path!r} (expected a .npy array): {exc}") from exc
