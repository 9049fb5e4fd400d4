"""``fkhls inject`` and ``fkhls csim``: thin click commands over ``fkhls.api.Project.inject`` and fkhls.csim.build."""

from __future__ import annotations

import time

import click

from fkhls.core.errors import ProjectError

_SHOWN_WORDS = 20


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--faults", "faults_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Fault-set file (JSON/YAML); all its scenarios are flipped together.")
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Faulty project directory to create.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
def inject(project, faults_path, output_dir, force) -> None:
    """Copy the golden PROJECT with the bits of FAULTS flipped in its weight files."""
    from tabulate import tabulate

    from fkhls.api import Project

    start = time.perf_counter()
    result = Project.open(project).inject(faults_path, output_dir, force=force).injection
    rows = [[c.array, c.element, ",".join(map(str, c.bits)), c.literal_before, c.literal_after,
             "; ".join(sorted({o.scenario or "" for o in c.origins}))] for c in result.changes[:_SHOWN_WORDS]]
    click.echo(tabulate(rows, headers=["array", "element", "bits", "before", "after", "from"],
                        disable_numparse=True))
    if len(result.changes) > _SHOWN_WORDS:
        click.echo(f"... {len(result.changes) - _SHOWN_WORDS} more words in {result.faults_json}")
    click.echo(f"flipped {result.n_bits} bits in {len(result.changes)} words of "
               f"{len(result.changed_files) // 2} arrays: {result.project_dir} ({result.faults_json.name}) "
               f"in {time.perf_counter() - start:.1f} s")


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", "inputs_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Inputs (.npy, N x input shape) on the input type's grid.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Outputs (.npy): exact float64 values, or int64 raw words with --raw.")
@click.option("--raw", is_flag=True, help="Write the raw output words (int64, sign-extended) instead of values.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def csim(project, inputs_path, output_path, raw, force) -> None:
    """Run the g++ C simulation of PROJECT (compiled once, cached) and write its exact outputs."""
    from fkhls.cli.common import load_inputs
    from fkhls.csim.build import build_csim, input_words, run_binary
    from fkhls.core.files import atomic_save_npy
    from fkhls.core.fixedpoint import from_raw, wrap_raw
    from fkhls.project.manifest import load_manifest

    from fkhls.core.files import check_output_file

    output_path = check_output_file(output_path, force, "output", golden=project)
    if not output_path.parent.is_dir():
        raise ProjectError(f"output directory {str(output_path.parent)!r} does not exist")
    manifest = load_manifest(project)
    x_raw = input_words(manifest, load_inputs(inputs_path), what=f"inputs {inputs_path}")
    start = time.perf_counter()
    binary = build_csim(manifest)
    built = time.perf_counter()
    out_type = manifest.output_ptype
    words = wrap_raw(out_type, run_binary(binary, x_raw))
    words = words.reshape(x_raw.shape[0], *manifest.output_shape)
    atomic_save_npy(output_path, words if raw else from_raw(out_type, words))
    how = "cached binary" if binary.cached else f"compiled in {built - start:.1f} s"
    click.echo(f"{x_raw.shape[0]} samples -> {output_path} ({'raw int64 words' if raw else 'float64 values'}, "
               f"{manifest.output_type['cpp']}; {how}; "
               f"ran in {time.perf_counter() - built:.2f} s)")


COMMANDS = [inject, csim]
