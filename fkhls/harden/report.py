"""What hardening buys and costs: damage covered against words protected, extra bits, the vote's logic.

Cost estimate (no vendor tool runs here, so it is an estimate and says how): each protected word
of width W adds 2 W bits of weight storage (two replicas) and W three-input majority functions;
a 3-input function fits one LUT6 (the LUT6_2 pairing needs the two outputs to share at most 5
inputs, and two voted bits have 6 distinct ones), so ~W LUTs per protected word, per layer the
sum over its protected words. Constant folding, BRAM read ports and routing are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fkhls.campaign.report import write_summary
from fkhls.core.files import atomic_write_text
from fkhls.core.templates import render
from fkhls.harden.select import WordSelection, covered
from fkhls.project.manifest import Manifest

__all__ = ["LayerCost", "layer_costs", "coverage_rows", "write_report"]

LUT_RULE = "~W LUT6 per protected W-bit word (one 3-input majority per bit); storage 2 W bits per word"


@dataclass(frozen=True)
class LayerCost:
    layer: str
    weight_bits: int  # every weight bit of the layer's arrays (kernel and bias)
    words: int  # protected words
    extra_bits: int  # replica storage
    vote_luts: int  # estimated LUTs of the majority votes

    @property
    def extra_fraction(self) -> float:
        return self.extra_bits / self.weight_bits if self.weight_bits else 0.0


def layer_costs(manifest: Manifest, selection: WordSelection) -> list[LayerCost]:
    """Per weighted layer: storage the replicas add and the vote's estimated LUTs."""
    costs = []
    for layer in manifest.weighted_layers:
        arrays = {a.array for a in layer.arrays()}
        mine = [w for w in selection.words if w.array in arrays]
        costs.append(LayerCost(layer.name, sum(a.size * a.ptype.width for a in layer.arrays()), len(mine),
                               sum(2 * w.width for w in mine), sum(w.width for w in mine)))
    return costs


def coverage_rows(selection: WordSelection) -> list[dict]:
    """Coverage at the chosen k and at 1/5/10/25 % of the words (ranking scores, truth, best possible)."""
    n, k = selection.n_words, len(selection.words)
    ks = sorted({k, *(max(1, math.ceil(f * n)) for f in (0.01, 0.05, 0.10, 0.25))})
    return [{"words": j, "fraction_of_words": j / n, "chosen": j == k,
             "ranking_coverage": covered(selection.ranking_curve, j),
             "truth_coverage": covered(selection.truth_curve, j),
             "best_possible_truth_coverage": covered(selection.oracle_truth_curve, j)} for j in ks]


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def write_report(directory: Path, manifest: Manifest, selection: WordSelection, sources: dict) -> tuple[Path, Path]:
    """``report.md`` and ``summary.json`` of a hardened project."""
    costs = layer_costs(manifest, selection)
    rows = coverage_rows(selection)
    total = {"words": sum(c.words for c in costs), "weight_bits": sum(c.weight_bits for c in costs),
             "extra_bits": sum(c.extra_bits for c in costs), "vote_luts": sum(c.vote_luts for c in costs)}
    summary = {
        "scheme": "tmr", "project": sources["project"], "golden_project": sources["golden_project"],
        "ranking": sources["ranking"], "truth": selection.truth_info,
        "rule": selection.rule, "target": selection.target, "coverage_source": selection.coverage_source,
        "n_words_model": selection.n_words, "n_words_protected": len(selection.words),
        "coverage": rows,
        "cost": {"estimate": LUT_RULE, "total": total,
                 "layers": [{"layer": c.layer, "weight_bits": c.weight_bits, "words": c.words,
                             "extra_bits": c.extra_bits, "extra_fraction": c.extra_fraction,
                             "vote_luts": c.vote_luts} for c in costs]},
        "protected": [{"array": w.array, "element": w.element, "layer": w.layer, "tensor": w.tensor,
                       "flat_index": w.flat_index, "keras_index": list(w.keras_index), "rank": w.rank,
                       "word_rank": w.word_rank} for w in selection.words],
    }
    md = render("harden_report.md.j2", summary=summary, pct=_pct, lut_rule=LUT_RULE,
                rows=rows, costs=costs, total=total, words=selection.words[:20])
    directory = Path(directory)
    atomic_write_text(directory / "report.md", md)
    return directory / "report.md", write_summary(directory / "summary.json", summary)
