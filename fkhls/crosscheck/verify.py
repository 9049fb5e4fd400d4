"""``fkhls verify``: golden parity plus a verdict for every layer, exact or approximate by nature.

How a layer is judged (the attribution rule):

- Each step runs its handler's exact forward fed **QKeras's own input of that layer**, as words of
  the previous step's type, and its output words are compared with QKeras's output of the layer.
  So every layer is measured on its own, not through the deviations of the layers before it.
- Where QKeras's input is not a word of that type (it comes out of an approximate layer: a float
  softmax or sigmoid, or out of a layer that already differs) or QKeras has no tensor there (the
  dense step before its inline activation), the step is fed the emulator's words of the step
  before. A difference of a step fed that way downstream of an approximate (or differing) step is
  **attributed** to that step and does not count against the layer.
- The final output: the C-sim against QKeras word for word (``ParityReport``) with the argmax
  agreement, and the C-sim against the emulator, which must be equal (the emulator is what the
  layer verdicts are measured on; ``fkhls crosscheck`` diagnoses a difference).

The verdict passes when every judged exact layer is bit for bit, every judged approximate layer is
within the bound its handler declares (``LayerHandler.approximation``), the C-sim equals the
emulator, and, in a model without approximate layers, every output word equals QKeras's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fkhls.core.fixedpoint import cpp_type, raw_bounds
from fkhls.crosscheck.parity import ParityReport, compare_words, exact_words, word_differences
from fkhls.project.manifest import Manifest

# A layer's status; the first four pass.
PASSING = ("bit-exact", "within bound", "attributed", "no QKeras tensor")
FAILING = ("differs", "exceeds bound", "no bound declared")


@dataclass(frozen=True)
class LayerVerdict:
    """One step measured against QKeras fed the same input (see the module docstring)."""

    name: str
    keras_name: str
    kind: str
    exactness: str  # "exact" or "approximate"
    cause: str  # the handler's cause code ("" when exact)
    reason: str  # why it cannot equal QKeras ("" when exact)
    fed: str  # "QKeras" (QKeras's input of the layer) or "emulator" (the emulator's words of the step before)
    compared: int  # output words compared (0: QKeras has no tensor for this step)
    bit_exact: int
    max_lsb: float  # largest |hardware word - QKeras value| in LSBs of the step's output type
    where: tuple[int, int] | None  # (sample, flat output index) of that largest difference
    output_type: str
    bound_lsb: float | None  # what the handler declares for an approximate step
    bound_why: str
    exact_alternative: str
    attributed_to: str | None  # the upstream step a difference here is blamed on
    status: str  # one of PASSING or FAILING

    @property
    def ok(self) -> bool:
        return self.status in PASSING


@dataclass(frozen=True)
class VerifyReport:
    parity: ParityReport  # the C-sim's output words against QKeras's
    layers: tuple[LayerVerdict, ...]
    argmax_agreement: float | None  # samples whose C-sim argmax equals QKeras's (None for a single output)
    csim_equals_emulator: bool
    csim_emulator_differing: int  # output words where the C-sim and the emulator differ

    @property
    def approximate(self) -> tuple[LayerVerdict, ...]:
        return tuple(v for v in self.layers if v.exactness == "approximate")

    @property
    def failing(self) -> tuple[LayerVerdict, ...]:
        return tuple(v for v in self.layers if not v.ok)

    @property
    def passed(self) -> bool:
        outputs_ok = self.parity.all_exact or bool(self.approximate)
        return not self.failing and self.csim_equals_emulator and outputs_ok

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "output": {**asdict(self.parity), "all_exact": self.parity.all_exact,
                       "argmax_agreement": self.argmax_agreement},
            "csim_equals_emulator": self.csim_equals_emulator,
            "csim_emulator_differing_words": self.csim_emulator_differing,
            "layers": [{**asdict(v), "ok": v.ok} for v in self.layers],
        }


def _linear_clone(layer):
    """A copy of a QDense/QConv with its inline activation removed: QKeras's value before the activation step."""
    config = layer.get_config()
    config["activation"] = "linear"
    clone = type(layer).from_config(config)
    clone.build(layer.input_shape)
    clone.set_weights(layer.get_weights())
    return clone


def _keras_references(model, steps, x: np.ndarray) -> dict[int, np.ndarray]:
    """QKeras's value of every step that has one, on ``x``: its layer's output, or (for a weighted step with an
    inline activation after it) the layer's output without that activation. One predict for all."""
    import tensorflow as tf

    last_of = {s.keras_name: i for i, s in enumerate(steps)}
    wanted: dict[int, tuple[str, str]] = {}  # step index -> (keras layer, "output" | "pre-activation")
    for i, step in enumerate(steps):
        if step.kind == "input" or not _has_tensor(model, step.keras_name):
            continue
        if last_of[step.keras_name] == i:
            wanted[i] = (step.keras_name, "output")
        elif steps[i + 1].name == f"{step.keras_name}_activation":  # the value just before the inline activation
            wanted[i] = (step.keras_name, "pre-activation")
        # any other inner step (a Dense before its ApplyAlpha step ...) has no QKeras tensor
    if not wanted:
        return {}
    tensors = [model.get_layer(name).output if what == "output" else model.get_layer(name).input
               for name, what in wanted.values()]
    values = tf.keras.Model(model.inputs, tensors).predict(x, verbose=0, batch_size=256)
    values = values if isinstance(values, list) else [values]
    out = {}
    for (i, (name, what)), value in zip(wanted.items(), values):
        if what == "pre-activation":
            try:
                value = _linear_clone(model.get_layer(name))(np.asarray(value, dtype=np.float32)).numpy()
            except (ValueError, TypeError, KeyError):  # QKeras cannot rebuild it: judged after its activation only
                continue
        out[i] = np.asarray(value, dtype=np.float64).reshape(len(x), -1)
    return out


def _words_of(values: np.ndarray, ptype) -> tuple[np.ndarray, bool]:
    """QKeras values as words of ``ptype``; False when any is off its grid or outside its range."""
    words, on_grid = exact_words(values, ptype.fractional)
    lo, hi = raw_bounds(ptype)
    return words, bool(on_grid.all() and np.all((words >= lo) & (words <= hi)))


def _has_tensor(model, name: str) -> bool:
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True


def layer_verdicts(model, spec, weights, x: np.ndarray, x_raw: np.ndarray) -> tuple[LayerVerdict, ...]:
    """Every step of ``spec`` (a chain or a graph) judged against QKeras's output of its layer, fed QKeras's input."""
    from fkhls.model.layers import handler_for_kind

    steps = spec.layers
    sources = spec.sources()
    reference = _keras_references(model, steps, x)
    n = len(x_raw)
    local = {0: np.asarray(x_raw, dtype=np.int64)}  # step index -> the words it computed (fed as judged)
    taint: dict[int, str | None] = {0: None}
    verdicts: dict[int, LayerVerdict] = {}
    for i in range(1, len(steps)):
        step = steps[i]
        fed, upstream, feeds, types = "QKeras", None, [], []
        for j in sources[i]:
            prev = steps[j]
            types.append(prev.result_type)
            ref_in = reference.get(j) if j else None
            words, usable = _words_of(ref_in, prev.result_type) if ref_in is not None else (None, False)
            if j == 0:
                feeds.append(local[0])
            elif usable:
                feeds.append(words.reshape(n, *prev.output_shape))
            else:
                feeds.append(local[j])
                fed = "emulator"
                before = verdicts[j]
                upstream = upstream or taint[j] or (prev.name if (before.exactness == "approximate" or not before.ok)
                                                    else None)
        in_type = types[0] if len(types) == 1 else tuple(types)
        in_words = (np.asarray(feeds[0], dtype=np.int64) if len(feeds) == 1
                    else tuple(np.asarray(f, dtype=np.int64) for f in feeds))
        taint[i] = upstream
        handler = handler_for_kind(step.kind)
        out = handler.forward(step, in_type, in_words, weights)
        local[i] = out
        approx = handler.approximation(step, in_type)
        ref = reference.get(i)
        compared = bit_exact = 0
        max_lsb, where = 0.0, None
        if ref is not None:
            frac = step.result_type.fractional
            ref_words, on_grid = exact_words(ref, frac)
            with np.errstate(over="ignore", invalid="ignore"):
                scaled = np.ldexp(ref, frac)
            exact, distance = word_differences(ref_words, out.reshape(n, -1), on_grid, scaled)
            compared, bit_exact = int(exact.size), int(exact.sum())
            if compared and not exact.all():
                flat = int(np.argmax(distance))
                max_lsb, where = float(distance.max()), (flat // distance.shape[1], flat % distance.shape[1])
        if ref is None:
            status = "no QKeras tensor"
        elif compared == bit_exact:
            status = "bit-exact"
        elif upstream is not None:
            status = "attributed"
        elif approx is None:
            status = "differs"
        elif approx.bound_lsb is None:
            status = "no bound declared"
        else:
            status = "within bound" if max_lsb <= approx.bound_lsb else "exceeds bound"
        verdicts[i] = LayerVerdict(
            name=step.name, keras_name=step.keras_name, kind=step.kind,
            exactness="approximate" if approx is not None else "exact", cause=approx.cause if approx else "",
            reason=approx.reason if approx else "", fed=fed, compared=compared, bit_exact=bit_exact, max_lsb=max_lsb,
            where=where, output_type=cpp_type(step.result_type), bound_lsb=approx.bound_lsb if approx else None,
            bound_why=approx.bound_why if approx else "", exact_alternative=approx.exact_alternative if approx else "",
            attributed_to=upstream if status == "attributed" else None, status=status)
    return tuple(verdicts[i] for i in range(1, len(steps)))


def verify_project(manifest: Manifest, inputs: np.ndarray, model=None) -> VerifyReport:
    """Run the C-sim, the emulator and QKeras (layer by layer) on ``inputs`` and judge every layer and the output."""
    from fkhls.csim.build import input_words, run_csim
    from fkhls.emulate.emulator import forward_raw, golden_weights
    from fkhls.model.spec import describe_model, load_keras_model

    model = model if model is not None else load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_ptype, **manifest.describe_options)
    weights = golden_weights(model, spec)
    x_raw = input_words(manifest, inputs).reshape((-1, *spec.input_shape))
    x = np.asarray(inputs, dtype=np.float32).reshape(x_raw.shape)
    hardware = run_csim(manifest, inputs).reshape(len(x_raw), -1)
    qkeras = np.asarray(model.predict(x, verbose=0, batch_size=1024), dtype=np.float64).reshape(hardware.shape)
    parity = compare_words(qkeras, hardware, manifest.output_ptype.fractional, manifest.output_type["cpp"])
    emulated = forward_raw(spec, weights, x_raw).reshape(hardware.shape)
    differing = int(np.sum(emulated != hardware))
    agreement = (float(np.mean(np.argmax(hardware, axis=1) == np.argmax(qkeras, axis=1)))
                 if hardware.shape[1] > 1 and len(hardware) else None)
    return VerifyReport(parity=parity, layers=layer_verdicts(model, spec, weights, x, x_raw),
                        argmax_agreement=agreement, csim_equals_emulator=differing == 0,
                        csim_emulator_differing=differing)
