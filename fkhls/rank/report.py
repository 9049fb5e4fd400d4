"""The ``rank-eval`` report: ``curves.png``, ``report.md`` and ``summary.json`` in one directory.

``evaluate_rankings`` reads the truth (a finished exhaustive campaign of the same project) and
every ranking CSV, scores each (``rank.evaluate``) next to the oracle, and writes the report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import jinja2
import numpy as np
from tabulate import tabulate

from fkhls.campaign.report import write_summary
from fkhls.core.errors import FkhlsError
from fkhls.core.files import atomic_write_text, check_output_dir
from fkhls.rank.evaluate import BUDGETS, FRACTIONS, RankingScore, oracle_score, score_ranking
from fkhls.rank.truth import CRITERIA, Truth

__all__ = ["evaluate_rankings", "plot_curves", "render_markdown", "curve_points"]

_REPORT_MD = """# Sensitivity rankings scored against the exhaustive truth

{{ facts }}

Damage of a bit: {{ damage }}. A bit is critical when its damage is at least one.
`k for q critical` is the number of top-ranked bits a ranking needs to hold the fraction q of the
critical bits (the oracle needs ceil(q x critical)); `k for q damage` the same for the total
damage; `P@k` the fraction of critical bits among the top k; `damage in top f %` the fraction of
the total damage the top f % of the bits hold (what protecting them would cover); AUC the mean of the cumulative-damage
curve (oracle best, random ~0.5); tau (Kendall tau-b) and rho (Spearman) correlate the predicted
order with the per-bit damage over all bits (most bits tie at damage 0, so even the oracle's
tau and rho stay below 1: they are the ceiling).

{{ table }}

![cumulative damage](curves.png)

## Rankings

{{ sources }}

Machine-readable numbers and curve points: `summary.json`.
"""


def curve_points(score: RankingScore, n_points: int = 200) -> list[list[float]]:
    """[k, C(k), critical found] at ~n_points log-spaced k (plus every k at which the curve first reaches 1)."""
    n = score.n_bits
    ks = np.unique(np.concatenate([np.geomspace(1, n, n_points).round().astype(np.int64), [n]]))
    full = np.flatnonzero(score.curve >= 1.0)
    if len(full):
        ks = np.unique(np.append(ks, full[0] + 1))
    return [[int(k), float(score.curve[k - 1]), int(score.critical_found[k - 1])] for k in ks]


def plot_curves(path: Path, scores: Sequence[RankingScore], oracle: RankingScore) -> Path:
    """Two panels: cumulative damage and critical bits found vs top-k (log k), every ranking + oracle + random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = oracle.n_bits
    k = np.arange(1, n + 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, field, title in ((axes[0], "damage", "fraction of total damage covered"),
                             (axes[1], "critical", "fraction of critical bits found")):
        def ys(s: RankingScore):
            return s.curve if field == "damage" else s.critical_found / max(s.n_critical, 1)

        ax.plot(k, k / n, color="0.6", lw=1, ls=":", label="random (expected)")
        ax.plot(k, ys(oracle), color="black", lw=2.2, ls="--", label="oracle (exhaustive)")
        for s in scores:
            ax.plot(k, ys(s), lw=1.4, label=s.name)
        ax.set_xscale("log")
        ax.set_xlim(1, n)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"top-k bits (of {n:,})")
        ax.set_ylabel(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].axhline(0.9, color="0.8", lw=0.8)
    axes[1].axhline(0.99, color="0.8", lw=0.8)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{oracle.n_critical:,} critical bits, total damage {oracle.total_damage:,}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _k(value) -> str:
    return "-" if value is None else f"{value:,}"


def _f(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def render_markdown(truth: Truth, scores: Sequence[RankingScore], oracle: RankingScore, sources: dict) -> str:
    ks = sorted({k for s in (oracle, *scores) for k in s.precision_at})
    headers = ["ranking", *[f"k for {q:g} critical" for q in FRACTIONS], *[f"k for {q:g} damage" for q in FRACTIONS],
               *[f"P@{k:,}" for k in ks], *[f"damage in top {100 * f:g} %" for f in BUDGETS], "AUC", "tau", "rho"]
    rows = []
    for s in (oracle, *scores):
        rows.append([s.name, *[_k(s.k_critical[q]) for q in FRACTIONS], *[_k(s.k_damage[q]) for q in FRACTIONS],
                     *[_f(s.precision_at.get(k)) for k in ks], *[_f(s.damage_at.get(f)) for f in BUDGETS], _f(s.auc),
                     _f(s.kendall_tau), _f(s.spearman_rho)])
    facts = tabulate([["truth", truth.source.get("campaign", truth.source.get("kind"))],
                      ["engine", truth.source.get("engine")], ["samples", f"{truth.n_samples:,}"],
                      ["bits", f"{truth.space.n_bits:,}"], ["critical bits", f"{int(truth.critical.sum()):,}"],
                      ["total damage", f"{int(truth.damage.sum()):,}"]], tablefmt="github",
                     headers=["", ""], disable_numparse=True)
    src = []
    for name, meta in sources.items():
        keys = ("method", "seed", "loss", "bit_order", "inputs_hash", "damage")
        parts = [f"{k}={meta[k]}" for k in keys if meta.get(k) is not None]
        src.append(f"- `{name}`: " + ("; ".join(parts) if parts else "(no sidecar JSON)"))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_REPORT_MD).render(
        facts=facts, damage=CRITERIA[truth.criterion], sources="\n".join(src),
        table=tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


def _names(paths: Sequence[Path]) -> list[str]:
    names, seen = [], {}
    for path in paths:
        stem = path.name[:-4] if path.name.endswith(".csv") else path.name
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}#{seen[stem]}")
    return names


def evaluate_rankings(project_dir: str | Path, ranking_paths: Sequence[str | Path], truth_dir: str | Path,
                      report_dir: str | Path, *, criterion: str = "top1", force: bool = False
                      ) -> tuple[list[RankingScore], RankingScore, dict]:
    """Score every ranking against the campaign in ``truth_dir``; write the report into ``report_dir``."""
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.project.manifest import load_manifest
    from fkhls.rank.bitorder import BitSpace
    from fkhls.rank.ranking import read_ranking, sidecar_path
    from fkhls.rank.truth import check_campaign_project, truth_from_campaign

    if not ranking_paths:
        raise FkhlsError("give at least one ranking (--rankings R1.csv R2.csv ...)")
    report_dir = check_output_dir(report_dir, force, "report directory")
    project_dir = Path(project_dir)
    space = BitSpace.of(spec_from_manifest(load_manifest(project_dir)))
    identity = check_campaign_project(Path(truth_dir), project_dir)
    truth = truth_from_campaign(truth_dir, space, criterion)
    paths = [Path(p) for p in ranking_paths]
    scores, sources = [], {}
    for name, path in zip(_names(paths), paths):
        ranking = read_ranking(path, space)
        meta = dict(ranking.info)
        if meta.get("inputs_hash") and meta["inputs_hash"] != identity.get("inputs_hash"):
            meta["warning"] = "ranked on other inputs than the truth campaign's"
        sources[name] = {"path": str(path.resolve()), "sidecar": str(sidecar_path(path)) if meta else None, **meta}
        scores.append(score_ranking(ranking, truth, name))
    oracle = oracle_score(truth)
    report_dir.mkdir(parents=True, exist_ok=True)
    png = plot_curves(report_dir / "curves.png", scores, oracle)
    md = report_dir / "report.md"
    atomic_write_text(md, render_markdown(truth, scores, oracle, sources))
    summary = {
        "truth": {**truth.source, "criterion": truth.criterion, "damage": CRITERIA[truth.criterion],
                  "n_samples": truth.n_samples, "n_bits": truth.space.n_bits,
                  "n_critical": int(truth.critical.sum()), "total_damage": int(truth.damage.sum()),
                  "inputs_hash": identity.get("inputs_hash")},
        "oracle": {**oracle.summary(), "curve_points": curve_points(oracle)},
        "rankings": [{**s.summary(), "source": sources[s.name], "curve_points": curve_points(s)} for s in scores],
    }
    js = write_summary(report_dir / "summary.json", summary)
    return scores, oracle, {"png": png, "report": md, "summary": js}
