"""``fkhls harden``: a thin click command over fkhls.harden."""

from __future__ import annotations

import click


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--ranking", "ranking_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Ranking CSV of PROJECT (fkhls rank); walked word by word, most sensitive first.")
@click.option("--budget", type=click.IntRange(min=1), help="Protect this many weight words.")
@click.option("--coverage", type=float,
              help="Protect words until this fraction (0, 1] of the damage is covered (the truth's when --truth is "
                   "given, else the ranking's scores).")
@click.option("--truth", "truth_dir", type=click.Path(exists=True, file_okay=False),
              help="A finished exhaustive campaign of PROJECT: exact damage for --coverage and the report.")
@click.option("--critical", "criterion", type=click.Choice(["top1", "any"]), default="top1", show_default=True,
              help="Damage of a bit in the truth: top-1 class changes, or any output word changes.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Hardened project directory.")
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
def harden(project, ranking_path, budget, coverage, truth_dir, criterion, output, force) -> None:
    """Copy PROJECT with its most sensitive weight words triplicated and voted (TMR) in the HLS code."""
    from fkhls.core.errors import FkhlsError
    from fkhls.harden.project import harden_project
    from fkhls.harden.select import covered

    if (budget is None) == (coverage is None):
        raise FkhlsError("give exactly one of --budget N (words) and --coverage F (fraction of the damage)")
    result = harden_project(project, ranking_path, output, budget=budget, coverage=coverage, truth_dir=truth_dir,
                            criterion=criterion, force=force)
    s = result.selection
    k = len(s.words)
    click.echo(f"{k:,} of {s.n_words:,} weight words protected by TMR: {result.project_dir}")
    for name, curve in (("ranking", s.ranking_curve), ("truth", s.truth_curve)):
        value = covered(curve, k)
        if value is not None:
            click.echo(f"damage covered ({name}): {100 * value:.2f} %")
    click.echo(f"report: {result.report}")


COMMANDS = [harden]
