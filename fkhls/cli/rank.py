"""``fkhls rank`` and ``fkhls rank-eval``: thin click commands over fkhls.rank."""

from __future__ import annotations

import click


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--method", required=True, type=click.Choice(["hessian", "gradient", "taylor", "msb", "random",
                                                             "exhaustive"]),
              help="hessian/gradient/taylor: FKeras's scores; msb: bit position first; random: seeded shuffle; "
                   "exhaustive: the exact ground truth.")
@click.option("--inputs", type=click.Path(exists=True, dir_okay=False),
              help="Inputs (.npy) the scores (or the exhaustive truth) are computed on.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="Labels (.npy): the loss targets; without them, the model's own exact top-1 class.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random order and of the Hessian's start vectors.")
@click.option("--campaign", "campaign_dir", type=click.Path(exists=True, file_okay=False),
              help="exhaustive: take the truth from this finished exhaustive campaign instead of running the TF engine.")
@click.option("--criterion", type=click.Choice(["top1", "any"]), default="top1", show_default=True,
              help="exhaustive: damage = samples whose top-1 changes (top1) or with any output word changed (any).")
@click.option("--bit-order", type=click.Choice(["msb-groups", "weighted"]), default="msb-groups", show_default=True,
              help="FKeras's convention from parameter scores to bits: all MSBs by parameter rank, then MSB-1, ... "
                   "(msb-groups), or score x 2^bit (weighted).")
@click.option("--hessian-k", type=click.IntRange(min=1), default=3, show_default=True, help="Eigenpairs.")
@click.option("--hessian-iters", type=click.IntRange(min=1), default=20, show_default=True,
              help="Most Hessian-vector products per eigenpair.")
@click.option("--hessian-samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="The first N inputs used for the Hessian.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Ranking CSV (+ CSV.json sidecar).")
@click.option("--force", is_flag=True, help="Replace an existing ranking file.")
def rank(project, method, inputs, labels, seed, campaign_dir, criterion, bit_order, hessian_k, hessian_iters,
         hessian_samples, output, force) -> None:
    """Order every weight bit of PROJECT by predicted sensitivity and write RANKING.csv."""
    from fkhls.project.manifest import load_manifest
    from fkhls.rank.methods import HessianOptions, rank_project
    from fkhls.rank.ranking import write_ranking

    ranking = rank_project(project, method, inputs=inputs, labels=labels, seed=seed, campaign=campaign_dir,
                           criterion=criterion, convention=bit_order,
                           hessian=HessianOptions(top_k=hessian_k, max_iter=hessian_iters,
                                                  max_samples=hessian_samples))
    csv_path, side = write_ranking(load_manifest(project), ranking, output, force=force)
    click.echo(f"{len(ranking):,} bits ranked by {method}: {csv_path} (+ {side.name})")
    if "hessian" in ranking.info:
        h = ranking.info["hessian"]
        click.echo("hessian eigenvalues: " + ", ".join(f"{v:.4g}" for v in h["eigenvalues"])
                   + f" (products: {', '.join(map(str, h['iterations']))})")


@click.command("rank-eval")
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--rankings", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Ranking CSVs (repeat the option, or list them after it).")
@click.option("--truth", "truth_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A finished exhaustive campaign of PROJECT (fkhls campaign --exhaustive).")
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False), help="Report directory.")
@click.option("--critical", "criterion", type=click.Choice(["top1", "any"]), default="top1", show_default=True,
              help="Damage/critical criterion: top-1 class changes, or any output word changes.")
@click.option("--force", is_flag=True, help="Write into a non-empty report directory.")
@click.argument("more_rankings", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def rank_eval(project, rankings, truth_dir, report_dir, criterion, force, more_rankings) -> None:
    """Score rankings against the exhaustive truth: curves, critical-bit counts, precision@k, tau, rho."""
    from tabulate import tabulate

    from fkhls.rank.evaluate import FRACTIONS
    from fkhls.rank.report import evaluate_rankings

    scores, oracle, paths = evaluate_rankings(project, [*rankings, *more_rankings], truth_dir, report_dir,
                                              criterion=criterion, force=force)
    rows = [[s.name, *[("-" if s.k_critical[q] is None else f"{s.k_critical[q]:,}") for q in FRACTIONS],
             f"{s.auc:.3f}", f"{s.kendall_tau:.3f}", f"{s.spearman_rho:.3f}"] for s in (oracle, *scores)]
    click.echo(tabulate(rows, headers=["ranking", *[f"k for {q:g} critical" for q in FRACTIONS], "AUC", "tau", "rho"],
                        disable_numparse=True))
    click.echo(f"report: {paths['report']}")


COMMANDS = [rank, rank_eval]
