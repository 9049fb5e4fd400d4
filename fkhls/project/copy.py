"""A copy of a golden project to change (a faulty or a hardened project): the golden one is only read.

One rule for every such copy: the target follows fkhls's output rule (never in or around the golden
project; an existing directory only if empty or an fkhls project, replaced only with ``force``), its
path must be one hls4ml's own build can take, the copy is staged and moved into place complete, and
its ``hls4ml_config.yml`` names the copy, never the golden project.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fkhls.core.files import PROJECT, check_output_dir, staged_directory
from fkhls.project.export import check_project_path
from fkhls.project.readback import retarget_hls4ml_config

# Build products and fkhls's record of injected faults stay behind (fkhls.csim.inject writes its own).
FAULTS_JSON = "faults.json"
_IGNORED = ("*_prj", "*.so", "*.o", "fkhls_csim", FAULTS_JSON)


def check_copy_target(golden_dir: Path, output_dir: Path, force: bool, what: str) -> None:
    """Refuse a target before any work: the output rule, and a path hls4ml's build can take."""
    check_output_dir(output_dir, force, what, owner=PROJECT, golden=golden_dir)
    check_project_path(output_dir, what)


@contextmanager
def project_copy(golden_dir: Path, output_dir: Path, force: bool, what: str) -> Iterator[Path]:
    """A staged copy of ``golden_dir`` for the body to change; moved to ``output_dir`` when the body succeeds."""
    check_copy_target(golden_dir, output_dir, force, what)
    with staged_directory(output_dir, force, what, owner=PROJECT, golden=golden_dir) as staging:
        shutil.copytree(golden_dir, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_IGNORED))
        retarget_hls4ml_config(staging, golden_dir, Path(output_dir).resolve())
        yield staging
