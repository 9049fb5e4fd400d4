"""One handler per layer kind (see ``base`` for how to write the next one); importing registers them all."""

from fkhls.model.layers import (  # noqa: F401  (registers the handlers)
    activation,
    alpha,
    batchnorm,
    conv,
    dense,
    depthwise,
    merge,
    padding,
    pooling,
    reshape,
    softmax,
    upsampling,
)
from fkhls.model.layers.base import (
    Approximation,
    LayerHandler,
    Walk,
    handler_for_class,
    handler_for_kind,
    kinds_with_role,
    layer_handler,
    role_of,
    supported_classes,
)

__all__ = ["Approximation", "LayerHandler", "Walk", "handler_for_class", "handler_for_kind", "kinds_with_role", "layer_handler", "role_of",
           "supported_classes"]
