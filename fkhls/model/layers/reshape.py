"""Steps that move words without changing them: the input, Flatten, Reshape, Dropout (identity at inference).

hls4ml builds Flatten and Reshape as its ``Reshape`` layer (an alias of its input in
io_parallel) and drops Dropout and often the Reshape too; either way the value is the
previous output's words in C-order, so these steps may fold.
"""

from __future__ import annotations

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec


@layer_handler("InputLayer")
class InputHandler(LayerHandler):
    kinds = ("input",)
    role = "input"

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        return x

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name in ("Input", "InputLayer")


@layer_handler("Flatten", "Reshape", "Dropout")
class ReshapeHandler(LayerHandler):
    kinds = ("flatten", "reshape", "dropout")
    role = "reshape"

    def blockers(self, layer) -> list[str]:
        if layer.__class__.__name__ == "Flatten" and layer.get_config().get("data_format") == "channels_first":
            return [f"layer {layer.name!r} (Flatten): data_format='channels_first' is not supported"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        kind = {"Flatten": "flatten", "Reshape": "reshape", "Dropout": "dropout"}[layer.__class__.__name__]
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind=kind, keras_class=layer.__class__.__name__,
                          input_shape=walk.shape, output_shape=keras_shape(layer.output_shape),
                          result_type=walk.in_type)]

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        return x.reshape(x.shape[0], *step.output_shape)

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return step.kind != "dropout" and hls_layer.class_name == "Reshape"

    def folds(self, step: LayerSpec) -> bool:
        return True
