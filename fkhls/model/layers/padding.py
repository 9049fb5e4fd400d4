"""ZeroPadding1D / ZeroPadding2D: zero words around the input, exact by nature (a zero is on every grid).

hls4ml builds its own ``ZeroPadding1D/2D`` layer (``nnet::zeropad*_cl``) with the input type as
output type. It also inserts ZeroPadding layers of its own before 'same' convolutions in
io_stream; export skips those (they belong to the convolution, which pads the same way).
"""

from __future__ import annotations

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec


@layer_handler("ZeroPadding1D", "ZeroPadding2D")
class ZeroPaddingHandler(LayerHandler):
    kinds = ("zeropad1d", "zeropad2d")
    role = "window"

    def blockers(self, layer) -> list[str]:
        if layer.get_config().get("data_format", "channels_last") not in ("channels_last", None):
            return [f"layer {layer.name!r} ({layer.__class__.__name__}): only data_format='channels_last' is supported"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        padding = np.asarray(layer.padding, dtype=np.int64).reshape(-1, 2)  # ((before, after) per spatial axis)
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind=f"zeropad{cls[-2:].lower()}", keras_class=cls,
                          input_shape=walk.shape, output_shape=keras_shape(layer.output_shape),
                          result_type=walk.in_type, pads=tuple(int(p) for p in padding.ravel()))]

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        pads = np.asarray(step.pads, dtype=np.int64).reshape(-1, 2)
        return np.pad(x, [(0, 0), *map(tuple, pads), (0, 0)])

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == f"ZeroPadding{step.kind[-2:].upper()}"
