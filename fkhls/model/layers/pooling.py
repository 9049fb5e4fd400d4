"""Pooling: Max/AveragePooling1D/2D and GlobalMax/AveragePooling1D/2D, as hls4ml computes them.

Max is exact by nature (the max of words is a word); hls4ml (nnet_pooling.h) returns it
through the layer's ``accum_t``, so export sets ``accum_t`` to the input type.

Average: hls4ml sums the window in ``accum_t`` and divides by the window size N in ap_fixed
(``y /= N`` in io_parallel, ``sum / N`` in io_stream): an integer division of the raw sum that
truncates toward zero, at ``accum_t``'s fraction, then the cast to the result type. fkhls gives
``accum_t`` ceil(log2 N) more integer and fractional bits than the input and the result type
the input's integer bits with those fractional bits: the sum never overflows, the cast is the
identity, and for N a power of two the quotient is exact (equal to QKeras). For other N it is
the truncated quotient: approximate by nature, within one LSB of the result type.

Only ``padding='valid'``: for 'same' hls4ml pads max pooling with the top-bit word (the most
negative value of a signed type, but the largest of an unsigned one).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import MAX_WIDTH, FixedPrecisionType
from fkhls.model.layers.base import Approximation, LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec

_OP_NAME = {"Max": "maxpool", "Average": "avgpool"}


def _kind(op: str, keras_class: str) -> str:
    """('Max', 'MaxPooling2D') -> 'maxpool2d'; ('Average', 'GlobalAveragePooling1D') -> 'globalavgpool1d'."""
    return ("global" if keras_class.startswith("Global") else "") + _OP_NAME[op] + keras_class[-2:].lower()


def _hls_class(kind: str) -> str:
    """hls4ml's class for a pooling kind: 'maxpool2d' -> 'Pooling2D', 'globalavgpool1d' -> 'GlobalPooling1D'."""
    return ("Global" if kind.startswith("global") else "") + "Pooling" + kind[-2:].upper()


def _windows(step: LayerSpec, x: np.ndarray) -> np.ndarray:
    """(N, *out, C, *window) views of the input words; global pooling: one window of every position."""
    if not step.pool_size:
        return np.moveaxis(x.reshape(x.shape[0], -1, x.shape[-1]), 1, -1)  # (N, C, positions)
    nd = len(step.pool_size)
    win = np.lib.stride_tricks.sliding_window_view(x, step.pool_size, axis=tuple(range(1, nd + 1)))
    return win[(slice(None), *[slice(None, None, s) for s in step.strides])]


def _window_axes(step: LayerSpec) -> tuple[int, ...]:
    return tuple(range(-max(len(step.pool_size), 1), 0))


class _PoolingHandler(LayerHandler):
    role = "window"
    op = ""  # hls4ml's pool_op

    def blockers(self, layer) -> list[str]:
        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        config = layer.get_config()
        reasons = []
        if config.get("data_format", "channels_last") != "channels_last":
            reasons.append(f"{where}: only data_format='channels_last' is supported")
        if config.get("padding", "valid") != "valid":
            reasons.append(f"{where}: padding {config.get('padding')!r} is not supported; use padding='valid'")
        if config.get("keepdims"):
            reasons.append(f"{where}: keepdims=True is not supported; use keepdims=False")
        return reasons

    def types(self, walk: Walk, n: int) -> dict:
        return {"result_type": walk.in_type}

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        config = layer.get_config()
        fields = {}
        if not cls.startswith("Global"):
            fields = {"pool_size": tuple(int(s) for s in np.atleast_1d(config["pool_size"])),
                      "strides": tuple(int(s) for s in np.atleast_1d(config["strides"]))}
            n = int(np.prod(fields["pool_size"]))
        else:
            n = int(np.prod(walk.shape[:-1]))
        kind = _kind(self.op, cls)
        try:
            types = self.types(walk, n)
        except UnsupportedModelError as exc:
            raise UnsupportedModelError(f"layer {layer.name!r} ({cls}): {exc}") from None
        step = LayerSpec(name=layer.name, keras_name=layer.name, kind=kind, keras_class=cls, input_shape=walk.shape,
                         output_shape=keras_shape(layer.output_shape), **types, **fields)
        walk.in_type = step.result_type
        return [step]

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == _hls_class(step.kind) and hls_layer.get_attr("pool_op") == self.op

    def accum(self, step: LayerSpec) -> FixedPrecisionType:
        return step.accum_type or step.result_type

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        if "accum_t" in hls_layer.types:
            hls_layer.types["accum_t"].precision = hw(self.accum(step))

    def hls_type_checks(self, step: LayerSpec, hls_layer) -> list[tuple[str, FixedPrecisionType, str]]:
        return [(hls_layer.types["accum_t"].name, self.accum(step), f"the accumulator of {step.name}")]


@layer_handler("MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D")
class MaxPoolingHandler(_PoolingHandler):
    kinds = ("maxpool1d", "maxpool2d", "globalmaxpool1d", "globalmaxpool2d")
    op = "Max"

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        return _windows(step, x).max(axis=_window_axes(step)).reshape(x.shape[0], *step.output_shape)


@layer_handler("AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
class AveragePoolingHandler(_PoolingHandler):
    kinds = ("avgpool1d", "avgpool2d", "globalavgpool1d", "globalavgpool2d")
    op = "Average"

    def types(self, walk: Walk, n: int) -> dict:
        t = walk.in_type
        s = (n - 1).bit_length()  # ceil(log2 n)
        if t.width + 2 * s > MAX_WIDTH:
            raise UnsupportedModelError(f"an exact window sum would need {t.width + 2 * s} bits (> {MAX_WIDTH})")
        accum = FixedPrecisionType(t.width + 2 * s, t.integer + s, t.signed)
        result = FixedPrecisionType(t.width + s, t.integer, t.signed)
        approximate = "" if n == 1 << s else (f"divides by {n}, not a power of two: hls4ml truncates the quotient "
                                               f"toward zero at 2**-{result.fractional}")
        return {"result_type": result, "accum_type": accum, "approximate": approximate}

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation | None:
        if not step.approximate:
            return None
        return Approximation("average_divide", step.approximate, 1.0,
                             "the exact window sum divided by N and truncated toward zero: less than one LSB of the "
                             "result type from the exact average (QKeras's float32 mean adds far less than one LSB)",
                             "a pool size that is a power of two (the divide is then exact)")

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        """sum in accum_t (exact), then ap_fixed division: the raw quotient truncated toward zero."""
        n = int(np.prod(step.pool_size)) if step.pool_size else int(np.prod(step.input_shape[:-1]))
        total = _windows(step, x).astype(np.int64).sum(axis=_window_axes(step))
        total <<= step.accum_type.fractional - in_type.fractional
        quotient = np.sign(total) * (np.abs(total) // n)  # C++ / on integers: toward zero
        # accum_t and result_t share the fraction and the result's range holds every average: the cast is the identity.
        return quotient.reshape(x.shape[0], *step.output_shape)
