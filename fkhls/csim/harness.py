"""The fault-campaign harness: one compiled C-sim binary that runs any number of fault scenarios.

For each scenario the binary (hls_templates/fault_harness.cpp.j2) flips the scenario's bits in
the weight arrays in memory (``w[e][b] = !w[e][b]`` on the ap_fixed word), runs every input
through the project's own top function, writes the raw output words and flips the bits back:
no recompile and no weight-file rewrite per fault, and the arithmetic is the hardware's.

Results go to a flat int64 file of shape (n_scenarios, n_samples, n_outputs), sign-extended raw
words, that callers memory-map (``open_results``). Each worker process writes its own
contiguous slice of scenarios in place, so a campaign can split the list over a pool:
``prepare_harness`` writes the inputs once and returns a picklable ``HarnessJob``;
``run_harness_slice(job, start, stop)`` is what a worker runs. ``run_fault_harness`` does all
of it in one call (optionally with several concurrent slices).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from fkhls.csim.build import CsimBinary, compile_program
from fkhls.core.errors import AddressError, BuildError, ProjectError
from fkhls.project.manifest import ArrayRecord, Manifest
from fkhls.core.templates import render

__all__ = [
    "EncodedScenarios",
    "HarnessJob",
    "render_harness",
    "build_harness",
    "encode_scenarios",
    "split_range",
    "open_results",
    "prepare_harness",
    "run_harness_slice",
    "run_fault_harness",
]

Fault = tuple[str, int, int]  # (array, element, bit)


@dataclass(frozen=True)
class EncodedScenarios:
    """Scenarios as the binary reads them: records (array id, element, bit) and per-scenario offsets."""

    records: np.ndarray  # (n_records, 3) int64
    offsets: np.ndarray  # (n_scenarios + 1,) int64; scenario s owns records[offsets[s]:offsets[s+1]]
    arrays: tuple[str, ...]  # array id -> array name (manifest order)

    @property
    def n_scenarios(self) -> int:
        return len(self.offsets) - 1


@dataclass(frozen=True)
class HarnessJob:
    """Everything a worker needs to run a slice of scenarios (paths and sizes only: picklable)."""

    binary: Path
    inputs: Path
    faults: Path
    offsets: Path
    results: Path
    n_samples: int
    n_scenarios: int
    n_out: int
    project: Path  # the binary's working directory: it reads firmware/weights/*.txt from there


def _arrays(manifest: Manifest) -> tuple[ArrayRecord, ...]:
    """Fault targets: the weight arrays, then a hardened project's replicas (``w2_tmr1``...)."""
    return manifest.arrays() + manifest.replica_arrays()


def render_harness(manifest: Manifest) -> str:
    """The harness C++ source of a project (one translation unit with its top function)."""
    out_type = manifest.output_ptype
    arrays = [dict(array=a.array, type_name=a.type_name, cpp=a.type["cpp"], size=a.size, width=a.ptype.width)
              for a in _arrays(manifest)]
    return render("fault_harness.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)),
                  out_signed=bool(out_type.signed), out_width=out_type.width, arrays=arrays)


def build_harness(manifest: Manifest) -> CsimBinary:
    """Compile (or reuse from the cache) the project's harness binary."""
    return compile_program(manifest.project_dir, render_harness(manifest), "fault_harness")


def _triple(item: Any) -> Fault:
    if hasattr(item, "array") and hasattr(item, "element"):  # addressing.HardwareBit
        return str(item.array), int(item.element), int(getattr(item, "array_bit", getattr(item, "bit", -1)))
    array, element, bit = item
    return str(array), int(element), int(bit)


def encode_scenarios(manifest: Manifest, scenarios: Iterable[Iterable]) -> EncodedScenarios:
    """Validate and encode scenarios (each a list of (array, element, bit) or HardwareBit).

    A bit listed twice in one scenario is flipped once (a scenario is a set of bits); an empty
    scenario is the golden run.
    """
    arrays = _arrays(manifest)
    ids = {a.array: i for i, a in enumerate(arrays)}
    records: list[tuple[int, int, int]] = []
    offsets = [0]
    for s_index, scenario in enumerate(scenarios):
        for array, element, bit in dict.fromkeys(_triple(item) for item in scenario):
            if array not in ids:
                raise AddressError(f"scenario {s_index}: no weight array {array!r}; arrays: {list(ids)}")
            record = arrays[ids[array]]
            if not 0 <= element < record.size:
                raise AddressError(f"scenario {s_index}: element {element} of {array} is outside the valid range "
                                   f"0..{record.size - 1}")
            if not 0 <= bit < record.ptype.width:
                raise AddressError(f"scenario {s_index}: bit {bit} of {array} ({record.type['cpp']}) is outside the "
                                   f"valid range 0..{record.ptype.width - 1}")
            records.append((ids[array], element, bit))
        offsets.append(len(records))
    return EncodedScenarios(np.asarray(records, dtype=np.int64).reshape(-1, 3), np.asarray(offsets, dtype=np.int64),
                            tuple(ids))


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """``n`` items in at most ``parts`` contiguous, nearly equal, non-empty slices (start, stop)."""
    if n <= 0:
        return []
    parts = max(1, min(int(parts), n))
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def open_results(path: str | Path, n_scenarios: int, n_samples: int, n_out: int, mode: str = "r") -> np.memmap:
    """Memory-map a results file: (n_scenarios, n_samples, n_out) int64 raw output words."""
    return np.memmap(path, dtype=np.int64, mode=mode, shape=(n_scenarios, n_samples, n_out))


def _check_x(manifest: Manifest, x_raw) -> np.ndarray:
    x_raw = np.ascontiguousarray(x_raw, dtype=np.int64)
    n_in = int(np.prod(manifest.input_shape))
    if x_raw.ndim != 2 or x_raw.shape[1] != n_in or x_raw.shape[0] == 0:
        raise ProjectError(f"raw inputs have shape {x_raw.shape}; the harness expects (N >= 1, {n_in}) raw words "
                           "(see fkhls.csim.build.input_words)")
    return x_raw


def prepare_harness(manifest: Manifest, x_raw, scenarios: Iterable[Iterable] | EncodedScenarios,
                    results: str | Path, workdir: str | Path, binary: CsimBinary | None = None) -> HarnessJob:
    """Build the binary, write inputs and faults to ``workdir`` and a zeroed results file; return the job."""
    x_raw = _check_x(manifest, x_raw)
    encoded = scenarios if isinstance(scenarios, EncodedScenarios) else encode_scenarios(manifest, scenarios)
    binary = binary or build_harness(manifest)
    workdir = Path(workdir).resolve()  # the binary runs in the project: every path it gets is absolute
    workdir.mkdir(parents=True, exist_ok=True)
    job = HarnessJob(binary=binary.path, inputs=workdir / "inputs.bin", faults=workdir / "faults.bin",
                     offsets=workdir / "offsets.bin", results=Path(results).resolve(), n_samples=int(x_raw.shape[0]),
                     n_scenarios=encoded.n_scenarios, n_out=int(np.prod(manifest.output_shape)),
                     project=binary.project)
    x_raw.tofile(job.inputs)
    encoded.records.tofile(job.faults)
    encoded.offsets.tofile(job.offsets)
    with open(job.results, "wb") as handle:  # sized up front: workers write their slices in place
        handle.truncate(job.n_scenarios * job.n_samples * job.n_out * 8)
    return job


def _command(job: HarnessJob, start: int, stop: int) -> list[str]:
    if not 0 <= start <= stop <= job.n_scenarios:
        raise ProjectError(f"scenario slice {start}..{stop} is outside 0..{job.n_scenarios}")
    return [str(job.binary), str(job.n_samples), str(job.inputs), str(job.faults), str(job.offsets),
            str(job.n_scenarios), str(job.results), str(start), str(stop)]


def _check(result_code: int, stderr: str, start: int, stop: int) -> None:
    if result_code != 0:
        raise BuildError(f"fault harness failed on scenarios {start}..{stop} (exit {result_code}): {stderr[-500:]}")


def run_harness_slice(job: HarnessJob, start: int, stop: int) -> None:
    """Run scenarios ``start..stop-1`` of a prepared job, writing their rows of the results file."""
    result = subprocess.run(_command(job, start, stop), capture_output=True, text=True, cwd=job.project)
    _check(result.returncode, result.stderr or result.stdout, start, stop)


# The reference: whole top function per sample. fkhls.csim.cone is the fast, exact alternative (golden
# activations, downstream cone only) and is tested against this one.
def run_fault_harness(manifest: Manifest, x_raw, scenarios: Sequence[Sequence] | EncodedScenarios, *,
                      out_path: str | Path | None = None, workers: int = 1,
                      binary: CsimBinary | None = None) -> np.ndarray:
    """Raw output words (n_scenarios, n_samples, n_outputs) of the C-sim with each scenario's bits flipped.

    ``x_raw``: (N, n_inputs) raw input words (``fkhls.csim.build.input_words``). ``scenarios``: each a list of
    (array, element, bit) flipped together (multi-bit scenarios work; an empty one is golden).
    With ``out_path`` the results stay in that file and a read-only memmap is returned (for
    campaigns too large for memory); otherwise an in-memory array. ``workers`` > 1 runs that many
    contiguous slices as concurrent processes.
    """
    with tempfile.TemporaryDirectory(prefix="fkhls-harness-") as tmp:
        results = Path(out_path) if out_path is not None else Path(tmp) / "results.bin"
        job = prepare_harness(manifest, x_raw, scenarios, results, tmp, binary)
        if job.n_scenarios == 0:
            return np.zeros((0, job.n_samples, job.n_out), dtype=np.int64)
        slices = split_range(job.n_scenarios, workers)
        procs = [(subprocess.Popen(_command(job, a, b), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=job.project),
                  a, b) for a, b in slices]
        errors = []
        for proc, a, b in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                errors.append((proc.returncode, err, a, b))
        for code, err, a, b in errors:
            _check(code, err, a, b)
        if out_path is not None:
            return open_results(results, job.n_scenarios, job.n_samples, job.n_out)
        return np.array(open_results(results, job.n_scenarios, job.n_samples, job.n_out))
