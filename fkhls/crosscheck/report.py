"""The cross-check report: ``summary.json`` for machines, ``report.md`` for people."""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from fkhls.crosscheck.compare import CrosscheckReport, ScenarioResult
from fkhls.core.files import atomic_write_text

MAX_ROWS = 200  # scenarios listed per table in report.md (all mismatches are in summary.json)


def _bits_text(result: ScenarioResult) -> str:
    parts = [f"{b['layer']}.{b['tensor']}[lbi {b['lbi']}] -> {b['array']}[{b['element']}].{b['array_bit']}"
             for b in result.bits[:3]]
    more = f" (+{len(result.bits) - 3} more)" if len(result.bits) > 3 else ""
    return "; ".join(parts) + more if parts else "none"


def render_markdown(report: CrosscheckReport) -> str:
    lines = ["# fkhls cross-check", ""]
    verdict = "**all bit-exact**" if report.all_exact else f"**{len(report.mismatching)} scenario(s) differ**"
    lines += [f"Emulation ({report.reference}) vs C-sim ({report.engine}) on `{report.project}`: {verdict}.", ""]
    overview = [
        ("scenarios", len(report.scenarios)),
        ("samples per scenario", report.samples),
        ("outputs compared", report.outputs_compared),
        ("bit-exact outputs", f"{report.bit_exact} ({100.0 * report.bit_exact / max(report.outputs_compared, 1):.3f}%)"),
        ("max difference (LSB of output)", report.max_lsb_diff),
        ("output type", f"`{report.output_type}`"),
        ("golden run (no fault) bit-exact", "yes" if report.golden is None or report.golden.exact else "**no**"),
        ("fault seed", report.seed),
    ]
    lines += [tabulate(overview, headers=["", "value"], tablefmt="github"), ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    if report.cause_counts():
        lines += ["## Causes", "",
                  tabulate(sorted(report.cause_counts().items()), headers=["cause", "scenarios"], tablefmt="github"), ""]
    listed = [[r.name, _bits_text(r), f"{r.bit_exact}/{r.outputs_compared}", "bit-exact" if r.exact else "**differs**"]
              for r in report.scenarios[:MAX_ROWS]]
    lines += ["## Scenarios", "", tabulate(listed, headers=["scenario", "bits (FKeras -> hardware)", "exact/compared",
                                                            "verdict"], tablefmt="github"), ""]
    if len(report.scenarios) > MAX_ROWS:
        lines += [f"... {len(report.scenarios) - MAX_ROWS} more scenarios in summary.json", ""]
    rows = []
    for result in ([report.golden] if report.golden and not report.golden.exact else []) + list(report.mismatching):
        d = result.divergence
        rows.append([result.name, _bits_text(result), f"{result.bit_exact}/{result.outputs_compared}",
                     result.max_lsb_diff, d.layer if d else "", d.cause if d else "", d.explanation if d else ""])
    if rows:
        lines += ["## Mismatching scenarios", "",
                  tabulate(rows[:MAX_ROWS], headers=["scenario", "bits", "exact/compared", "max LSB",
                                                     "first diverging layer", "cause", "why"], tablefmt="github"), ""]
        if len(rows) > MAX_ROWS:
            lines += [f"... {len(rows) - MAX_ROWS} more in summary.json", ""]
    return "\n".join(lines)


def write_crosscheck_report(report: CrosscheckReport, directory: str | Path) -> tuple[Path, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary, markdown = directory / "summary.json", directory / "report.md"
    atomic_write_text(summary, json.dumps(report.to_summary(), indent=2) + "\n")
    atomic_write_text(markdown, render_markdown(report))
    return summary, markdown
