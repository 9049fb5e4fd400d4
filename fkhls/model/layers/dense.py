"""Weighted layers: QDense here, the convolutions in conv.py; both sum a quantized kernel and bias.

A plain Keras ``Dense`` inside a QKeras model is the same step with fkhls-typed float weights
(``tensor_type``): exact when a type of at most 32 bits holds them, refused otherwise.

Types: kernel and bias take their quantizers' grids; the accumulator is the narrowest type
holding every sum for any words of those types (``accumulator_type``), so neither rounding nor
overflow can happen even after a bit flip. The forward sums integer products exactly: float64
BLAS when every partial sum is an integer below 2**53 for the types, else int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import math

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import (MAX_WIDTH, FixedPrecisionType, cast_raw, cpp_type, is_po2, max_magnitude,
                                  narrowest_type, quantizer_type, raw_bounds, to_raw)
from fkhls.model.layers import po2
from fkhls.model.layers.activation import activation_steps
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.layers.folding import FOLDED_CLASSES, folded_blockers, folded_values, is_folded
from fkhls.model.layers.quantizers import activation_of, quantizer_config
from fkhls.model.steps import LayerSpec, TensorSpec

_FLOAT64_EXACT = 2**53
_FLOAT32_EXACT_BITS = 24


def accumulator_type(
    in_type: FixedPrecisionType, w_type: FixedPrecisionType, b_type: FixedPrecisionType | None, n_terms: int
) -> FixedPrecisionType:
    """Narrowest type that holds every sum of ``n_terms`` products plus the bias, for any word values.

    Any partial sum lies in the same range, so neither rounding nor overflow can happen even
    after a bit flip makes a weight its type's extreme value.
    """
    x_lo, x_hi = raw_bounds(in_type)
    w_lo, w_hi = raw_bounds(w_type)
    corners = [x_lo * w_lo, x_lo * w_hi, x_hi * w_lo, x_hi * w_hi]
    frac_p = in_type.fractional + w_type.fractional
    frac = frac_p if b_type is None else max(frac_p, b_type.fractional)
    lo = n_terms * min(corners) << (frac - frac_p)
    hi = n_terms * max(corners) << (frac - frac_p)
    if b_type is not None:
        b_lo, b_hi = raw_bounds(b_type)
        lo += b_lo << (frac - b_type.fractional)
        hi += b_hi << (frac - b_type.fractional)
    signed = lo < 0
    width = max(int(hi).bit_length() + signed, (int(-lo - 1).bit_length() + 1) if signed else 0, 1)
    if width > MAX_WIDTH:
        raise UnsupportedModelError(
            f"an exact accumulator would need {width} bits (> {MAX_WIDTH}, the int64 emulation limit)"
        )
    return FixedPrecisionType(width=width, integer=width - frac, signed=signed)


def float64_is_exact(layer: LayerSpec, in_type: FixedPrecisionType) -> bool:
    """True when every product and partial sum of the layer is an integer below 2**53 for any words of its types."""
    return layer.n_terms * max_magnitude(in_type) * max_magnitude(layer.kernel.ptype) <= _FLOAT64_EXACT


def sum_magnitude(layer: LayerSpec, in_type: FixedPrecisionType, frac: int, n_terms: int | None = None) -> int:
    """Bound on sum|terms| of the layer's sum at scale 2**-frac, for any words of its types: ``n_terms``
    (default the layer's) products of the largest input and kernel words, plus the largest bias word."""
    n = layer.n_terms if n_terms is None else n_terms
    shift = frac - in_type.fractional - layer.kernel.ptype.fractional
    bound = n * max_magnitude(in_type) * max_magnitude(layer.kernel.ptype) << shift
    if layer.bias is not None:
        bound += max_magnitude(layer.bias.ptype) << (frac - layer.bias.ptype.fractional)
    return bound


def _matmul(a: np.ndarray, b: np.ndarray, exact_float: bool) -> np.ndarray:
    """Integer matrix product; float64 BLAS when proven exact (see module docstring), else int64."""
    if exact_float:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


@dataclass(frozen=True)
class Accumulated:
    """A weighted step's exact accumulator (N, positions, n_out) at scale 2**-frac, plus its im2col input."""

    acc: np.ndarray
    frac: int
    patches: np.ndarray  # (N, positions, n_terms)


class WeightedHandler(LayerHandler):
    """What every kernel + bias layer shares: quantizer checks, types, the exact sum and its cast."""

    role = "weighted"
    hls_class: str = ""
    resource_axes: tuple[int, ...] = ()  # hls4ml Resource strategy's kernel transpose (resource_strategy.py)

    # -- per kind
    def check_config(self, layer, where: str) -> list[str]:
        return []

    def step_fields(self, layer) -> dict:
        return {}

    def patches(self, step: LayerSpec, x: np.ndarray) -> np.ndarray:
        """The inputs of every output position: (N, positions, n_terms) in the kernel's C-order."""
        raise NotImplementedError

    # -- shared
    def blockers(self, layer) -> list[str]:
        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        config = layer.get_config()
        reasons = self.check_config(layer, where)
        k_cfg = quantizer_config(layer, "kernel")
        if k_cfg is not None and _alpha().array_alpha_blocker(k_cfg, f"{where} kernel_quantizer"):
            reasons += _alpha().array_alpha_blocker(k_cfg, f"{where} kernel_quantizer")
        elif self.takes_po2_alpha(layer, k_cfg):  # hls4ml factorizes the scale into an ApplyAlpha step (alpha.py)
            reasons += _type_errors(_alpha().unscaled(k_cfg), f"{where} kernel_quantizer")
        else:
            reasons += _tensor_type_errors(layer, "kernel", where)
        if is_folded(layer):  # QConv2DBatchnorm: a folded bias always exists and must be quantized
            reasons += folded_blockers(layer, where)
            if k_cfg is not None and k_cfg["class_name"] in ("quantized_po2", "quantized_relu_po2"):
                reasons.append(f"{where} kernel_quantizer: {k_cfg['class_name']} kernels are not supported in a "
                               "folded batch-normalized layer (fkhls reproduces hls4ml's po2 words of unfolded "
                               "QDense/QConv1D/QConv2D kernels only); use quantized_bits(bits, integer, alpha=1) here")
            b_cfg = quantizer_config(layer, "bias")
            reasons += _type_errors(b_cfg, f"{where} bias_quantizer") if b_cfg is not None else []
        elif config.get("use_bias", True):
            reasons += _tensor_type_errors(layer, "bias", where)
        try:
            act = None if config.get("activation") == "softmax" else activation_of(config.get("activation"),
                                                                                  f"{where} activation")
            if act is not None and act[1] is not None:
                quantizer_type(act[1], activation=True, where=f"{where} activation")
        except UnsupportedModelError as exc:
            reasons.append(str(exc))
        return reasons

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        where = f"layer {layer.name!r} ({cls})"
        config = layer.get_config()
        out_shape = keras_shape(layer.output_shape)
        k_cfg = quantizer_config(layer, "kernel")
        po2_alpha = self.takes_po2_alpha(layer, k_cfg)
        shape = tuple(int(d) for d in layer.kernel.shape)
        if po2_alpha:  # auto_po2: the Dense keeps the alpha=1 words
            kernel = TensorSpec(layer.name, "kernel", shape,
                                quantizer_type(_alpha().unscaled(k_cfg), where=f"{where} kernel_quantizer"), k_cfg)
        else:
            kernel = TensorSpec(layer.name, "kernel", shape, *tensor_type(layer, "kernel", where))
        bias = None
        if is_folded(layer):
            b_cfg = quantizer_config(layer, "bias")
            bias = TensorSpec(layer.name, "bias", (kernel.shape[-1],),
                              quantizer_type(b_cfg, where=f"{where} bias_quantizer"), b_cfg)
        elif config.get("use_bias", True):
            bias = TensorSpec(layer.name, "bias", tuple(int(d) for d in layer.bias.shape),
                              *tensor_type(layer, "bias", where))
        n_terms = int(np.prod(kernel.shape[:-1]))
        approximate = ""
        if is_po2(kernel.ptype):  # hls4ml's weight_exponential shift (po2.py)
            if bias is not None and is_po2(bias.ptype):
                raise UnsupportedModelError(f"{where} bias_quantizer: quantized_po2 biases are not supported: hls4ml "
                                            "1.3.0 stores them as exponent structs that its layer casts to accum_t "
                                            "(the project does not compile); use quantized_bits(bits, integer, "
                                            "alpha=1)")
            acc = po2.accumulator_type(walk.in_type, kernel.ptype, bias.ptype if bias else None, n_terms)
            golden = to_raw(kernel.ptype, self.tensor_values(layer, kernel), what=f"{where} kernel")
            approximate = po2.truncation(walk.in_type, kernel.ptype, golden)
        else:
            acc = accumulator_type(walk.in_type, kernel.ptype, bias.ptype if bias else None, n_terms)
        if kernel.quantizer is UNQUANTIZED and acc.width > _FLOAT32_EXACT_BITS:
            # Keras sums the float weights in float32 (24-bit significand): it rounds sums the hardware keeps exact.
            approximate = (f"unquantized {cls}: the exact sum needs {acc.width} bits ({cpp_type(acc)}), Keras sums "
                           f"in float32 ({_FLOAT32_EXACT_BITS}-bit significand) and may round it")
        steps = [LayerSpec(name=layer.name, keras_name=layer.name, kind=self.kinds[0], keras_class=cls,
                           input_shape=walk.shape, output_shape=out_shape, result_type=acc, accum_type=acc,
                           kernel=kernel, bias=bias, approximate=approximate, **self.step_fields(layer))]
        walk.in_type = acc
        if po2_alpha:
            alpha = _alpha().alpha_step(layer, steps[0], bias.ptype if bias else kernel.ptype, where)
            if alpha is not None:
                steps.append(alpha)
                walk.in_type = alpha.result_type
        steps += activation_steps(f"{layer.name}_activation", layer.name, cls, config.get("activation"), walk,
                                  out_shape, f"{where} activation")
        return steps

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation | None:
        if not step.approximate:
            return None
        if is_po2(step.kernel.ptype):
            return _po2_approximation(step, in_type)
        # Any float32 summation of n products (each rounded too) errs by at most gamma_n * sum|terms|,
        # gamma_n = n*u / (1 - n*u), u = 2**-24 (Higham, Accuracy and Stability, 3.1), whatever the order.
        n = max(step.n_terms, 1) + (step.bias is not None)
        u = 2.0 ** -_FLOAT32_EXACT_BITS
        total = sum_magnitude(step, in_type, step.accum_type.fractional)
        bound = math.ceil(n * u / (1 - n * u) * total)
        return Approximation(
            "float32_sum", step.approximate, float(bound),
            f"float32 summation error bound gamma_n * sum|terms| (n = {n} rounded operations, u = 2^-24) for any "
            f"words of the layer's types, in LSBs of {cpp_type(step.accum_type)}",
            "quantize the layer (QDense/QConv with quantized_bits kernel and bias quantizers)")

    def takes_po2_alpha(self, layer, k_cfg: dict | None) -> bool:
        """A QDense/QConv1D/QConv2D kernel with alpha='auto_po2': hls4ml 1.3.0 factorizes it into an ApplyAlpha step
        (alpha.py; its qkeras_factorize_alpha matches Dense, Conv1D, Conv2D). Other kinds, and a folded
        QConv2DBatchnorm, stay refused (the quantizer's message says so)."""
        return (k_cfg is not None and self.kinds[0] in ("dense", "conv1d", "conv2d") and not is_folded(layer)
                and _alpha().has_po2_alpha(k_cfg))

    def accumulate(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> Accumulated:
        """sum(x * w) aligned to the exact fractional position, plus the bias aligned to it."""
        kernel = weights[(step.kernel.layer, step.kernel.tensor)]
        n = x.shape[0]
        patches = self.patches(step, x)
        if is_po2(step.kernel.ptype):  # hls4ml's shift product, each product an r_T word (po2.py)
            flat, frac_p = po2.accumulate(in_type, step.kernel.ptype, patches.reshape(-1, patches.shape[-1]),
                                          kernel.reshape(-1, kernel.shape[-1]))
        else:
            frac_p = in_type.fractional + step.kernel.ptype.fractional
            flat = _matmul(patches.reshape(-1, patches.shape[-1]), kernel.reshape(-1, kernel.shape[-1]),
                           float64_is_exact(step, in_type))
        frac = frac_p if step.bias is None else max(frac_p, step.bias.ptype.fractional)
        acc = flat.reshape(n, patches.shape[1], -1) << (frac - frac_p)
        if step.bias is not None:
            acc += weights[(step.bias.layer, step.bias.tensor)] << (frac - step.bias.ptype.fractional)
        return Accumulated(acc, frac, patches)

    @staticmethod
    def finish(step: LayerSpec, acc: np.ndarray, frac: int) -> np.ndarray:
        """Accumulator -> the step's result words: hls4ml casts accum_t to result_t (identity when equal)."""
        if step.accum_type.fractional == frac and step.result_type == step.accum_type:
            return acc  # the exact sum always fits accum_t (accumulator_type), so no cast changes it
        return cast_raw(cast_raw(acc, frac, step.accum_type), step.accum_type.fractional, step.result_type)

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        acc = self.accumulate(step, in_type, x, weights)
        return self.finish(step, acc.acc, acc.frac).reshape(x.shape[0], *step.output_shape)

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        """The quantized kernel or bias QKeras computes with (the folded ones of a QConv2DBatchnorm); with an
        auto_po2 alpha, what hls4ml keeps: the kernel divided by its scale and a zero bias (moved to ApplyAlpha)."""
        if is_folded(layer):
            return folded_values(layer, tensor.tensor)
        if self.takes_po2_alpha(layer, quantizer_config(layer, "kernel")):
            quantized, scale = _alpha().kernel_scale(layer)
            return quantized / scale if tensor.tensor == "kernel" else np.zeros(tensor.shape)
        return super().tensor_values(layer, tensor)

    def is_keras_variable(self, step: LayerSpec) -> bool:
        """A folded layer's arrays are computed from its variables (and re-folded by QKeras), an auto_po2 kernel's
        words are divided by its scale: neither is assignable to the Keras variables."""
        return step.keras_class not in FOLDED_CLASSES and not _alpha().has_po2_alpha(step.kernel.quantizer)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        if step.keras_class in FOLDED_CLASSES:  # hls4ml's Conv2DBatchnorm (a Conv2D with folded weights)
            return hls_layer.class_name == f"{self.hls_class}Batchnorm"
        return hls_layer.class_name == self.hls_class

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        """Kernel, bias and accumulator types (``update_precision`` also fixes the literal format)."""
        from hls4ml.model.types import IntegerPrecisionType, XnorPrecisionType

        # hls4ml picked its product (xnor, ternary) from its own kernel type while converting
        rerender = isinstance(hls_layer.get_weights("weight").type.precision, (IntegerPrecisionType, XnorPrecisionType))
        for name in ("weight", "bias"):
            _undo_xnor(hls_layer.weights.get(name))
        if not is_po2(step.kernel.ptype):  # a po2 kernel keeps hls4ml's exponent struct (export reads it back)
            hls_layer.get_weights("weight").update_precision(hw(step.kernel.ptype))
            if "weight_t" in hls_layer.types:
                hls_layer.types["weight_t"].precision = hw(step.kernel.ptype)
        if step.bias is not None:
            hls_layer.weights.get("bias").update_precision(hw(step.bias.ptype))
            if "bias_t" in hls_layer.types:
                hls_layer.types["bias_t"].precision = hw(step.bias.ptype)
        hls_layer.types["accum_t"].precision = hw(step.accum_type)
        for name in ("weight", "bias"):
            _refresh_stats(hls_layer.weights.get(name))
        if rerender:
            _render_config_again(hls_layer)


def _po2_approximation(step: LayerSpec, in_type: FixedPrecisionType) -> Approximation:
    """A po2 Dense whose shift drops bits: each product is QKeras's floored (negated: ceiled) to r_T's LSB, so the
    sum errs by less than n_terms r_T LSBs; an overflowing shift has no bound."""
    r_type = po2.product_type(in_type, step.kernel.ptype)
    overflow = "overflow" in step.approximate
    bound = None if overflow else float(step.n_terms << (step.result_type.fractional - r_type.fractional))
    return Approximation(
        "po2_shift", step.approximate, bound,
        ("a shift that overflows the product type has no bound" if overflow else
         f"each of the {step.n_terms} products loses less than one LSB 2^-{r_type.fractional} of "
         f"ap_fixed<{r_type.width},{r_type.integer}>, in LSBs of {cpp_type(step.result_type)}"),
        "give the layer's input type more bits (K grows with the input width) or the kernel fewer po2 bits (a "
        "higher smallest exponent) so no golden shift drops a bit, or use quantized_bits(bits, integer, alpha=1)")


def _refresh_stats(variable) -> None:
    """hls4ml computes a WeightVariable's min/max/zero counts once, when it is made, and prints them in the header
    comment: after fkhls undid the xnor bits or hls4ml's qkeras_factorize_alpha zeroed a bias they were stale, and
    ``fkhls inject`` (which renders the header from the words) refused the array."""
    if variable is None:
        return
    data = np.asarray(variable.data)
    variable.nonzeros = int(np.count_nonzero(data))
    variable.nzeros = variable.data_length - variable.nonzeros
    variable.min, variable.max = np.min(data), np.max(data)


def _undo_xnor(variable) -> None:
    """hls4ml stores a binary kernel as xnor bits (1 = +1, 0 = -1, hls4ml BinaryQuantizer(1)); fkhls types it
    ap_fixed<2,2> (fixedpoint._binary_type), so the data goes back to -1/+1. Export reads every word back."""
    from hls4ml.model.types import XnorPrecisionType

    if variable is not None and isinstance(variable.type.precision, XnorPrecisionType):
        variable.data = np.where(np.asarray(variable.data) > 0, 1.0, -1.0)


def _alpha():
    """fkhls.model.layers.alpha, imported late (it builds on this module)."""
    from fkhls.model.layers import alpha

    return alpha


def _type_errors(config: dict, where: str) -> list[str]:
    try:
        quantizer_type(config, where=where)
    except UnsupportedModelError as exc:
        return [str(exc)]
    return []


def _tensor_type_errors(layer, key: str, where: str) -> list[str]:
    try:
        tensor_type(layer, key, where)
    except UnsupportedModelError as exc:
        return [str(exc)]
    return []


def _render_config_again(hls_layer) -> None:
    """Render the layer's config struct again with fkhls's kernel type, so its ``product`` is the plain multiply.

    hls4ml's template pass stored ``config_cpp`` while converting, with a product chosen from its own
    kernel type (``weight_binary`` for xnor bits, ``weight_ternary`` for ap_int<2>, which reads -2 as +1).
    """
    from hls4ml.backends.template import LayerConfigTemplate
    from hls4ml.model.optimizer import get_backend_passes, get_optimizer

    backend = hls_layer.model.config.backend.name.lower()
    templates = [(name.split(":", 1)[1].split("_"), get_optimizer(name)) for name in get_backend_passes(backend)]
    templates = [(words, t) for words, t in templates if isinstance(t, LayerConfigTemplate) and t.match(hls_layer)]
    own = [t for words, t in templates if hls_layer.class_name.lower() in words]
    chosen = own or [t for _, t in templates]
    if not chosen:
        raise UnsupportedModelError(f"layer {hls_layer.name!r}: no {backend} config template to render its "
                                    "multiply again with fkhls's kernel type")
    chosen[0].transform(hls_layer.model, hls_layer)
    if "product::mult<" not in hls_layer.get_attr("config_cpp", ""):
        raise UnsupportedModelError(f"layer {hls_layer.name!r}: hls4ml did not render the plain multiply for "
                                    "fkhls's kernel type; refusing a project that would not be exact")


# An unquantized weighted layer (plain Keras Dense) inside a QKeras model: its float weights are typed by fkhls.
UNQUANTIZED_MAX_WIDTH = 32
UNQUANTIZED = {"class_name": "unquantized", "config": {}}


def tensor_type(layer, key: str, where: str) -> tuple[FixedPrecisionType, dict]:
    """The word type of a layer's kernel/bias and its quantizer config (a refusal says why and what to do).

    A QKeras layer takes its quantizer's grid. A plain Keras layer (no quantizer attribute) has
    float weights: they get the narrowest ap_(u)fixed type of at most 32 bits holding every value
    exactly (``narrowest_type``); the sums are then exact as for a QKeras layer. None fits: refused.
    """
    if not hasattr(layer, f"{key}_quantizer"):
        from fkhls.model.spec import quantized_tensor

        ptype = narrowest_type(quantized_tensor(layer, key), UNQUANTIZED_MAX_WIDTH)
        if ptype is None:
            raise UnsupportedModelError(
                f"{where}: unquantized {key} (float weights) that no ap_fixed type of at most "
                f"{UNQUANTIZED_MAX_WIDTH} bits holds exactly; use a QKeras layer (QDense with kernel_quantizer="
                "quantized_bits(...)) or round the weights onto a fixed-point grid"
            )
        return ptype, UNQUANTIZED
    config = quantizer_config(layer, key)
    if config is None:
        extra = " or use_bias=False" if key == "bias" else ""
        raise UnsupportedModelError(f"{where}: the {key} has no quantizer; give {key}_quantizer=quantized_bits(...)"
                                    f"{extra}")
    return quantizer_type(config, where=f"{where} {key}_quantizer"), config


@layer_handler("QDense", "Dense")
class DenseHandler(WeightedHandler):
    kinds = ("dense",)
    hls_class = "Dense"
    resource_axes = (1, 0)

    def check_config(self, layer, where: str) -> list[str]:
        shape = tuple(layer.input_shape)[1:]
        if len(shape) != 1:
            return [f"{where}: QDense on a {len(shape)}-D input is not supported; Flatten first"]
        return []

    def patches(self, step: LayerSpec, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], 1, -1)
