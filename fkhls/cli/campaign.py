"""``fkhls campaign`` and ``fkhls campaign-report``: thin click commands over fkhls.campaign.runner."""

from __future__ import annotations

import json
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
@click.option("--seed", type=click.IntRange(min=0),
              help="Seed of the random trials (--ber), of the stratified draw (--confidence) and of --csim-sample.")
@click.option("--confidence", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Confidence of every interval and bound reported [default: 0.99]. Alone (with --margin E --seed "
                   "S): a statistical campaign; with --ber: its intervals; with --csim-sample: its bound.")
@click.option("--margin", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Statistical campaign: error margin e of each stratum's sample size (e.g. 0.01).")
@click.option("--per", type=click.Choice(["model", "layer", "bit", "layer-bit"]), default=None,
              help="Statistical campaign: strata (one per layer tensor, bit position, or both) [default: layer].")
@click.option("--prior", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Statistical campaign: expected rate p of the sample-size formula [default: 0.5, the worst case].")
@click.option("--csim-sample", type=click.IntRange(min=1),
              help="With --engine both: the TF engine runs every selected fault, the C-sim engine cross-checks a "
                   "seeded sample of N of them (needs --seed); the report states the bound this proves.")
@click.option("--order", "order", type=click.Path(exists=True, dir_okay=False),
              help="A ranking CSV (fkhls rank): inject its bits one at a time, most sensitive first.")
@click.option("--budget", type=click.IntRange(min=1), help="With --order: only the ranking's top N bits.")
@click.option("--layers", help="Comma-separated layers to fault (default: every quantized layer).")
@click.option("--tensors", default=None,
              help="Comma-separated tensor names (kernel, bias, a batch norm's scale ...); default: every array.")
@click.option("--bits", help="Exhaustive or statistical: only these bit positions (from the LSB, comma-separated).")
@click.option("-o", "--output", "results_dir", required=True, type=click.Path(file_okay=False),
              help="Results directory (kept outside the project: the golden project is only read).")
@click.option("--shard-size", type=click.IntRange(min=1),
              help="Faults per shard (unit of work, storage and resume) [default: up to 4096, sized so a shard's "
                   "output words stay under 16 M and, from 256 up, so there are at least 16 shards; a resumed "
                   "campaign keeps its own].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Worker processes of the local pool or local Dask cluster [default: all cores].")
@click.option("--dask", "use_dask", is_flag=True,
              help="Run shards as Dask tasks: a local cluster on 127.0.0.1, or the cluster of --scheduler.")
@click.option("--scheduler", metavar="local-pool|dask-local|tcp://HOST:PORT",
              help="Where shards run [default: local-pool; with --dask: dask-local]. An address means an "
                   "existing Dask scheduler (its workers need fkhls and the results directory).")
@click.option("--force", is_flag=True, help="Discard a different (or unfinished) campaign in the results directory.")
@click.option("--quiet", "--no-progress", "quiet", is_flag=True, help="No progress bar.")
def campaign(project, inputs, labels, engine, exhaustive, ber, trials, seed, confidence, margin, per, prior,
             csim_sample, order, budget, layers, tensors, bits, results_dir, shard_size, workers, use_dask, scheduler,
             force, quiet) -> None:
    """Run (or resume) a fault campaign on PROJECT and write its report.

    Three kinds: --exhaustive (every selected bit), --ber RATE --trials N --seed S (random
    multi-bit trials), or --confidence C --margin E --seed S [--per layer|bit|layer-bit]
    (a statistical campaign: a seeded stratified sample of the single-bit faults, every rate
    reported with its confidence interval). Interrupted campaigns resume where they stopped
    when run again with the same arguments.
    """
    from tabulate import tabulate

    from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign
    from fkhls.cli.common import EXIT_MISMATCH

    kinds = exhaustive + (ber is not None) + (order is not None)
    if kinds > 1 or (kinds == 0 and confidence is None):
        raise click.UsageError("give exactly one of --exhaustive or --ber RATE (with --trials N --seed S) or "
                               "--confidence C (with --margin E --seed S), or --order RANKING.csv [--budget N]")
    if budget is not None and order is None:
        raise click.UsageError("--budget goes with --order RANKING.csv")
    mode = "exhaustive" if exhaustive else "ber" if ber is not None else "ordered" if order else "sampled"
    if mode != "sampled" and any(v is not None for v in (margin, per, prior)):
        raise click.UsageError("--margin, --per and --prior belong to a statistical campaign (--confidence C)")
    if mode in ("exhaustive", "ordered") and confidence is not None and csim_sample is None:
        raise click.UsageError(f"an {mode} campaign's rates are exact: --confidence applies to its --csim-sample "
                               "bound only")
    if order is not None:
        selection = Selection(mode="ordered", model_bits=_ranked_bits(project, order, budget), confidence=confidence)
    else:
        sampled = {"confidence": confidence, "margin": margin, "per": per or "layer", "prior": prior} \
            if mode == "sampled" else {}
        selection = Selection(
            mode=mode, layers=_csv_list(layers, "--layers"),
            tensors=_csv_list(tensors, "--tensors"), bits=_csv_list(bits, "--bits", int), ber=ber, trials=trials,
            seed=seed if mode != "exhaustive" else None, **sampled,
            **({"confidence": confidence} if mode != "sampled" else {}))
    config = CampaignConfig(Path(project), Path(inputs), engine, selection, Path(labels) if labels else None,
                            shard_size, csim_sample, seed if csim_sample is not None else None)
    if use_dask and scheduler == "local-pool":
        raise click.UsageError("--dask runs on Dask; --scheduler local-pool is the process pool: give one of them")
    scheduler = scheduler or ("dask-local" if use_dask else None)
    if workers is not None and scheduler not in (None, "local-pool", "dask-local"):
        raise click.UsageError(f"--workers sizes a local pool or cluster; the scheduler {scheduler} has its own "
                               "workers")
    results_dir = Path(results_dir)
    result = run_campaign(config, results_dir, workers=workers, force=force, quiet=quiet, scheduler=scheduler)
    # The console lines come from summary.json: the table of every fault is not loaded (bounded memory).
    summary = json.loads(Path(result.reports["summary"]).read_text())
    primary, both = summary["primary_engine"], "outputs_compared" in summary
    rows = [["faults", f"{summary['faults']:,}"], ["samples", f"{summary['samples']:,}"],
            ["engines", " + ".join(summary["engines"])],
            ["shards", f"{result.shards_run} run now, {result.shards_total - result.shards_run} already done"],
            ["faults changing top-1", f"{summary['totals'][primary]['faults_changing_top1']:,}"]]
    mismatching = 0
    if both:
        mismatching = summary["scenarios_mismatching"]
        rows += [["output words compared", f"{summary['outputs_compared']:,}"],
                 ["bit-exact", f"{summary['bit_exact']:,}"], ["scenarios differing", f"{mismatching:,}"]]
        if "csim_sample" in summary:
            rows.append(["C-sim sample", summary["csim_sample"]["statement"]])
    stats = summary.get("statistics", {})
    for name, est in stats.get("rates", {}).get(primary, {}).items():
        if est["value"] is None:
            continue
        interval = "exact" if est["exact"] else f"[{est['low']:.4g}, {est['high']:.4g}] at {stats['confidence']:.4g}"
        rows.append([name.replace("_", " "), f"{est['value']:.4g}  {interval}"])
    click.echo(tabulate(rows, tablefmt="plain", disable_numparse=True))
    click.echo(f"report: {result.reports.get('report')}  ({result.seconds:.1f} s)")
    if mismatching:
        click.secho(f"engines disagree on {mismatching} scenarios: see summary.json 'mismatching_scenarios'",
                    fg="red")
        sys.exit(EXIT_MISMATCH)
    if both:
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
