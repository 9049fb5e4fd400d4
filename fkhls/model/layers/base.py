"""The layer-handler base class and its registry: one handler per Keras layer kind.

Writing the next handler (one module in this package, plus its tests):

1. Subclass ``LayerHandler`` in a module named after the family (``pooling.py``) and register
   it with ``@layer_handler("QFoo", "Foo")`` (Keras class names, as hls4ml's
   ``@keras_handler``); import the module in ``fkhls/model/layers/__init__.py``.
2. Declare ``kinds`` (the ``LayerSpec.kind`` values its steps carry) and ``role``, which tells
   the single-bit engine how to carry a fault through the step: ``weighted`` (sums a kernel
   and bias: starts a block), ``elementwise`` (each output word depends on one input word),
   ``reshape`` (words unchanged, only reshaped), ``window`` (an output word depends on several
   input words, e.g. pooling: the engine runs it whole on the rows a fault changed) or ``input``.
   A per-channel map (batch normalization) is ``window`` too: the engine's elementwise blocks
   apply one map to a flat word list.
3. ``blockers(layer)``: every reason this layer cannot be reproduced exactly, each with what
   to do instead (empty when supported). ``describe_model`` gathers them over the whole model
   into one error (an ``UnsupportedModelError`` raised by ``describe``, for what depends on the
   input type, is gathered too).
4. ``describe(layer, walk)``: the steps (``LayerSpec``) with the exact ap_(u)fixed type of
   every word it produces; ``walk`` holds the input type and shape (``in_types`` / ``shapes``: one
   per input, for a layer reading several tensors, e.g. a merge). ``describe_model`` names the
   steps the first step reads (``LayerSpec.inputs``) when they are not simply the step before it.
5. ``forward(step, in_type, x, weights)``: the step's output words, int64, from input words
   ``x`` (N, *input_shape) -- exactly what the hls4ml C++ computes for the types described.
   A step reading several steps (``LayerSpec.inputs``, e.g. a Merge) gets tuples: ``in_type``
   and ``x`` hold one type / one array per input, in order. ``weights`` maps
   ``(tensor.layer, tensor.tensor)`` to raw words of every fault-target tensor; a handler
   whose tensors are not plain QKeras variables overrides ``tensor_values``. Faults in
   tensors of any step are carried exactly by the emulator's generic single-bit path; the
   fast path covers the dense/conv kinds of a chain.
6. Export: ``hls_matches(step, hls_layer)`` says whether an hls4ml layer computes the step,
   ``folds(step)`` whether hls4ml may leave no layer for it (its value then lives in the
   previous output; ``hides_previous`` when that output is cast to the step's type), and
   ``set_hls_types(step, hls_layer, hw)`` sets what the step needs on hls4ml's layer
   (``hw(ptype)`` wraps a type the way the Vivado/Vitis writers print it) and
   ``hls_type_checks`` names the typedefs export must read back (the output type always is),
   ``hls_config_checks`` the config-struct members (table sizes, implementation).
   A step with fault-target arrays puts the multiplier in ``LayerSpec.kernel`` and the addend
   in ``.bias`` (their ``tensor`` is the name descriptors use: kernel, scale ...);
   ``hls_weights`` names hls4ml's weight variables of those two slots (export reads them back),
   ``hls_config`` may adjust hls4ml's config before conversion (batchnorm.py keeps a fusing
   pass off), and ``is_keras_variable`` says whether FKeras's TF way may assign the arrays.
7. If the step cannot equal QKeras bit for bit (a table, a non-power-of-two divide), set
   ``LayerSpec.approximate`` to the reason (the manifest records it per layer) and override
   ``approximation(step, in_type)``: an ``Approximation`` with a short cause code (``softmax_table``,
   ``sigmoid_table``, ``float_batchnorm`` ...: what ``crosscheck --reference tf`` and ``verify``
   report), the largest deviation from QKeras fkhls guarantees (``bound_lsb``, in LSBs of the
   step's output type, derived from the step's tables and types, with ``bound_why``), and the exact
   path a user can choose instead (``exact_alternative``). A step that sets ``approximate`` without
   a declared bound fails ``verify`` (no bound, nothing to hold it to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from fkhls.core.errors import UnsupportedModelError
from fkhls.core.fixedpoint import FixedPrecisionType
from fkhls.model.steps import LayerSpec, TensorSpec

ROLES = ("input", "weighted", "elementwise", "reshape", "window")

_BY_CLASS: dict[str, "LayerHandler"] = {}
_BY_KIND: dict[str, "LayerHandler"] = {}


@dataclass
class Walk:
    """What ``describe_model`` hands a layer: the word type and shape it reads (the first input's for a merge).

    ``in_types`` / ``shapes`` hold one entry per input of the layer, in Keras's input order.
    ``softmax_implementation`` is the export option (hls4ml's Softmax ``implementation``) the softmax steps take.
    """

    in_type: FixedPrecisionType
    shape: tuple[int, ...]
    in_types: tuple[FixedPrecisionType, ...] = ()
    shapes: tuple[tuple[int, ...], ...] = ()
    softmax_implementation: str = "stable"


@dataclass(frozen=True)
class Approximation:
    """Why a step cannot equal QKeras bit for bit and how far from it fkhls guarantees it stays (its handler declares it)."""

    cause: str  # short code: softmax_table, sigmoid_table, tanh_table, average_divide, float_batchnorm ...
    reason: str  # the step's LayerSpec.approximate
    bound_lsb: float | None  # max |hardware word - QKeras value| in LSBs of the step's output type; None: none declared
    bound_why: str  # how the bound follows from the step's tables and types (and where it holds)
    exact_alternative: str = ""  # what the user can do to get an exact step instead ("" when there is none)


class LayerHandler:
    """Everything fkhls knows about one layer kind; see the module docstring for how to write one."""

    kinds: ClassVar[tuple[str, ...]] = ()
    role: ClassVar[str] = "elementwise"
    supported: ClassVar[bool] = True  # False: a known class refused whole (its blockers say why and what instead)
    keras_classes: tuple[str, ...] = ()  # set by @layer_handler
    # hls4ml's names of the step's (kernel slot, bias slot) weight variables: layer.get_weights(name)
    hls_weights: ClassVar[tuple[str, str]] = ("weight", "bias")
    # True when the step's arrays are computed for the hardware (a batch-norm scale), not Keras variables
    computed_arrays: ClassVar[bool] = False

    def blockers(self, layer) -> list[str]:
        return []

    def describe(self, layer, walk: Walk) -> list[LayerSpec]:
        raise NotImplementedError

    def forward(self, step: LayerSpec, in_type: FixedPrecisionType, x: np.ndarray, weights: dict) -> np.ndarray:
        raise NotImplementedError

    def tensor_values(self, layer, tensor: TensorSpec) -> np.ndarray:
        """The exact values (float64) of one of the step's fault-target tensors, from the Keras ``layer``.

        Default: the QKeras variable of that name through its quantizer. A handler whose hardware
        array is computed (e.g. a batch-norm scale) overrides this.
        """
        from fkhls.model.spec import quantized_tensor

        return quantized_tensor(layer, tensor.tensor)

    def is_keras_variable(self, step: LayerSpec) -> bool:
        """Are the step's arrays the Keras variables QKeras computes with (so FKeras's TF way can assign them)?"""
        return self.role == "weighted" and not self.computed_arrays

    def hls_matches(self, step: LayerSpec, hls_layer) -> bool:
        return False

    def folds(self, step: LayerSpec) -> bool:
        return False

    def hls_config(self, step: LayerSpec, previous: LayerSpec | None, config: dict) -> None:
        """Adjust hls4ml's config dict before conversion (``previous``: the step this one reads), e.g. to keep an
        optimizer pass from merging the step away."""
        return None

    def hides_previous(self, step: LayerSpec) -> bool:
        return False

    def set_hls_types(self, step: LayerSpec, hls_layer, hw: Callable) -> None:
        return None

    def hls_type_checks(self, step: LayerSpec, hls_layer) -> list[tuple[str, FixedPrecisionType, str]]:
        """(typedef name, expected type, what) to read back from defines.h beyond the output type."""
        return []

    def hls_config_checks(self, step: LayerSpec, hls_layer) -> list[tuple[str, str, str]]:
        """(config struct member, expected text, what) to read back from parameters.h (e.g. table sizes)."""
        return []

    def approximation(self, step: LayerSpec, in_type: FixedPrecisionType) -> Approximation | None:
        """None for a step exact by nature; else its declared cause, bound and exact alternative (see step 7)."""
        if not step.approximate:
            return None
        return Approximation("approximate", step.approximate, None,
                             f"handler {type(self).__name__} declares no deviation bound")


def layer_handler(*keras_classes: str):
    """Class decorator: register one instance of the handler for these Keras class names and its kinds."""

    def register(cls: type[LayerHandler]) -> type[LayerHandler]:
        if cls.role not in ROLES:
            raise ValueError(f"handler {cls.__name__}: role {cls.role!r} is not one of {ROLES}")
        handler = cls()
        handler.keras_classes = tuple(keras_classes)
        for name in keras_classes:
            if name in _BY_CLASS:
                raise ValueError(f"Keras class {name} already has a handler ({type(_BY_CLASS[name]).__name__})")
            _BY_CLASS[name] = handler
        for kind in cls.kinds:
            if kind in _BY_KIND and _BY_KIND[kind] is not handler:
                raise ValueError(f"step kind {kind!r} already has a handler ({type(_BY_KIND[kind]).__name__})")
            _BY_KIND[kind] = handler
        return cls

    return register


def handler_for_class(keras_class: str) -> LayerHandler | None:
    return _BY_CLASS.get(keras_class)


def handler_for_kind(kind: str) -> LayerHandler:
    """The handler computing steps of ``kind``; a clear refusal for a kind no handler owns."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise UnsupportedModelError(f"no layer handler for step kind {kind!r}; kinds: {sorted(_BY_KIND)}") from None


def kinds_with_role(role: str) -> tuple[str, ...]:
    return tuple(kind for kind, handler in _BY_KIND.items() if handler.role == role)


def role_of(kind: str) -> str:
    return handler_for_kind(kind).role


def supported_classes() -> tuple[str, ...]:
    return tuple(sorted(name for name, handler in _BY_CLASS.items() if name != "InputLayer" and handler.supported))
