"""fkhls.rank.sensitivity: gradients and Hessian-vector products of the QKeras model, checked against TF's
own full Jacobian of the gradient, and the power iteration against numpy's eigendecomposition."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fkhls.core.errors import FkhlsError
from fkhls.model.spec import describe_model
from fkhls.rank import sensitivity as S
from fkhls.rank.bitorder import BitSpace

from tests import models


@pytest.fixture(scope="module")
def setup():
    """The conv1d test model (90 parameters: conv kernel + bias, dense kernel + bias), 32 inputs, 2 classes."""
    import tensorflow as tf

    model = models.build("conv1d")
    space = BitSpace.of(describe_model(model))
    x = models.inputs_for(model, n=32, seed=3)
    y = np.arange(32) % 2
    params = S.parameters(model, space)
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True))
        grads = inner.gradient(loss, params)
        flat = tf.concat([tf.reshape(g, [-1]) for g in grads], 0)
    jac = outer.jacobian(flat, params)
    hessian = np.concatenate([np.asarray(j, dtype=np.float64).reshape(len(flat), -1) for j in jac], axis=1)
    return model, space, x, y, np.asarray(flat, dtype=np.float64), hessian


def test_gradient_is_the_mean_loss_gradient_whatever_the_batching(setup):
    model, space, x, y, grad, _ = setup
    assert space.n_params == 90
    assert_allclose(S.gradient(model, space, x, y), grad, rtol=1e-5, atol=1e-7)
    assert_allclose(S.gradient(model, space, x, y, batch_size=5), grad, rtol=1e-4, atol=1e-6)


def test_taylor_is_gradient_times_quantized_weight_squared(setup):
    model, space, x, y, grad, _ = setup
    w = S.weight_values(model, space)
    assert len(w) == 90
    # the weights are QKeras's quantized values: on the 2**-fractional grid of their quantizers
    assert_allclose(S.taylor_scores(model, space, x, y), (grad * w) ** 2, rtol=1e-4, atol=1e-12)


def test_hessian_vector_product_equals_the_full_hessian_times_v(setup):
    model, space, x, y, _, hessian = setup
    assert_allclose(hessian, hessian.T, atol=1e-6)
    v = np.random.default_rng(0).normal(size=space.n_params)
    assert_allclose(S.hessian_vector_product(model, space, x, y, v, batch_size=7), hessian @ v, rtol=1e-4, atol=1e-5)


def test_power_iteration_finds_the_top_eigenpairs(setup):
    model, space, x, y, _, hessian = setup
    values, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    top = np.argsort(-np.abs(values))[:2]
    result = S.hessian_eigen(model, space, x, y, k=2, max_iter=300, tolerance=1e-7, seed=0)
    assert_allclose(result.eigenvalues, values[top], rtol=1e-4)
    for i in range(2):
        assert abs(np.dot(result.eigenvectors[i], vectors[:, top[i]])) > 0.9999


def test_hessian_is_a_function_of_the_seed(setup):
    model, space, x, y, _, _ = setup
    a = S.hessian_eigen(model, space, x, y, k=1, max_iter=4, seed=5)
    b = S.hessian_eigen(model, space, x, y, k=1, max_iter=4, seed=5)
    assert a.iterations == (4,) and a.converged == (False,)
    assert_array_equal(a.eigenvectors, b.eigenvectors)
    with pytest.raises(FkhlsError, match="top-k 0"):
        S.hessian_eigen(model, space, x, y, k=0)


def test_hessian_scores_by_hand():
    result = S.HessianResult((2.0, -1.0), np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]), (1, 1), (True, True))
    w = np.array([1.0, 2.0, 3.0])
    # pair 1: lv = (1.2, 1.6, 0), lv.w = 4.4 -> (5.28, 7.04, 0); pair 2: lv = (0, 0, -1), lv.w = -3 -> (0, 0, 3)
    assert_allclose(S.hessian_scores(result, w), [5.28, 7.04, 3.0])
