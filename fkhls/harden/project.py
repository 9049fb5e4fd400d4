"""``fkhls harden``: a hardened copy of a golden project, its manifest section and its report.

The golden project is only read; the hardened one is built in a staging directory and moved into
place complete (``core.files.staged_directory``), like ``fkhls inject``'s faulty copies.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from fkhls.core.errors import ProjectError
from fkhls.core.files import staged_directory
from fkhls.harden.report import write_report
from fkhls.harden.select import WordSelection, select_words
from fkhls.harden.tmr import write_tmr
from fkhls.project.manifest import MANIFEST_NAME, Manifest, load_manifest
from fkhls.project.readback import retarget_hls4ml_config

__all__ = ["HardenResult", "harden_project"]

# Build outputs describe the golden build; an inject record describes another copy.
_IGNORED = ("*_prj", "*.so", "*.o", "fkhls_csim", "faults.json")


@dataclass(frozen=True)
class HardenResult:
    project_dir: Path
    golden_dir: Path
    manifest: Manifest
    selection: WordSelection
    report: Path
    summary: Path


def _check_apart(golden: Path, target: Path) -> None:
    golden, target = golden.resolve(), target.resolve()
    if golden == target or golden in target.parents or target in golden.parents:
        raise ProjectError(f"the hardened project {str(target)!r} must be outside the golden project {str(golden)!r} "
                           "(and not contain it)")


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
    _check_apart(golden_dir, output_dir)
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
             "golden_manifest_sha256": hashlib.sha256((golden_dir / MANIFEST_NAME).read_bytes()).hexdigest(),
             "ranking": ranking_info, "truth": selection.truth_info, "rule": selection.rule,
             "target": selection.target, "coverage_source": selection.coverage_source}
    with staged_directory(output_dir, force, "hardened project directory") as staging:
        shutil.copytree(golden_dir, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_IGNORED))
        retarget_hls4ml_config(staging, golden_dir, output_dir.resolve())
        hardened, _ = write_tmr(manifest, staging, selection.words, extra)
        write_report(staging, manifest, selection, {"project": str(output_dir.resolve()),
                                                     "golden_project": str(golden_dir), "ranking": ranking_info})
    target = output_dir.resolve()
    return HardenResult(target, golden_dir, load_manifest(target), selection, target / "report.md",
                        target / "summary.json")
