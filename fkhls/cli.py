"""The ``fkhls`` command line: parse, call the library, print. No logic lives here.

Exit codes: 0 success; 1 an fkhls error (bad input, unsupported model, failed build), printed
as one line; 2 usage error (click); 3 a comparison ran and found words that differ.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import click
import numpy as np
from tabulate import tabulate

from fkhls import __version__
from fkhls.errors import FkhlsError

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


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=True))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Project directory to create.")
@click.option("--backend", type=click.Choice(["Vivado", "Vitis"]), default="Vivado", show_default=True)
@click.option("--io-type", type=click.Choice(["io_parallel", "io_stream"]), default="io_parallel", show_default=True)
@click.option("--strategy", type=click.Choice(["Latency", "Resource"]), default="Latency", show_default=True)
@click.option("--reuse-factor", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--input-type", default="ap_fixed<16,6>", show_default=True,
              help="Fixed-point type of the model input; inputs must lie on its grid.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
def export(model, output_dir, backend, io_type, strategy, reuse_factor, input_type, force) -> None:
    """Export a saved QKeras MODEL (.h5, .keras, SavedModel) to an exact hls4ml project."""
    from fkhls.export import ExportOptions, export_model
    from fkhls.fixedpoint import cpp_type, type_from_dict

    start = time.perf_counter()
    manifest = export_model(model, output_dir, ExportOptions(backend, io_type, strategy, reuse_factor, input_type),
                            force=force)
    rows = []
    for layer in manifest.layers:
        rows.append([layer.name, layer.hls_name or "(folded)", layer.kind,
                     cpp_type(type_from_dict(layer.result_type)),
                     cpp_type(type_from_dict(layer.accum_type)) if layer.accum_type else "",
                     layer.kernel.type["cpp"] if layer.kernel else "", layer.kernel.array if layer.kernel else "",
                     layer.reuse_factor or "", layer.strategy or ""])
    click.echo(tabulate(rows, headers=["layer", "hls4ml", "kind", "result", "accum", "weight", "array", "RF",
                                       "strategy"]))
    for name, reuse in manifest.requested.get("changed_reuse_factor", {}).items():
        click.secho(f"note: hls4ml used reuse factor {reuse} for {name} (asked {reuse_factor}): recorded as built",
                    fg="yellow")
    click.echo(f"exported {manifest.model_name} to {manifest.project_dir} in {time.perf_counter() - start:.1f} s")


@main.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--model", type=click.Path(exists=True), help="QKeras model to compare (default: the project's copy).")
def verify(project, inputs, model) -> None:
    """Check that the project's C-sim reproduces the QKeras model bit for bit."""
    from fkhls.manifest import load_manifest
    from fkhls.model_spec import load_keras_model, model_hash
    from fkhls.parity import golden_parity

    manifest = load_manifest(project)
    keras_model = load_keras_model(model or manifest.model_path)
    if model and model_hash(keras_model) != manifest.model_hash:
        click.secho("warning: --model differs from the model this project was exported from", fg="yellow", err=True)
    start = time.perf_counter()
    report = golden_parity(manifest, load_inputs(inputs), keras_model)
    click.echo(tabulate(report.rows(), headers=["golden parity", "C-sim vs QKeras"]))
    click.echo(f"verified in {time.perf_counter() - start:.1f} s")
    if not report.all_exact:
        click.secho(f"NOT bit-exact: {report.outputs_compared - report.bit_exact} output words differ", fg="red")
        sys.exit(EXIT_MISMATCH)
    click.secho("bit-exact: every output word matches", fg="green")


# Commands owned by other modules register here; a module that is not present is skipped.
for _module in ("fkhls.cli_addressing", "fkhls.cli_codegen", "fkhls.cli_crosscheck", "fkhls.cli_campaign"):
    try:
        _commands = importlib.import_module(_module).COMMANDS
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
        continue
    for _command in _commands:
        main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
