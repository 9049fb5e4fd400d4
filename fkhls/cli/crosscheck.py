"""``fkhls crosscheck``: emulation vs C-sim, scenario by scenario (over ``fkhls.api.Project.crosscheck``)."""

from __future__ import annotations

import os
import sys

import click
from tabulate import tabulate

from fkhls.cli.common import EXIT_MISMATCH, load_inputs


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--faults", "faults_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Fault set (JSON or YAML); each entry is one scenario.")
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for summary.json and report.md.")
@click.option("--model", type=click.Path(exists=True), help="QKeras model (default: the project's copy).")
@click.option("--reference", type=click.Choice(["exact", "tf"]), default="exact", show_default=True,
              help="exact: the integer emulation of the TF bit-flip core; tf: FKeras's float32 model.predict.")
@click.option("--single-bits", is_flag=True, help="Treat every faulty bit as its own scenario.")
@click.option("--trace-samples", type=click.IntRange(min=1), default=16, show_default=True,
              help="Differing samples traced layer by layer per mismatching scenario.")
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing non-empty report directory.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def crosscheck(project, faults_path, inputs, report_dir, model, reference, single_bits, trace_samples, workers,
               force, no_progress) -> None:
    """Cross-check the emulation against the C-sim for every fault scenario, bit for bit."""
    from fkhls.api import Project
    from fkhls.core.files import CROSSCHECK, check_output_dir
    from fkhls.model.spec import load_keras_model

    # before the work, not after it (the API checks again when it writes)
    check_output_dir(report_dir, force, "report directory", owner=CROSSCHECK, golden=project)
    result = Project.open(project).crosscheck(
        faults_path, load_inputs(inputs), single_bits=single_bits, reference=reference,
        model=load_keras_model(model) if model else None, trace_samples=trace_samples, workers=workers,
        progress=not no_progress)
    summary, markdown = result.write(report_dir, force=force)
    report = result.report
    click.echo(tabulate([("scenarios", len(report.scenarios)), ("outputs compared", report.outputs_compared),
                         ("bit-exact", report.bit_exact), ("max LSB diff", report.max_lsb_diff),
                         ("C-sim engine", report.engine)], headers=["cross-check", ""]))
    for cause, count in sorted(report.cause_counts().items()):
        click.echo(f"  {count} scenario(s): {cause}")
    click.echo(f"report: {markdown} and {summary}")
    if not report.all_exact:
        explained = (" only by layers approximate by nature (their own causes above); the bridge is exact"
                     if report.explained_by_approximation else "")
        click.secho(f"{len(report.mismatching)} scenario(s) differ{explained}: see {markdown}", fg="red")
        sys.exit(EXIT_MISMATCH)
    click.secho("bit-exact: every scenario, every output word", fg="green")


COMMANDS = [crosscheck]
