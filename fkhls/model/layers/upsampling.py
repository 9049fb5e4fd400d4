"""UpSampling1D/2D (hls4ml ``Resize``, nearest) and Permute (hls4ml ``Transpose``): words moved, never changed.

Both are exact by nature: the output is a selection of input words, typed as the input.

Resize, io_parallel (nnet_image.h ``resize_nearest``): output row i reads input row
``(i * ratio) >> 16`` with ``ratio = ((in << 16) / out) + 1`` (integers), per axis; io_stream
(nnet_image_stream.h) repeats each word ``out / in`` times. Both equal Keras's repeat for every
size below 2**16 / factor; fkhls computes the io_parallel index map and refuses a shape where it
would differ. hls4ml reads UpSampling1D as a Resize of height 1. Only ``interpolation='nearest'``:
hls4ml 1.3.0's Vivado/Vitis templates have no bilinear kernel.

Transpose (nnet_transpose.h): output element i (C-order) reads the input element the
permutation names; hls4ml's ``perm`` is Keras's ``dims`` minus one.
"""

from __future__ import annotations

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType
from fkhls.model.layers.base import LayerHandler, Walk, layer_handler
from fkhls.model.steps import LayerSpec


def nearest_rows(size: int, new_size: int) -> np.ndarray:
    """hls4ml's io_parallel resize_nearest index map: the input row each of ``new_size`` output rows reads."""
    ratio = ((size << 16) // new_size) + 1
    return (np.arange(new_size, dtype=np.int64) * ratio) >> 16


def _consumers(layer) -> list:
    """The Keras layers reading ``layer``'s output."""
    return [node.outbound_layer for node in getattr(layer, "_outbound_nodes", [])]


def _where(layer) -> str:
    return f"layer {layer.name!r} ({layer.__class__.__name__})"


@layer_handler("UpSampling1D", "UpSampling2D")
class UpSamplingHandler(LayerHandler):
    kinds = ("upsampling1d", "upsampling2d")
    role = "window"  # one input word feeds several output words: the engine runs it whole

    def blockers(self, layer) -> list[str]:
        config = layer.get_config()
        reasons = []
        if config.get("data_format", "channels_last") not in ("channels_last", None):
            reasons.append(f"{_where(layer)}: only data_format='channels_last' is supported")
        if config.get("interpolation", "nearest") != "nearest":
            reasons.append(f"{_where(layer)}: interpolation={config['interpolation']!r} is not supported: hls4ml 1.3.0 "
                           "builds only nearest-neighbour resizing for Vivado/Vitis; use interpolation='nearest'")
        shape = tuple(layer.input_shape)[1:-1]
        factors = np.atleast_1d(config["size"])
        for axis, (size, factor) in enumerate(zip(shape, factors)):
            if size is not None and not np.array_equal(nearest_rows(int(size), int(size) * int(factor)),
                                                       np.arange(int(size) * int(factor)) // int(factor)):
                reasons.append(f"{_where(layer)}: hls4ml's io_parallel resize_nearest would not repeat axis {axis} "
                               f"(size {size}, factor {factor}) as Keras does (its 16-bit index ratio is too coarse); "
                               "use a smaller input or factor")
        return reasons

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        cls = layer.__class__.__name__
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind=f"upsampling{cls[-2:].lower()}",
                          keras_class=cls, input_shape=walk.shape, output_shape=keras_shape(layer.output_shape),
                          result_type=walk.in_type)]

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        for axis in range(len(step.input_shape) - 1):  # the spatial axes; the factors are output / input
            x = np.take(x, nearest_rows(step.input_shape[axis], step.output_shape[axis]), axis=1 + axis)
        return x

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return hls_layer.class_name == "Resize" and hls_layer.get_attr("algorithm") == "nearest"


@layer_handler("Permute")
class PermuteHandler(LayerHandler):
    kinds = ("permute",)
    role = "window"  # words change places: the engine runs it whole

    def blockers(self, layer) -> list[str]:
        following = _consumers(layer)
        if len(following) == 1 and following[0].__class__.__name__ == "Flatten":
            after = _consumers(following[0])
            if len(after) == 1 and after[0].__class__.__name__ in ("QDense", "Dense"):
                return [f"{_where(layer)}: hls4ml 1.3.0 (io_parallel, RemoveTransposeBeforeFlatten) deletes a Permute "
                        "followed by Flatten and a Dense and reorders the Dense weights as if the Permute were a "
                        "channels-first conversion, so its words and weight order differ from the model; put a layer "
                        "between the Permute and the Flatten, or drop the Permute and reorder the Dense kernel's rows "
                        "instead (the same function)"]
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        from fkhls.model.spec import keras_shape

        dims = tuple(int(d) for d in layer.get_config()["dims"])  # 1-based over the non-batch axes
        return [LayerSpec(name=layer.name, keras_name=layer.name, kind="permute", keras_class="Permute",
                          input_shape=walk.shape, output_shape=keras_shape(layer.output_shape),
                          result_type=walk.in_type, perm=tuple(d - 1 for d in dims))]

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, *(p + 1 for p in step.perm)))

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return (hls_layer.class_name == "Transpose"
                and tuple(int(p) for p in hls_layer.get_attr("perm")) == step.perm)
