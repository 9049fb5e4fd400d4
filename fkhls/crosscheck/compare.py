"""Cross-check: the emulation and the C-sim, fault scenario by scenario, compared as raw words.

For every scenario both engines run on the same inputs: the exact emulator
(``fkhls.emulate.emulator.forward_raw`` on the faulty words, or FKeras's float32 ``model.predict`` with
``reference="tf"``) and the project's C-sim through the fault harness. Where they differ, both
sides are traced layer by layer on the differing samples and the first diverging layer is
found; the cause is then read off the project's real types (re-read from defines.h, since a
project may have been edited after export) against the exact ones:

``accumulator_wrap`` / ``accumulator_saturation``  the exact sum does not fit the accumulator
``accumulator_rounding``                           the accumulator keeps fewer fractional bits than the products
``output_wrap`` / ``output_saturation``            the layer's value does not fit its output type
``output_rounding``                                the output type keeps fewer fractional bits
``rounding_mode``                                  same grid, different rounding/saturation mode than QKeras
``float_rounding_in_tf``                           QKeras's float32 arithmetic rounded; the exact emulation agrees with hardware
``mapping``                                        the hardware flipped a different weight bit than the emulation
``unknown``                                        none of the above explains it

With ``reference="tf"``, a difference the exact emulation does not share (it agrees with the C-sim)
in a model with a layer approximate by nature is that layer's, not the bridge's: the cause is the
code its handler declares (``LayerHandler.approximation``: ``softmax_table``, ``softmax_argmax``,
``sigmoid_table``, ``tanh_table``, ``average_divide``, ``float_batchnorm`` ...), blamed on the first
such layer of the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

from fkhls.faults.addressing import HardwareBit, from_array_bit, map_faults
from fkhls.csim.build import input_words
from fkhls.emulate.emulator import apply_faults, forward_raw, golden_weights
from fkhls.core.errors import ProjectError
from fkhls.faults.descriptors import FaultScenario, FaultSet
from fkhls.core.fixedpoint import (
    FixedPrecisionType,
    cpp_type,
    from_raw,
    raw_bounds,
    type_to_dict,
    wrap_raw,
)
from fkhls.project.manifest import LayerRecord, Manifest
from fkhls.model.spec import ModelSpec, describe_model, load_keras_model
from fkhls.project.program import read_program
from fkhls.project.readback import config_struct, read_parameters, read_typedefs
from fkhls.crosscheck.parity import exact_words, word_differences

CAUSES = (
    "accumulator_wrap", "accumulator_saturation", "accumulator_rounding", "output_wrap", "output_saturation",
    "output_rounding", "rounding_mode", "float_rounding_in_tf", "mapping", "unknown",
)  # plus the cause codes the handlers of approximate-by-nature layers declare (see the module docstring)


def first_approximation(spec: ModelSpec):
    """(step, Approximation) of the model's first step approximate by nature, or None."""
    from fkhls.model.layers import handler_for_kind

    in_type = spec.input_type
    for step in spec.layers:
        approx = handler_for_kind(step.kind).approximation(step, in_type)
        if approx is not None:
            return step, approx
        in_type = step.result_type
    return None


@dataclass(frozen=True)
class Divergence:
    """Where and why the two sides part: the first layer whose output words differ."""

    layer: str
    hls_layer: str | None
    samples_traced: int
    words_differing: int
    max_lsb_diff: float
    cause: str
    explanation: str


@dataclass(frozen=True)
class ScenarioResult:
    index: int
    name: str
    bits: tuple[dict, ...]
    outputs_compared: int
    bit_exact: int
    max_lsb_diff: float
    first_mismatch: tuple[int, int] | None
    divergence: Divergence | None = None

    @property
    def exact(self) -> bool:
        return self.bit_exact == self.outputs_compared


@dataclass(frozen=True)
class CrosscheckReport:
    project: str
    reference: str
    engine: str
    samples: int
    seed: int
    output_type: str
    scenarios: tuple[ScenarioResult, ...]
    golden: ScenarioResult | None = None  # the project without faults: a failing golden explains every scenario
    notes: tuple[str, ...] = field(default=())

    @property
    def outputs_compared(self) -> int:
        return sum(s.outputs_compared for s in self.scenarios)

    @property
    def bit_exact(self) -> int:
        return sum(s.bit_exact for s in self.scenarios)

    @property
    def max_lsb_diff(self) -> float:
        return max((s.max_lsb_diff for s in self.scenarios), default=0.0)

    @property
    def mismatching(self) -> tuple[ScenarioResult, ...]:
        return tuple(s for s in self.scenarios if not s.exact)

    @property
    def all_exact(self) -> bool:
        return not self.mismatching

    @property
    def explained_by_approximation(self) -> bool:
        """True when every differing scenario differs only by a layer approximate by nature (the bridge is exact)."""
        differing = [s for s in (self.golden, *self.scenarios) if s is not None and not s.exact]
        return bool(differing) and all(s.divergence is not None and s.divergence.cause not in CAUSES
                                       for s in differing)

    def cause_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.mismatching:
            cause = s.divergence.cause if s.divergence else "unknown"
            counts[cause] = counts.get(cause, 0) + 1
        return counts

    def to_summary(self) -> dict:
        return {
            "project": self.project,
            "reference": self.reference,
            "engine": self.engine,
            "scenarios": len(self.scenarios),
            "samples": self.samples,
            "outputs_compared": self.outputs_compared,
            "bit_exact": self.bit_exact,
            "max_lsb_diff": self.max_lsb_diff,
            "all_bit_exact": self.all_exact,
            "seed": self.seed,
            "output_type": self.output_type,
            "golden_bit_exact": self.golden.exact if self.golden else None,
            "golden": asdict(self.golden) if self.golden else None,
            "causes": self.cause_counts(),
            "explained_by_approximate_layers": self.explained_by_approximation,
            "mismatching": [asdict(s) for s in self.mismatching],
            "scenario_results": [{"index": s.index, "name": s.name, "n_bits": len(s.bits), "bit_exact": s.bit_exact,
                                  "outputs_compared": s.outputs_compared, "max_lsb_diff": s.max_lsb_diff}
                                 for s in self.scenarios],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------- running both engines


def _csim_outputs(manifest: Manifest, x_raw: np.ndarray, scenarios: Sequence[Sequence[HardwareBit]],
                  workers: int) -> tuple[np.ndarray, str]:
    """(S, N, out) raw words from the fastest exact harness available for this project."""
    from fkhls.csim.cone import cone_plan, run_cone_harness
    from fkhls.csim.harness import run_fault_harness

    triples = [[(b.array, b.element, b.array_bit) for b in bits] for bits in scenarios]
    plan = cone_plan(manifest)  # once: the harness is rendered from this same plan
    if plan.supported:
        return run_cone_harness(manifest, x_raw, triples, workers=workers, plan=plan), "cone harness"

    return run_fault_harness(manifest, x_raw, triples, workers=workers), "fault harness"


@dataclass(frozen=True)
class _Reference:
    """The emulation's outputs of one scenario as raw words of the output type (``parity.exact_words``)."""

    words: np.ndarray  # (N, out) int64
    on_grid: np.ndarray  # (N, out) bool: False where a float reference is not a word of the type
    scaled: np.ndarray | None  # float references in LSB units (distance figures of off-grid words)


def _reference_outputs(model, spec: ModelSpec, weights, x_raw: np.ndarray, x: np.ndarray,
                       scenario: FaultScenario, reference: str) -> _Reference:
    """The emulation's output words of one scenario: integers from the exact emulator, or QKeras floats made words."""
    if reference == "exact":
        shaped = x_raw.reshape((len(x_raw), *spec.input_shape))  # the harness takes flat words, the emulator shaped
        words = forward_raw(spec, apply_faults(spec, weights, scenario.faults), shaped).reshape(len(x), -1)
        return _Reference(np.asarray(words, dtype=np.int64), np.ones(words.shape, dtype=bool), None)
    from fkhls.emulate.emulator import faulty_model_outputs

    frac = spec.output_type.fractional
    values = np.asarray(faulty_model_outputs(model, scenario, x, spec=spec, method="tf"),
                        dtype=np.float64).reshape(len(x), -1)
    words, on_grid = exact_words(values, frac)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ldexp(values, frac)
    return _Reference(words, on_grid, scaled)


def compare_scenario(ref: _Reference, hardware_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact mask, LSB distance) of one scenario: raw words compared as integers (``parity.word_differences``)."""
    return word_differences(ref.words, hardware_raw, ref.on_grid, ref.scaled)


def _same_values(raw_a: np.ndarray, frac_a: int, raw_b: np.ndarray, frac_b: int) -> tuple[np.ndarray, float]:
    """Where two word arrays of different scales hold different values, and the largest difference in LSBs of ``b``.

    Exact for any width: both sides are brought to the finer scale as Python integers.
    """
    top = max(frac_a, frac_b)
    a = np.asarray(raw_a, dtype=np.int64).astype(object) * (1 << (top - frac_a))
    b = np.asarray(raw_b, dtype=np.int64).astype(object) * (1 << (top - frac_b))
    differ = (a != b).astype(bool)
    if not differ.any():
        return differ, 0.0
    largest = max(abs(int(d)) for d in (a - b)[differ].ravel())
    return differ, float(Fraction(largest, 1 << (top - frac_b)))


# ----------------------------------------------------------------------------- diagnosis


def _var_type(typedefs: dict, program, variable: str) -> FixedPrecisionType | None:
    var = program.variable(variable)
    found = typedefs.get(var.type_name)
    return found if isinstance(found, FixedPrecisionType) else None


def _explain_types(record: LayerRecord, exact: np.ndarray, actual_accum: FixedPrecisionType | None,
                   actual_out: FixedPrecisionType | None) -> tuple[str, str]:
    """Why a layer's hardware output differs, judged from its real types against the exact values."""
    spec_out = record.result_ptype
    spec_acc = record.accum_ptype
    exact_raw_at = lambda t: np.ldexp(exact, t.fractional)  # noqa: E731  exact values in LSBs of t
    if spec_acc is not None and actual_accum is not None and type_to_dict(actual_accum) != type_to_dict(spec_acc):
        lo, hi = raw_bounds(actual_accum)
        scaled = exact_raw_at(actual_accum)
        if np.any((scaled < lo) | (scaled > hi)):
            kind = "accumulator_wrap" if actual_accum.saturation_mode.name == "WRAP" else "accumulator_saturation"
            return kind, (f"the exact sums reach [{exact.min()}, {exact.max()}], outside the accumulator "
                          f"{cpp_type(actual_accum)} (range [{lo * 2.0**-actual_accum.fractional}, "
                          f"{hi * 2.0**-actual_accum.fractional}]); exact needs {cpp_type(spec_acc)}")
        if actual_accum.fractional < spec_acc.fractional:
            return "accumulator_rounding", (
                f"the accumulator {cpp_type(actual_accum)} keeps {actual_accum.fractional} fractional bits, the "
                f"products need {spec_acc.fractional} ({cpp_type(spec_acc)}): each product is "
                f"{actual_accum.rounding_mode.name}-rounded before the sum")
    if actual_out is not None and type_to_dict(actual_out) != type_to_dict(spec_out):
        lo, hi = raw_bounds(actual_out)
        scaled = np.floor(exact_raw_at(actual_out))
        if np.any((scaled < lo) | (scaled > hi)):
            kind = "output_wrap" if actual_out.saturation_mode.name == "WRAP" else "output_saturation"
            return kind, (f"values reach [{exact.min()}, {exact.max()}], outside the output type "
                          f"{cpp_type(actual_out)}; QKeras's grid is {cpp_type(spec_out)}")
        if actual_out.fractional < spec_out.fractional:
            return "output_rounding", (f"the output type {cpp_type(actual_out)} keeps {actual_out.fractional} "
                                       f"fractional bits, QKeras's grid has {spec_out.fractional} ({cpp_type(spec_out)})")
        if (actual_out.rounding_mode, actual_out.saturation_mode) != (spec_out.rounding_mode, spec_out.saturation_mode):
            return "rounding_mode", (f"the output type {cpp_type(actual_out)} rounds/saturates with "
                                     f"{actual_out.rounding_mode.name}/{actual_out.saturation_mode.name}; QKeras "
                                     f"needs {spec_out.rounding_mode.name}/{spec_out.saturation_mode.name} "
                                     f"({cpp_type(spec_out)})")
    return "unknown", "the layer's types match the exact ones; no type explains the difference"


def _check_mapping(manifest: Manifest, scenario: FaultScenario, bits: Sequence[HardwareBit]) -> str | None:
    """A description of a mapping error, or None when every hardware bit maps back to its fault."""
    for fault, bit in zip(scenario.faults, bits):
        back = from_array_bit(manifest, bit.array, bit.element, bit.array_bit)
        if (back.layer, back.tensor, back.lbi) != (fault.layer, fault.tensor, fault.lbi):
            return (f"{fault.layer}.{fault.tensor} lbi {fault.lbi} was flipped in hardware at {bit.array}[{bit.element}] "
                    f"bit {bit.array_bit}, which is {back.layer}.{back.tensor} lbi {back.lbi}")
    return None


def _golden_words_match(manifest: Manifest, spec: ModelSpec, weights) -> str | None:
    """Check the project's weight files still hold the model's words (a hand edit would be a mapping error)."""
    from fkhls.project.weights import read_array_words

    for layer in manifest.weighted_layers:
        for record in layer.arrays():
            words = read_array_words(manifest.project_dir, record)
            expected = np.asarray(weights[(layer.owner(record), record.tensor)]).transpose(record.axes).ravel()
            if not np.array_equal(words, expected):
                element = int(np.argmax(words != expected))
                return (f"{record.array}.txt element {element} holds word {int(words[element])}, the model's "
                        f"{layer.owner(record)}.{record.tensor} has {int(expected[element])}")
    return None


def diagnose(manifest: Manifest, spec: ModelSpec, weights, x_raw: np.ndarray, scenario: FaultScenario,
             bits: Sequence[HardwareBit], samples: np.ndarray, reference: str,
             exact_agrees: bool | None = None) -> Divergence:
    """Trace both sides on ``samples`` and explain the first layer where their words differ."""
    from fkhls.csim.trace import run_trace

    mapping = _check_mapping(manifest, scenario, bits) if bits else None
    if mapping:
        return Divergence(bits[0].layer, None, 0, 0, 0.0, "mapping", mapping)
    if reference == "tf" and exact_agrees and first_approximation(spec) is not None:
        step, approx = first_approximation(spec)
        return Divergence(step.name, None, int(len(samples)), 0, 0.0, approx.cause,
                          f"layer {step.name!r} is approximate by nature: {approx.reason}; the exact emulation of the "
                          "same faulty words agrees with the C-sim bit for bit, so the bridge is exact (declared "
                          f"bound at the layer: {approx.bound_lsb:g} LSB; `fkhls verify` measures it)"
                          if approx.bound_lsb is not None else
                          f"layer {step.name!r} is approximate by nature: {approx.reason}; the exact emulation agrees "
                          "with the C-sim bit for bit")
    if reference == "tf" and exact_agrees:
        return Divergence("(output)", None, int(len(samples)), 0, 0.0, "float_rounding_in_tf",
                          "QKeras's float32 predict rounds a sum that needs more than 24 significant bits; the exact "
                          "emulation of the same faulty words agrees with the C-sim bit for bit")
    x_sel = x_raw[samples]
    _, emu_trace = forward_raw(spec, apply_faults(spec, weights, scenario.faults), x_sel.reshape(
        (len(samples), *spec.input_shape)), trace=True)
    hw_trace = run_trace(manifest, x_sel, [(b.array, b.element, b.array_bit) for b in bits])
    program = read_program(manifest)
    typedefs = read_typedefs(manifest.project_dir)
    parameters = read_parameters(manifest.project_dir)
    for record in manifest.layers:
        if record.output_var is None or record.output_var not in hw_trace:
            continue
        out_type = _var_type(typedefs, program, record.output_var)
        if out_type is None:
            continue
        hw_words = wrap_raw(out_type, hw_trace[record.output_var].words)
        spec_type = record.result_ptype
        emu_words = emu_trace[record.name].reshape(len(samples), -1)
        differ, lsb_diff = _same_values(hw_words, out_type.fractional, emu_words.reshape(hw_words.shape),
                                        spec_type.fractional)
        if not differ.any():
            continue
        emu_values = from_raw(spec_type, emu_words)  # for the range checks of the explanation
        actual_accum = None
        if record.hls_index is not None and record.accum_type is not None:
            accum_name = config_struct(parameters, record.hls_index).get("accum_t")
            found = typedefs.get(accum_name) if accum_name else None
            actual_accum = found if isinstance(found, FixedPrecisionType) else None
        # The emulated value is exact: for a weighted step it is the exact accumulator (export's types).
        cause, why = _explain_types(record, emu_values, actual_accum, out_type)
        return Divergence(record.name, record.hls_name, int(len(samples)), int(differ.sum()), lsb_diff, cause, why)
    return Divergence("(output)", None, int(len(samples)), 0, 0.0, "unknown",
                      "every traced layer agrees; the outputs differ only after the last traced call")


# ----------------------------------------------------------------------------- the cross-check


def crosscheck(manifest: Manifest, fault_set: FaultSet, inputs: np.ndarray, *, model=None, reference: str = "exact",
               trace_samples: int = 16, workers: int = 1, progress=None) -> CrosscheckReport:
    """Compare the emulation and the C-sim on every scenario of ``fault_set``; diagnose each mismatch."""
    if reference not in ("exact", "tf"):
        raise ProjectError(f"reference {reference!r} is not valid; valid: 'exact', 'tf'")
    model = model if model is not None else load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_ptype, **manifest.describe_options)
    weights = golden_weights(model, spec)
    x_raw = input_words(manifest, inputs)
    x = np.asarray(inputs, dtype=np.float64).reshape((len(x_raw), *manifest.input_shape))
    notes = []
    edited = _golden_words_match(manifest, spec, weights)
    if edited:
        notes.append(f"the project's weight files differ from the model: {edited}")
    # Scenario 0 is the golden run (no fault): if it differs, the project itself is not exact.
    scenarios = [FaultScenario("golden (no fault)", ())] + list(fault_set.scenarios)
    bits = [map_faults(manifest, s.faults) for s in scenarios]
    hardware, engine = _csim_outputs(manifest, x_raw, bits, workers)
    out_type = manifest.output_ptype
    results = []
    for index, scenario in enumerate(scenarios):
        ref = _reference_outputs(model, spec, weights, x_raw, x, scenario, reference)
        exact, diff = compare_scenario(ref, hardware[index].reshape(len(x_raw), -1))
        first = tuple(int(i) for i in np.argwhere(~exact)[0]) if not exact.all() else None
        divergence = None
        if first is not None:
            samples = np.unique(np.argwhere(~exact)[:, 0])[:trace_samples]
            agrees = None
            if reference == "tf":
                emu = forward_raw(spec, apply_faults(spec, weights, scenario.faults), x_raw[samples].reshape(
                    (len(samples), *spec.input_shape))).reshape(len(samples), -1)
                agrees = bool(np.array_equal(emu, hardware[index][samples].reshape(len(samples), -1)))
            divergence = diagnose(manifest, spec, weights, x_raw, scenario, bits[index], samples, reference, agrees)
        results.append(ScenarioResult(
            index=index - 1, name=scenario.name,
            bits=tuple(dict(layer=b.layer, tensor=b.tensor, lbi=b.lbi, array=b.array, element=b.element,
                            array_bit=b.array_bit) for b in bits[index]),
            outputs_compared=int(diff.size), bit_exact=int(exact.sum()), max_lsb_diff=float(diff.max(initial=0.0)),
            first_mismatch=first, divergence=divergence))
        if progress is not None:
            progress(index + 1, len(scenarios))
    if not results[0].exact:
        notes.append("the project without faults already differs from the emulation: see the golden row")
    return CrosscheckReport(project=str(manifest.project_dir), reference=reference, engine=engine,
                            samples=int(len(x_raw)), seed=fault_set.seed, output_type=cpp_type(out_type),
                            scenarios=tuple(results[1:]), golden=results[0], notes=tuple(notes))
