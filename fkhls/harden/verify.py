"""Proof in C-sim that a hardened project masks what it protects and changes nothing else.

Runs the hardened project's own top function (the reference harness: the vote included) on raw
input words and compares raw output words with the golden project: no faults (parity); every
single-bit fault in every copy (primary, ``_tmr1``, ``_tmr2``) of every protected word (must change
no output word); a seeded sample of single-bit faults in unprotected words (must give exactly the
golden project's faulty output words, which the golden project's fastest exact engine computes).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError
from fkhls.core.files import sha256_file
from fkhls.project.manifest import MANIFEST_NAME, Manifest, load_manifest

__all__ = ["Verification", "protected_scenarios", "verify_hardened"]


@dataclass(frozen=True)
class Verification:
    """Counts of raw output words; ``ok`` when every mismatch count is zero."""

    n_samples: int
    parity_mismatching_words: int  # hardened vs golden, no fault
    protected_faults: int  # single-bit faults, every bit of every copy of every protected word
    protected_changed_words: int  # output words those faults change (0 = masked)
    unprotected_faults: int  # single-bit faults in unprotected words (seeded sample or all)
    unprotected_total: int  # single-bit faults there are in unprotected words
    unprotected_mismatching_words: int  # hardened vs golden output words under the same fault
    unprotected_changed_words: int  # output words those faults change on both (they do act)
    seed: int
    golden_engine: str
    seconds: float

    @property
    def ok(self) -> bool:
        return not (self.parity_mismatching_words or self.protected_changed_words or self.unprotected_mismatching_words)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def protected_scenarios(manifest: Manifest) -> list[list[tuple[str, int, int]]]:
    """One single-bit scenario per bit of each copy of each protected word (primary, replica 1, replica 2)."""
    if not manifest.hardening:
        raise ProjectError(f"{str(manifest.project_dir)!r} is not a hardened project (fkhls harden makes one)")
    out = []
    for entry in manifest.hardening["arrays"]:
        r1, r2 = (r["array"] for r in entry["replicas"])
        for word in entry["words"]:
            for bit in range(entry["width"]):
                out += [[(entry["array"], word["element"], bit)], [(r1, word["replica_element"], bit)],
                        [(r2, word["replica_element"], bit)]]
    return out


def _golden(manifest: Manifest) -> Manifest:
    section = manifest.hardening
    golden_dir = Path(section["golden_project"])
    path = golden_dir / MANIFEST_NAME
    if not path.is_file() or sha256_file(path) != section["golden_manifest_sha256"]:
        raise ProjectError(f"the golden project {str(golden_dir)!r} this copy was hardened from is missing or has "
                           "changed since; harden it again")
    return load_manifest(golden_dir)


def verify_hardened(project_dir: str | Path, x_raw: np.ndarray, *, unprotected: int | None = 1000, seed: int = 0,
                    workers: int = 1) -> Verification:
    """Parity, masking and unchanged behaviour of a hardened project on raw input words ``x_raw``.

    ``unprotected``: how many unprotected single-bit faults to check (seeded sample; None = all).
    """
    from fkhls.csim.cone import cone_plan, run_cone_harness
    from fkhls.csim.harness import run_fault_harness

    start = time.perf_counter()
    manifest = load_manifest(project_dir)
    scenarios = protected_scenarios(manifest)
    golden = _golden(manifest)
    x_raw = np.asarray(x_raw, dtype=np.int64)
    plan = cone_plan(golden)  # the golden project's fastest exact engine, planned once

    def golden_run(project, x, faults, workers=1):
        if plan.supported:
            return run_cone_harness(project, x, faults, workers=workers, plan=plan)
        return run_fault_harness(project, x, faults, workers=workers)

    golden_engine = "cone" if plan.supported else f"harness ({plan.reason})"
    reference = golden_run(golden, x_raw, [[]], workers=1)[0]
    hardened_golden = run_fault_harness(manifest, x_raw, [[]])[0]
    masked = run_fault_harness(manifest, x_raw, scenarios, workers=workers)
    protected = {(e["array"], w["element"]) for e in manifest.hardening["arrays"] for w in e["words"]}
    pool = np.array([(i, e, b) for i, r in enumerate(golden.arrays()) for e in range(r.size)
                     for b in range(r.ptype.width) if (r.array, e) not in protected], dtype=np.int64).reshape(-1, 3)
    if unprotected is not None and unprotected < len(pool):
        pool = pool[np.sort(np.random.default_rng(seed).choice(len(pool), size=unprotected, replace=False))]
    names = [r.array for r in golden.arrays()]
    faults = [[(names[i], int(e), int(b))] for i, e, b in pool.tolist()]
    empty = np.zeros((0, *reference.shape), dtype=np.int64)
    on_hardened = run_fault_harness(manifest, x_raw, faults, workers=workers) if faults else empty
    on_golden = golden_run(golden, x_raw, faults, workers=workers) if faults else empty
    total = sum(r.size * r.ptype.width for r in golden.arrays()) - sum(
        e["width"] * len(e["words"]) for e in manifest.hardening["arrays"])
    return Verification(
        n_samples=int(len(x_raw)),
        parity_mismatching_words=int(np.count_nonzero(hardened_golden != reference)),
        protected_faults=len(scenarios),
        protected_changed_words=int(np.count_nonzero(masked != reference[None])),
        unprotected_faults=len(faults), unprotected_total=int(total),
        unprotected_mismatching_words=int(np.count_nonzero(on_hardened != on_golden)),
        unprotected_changed_words=int(np.count_nonzero(on_golden != reference[None])),
        seed=int(seed), golden_engine=golden_engine, seconds=time.perf_counter() - start,
    )
