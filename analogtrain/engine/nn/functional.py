"""Pure forward/backward math of the network layers (NumPy only, nothing stateful).

Conventions
-----------
* Batch first: ``x`` is ``(B, in)`` for dense layers, ``(B, C, H, W)`` for images,
  ``(T, B, in)`` for sequences. Weight matrices are ``(out, in)`` like a tile:
  forward ``y = x W^T`` (per sample ``W x``), backward ``d W`` (per sample ``W^T d``),
  weight gradient ``d^T x`` (the outer product summed over the batch).
* dtype follows the inputs (float32 in -> float32 out, float64 in -> float64 out).
* Every backward returns the gradient of a scalar loss ``L`` w.r.t. the inputs of its
  forward, given ``grad_y = dL/dy``.

The MVM seam
------------
Where a layer multiplies by its weight matrix, the product is a separate, replaceable
step, so the analog layers can route it through a crossbar tile:

* ``matvec(v) -> v @ w.T``  (forward MVM; ``v`` is ``(N, in)``, result ``(N, out)``),
* ``rmatvec(g) -> g @ w``   (backward MVM; ``g`` is ``(N, out)``, result ``(N, in)``),
* the weight gradient ``g^T v`` is returned separately (the analog layer replaces it by a
  pulsed outer-product update with the same ``v`` and ``g``).

All three default to the exact digital product with ``w``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from analogtrain.errors import ConfigError

__all__ = [
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "relu", "relu_backward",
    "log_softmax", "log_softmax_backward", "nll_loss", "cross_entropy",
    "linear_forward", "linear_backward",
    "conv_output_size", "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "MaxPoolCache", "maxpool_forward", "maxpool_backward",
    "dropout_forward", "dropout_backward",
    "clip_grad_norm",
    "LSTMCellCache", "lstm_cell_forward", "lstm_cell_backward", "lstm_forward", "lstm_backward",
]

MatVec = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- activations


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``y = 1 / (1 + exp(-x))``, any shape.

    Computed as ``exp(-log(1 + exp(-x)))`` (``logaddexp``): no overflow for large ``|x|``
    and full relative precision of tiny outputs.
    """
    return np.exp(-np.logaddexp(0, -x))


def sigmoid_backward(y: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """``dL/dx = grad_y * y (1 - y)`` given the forward *output* ``y = sigmoid(x)``."""
    return grad_y * y * (1 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``, any shape."""
    return np.tanh(x)


def tanh_backward(y: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """``dL/dx = grad_y * (1 - y^2)`` given the forward *output* ``y = tanh(x)``."""
    return grad_y * (1 - y * y)


def relu(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)``, any shape."""
    return np.maximum(x, 0)


def relu_backward(x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """``dL/dx = grad_y * [x > 0]`` given the forward *input* ``x`` (0 at ``x == 0``)."""
    return np.where(x > 0, grad_y, 0)


# --------------------------------------------------------------------------- losses


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis: ``z (..., K) -> z - logsumexp(z)`` ``(..., K)``.

    Stable: ``m = max_k z_k``, ``logp = (z - m) - log(sum_k exp(z_k - m))``; the largest
    exponent is ``exp(0) = 1``, so no overflow for any finite ``z``.
    """
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def log_softmax_backward(logp: np.ndarray, grad_logp: np.ndarray) -> np.ndarray:
    """Backward of :func:`log_softmax` given its *output* ``logp`` (..., K)::

        grad_z = grad_logp - softmax(z) * sum_k grad_logp[..., k]      softmax(z) = exp(logp)
    """
    return grad_logp - np.exp(logp) * grad_logp.sum(axis=-1, keepdims=True)


def nll_loss(logp: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean negative log-likelihood and its gradient.

    ``logp`` (..., K) log-probabilities, ``targets`` (...) int class indices; with
    ``N = targets.size`` samples::

        L = -(1/N) sum_n logp[n, t_n]          grad_logp[n, k] = -(1/N) [k == t_n]

    Returns ``(L, grad_logp)`` with ``L`` a 0-d scalar of ``logp.dtype`` and
    ``grad_logp`` shaped like ``logp``.
    """
    t = np.asarray(targets)[..., None]
    n = t.size
    loss = -np.take_along_axis(logp, t, axis=-1).sum(dtype=logp.dtype) / n
    grad = np.zeros_like(logp)
    np.put_along_axis(grad, t, -1.0 / n, axis=-1)
    return logp.dtype.type(loss), grad


def cross_entropy(z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax cross-entropy on logits, mean over samples: ``nll_loss(log_softmax(z), t)``.

    ``z`` (..., K) logits, ``targets`` (...) int; ``N = targets.size``::

        L = -(1/N) sum_n log softmax(z_n)[t_n]     grad_z = (softmax(z) - onehot(t)) / N

    Returns ``(L, grad_z)``, ``grad_z`` shaped like ``z``.
    """
    logp = log_softmax(z)
    loss, grad_logp = nll_loss(logp, targets)
    # d/dz of logp_t: onehot - softmax; chained with grad_logp = -onehot/N.
    return loss, np.exp(logp) / np.asarray(targets).size + grad_logp


# --------------------------------------------------------------------------- linear


def _matvec(w: np.ndarray, matvec: MatVec | None) -> MatVec:
    return matvec if matvec is not None else (lambda v: v @ w.T)


def _rmatvec(w: np.ndarray, rmatvec: MatVec | None) -> MatVec:
    return rmatvec if rmatvec is not None else (lambda g: g @ w)


def linear_forward(
    x: np.ndarray,
    w: np.ndarray | None,
    b: np.ndarray | None = None,
    *,
    matvec: MatVec | None = None,
) -> np.ndarray:
    """Fully connected layer ``y = x W^T + b``.

    ``x`` (..., in) (all leading axes are batch), ``w`` (out, in), ``b`` (out,) or None
    -> ``y`` (..., out). ``matvec(v) -> v @ w.T`` replaces the product (``v`` is
    ``(N, in)``); ``w`` may then be None.
    """
    lead = x.shape[:-1]
    y = _matvec(w, matvec)(x.reshape(-1, x.shape[-1]))  # forward MVM
    if b is not None:
        y = y + b
    return y.reshape(*lead, y.shape[-1])


def linear_backward(
    x: np.ndarray, w: np.ndarray | None, grad_y: np.ndarray, *, rmatvec: MatVec | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`linear_forward`.

    ``x`` (..., in), ``w`` (out, in), ``grad_y`` (..., out) -> ``(grad_x, grad_w, grad_b)``::

        grad_x = grad_y W          (..., in)    backward MVM (``rmatvec``)
        grad_w = grad_y^T x        (out, in)    outer products summed over the batch
        grad_b = sum_n grad_y      (out,)

    ``rmatvec(g) -> g @ w`` replaces the backward MVM; ``w`` may then be None.
    """
    x2 = x.reshape(-1, x.shape[-1])
    g2 = grad_y.reshape(-1, grad_y.shape[-1])
    grad_x = _rmatvec(w, rmatvec)(g2).reshape(x.shape)  # backward MVM
    grad_w = g2.T @ x2  # weight gradient (analog: pulsed update with x2, g2)
    grad_b = g2.sum(axis=0)
    return grad_x, grad_w, grad_b


# --------------------------------------------------------------------------- convolution


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution / pooling window: ``(n + 2 padding - k) // stride + 1``."""
    return (n + 2 * padding - k) // stride + 1


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Unfold image patches into rows.

    ``x`` (B, C, H, W) -> ``cols`` (B*Ho*Wo, C*kh*kw), with
    ``Ho = (H + 2p - kh)//s + 1`` (same for ``Wo``), rows ordered (b, ho, wo) and columns
    (c, i, j) -- the order of ``w.reshape(F, C*kh*kw)``::

        cols[(b, ho, wo), (c, i, j)] = xpad[b, c, s ho + i, s wo + j]

    ``xpad`` is ``x`` zero-padded by ``p`` on both sides of H and W.
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    # (B, C, Ho, Wo, kh, kw) view, no copy until the reshape
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    b, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, c * kh * kw)


def col2im(
    cols: np.ndarray, x_shape: Sequence[int], kh: int, kw: int, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Adjoint of :func:`im2col`: fold rows back into an image, summing overlaps.

    ``cols`` (B*Ho*Wo, C*kh*kw) -> ``x`` (B, C, H, W) = ``x_shape``, with
    ``<col2im(a), b> == <a, im2col(b)>`` for all ``a``, ``b``. Contributions that fall
    into the padding are dropped. One vectorised add per kernel offset (kh*kw in all).
    """
    B, C, H, W = x_shape
    ho = conv_output_size(H, kh, stride, padding)
    wo = conv_output_size(W, kw, stride, padding)
    c6 = cols.reshape(B, ho, wo, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (B,C,kh,kw,Ho,Wo)
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += c6[:, :, i, j]
    return xp[:, :, padding : padding + H, padding : padding + W]


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    padding: int = 0,
    *,
    matvec: MatVec | None = None,
) -> np.ndarray:
    """2-D convolution (cross-correlation, as in PyTorch) as one matrix product.

    ``x`` (B, C, H, W), ``w`` (F, C, kh, kw), ``b`` (F,) or None -> ``y`` (B, F, Ho, Wo)::

        y[b, f, ho, wo] = sum_{c,i,j} w[f, c, i, j] xpad[b, c, s ho + i, s wo + j] + b[f]
                        = (im2col(x) @ w.reshape(F, -1).T)[(b, ho, wo), f] + b[f]

    ``matvec(v) -> v @ w.reshape(F, -1).T`` replaces the product (``v`` is
    ``(B*Ho*Wo, C*kh*kw)``); ``w`` is still needed for its shape.
    """
    B, _, H, W = x.shape
    F, _, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride, padding)
    w2 = w.reshape(F, -1)
    y = _matvec(w2, matvec)(cols)  # forward MVM, (B*Ho*Wo, F)
    if b is not None:
        y = y + b
    ho, wo = conv_output_size(H, kh, stride, padding), conv_output_size(W, kw, stride, padding)
    return y.reshape(B, ho, wo, F).transpose(0, 3, 1, 2)


def conv2d_backward(
    x: np.ndarray,
    w: np.ndarray,
    grad_y: np.ndarray,
    stride: int = 1,
    padding: int = 0,
    *,
    rmatvec: MatVec | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`conv2d_forward`.

    ``x`` (B, C, H, W), ``w`` (F, C, kh, kw), ``grad_y`` (B, F, Ho, Wo) ->
    ``(grad_x (B, C, H, W), grad_w (F, C, kh, kw), grad_b (F,))``. With
    ``G = grad_y`` as a (B*Ho*Wo, F) matrix and ``X = im2col(x)``::

        grad_x = col2im(G W2)      backward MVM (``rmatvec``), W2 = w.reshape(F, -1)
        grad_w = G^T X             reshaped to (F, C, kh, kw)
        grad_b = sum over (b, ho, wo) of G

    ``rmatvec(g) -> g @ w.reshape(F, -1)`` replaces the backward MVM.
    """
    F, _, kh, kw = w.shape
    g2 = grad_y.transpose(0, 2, 3, 1).reshape(-1, F)  # (B*Ho*Wo, F)
    cols = im2col(x, kh, kw, stride, padding)
    w2 = w.reshape(F, -1)
    grad_cols = _rmatvec(w2, rmatvec)(g2)  # backward MVM, (B*Ho*Wo, C*kh*kw)
    grad_x = col2im(grad_cols, x.shape, kh, kw, stride, padding)
    grad_w = (g2.T @ cols).reshape(w.shape)  # weight gradient
    grad_b = g2.sum(axis=0)
    return grad_x, grad_w, grad_b


# --------------------------------------------------------------------------- max-pooling


class MaxPoolCache(NamedTuple):
    """What :func:`maxpool_backward` needs: the window index of each max and the kernel."""

    argmax: np.ndarray  # (B, C, Ho, Wo) int, flat index i*k + j of the max inside its window
    k: int


def maxpool_forward(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, MaxPoolCache]:
    """Max-pooling with a k x k window and stride k.

    ``x`` (B, C, H, W) -> ``y`` (B, C, H//k, W//k) (trailing rows/columns that do not
    fill a window are dropped, as PyTorch's floor mode)::

        y[b, c, p, q] = max_{i,j < k} x[b, c, k p + i, k q + j]

    Ties: the first maximum in row-major window order is the one recorded.
    """
    B, C, H, W = x.shape
    ho, wo = H // k, W // k
    win = (
        x[:, :, : ho * k, : wo * k]
        .reshape(B, C, ho, k, wo, k)
        .transpose(0, 1, 2, 4, 3, 5)
        .reshape(B, C, ho, wo, k * k)
    )
    idx = win.argmax(axis=-1)
    y = np.take_along_axis(win, idx[..., None], axis=-1)[..., 0]
    return y, MaxPoolCache(idx, k)


def maxpool_backward(grad_y: np.ndarray, cache: MaxPoolCache, x_shape: Sequence[int]) -> np.ndarray:
    """Backward of :func:`maxpool_forward`: route each ``grad_y`` to its window's max.

    ``grad_y`` (B, C, Ho, Wo) -> ``grad_x`` (B, C, H, W) = ``x_shape``; exactly one element
    per window receives the gradient, all others (and dropped border rows) get 0.
    """
    B, C, H, W = x_shape
    k = cache.k
    ho, wo = grad_y.shape[2:]
    g = np.zeros((B, C, ho, wo, k * k), dtype=grad_y.dtype)
    np.put_along_axis(g, cache.argmax[..., None], grad_y[..., None], axis=-1)
    grad_x = np.zeros((B, C, H, W), dtype=grad_y.dtype)
    grad_x[:, :, : ho * k, : wo * k] = (
        g.reshape(B, C, ho, wo, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, ho * k, wo * k)
    )
    return grad_x


# --------------------------------------------------------------------------- dropout


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout: ``y = x * mask``, ``mask = [u >= p] / (1 - p)``, ``u ~ U[0, 1)``.

    ``x`` any shape -> ``(y, mask)``, both shaped like ``x`` (mask in ``x.dtype``), so
    ``E[y] = x``. ``p == 0``: identity, returns ``(x, None)`` and draws nothing from ``rng``.
    Raises :class:`~analogtrain.errors.ConfigError` unless ``0 <= p < 1``.
    """
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout p: must be in [0, 1) (got {p})")
    if p == 0:
        return x, None
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    u = rng.random(x.shape, dtype=dtype)
    mask = (u >= p).astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return x * mask, mask


def dropout_backward(grad_y: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``grad_x = grad_y * mask`` (``mask`` from :func:`dropout_forward`; None = identity)."""
    return grad_y if mask is None else grad_y * mask


# --------------------------------------------------------------------------- gradient clipping


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    """Scale gradients so their global L2 norm is at most ``max_norm`` (as PyTorch).

    ``norm = sqrt(sum_k ||g_k||^2)`` over all arrays, ``scale = min(1, max_norm / (norm + 1e-6))``;
    returns ``([g_k * scale], norm)`` (new arrays, dtypes kept; ``norm`` before clipping,
    accumulated in float64).
    """
    norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))
    scale = min(1.0, max_norm / (norm + 1e-6))
    return [g * np.asarray(scale, dtype=g.dtype) for g in grads], norm


# --------------------------------------------------------------------------- LSTM


class LSTMCellCache(NamedTuple):
    """Forward quantities one LSTM step keeps for its backward (all (B, ·) arrays)."""

    xh1: np.ndarray  # (B, in + h + 1) tile input [x, h_prev, 1]
    c: np.ndarray  # (B, h) previous cell state
    i: np.ndarray  # (B, h) input gate (sigmoid)
    f: np.ndarray  # (B, h) forget gate (sigmoid)
    g: np.ndarray  # (B, h) cell candidate (tanh)
    o: np.ndarray  # (B, h) output gate (sigmoid)
    tc: np.ndarray  # (B, h) tanh(c_new)
    w: np.ndarray | None  # (4h, in + h + 1) weights, used by the default rmatvec


def lstm_cell_forward(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    w: np.ndarray | None,
    *,
    matvec: MatVec | None = None,
) -> tuple[np.ndarray, np.ndarray, LSTMCellCache]:
    """One LSTM step with all four gates (and the bias) in one weight matrix.

    ``x`` (B, in), ``h``, ``c`` (B, hid), ``w`` (4 hid, in + hid + 1) ->
    ``(h_new (B, hid), c_new (B, hid), cache)``::

        v = [x, h, 1]                      (B, in + hid + 1)   last column: bias input
        z = v W^T                          (B, 4 hid)          forward MVM (``matvec``)
        i, f, g, o = split(z)              gate order i, f, g, o
        i, f, o = sigmoid(.), g = tanh(.)
        c_new = f * c + i * g
        h_new = o * tanh(c_new)

    ``matvec(v) -> v @ w.T`` replaces the product; ``w`` may then be None, but the
    backward then needs ``rmatvec``. (A digital bias can be had through the seam:
    ``matvec = lambda v: tile(v[:, :-1]) + b``, whose gradient is the last column of
    ``grad_w``.)
    """
    n = h.shape[-1]
    xh1 = np.concatenate([x, h, np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)
    z = _matvec(w, matvec)(xh1)  # forward MVM, (B, 4n)
    i = sigmoid(z[:, :n])
    f = sigmoid(z[:, n : 2 * n])
    g = np.tanh(z[:, 2 * n : 3 * n])
    o = sigmoid(z[:, 3 * n :])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    return h_new, c_new, LSTMCellCache(xh1, c, i, f, g, o, tc, w)


def lstm_cell_backward(
    grad_h: np.ndarray,
    grad_c: np.ndarray | None,
    cache: LSTMCellCache,
    *,
    rmatvec: MatVec | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_cell_forward`.

    ``grad_h``, ``grad_c`` (B, hid) = dL/dh_new, dL/dc_new (``grad_c`` None = 0) ->
    ``(grad_x (B, in), grad_h_prev (B, hid), grad_c_prev (B, hid), grad_w (4 hid, in + hid + 1),
    grad_z (B, 4 hid))``::

        dc   = grad_c + grad_h * o * (1 - tanh(c_new)^2)
        dz_i = dc * g * i (1 - i)          dz_f = dc * c * f (1 - f)
        dz_g = dc * i * (1 - g^2)          dz_o = grad_h * tanh(c_new) * o (1 - o)
        grad_z = [dz_i, dz_f, dz_g, dz_o]
        grad_w = grad_z^T v                (v = [x, h, 1]; analog: pulsed update with v, grad_z)
        [grad_x, grad_h_prev, _] = grad_z W   backward MVM (``rmatvec(g) -> g @ w``)
        grad_c_prev = dc * f
    """
    xh1, c, i, f, g, o, tc, w = cache
    n = c.shape[-1]
    dc = grad_h * o * (1 - tc * tc)
    if grad_c is not None:
        dc = dc + grad_c
    grad_z = np.concatenate(
        [
            dc * g * i * (1 - i),
            dc * c * f * (1 - f),
            dc * i * (1 - g * g),
            grad_h * tc * o * (1 - o),
        ],
        axis=1,
    )
    grad_w = grad_z.T @ xh1  # weight gradient
    grad_v = _rmatvec(w, rmatvec)(grad_z)  # backward MVM, (B, in + n + 1)
    n_in = xh1.shape[1] - n - 1
    return grad_v[:, :n_in], grad_v[:, n_in : n_in + n], dc * f, grad_w, grad_z


def lstm_forward(
    xs: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    w: np.ndarray | None,
    *,
    matvec: MatVec | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], list[LSTMCellCache]]:
    """Run :func:`lstm_cell_forward` over a sequence.

    ``xs`` (T, B, in), ``h0``, ``c0`` (B, hid), ``w`` (4 hid, in + hid + 1) ->
    ``(hs (T, B, hid), (hT, cT), caches)`` with ``hs[t]`` the hidden state after step ``t``
    (``hT = hs[-1]``) and one cache per step; ``T >= 1``. ``matvec`` as in the cell.
    """
    h, c = h0, c0
    hs, caches = [], []
    for x in xs:
        h, c, cache = lstm_cell_forward(x, h, c, w, matvec=matvec)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs), (h, c), caches


def lstm_backward(
    grad_hs: np.ndarray | None,
    caches: Sequence[LSTMCellCache],
    grad_hT: np.ndarray | None = None,
    grad_cT: np.ndarray | None = None,
    *,
    rmatvec: MatVec | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`lstm_forward`.

    ``grad_hs`` (T, B, hid) = dL/dhs (None = 0), ``grad_hT``, ``grad_cT`` (B, hid) extra
    gradients on the final state (None = 0) -> ``(grad_xs (T, B, in), grad_h0 (B, hid),
    grad_c0 (B, hid), grad_w (4 hid, in + hid + 1))``. Going back from ``t = T-1``::

        dh = grad_hs[t] + dh_next,  dc = dc_next      (dh_next = grad_hT, dc_next = grad_cT at T-1)
        grad_xs[t], dh_next, dc_next, dW_t, _ = lstm_cell_backward(dh, dc, caches[t])
        grad_w = sum_t dW_t

    ``rmatvec`` as in the cell. (An analog layer that updates per time step calls
    :func:`lstm_cell_backward` itself and uses each step's ``grad_z`` and ``cache.xh1``.)
    """
    dh = np.zeros_like(caches[-1].c) if grad_hT is None else grad_hT
    dc = grad_cT
    grad_w = None
    grad_xs = []
    for t in range(len(caches) - 1, -1, -1):
        g_h = dh if grad_hs is None else dh + grad_hs[t]
        gx, dh, dc, gw, _ = lstm_cell_backward(g_h, dc, caches[t], rmatvec=rmatvec)
        grad_w = gw if grad_w is None else grad_w + gw
        grad_xs.append(gx)
    grad_xs.reverse()
    return np.stack(grad_xs), dh, dc, grad_w
