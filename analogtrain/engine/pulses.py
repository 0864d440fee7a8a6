"""Stochastic pulse trains for the parallel outer-product update (docs/pulses.md §2).

Everything is vectorised over a leading replica axis R: ``x`` is (R, n_in), ``d`` is
(R, n_out), the learning rate and the device step ``dw`` are (R,).

1. :func:`pulse_probabilities` turns ``lr d x^T`` into per-element pulse probabilities
   and a bit length with update management (UM) and bit-length management (UBLM).
2. :func:`stochastic_trains` draws Bernoulli trains of ``BL`` slots and packs each
   train into one unsigned integer (bit t = slot t).
3. :func:`coincidences` counts, for every device at once, the slots in which both its
   row and its column pulse: ``popcount(train_d[i] & train_x[j])``.
4. :func:`mean_count` / :func:`deterministic_implicit` give the counts of the two
   dense, noise-free pulse types directly.

The expected count of device ij is ``BL p_x[j] p_d[i] = lr |x_j d_i| / dw`` (when no
probability exceeds 1), i.e. the expected weight change is the SGD step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analogtrain.config.update import UpdateConfig


@dataclass
class PulsePlan:
    """Probabilities and bit lengths of one update of R replicas.

    p_x : (R, n_in) probability of a pulse per slot on each input line (in [0, 1])
    p_d : (R, n_out) probability per slot on each output line
    bl : (R,) int, the train length of each replica (0 = no update)
    k : (R,) expected coincidences at the largest entries, ``lr max|x| max|d| / dw``
    """

    p_x: np.ndarray
    p_d: np.ndarray
    bl: np.ndarray
    k: np.ndarray


def bit_length(k: np.ndarray, lr: np.ndarray, dw: np.ndarray, cfg: UpdateConfig) -> np.ndarray:
    """Train length per replica (docs/pulses.md §2.2): ``min(ceil(k), desired_bl)`` with UBLM, else
    ``desired_bl`` (or ``ceil(lr / dw)`` when ``fixed_bl`` is off and ``dw desired_bl < lr``)."""
    if cfg.update_bl_management:
        bl = np.minimum(np.ceil(k), cfg.desired_bl)
    elif not cfg.fixed_bl:
        bl = np.where(dw * cfg.desired_bl < lr, np.ceil(lr / dw), cfg.desired_bl)
    else:
        bl = np.full(k.shape, float(cfg.desired_bl))
    return np.maximum(bl, 1).astype(np.int64)


def pulse_probabilities(x: np.ndarray, d: np.ndarray, lr, dw, cfg: UpdateConfig) -> PulsePlan:
    """Pulse probabilities of the update ``-lr d x^T`` (docs/pulses.md §2.2), per replica.

    Without management ``A = B = sqrt(lr / (dw BL))``, ``p_x = |x| B``, ``p_d = |d| A``.
    With UM the two largest probabilities are made equal, ``sqrt(k / BL)``; when
    ``k > desired_bl`` the d side is rescaled so that the x side is not clipped.
    UBLM implies UM (as in aihwkit). Probabilities are clipped to 1.
    """
    x = np.asarray(x)
    d = np.asarray(d)
    R = x.shape[0]
    lr = per_replica(lr, R)
    dw = per_replica(dw, R)
    xm = np.abs(x).max(axis=1).astype(np.float64)
    dm = np.abs(d).max(axis=1).astype(np.float64)
    if cfg.um_grad_scale != 1.0:
        dm = dm * cfg.um_grad_scale
    k = lr * xm * dm / dw
    bl = bit_length(k, lr, dw, cfg)
    if cfg.fixed_bl is False and not cfg.update_bl_management:
        base = np.where(dw * cfg.desired_bl < lr, 1.0, np.sqrt(lr / (dw * bl)))
    else:
        base = np.sqrt(lr / (dw * bl))
    a = b = base  # d side, x side
    active = (xm > 0) & (dm > 0) & (lr > 0)
    all_active = bool(active.all())
    if cfg.update_management or cfg.update_bl_management:
        dm_eff = np.where(k > cfg.desired_bl, dm * cfg.desired_bl / np.where(k > 0, k, 1.0), dm)
        ratio = xm / np.where(dm_eff > 0, dm_eff, 1.0)
        if not all_active:
            ratio = np.where(active, ratio, 1.0)
        sq = np.sqrt(ratio)
        a = a * sq
        b = b / sq
    if not all_active:
        a = np.where(active, a, 0.0)
        b = np.where(active, b, 0.0)
        bl = np.where(active, bl, 0)
    p_x = np.minimum(np.abs(x) * b.astype(x.dtype)[:, None], 1.0)
    p_d = np.minimum(np.abs(d) * a.astype(d.dtype)[:, None], 1.0)
    if cfg.res > 0:
        p_x = _quantize(p_x, cfg.res)
        p_d = _quantize(p_d, cfg.res)
    return PulsePlan(p_x=p_x, p_d=p_d, bl=bl, k=k)


def per_replica(v, R: int) -> np.ndarray:
    """A scalar or (R,) value as an (R,) float64 array (no copy when it is one already)."""
    if isinstance(v, np.ndarray) and v.dtype == np.float64 and v.shape == (R,):
        return v
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (R,))


def _quantize(p: np.ndarray, res: float) -> np.ndarray:
    return np.clip(np.round(p / res) * res, 0.0, 1.0).astype(p.dtype)


def train_dtype(bl_max: int) -> type:
    """Unsigned integer type holding ``bl_max`` slots (uint32 up to 32, else uint64)."""
    return np.uint32 if bl_max <= 32 else np.uint64


def stochastic_trains(p: np.ndarray, bl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Packed Bernoulli pulse trains, (R, n) -> (R, n) unsigned ints.

    Slot t < bl[r] of line (r, j) carries a pulse with probability p[r, j], independently
    per slot; bit t of the result is that slot. Uniforms are drawn only for lines with
    p > 0 (in row-major order of those lines), ``max(bl)`` per line; the slots beyond a
    replica's own ``bl[r]`` are then masked off.
    """
    R, n = p.shape
    bl_max = int(bl.max()) if bl.size else 0
    dt = train_dtype(bl_max)
    out = np.zeros((R, n), dtype=dt)
    if bl_max == 0:
        return out
    flat = p.reshape(-1)
    nz = np.flatnonzero(flat)
    if nz.size == 0:
        return out
    u = rng.random((nz.size, bl_max), dtype=np.float32 if p.dtype == np.float32 else np.float64)
    nbits = 8 * np.dtype(dt).itemsize
    bits = np.zeros((nz.size, nbits), dtype=bool)
    np.less(u, flat[nz, None], out=bits[:, :bl_max])
    # packing the flat bit stream is much faster than packbits along a short axis
    out.reshape(-1)[nz] = np.packbits(bits.reshape(-1), bitorder="little").view(np.dtype(dt).newbyteorder("<"))
    if bl.size > 1 and np.any(bl != bl_max):  # shorter trains in some replicas: mask their extra slots
        b = np.minimum(bl, 63).astype(np.uint64)
        mask = np.where(bl >= 64, np.uint64(2**64 - 1), (np.uint64(1) << b) - np.uint64(1)).astype(dt)
        out &= mask[:, None]
    return out


def paired_trains(p_x: np.ndarray, p_d: np.ndarray, bl: np.ndarray, rng: np.random.Generator):
    """Trains of the x and the d side drawn in one call: returns (train_x, train_d)."""
    t = stochastic_trains(np.concatenate([p_x, p_d], axis=1), bl, rng)
    return t[:, : p_x.shape[1]], t[:, p_x.shape[1]:]


def coincidences(train_d: np.ndarray, train_x: np.ndarray) -> np.ndarray:
    """Coincidence counts n_ij = popcount(train_d[i] & train_x[j]) for every device.

    ``train_d`` (R, m), ``train_x`` (R, n) packed trains -> (R, m, n) uint8 counts.
    """
    return np.bitwise_count(train_d[:, :, None] & train_x[:, None, :])


def mean_count(plan: PulsePlan) -> np.ndarray:
    """MeanCount pulse type (dense, docs/pulses.md §2.3): ``c_x = round(BL p_x)``, ``c_d = round(BL p_d)``,
    ``n_ij = round(c_d[i] c_x[j] / BL)`` -> (R, m, n) int counts (unsigned; signs come from x, d)."""
    bl = plan.bl.astype(np.float64)[:, None]
    cx = np.round(bl * plan.p_x)
    cd = np.round(bl * plan.p_d)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.round(cd[:, :, None] * cx[:, None, :] / np.where(bl > 0, bl, 1.0)[:, :, None])
    return n.astype(np.int64)


def deterministic_implicit(plan: PulsePlan, cfg: UpdateConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """DeterministicImplicit pulse type (docs/pulses.md §2.3): ``n_ij = round(BL p_d[i] p_x[j])`` with the
    probabilities optionally quantised to ``x_res_implicit`` / ``d_res_implicit`` (stochastic
    rounding if ``sto_round``). The expected count, rounded, without sampling noise."""
    px, pd = plan.p_x.astype(np.float64), plan.p_d.astype(np.float64)
    if cfg.x_res_implicit > 0:
        px = _round_to(px, cfg.x_res_implicit, cfg.sto_round, rng)
    if cfg.d_res_implicit > 0:
        pd = _round_to(pd, cfg.d_res_implicit, cfg.sto_round, rng)
    bl = plan.bl.astype(np.float64)[:, None, None]
    return np.round(bl * pd[:, :, None] * px[:, None, :]).astype(np.int64)


def _round_to(p, res, sto, rng):
    q = p / res
    if sto:
        if rng is None:
            raise ValueError("stochastic rounding needs a generator")
        q = np.floor(q + rng.random(q.shape))
    else:
        q = np.round(q)
    return np.clip(q * res, 0.0, 1.0)
