"""Floating-point baseline: exact ``W <- W - lr d x^T`` and exact MVMs (no device, no I/O)."""

from __future__ import annotations

import numpy as np

from analogtrain.engine.algorithms.base import Algorithm, as_replica_lr, batched


class FloatingPoint(Algorithm):
    """W (R, out, in) in floating point; the reference every analog algorithm is compared with."""

    name = "fp"

    def __init__(self, n_replicas: int, out_size: int, in_size: int, dtype=np.float32):
        super().__init__(n_replicas, out_size, in_size)
        self.w = np.zeros((n_replicas, out_size, in_size), dtype=dtype)

    def forward(self, x):
        """y = W x exactly; x (R, B, in) -> (R, B, out), or (R, in) -> (R, out)."""
        x = np.asarray(x, self.w.dtype)
        y = np.matmul(batched(x), self.w.swapaxes(-1, -2))
        return y[:, 0] if x.ndim == 2 else y

    def backward(self, d):
        """z = W^T d exactly; d (R, B, out) -> (R, B, in), or (R, out) -> (R, in)."""
        d = np.asarray(d, self.w.dtype)
        z = np.matmul(batched(d), self.w)
        return z[:, 0] if d.ndim == 2 else z

    def update(self, x, d, lr):
        """``W <- W - lr sum_b d_b x_b^T`` (the batch gradient step, order-free in floating point)."""
        x, d = batched(np.asarray(x, self.w.dtype)), batched(np.asarray(d, self.w.dtype))
        lr = as_replica_lr(lr, self.n_replicas).astype(self.w.dtype)
        self.w -= lr[:, None, None] * np.matmul(d.swapaxes(-1, -2), x)

    def weights(self):
        return self.w.copy()

    def set_weights(self, w):
        self.w[...] = w

    def state(self):
        return {"W": self.w.copy()}, {}

    def load_state(self, arrays, info):
        self.w[...] = arrays["W"]
