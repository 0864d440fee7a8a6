"""Pure forward/backward math of the network layers (NumPy only, nothing stateful).

Dense, convolution, pooling, dropout and LSTM math, and the pieces of a vision transformer
(patches, class token, position embedding, LayerNorm, GELU, softmax, multi-head
self-attention, pooling, residual; docs/nn.md §9.5).

Conventions
-----------
* Batch first: ``x`` is ``(B, in)`` for dense layers, ``(B, C, H, W)`` for images,
  ``(T, B, in)`` for LSTM sequences, ``(B, T, D)`` for the tokens of a transformer.
  Weight matrices are ``(out, in)`` like a tile: forward ``y = x W^T`` (per sample
  ``W x``), backward ``d W`` (per sample ``W^T d``), weight gradient ``d^T x`` (the outer
  product summed over the batch).
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
    "check_heads", "check_patch_size", "erf", "erfc", "gelu", "gelu_backward", "softmax", "softmax_backward",
    "LayerNormCache", "layernorm_forward", "layernorm_backward",
    "patchify", "unpatchify", "prepend_class_token", "prepend_class_token_backward",
    "add_position_embedding", "add_position_embedding_backward", "POOLS", "pool_tokens", "pool_tokens_backward",
    "residual_forward", "residual_backward", "split_heads", "merge_heads",
    "AttentionCache", "attention_forward", "attention_backward",
    "SelfAttentionCache", "SelfAttentionGrads", "self_attention_forward", "self_attention_backward",
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


# --------------------------------------------------------------------------- vision transformer
#
# The math of a ViT (docs/nn.md §9.5). Token sequences are (B, T, D): batch, tokens, width.
# Every weight-matrix product (patch embedding, Q/K/V projection, output projection, MLP,
# head) is a plain :func:`linear_forward` with its ``matvec`` seam, so an analog layer can put
# it on a tile; LayerNorm, softmax, GELU, the embeddings and the pooling are digital.


def check_heads(width: int, heads: int) -> int:
    """The head width ``width // heads``; ConfigError naming ``heads`` unless ``heads``
    (an integer >= 1) divides ``width``."""
    if isinstance(heads, bool) or not isinstance(heads, (int, np.integer)) or heads < 1:
        raise ConfigError(f"heads: must be an integer >= 1 (got {heads!r})", field="heads")
    if width % heads:
        raise ConfigError(f"heads: {heads} heads do not divide the width {width} "
                          f"(each head needs width / heads features)", field="heads")
    return width // heads


def check_patch_size(height: int, width: int, patch_size: int) -> tuple[int, int]:
    """``(H // p, W // p)``, the patch grid; ConfigError naming ``patch_size`` unless ``p``
    (an integer >= 1) divides both the image height and width."""
    p = patch_size
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ConfigError(f"patch_size: must be an integer >= 1 (got {p!r})", field="patch_size")
    if height % p or width % p:
        raise ConfigError(f"patch_size: {p} does not divide the image size {height}x{width} "
                          f"(height and width must be multiples of the patch size)", field="patch_size")
    return height // p, width // p


# ---- erf and GELU


# W. J. Cody's rational Chebyshev approximations of erf / erfc (Math. Comp. 23, 1969; the
# coefficients of netlib SPECFUN's CALERF), relative error below ~1e-16 in double precision.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_RSQRT_PI = 0.56418958354775628695


def _ratio(num: Sequence[float], den: Sequence[float], t: np.ndarray) -> np.ndarray:
    """``(num[-1] t^n + num[0] t^(n-1) + ... + num[n-1]) / (t^n + den[0] t^(n-1) + ... + den[n-1])``
    with ``n = len(den)`` (Cody's Horner scheme; ``num`` has one coefficient more than ``den``)."""
    xnum, xden = num[-1] * t, t
    for a, b in zip(num[:-2], den[:-1]):
        xnum, xden = (xnum + a) * t, (xden + b) * t
    return (xnum + num[-2]) / (xden + den[-1])


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """``exp(-y^2)`` without the rounding error of ``y*y`` (which ``exp`` would magnify by
    ``y^2``): ``y = a + r`` with ``a = trunc(16 y) / 16`` exact, ``y^2 = a^2 + (y - a)(y + a)``."""
    a = np.trunc(y * 16.0) / 16.0
    return np.exp(-a * a) * np.exp(-(y - a) * (y + a))


def _erfc_abs(y: np.ndarray) -> np.ndarray:
    """``erfc(y)`` for ``y >= 0.46875`` (any shape): ``exp(-y^2) R(y)`` up to 4, then the
    asymptotic form ``exp(-y^2) / y * (1/sqrt(pi) - R(1/y^2) / y^2)``."""
    out = np.empty_like(y)
    mid = y <= 4.0
    ym = y[mid]
    out[mid] = _exp_minus_square(ym) * _ratio(_ERF_C, _ERF_D, ym)
    yl = y[~mid]
    yt = np.minimum(yl, 27.0)                       # erfc(27) < 1e-318: 0 in double precision
    z = 1.0 / (yt * yt)
    with np.errstate(under="ignore"):               # exp(-y^2) of float32 beyond y ~ 9.3
        tail = _exp_minus_square(yt) / yt * (_RSQRT_PI - z * _ratio(_ERF_P, _ERF_Q, z))
    out[~mid] = np.where(yl >= 27.0, 0.0, tail)     # NaN stays NaN
    return out


def _floats(x) -> np.ndarray:
    """``x`` as an array of its float dtype (float64 for integers, bools and Python numbers)."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt``, elementwise, any shape.

    NumPy has no vectorised erf; this is Cody's rational approximation on three ranges:
    ``|x| <= 0.46875``: ``x P(x^2)/Q(x^2)``; else ``sign(x) (1 - erfc(|x|))`` with erfc from
    :func:`erfc`. Relative error ~1e-16 in float64 (tests compare with ``math.erf``);
    float32 in gives float32 out.
    """
    x = _floats(x)
    y = np.abs(x)
    out = np.empty_like(x)
    small = y <= 0.46875
    xs = x[small]
    with np.errstate(under="ignore"):               # x^2 of a subnormal x
        out[small] = xs * _ratio(_ERF_A, _ERF_B, xs * xs)
    xl = x[~small]
    out[~small] = np.sign(xl) * (1.0 - _erfc_abs(np.abs(xl)))
    return out


def erfc(x: np.ndarray) -> np.ndarray:
    """``erfc(x) = 1 - erf(x)``, elementwise, with full relative precision in the upper tail
    (no cancellation: ``erfc(|x|)`` is approximated directly for ``|x| > 0.46875``;
    ``erfc(-y) = 2 - erfc(y)``)."""
    x = _floats(x)
    y = np.abs(x)
    out = np.empty_like(x)
    small = y <= 0.46875
    xs = x[small]
    with np.errstate(under="ignore"):
        out[small] = 1.0 - xs * _ratio(_ERF_A, _ERF_B, xs * xs)
    xl = x[~small]
    tail = _erfc_abs(np.abs(xl))
    out[~small] = np.where(xl > 0, tail, 2.0 - tail)
    return out


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, the exact (erf) form, not the tanh approximation; any shape::

        y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)) = x/2 erfc(-x / sqrt 2)

    ``Phi`` is the standard normal CDF, computed as ``erfc(-x/sqrt 2) / 2`` so that it keeps
    its relative precision for very negative ``x`` (where ``y`` is tiny).
    """
    return x * (0.5 * erfc(x * -(2.0 ** -0.5)))


def gelu_backward(x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """Backward of :func:`gelu` given the forward *input* ``x``::

        dy/dx = Phi(x) + x phi(x),      phi(x) = exp(-x^2/2) / sqrt(2 pi)
        grad_x = grad_y * dy/dx
    """
    cdf = 0.5 * erfc(x * -(2.0 ** -0.5))
    with np.errstate(over="ignore", under="ignore"):          # exp(-inf) = 0 for huge |x|
        pdf = np.exp(-0.5 * x * x) * (2.0 * np.pi) ** -0.5
    return grad_y * (cdf + x * pdf)


# ---- softmax


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, any shape: ``p = exp(z - m) / sum exp(z - m)``, ``m = max z``
    along ``axis`` (the largest exponent is ``exp(0)``: no overflow for finite ``z``)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(p: np.ndarray, grad_p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Backward of :func:`softmax` given its *output* ``p``::

        grad_z = p * (grad_p - sum_axis(grad_p * p))      (the Jacobian diag(p) - p p^T)
    """
    return p * (grad_p - np.sum(grad_p * p, axis=axis, keepdims=True))


# ---- LayerNorm


class LayerNormCache(NamedTuple):
    """What :func:`layernorm_backward` needs."""

    xhat: np.ndarray  # (..., D) the normalised input (x - mean) / sqrt(var + eps)
    rstd: np.ndarray  # (..., 1) 1 / sqrt(var + eps)
    gamma: np.ndarray  # (D,) the scale


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, LayerNormCache]:
    """Layer normalisation over the last axis with an affine map (as PyTorch's LayerNorm).

    ``x`` (..., D), ``gamma``, ``beta`` (D,) -> ``(y (..., D), cache)``::

        mu = mean_d x,   var = mean_d (x - mu)^2          (biased variance)
        xhat = (x - mu) / sqrt(var + eps)
        y = gamma * xhat + beta
    """
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
    xhat = xc * rstd
    return gamma * xhat + beta, LayerNormCache(xhat, rstd, gamma)


def layernorm_backward(
    grad_y: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`layernorm_forward`.

    ``grad_y`` (..., D) -> ``(grad_x (..., D), grad_gamma (D,), grad_beta (D,))``; with
    ``g = grad_y * gamma`` and means over the last axis::

        grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat))
        grad_gamma = sum over all leading axes of grad_y * xhat
        grad_beta = sum over all leading axes of grad_y
    """
    xhat, rstd, gamma = cache
    g = grad_y * gamma
    grad_x = rstd * (g - g.mean(axis=-1, keepdims=True)
                     - xhat * np.mean(g * xhat, axis=-1, keepdims=True))
    lead = tuple(range(grad_y.ndim - 1))
    return grad_x, np.sum(grad_y * xhat, axis=lead), np.sum(grad_y, axis=lead)


# ---- patches, class token, position embedding, pooling, residual


def patchify(x: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut images into non-overlapping ``p x p`` patches, one row per patch.

    ``x`` (B, C, H, W) -> ``patches`` (B, N, C p p), ``N = (H/p)(W/p)``; patches in
    row-major order of the patch grid, features in order ``(c, i, j)``::

        patches[b, gh * (W/p) + gw, (c, i, j)] = x[b, c, gh p + i, gw p + j]

    the rows of ``im2col(x, p, p, stride=p)``, so a linear map of the patches with an
    ``(D, C p p)`` matrix is a ``p x p`` convolution with stride ``p`` (the patch
    embedding). ConfigError naming ``patch_size`` unless ``p`` divides ``H`` and ``W``.
    """
    B, C, H, W = x.shape
    gh, gw = check_patch_size(H, W, patch_size)
    p = patch_size
    return (x.reshape(B, C, gh, p, gw, p)
            .transpose(0, 2, 4, 1, 3, 5)
            .reshape(B, gh * gw, C * p * p))


def unpatchify(patches: np.ndarray, image_shape: Sequence[int], patch_size: int) -> np.ndarray:
    """The inverse of :func:`patchify` (a permutation, so also its adjoint and backward).

    ``patches`` (B, N, C p p) -> images (B, C, H, W) with ``image_shape = (C, H, W)``.
    """
    C, H, W = image_shape
    gh, gw = check_patch_size(H, W, patch_size)
    p = patch_size
    B = patches.shape[0]
    return (patches.reshape(B, gh, gw, C, p, p)
            .transpose(0, 3, 1, 4, 2, 5)
            .reshape(B, C, H, W))


def prepend_class_token(x: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """A learned class token in front of every sequence: ``x`` (B, N, D), ``cls`` (D,) ->
    ``y`` (B, N + 1, D) with ``y[:, 0] = cls`` and ``y[:, 1:] = x``."""
    B, _, D = x.shape
    return np.concatenate([np.broadcast_to(cls.astype(x.dtype, copy=False), (B, 1, D)), x], axis=1)


def prepend_class_token_backward(grad_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward of :func:`prepend_class_token`: ``grad_y`` (B, N + 1, D) ->
    ``(grad_x = grad_y[:, 1:]  (B, N, D), grad_cls = sum_b grad_y[b, 0]  (D,))``."""
    return grad_y[:, 1:], grad_y[:, 0].sum(axis=0)


def add_position_embedding(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Learned position embedding: ``y = x + pos``, ``x`` (B, T, D), ``pos`` (T, D) (one row
    per token position, shared by the batch). ConfigError if the shapes disagree."""
    if pos.shape != x.shape[1:]:
        raise ConfigError(f"position embedding: shape {pos.shape} does not match the tokens "
                          f"{x.shape[1:]} (tokens, width)")
    return x + pos


def add_position_embedding_backward(grad_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward of :func:`add_position_embedding`: ``(grad_x = grad_y, grad_pos = sum_b grad_y[b])``."""
    return grad_y, grad_y.sum(axis=0)


POOLS = ("class", "mean")


def pool_tokens(x: np.ndarray, pool: str = "class") -> np.ndarray:
    """One vector per sequence for the head: ``x`` (B, T, D) -> (B, D).

    ``pool = "class"``: the class token, ``x[:, 0]``; ``"mean"``: ``mean_t x[:, t]``.
    ConfigError naming ``pool`` for any other value.
    """
    if pool == "class":
        return x[:, 0]
    if pool == "mean":
        return x.mean(axis=1)
    raise ConfigError(f"pool: must be one of {', '.join(POOLS)} (got {pool!r})", field="pool")


def pool_tokens_backward(grad_y: np.ndarray, n_tokens: int, pool: str = "class") -> np.ndarray:
    """Backward of :func:`pool_tokens`: ``grad_y`` (B, D) -> ``grad_x`` (B, T, D), ``T = n_tokens``.

    ``"class"``: ``grad_y`` at token 0, zeros elsewhere; ``"mean"``: ``grad_y / T`` at every token.
    """
    B, D = grad_y.shape
    if pool == "class":
        g = np.zeros((B, n_tokens, D), dtype=grad_y.dtype)
        g[:, 0] = grad_y
        return g
    if pool == "mean":
        return np.broadcast_to((grad_y / grad_y.dtype.type(n_tokens))[:, None], (B, n_tokens, D)).copy()
    raise ConfigError(f"pool: must be one of {', '.join(POOLS)} (got {pool!r})", field="pool")


def residual_forward(x: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Residual connection ``y = x + f(x)`` (``fx`` = the branch output, same shape)."""
    return x + fx


def residual_backward(grad_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward of :func:`residual_forward`: the gradient reaches both summands unchanged,
    ``(grad_x, grad_fx) = (grad_y, grad_y)``; the caller adds the branch's ``grad_x``."""
    return grad_y, grad_y


# ---- multi-head self-attention


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``x`` (B, T, D) -> (B, H, T, D/H): head ``h`` takes features ``h*D/H .. (h+1)*D/H - 1``.
    ConfigError naming ``heads`` unless ``H`` divides ``D``."""
    B, T, D = x.shape
    dh = check_heads(D, heads)
    return x.reshape(B, T, heads, dh).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`split_heads`: (B, H, T, dh) -> (B, T, H dh)."""
    B, H, T, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * dh)


class AttentionCache(NamedTuple):
    """What :func:`attention_backward` needs (heads split)."""

    q: np.ndarray  # (B, H, T, dh)
    k: np.ndarray  # (B, H, T, dh)
    v: np.ndarray  # (B, H, T, dh)
    p: np.ndarray  # (B, H, T, T) attention probabilities, rows sum to 1
    scale: float  # 1 / sqrt(dh)


def attention_forward(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int
) -> tuple[np.ndarray, AttentionCache]:
    """Multi-head scaled dot-product attention on given queries, keys and values (no mask).

    ``q``, ``k``, ``v`` (B, T, D), ``heads`` = H dividing D -> ``(o (B, T, D), cache)``.
    Per head (``Qh = split_heads(q)[:, h]`` etc., ``dh = D / H``)::

        S = Qh Kh^T / sqrt(dh)               (B, T, T)   scores: query t against key s
        P = softmax(S) along the keys         (B, T, T)
        Oh = P Vh                             (B, T, dh)
        o = merge_heads([O_1 .. O_H])         (B, T, D)

    Digital throughout: no weight matrix here (the projections are linear layers).
    """
    qh, kh, vh = split_heads(q, heads), split_heads(k, heads), split_heads(v, heads)
    scale = q.dtype.type(1.0 / np.sqrt(qh.shape[-1]))
    s = np.matmul(qh, kh.swapaxes(-1, -2)) * scale
    p = softmax(s, axis=-1)
    return merge_heads(np.matmul(p, vh)), AttentionCache(qh, kh, vh, p, scale)


def attention_backward(
    grad_o: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`attention_forward`: ``grad_o`` (B, T, D) ->
    ``(grad_q, grad_k, grad_v)``, each (B, T, D). Per head, with ``G = grad of Oh``::

        grad_P = G Vh^T,   grad_Vh = P^T G
        grad_S = softmax_backward(P, grad_P)          (rows of P)
        grad_Qh = grad_S Kh / sqrt(dh),   grad_Kh = grad_S^T Qh / sqrt(dh)
    """
    qh, kh, vh, p, scale = cache
    g = split_heads(grad_o, qh.shape[1])
    grad_p = np.matmul(g, vh.swapaxes(-1, -2))
    grad_v = np.matmul(p.swapaxes(-1, -2), g)
    grad_s = softmax_backward(p, grad_p, axis=-1) * scale
    grad_q = np.matmul(grad_s, kh)
    grad_k = np.matmul(grad_s.swapaxes(-1, -2), qh)
    return merge_heads(grad_q), merge_heads(grad_k), merge_heads(grad_v)


class SelfAttentionCache(NamedTuple):
    """What :func:`self_attention_backward` needs; ``x`` and ``o`` are the inputs of the two
    projections (an analog layer updates its tiles with them)."""

    x: np.ndarray  # (B, T, D) input of the Q/K/V projection
    o: np.ndarray  # (B, T, Da) attention output = input of the output projection
    attn: AttentionCache
    w_qkv: np.ndarray | None  # (3 Da, D), used by the default rmatvec
    w_o: np.ndarray | None  # (D_out, Da), used by the default rmatvec


class SelfAttentionGrads(NamedTuple):
    """Gradients of :func:`self_attention_backward`."""

    x: np.ndarray  # (B, T, D) the block input
    w_qkv: np.ndarray  # (3 Da, D)
    b_qkv: np.ndarray  # (3 Da,)
    w_o: np.ndarray  # (D_out, Da)
    b_o: np.ndarray  # (D_out,)
    qkv: np.ndarray  # (B, T, 3 Da) at the Q/K/V projection output ([grad_q, grad_k, grad_v])
    o: np.ndarray  # (B, T, Da) at the output projection's input


def self_attention_forward(
    x: np.ndarray,
    w_qkv: np.ndarray | None,
    w_o: np.ndarray | None,
    heads: int,
    b_qkv: np.ndarray | None = None,
    b_o: np.ndarray | None = None,
    *,
    matvec_qkv: MatVec | None = None,
    matvec_o: MatVec | None = None,
) -> tuple[np.ndarray, SelfAttentionCache]:
    """Multi-head self-attention (no mask) with its two projections.

    ``x`` (B, T, D), ``w_qkv`` (3 Da, D) = the Q, K, V projections stacked by rows
    ``[W_q; W_k; W_v]``, ``w_o`` (D_out, Da), biases (3 Da,), (D_out,) or None ->
    ``(y (B, T, D_out), cache)``::

        [q, k, v] = x [W_q; W_k; W_v]^T + b_qkv        forward MVM (``matvec_qkv``), (B, T, 3 Da)
        o = attention_forward(q, k, v, heads)           digital, (B, T, Da)
        y = o W_o^T + b_o                               forward MVM (``matvec_o``)

    The seams as in :func:`linear_forward` (``v`` is (B T, D), resp. (B T, Da)); the weight
    may then be None. Q, K, V on three arrays: ``matvec_qkv = lambda v:
    np.concatenate([tq(v), tk(v), tv(v)], axis=1)`` (and the backward seam the sum of the
    three backward MVMs of the column blocks of ``g``).
    """
    qkv = linear_forward(x, w_qkv, b_qkv, matvec=matvec_qkv)
    da3 = qkv.shape[-1]
    if da3 % 3:
        raise ConfigError(f"self-attention: the Q/K/V projection gives {da3} features, expected 3 x width")
    q, k, v = np.split(qkv, 3, axis=-1)
    o, attn = attention_forward(q, k, v, heads)
    y = linear_forward(o, w_o, b_o, matvec=matvec_o)
    return y, SelfAttentionCache(x, o, attn, w_qkv, w_o)


def self_attention_backward(
    grad_y: np.ndarray,
    cache: SelfAttentionCache,
    *,
    rmatvec_qkv: MatVec | None = None,
    rmatvec_o: MatVec | None = None,
) -> SelfAttentionGrads:
    """Backward of :func:`self_attention_forward`: ``grad_y`` (B, T, D_out) -> the gradients
    w.r.t. ``x``, ``w_qkv``, ``b_qkv``, ``w_o``, ``b_o`` and the two intermediate ones an
    analog layer updates with (:class:`SelfAttentionGrads`)::

        grad_o, grad_W_o, grad_b_o = linear_backward(o, W_o, grad_y)       backward MVM (``rmatvec_o``)
        grad_q, grad_k, grad_v = attention_backward(grad_o)
        grad_qkv = [grad_q, grad_k, grad_v]
        grad_x, grad_W_qkv, grad_b_qkv = linear_backward(x, W_qkv, grad_qkv)  (``rmatvec_qkv``)
    """
    x, o, attn, w_qkv, w_o = cache
    grad_o, grad_w_o, grad_b_o = linear_backward(o, w_o, grad_y, rmatvec=rmatvec_o)
    grad_qkv = np.concatenate(attention_backward(grad_o, attn), axis=-1)
    grad_x, grad_w_qkv, grad_b_qkv = linear_backward(x, w_qkv, grad_qkv, rmatvec=rmatvec_qkv)
    return SelfAttentionGrads(grad_x, grad_w_qkv, grad_b_qkv, grad_w_o, grad_b_o, grad_qkv, grad_o)
