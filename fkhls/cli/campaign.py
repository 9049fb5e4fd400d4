"""``fkhls campaign`` and ``fkhls campaign-report``: thin click commands over fkhls.campaign.runner."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fkhls.core.errors import FkhlsError


def _csv_list(value: str | None, what: str, cast=str) -> tuple | None:
    if value is None:
        return None
    try:
        items = tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise FkhlsError(f"{what} {value!r} is not a comma-separated list ({exc})") from exc
    if not items:
        raise FkhlsError(f"{what} {value!r} names nothing")
    return items


def _ranked_bits(project: str, order: str, budget: int | None) -> tuple[int, ...]:
    """The model bits of a ranking CSV, most sensitive first, cut to the budget."""
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.project.manifest import load_manifest
    from fkhls.rank.bitorder import BitSpace
    from fkhls.rank.ranking import read_ranking

    ranking = read_ranking(order, BitSpace.of(spec_from_manifest(load_manifest(project))))
    return tuple(int(b) for b in ranking.model_bit[:budget])


@click.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--inputs", required=True, type=click.Path(exists=True, dir_okay=False), help="Inputs (.npy).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="Labels (.npy, class indices or one-hot): adds accuracy drop per fault.")
@click.option("--engine", type=click.Choice(["tf", "csim", "both"]), default="both", show_default=True,
              help="tf: exact integer emulation; csim: the C-sim harness; both: both, compared word by word.")
@click.option("--exhaustive", is_flag=True, help="Every single bit of the selected tensors, one at a time.")
@click.option("--ber", type=click.FloatRange(0.0, 1.0), help="Bit error rate of each random trial.")
@click.option("--trials", type=click.IntRange(min=1), help="Number of random trials (with --ber).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the random trials (with --ber).")
@click.option("--order", "order", type=click.Path(exists=True, dir_okay=False),
              help="A ranking CSV (fkhls rank): inject its bits one at a time, most sensitive first.")
@click.option("--budget", type=click.IntRange(min=1), help="With --order: only the ranking's top N bits.")
@click.option("--layers", help="Comma-separated layers to fault (default: every quantized layer).")
@click.option("--tensors", default="kernel,bias", show_default=True, help="kernel, bias or both.")
@click.option("--bits", help="Exhaustive: only these bit positions (from the LSB, comma-separated).")
@click.option("-o", "--output", "results_dir", required=True, type=click.Path(file_okay=False),
              help="Results directory (kept outside the project: the golden project is only read).")
@click.option("--shard-size", type=click.IntRange(min=1),
              help="Faults per shard (unit of work, storage and resume) [default: up to 4096, sized so a shard's "
                   "output words stay under 16 M].")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes [default: all cores].")
@click.option("--force", is_flag=True, help="Discard a different (or unfinished) campaign in the results directory.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def campaign(project, inputs, labels, engine, exhaustive, ber, trials, seed, order, budget, layers, tensors, bits,
             results_dir, shard_size, workers, force, quiet) -> None:
    """Run (or resume) a fault campaign on PROJECT and write its report.

    Interrupted campaigns resume where they stopped when run again with the same arguments.
    """
    from tabulate import tabulate

    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign
    from fkhls.cli.common import EXIT_MISMATCH

    if exhaustive + (ber is not None) + (order is not None) != 1:
        raise click.UsageError("give exactly one of --exhaustive or --ber RATE (with --trials N --seed S), or "
                               "--order RANKING.csv [--budget N]")
    if budget is not None and order is None:
        raise click.UsageError("--budget goes with --order RANKING.csv")
    if order is not None:
        selection = Selection(mode="ordered", model_bits=_ranked_bits(project, order, budget))
    else:
        selection = Selection(
            mode="exhaustive" if exhaustive else "ber", layers=_csv_list(layers, "--layers"),
            tensors=_csv_list(tensors, "--tensors"), bits=_csv_list(bits, "--bits", int), ber=ber, trials=trials,
            seed=seed)
    config = CampaignConfig(Path(project), Path(inputs), engine, selection, Path(labels) if labels else None,
                            shard_size)
    results_dir = Path(results_dir)
    result = run_campaign(config, results_dir, workers=workers, force=force, quiet=quiet)
    table = result.table
    rows = [["faults", f"{len(table):,}"], ["samples", f"{table.n_samples:,}"],
            ["engines", " + ".join(table.engines)],
            ["shards", f"{result.shards_run} run now, {result.shards_total - result.shards_run} already done"],
            ["faults changing top-1", f"{int((table.metric('top1_changed') > 0).sum()):,}"]]
    mismatching = 0
    if table.both:
        words = int(table.columns["mismatched_words"].sum())
        compared = len(table) * table.n_samples * table.n_outputs
        mismatching = int((table.columns["mismatched_words"] > 0).sum())
        rows += [["output words compared", f"{compared:,}"], ["bit-exact", f"{compared - words:,}"],
                 ["scenarios differing", f"{mismatching:,}"]]
    click.echo(tabulate(rows, tablefmt="plain", disable_numparse=True))
    click.echo(f"report: {result.reports.get('report')}  ({result.seconds:.1f} s)")
    if mismatching:
        click.secho(f"engines disagree on {mismatching} scenarios: see summary.json 'mismatching_scenarios'",
                    fg="red")
        sys.exit(EXIT_MISMATCH)
    if table.both:
        click.secho("bit-exact: tf and csim agree on every output word of every fault", fg="green")


@click.command("campaign-report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
def campaign_report(results_dir) -> None:
    """Rewrite the report (summary.json, report.md, PNGs, results.csv) of a finished campaign."""
    from fkhls.campaign.runner import report_campaign

    paths = report_campaign(results_dir)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


COMMANDS = [campaign, campaign_report]
