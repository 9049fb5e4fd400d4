"""Layer-by-layer C-sim traces: every layer output of the project, as raw words, with faults applied.

The trace binary (hls_templates/trace_harness.cpp.j2) replays the top function's own calls
(read by fkhls.project.program) and dumps each output after its call. The cross-check uses it to find
the first layer where hardware and emulation diverge.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from fkhls.csim.build import CsimBinary, compile_program
from fkhls.core.errors import BuildError
from fkhls.csim.harness import encode_scenarios
from fkhls.project.manifest import Manifest
from fkhls.project.program import read_program
from fkhls.core.templates import render


@dataclass(frozen=True)
class LayerTrace:
    layer: str  # hls4ml layer name
    variable: str  # C variable written by the call
    words: np.ndarray  # (samples, count) low-bit raw words (not sign-extended)
    width: int


def render_trace_harness(manifest: Manifest) -> str:
    program = read_program(manifest)
    signature = ", ".join(
        f"hls::stream<{p.type_name}> &{p.name}" if p.stream else f"{p.type_name} (&{p.name})[{p.size}]"
        for p in program.params
    )
    out_type = manifest.output_ptype
    arrays = [dict(array=a.array) for a in manifest.arrays()]
    return render("trace_harness.cpp.j2", project_name=manifest.project_name, io_type=manifest.io_type,
                  n_in=int(np.prod(manifest.input_shape)), n_out=int(np.prod(manifest.output_shape)),
                  out_signed=bool(out_type.signed), out_width=out_type.width, arrays=arrays, signature=signature,
                  locals=program.locals, aliases=sorted(program.aliases.items()), calls=program.calls)


def build_trace_harness(manifest: Manifest) -> CsimBinary:
    return compile_program(manifest.project_dir, render_trace_harness(manifest), "trace_harness")


def run_trace(manifest: Manifest, x_raw: np.ndarray, faults: Iterable = ()) -> dict[str, LayerTrace]:
    """Trace every layer for each sample with the given bits (array, element, bit) flipped together.

    Returns traces keyed by the C variable each call writes (the manifest's ``output_var``).
    """
    binary = build_trace_harness(manifest)
    encoded = encode_scenarios(manifest, [list(faults)])
    x_raw = np.ascontiguousarray(x_raw, dtype=np.int64).reshape(len(x_raw), -1)
    with tempfile.TemporaryDirectory(prefix="fkhls-trace-") as tmp:
        tmp = Path(tmp).resolve()
        x_raw.tofile(tmp / "x.bin")
        encoded.records.astype(np.int64).tofile(tmp / "faults.bin")
        cmd = [str(binary.path), str(len(x_raw)), str(tmp / "x.bin"), str(tmp / "faults.bin"),
               str(len(encoded.records)), str(tmp / "trace.bin"), str(tmp / "layout.txt")]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=binary.project)
        if result.returncode != 0:
            raise BuildError(f"trace harness failed (exit {result.returncode}): {result.stderr[-500:]}")
        layout = [line.split() for line in (tmp / "layout.txt").read_text().splitlines()]
        words = np.fromfile(tmp / "trace.bin", dtype=np.int64)
    counts = [int(count) for _, _, count, _ in layout]
    per_sample = words.reshape(len(x_raw), sum(counts))
    traces: dict[str, LayerTrace] = {}
    start = 0
    for (layer, variable, count, width), n in zip(layout, counts):
        traces[variable] = LayerTrace(layer, variable, per_sample[:, start:start + n], int(width))
        start += n
    return traces
