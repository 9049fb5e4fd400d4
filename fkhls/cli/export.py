"""``fkhls export`` and ``fkhls verify``: thin click commands over ``fkhls.api`` (export, Project.verify)."""

from __future__ import annotations

import sys
import time

import click
from tabulate import tabulate

from fkhls.cli.common import EXIT_MISMATCH, load_inputs


@click.command()
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
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Weights .h5 of a MODEL given as a .json architecture (model.save_weights).")
def export(model, output_dir, backend, io_type, strategy, reuse_factor, input_type, force, weights) -> None:
    """Export a saved QKeras MODEL (.h5, .keras, SavedModel, or .json with --weights) to an exact hls4ml project."""
    from fkhls.api import export as export_project
    from fkhls.core.fixedpoint import cpp_type

    start = time.perf_counter()
    manifest = export_project(model, output_dir, backend=backend, io_type=io_type, strategy=strategy,
                              reuse_factor=reuse_factor, input_type=input_type, force=force,
                              weights=weights).manifest
    rows = []
    # A graph (a layer reading anything but the layer before it) gets a column of what each layer reads.
    graph = any(layer.inputs and layer.inputs != (manifest.layers[i - 1].name,)
                for i, layer in enumerate(manifest.layers) if i)
    for i, layer in enumerate(manifest.layers):
        rows.append([layer.name, layer.hls_name or "(folded)", layer.kind,
                     cpp_type(layer.result_ptype),
                     cpp_type(layer.accum_ptype) if layer.accum_type else "",
                     layer.kernel.type["cpp"] if layer.kernel else "", layer.kernel.array if layer.kernel else "",
                     layer.reuse_factor or "", layer.strategy or ""] + ([", ".join(layer.inputs)] if graph else []))
    click.echo(tabulate(rows, headers=["layer", "hls4ml", "kind", "result", "accum", "weight", "array", "RF",
                                       "strategy"] + (["reads"] if graph else [])))
    for name, reuse in manifest.requested.get("changed_reuse_factor", {}).items():
        click.secho(f"note: hls4ml used reuse factor {reuse} for {name} (asked {reuse_factor}): recorded as built",
                    fg="yellow")
    click.echo(f"exported {manifest.model_name} to {manifest.project_dir} in {time.perf_counter() - start:.1f} s")


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--model", type=click.Path(exists=True), help="QKeras model to compare (default: the project's copy).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="Weights .h5 of a .json --model.")
def verify(project, inputs, model, weights) -> None:
    """Check that the project's C-sim reproduces the QKeras model bit for bit."""
    from fkhls.api import Project
    from fkhls.model.spec import load_keras_model, matches_model_hash

    project = Project.open(project)
    if weights and not model:
        raise click.UsageError("--weights goes with --model MODEL.json")
    keras_model = load_keras_model(model, weights) if model else project.model()
    if model and not matches_model_hash(keras_model, project.manifest.model_hash):
        click.secho("warning: --model differs from the model this project was exported from", fg="yellow", err=True)
    start = time.perf_counter()
    report = project.verify(load_inputs(inputs), keras_model)
    click.echo(tabulate(report.rows(), headers=["golden parity", "C-sim vs QKeras"]))
    click.echo(f"verified in {time.perf_counter() - start:.1f} s")
    approximate = [layer for layer in project.manifest.layers if layer.exactness != "exact"]
    for layer in approximate:  # said whatever the outcome: these layers can never equal QKeras bit for bit
        click.secho(f"note: layer {layer.name!r} is {layer.exactness}", fg="yellow")
    if not report.all_exact:
        click.secho(f"NOT bit-exact: {report.outputs_compared - report.bit_exact} output words differ"
                    + (f" (expected: {len(approximate)} layer(s) approximate by nature, listed above; the "
                       "emulator reproduces the hardware exactly, see `fkhls crosscheck`)" if approximate else ""),
                    fg="red")
        sys.exit(EXIT_MISMATCH)
    click.secho("bit-exact: every output word matches", fg="green")


COMMANDS = [export, verify]
