"""Golden parity: does the project's C-sim compute exactly what the QKeras model computes?

Both sides are compared as raw words of the project's output type. QKeras computes in
float32; a QKeras output that is not on the output grid (float rounding) counts as a mismatch
and its distance is measured in LSBs of the output type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fkhls.csim.build import run_csim
from fkhls.core.fixedpoint import type_from_dict
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


def compare_words(reference: np.ndarray, hardware_raw: np.ndarray, fractional: int, output_type: str) -> ParityReport:
    """Compare float reference outputs against hardware raw words, exactly (in LSB units)."""
    reference = np.asarray(reference, dtype=np.float64).reshape(hardware_raw.shape)
    scaled = np.ldexp(reference, fractional)  # exact: a power-of-two scaling of a float64
    diff = np.abs(scaled - hardware_raw.astype(np.float64))
    exact = diff == 0
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
    out_type = type_from_dict(manifest.output_type)
    return compare_words(reference, hardware.reshape(hardware.shape[0], -1), out_type.fractional,
                         manifest.output_type["cpp"])
