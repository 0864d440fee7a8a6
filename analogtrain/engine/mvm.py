"""Analog matrix-vector products with I/O non-idealities (docs/io.md §3.2).

One function, :func:`analog_mvm`, vectorised over replicas and a batch:
``W`` (R, out, in), ``x`` (R, B, in) -> ``y`` (R, B, out); the backward pass is the
same call with ``transpose=True`` (``W^T d``).

Per sample::

    s = max|x|                           (noise management ABS_MAX; 1 if off)
    repeat with red = 1, 2, 4, ...:      (bound management ITERATIVE, forward only)
        xq = clip(round(x / (s red) / Din) Din, -inp_bound, inp_bound)   DAC
        y  = W xq + w_noise |xq|_2 xi + out_noise xi'                    analog MVM + noise
        y  = round(y / Dout) Dout                                        ADC
        saturated = any |y| > out_bound;  y = clip(y, -out_bound, out_bound)
        stop unless saturated and red <= max_bm_factor and red <= max_bm_res / Din
    return y * out_scale * s * red

Weight noise ``w_noise`` (a fresh Gaussian per device and MVM) is applied in its
output-referred form ``w_noise ||xq||_2 xi`` per output, which has exactly the same
distribution and needs no (out, in) draw per sample.
"""

from __future__ import annotations

import numpy as np

from analogtrain.config.io import IOConfig
from analogtrain.seeding import standard_normal


def _quantize(v: np.ndarray, step: float, sto: bool, rng: np.random.Generator) -> np.ndarray:
    if step <= 0:
        return v
    q = v / step
    if sto:
        q = np.floor(q + rng.random(q.shape, dtype=q.dtype))
    else:
        np.rint(q, out=q)
    q *= step
    return q


def _one_pass(W, xs, io: IOConfig, rng, transpose: bool):
    """DAC -> MVM -> noise -> ADC for already scaled inputs xs (R, B, n). Returns (y, saturated (R, B))."""
    xq = _quantize(xs, io.inp_step, io.inp_sto_round, rng)
    np.clip(xq, -io.inp_bound, io.inp_bound, out=xq)
    if io.inp_noise > 0:
        xq = xq + io.inp_noise * standard_normal(rng, xq.size, xq.dtype).reshape(xq.shape)
    y = np.matmul(xq, W if transpose else W.swapaxes(-1, -2))
    if io.w_noise > 0:
        norm = np.sqrt(np.einsum("rbn,rbn->rb", xq, xq))[..., None]
        y += io.w_noise * norm * standard_normal(rng, y.size, y.dtype).reshape(y.shape)
    if io.out_noise > 0:
        y += io.out_noise * standard_normal(rng, y.size, y.dtype).reshape(y.shape)
    y = _quantize(y, io.out_step, False, rng)
    if io.bm_test_negative_bound:
        sat = np.abs(y).max(axis=-1) > io.out_bound
    else:
        sat = y.max(axis=-1) > io.out_bound
    np.clip(y, -io.out_bound, io.out_bound, out=y)
    return y, sat


def analog_mvm(W: np.ndarray, x: np.ndarray, io: IOConfig, rng: np.random.Generator,
               transpose: bool = False, bound_management: bool = True) -> np.ndarray:
    """y = W x (or W^T x) through DAC, noise and ADC, with noise and bound management.

    W : (R, out, in); x : (R, B, in) (or (R, B, out) with ``transpose``) -> (R, B, out|in).
    ``bound_management=False`` forces BM off (the backward pass). Inputs whose row is all
    zero give exactly zero output (no noise), as with noise management in aihwkit.
    """
    if io.is_perfect:
        return np.matmul(x, W if transpose else W.swapaxes(-1, -2))
    dtype = W.dtype
    x = np.asarray(x, dtype=dtype)
    any_zero = False
    if io.noise_management == "abs_max":
        s = np.abs(x).max(axis=-1)
        if io.nm_thres > 0:
            s = np.minimum(s, io.nm_thres)
        zero = s == 0
        any_zero = bool(zero.any())
        s = np.where(zero, 1.0, s).astype(dtype) if any_zero else s.astype(dtype, copy=False)
    else:
        zero = None
        s = np.ones(x.shape[:-1], dtype=dtype)
    y, sat = _one_pass(W, x / s[..., None], io, rng, transpose)
    red = None  # the bound-management reduction factors (all 1 unless an input saturated)
    use_bm = bound_management and io.bound_management == "iterative"
    if use_bm and sat.any():
        red = np.ones_like(s)
        limit = min(io.max_bm_factor, io.max_bm_res / io.inp_step if io.inp_step > 0 else np.inf)
        todo = sat & (red <= limit)
        while todo.any():
            red = np.where(todo, red * 2, red)
            r_idx, b_idx = np.nonzero(todo)
            xs = (x[r_idx, b_idx] / (s[r_idx, b_idx] * red[r_idx, b_idx])[:, None])
            # recompute the saturated samples, each against its own replica's weights
            y_sub, sat_sub = _one_pass_rows(W, xs, r_idx, io, rng, transpose)
            y[r_idx, b_idx] = y_sub
            sat_new = np.zeros_like(sat)
            sat_new[r_idx, b_idx] = sat_sub
            todo = sat_new & (red <= limit)
    scale = s * red if red is not None else s
    if io.out_scale != 1.0:
        scale = scale * io.out_scale
    y *= scale[..., None].astype(dtype, copy=False)
    if any_zero:
        y[zero] = 0.0
    return y


def _one_pass_rows(W, xs, r_idx, io, rng, transpose):
    """_one_pass for a list of samples xs (K, n) belonging to replicas r_idx (K,), grouped by replica."""
    n_out = W.shape[2] if transpose else W.shape[1]
    y = np.empty((xs.shape[0], n_out), dtype=W.dtype)
    sat = np.empty(xs.shape[0], dtype=bool)
    for r in np.unique(r_idx):
        sel = np.flatnonzero(r_idx == r)
        yr, sr = _one_pass(W[r:r + 1], xs[sel][None], io, rng, transpose)
        y[sel] = yr[0]
        sat[sel] = sr[0]
    return y, sat


def read_lines(W: np.ndarray, index, io: IOConfig, rng: np.random.Generator, rows: bool = False) -> np.ndarray:
    """Read column ``index`` (or row, with ``rows``) of every replica with a one-hot input of 1.

    No noise or bound management (transfer reads, docs/io.md §3.2): the one-hot value 1 passes
    the DAC exactly, so the read is ``W[:, :, j] + noise``, quantised by the ADC and
    clipped to +-out_bound. Returns (R, out) (or (R, in) for a row); with a sequence of
    indices, one read per index: (R, out, k) (or (R, in, k)).
    """
    many = not np.isscalar(index) and not isinstance(index, (int, np.integer))
    line = (W[:, index, :].swapaxes(1, 2) if many else W[:, index, :]) if rows else W[:, :, index]
    if io.is_perfect:
        return line.copy()
    if io.inp_noise > 0 or io.w_noise > 0:
        idx = np.atleast_1d(index)
        n = W.shape[1] if rows else W.shape[2]
        e = np.zeros((W.shape[0], idx.size, n), dtype=W.dtype)
        e[:, np.arange(idx.size), idx] = 1.0
        y, _ = _one_pass(W, e, io, rng, transpose=rows)      # (R, k, out)
        y = y * io.out_scale
        return y.swapaxes(1, 2) if many else y[:, 0, :]
    y = line.astype(W.dtype, copy=True)
    if io.out_noise > 0:
        y += io.out_noise * standard_normal(rng, y.size, y.dtype).reshape(y.shape)
    y = _quantize(y, io.out_step, False, rng)
    np.minimum(y, io.out_bound, out=y)
    np.maximum(y, -io.out_bound, out=y)
    return y * io.out_scale if io.out_scale != 1.0 else y
