"""Learning-rate plumbing of the transfer family (docs/algorithms.md §5.1-5.3), as pure functions over replicas.

All arguments are (R,) float64 arrays (or scalars broadcasting to them).
"""

from __future__ import annotations

import numpy as np


def ema_max(m: np.ndarray, new: np.ndarray, momentum: np.ndarray, m_batch: int) -> np.ndarray:
    """Running maximum of docs/algorithms.md §5.1::

        m <- new                      if m <= 0 (the first value initialises)
        m <- m                        if new <= 0 (all-zero inputs are ignored)
        m <- (1 - tau) m + tau new    else, tau = (1 - momentum) / m_batch
    """
    tau = (1.0 - momentum) / m_batch
    return np.where(m <= 0, new, np.where(new <= 0, m, (1.0 - tau) * m + tau * new))


def pulse_count_lr(lr, fast_lr, desired_bl, dw_a, m_x, m_d, auto_scale: bool, scale_fast_lr) -> np.ndarray:
    """lambda_A, the learning rate of the pulsed update onto A (docs/algorithms.md §5.2)::

        auto_scale:  lambda_A = fast_lr desired_bl dw_A / (m_x m_d)   (division skipped while m_x or m_d is 0)
        otherwise:   lambda_A = fast_lr
        times lr if scale_fast_lr.

    With update management, k = lambda_A max|x| max|d| / dw_A = fast_lr desired_bl
    (max|x| max|d|) / (m_x m_d): the A update strength does not depend on the gradient
    scale nor on the optimizer's learning rate.
    """
    lam = np.asarray(fast_lr, dtype=np.float64) * np.ones_like(np.asarray(dw_a, dtype=np.float64))
    if auto_scale:
        norm = np.where((m_x > 0) & (m_d > 0), m_x * m_d, 1.0)
        lam = lam * desired_bl * dw_a / norm
    return np.where(scale_fast_lr, lam * lr, lam)


def transfer_lr_scale(lr, lam_a, transfer_lr, scale_transfer_lr, buffer_granularity, auto_granularity,
                      dw_a, dw_w, x_size: int, n_s: int, correct_gradient_magnitudes) -> np.ndarray:
    """lambda_H, the factor from a read of A to the buffer H (docs/algorithms.md §5.3)::

        lr_tr = transfer_lr (lr if scale_transfer_lr)
        bg    = buffer_granularity dw_A [auto_granularity / (x_size n_s) if auto_granularity > 0]
        correct_gradient_magnitudes:  bg *= dw_W / dw_A;  lambda_H = |lr_tr| / lambda_A / bg
        else:                         lambda_H = |lr_tr| / bg

    A W pulse is emitted when the accumulated reads reach bg / lr_tr (|H| >= 1).
    """
    lr_tr = transfer_lr * np.where(scale_transfer_lr, lr, 1.0)
    bg = buffer_granularity * dw_a
    bg = np.where(auto_granularity > 0, bg * auto_granularity / (x_size * n_s), bg)
    corrected = np.abs(lr_tr) / np.where(lam_a > 0, lam_a, 1.0) / (bg * dw_w / dw_a)
    return np.where(correct_gradient_magnitudes, corrected, np.abs(lr_tr) / bg)


def buffer_step(h: np.ndarray, delta: np.ndarray, lam_h: np.ndarray, max_steps: np.ndarray, momentum: np.ndarray,
                forget_buffer: bool) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate a demodulated read into H and threshold it (docs/algorithms.md §4.4.3)::

        omega = H + lambda_H delta
        where |omega| >= 1:  n = clip(trunc(omega), -max_steps, max_steps)
                             omega = momentum omega          (forget_buffer)
                                   = omega - (1 - momentum) n (otherwise)
        H <- omega

    h, delta : (R, out); lam_h, max_steps, momentum : (R,). Returns (new H, n as int64).
    """
    omega = h + lam_h[:, None] * delta
    fire = np.abs(omega) >= 1.0
    n = np.where(fire, np.clip(np.trunc(omega), -max_steps[:, None], max_steps[:, None]), 0.0)
    if forget_buffer:
        omega = np.where(fire, momentum[:, None] * omega, omega)
    else:
        omega = np.where(fire, omega - (1.0 - momentum[:, None]) * n, omega)
    return omega, n.astype(np.int64)


def chopper_flips(T, n_c: np.ndarray, p: np.ndarray, random: np.ndarray, dynamic: np.ndarray,
                  u: np.ndarray) -> np.ndarray:
    """Which replicas flip the input chopper of the column just read (docs/algorithms.md §4.4.3, §4.6.2)::

        regular:  flip when (T mod N_c) + 1 == N_c         (N_c = max(ceil(1/p), 2))
        random:   flip with probability p                 (u ~ U(0, 1))
        AGAD:     regular flip, or (if random) also a random flip
    No chopper (p == 0): never. T counts full passes over the columns. The per-replica
    arrays are (R,); ``T`` and ``u`` may carry extra trailing axes (several reads) as long as
    the replica arrays are shaped to broadcast (e.g. (R, 1)).
    """
    if not (random & (p > 0)).any():  # regular choppers only: deterministic, ``u`` unused
        return (n_c > 0) & ((T % np.maximum(n_c, 1)) + 1 == n_c) & (p > 0)
    has = p > 0
    nc = np.where(n_c > 0, n_c, 1)
    regular = has & (n_c > 0) & ((T % nc) + 1 == nc)
    rand = has & (u < p)
    return np.where(dynamic, regular | (random & rand), np.where(random, rand, regular))
