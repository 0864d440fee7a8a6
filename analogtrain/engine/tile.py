"""AnalogTile: R stacked crossbar arrays of pulsed devices.

Weights are ``(R, out, in)``: R independent replicas (devices, seeds or settings of a
sweep) simulated in one vectorised call. Forward is ``y = W x``, backward ``W^T d``,
the update the outer product ``-lr d x^T`` realised as stochastic pulse coincidences.

The stored (read) weight of a device is ``w = g - ref``, g its physical state within
``[w_min_ij, w_max_ij]`` and ``ref`` its reference (0 unless the device config sets
one). With write noise the tile keeps the noise-free ``persistent`` weight and the
visible weight ``persistent + N(0, (write_noise_std dw_min)^2)``, redrawn for each
device whenever it is written.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from analogtrain.engine import pulses as P
from analogtrain.config.device import PulsedDevice
from analogtrain.config.io import IOConfig, backward_io, transfer_read_io
from analogtrain.config.update import UpdateConfig
from analogtrain.engine.devices.array import DeviceArray, apply_pulse_sequences, apply_pulses
from analogtrain.engine.mvm import analog_mvm, read_lines
from analogtrain.seeding import generator, generator_state, restore_generator, standard_normal


class AnalogTile:
    """R replica crossbars of shape (out, in) with a device model, I/O and update settings.

    Parameters
    ----------
    devices : one PulsedDevice per replica (or one, repeated ``n_replicas`` times)
    out_size, in_size : array shape
    io : forward I/O (backward uses the same without bound management unless ``io_backward``)
    update : pulse-train settings of :meth:`update`
    rng_device : one Generator per replica for the device-to-device draw
    rng_pulses, rng_noise : Generators of the pulse trains and of all noise
    dtype : float32 (default, as hardware simulators use) or float64
    count_pulses : keep exact per-device up/down pulse counters
    """

    def __init__(self, devices: PulsedDevice | Sequence[PulsedDevice], out_size: int, in_size: int, *,
                 n_replicas: int | None = None, io: IOConfig | None = None, io_backward: IOConfig | None = None,
                 io_read: IOConfig | None = None, update: UpdateConfig | None = None,
                 rng_device: Sequence[np.random.Generator] | None = None,
                 rng_pulses: np.random.Generator | None = None, rng_noise: np.random.Generator | None = None,
                 dtype=np.float32, count_pulses: bool = False):
        if isinstance(devices, PulsedDevice):
            devices = [devices] * (n_replicas or 1)
        devices = list(devices)
        R = len(devices)
        self.out_size, self.in_size = int(out_size), int(in_size)
        if rng_device is None:
            rng_device = [generator(0, "device", r) for r in range(R)]
        self.device = DeviceArray(devices, (self.out_size, self.in_size), rng_device, dtype=dtype)
        self.dtype = self.device.dtype
        self.io = io if io is not None else IOConfig()
        self.io_backward = io_backward if io_backward is not None else backward_io(self.io)
        self.io_read = io_read if io_read is not None else transfer_read_io(self.io)
        self.update_cfg = update if update is not None else UpdateConfig()
        self.rng_pulses = rng_pulses if rng_pulses is not None else generator(0, "pulses")
        self.rng_noise = rng_noise if rng_noise is not None else generator(0, "noise")
        shape = (R, self.out_size, self.in_size)
        self.w = np.zeros(shape, dtype=self.dtype)
        self.w_persistent = np.zeros(shape, dtype=self.dtype) if self.device.has_write_noise else None
        self.count_pulses = count_pulses
        self.up_count = np.zeros(shape, dtype=np.int64) if count_pulses else None
        self.down_count = np.zeros(shape, dtype=np.int64) if count_pulses else None
        self.last_pulses = 0
        self._all_rows = np.arange(self.out_size)
        self._all_cols = np.arange(self.in_size)
        self.set_weights(np.zeros(shape, dtype=self.dtype))

    # ---------------------------------------------------------------- weights
    @property
    def n_replicas(self) -> int:
        return self.w.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.w.shape

    def get_weights(self) -> np.ndarray:
        """(R, out, in) copy of the visible (read) weights."""
        return self.w.copy()

    def set_weights(self, weights: np.ndarray) -> None:
        """Program the weights: each device's physical state becomes ``clip(w + ref)``.

        ``weights`` broadcasts to (R, out, in). With write noise the visible weights are
        the programmed (persistent) ones plus a fresh write-noise draw.
        """
        w = np.broadcast_to(np.asarray(weights, dtype=self.dtype), self.w.shape)
        ref = self.device.p["ref"]
        g = self.device.clip_physical(w + ref)
        target = self.w_persistent if self.w_persistent is not None else self.w
        np.subtract(g, ref, out=target)
        if self.w_persistent is not None:
            self._write_noise_all()

    def _write_noise_all(self) -> None:
        wn = self.device.c["write_noise"].astype(self.dtype)[:, None, None]
        noise = standard_normal(self.rng_noise, self.w.size, self.dtype).reshape(self.w.shape)
        np.add(self.w_persistent, wn * noise, out=self.w)

    def physical(self) -> np.ndarray:
        """(R, out, in) physical device states g = persistent weight + reference."""
        base = self.w_persistent if self.w_persistent is not None else self.w
        return base + self.device.p["ref"]

    # ------------------------------------------------------------------- MVMs
    def forward(self, x: np.ndarray, io: IOConfig | None = None) -> np.ndarray:
        """y = W x through the forward I/O. x: (R, B, in) or (R, in) -> (R, B, out) or (R, out)."""
        return self._mvm(x, io or self.io, transpose=False, bm=True)

    def backward(self, d: np.ndarray, io: IOConfig | None = None) -> np.ndarray:
        """z = W^T d through the backward I/O (no bound management). d: (R, B, out) or (R, out)."""
        return self._mvm(d, io or self.io_backward, transpose=True, bm=False)

    def _mvm(self, v, io, transpose, bm):
        v = np.asarray(v, dtype=self.dtype)
        single = v.ndim == 2
        if single:
            v = v[:, None, :]
        y = analog_mvm(self.w, v, io, self.rng_noise, transpose=transpose, bound_management=bm)
        return y[:, 0, :] if single else y

    def read_column(self, j: int) -> np.ndarray:
        """(R, out): column j read with a one-hot input through the transfer-read I/O (no NM/BM)."""
        return read_lines(self.w, j, self.io_read, self.rng_noise, rows=False)

    def read_columns(self, cols) -> np.ndarray:
        """(R, out, len(cols)): several one-hot column reads (one MVM each), in one call."""
        return read_lines(self.w, cols, self.io_read, self.rng_noise, rows=False)

    def read_row(self, i: int) -> np.ndarray:
        """(R, in): row i read with a one-hot input on the output side (backward direction)."""
        return read_lines(self.w, i, self.io_read, self.rng_noise, rows=True)

    # ---------------------------------------------------------------- updates
    def update(self, x: np.ndarray, d: np.ndarray, lr, update: UpdateConfig | None = None) -> int:
        """One pulsed outer-product update ``W <- W - lr d x^T`` per replica (docs/pulses.md §2).

        x : (R, in), d : (R, out), lr : scalar or (R,) learning rate (> 0).
        Returns the number of device pulses applied (all replicas).
        """
        cfg = update or self.update_cfg
        x = np.asarray(x, dtype=self.dtype)
        d = np.asarray(d, dtype=self.dtype)
        if cfg.pulse_type == "none":
            return self._float_update(x, d, lr)
        plan = P.pulse_probabilities(x, d, lr, self.device.dw_min(), cfg)
        if cfg.pulse_type in ("stochastic_compressed", "stochastic"):
            tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, self.rng_pulses)
            rows, cols = self._active_lines(td, tx)
            if rows.size == 0 or cols.size == 0:
                self.last_pulses = 0
                return 0
            counts = P.coincidences(td[:, rows], tx[:, cols])
        else:
            rows = np.arange(self.out_size)
            cols = np.arange(self.in_size)
            if cfg.pulse_type == "mean_count":
                counts = P.mean_count(plan)
            else:
                counts = P.deterministic_implicit(plan, cfg, self.rng_pulses)
        return self._apply_counts(counts, rows, cols, x, d)

    def update_batch(self, x: np.ndarray, d: np.ndarray, lr, update: UpdateConfig | None = None,
                     x_sign: np.ndarray | None = None, d_sign: np.ndarray | None = None,
                     reads: list[tuple[int, int]] | None = None, on_read=None,
                     max_block: int = 1 << 24) -> int:
        """The per-sample pulsed updates of a mini-batch, with exact sequential semantics.

        Sample b applies ``W <- W - lr (d_b * d_sign)(x_b * x_sign)^T`` in order b = 0..B-1.
        ``reads`` lists (b, j) in time order: column j is read right after sample b. A column
        may be read several times; the reads are processed in groups (group q holds the q-th
        read of every column, and all of group q precede all of group q + 1 in time, as the
        column schedule is periodic). ``on_read(group)`` is called once per group, when every
        column in it holds exactly the pulses of the samples up to its read; it may flip
        ``x_sign[:, j]`` in place (a chopper), which then applies to the later pulses of j. x : (R, B,
        in), d : (R, B, out), lr : scalar or (R,).

        Pulse probabilities, trains and coincidences of all samples are computed at once
        (they do not depend on the weights). Every device then receives its pulses in time
        order (:func:`apply_pulse_sequences`): first those from samples up to the read of
        its column, then the reads, then the rest, with the signs valid at that time.
        Returns the number of device pulses.
        """
        cfg = update or self.update_cfg
        x = np.asarray(x, dtype=self.dtype)
        d = np.asarray(d, dtype=self.dtype)
        R, B, n = x.shape
        m = d.shape[2]
        reads = list(reads or [])
        if cfg.pulse_type not in ("stochastic_compressed", "stochastic", "deterministic_implicit", "mean_count"):
            return self._update_samplewise(x, d, lr, cfg, x_sign, d_sign, reads, on_read)
        # blocks of samples small enough for the (R, S, m, n) count array
        step = max(1, min(B, max_block // max(1, R * m * n)))
        if step < B:
            total = 0
            for s0 in range(0, B, step):
                sub = [(b - s0, j) for b, j in reads if s0 <= b < s0 + step]
                total += self.update_batch(x[:, s0:s0 + step], d[:, s0:s0 + step], lr, cfg, x_sign, d_sign,
                                           sub, on_read, max_block)
            return total
        lr_r = np.repeat(np.broadcast_to(np.asarray(lr, dtype=np.float64), (R,)), B)
        plan = P.pulse_probabilities(x.reshape(R * B, n), d.reshape(R * B, m), lr_r,
                                     np.repeat(self.device.dw_min(), B), cfg)
        if cfg.pulse_type in ("stochastic_compressed", "stochastic"):
            tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, self.rng_pulses)
            rows, cols = self._active_lines(td, tx)          # lines that pulse in some sample
            if B == 1 or self._samplewise_cheaper(tx.reshape(R, B, n), td.reshape(R, B, m), rows.size, cols.size):
                return self._apply_trains_samplewise(tx.reshape(R, B, n), td.reshape(R, B, m), x, d, x_sign,
                                                     d_sign, reads, on_read)
            counts = P.coincidences(td[:, rows], tx[:, cols])  # (R B, |rows|, |cols|)
        else:
            rows, cols = self._all_rows, self._all_cols
            counts = P.mean_count(plan) if cfg.pulse_type == "mean_count" else \
                P.deterministic_implicit(plan, cfg, self.rng_pulses)
        mm, nn = rows.size, cols.size
        counts = counts.reshape(R, B, mm, nn)
        pos = np.flatnonzero(counts != 0)
        cnt = counts.reshape(-1)[pos]
        r, rem = np.divmod(pos, B * mm * nn)
        b, rem = np.divmod(rem, mm * nn)
        i, j = np.divmod(rem, nn)
        i, j = rows[i], cols[j]
        flat = (r * m + i) * n + j
        groups: list[list[tuple[int, int]]] = []
        seen: dict[int, int] = {}
        for rb, rj in reads:                                          # group q: the q-th read of each column
            q = seen.get(rj, 0)
            seen[rj] = q + 1
            if q == len(groups):
                groups.append([])
            groups[q].append((rb, rj))
        total = int(cnt.sum())
        if not groups:
            self._pulse_seq(flat, cnt, self._directions(x, d, r, b, i, j, x_sign, d_sign))
        else:
            read_time = np.full((len(groups), n), np.iinfo(np.int64).max, dtype=np.int64)
            for q, grp in enumerate(groups):
                for rb, rj in grp:
                    read_time[q, rj] = rb
            phase = (read_time[:, j] < b).sum(axis=0)                # reads of column j before sample b
            for q in range(len(groups) + 1):
                sel = np.flatnonzero(phase == q)
                if sel.size:
                    self._pulse_seq(flat[sel], cnt[sel], self._directions(x, d, r[sel], b[sel], i[sel], j[sel],
                                                                          x_sign, d_sign))
                if q < len(groups) and on_read is not None:
                    on_read(groups[q])
        self.last_pulses = total
        return total

    #: cost model of the two exact update paths, in array elements (measured on fc3/MNIST and
    #: LeNet: a batched element costs about 2.5x a per-sample one; a per-sample step has a
    #: fixed cost of about 60k elements, some 50 NumPy calls)
    _SAMPLE_OVERHEAD = 60_000
    _BATCH_ELEMENT = 2.5
    _BATCH_OVERHEAD = 60_000

    def _samplewise_cheaper(self, tx, td, n_rows, n_cols) -> bool:
        """Sparse inputs (e.g. MNIST pixels): each sample pulses few lines, so the per-sample
        active blocks are much smaller than the union over the batch."""
        if tx.shape[0] != 1:
            return False
        B = tx.shape[1]
        per = int(np.dot(np.count_nonzero(td[0], axis=1), np.count_nonzero(tx[0], axis=1)))
        return per + B * self._SAMPLE_OVERHEAD < self._BATCH_ELEMENT * B * n_rows * n_cols + self._BATCH_OVERHEAD

    def _apply_trains_samplewise(self, tx, td, x, d, x_sign, d_sign, reads, on_read) -> int:
        """Apply precomputed trains sample by sample (pulses of sample b, then its read)."""
        read_at = dict(reads)
        total = 0
        for b in range(tx.shape[1]):
            rows, cols = self._active_lines(td[:, b], tx[:, b])
            if rows.size and cols.size:
                counts = P.coincidences(td[:, b][:, rows], tx[:, b][:, cols])
                xb = x[:, b] * x_sign if x_sign is not None else x[:, b]
                db = d[:, b] * d_sign if d_sign is not None else d[:, b]
                total += self._apply_counts(counts, rows, cols, xb, db)
            if on_read is not None and b in read_at:
                on_read([(b, read_at[b])])
        self.last_pulses = total
        return total

    @staticmethod
    def _directions(x, d, r, b, i, j, x_sign, d_sign) -> np.ndarray:
        """up (True) where sign(x_j x_sign_j) sign(d_i d_sign_i) < 0 (an up pulse)."""
        xneg = x[r, b, j] < 0
        dneg = d[r, b, i] < 0
        if x_sign is not None:
            xneg = xneg != (x_sign[r, j] < 0)
        if d_sign is not None:
            dneg = dneg != (d_sign[r, i] < 0)
        return xneg != dneg

    def _pulse_seq(self, flat, cnt, up) -> None:
        if flat.size == 0:
            return
        base = self.w_persistent if self.w_persistent is not None else self.w
        wf = base.reshape(-1)
        apply_pulse_sequences(self.device, wf, flat, cnt, up, self.rng_noise)
        if self.count_pulses:
            np.add.at(self.up_count.reshape(-1), flat[up], cnt[up])
            np.add.at(self.down_count.reshape(-1), flat[~up], cnt[~up])
        if self.w_persistent is not None:
            touched = np.unique(flat)
            rep = touched // self.device.plane
            wn = self.device.c["write_noise"].astype(self.dtype)[rep]
            self.w.reshape(-1)[touched] = wf[touched] + wn * standard_normal(self.rng_noise, touched.size, self.dtype)

    def _update_samplewise(self, x, d, lr, cfg, x_sign, d_sign, reads, on_read) -> int:
        total = 0
        read_at = dict(reads)
        for b in range(x.shape[1]):
            xb = x[:, b] * x_sign if x_sign is not None else x[:, b]
            db = d[:, b] * d_sign if d_sign is not None else d[:, b]
            total += self.update(xb, db, lr, cfg)
            if on_read is not None and b in read_at:
                on_read([(b, read_at[b])])
        return total

    def _active_lines(self, td, tx):
        """Rows and columns with at least one pulse in some replica; all of them when the
        active block covers most of the array (the full block needs no index arithmetic)."""
        rows = np.flatnonzero(td.any(axis=0))
        cols = np.flatnonzero(tx.any(axis=0))
        if rows.size * cols.size > 0.5 * self.out_size * self.in_size:
            return self._all_rows, self._all_cols
        return rows, cols

    def _apply_counts(self, counts, rows, cols, x, d) -> int:
        """Apply coincidence counts (R, len(rows), len(cols)) with signs from x and d."""
        R, m, n = counts.shape
        pos = np.flatnonzero(counts != 0)
        if pos.size == 0:
            self.last_pulses = 0
            return 0
        cnt = counts.reshape(-1)[pos]
        full = m == self.out_size and n == self.in_size
        xneg = x < 0 if full else (x < 0)[:, cols]
        dneg = d < 0 if full else (d < 0)[:, rows]
        # sign(x_j) sign(d_i) > 0 -> down pulse; < 0 -> up pulse
        up = (xneg[:, None, :] != dneg[:, :, None]).reshape(-1)[pos]
        if full:
            flat = pos
        elif R == 1:
            i, j = np.divmod(pos, n)
            flat = rows[i] * self.in_size + cols[j]
        else:
            r, rem = np.divmod(pos, m * n)
            i, j = np.divmod(rem, n)
            flat = (r * self.out_size + rows[i]) * self.in_size + cols[j]
        self._pulse(flat, cnt, up)
        total = int(cnt.sum())
        self.last_pulses = total
        return total

    def _pulse(self, flat: np.ndarray, cnt: np.ndarray, up: np.ndarray) -> None:
        """Apply cnt[k] pulses in direction up[k] to devices flat[k] (unique flat indices)."""
        base = self.w_persistent if self.w_persistent is not None else self.w
        wf = base.reshape(-1)
        apply_pulses(self.device, wf, flat, cnt, up, self.rng_noise)
        if self.count_pulses:
            self.up_count.reshape(-1)[flat[up]] += cnt[up]
            self.down_count.reshape(-1)[flat[~up]] += cnt[~up]
        if self.w_persistent is not None:
            rep = flat // self.device.plane
            wn = self.device.c["write_noise"].astype(self.dtype)[rep]
            self.w.reshape(-1)[flat] = wf[flat] + wn * standard_normal(self.rng_noise, flat.size, self.dtype)

    def update_rows(self, rows: np.ndarray, x_rows: np.ndarray, lr, update: UpdateConfig | None = None) -> int:
        """Independent single-row pulsed updates: ``W[r, rows[k], :] -= lr[r] x_rows[r, k, :]``.

        Each (replica, row) pair is one outer-product update with d = e_row (value +1) and
        x = x_rows[r, k], with its own update/bit-length management: the write step of
        mixed precision (docs/algorithms.md §4.2). x_rows : (R, K, in), rows : (K,) distinct row indices.
        """
        cfg = update or self.update_cfg
        x_rows = np.asarray(x_rows, dtype=self.dtype)
        R, K, n = x_rows.shape
        xr = x_rows.reshape(R * K, n)
        lr_r = np.repeat(np.broadcast_to(np.asarray(lr, dtype=np.float64), (R,)), K)
        dw = np.repeat(self.device.dw_min(), K)
        plan = P.pulse_probabilities(xr, np.ones((R * K, 1), dtype=self.dtype), lr_r, dw, cfg)
        tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, self.rng_pulses)
        counts = P.coincidences(td, tx).reshape(R, K, n)
        pos = np.flatnonzero(counts != 0)
        if pos.size == 0:
            self.last_pulses = 0
            return 0
        cnt = counts.reshape(-1)[pos]
        r, rem = np.divmod(pos, K * n)
        k, j = np.divmod(rem, n)
        flat = (r * self.out_size + np.asarray(rows)[k]) * self.in_size + j
        up = xr.reshape(-1)[pos] < 0          # d = +1: sign(x) > 0 is a down pulse
        self._pulse(flat, cnt, up)
        self.last_pulses = int(cnt.sum())
        return self.last_pulses

    def pulse_columns(self, cols, n: np.ndarray) -> int:
        """Apply |n[r, i, k]| pulses (up where n > 0) to device (r, i, cols[k]); cols distinct.
        n : (R, out, len(cols)) signed integers (the transfer writes of several columns)."""
        r, i, k = np.nonzero(n)
        if r.size == 0:
            return 0
        vals = n[r, i, k]
        flat = (r * self.out_size + i) * self.in_size + np.asarray(cols)[k]
        cnt = np.abs(vals).astype(np.int64)
        self._pulse(flat, cnt, vals > 0)
        return int(cnt.sum())

    def pulse_column(self, j: int, n: np.ndarray) -> int:
        """Apply |n[r, i]| pulses to device (r, i, j), up where n > 0, down where n < 0.

        n : (R, out) signed integers. This is the transfer write of the TT family: with a
        one-hot x = e_j and d = -n, a transfer update of bit length 1 and probability 1
        gives exactly |n_i| (<= 1) coincidences of sign -sign(n_i), i.e. a step of
        W[i, j] towards sign(n_i). Returns the number of pulses.
        """
        n = np.asarray(n)
        r, i = np.nonzero(n)
        if r.size == 0:
            return 0
        vals = n[r, i]
        flat = (r * self.out_size + i) * self.in_size + int(j)
        cnt = np.abs(vals).astype(np.int64)
        self._pulse(flat, cnt, vals > 0)
        return int(cnt.sum())

    def pulse_devices(self, flat: np.ndarray, n: np.ndarray) -> int:
        """Apply |n[k]| pulses (up where n > 0) to devices ``flat[k]`` (unique flat indices)."""
        n = np.asarray(n)
        keep = n != 0
        flat, n = np.asarray(flat)[keep], n[keep]
        if flat.size == 0:
            return 0
        cnt = np.abs(n).astype(np.int64)
        self._pulse(flat, cnt, n > 0)
        return int(cnt.sum())

    def _float_update(self, x, d, lr) -> int:
        lr = np.broadcast_to(np.asarray(lr, dtype=self.dtype), (self.n_replicas,))
        base = self.w_persistent if self.w_persistent is not None else self.w
        base -= lr[:, None, None] * (d[:, :, None] * x[:, None, :])
        ref = self.device.p["ref"]
        np.subtract(self.device.clip_physical(base + ref), ref, out=base)
        if self.w_persistent is not None:
            self._write_noise_all()
        self.last_pulses = 0
        return 0

    # ------------------------------------------------------- slow processes
    def decay(self) -> None:
        """One decay step (per mini-batch, if the device has a lifetime):
        ``g <- (g - reset_bias) decay_scale + reset_bias``, clipped to the bounds."""
        if not self.device.has_decay:
            return
        p = self.device.p
        base = self.w_persistent if self.w_persistent is not None else self.w
        g = base + p["ref"]
        scale = np.where(p["decay_scale"] > 0, p["decay_scale"], 1.0).astype(self.dtype)
        g = (g - p["reset_bias"]) * scale + p["reset_bias"]
        np.subtract(self.device.clip_physical(g), p["ref"], out=base)
        if self.w_persistent is not None:
            self._write_noise_all()

    def diffuse(self) -> None:
        """One diffusion step: ``g += diffusion_rate xi``, clipped to the bounds."""
        if not self.device.has_diffusion:
            return
        p = self.device.p
        base = self.w_persistent if self.w_persistent is not None else self.w
        g = base + p["ref"] + p["diffusion_rate"] * standard_normal(self.rng_noise, base.size, self.dtype).reshape(base.shape)
        np.subtract(self.device.clip_physical(g), p["ref"], out=base)
        if self.w_persistent is not None:
            self._write_noise_all()

    # ------------------------------------------------------------ state I/O
    def arrays(self) -> dict[str, np.ndarray]:
        """Every internal array, by stable name (for ``arrays.npz`` and checkpoints)."""
        out = {"weights": self.w, "reference": self.device.p["ref"],
               "symmetry_point": self.device.p["sp"], "w_max_bound": self.device.p["w_max"],
               "w_min_bound": self.device.p["w_min"], "scale_up": self.device.p["scale_up"],
               "scale_down": self.device.p["scale_down"]}
        if self.w_persistent is not None:
            out["persistent_weights"] = self.w_persistent
        if self.count_pulses:
            out["up_pulses"] = self.up_count
            out["down_pulses"] = self.down_count
        return out

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """A snapshot of the mutable state: (copied arrays, JSON-able rng states). Device
        parameters are not included: they are rebuilt from the config and seed."""
        arrs = {"w": self.w.copy()}
        if self.w_persistent is not None:
            arrs["w_persistent"] = self.w_persistent.copy()
        if self.count_pulses:
            arrs["up_count"] = self.up_count.copy()
            arrs["down_count"] = self.down_count.copy()
        return arrs, {"pulses": generator_state(self.rng_pulses), "noise": generator_state(self.rng_noise)}

    def load_state(self, arrays: dict[str, np.ndarray], rng_states: dict) -> None:
        """Restore :meth:`state` output (shapes and dtypes must match)."""
        for name, target in (("w", self.w), ("w_persistent", self.w_persistent),
                             ("up_count", self.up_count), ("down_count", self.down_count)):
            if target is None:
                continue
            src = arrays[name]
            if src.shape != target.shape:
                raise ValueError(f"state array {name}: shape {src.shape}, expected {target.shape}")
            target[...] = src
        self.rng_pulses = restore_generator(rng_states["pulses"])
        self.rng_noise = restore_generator(rng_states["noise"])
