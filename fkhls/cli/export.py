"""``fkhls export`` and ``fkhls verify``: thin click commands over ``fkhls.api`` (export, Project.verify)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

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
@click.option("--softmax-implementation", type=click.Choice(["stable", "latency", "argmax", "legacy"]),
              default="stable", show_default=True,
              help="hls4ml's Softmax implementation (its default: stable); every one is reproduced word for word.")
def export(model, output_dir, backend, io_type, strategy, reuse_factor, input_type, force, weights,
           softmax_implementation) -> None:
    """Export a saved QKeras MODEL (.h5, .keras, SavedModel, or .json with --weights) to an exact hls4ml project."""
    from fkhls.api import export as export_project
    from fkhls.core.fixedpoint import cpp_type

    start = time.perf_counter()
    manifest = export_project(model, output_dir, backend=backend, io_type=io_type, strategy=strategy,
                              reuse_factor=reuse_factor, input_type=input_type, force=force,
                              weights=weights, softmax_implementation=softmax_implementation).manifest
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


def _where(verdict) -> str:
    return f"{verdict.where[0]}, {verdict.where[1]}" if verdict.where else ""


def _layer_rows(report) -> list[list]:
    rows = []
    for v in report.layers:
        verdict = "exact" if v.exactness == "exact" else f"approximate ({v.cause})"
        rows.append([v.name, v.kind, verdict, v.fed, f"{v.bit_exact}/{v.compared}" if v.compared else "-",
                     f"{v.max_lsb:g}" if v.compared else "", _where(v),
                     "" if v.bound_lsb is None else f"{v.bound_lsb:g}", v.status + (
                         f" to {v.attributed_to!r}" if v.attributed_to else "")])
    return rows


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--model", type=click.Path(exists=True), help="QKeras model to compare (default: the project's copy).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="Weights .h5 of a .json --model.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report as JSON to this file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --json file.")
def verify(project, inputs, model, weights, json_path, force) -> None:
    """Check the project's C-sim against the QKeras model: bit for bit, or within the declared bound per layer.

    Exit 0: every exact layer bit-exact and every approximate-by-nature layer within its bound; 3: not; 1: an error.
    """
    import json

    from fkhls.api import Project
    from fkhls.core.files import atomic_write_text, check_output_file
    from fkhls.model.spec import load_keras_model, matches_model_hash

    if json_path:
        check_output_file(json_path, force, "--json file", golden=project)
    project = Project.open(project)
    if weights and not model:
        raise click.UsageError("--weights goes with --model MODEL.json")
    keras_model = load_keras_model(model, weights) if model else project.model()
    if model and not matches_model_hash(keras_model, project.manifest.model_hash):
        click.secho("warning: --model differs from the model this project was exported from", fg="yellow", err=True)
    start = time.perf_counter()
    report = project.verify_layers(load_inputs(inputs), keras_model)
    parity = report.parity
    click.echo(tabulate(_layer_rows(report), headers=["layer", "kind", "verdict", "fed", "exact/compared",
                                                      "max LSB", "where (sample, index)", "bound LSB", "status"]))
    click.echo()
    rows = parity.rows() + [("argmax agreement", "n/a" if report.argmax_agreement is None else
                             f"{100 * report.argmax_agreement:.2f}%"),
                            ("C-sim == emulator", "yes" if report.csim_equals_emulator else
                             f"NO ({report.csim_emulator_differing} words differ: run `fkhls crosscheck`)")]
    click.echo(tabulate(rows, headers=["golden parity", "C-sim vs QKeras"]))
    click.echo(f"verified in {time.perf_counter() - start:.1f} s")
    for v in report.approximate:  # said whatever the outcome: these layers can never equal QKeras bit for bit
        click.secho(f"note: layer {v.name!r} is approximate by nature ({v.cause}): {v.reason}; declared bound "
                    f"{'none' if v.bound_lsb is None else f'{v.bound_lsb:g} LSB'} ({v.bound_why})", fg="yellow")
        if v.exact_alternative:
            click.secho(f"note: exact path for {v.name!r}: {v.exact_alternative}", fg="yellow")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
        click.echo(f"report: {json_path}")
    if not report.passed:
        why = [f"layer {v.name!r} {v.status}" + (f" ({v.max_lsb:g} LSB > bound {v.bound_lsb:g})"
                                                   if v.status == "exceeds bound" else "") for v in report.failing]
        if not report.csim_equals_emulator:
            why.append("the C-sim differs from the emulator")
        if not parity.all_exact:
            click.secho(f"NOT bit-exact: {parity.outputs_compared - parity.bit_exact} output words differ", fg="red")
        if not why:
            why.append("no layer is approximate by nature, so every output word must equal QKeras's")
        click.secho("NOT verified: " + "; ".join(why), fg="red")
        sys.exit(EXIT_MISMATCH)
    if report.approximate:
        click.secho(f"verified: every exact layer bit-exact, {len(report.approximate)} approximate-by-nature layer(s) "
                    f"within their declared bounds ({parity.bit_exact}/{parity.outputs_compared} output words equal "
                    "QKeras's)", fg="green")
    else:
        click.secho("bit-exact: every output word matches", fg="green")


COMMANDS = [export, verify]
