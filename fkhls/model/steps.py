"""The steps a model computes, as data: tensors, layer steps and the whole model spec.

Frozen dataclasses passed between packages. Layer handlers (``fkhls.model.layers``) build them;
export, the emulator and fault descriptors read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType


@dataclass(frozen=True)
class TensorSpec:
    """One fault-target weight array: a layer's kernel or bias as QKeras stores it, or an array hls4ml
    computes for the step (a batch-norm scale and bias, an ApplyAlpha scale)."""

    layer: str  # the step it belongs to (= its Keras layer for kernels and biases; fault descriptors name it)
    tensor: str  # its name in that layer: "kernel", "bias", or e.g. "depthwise_kernel", "scale"
    shape: tuple[int, ...]
    ptype: FixedPrecisionType
    quantizer: dict = field(compare=False)
    array: str = field(default="", compare=False)  # the hls4ml C array (w2, s4 ...) when known (a project's spec)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def width(self) -> int:
        return self.ptype.width

    @property
    def n_bits(self) -> int:
        return self.size * self.ptype.width


@dataclass(frozen=True)
class LayerSpec:
    """One compute step: its kind, shapes, exact types and (for weighted kinds) tensors.

    ``keras_name`` is the Keras layer the step comes from; an activation written inline in a
    QDense/QConv becomes its own step named ``<layer>_activation`` as hls4ml splits it too.
    """

    name: str
    keras_name: str
    kind: str  # a kind of a handler in fkhls.model.layers (input, dense, conv2d, activation, flatten ...)
    keras_class: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    result_type: FixedPrecisionType
    accum_type: FixedPrecisionType | None = None
    kernel: TensorSpec | None = None
    bias: TensorSpec | None = None
    activation: str | None = None  # relu | leaky_relu | quantized_bits ... (for kind == activation)
    param: float = 0.0  # an activation's parameter: leaky_relu's negative slope (a power of two)
    strides: tuple[int, ...] = ()
    padding: str = "valid"
    pool_size: tuple[int, ...] = ()  # pooling window (pooling kinds)
    pads: tuple[int, ...] = ()  # zero padding: (before, after) per spatial axis, flattened
    axis: int | None = None  # the axis a concatenation joins (batch axis not counted)
    approximate: str = ""  # why the step cannot equal QKeras bit for bit ("" = exact by nature)
    inputs: tuple[str, ...] = ()  # names of the steps it reads, in order; () = the step before it (a chain)
    perm: tuple[int, ...] = ()  # axis permutation of the non-batch axes, 0-based as hls4ml's Transpose (permute)

    @property
    def n_terms(self) -> int:
        """Products summed per output: fan-in of a dense or conv output."""
        if self.kernel is None:
            return 0
        return int(np.prod(self.kernel.shape[:-1]))

    def tensors(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in (self.kernel, self.bias) if t is not None)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_type: FixedPrecisionType
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]

    @property
    def output_type(self) -> FixedPrecisionType:
        return self.layers[-1].result_type

    @property
    def weighted_layers(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.kernel is not None)

    def tensors(self) -> tuple[TensorSpec, ...]:
        """Every quantized tensor in FKeras model-bit order: layers in model order, kernel then bias."""
        return tuple(t for layer in self.weighted_layers for t in layer.tensors())

    @property
    def is_chain(self) -> bool:
        """True when every step reads only the step before it (the single-bit fast path's shape)."""
        return all(not s.inputs or s.inputs == (self.layers[i - 1].name,) for i, s in enumerate(self.layers) if i)

    def sources(self) -> tuple[tuple[int, ...], ...]:
        """Per step, the indices of the steps it reads (() for the input step), in the step's input order."""
        index = {s.name: i for i, s in enumerate(self.layers)}
        out = []
        for i, step in enumerate(self.layers):
            if not step.inputs:
                out.append((i - 1,) if i else ())
                continue
            missing = [n for n in step.inputs if index.get(n, i) >= i]
            if missing:
                raise UnsupportedModelError(f"step {step.name!r} reads {missing}, which are not earlier steps")
            out.append(tuple(index[n] for n in step.inputs))
        return tuple(out)

    def owners(self) -> dict[tuple[str, str], int]:
        """(tensor layer, tensor name) -> index of the step that holds that tensor."""
        return {(t.layer, t.tensor): i for i, s in enumerate(self.layers) for t in s.tensors()}

    def tensor(self, layer: str, tensor: str) -> TensorSpec:
        for spec in self.tensors():
            if spec.layer == layer and spec.tensor == tensor:
                return spec
        names = sorted({t.layer for t in self.tensors()})
        raise UnsupportedModelError(
            f"no quantized {tensor!r} tensor in layer {layer!r}; layers with quantized tensors: {names}"
        )

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise UnsupportedModelError(f"no layer {name!r}; layers: {[s.name for s in self.layers]}")
