"""The Tiki-Taka family in one stacked implementation: TTv2, c-TTv2 and AGAD (docs/algorithms.md §4.4-4.6).

The three algorithms share the per-sample machinery (auto-scaled, chopper-modulated
pulsed update of A; every ``transfer_every`` samples one column of A read with a
one-hot input; digital buffer H; single-pulse writes to W) and differ only in how the
read is turned into the buffer increment (:mod:`.ttv2` vs :mod:`.agad`) and in the
chopper schedule. Every parameter is per replica, so a grid that mixes TTv2, c-TTv2
and AGAD replicas runs as ONE stacked simulation.

Column schedule: the k-th transfer reads column ``k mod in_size``; ``T`` counts full
passes (incremented after reading the last column).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from analogtrain.config.algorithm import TransferConfig
from analogtrain.seeding import generator_state, restore_generator
from analogtrain.engine.tile import AnalogTile
from analogtrain.engine.algorithms.agad import agad_readout
from analogtrain.engine.algorithms.base import Algorithm, as_replica_lr, batched
from analogtrain.engine.algorithms.pulsed_update import batch_update, column_writes
from analogtrain.engine.algorithms.scaling import buffer_step, chopper_flips, ema_max, pulse_count_lr, transfer_lr_scale
from analogtrain.engine.algorithms.ttv2 import chopped_readout



def chunk_reads(n_samples: int, t: int, k: int, n_s: int, n_cols: int, cut_after_pass: bool):
    """The column reads of the next samples of a mini-batch (the transfer schedule).

    Sample s = 0, 1, ... is sample ``t + s + 1`` of the run (t samples seen so far); every
    ``n_s``-th sample of the run is followed by a read of the next column, k, k + 1, ...
    (mod n_cols). With ``cut_after_pass`` (output choppers, which flip after a full pass)
    the chunk ends with the read of the last column. Returns (number of samples of the
    chunk, reads [(s, j)] in time order, t and k after the chunk).
    """
    reads = []
    s = 0
    while s < n_samples:
        t += 1
        s += 1
        if t % n_s == 0:
            reads.append((s - 1, k))
            k = (k + 1) % n_cols
            if cut_after_pass and k == 0:
                break
    return s, reads, t, k


class TransferFamily(Algorithm):
    """A (fast, gradient) and W (slow, weight) tiles of R replicas, buffer H and choppers.

    Parameters
    ----------
    tile_a, tile_w : the gradient and weight arrays (same R, out, in)
    cfgs : one TransferConfig per replica (TTv2: in_chop_prob 0; c-TTv2: > 0; AGAD:
        dynamic_reference); structural fields (transfer_every, desired_bl, auto_scale,
        forget_buffer) must agree
    rng_chopper : random chopper flips
    names : per-replica algorithm names (for reports)
    """

    name = "transfer"
    #: config fields that must be equal for all replicas of one stack (structural: they
    #: set the schedule and the shapes of the per-sample work)
    STACK_KEYS = ("transfer_every", "desired_bl", "auto_scale", "forget_buffer")

    def __init__(self, tile_a: AnalogTile, tile_w: AnalogTile, cfgs: Sequence[TransferConfig],
                 rng_chopper: np.random.Generator, names: Sequence[str] | None = None):
        super().__init__(tile_w.n_replicas, tile_w.out_size, tile_w.in_size)
        if tile_a.shape != tile_w.shape:
            raise ValueError("A and W must have the same shape")
        cfgs = self.stack_configs(cfgs)
        c0 = cfgs[0]
        self.A, self.W = tile_a, tile_w
        self.names = list(names) if names is not None else ["transfer"] * self.n_replicas
        self.n_s, self.desired_bl = c0.transfer_every, c0.desired_bl
        self.auto_scale, self.forget_buffer = c0.auto_scale, c0.forget_buffer
        f64 = lambda field: np.array([getattr(c, field) for c in cfgs], dtype=np.float64)  # noqa: E731
        b = lambda field: np.array([getattr(c, field) for c in cfgs], dtype=bool)  # noqa: E731
        self.fast_lr, self.auto_momentum = f64("fast_lr"), f64("auto_momentum")
        self.scale_fast_lr, self.scale_transfer_lr = b("scale_fast_lr"), b("scale_transfer_lr")
        self.transfer_lr, self.buffer_granularity = f64("transfer_lr"), f64("buffer_granularity")
        self.auto_granularity = f64("auto_granularity")
        self.correct_gradient_magnitudes = b("correct_gradient_magnitudes")
        self.in_chop_prob, self.out_chop_prob = f64("in_chop_prob"), f64("out_chop_prob")
        self.in_chop_random, self.dynamic, self.warm_up = b("in_chop_random"), b("dynamic_reference"), b("warm_up")
        self.n_c = np.array([c.n_c for c in cfgs], dtype=np.int64)
        self.mu = np.minimum(f64("tail_weightening") / np.where(self.n_c > 0, self.n_c, 1), 1.0)
        self.momentum, self.max_steps = f64("momentum"), f64("max_steps")
        self.any_dynamic = bool(self.dynamic.any())
        self.any_out_chop = bool(np.any(self.out_chop_prob > 0))
        self.any_random = bool(np.any(self.in_chop_random & (self.in_chop_prob > 0)))
        self.all_dynamic = bool(self.dynamic.all())
        R, m, n = tile_w.shape
        self.H = np.zeros((R, m, n), dtype=np.float64)
        self.P = np.zeros((R, m, n), dtype=np.float64) if self.any_dynamic else None
        self.P_ref = np.zeros((R, m, n), dtype=np.float64) if self.any_dynamic else None
        self.switched = np.zeros((R, n), dtype=bool)
        self.c_in = np.ones((R, n), dtype=tile_a.dtype)
        self.c_out = np.ones((R, m), dtype=tile_a.dtype)
        self.m_x = np.zeros(R)
        self.m_d = np.zeros(R)
        self.t = 0       # samples seen
        self.k = 0       # next column to read
        self.T = 0       # full passes over the columns
        self.n_transfers = 0
        self.w_writes = 0
        self.rng_chopper = rng_chopper
        self.dw_a = tile_a.device.granularity()
        self.dw_w = tile_w.device.granularity()
        self.A.set_weights(0.0)  # A starts at its reference (stored value 0)

    # -------------------------------------------------------------- MVMs
    def forward(self, x):
        return self.W.forward(x)

    def backward(self, d):
        return self.W.backward(d)

    # ------------------------------------------------------------ update
    def update(self, x, d, lr):
        """One mini-batch: running maxima over the batch (docs/algorithms.md §5.1), then per sample the
        chopped pulsed update of A and, every n_s samples, a transfer."""
        x, d = batched(np.asarray(x)), batched(np.asarray(d))
        B = x.shape[1]
        lr = as_replica_lr(lr, self.n_replicas)
        if self.auto_scale:
            self.m_x = ema_max(self.m_x, np.abs(x).max(axis=(1, 2)).astype(np.float64), self.auto_momentum, B)
            self.m_d = ema_max(self.m_d, np.abs(d).max(axis=(1, 2)).astype(np.float64), self.auto_momentum, B)
        lam_a = pulse_count_lr(lr, self.fast_lr, self.desired_bl, self.dw_a, self.m_x, self.m_d,
                               self.auto_scale, self.scale_fast_lr)
        lam_h = transfer_lr_scale(lr, lam_a, self.transfer_lr, self.scale_transfer_lr, self.buffer_granularity,
                                  self.auto_granularity, self.dw_a, self.dw_w, self.in_size, self.n_s,
                                  self.correct_gradient_magnitudes)
        # the reads of the whole batch are interleaved with the pulses by batch_update; with
        # output choppers (which flip at the end of every full pass and change the signs of all
        # later samples) the batch is cut after each full pass

        def on_read(group):
            self.transfer_many([j for _, j in group], lam_h)

        start = 0
        while start < B:
            n, reads, t, k = chunk_reads(B - start, self.t, self.k, self.n_s, self.in_size, self.any_out_chop)
            batch_update(self.A, x[:, start:start + n], d[:, start:start + n], lam_a, x_sign=self.c_in,
                         d_sign=self.c_out, reads=reads, on_read=on_read)
            self.t, self.k = t, k
            start += n

    def transfer_many(self, cols: list, lam_h: np.ndarray) -> None:
        """The transfers of several distinct columns, in the given (time) order, vectorised: for
        each column j, read it from A, update H, write W, then the chopper bookkeeping
        (docs/algorithms.md §4.4.3, §4.6.2).

        Each read touches only its own column of A, H, P, P_ref, W and the input chopper;
        the only coupling between successive reads is the pass counter T (incremented
        after the last column), which is precomputed per read. Equivalent to one call per
        column in order (random chopper draws included).
        """
        J = cols = np.asarray(cols, dtype=np.int64)
        nJ = J.size
        last = J == self.in_size - 1
        if nJ == 1:   # one column (the common case): basic slices, views instead of copies
            T_each = np.array([self.T])
            J = slice(int(J[0]), int(J[0]) + 1)
        else:
            T_each = self.T + np.concatenate([[0], np.cumsum(last)[:-1]])      # T at each read
        v = self.A.read_columns(cols).astype(np.float64)                         # (R, out, nJ)
        sign = self.c_in[:, J].astype(np.float64)[:, None, :] * self.c_out.astype(np.float64)[:, :, None]
        if self.any_dynamic:
            was = self.switched[:, J] & self.dynamic[:, None]                   # (R, nJ)
            self.switched[:, J] = False
            d_dyn, p_new, p_ref = agad_readout(v, self.P[:, :, J], self.P_ref[:, :, J], was, sign, self.mu)
            if self.all_dynamic:
                delta = d_dyn
                self.P[:, :, J], self.P_ref[:, :, J] = p_new, p_ref
            else:
                dyn = self.dynamic[:, None, None]
                delta = np.where(dyn, d_dyn, chopped_readout(v, sign))
                self.P[:, :, J] = np.where(dyn, p_new, self.P[:, :, J])
                self.P_ref[:, :, J] = np.where(dyn, p_ref, self.P_ref[:, :, J])
        else:
            delta = chopped_readout(v, sign)
        R, m = self.n_replicas, self.out_size
        h, n = buffer_step(self.H[:, :, J].reshape(R, m * nJ), delta.reshape(R, m * nJ), lam_h, self.max_steps,
                           self.momentum, self.forget_buffer)
        self.H[:, :, J] = h.reshape(R, m, nJ)
        n = n.reshape(R, m, nJ)
        if self.any_dynamic:
            allowed = ~(self.dynamic & self.warm_up)[:, None] | (T_each[None, :] > self.n_c[:, None])
            n = n * allowed[:, None, :]
        if n.any():
            self.w_writes += column_writes(self.W, cols, n)
        self.n_transfers += nJ
        u = self.rng_chopper.random((nJ, R)).T if self.any_random else None     # one row of draws per read
        flip = chopper_flips(T_each[None, :], self.n_c[:, None], self.in_chop_prob[:, None],
                             self.in_chop_random[:, None], self.dynamic[:, None], u)
        if flip.any():
            self.c_in[:, J] = np.where(flip, -self.c_in[:, J], self.c_in[:, J])
            self.switched[:, J] |= flip
        if last.any():
            if self.any_out_chop:  # only at the end of a chunk (see update)
                u2 = self.rng_chopper.random(self.c_out.shape)
                self.c_out[u2 < self.out_chop_prob[:, None]] *= -1
            self.T += int(last.sum())

    # ------------------------------------------------------------- state
    def weights(self):
        return self.W.get_weights()

    def set_weights(self, w):
        self.W.set_weights(w)

    def counters(self) -> dict:
        return {"samples": self.t, "next_column": self.k, "full_passes": self.T, "transfers": self.n_transfers,
                "w_write_pulses": self.w_writes}

    def state(self):
        a_arr, a_rng = self.A.state()
        w_arr, w_rng = self.W.state()
        arrays = {f"A.{k}": v for k, v in a_arr.items()}
        arrays.update({f"W.{k}": v for k, v in w_arr.items()})
        arrays.update(H=self.H.copy(), c_in=self.c_in.copy(), c_out=self.c_out.copy(), m_x=self.m_x.copy(),
                      m_d=self.m_d.copy(), switched=self.switched.copy())
        if self.any_dynamic:
            arrays.update(P=self.P.copy(), P_ref=self.P_ref.copy())
        info = {"A": a_rng, "W": w_rng, "chopper": generator_state(self.rng_chopper), **self.counters()}
        return arrays, info

    def load_state(self, arrays, info):
        self.A.load_state({k[2:]: v for k, v in arrays.items() if k.startswith("A.")}, info["A"])
        self.W.load_state({k[2:]: v for k, v in arrays.items() if k.startswith("W.")}, info["W"])
        for name in ("H", "c_in", "c_out", "m_x", "m_d", "switched", "P", "P_ref"):
            target = getattr(self, name)
            if target is not None:
                target[...] = arrays[name]
        self.rng_chopper = restore_generator(info["chopper"])
        self.t, self.k, self.T = int(info["samples"]), int(info["next_column"]), int(info["full_passes"])
        self.n_transfers, self.w_writes = int(info["transfers"]), int(info["w_write_pulses"])

    def tiles(self):
        return {"A": self.A, "W": self.W}

    def hidden(self):
        out = dict(H=self.H, c_in=self.c_in, c_out=self.c_out, m_x=self.m_x, m_d=self.m_d)
        if self.any_dynamic:
            out.update(P=self.P, P_ref=self.P_ref)
        return out

    def decay(self):
        for tile in (self.A, self.W):
            tile.decay()
            tile.diffuse()
