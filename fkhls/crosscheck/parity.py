"""Golden parity: does the project's C-sim compute exactly what the QKeras model computes?

Both sides are compared as raw integer words of the project's output type (int64), never as
floats: a float64 holds only 53 significant bits and the output type may be wider (up to
``fixedpoint.MAX_WIDTH``). QKeras computes in float32; its outputs are turned into words exactly
(``exact_words``), and one that is not on the output grid (float rounding) counts as a
mismatch, its distance measured in LSBs of the output type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fkhls.csim.build import run_csim
from fkhls.project.manifest import Manifest
from fkhls.model.spec import load_keras_model


@dataclass(frozen=True)
class ParityReport:
    samples: int
    outputs_compared: int
    bit_exact: int
    max_lsb_diff: float
    first_mismatch: tuple[int, int] | None  # (sample, output) of the first differing word
    output_type: str

    @property
    def all_exact(self) -> bool:
        return self.bit_exact == self.outputs_compared

    def rows(self) -> list[tuple[str, object]]:
        return [
            ("samples", self.samples),
            ("outputs compared", self.outputs_compared),
            ("bit-exact", f"{self.bit_exact} ({100.0 * self.bit_exact / max(self.outputs_compared, 1):.2f}%)"),
            ("max difference (LSB)", self.max_lsb_diff),
            ("output type", self.output_type),
            ("first mismatch (sample, output)", self.first_mismatch or "none"),
        ]


# Words whose magnitude stays below 2**62 differ by less than 2**63: their difference fits int64.
_WORD_LIMIT = 1 << 62


def exact_words(values, fractional: int) -> tuple[np.ndarray, np.ndarray]:
    """Float values -> (raw int64 words, on-grid mask), decided exactly for any word width.

    ``ldexp`` by a power of two is exact in float64 unless it under- or overflows, which the
    round trip back checks; a scaled float64 is on the grid iff it is an integer, and every
    integer-valued float64 below 2**62 converts to int64 exactly (above 2**53 every float64 is
    an integer, so no precision is lost there either). Off-grid, non-finite or out-of-range
    entries get word 0 and ``False`` in the mask.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        scaled = np.ldexp(values, fractional)
        on_grid = (np.isfinite(scaled) & (np.floor(scaled) == scaled) & (np.abs(scaled) < _WORD_LIMIT)
                   & (np.ldexp(scaled, -fractional) == values))
    words = np.where(on_grid, scaled, 0.0).astype(np.int64)
    return words, on_grid


def word_differences(reference_raw: np.ndarray, hardware_raw: np.ndarray,
                     on_grid: np.ndarray | None = None, reference_scaled: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(exact mask, distance in LSBs) of two arrays of raw words, compared as integers.

    ``on_grid`` marks reference words that exist (see ``exact_words``); an off-grid reference is
    never exact, and its distance is measured from ``reference_scaled`` (the reference in LSB
    units, float64: a report figure, not the verdict).
    """
    reference_raw = np.asarray(reference_raw, dtype=np.int64)
    hardware_raw = np.asarray(hardware_raw, dtype=np.int64).reshape(reference_raw.shape)
    if on_grid is None:
        on_grid = np.ones(reference_raw.shape, dtype=bool)
    exact = on_grid & (reference_raw == hardware_raw)
    distance = np.abs(reference_raw - hardware_raw).astype(np.float64)  # exact ints first, then a float figure
    if not on_grid.all():
        off = ~on_grid
        scaled = np.asarray(reference_scaled, dtype=np.float64).reshape(reference_raw.shape)
        distance[off] = np.abs(scaled[off] - hardware_raw[off].astype(np.float64))
    return exact, distance


def compare_words(reference: np.ndarray, hardware_raw: np.ndarray, fractional: int, output_type: str) -> ParityReport:
    """Compare float reference outputs against hardware raw words exactly, word by word as integers."""
    hardware_raw = np.asarray(hardware_raw, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.float64).reshape(hardware_raw.shape)
    words, on_grid = exact_words(reference, fractional)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ldexp(reference, fractional)
    exact, diff = word_differences(words, hardware_raw, on_grid, scaled)
    mismatches = np.argwhere(~exact)
    return ParityReport(
        samples=int(hardware_raw.shape[0]),
        outputs_compared=int(hardware_raw.size),
        bit_exact=int(exact.sum()),
        max_lsb_diff=float(diff.max()) if diff.size else 0.0,
        first_mismatch=tuple(int(i) for i in mismatches[0][:2]) if len(mismatches) else None,
        output_type=output_type,
    )


def golden_parity(manifest: Manifest, inputs: np.ndarray, model=None) -> ParityReport:
    """Run the C-sim and QKeras on the same inputs and compare every output word."""
    hardware = run_csim(manifest, inputs)
    model = model if model is not None else load_keras_model(manifest.model_path)
    batch = np.asarray(inputs, dtype=np.float32).reshape((-1, *manifest.input_shape))
    reference = model.predict(batch, verbose=0, batch_size=1024)
    out_type = manifest.output_ptype
    return compare_words(reference, hardware.reshape(hardware.shape[0], -1), out_type.fractional,
                         manifest.output_type["cpp"])
