"""Gradient, Taylor and Hessian parameter scores of the QKeras model as it runs, computed in TF.

What FKeras computes (``HessianMetrics`` in KastnerRG/fkeras, ``fkeras/metrics/hessian.py``),
written here from the method:

* loss: sparse categorical cross-entropy of the model's outputs taken as logits (fkhls models end
  in a linear or quantized layer, never a softmax), mean over samples; the targets are the labels
  when given, else the model's own top-1 class from the exact integer forward (what the hardware
  predicts), so a fault that moves the top-1 is what the loss sees;
* gradient: dL/dw for every kernel and bias parameter (QKeras's straight-through quantizers make
  this the gradient at the quantized weights); score |g|;
* Taylor (FKeras's ``aspis_taylor_ranking``): (g * w)**2;
* Hessian: the top-k eigenpairs of d2L/dw2 by power iteration with Hessian-vector products
  (double back-propagation), each new vector made orthogonal to the ones found, stopped when the
  eigenvalue changes by less than ``tolerance`` relative or after ``max_iter`` products; score
  (FKeras's ``do_sum_hessian_rank``) = sum_i |(lambda_i v_i . w) lambda_i v_i|.

The model runs in inference mode (FKeras's Hessian calls it with ``training=True``: the same
for the layers fkhls exports, which have no batch norm or dropout). ``w`` is the quantized
weight value QKeras computes with (the word the hardware stores; FKeras
dots the float shadow variable instead). Hessian-vector products are averaged over batches of
``batch_size`` samples weighted by batch length, as FKeras does. The start vectors are uniform
[0, 1) from ``numpy.random.default_rng(seed)``: the result is a function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fkhls.core.errors import FkhlsError
from fkhls.rank.bitorder import BitSpace

__all__ = ["LOSS_DESCRIPTION", "HessianResult", "parameters", "weight_values", "gradient", "gradient_scores",
           "taylor_scores", "hessian_vector_product", "hessian_eigen", "hessian_scores"]

LOSS_DESCRIPTION = {
    "labels": "sparse categorical cross-entropy (outputs as logits) against the given labels, mean over samples",
    "top1": "sparse categorical cross-entropy (outputs as logits) against the model's own exact top-1 class, "
            "mean over samples",
}


@dataclass(frozen=True)
class HessianResult:
    eigenvalues: tuple[float, ...]
    eigenvectors: np.ndarray = field(repr=False)  # (k, n_params), unit norm, in BitSpace parameter order
    iterations: tuple[int, ...]  # Hessian-vector products spent on each eigenpair
    converged: tuple[bool, ...]


def parameters(model, space: BitSpace) -> list:
    """The Keras variables behind every quantized tensor, in model-bit order."""
    out = []
    for layer_name, tensor in zip(space.layers, space.tensors):
        variable = getattr(model.get_layer(layer_name), tensor, None)
        if variable is None or not hasattr(variable, "assign"):  # e.g. a batch norm's scale: hls4ml computes it
            raise FkhlsError(f"layer {layer_name!r} of the model has no {tensor!r} variable: that array is computed "
                             "for the hardware, so gradient, Taylor and Hessian scores (of Keras variables) cannot "
                             "rank it; rank by fault injection instead")
        out.append(variable)
    return out


def weight_values(model, space: BitSpace) -> np.ndarray:
    """The quantized values the model computes with, flattened in parameter order (float64, exact)."""
    from fkhls.model.spec import quantized_tensor

    return np.concatenate([quantized_tensor(model.get_layer(l), t).ravel() for l, t in zip(space.layers, space.tensors)])


def _loss(model, x, y):
    import tensorflow as tf

    logits = tf.reshape(model(x, training=False), (tf.shape(x)[0], -1))
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise FkhlsError(f"batch size {batch_size} must be >= 1")
    for lo in range(0, n, batch_size):
        yield lo, min(n, lo + batch_size)


def _flat(tensors) -> np.ndarray:
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])


def gradient(model, space: BitSpace, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """dL/dw of the mean loss over all samples, flattened in parameter order (float64)."""
    import tensorflow as tf

    params = parameters(model, space)
    total = np.zeros(space.n_params)
    for lo, hi in _batches(len(x), batch_size):
        with tf.GradientTape() as tape:
            loss = _loss(model, tf.constant(x[lo:hi], tf.float32), tf.constant(y[lo:hi]))
        total += _flat(tape.gradient(loss, params)) * (hi - lo)
    return total / len(x)


def gradient_scores(model, space: BitSpace, x, y) -> np.ndarray:
    return np.abs(gradient(model, space, x, y))


def taylor_scores(model, space: BitSpace, x, y) -> np.ndarray:
    return (gradient(model, space, x, y) * weight_values(model, space)) ** 2


def _split(space: BitSpace, flat: np.ndarray, variables) -> list:
    import tensorflow as tf

    out, lo = [], 0
    for variable, size in zip(variables, space.sizes):
        out.append(tf.constant(flat[lo:lo + size].reshape(variable.shape), dtype=variable.dtype))
        lo += size
    return out


def hessian_vector_product(model, space: BitSpace, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                           batch_size: int = 256) -> np.ndarray:
    """H v for the mean loss (double back-propagation), averaged over batches weighted by their length."""
    import tensorflow as tf

    params = parameters(model, space)
    vs = _split(space, np.asarray(v, dtype=np.float64), params)
    total = np.zeros(space.n_params)
    for lo, hi in _batches(len(x), batch_size):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = _loss(model, tf.constant(x[lo:hi], tf.float32), tf.constant(y[lo:hi]))
            grads = inner.gradient(loss, params)
        hv = outer.gradient(grads, params, output_gradients=vs)
        hv = [tf.zeros_like(p) if h is None else h for p, h in zip(params, hv)]  # a tensor the loss is linear in
        total += _flat(hv) * (hi - lo)
    return total / len(x)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-6)  # FKeras's normalize_vector_list adds 1e-6


def hessian_eigen(model, space: BitSpace, x: np.ndarray, y: np.ndarray, *, k: int = 3, max_iter: int = 20,
                  tolerance: float = 1e-3, seed: int = 0, batch_size: int = 256) -> HessianResult:
    """Top-k eigenpairs (largest eigenvalue first in the power-iteration sense) with deflation by orthogonality."""
    if not 1 <= k <= space.n_params:
        raise FkhlsError(f"hessian top-k {k} is outside the valid range 1..{space.n_params} (number of parameters)")
    if max_iter < 1:
        raise FkhlsError(f"hessian max iterations {max_iter} must be >= 1")
    rng = np.random.default_rng(seed)
    values, vectors, iterations, converged = [], [], [], []
    for _ in range(k):
        v = _normalize(rng.uniform(size=space.n_params))
        eigenvalue, done, used = None, False, 0
        for _ in range(max_iter):
            for e in vectors:
                v = v - np.dot(v, e) * e
            v = _normalize(v)
            hv = hessian_vector_product(model, space, x, y, v, batch_size)
            used += 1
            estimate = float(np.dot(hv, v))
            v = _normalize(hv)
            if eigenvalue is not None and abs(estimate - eigenvalue) / (abs(eigenvalue) + 1e-6) < tolerance:
                eigenvalue, done = estimate, True
                break
            eigenvalue = estimate
        values.append(eigenvalue)
        vectors.append(v)
        iterations.append(used)
        converged.append(done)
    return HessianResult(tuple(values), np.array(vectors), tuple(iterations), tuple(converged))


def hessian_scores(result: HessianResult, weights: np.ndarray) -> np.ndarray:
    """FKeras's ``sum`` strategy: sum over eigenpairs of |(lambda v . w) * lambda v| per parameter."""
    score = np.zeros(result.eigenvectors.shape[1])
    for value, vector in zip(result.eigenvalues, result.eigenvectors):
        scaled = vector * value
        score += np.abs(np.dot(scaled, weights) * scaled)
    return score
