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


@click.command("harden-verify")
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--unprotected", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Single-bit faults in unprotected words to compare with the golden project (seeded sample).")
@click.option("--all-unprotected", is_flag=True, help="Compare every unprotected single-bit fault.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the sample.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="C-sim processes.")
@click.option("--force", is_flag=True, help="Replace an existing PROJECT/verify.json.")
def harden_verify(project, inputs, unprotected, all_unprotected, seed, workers, force) -> None:
    """Prove in C-sim that hardened PROJECT equals its golden project and masks every fault in one copy."""
    import json
    from pathlib import Path

    from fkhls.cli.common import EXIT_MISMATCH, load_inputs
    from fkhls.core.errors import ProjectError
    from fkhls.core.files import atomic_write_text
    from fkhls.csim.build import input_words
    from fkhls.harden.verify import verify_hardened
    from fkhls.project.manifest import load_manifest

    target = Path(project) / "verify.json"
    if target.exists() and not force:
        raise ProjectError(f"{str(target)!r} exists; pass --force to replace it")
    x_raw = input_words(load_manifest(project), load_inputs(inputs), what=f"inputs {inputs}")
    result = verify_hardened(project, x_raw, unprotected=None if all_unprotected else unprotected, seed=seed,
                             workers=workers)
    atomic_write_text(target, json.dumps({**result.to_dict(), "inputs": str(Path(inputs).resolve())}, indent=2) + "\n")
    click.echo(f"golden parity: {result.parity_mismatching_words} mismatching output words "
               f"({result.n_samples} samples)")
    click.echo(f"protected copies: {result.protected_faults:,} single-bit faults, "
               f"{result.protected_changed_words} output words changed")
    click.echo(f"unprotected: {result.unprotected_faults:,} of {result.unprotected_total:,} single-bit faults, "
               f"{result.unprotected_mismatching_words} output words differ from the golden project's "
               f"({result.unprotected_changed_words:,} changed by the faults on both)")
    click.echo(f"{'verified' if result.ok else 'NOT verified'} in {result.seconds:.1f} s: {target}")
    if not result.ok:
        raise SystemExit(EXIT_MISMATCH)


COMMANDS = [harden, harden_verify]
