"""Tests of analogtrain.engine.nn.functional.

Forward passes are compared with independent oracles (naive loops, per-gate formulas);
every backward is compared with central finite differences in float64.

Finite-difference tolerance: with ``eps = 1e-6`` in float64 the central difference has a
truncation error ~ eps^2 |f'''| / 6 ~ 1e-13 and a rounding error ~ u |L| / eps
~ 1e-16 * 10 / 1e-6 = 1e-9 (all losses here are O(1-10) with O(1) derivatives), so the
norm-wise relative error ||g - g_fd|| / max(||g||, ||g_fd||) stays below ~1e-8. We assert
``RTOL = 1e-6``: two orders of margin, while any real bug (a wrong sign, a missing term or
factor, a transposed index) gives an error of order 1e-2..1.
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.errors import ConfigError
from analogtrain.engine.nn import functional as F

EPS = 1e-6
RTOL = 1e-6


# --------------------------------------------------------------------------- helpers


def numgrad(loss, x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Central finite differences of the scalar ``loss()`` w.r.t. ``x`` (perturbed in place)."""
    assert x.dtype == np.float64 and x.flags.c_contiguous
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x)
    g = np.zeros(x.size)
    for k in range(x.size):
        old = flat[k]
        flat[k] = old + eps
        lp = float(loss())
        flat[k] = old - eps
        lm = float(loss())
        flat[k] = old
        g[k] = (lp - lm) / (2 * eps)
    return g.reshape(x.shape)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    den = max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / den)


def assert_grad(analytic: np.ndarray, loss, x: np.ndarray) -> None:
    num = numgrad(loss, x)
    assert np.linalg.norm(num) > 1e-3, "degenerate test: the loss does not depend on x"
    err = rel_err(analytic, num)
    assert err < RTOL, f"relative error {err:.3e} >= {RTOL}"


def seeds(n: int = 3):
    return pytest.mark.parametrize("seed", range(n))


# --------------------------------------------------------------------------- the checker itself


def test_gradient_checker_rejects_a_wrong_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    r = rng.standard_normal((3, 4))
    loss = lambda: np.sum(r * np.tanh(x))  # noqa: E731
    good = r * (1 - np.tanh(x) ** 2)
    assert_grad(good, loss, x)
    with pytest.raises(AssertionError):
        assert_grad(good * 1.001, loss, x)
    with pytest.raises(AssertionError):
        assert_grad(r, loss, x)


# --------------------------------------------------------------------------- activations


@seeds()
def test_sigmoid_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(rng.integers(2, 6, size=2))) * 3
    r = rng.standard_normal(x.shape)
    y = F.sigmoid(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-14)
    assert_grad(F.sigmoid_backward(y, r), lambda: np.sum(r * F.sigmoid(x)), x)


def test_sigmoid_extreme_inputs():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        y = F.sigmoid(x)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    np.testing.assert_allclose(y[1], np.exp(-40.0), rtol=1e-12)  # tiny outputs keep precision


@seeds()
def test_tanh_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(rng.integers(2, 6, size=3)))
    r = rng.standard_normal(x.shape)
    y = F.tanh(x)
    np.testing.assert_allclose(y, (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1), rtol=1e-12, atol=1e-15)
    assert_grad(F.tanh_backward(y, r), lambda: np.sum(r * F.tanh(x)), x)


@seeds()
def test_relu_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(2, 6, size=2))
    # |x| >= 0.1 so that the +-eps perturbation never crosses the kink at 0
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)
    r = rng.standard_normal(shape)
    np.testing.assert_array_equal(F.relu(x), np.where(x > 0, x, 0.0))
    assert_grad(F.relu_backward(x, r), lambda: np.sum(r * F.relu(x)), x)


def test_relu_backward_is_zero_at_zero():
    g = F.relu_backward(np.array([-1.0, 0.0, 2.0]), np.array([5.0, 5.0, 5.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 5.0])


# --------------------------------------------------------------------------- losses


def _log_softmax_oracle(z):
    e = np.exp(z)
    return np.log(e / e.sum(axis=-1, keepdims=True))


@seeds()
def test_log_softmax_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((int(rng.integers(2, 6)), int(rng.integers(2, 8))))
    r = rng.standard_normal(z.shape)
    logp = F.log_softmax(z)
    np.testing.assert_allclose(logp, _log_softmax_oracle(z), rtol=1e-12)
    assert_grad(F.log_softmax_backward(logp, r), lambda: np.sum(r * F.log_softmax(z)), z)


def test_log_softmax_is_stable_for_large_inputs():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 6))
    for shift in (1e3, 1e4, -1e4):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            logp = F.log_softmax(z + shift)
        assert np.all(np.isfinite(logp))
        np.testing.assert_allclose(logp, _log_softmax_oracle(z), rtol=1e-9, atol=1e-11)
    big = np.array([[1e4, 1e4, 1e4 - 100.0]])
    expected = [[-np.log(2), -np.log(2), -100 - np.log(2)]]
    np.testing.assert_allclose(F.log_softmax(big), expected, rtol=1e-12)


@seeds()
def test_nll_loss_value_and_gradient(seed):
    rng = np.random.default_rng(seed)
    B, K = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    logp = _log_softmax_oracle(rng.standard_normal((B, K)))
    t = rng.integers(0, K, size=B)
    loss, grad = F.nll_loss(logp, t)
    assert loss == pytest.approx(-np.mean([logp[n, t[n]] for n in range(B)]), rel=1e-14)
    assert_grad(grad, lambda: F.nll_loss(logp, t)[0], logp)


@seeds()
def test_log_softmax_plus_nll_equals_cross_entropy_and_its_gradient(seed):
    rng = np.random.default_rng(seed)
    B, K = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    z = rng.standard_normal((B, K)) * 2
    t = rng.integers(0, K, size=B)
    loss, grad_z = F.cross_entropy(z, t)
    # independent oracle of the value
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(B), t])), rel=1e-12)
    # gradient of the mean loss vs finite differences of log_softmax -> nll_loss
    assert_grad(grad_z, lambda: F.nll_loss(F.log_softmax(z), t)[0], z)
    # the chained backward gives the same gradient
    logp = F.log_softmax(z)
    chained = F.log_softmax_backward(logp, F.nll_loss(logp, t)[1])
    assert rel_err(chained, grad_z) < 1e-12


def test_cross_entropy_means_over_all_leading_axes():
    rng = np.random.default_rng(5)
    T, B, K = 4, 3, 5
    z = rng.standard_normal((T, B, K))
    t = rng.integers(0, K, size=(T, B))
    loss, grad = F.cross_entropy(z, t)
    loss2, grad2 = F.cross_entropy(z.reshape(T * B, K), t.reshape(-1))
    assert loss == pytest.approx(loss2, rel=1e-14)
    np.testing.assert_allclose(grad.reshape(T * B, K), grad2, rtol=1e-14)
    assert_grad(grad, lambda: F.cross_entropy(z, t)[0], z)


# --------------------------------------------------------------------------- linear


@seeds()
def test_linear_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    B, n_in, n_out = (int(v) for v in rng.integers(1, 7, size=3))
    x = rng.standard_normal((B, n_in))
    w = rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out)
    r = rng.standard_normal((B, n_out))
    y = F.linear_forward(x, w, b)
    np.testing.assert_allclose(y, np.einsum("oi,bi->bo", w, x) + b, rtol=1e-12, atol=1e-14)
    gx, gw, gb = F.linear_backward(x, w, r)
    loss = lambda: np.sum(r * F.linear_forward(x, w, b))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gw, loss, w)
    assert_grad(gb, loss, b)


def test_linear_without_bias_and_with_leading_axes():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 4))  # (T, B, in)
    w = rng.standard_normal((5, 4))
    r = rng.standard_normal((3, 2, 5))
    y = F.linear_forward(x, w)
    assert y.shape == (3, 2, 5)
    np.testing.assert_allclose(y, np.einsum("oi,tbi->tbo", w, x), rtol=1e-12)
    gx, gw, gb = F.linear_backward(x, w, r)
    loss = lambda: np.sum(r * F.linear_forward(x, w))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gw, loss, w)
    np.testing.assert_allclose(gb, r.sum(axis=(0, 1)), rtol=1e-12)


def test_linear_mvm_seam_is_used():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((2, 4))
    g = rng.standard_normal((3, 2))
    # a "device" whose weights are 2 w: the seam must route the products through it
    y = F.linear_forward(x, None, matvec=lambda v: v @ (2 * w).T)
    np.testing.assert_allclose(y, 2 * (x @ w.T), rtol=1e-12)
    gx, gw, _ = F.linear_backward(x, None, g, rmatvec=lambda d: d @ (2 * w))
    np.testing.assert_allclose(gx, 2 * (g @ w), rtol=1e-12)
    np.testing.assert_allclose(gw, g.T @ x, rtol=1e-12)  # weight gradient does not use w


# --------------------------------------------------------------------------- im2col / conv


CONV_CASES = [  # (stride, padding)
    (1, 0),
    (1, 1),
    (2, 0),
    (2, 2),
    (3, 1),
]


def _im2col_oracle(x, kh, kw, s, p):
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    rows = []
    for b in range(B):
        for i in range(ho):
            for j in range(wo):
                rows.append(xp[b, :, s * i : s * i + kh, s * j : s * j + kw].reshape(-1))
    return np.array(rows)


def _conv_oracle(x, w, b, s, p):
    B, C, H, W = x.shape
    Fo, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    y = np.zeros((B, Fo, ho, wo))
    for n in range(B):
        for f in range(Fo):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, s * i : s * i + kh, s * j : s * j + kw]
                    y[n, f, i, j] = np.sum(patch * w[f]) + (0.0 if b is None else b[f])
    return y


def _conv_shapes(rng, s, p):
    B, C, Fo = (int(v) for v in rng.integers(1, 4, size=3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    H = int(rng.integers(max(kh - 2 * p, 1), 8))
    W = int(rng.integers(max(kw - 2 * p, 1), 8))
    return (B, C, H, W), (Fo, C, kh, kw)


@pytest.mark.parametrize("stride,padding", CONV_CASES)
def test_im2col_matches_loops_and_col2im_is_its_adjoint(stride, padding):
    rng = np.random.default_rng(10 * stride + padding)
    for _ in range(3):
        x_shape, (_, _, kh, kw) = _conv_shapes(rng, stride, padding)
        x = rng.standard_normal(x_shape)
        cols = F.im2col(x, kh, kw, stride, padding)
        np.testing.assert_array_equal(cols, _im2col_oracle(x, kh, kw, stride, padding))
        a = rng.standard_normal(cols.shape)
        lhs = np.sum(F.col2im(a, x_shape, kh, kw, stride, padding) * x)  # <col2im(a), x>
        rhs = np.sum(a * cols)  # <a, im2col(x)>
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_col2im_accumulates_overlaps():
    x_shape = (1, 1, 3, 3)
    cols = np.ones((4, 4))  # 2x2 kernel, stride 1 -> 2x2 outputs
    counts = F.col2im(cols, x_shape, 2, 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize("stride,padding", CONV_CASES)
def test_conv2d_forward_and_backward(stride, padding):
    rng = np.random.default_rng(100 + 10 * stride + padding)
    x_shape, w_shape = _conv_shapes(rng, stride, padding)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = F.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y, _conv_oracle(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)
    r = rng.standard_normal(y.shape)
    gx, gw, gb = F.conv2d_backward(x, w, r, stride, padding)
    loss = lambda: np.sum(r * F.conv2d_forward(x, w, b, stride, padding))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gw, loss, w)
    assert_grad(gb, loss, b)


def test_conv2d_mvm_seam_and_no_bias():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    w2 = w.reshape(3, -1)
    y = F.conv2d_forward(x, w, matvec=lambda v: v @ (2 * w2).T)
    np.testing.assert_allclose(y, 2 * _conv_oracle(x, w, None, 1, 0), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    gx, _, _ = F.conv2d_backward(x, w, g, rmatvec=lambda d: d @ (2 * w2))
    gx_ref, _, _ = F.conv2d_backward(x, 2 * w, g)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12)


def test_lenet_shapes():
    x = np.zeros((2, 1, 28, 28))
    y = F.conv2d_forward(x, np.zeros((16, 1, 5, 5)), np.zeros(16))
    y, _ = F.maxpool_forward(y, 2)
    y = F.conv2d_forward(y, np.zeros((32, 16, 5, 5)), np.zeros(32))
    y, _ = F.maxpool_forward(y, 2)
    assert y.shape == (2, 32, 4, 4) and y[0].size == 512


# --------------------------------------------------------------------------- max-pooling


def _maxpool_oracle(x, k):
    B, C, H, W = x.shape
    y = np.zeros((B, C, H // k, W // k))
    for i in range(H // k):
        for j in range(W // k):
            y[:, :, i, j] = x[:, :, k * i : k * i + k, k * j : k * j + k].max(axis=(2, 3))
    return y


@pytest.mark.parametrize("k", [2, 3])
@seeds(2)
def test_maxpool_forward_and_backward_without_ties(k, seed):
    rng = np.random.default_rng(seed)
    B, C = (int(v) for v in rng.integers(1, 4, size=2))
    H, W = (int(v) for v in rng.integers(k, 3 * k + 2, size=2))  # also sizes not divisible by k
    # distinct values 1e-3 apart: the +-1e-6 perturbation never changes a window's argmax
    x = (rng.permutation(B * C * H * W) * 1e-3).reshape(B, C, H, W)
    y, cache = F.maxpool_forward(x, k)
    np.testing.assert_array_equal(y, _maxpool_oracle(x, k))
    r = rng.standard_normal(y.shape)
    gx = F.maxpool_backward(r, cache, x.shape)
    assert_grad(gx, lambda: np.sum(r * F.maxpool_forward(x, k)[0]), x)


def test_maxpool_ties_give_the_gradient_to_exactly_one_element():
    x = np.zeros((1, 2, 4, 4))
    x[0, 1, :2, :2] = 3.0  # a window of four tied maxima
    y, cache = F.maxpool_forward(x, 2)
    g = F.maxpool_backward(np.ones_like(y), cache, x.shape)
    windows = g.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    np.testing.assert_array_equal(np.count_nonzero(windows, axis=-1), np.ones((1, 2, 2, 2)))
    assert g.sum() == y.size


# --------------------------------------------------------------------------- dropout


def test_dropout_backward_with_fixed_mask():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 7))
    _, mask = F.dropout_forward(x, 0.3, np.random.default_rng(4))
    r = rng.standard_normal(x.shape)
    # the mask is held fixed: the forward with that mask is y = x * mask
    assert_grad(F.dropout_backward(r, mask), lambda: np.sum(r * (x * mask)), x)


def test_dropout_mask_values_and_statistics():
    p = 0.2
    x = np.ones((400, 500))
    y, mask = F.dropout_forward(x, p, np.random.default_rng(0))
    assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}
    np.testing.assert_array_equal(y, x * mask)
    keep = np.mean(mask > 0)
    assert abs(keep - (1 - p)) < 4 * np.sqrt(p * (1 - p) / x.size)  # 4 sigma
    assert abs(y.mean() - 1.0) < 0.01  # inverted scaling keeps the mean


def test_dropout_p0_is_identity_without_drawing():
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    x = np.arange(6.0).reshape(2, 3)
    y, mask = F.dropout_forward(x, 0.0, rng)
    assert rng.bit_generator.state == before
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(F.dropout_backward(x, mask), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_invalid_p(p):
    with pytest.raises(ConfigError):
        F.dropout_forward(np.ones(3), p, np.random.default_rng(0))


# --------------------------------------------------------------------------- clipping


def test_clip_grad_norm_above_and_below():
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 2, 2))]
    norm_ref = np.linalg.norm(np.concatenate([g.ravel() for g in grads]))
    # above: scaled to max_norm (up to the 1e-6 guard: relative 1e-6 / norm)
    clipped, norm = F.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(norm_ref, rel=1e-12)
    assert norm > 1.0
    after = np.linalg.norm(np.concatenate([g.ravel() for g in clipped]))
    assert after == pytest.approx(1.0, rel=1e-6)
    for g, c in zip(grads, clipped):  # direction kept
        np.testing.assert_allclose(c, g * (1.0 / (norm_ref + 1e-6)), rtol=1e-12)
    # below: unchanged
    same, norm2 = F.clip_grad_norm(grads, 10 * norm_ref)
    assert norm2 == pytest.approx(norm_ref, rel=1e-12)
    for g, c in zip(grads, same):
        np.testing.assert_array_equal(c, g)


# --------------------------------------------------------------------------- LSTM


def _lstm_dims(rng):
    B, n_in, n = (int(v) for v in rng.integers(1, 5, size=3))
    return B, n_in, n


def _lstm_inputs(rng, B, n_in, n):
    x = rng.standard_normal((B, n_in))
    h = rng.standard_normal((B, n)) * 0.5
    c = rng.standard_normal((B, n))
    w = rng.standard_normal((4 * n, n_in + n + 1)) * 0.7
    return x, h, c, w


@seeds()
def test_lstm_cell_forward_matches_per_gate_formula(seed):
    rng = np.random.default_rng(seed)
    B, n_in, n = _lstm_dims(rng)
    x, h, c, w = _lstm_inputs(rng, B, n_in, n)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    Wx, Wh, bias = w[:, :n_in], w[:, n_in : n_in + n], w[:, -1]
    rows = [slice(k * n, (k + 1) * n) for k in range(4)]
    gates = [x @ Wx[r].T + h @ Wh[r].T + bias[r] for r in rows]
    i, f, g, o = sig(gates[0]), sig(gates[1]), np.tanh(gates[2]), sig(gates[3])
    c_ref = f * c + i * g
    h_ref = o * np.tanh(c_ref)
    h1, c1, _ = F.lstm_cell_forward(x, h, c, w)
    np.testing.assert_allclose(c1, c_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1, h_ref, rtol=1e-12, atol=1e-14)


@seeds()
def test_lstm_cell_backward(seed):
    rng = np.random.default_rng(seed)
    B, n_in, n = _lstm_dims(rng)
    x, h, c, w = _lstm_inputs(rng, B, n_in, n)
    rh, rc = rng.standard_normal((B, n)), rng.standard_normal((B, n))
    dz = np.zeros((B, 4 * n))  # additive offset at the gate pre-activations, to check grad_z

    def loss():
        h1, c1, _ = F.lstm_cell_forward(x, h, c, w, matvec=lambda v: v @ w.T + dz)
        return np.sum(rh * h1) + np.sum(rc * c1)

    _, _, cache = F.lstm_cell_forward(x, h, c, w)
    gx, gh, gc, gw, gz = F.lstm_cell_backward(rh, rc, cache)
    assert gz.shape == (B, 4 * n) and gw.shape == w.shape
    assert_grad(gx, loss, x)
    assert_grad(gh, loss, h)
    assert_grad(gc, loss, c)
    assert_grad(gw, loss, w)
    assert_grad(gz, loss, dz)
    # grad_w is the outer product of grad_z with the tile input [x, h, 1]
    np.testing.assert_allclose(gw, gz.T @ np.hstack([x, h, np.ones((B, 1))]), rtol=1e-12)


def test_lstm_cell_backward_grad_c_none_equals_zero():
    rng = np.random.default_rng(4)
    x, h, c, w = _lstm_inputs(rng, 2, 3, 4)
    _, _, cache = F.lstm_cell_forward(x, h, c, w)
    rh = rng.standard_normal((2, 4))
    a = F.lstm_cell_backward(rh, None, cache)
    b = F.lstm_cell_backward(rh, np.zeros((2, 4)), cache)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@seeds()
def test_lstm_sequence_backward_through_time(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(4, 7))
    B, n_in, n = _lstm_dims(rng)
    xs = rng.standard_normal((T, B, n_in))
    h0 = rng.standard_normal((B, n)) * 0.5
    c0 = rng.standard_normal((B, n))
    w = rng.standard_normal((4 * n, n_in + n + 1)) * 0.7
    rs = rng.standard_normal((T, B, n))
    rhT, rcT = rng.standard_normal((B, n)), rng.standard_normal((B, n))

    def loss():
        hs, (hT, cT), _ = F.lstm_forward(xs, h0, c0, w)
        return np.sum(rs * hs) + np.sum(rhT * hT) + np.sum(rcT * cT)

    hs, (hT, cT), caches = F.lstm_forward(xs, h0, c0, w)
    assert hs.shape == (T, B, n) and len(caches) == T
    np.testing.assert_array_equal(hs[-1], hT)
    gxs, gh0, gc0, gw = F.lstm_backward(rs, caches, rhT, rcT)
    assert_grad(gxs, loss, xs)
    assert_grad(gh0, loss, h0)
    assert_grad(gc0, loss, c0)
    assert_grad(gw, loss, w)


def test_lstm_sequence_forward_matches_cell_loop_and_optional_grads():
    rng = np.random.default_rng(6)
    T, B, n_in, n = 4, 2, 3, 5
    xs = rng.standard_normal((T, B, n_in))
    h0, c0 = np.zeros((B, n)), np.zeros((B, n))
    w = rng.standard_normal((4 * n, n_in + n + 1))
    hs, (hT, cT), caches = F.lstm_forward(xs, h0, c0, w)
    h, c = h0, c0
    for t in range(T):
        h, c, _ = F.lstm_cell_forward(xs[t], h, c, w)
        np.testing.assert_array_equal(hs[t], h)
    np.testing.assert_array_equal(cT, c)
    # only a loss on hT: grad_hs=None equals explicit zeros
    rhT = rng.standard_normal((B, n))
    a = F.lstm_backward(None, caches, grad_hT=rhT)
    b = F.lstm_backward(np.zeros((T, B, n)), caches, rhT, np.zeros((B, n)))
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-300)
    assert np.linalg.norm(a[3]) > 0


def test_lstm_mvm_seam_is_used():
    rng = np.random.default_rng(12)
    T, B, n_in, n = 4, 2, 3, 2
    xs = rng.standard_normal((T, B, n_in))
    h0, c0 = rng.standard_normal((B, n)), rng.standard_normal((B, n))
    w = rng.standard_normal((4 * n, n_in + n + 1))
    r = rng.standard_normal((T, B, n))
    # seam with w=None behaves like weights 0.5 w when the callables implement 0.5 w
    hs, _, caches = F.lstm_forward(xs, h0, c0, None, matvec=lambda v: v @ (0.5 * w).T)
    hs_ref, _, caches_ref = F.lstm_forward(xs, h0, c0, 0.5 * w)
    np.testing.assert_allclose(hs, hs_ref, rtol=1e-12)
    got = F.lstm_backward(r, caches, rmatvec=lambda g: g @ (0.5 * w))
    ref = F.lstm_backward(r, caches_ref)
    for u, v in zip(got, ref):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
    # and differs from the unscaled weights (the seam really is on the path)
    assert not np.allclose(hs, F.lstm_forward(xs, h0, c0, w)[0])


# ------------------------------------------------------------------ float32 in, float32 out


def _all_float32_outputs():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = {}
    x = f32(3, 4)
    y = F.sigmoid(x)
    out["sigmoid"] = [y, F.sigmoid_backward(y, x)]
    y = F.tanh(x)
    out["tanh"] = [y, F.tanh_backward(y, x)]
    out["relu"] = [F.relu(x), F.relu_backward(x, x)]
    logp = F.log_softmax(x)
    t = np.array([0, 3, 1])
    out["log_softmax"] = [logp, F.log_softmax_backward(logp, x)]
    out["nll_loss"] = list(F.nll_loss(logp, t))
    out["cross_entropy"] = list(F.cross_entropy(x, t))
    w, b = f32(5, 4), f32(5)
    out["linear"] = [F.linear_forward(x, w, b), *F.linear_backward(x, w, f32(3, 5))]
    xi, wc, bc = f32(2, 2, 6, 6), f32(3, 2, 3, 3), f32(3)
    yc = F.conv2d_forward(xi, wc, bc, 2, 1)
    cols = F.im2col(xi, 3, 3, 2, 1)
    out["conv"] = [yc, cols, F.col2im(cols, xi.shape, 3, 3, 2, 1)]
    out["conv_backward"] = list(F.conv2d_backward(xi, wc, yc, 2, 1))
    yp, cache = F.maxpool_forward(xi, 2)
    out["maxpool"] = [yp, F.maxpool_backward(yp, cache, xi.shape)]
    yd, mask = F.dropout_forward(x, 0.5, rng)
    out["dropout"] = [yd, mask, F.dropout_backward(x, mask)]
    out["clip"] = F.clip_grad_norm([x, w], 0.1)[0]
    xs, h0, c0, wl = f32(4, 2, 3), f32(2, 5), f32(2, 5), f32(20, 9)
    hs, (hT, cT), caches = F.lstm_forward(xs, h0, c0, wl)
    out["lstm_cell"] = list(F.lstm_cell_forward(xs[0], h0, c0, wl)[:2])
    out["lstm_cell_backward"] = list(F.lstm_cell_backward(h0, c0, caches[0]))
    out["lstm"] = [hs, hT, cT, *F.lstm_backward(hs, caches, hT, cT)]
    return out


@pytest.mark.parametrize("name,arrays", list(_all_float32_outputs().items()))
def test_float32_inputs_give_float32_outputs(name, arrays):
    for k, a in enumerate(arrays):
        assert a.dtype == np.float32, f"{name} output {k}: {a.dtype}"
