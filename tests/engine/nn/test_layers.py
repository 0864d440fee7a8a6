"""Tests of analogtrain.engine.nn.layers.

The layers are checked against independent oracles: the closed-form products on the
exact floating-point algorithm (``alpha x W^T + b``, ``alpha d W``, ``d^T x``), naive
loops (convolution, max-pooling), the pure functions of :mod:`.functional` (LSTM,
activations, dropout) and central finite differences in float64. The finite-difference
tolerance ``RTOL = 1e-6`` is the one argued in ``test_functional.py`` (losses O(1-10),
``eps = 1e-6``: truncation ~1e-13, rounding ~1e-9; any real bug is >= 1e-2).

Weight-scaling convention (``AnalogLinear`` docstring): the effective weight is
``W = alpha W_a``; the update realises ``W <- W - lr d^T x`` on it, so the array receives
``d / alpha`` and ``W_a <- W_a - (lr / alpha) d^T x``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from analogtrain.config.device import ConstantStepDevice
from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.io import IO_PRESETS
from analogtrain.engine.algorithms import FloatingPoint, TransferFamily, build_stack
from analogtrain.engine.algorithms.registry import algorithm_spec
from analogtrain.engine.nn import functional as F
from analogtrain.engine.nn.layers import (Activation, AnalogConv2d, AnalogLinear, AnalogLSTM, Dropout, Flatten,
                                          MaxPool2d, _outer_sq_norm)
from tests.engine.nn.test_functional import assert_grad, rel_err

#: exact float64 products computed in two different orders agree to a few ulps
EXACT = dict(rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------- helpers
def fp_alg(w: np.ndarray) -> FloatingPoint:
    """A one-replica float64 FloatingPoint holding the (out, in) matrix ``w``."""
    alg = FloatingPoint(1, *w.shape, dtype=np.float64)
    alg.set_weights(w[None])
    return alg


def w_of(layer) -> np.ndarray:
    """The (out, in) array weights W_a of a layer's single replica."""
    return layer.alg.weights()[0]


def naive_conv(x, w4, b):
    """y[n, f, p, q] = sum_{c,i,j} w4[f, c, i, j] x[n, c, p + i, q + j] + b[f] (stride 1, no padding)."""
    B, _, H, W = x.shape
    Fo, _, k, _ = w4.shape
    y = np.zeros((B, Fo, H - k + 1, W - k + 1))
    for n in range(B):
        for f in range(Fo):
            for p in range(H - k + 1):
                for q in range(W - k + 1):
                    y[n, f, p, q] = np.sum(x[n, :, p:p + k, q:q + k] * w4[f]) + b[f]
    return y


def naive_conv_weight_grad(x, r, k):
    """dL/dw[f, c, i, j] = sum_{n,p,q} r[n, f, p, q] x[n, c, p + i, q + j] for L = sum(r * conv(x))."""
    _, C, H, W = x.shape
    Fo = r.shape[1]
    g = np.zeros((Fo, C, k, k))
    for f in range(Fo):
        for c in range(C):
            for i in range(k):
                for j in range(k):
                    g[f, c, i, j] = np.sum(r[:, f] * x[:, c, i:i + H - k + 1, j:j + W - k + 1])
    return g


def fd_of_array(loss, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` w.r.t. every entry of ``arr`` (float64, perturbed in place)."""
    assert arr.dtype == np.float64 and arr.flags.c_contiguous
    flat = arr.reshape(-1)
    g = np.zeros(flat.size)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        lp = float(loss())
        flat[k] = old - eps
        lm = float(loss())
        flat[k] = old
        g[k] = (lp - lm) / (2 * eps)
    return g.reshape(arr.shape)


# --------------------------------------------------------------------------- AnalogLinear on fp
@pytest.mark.parametrize("alpha", [1.0, 0.37])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_are_the_scaled_products(alpha, bias):
    """forward = alpha x W^T + b and backward = alpha d W, on the exact algorithm."""
    rng = np.random.default_rng(1)
    B, n, m = 4, 5, 3
    w = rng.standard_normal((m, n))
    b = rng.standard_normal(m) if bias else None
    layer = AnalogLinear(fp_alg(w), None if b is None else b.copy(), alpha)
    x = rng.standard_normal((B, n))
    d = rng.standard_normal((B, m))
    want = alpha * (x @ w.T) + (b if bias else 0.0)
    np.testing.assert_allclose(layer.forward(x), want, **EXACT)
    np.testing.assert_allclose(layer.backward(d), alpha * (d @ w), **EXACT)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_linear_input_gradient_by_finite_differences(alpha):
    """backward(r) is dL/dx of L = sum(forward(x) * r)."""
    rng = np.random.default_rng(2)
    layer = AnalogLinear(fp_alg(rng.standard_normal((3, 4))), rng.standard_normal(3), alpha)
    x = rng.standard_normal((5, 4))
    r = rng.standard_normal((5, 3))
    layer.forward(x)
    assert_grad(layer.backward(r), lambda: np.sum(r * layer.forward(x)), x)


@pytest.mark.parametrize("B,n,m,branch", [(2, 6, 5, "gram"), (8, 3, 2, "direct")])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_grad_sq_norm_both_branches(B, n, m, branch, bias):
    """grad_sq_norm = ||d^T x||_F^2 (+ ||sum_b d_b||^2 with a bias), in both branches of
    _outer_sq_norm: the (m, n) gradient when N n m <= N^2 (n + m), else the Gram matrices."""
    taken = "direct" if B * n * m <= B * B * (n + m) else "gram"
    assert taken == branch                                     # the case exercises the branch it names
    rng = np.random.default_rng(3)
    layer = AnalogLinear(fp_alg(rng.standard_normal((m, n))), rng.standard_normal(m) if bias else None, 0.7)
    x = rng.standard_normal((B, n))
    d = rng.standard_normal((B, m))
    layer.forward(x)
    layer.backward(d)
    want = np.sum((d.T @ x) ** 2) + (np.sum(d.sum(0) ** 2) if bias else 0.0)
    assert layer.grad_sq_norm() == pytest.approx(want, rel=1e-12)
    assert _outer_sq_norm(x, d) == pytest.approx(np.sum((d.T @ x) ** 2), rel=1e-12)


def test_outer_sq_norm_of_float32_is_accumulated_in_float64():
    """Both branches cast to float64: the result equals the float64 oracle to 1e-12, far
    below float32 rounding (~1e-7) of the same sum."""
    rng = np.random.default_rng(4)
    for B, n, m in ((2, 40, 30), (50, 3, 2)):
        x = rng.standard_normal((B, n)).astype(np.float32)
        d = rng.standard_normal((B, m)).astype(np.float32)
        want = np.sum((d.astype(np.float64).T @ x.astype(np.float64)) ** 2)
        assert _outer_sq_norm(x, d) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("grad_scale", [1.0, 0.3])
def test_linear_update_is_sgd_on_the_effective_weights(alpha, grad_scale):
    """update(lr, s): alpha W_a <- alpha W_a - lr s d^T x and b <- b - lr s sum_b d_b
    (the array itself receives d / alpha)."""
    rng = np.random.default_rng(5)
    B, n, m, lr = 4, 5, 3, 0.2
    w = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    layer = AnalogLinear(fp_alg(w), b.copy(), alpha)
    x = rng.standard_normal((B, n))
    d = rng.standard_normal((B, m))
    layer.forward(x)
    layer.backward(d)
    layer.update(lr, grad_scale)
    np.testing.assert_allclose(alpha * w_of(layer), alpha * w - lr * grad_scale * (d.T @ x), rtol=1e-12)
    np.testing.assert_allclose(w_of(layer), w - lr * grad_scale / alpha * (d.T @ x), rtol=1e-12)
    np.testing.assert_allclose(layer.b, b - lr * grad_scale * d.sum(0), rtol=1e-12)


def test_linear_update_gradient_matches_finite_differences_of_the_weights():
    """The step of update(lr) divided by lr is dL/dW_eff: FD w.r.t. W_a gives alpha dL/dW_eff."""
    rng = np.random.default_rng(6)
    alpha, lr = 1.7, 0.5
    layer = AnalogLinear(fp_alg(rng.standard_normal((3, 4))), rng.standard_normal(3), alpha)
    x = rng.standard_normal((5, 4))
    r = rng.standard_normal((5, 3))
    loss = lambda: np.sum(r * layer.forward(x))  # noqa: E731
    g_wa = fd_of_array(loss, layer.alg.w)[0]
    g_b = fd_of_array(loss, layer.b)
    w0, b0 = w_of(layer), layer.b.copy()
    layer.forward(x)
    layer.backward(r)
    layer.update(lr)
    assert rel_err(alpha * (w0 - w_of(layer)) / lr, g_wa / alpha) < 1e-6
    assert rel_err((b0 - layer.b) / lr, g_b) < 1e-6


# --------------------------------------------------------------------------- AnalogConv2d on fp
def _conv_layer(rng, C=2, Fo=3, k=3, alpha=0.6):
    w4 = rng.standard_normal((Fo, C, k, k))
    b = rng.standard_normal(Fo)
    return AnalogConv2d(fp_alg(w4.reshape(Fo, -1)), b.copy(), C, k, alpha), w4, b


def test_conv_forward_equals_naive_convolution():
    """y = alpha conv(x, W) + b, conv computed by loops (stride 1, no padding), non-square image."""
    rng = np.random.default_rng(7)
    alpha = 0.6
    layer, w4, b = _conv_layer(rng, alpha=alpha)
    x = rng.standard_normal((2, 2, 6, 5))
    y = layer.forward(x)
    assert y.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(y, alpha * naive_conv(x, w4, np.zeros(3)) + b[None, :, None, None], rtol=1e-12,
                               atol=1e-13)


def test_conv_input_gradient_by_finite_differences():
    rng = np.random.default_rng(8)
    layer, _, _ = _conv_layer(rng)
    x = rng.standard_normal((2, 2, 5, 6))
    r = rng.standard_normal((2, 3, 3, 4))
    layer.forward(x)
    assert_grad(layer.backward(r), lambda: np.sum(r * layer.forward(x)), x)


@pytest.mark.parametrize("grad_scale", [1.0, 0.25])
def test_conv_update_is_the_naive_weight_gradient(grad_scale):
    """update(lr, s) applies the sum over patches of the per-patch outer products: W_eff
    moves by -lr s dL/dW with dL/dW[f,c,i,j] = sum_{n,p,q} r[n,f,p,q] x[n,c,p+i,q+j] (loops),
    b by -lr s sum_{n,p,q} r; grad_sq_norm is ||dL/dW||^2 + ||dL/db||^2."""
    rng = np.random.default_rng(9)
    alpha, lr, k = 0.6, 0.3, 3
    layer, w4, b = _conv_layer(rng, alpha=alpha, k=k)
    x = rng.standard_normal((2, 2, 5, 6))
    r = rng.standard_normal((2, 3, 3, 4))
    layer.forward(x)
    layer.backward(r)
    gw = naive_conv_weight_grad(x, r, k).reshape(3, -1)
    gb = r.sum(axis=(0, 2, 3))
    assert layer.grad_sq_norm() == pytest.approx(np.sum(gw ** 2) + np.sum(gb ** 2), rel=1e-12)
    layer.update(lr, grad_scale)
    np.testing.assert_allclose(alpha * w_of(layer), alpha * w4.reshape(3, -1) - lr * grad_scale * gw, rtol=1e-12)
    np.testing.assert_allclose(layer.b, b - lr * grad_scale * gb, rtol=1e-12)


def test_conv_weight_gradient_matches_finite_differences():
    """The naive weight gradient oracle itself agrees with FD of the layer's loss (FD w.r.t.
    W_a = alpha dL/dW_eff)."""
    rng = np.random.default_rng(10)
    alpha, k = 0.6, 3
    layer, _, _ = _conv_layer(rng, alpha=alpha, k=k)
    x = rng.standard_normal((2, 2, 5, 5))
    r = rng.standard_normal((2, 3, 3, 3))
    fd = fd_of_array(lambda: np.sum(r * layer.forward(x)), layer.alg.w)[0]
    assert rel_err(alpha * naive_conv_weight_grad(x, r, k).reshape(3, -1), fd) < 1e-6


# --------------------------------------------------------------------------- AnalogLSTM on fp
def _lstm(rng, n_in=2, h=3, alpha=0.8):
    w = rng.standard_normal((4 * h, n_in + h + 1)) * 0.7
    return AnalogLSTM(fp_alg(w), h, alpha), w


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_forward_equals_functional(with_state):
    """hs and the final state equal functional.lstm_forward with the effective weights alpha W_a."""
    rng = np.random.default_rng(11)
    T, B, n_in, h, alpha = 4, 2, 2, 3, 0.8
    layer, w = _lstm(rng, n_in, h, alpha)
    xs = rng.standard_normal((T, B, n_in))
    h0 = rng.standard_normal((B, h)) if with_state else np.zeros((B, h))
    c0 = rng.standard_normal((B, h)) if with_state else np.zeros((B, h))
    hs = layer.forward(xs, True, (h0, c0) if with_state else None)
    want, (hT, cT), _ = F.lstm_forward(xs, h0, c0, alpha * w)
    np.testing.assert_allclose(hs, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.last_state[0], hT, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.last_state[1], cT, rtol=1e-12, atol=1e-14)


def test_lstm_input_gradient_through_time_by_finite_differences():
    rng = np.random.default_rng(12)
    layer, _ = _lstm(rng)
    xs = rng.standard_normal((4, 2, 2))
    r = rng.standard_normal((4, 2, 3))
    layer.forward(xs)
    assert_grad(layer.backward(r), lambda: np.sum(r * layer.forward(xs)), xs)


@pytest.mark.parametrize("grad_scale", [1.0, 0.4])
def test_lstm_update_applies_the_outer_products_of_every_step(grad_scale):
    """One update(lr, s) moves W_eff by -lr s sum_t gz_t^T v_t: compared with
    functional.lstm_backward's grad_w (the same sum, by the pure functions) and with FD of the
    loss w.r.t. W_a (= alpha dL/dW_eff); grad_sq_norm is ||sum_t gz_t^T v_t||^2."""
    rng = np.random.default_rng(13)
    T, B, alpha, lr = 4, 2, 0.8, 0.1
    layer, w = _lstm(rng, alpha=alpha)
    xs = rng.standard_normal((T, B, 2))
    r = rng.standard_normal((T, B, 3))
    fd = fd_of_array(lambda: np.sum(r * layer.forward(xs)), layer.alg.w)[0]
    _, _, caches = F.lstm_forward(xs, np.zeros((B, 3)), np.zeros((B, 3)), alpha * w)
    grad_w = F.lstm_backward(r, caches)[3]
    assert rel_err(alpha * grad_w, fd) < 1e-6
    layer.forward(xs)
    layer.backward(r)
    assert layer.grad_sq_norm() == pytest.approx(np.sum(grad_w ** 2), rel=1e-10)
    layer.update(lr, grad_scale)
    np.testing.assert_allclose(alpha * w_of(layer), alpha * w - lr * grad_scale * grad_w, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- stateless layers
@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_activation_forward_and_backward(kind):
    rng = np.random.default_rng(14)
    # |x| >= 0.1 so that no +-eps perturbation crosses relu's kink
    x = rng.choice([-1.0, 1.0], size=(3, 4)) * rng.uniform(0.1, 2.0, size=(3, 4))
    r = rng.standard_normal((3, 4))
    layer = Activation(kind)
    want = {"sigmoid": 1 / (1 + np.exp(-x)), "tanh": np.tanh(x), "relu": np.maximum(x, 0)}[kind]
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-14)
    assert_grad(layer.backward(r), lambda: np.sum(r * layer.forward(x)), x)


@pytest.mark.parametrize("k", [2, 3])
def test_maxpool_forward_by_loops_and_backward_by_finite_differences(k):
    """k x k max-pooling, stride k, on a 5x7 image (rows and columns beyond the last full
    window are dropped and get no gradient)."""
    rng = np.random.default_rng(15)
    x = rng.permutation(2 * 3 * 5 * 7).reshape(2, 3, 5, 7) * 0.01    # distinct values: no ties
    layer = MaxPool2d(k)
    y = layer.forward(x)
    ho, wo = 5 // k, 7 // k
    want = np.array([[[[x[n, c, k * p:k * p + k, k * q:k * q + k].max() for q in range(wo)] for p in range(ho)]
                      for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(y, want)
    r = rng.standard_normal(y.shape)
    g = layer.backward(r)
    assert np.all(g[:, :, k * ho:, :] == 0) and np.all(g[:, :, :, k * wo:] == 0)
    assert_grad(g, lambda: np.sum(r * layer.forward(x)), x)


def test_flatten_round_trip():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((3, 2, 4, 5))
    layer = Flatten()
    y = layer.forward(x)
    assert y.shape == (3, 40)
    np.testing.assert_array_equal(y[1], x[1].reshape(-1))
    g = rng.standard_normal((3, 40))
    np.testing.assert_array_equal(layer.backward(g), g.reshape(3, 2, 4, 5))


def test_stateless_layers_have_no_gradient_state_or_update():
    for layer in (Activation("tanh"), MaxPool2d(2), Flatten(), Dropout(0.5, np.random.default_rng(0))):
        assert not layer.analog
        assert layer.grad_sq_norm() == 0.0
        assert layer.state() == ({}, {})
        layer.update(0.1, 0.5)                                  # a no-op, no error


def test_dropout_is_the_identity_at_evaluation_and_for_p_zero():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    cases = ((Dropout(0.5, np.random.default_rng(1)), False), (Dropout(0.0, np.random.default_rng(1)), True))
    for layer, train in cases:
        state = layer.rng.bit_generator.state
        np.testing.assert_array_equal(layer.forward(x, train), x)
        np.testing.assert_array_equal(layer.backward(g), g)
        assert layer.rng.bit_generator.state == state         # nothing drawn


def test_dropout_mask_comes_from_its_generator():
    """Training: y = x mask with functional.dropout_forward's mask drawn from the layer's own
    generator (same seed -> same mask, the next batch a new one); backward multiplies by the
    same mask; the mask is 0 or 1/(1-p)."""
    rng = np.random.default_rng(18)
    p = 0.3
    x = rng.standard_normal((6, 7))
    g = rng.standard_normal((6, 7))
    a, b = Dropout(p, np.random.default_rng(42)), Dropout(p, np.random.default_rng(42))
    want, mask = F.dropout_forward(x, p, np.random.default_rng(42))
    ya = a.forward(x)
    np.testing.assert_array_equal(ya, want)
    np.testing.assert_array_equal(b.forward(x), want)
    np.testing.assert_array_equal(a.backward(g), g * mask)
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - p)} and 0 < np.count_nonzero(mask) < mask.size
    assert not np.array_equal(a.forward(x), ya)                # the generator moved on
    assert not np.array_equal(Dropout(p, np.random.default_rng(43)).forward(x), ya)


def test_dropout_inverted_scaling_keeps_the_mean():
    """E[y] = x: with x = 1 on N = 200000 entries and p = 0.25 the mean of y has sd
    sqrt(p / ((1 - p) N)) = 1.3e-3; tolerance 5 sd. The zero fraction is p within 5 sd
    (sqrt(p (1-p) / N) = 9.7e-4)."""
    p, N = 0.25, 200_000
    y = Dropout(p, np.random.default_rng(19)).forward(np.ones(N))
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / ((1 - p) * N))
    assert abs(np.mean(y == 0) - p) < 5 * np.sqrt(p * (1 - p) / N)


# --------------------------------------------------------------------------- pulsed layer
def ideal_device(dw: float) -> ConstantStepDevice:
    """Symmetric constant step, no device-to-device or cycle-to-cycle variation, 2000 states."""
    return ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                              w_max=10.0, w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)


def test_pulsed_linear_update_is_sgd_in_expectation():
    """AnalogLinear on plain analog SGD, perfect I/O, an ideal constant-step device, alpha 0.5.

    Each sample's pulse count at device ij is Binomial(BL, p_x p_d) with mean
    lr |d_i x_j| / (alpha dw) (k = lr max|x| max|d| / (alpha dw) <= 8 < desired_bl, so no
    probability is clipped), so E[dW_a] = -(lr / alpha) d^T x and, the samples' trains being
    independent, Var[dW_a,ij] <= dw lr sum_b |d_bi x_bj| / alpha. Averaged over L = 200
    layers with their own pulse streams (seeds 0..199), every element is within 5 sd of the
    SGD step (12 elements: a false alarm has probability ~1e-5; the test is seeded). The
    steps are whole multiples of dw, and the bias update is exact.
    """
    L, B, n, m, dw, lr, alpha = 200, 3, 4, 3, 0.01, 0.04, 0.5
    rng = np.random.default_rng(20)
    x = rng.uniform(-1, 1, (B, n))
    d = rng.uniform(-1, 1, (B, m))
    w0 = rng.uniform(-1, 1, (m, n))
    b0 = rng.standard_normal(m)
    steps = []
    for s in range(L):
        alg = build_stack(["sgd"], [algorithm_spec("sgd").default_config()], [ideal_device(dw)], None, m, n,
                          io=IO_PRESETS["perfect"], seed=s, replica_seeds=[s], dtype=np.float64)
        alg.set_weights(w0[None])
        layer = AnalogLinear(alg, b0.copy(), alpha)
        layer.forward(x)
        layer.backward(d)
        layer.update(lr)
        steps.append(w_of(layer) - w0)
        np.testing.assert_allclose(layer.b, b0 - lr * d.sum(0), rtol=1e-14)
    steps = np.array(steps)
    np.testing.assert_allclose(steps / dw, np.round(steps / dw), atol=1e-6)      # whole pulses
    want = -(lr / alpha) * (d.T @ x)
    sd = np.sqrt(dw * lr * (np.abs(d).T @ np.abs(x)) / alpha / L)
    assert np.all(np.abs(steps.mean(0) - want) <= 5 * sd)
    assert np.linalg.norm(want) > 5 * np.linalg.norm(sd)       # a zero or wrong-sign step would fail
    assert np.any(steps.std(0) > 0)                             # and it is stochastic


@pytest.mark.parametrize("kind", ["linear", "conv", "lstm"])
def test_update_applies_the_device_decay_once_per_batch(kind):
    """Every analog layer's update ends with the algorithm's per-mini-batch slow processes:
    with a lifetime of 10 mini-batches (reset 0, no spread, no reference) and a zero
    gradient (no pulses), one update scales W_a by exactly 1 - 1/10 (float64)."""
    dev = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                             w_min_dtod=0.0, lifetime=10.0, reset_std=0.0)
    rng = np.random.default_rng(22)
    out, inp = {"linear": (3, 4), "conv": (2, 4), "lstm": (8, 5)}[kind]
    alg = build_stack(["sgd"], [algorithm_spec("sgd").default_config()], [dev], None, out, inp,
                      io=IO_PRESETS["perfect"], seed=0, replica_seeds=[0], dtype=np.float64)
    w0 = rng.uniform(-0.5, 0.5, (out, inp))
    alg.set_weights(w0[None])
    if kind == "linear":
        layer, x, g = AnalogLinear(alg, None), rng.standard_normal((2, 4)), np.zeros((2, 3))
    elif kind == "conv":
        layer, x, g = AnalogConv2d(alg, None, 1, 2), rng.standard_normal((2, 1, 3, 3)), np.zeros((2, 2, 2, 2))
    else:
        layer, x, g = AnalogLSTM(alg, 2), rng.standard_normal((3, 2, 2)), np.zeros((3, 2, 2))
    layer.forward(x)
    layer.backward(g)
    layer.update(0.1)
    np.testing.assert_allclose(w_of(layer), 0.9 * w0, rtol=1e-12)


# --------------------------------------------------------------------------- state round trip
SOFT_W = DeviceSpec("softbounds").resolve("W")
SOFT_A = DeviceSpec("softbounds").resolve("A")


def _alg_cfg(name):
    spec = algorithm_spec(name)
    if spec.family == "transfer":
        # choppers that flip within a few batches (regular every 2 passes and at random, output
        # choppers too), so chopper state, its stream, H, P and P_ref all take part
        return spec.configure("build-config", {"in_chop_prob": 0.5, "in_chop_random": True, "out_chop_prob": 0.5})
    return spec.default_config("build-config")


def _stack(name, out, inp, dyn_seed, dtype=np.float32):
    """An analog stack with noisy I/O (so the noise stream matters); devices from seed 5,
    the dynamic streams (pulses, noise, chopper) from ``dyn_seed``."""
    spec = algorithm_spec(name)
    return build_stack([name], [_alg_cfg(name)], [SOFT_W], [SOFT_A] if "A" in spec.arrays else None, out, inp,
                       io=IO_PRESETS["default"], seed=dyn_seed, replica_seeds=[5], dtype=dtype,
                       count_pulses=spec.analog, device_path=(0,))


def _make_layer(kind, name, dyn_seed):
    init = np.random.default_rng(99)
    if kind == "linear":
        alg = _stack(name, 3, 4, dyn_seed)
        alg.set_weights(init.uniform(-0.5, 0.5, (1, 3, 4)))
        return AnalogLinear(alg, init.uniform(-0.5, 0.5, 3).astype(np.float32), 1.3)
    if kind == "conv":
        alg = _stack(name, 2, 2 * 2 * 2, dyn_seed)
        alg.set_weights(init.uniform(-0.5, 0.5, (1, 2, 8)))
        return AnalogConv2d(alg, init.uniform(-0.5, 0.5, 2).astype(np.float32), 2, 2, 0.9)
    alg = _stack(name, 4 * 2, 2 + 2 + 1, dyn_seed)
    alg.set_weights(init.uniform(-0.5, 0.5, (1, 8, 5)))
    return AnalogLSTM(alg, 2, 1.1)


def _batch(kind, rng):
    """(input, output gradient) of one batch for a layer of ``_make_layer``."""
    x_shape, g_shape = {"linear": ((5, 4), (5, 3)), "conv": ((2, 2, 3, 3), (2, 2, 2, 2)),
                        "lstm": ((3, 2, 2), (3, 2, 2))}[kind]
    return rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(g_shape).astype(np.float32)


def _step(layer, x, g, lr=1.0):
    y = layer.forward(x)
    gx = layer.backward(g)
    layer.update(lr)
    return y, gx


def assert_states_equal(a, b):
    arrs_a, info_a = a
    arrs_b, info_b = b
    assert sorted(arrs_a) == sorted(arrs_b)
    for k in arrs_a:
        assert arrs_a[k].dtype == arrs_b[k].dtype, k
        np.testing.assert_array_equal(arrs_a[k], arrs_b[k], err_msg=k)
    assert info_a == info_b


@pytest.mark.parametrize("kind,name", [("linear", "fp"), ("linear", "sgd"), ("linear", "mp"), ("linear", "agad"),
                                       ("conv", "agad"), ("lstm", "c-ttv2"), ("lstm", "sgd")])
def test_layer_state_round_trip_continues_bit_for_bit(kind, name):
    """state() after two batches, loaded into a fresh layer whose dynamic streams come from
    another seed, restores weights, bias and the algorithm's state exactly (transfer family:
    A, W, H, choppers, P/P_ref, running maxima, counters and the streams); both layers then
    give identical outputs, input gradients and states for two more batches."""
    rng = np.random.default_rng(21)
    batches = [_batch(kind, rng) for _ in range(4)]
    a = _make_layer(kind, name, dyn_seed=1)
    for x, g in batches[:2]:
        _step(a, x, g)
    snap = a.state()
    snap_copy = ({k: v.copy() for k, v in snap[0].items()}, copy.deepcopy(snap[1]))
    b = _make_layer(kind, name, dyn_seed=2)
    fresh = b.state()
    b.load_state(*snap)
    assert_states_equal(b.state(), snap)
    if isinstance(a.alg, TransferFamily):
        arrs, info = snap
        assert {"A.w", "W.w", "H", "c_in", "c_out", "m_x", "m_d"} <= set(arrs)
        assert info["samples"] > 0 and info["transfers"] > 0
        assert np.any(arrs["H"] != 0) and np.any(arrs["A.w"] != 0)
        assert np.any(arrs["c_in"] == -1) or np.any(arrs["c_out"] == -1)     # a chopper has flipped
    with pytest.raises(AssertionError):                         # the snapshot is not the fresh state
        assert_states_equal(fresh, snap)
    for x, g in batches[2:]:
        ya, gxa = _step(a, x, g)
        yb, gxb = _step(b, x, g)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(gxa, gxb)
    assert_states_equal(a.state(), b.state())
    assert_states_equal(snap, snap_copy)                        # the snapshot was a copy
    with pytest.raises(AssertionError):
        assert_states_equal(a.state(), snap)
