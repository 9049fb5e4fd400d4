"""Max pooling: MaxPooling1D/2D and GlobalMaxPooling1D/2D, exact by nature (the max of words is a word).

hls4ml (nnet_pooling.h) returns the max through the layer's ``accum_t``, so export sets
``accum_t`` to the input type. Only ``padding='valid'``: for 'same' hls4ml pads with the word
whose top bit is set, which is the most negative value of a signed type but the largest of an
unsigned one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec

_KINDS = {"MaxPooling1D": "maxpool1d", "MaxPooling2D": "maxpool2d",
          "GlobalMaxPooling1D": "globalmaxpool1d", "GlobalMaxPooling2D": "globalmaxpool2d"}
_HLS_CLASS = {"maxpool1d": "Pooling1D", "maxpool2d": "Pooling2D",
              "globalmaxpool1d": "GlobalPooling1D", "globalmaxpool2d": "GlobalPooling2D"}


@layer_handler(*_KINDS)
class MaxPoolingHandler(LayerHandler):
    kinds = tuple(_KINDS.values())
    role = "window"

    def blockers(self, layer) -> list[str]:
        where = f"layer {layer.name!r} ({layer.__class__.__name__})"
        config = layer.get_config()
        reasons = []
        if config.get("data_format", "channels_last") != "channels_last":
            reasons.append(f"{where}: only data_format='channels_last' is supported")
        if config.get("padding", "valid") != "valid":
            reasons.append(f"{where}: padding {config.get('padding')!r} is not supported (hls4ml pads max pooling "
                           "with the top-bit word, wrong for unsigned types); use padding='valid'")
        if config.get("keepdims"):
            reasons.append(f"{where}: keepdims=True is not supported; use keepdims=False")
        return reasons

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        config = layer.get_config()
        fields = {}
        if not cls.startswith("Global"):
            fields = {"pool_size": tuple(int(s) for s in np.atleast_1d(config["pool_size"])),
                      "strides": tuple(int(s) for s in np.atleast_1d(config["strides"]))}
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind=_KINDS[cls], keras_class=cls,
                          input_shape=walk.shape, output_shape=keras_shape(layer.output_shape),
                          result_type=walk.in_type, **fields)]

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        if not step.pool_size:  # global: the max over every position, per channel
            return x.max(axis=tuple(range(1, x.ndim - 1)))
        nd = len(step.pool_size)
        win = np.lib.stride_tricks.sliding_window_view(x, step.pool_size, axis=tuple(range(1, nd + 1)))
        win = win[(slice(None), *[slice(None, None, s) for s in step.strides])]  # (N, *out, C, *pool)
        out = win.max(axis=tuple(range(-nd, 0)))
        return out.reshape(x.shape[0], *step.output_shape)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == _HLS_CLASS[step.kind] and hls_layer.get_attr("pool_op") == "Max"

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        if "accum_t" in hls_layer.types:
            hls_layer.types["accum_t"].precision = hw(step.result_type)  # max() returns through accum_t
