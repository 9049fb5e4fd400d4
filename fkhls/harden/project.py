"""``fkhls harden``: a hardened copy of a golden project, its manifest section and its report.

The golden project is only read; the hardened one is built in a staging directory and moved into
place complete (``core.files.staged_directory``), like ``fkhls inject``'s faulty copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fkhls.core.errors import ProjectError
from fkhls.core.files import sha256_file
from fkhls.harden.report import write_report
from fkhls.harden.select import WordSelection, select_words
from fkhls.harden.tmr import write_tmr
from fkhls.project.manifest import MANIFEST_NAME, Manifest, load_manifest
from fkhls.project.copy import check_copy_target, project_copy

__all__ = ["HardenResult", "harden_project"]

# Build outputs describe the golden build; an inject record describes another copy.


@dataclass(frozen=True)
class HardenResult:
    project_dir: Path
    golden_dir: Path
    manifest: Manifest
    selection: WordSelection
    report: Path
    summary: Path




def harden_project(project_dir: str | Path, ranking_path: str | Path, output_dir: str | Path, *,
                   budget: int | None = None, coverage: float | None = None, truth_dir: str | Path | None = None,
                   criterion: str = "top1", force: bool = False) -> HardenResult:
    """Protect the ranking's most sensitive words of ``project_dir`` by TMR in a copy at ``output_dir``."""
    from fkhls.campaign.runner import project_hash
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.rank.bitorder import BitSpace
    from fkhls.rank.ranking import read_ranking
    from fkhls.rank.truth import check_campaign_project, truth_from_campaign

    golden_dir = Path(project_dir).resolve()
    manifest = load_manifest(golden_dir)
    if manifest.hardening:
        raise ProjectError(f"{str(golden_dir)!r} is already hardened; harden the golden project instead")
    output_dir = Path(output_dir)
    check_copy_target(golden_dir, output_dir, force, "hardened project directory")
    space = BitSpace.of(spec_from_manifest(manifest))
    ranking = read_ranking(ranking_path, space)
    made_on = ranking.info.get("project_hash")
    if made_on is not None and made_on != project_hash(golden_dir):
        raise ProjectError(f"ranking {str(ranking_path)!r} was made on another project than {str(golden_dir)!r} "
                           "(project hashes differ); rank this project first (fkhls rank)")
    truth = None
    if truth_dir is not None:
        check_campaign_project(Path(truth_dir), golden_dir)
        truth = truth_from_campaign(truth_dir, space, criterion)
    selection = select_words(manifest, ranking, budget=budget, coverage=coverage, truth=truth)
    ranking_info = {"path": str(Path(ranking_path).resolve()), "method": ranking.method,
                    "seed": ranking.info.get("seed"), "inputs_hash": ranking.info.get("inputs_hash"),
                    "project_hash": made_on}
    extra = {"golden_project": str(golden_dir),
             "golden_manifest_sha256": sha256_file(golden_dir / MANIFEST_NAME),
             "ranking": ranking_info, "truth": selection.truth_info, "rule": selection.rule,
             "target": selection.target, "coverage_source": selection.coverage_source}
    with project_copy(golden_dir, output_dir, force, "hardened project directory") as staging:
        hardened, _ = write_tmr(manifest, staging, selection.words, extra)
        write_report(staging, manifest, selection, {"project": str(output_dir.resolve()),
                                                     "golden_project": str(golden_dir), "ranking": ranking_info})
    target = output_dir.resolve()
    return HardenResult(target, golden_dir, load_manifest(target), selection, target / "report.md",
                        target / "summary.json")
