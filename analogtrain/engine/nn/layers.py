"""Layers with hand-written backprop; analog layers keep their weights on a training algorithm.

Every layer has ``forward(x, train)``, ``backward(grad_y)`` and ``update(lr)``:
forward/backward of a whole mini-batch first (with the weights at the start of the
batch), then ``update`` applies the weight change of every sample of the batch in
order (the analog algorithms pulse sample by sample). The math lives in
:mod:`.functional`; these classes only keep the caches and route the matrix products
through the algorithm's analog tile (``alg.forward`` / ``alg.backward``) and the weight
gradient into ``alg.update(x, d, lr)``.

Shapes: batch first. An algorithm holds one replica (R = 1) of an (out, in) array.
"""

from __future__ import annotations

import numpy as np

from analogtrain.engine.algorithms.base import Algorithm
from analogtrain.engine.nn import functional as F


class Layer:
    """Base class: stateless layers only override forward/backward."""

    analog = False

    def forward(self, x, train: bool = True):
        raise NotImplementedError

    def backward(self, grad_y):
        raise NotImplementedError

    def update(self, lr: float, grad_scale: float = 1.0) -> None:
        """Apply the weight update of the last batch (``grad_scale`` from gradient clipping)."""

    def grad_sq_norm(self) -> float:
        """Squared Frobenius norm of the last batch's weight gradient (for clipping)."""
        return 0.0

    def state(self) -> tuple[dict, dict]:
        return {}, {}

    def load_state(self, arrays: dict, info: dict) -> None:
        pass


def _outer_sq_norm(xs: np.ndarray, ds: np.ndarray) -> float:
    """||sum_b d_b x_b^T||_F^2 = sum_{b,c} (x_b.x_c)(d_b.d_c), without forming the matrix."""
    xs = xs.reshape(-1, xs.shape[-1]).astype(np.float64)
    ds = ds.reshape(-1, ds.shape[-1]).astype(np.float64)
    N, n, m = xs.shape[0], xs.shape[1], ds.shape[1]
    if N * n * m <= N * N * (n + m):          # the (m, n) gradient is cheaper than the Gram matrices
        g = ds.T @ xs
        return float(np.sum(g * g))
    return float(np.sum((xs @ xs.T) * (ds @ ds.T)))


class AnalogLinear(Layer):
    """y = alpha W_a x + b with W_a on an analog algorithm (any of fp, sgd, mp, ttv2, c-ttv2,
    agad), b digital (optional), alpha a fixed digital output scale. x (B, in) -> y (B, out).

    Weight scaling (aihwkit ``weight_scaling_omega``): the initial weights W0 are programmed
    as W_a = W0 / alpha with alpha = max|W0| / omega, so they use the device range; the
    effective weight is W = alpha W_a and the backward is ``alpha W_a^T d``. The update
    realises the SGD step on the effective weights, ``W <- W - lr d x^T``, i.e.
    ``W_a <- W_a - lr (d / alpha) x^T``: the array receives ``d / alpha``. (Plain chain
    rule on W_a would pass ``alpha d`` and slow learning by alpha^2.)
    """

    analog = True

    def __init__(self, alg: Algorithm, bias: np.ndarray | None, alpha: float = 1.0):
        self.alg = alg
        self.b = bias
        self.alpha = float(alpha)
        self._x = self._g = None

    def forward(self, x, train=True):
        self._x = x
        y = self.alg.forward(x[None])[0]
        if self.alpha != 1.0:
            y = y * y.dtype.type(self.alpha)
        return y + self.b if self.b is not None else y

    def backward(self, grad_y):
        self._g = grad_y
        gx = self.alg.backward(grad_y[None])[0]
        return gx * gx.dtype.type(self.alpha) if self.alpha != 1.0 else gx

    def grad_sq_norm(self):
        n = _outer_sq_norm(self._x, self._g)
        if self.b is not None:
            gb = self._g.sum(0)
            n += float(gb @ gb)
        return n

    def update(self, lr, grad_scale=1.0):
        g = self._g if grad_scale == 1.0 else self._g * grad_scale
        self.alg.update(self._x[None], (g / g.dtype.type(self.alpha))[None], lr)
        if self.b is not None:
            self.b -= (lr * g.sum(0)).astype(self.b.dtype)
        self.alg.decay()

    def state(self):
        arrs, info = self.alg.state()
        arrs = dict(arrs)
        if self.b is not None:
            arrs["bias"] = self.b.copy()
        return arrs, info

    def load_state(self, arrays, info):
        self.alg.load_state(arrays, info)
        if self.b is not None:
            self.b[...] = arrays["bias"]


class AnalogConv2d(Layer):
    """2-D convolution (stride 1, no padding) by im2col onto one analog array of shape
    (F, C kh kw): every image patch is one input vector, so the pulsed update applies one
    outer product per patch, in order. x (B, C, H, W) -> (B, F, Ho, Wo)."""

    analog = True

    def __init__(self, alg: Algorithm, bias: np.ndarray | None, in_channels: int, kernel: int, alpha: float = 1.0):
        self.alg, self.b = alg, bias
        self.alpha = float(alpha)
        self.c, self.k = in_channels, kernel
        self._cols = self._gcols = self._xshape = None

    def forward(self, x, train=True):
        B, C, H, W = x.shape
        ho, wo = H - self.k + 1, W - self.k + 1
        cols = F.im2col(x, self.k, self.k)                       # (B ho wo, C k k)
        self._cols, self._xshape = cols, x.shape
        y = self.alg.forward(cols[None])[0]                      # (B ho wo, F)
        if self.alpha != 1.0:
            y = y * y.dtype.type(self.alpha)
        if self.b is not None:
            y = y + self.b
        return y.reshape(B, ho, wo, -1).transpose(0, 3, 1, 2)

    def backward(self, grad_y):
        B, Fo, ho, wo = grad_y.shape
        g = grad_y.transpose(0, 2, 3, 1).reshape(B * ho * wo, Fo)
        self._gcols = g
        gcols = self.alg.backward(g[None])[0]
        if self.alpha != 1.0:
            gcols = gcols * gcols.dtype.type(self.alpha)
        return F.col2im(gcols, self._xshape, self.k, self.k)

    def grad_sq_norm(self):
        n = _outer_sq_norm(self._cols, self._gcols)
        if self.b is not None:
            gb = self._gcols.sum(0)
            n += float(gb @ gb)
        return n

    def update(self, lr, grad_scale=1.0):
        g = self._gcols if grad_scale == 1.0 else self._gcols * grad_scale
        self.alg.update(self._cols[None], (g / g.dtype.type(self.alpha))[None], lr)
        if self.b is not None:
            self.b -= (lr * g.sum(0)).astype(self.b.dtype)
        self.alg.decay()

    state = AnalogLinear.state
    load_state = AnalogLinear.load_state


class AnalogLSTM(Layer):
    """One LSTM layer, its four gates in ONE analog array of shape (4h, in + h + 1) (the last
    input is a constant 1: the bias lives on the array). xs (T, B, in) -> hs (T, B, h).

    Backpropagation through time uses the backward MVM of the array at every step; the
    update applies the outer products ``grad_z_t v_t^T`` (v_t = [x_t, h_{t-1}, 1]) of every
    time step in forward order, each sample of the batch in order.
    """

    analog = True

    def __init__(self, alg: Algorithm, hidden: int, alpha: float = 1.0):
        self.alg, self.h = alg, hidden
        self.alpha = float(alpha)
        self._caches = None
        self._vs = self._gz = None

    def _mv(self, v):
        z = self.alg.forward(v[None])[0]
        return z * z.dtype.type(self.alpha) if self.alpha != 1.0 else z

    def _rmv(self, g):
        z = self.alg.backward(g[None])[0]
        return z * z.dtype.type(self.alpha) if self.alpha != 1.0 else z

    def forward(self, xs, train=True, state=None):
        B = xs.shape[1]
        h0 = np.zeros((B, self.h), dtype=xs.dtype) if state is None else state[0]
        c0 = np.zeros((B, self.h), dtype=xs.dtype) if state is None else state[1]
        hs, (hT, cT), caches = F.lstm_forward(xs, h0, c0, None, matvec=self._mv)
        self._caches = caches
        self.last_state = (hT, cT)
        return hs

    def backward(self, grad_hs):
        dh = np.zeros_like(self._caches[-1].c)
        dc = None
        grad_xs, gzs = [], []
        for t in range(len(self._caches) - 1, -1, -1):
            gx, dh, dc, _, gz = F.lstm_cell_backward(dh + grad_hs[t], dc, self._caches[t], rmatvec=self._rmv)
            grad_xs.append(gx)
            gzs.append(gz)
        grad_xs.reverse()
        gzs.reverse()
        self._vs = np.stack([c.xh1 for c in self._caches])      # (T, B, in + h + 1)
        self._gz = np.stack(gzs)                                 # (T, B, 4h)
        return np.stack(grad_xs)

    def grad_sq_norm(self):
        return _outer_sq_norm(self._vs, self._gz)

    def update(self, lr, grad_scale=1.0):
        T, B, n = self._vs.shape
        g = self._gz if grad_scale == 1.0 else self._gz * grad_scale
        g = g / g.dtype.type(self.alpha)
        self.alg.update(self._vs.reshape(1, T * B, n), g.reshape(1, T * B, -1), lr)
        self.alg.decay()

    def state(self):
        return self.alg.state()

    def load_state(self, arrays, info):
        self.alg.load_state(arrays, info)


class Activation(Layer):
    """sigmoid, tanh or relu, elementwise."""

    _FWD = {"sigmoid": F.sigmoid, "tanh": F.tanh, "relu": F.relu}

    def __init__(self, kind: str):
        self.kind = kind
        self._y = self._x = None

    def forward(self, x, train=True):
        self._x = x
        self._y = self._FWD[self.kind](x)
        return self._y

    def backward(self, grad_y):
        if self.kind == "sigmoid":
            return F.sigmoid_backward(self._y, grad_y)
        if self.kind == "tanh":
            return F.tanh_backward(self._y, grad_y)
        return F.relu_backward(self._x, grad_y)


class MaxPool2d(Layer):
    def __init__(self, k: int = 2):
        self.k = k
        self._cache = self._shape = None

    def forward(self, x, train=True):
        self._shape = x.shape
        y, self._cache = F.maxpool_forward(x, self.k)
        return y

    def backward(self, grad_y):
        return F.maxpool_backward(grad_y, self._cache, self._shape)


class Flatten(Layer):
    def __init__(self):
        self._shape = None

    def forward(self, x, train=True):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y):
        return grad_y.reshape(self._shape)


class Dropout(Layer):
    """Inverted dropout with probability p (identity at evaluation)."""

    def __init__(self, p: float, rng: np.random.Generator):
        self.p, self.rng = p, rng
        self._mask = None

    def forward(self, x, train=True):
        if not train or self.p == 0:
            self._mask = None
            return x
        y, self._mask = F.dropout_forward(x, self.p, self.rng)
        return y

    def backward(self, grad_y):
        return F.dropout_backward(grad_y, self._mask)
