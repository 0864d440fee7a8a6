"""AnalogTile: R stacked crossbar arrays of pulsed devices.

Weights are ``(R, out, in)``: R independent replicas (devices, seeds or settings of a
sweep) simulated in one vectorised call. Forward is ``y = W x``, backward ``W^T d``.
The tile applies pulses (:meth:`AnalogTile.apply_pulses`: counts or time-ordered
sequences per device); which pulses realise an update ``-lr d x^T`` (trains,
coincidences) and how they interleave with reads is decided on the algorithm side
(:mod:`analogtrain.engine.algorithms.pulsed_update`).

The stored (read) weight of a device is ``w = g - ref``, g its physical state within
``[w_min_ij, w_max_ij]`` and ``ref`` its reference (0 unless the device config sets
one). With write noise the tile keeps the noise-free ``persistent`` weight and the
visible weight ``persistent + N(0, (write_noise_std dw_min)^2)``, redrawn for each
device whenever it is written.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from analogtrain.config.device import PulsedDevice
from analogtrain.config.io import IOConfig, backward_io, transfer_read_io
from analogtrain.config.update import UpdateConfig
from analogtrain.engine.devices.array import DeviceArray, apply_aggregated, apply_expected, apply_pulses
from analogtrain.engine.mvm import analog_mvm, read_lines
from analogtrain.seeding import generator, generator_state, restore_generator, standard_normal


class AnalogTile:
    """R replica crossbars of shape (out, in) with a device model, I/O and update settings.

    Parameters
    ----------
    devices : one PulsedDevice per replica (or one, repeated ``n_replicas`` times)
    out_size, in_size : array shape
    io : forward I/O (backward uses the same without bound management unless ``io_backward``)
    update : the pulse-train settings of this array's updates (``update_cfg``)
    rng_device : one Generator per replica for the device-to-device draw
    rng_pulses : the Generator of this array's pulse trains
    rng_noise : the Generator of all noise (MVMs, reads, cycle-to-cycle, write noise)
    dtype : float32 (default, as hardware simulators use) or float64
    count_pulses : keep exact per-device up/down pulse counters

    ``update_cfg`` and ``rng_pulses`` are not used by the tile itself: the algorithm side
    (:mod:`analogtrain.engine.algorithms.pulsed_update`) draws the trains of this array
    with them; they live here because they belong to the array (its state saves the stream).
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

    def add_weights(self, delta: np.ndarray) -> None:
        """A direct (digital, exact) weight change ``W <- clip(W + delta)``: no pulses.

        ``delta`` broadcasts to (R, out, in). It acts on the noise-free (persistent)
        weights; the physical states are clipped to each device's bounds and every device
        gets a fresh write-noise draw (the floating-point update, ``pulse_type = "none"``).
        """
        base = self.w_persistent if self.w_persistent is not None else self.w
        base += delta
        ref = self.device.p["ref"]
        np.subtract(self.device.clip_physical(base + ref), ref, out=base)
        if self.w_persistent is not None:
            self._write_noise_all()

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

    # ----------------------------------------------------------------- pulses
    def apply_pulses(self, flat: np.ndarray, counts: np.ndarray, up: np.ndarray, *, distinct: bool = False,
                     mode: str | None = None) -> int:
        """Apply ``counts[k] >= 1`` pulses to device ``flat[k]``, up if ``up[k]`` else down.

        ``mode`` (default: ``update_cfg.pulse_mode``) says how (docs/pulses.md §2.3, §2.5, §2.6):
        ``exact`` pulse by pulse; ``aggregated`` the pulses of each device in closed form
        (one update: ``distinct``; time-ordered sequences run exactly); ``expected`` the
        deterministic expected step of ``counts[k]`` pulses, real counts allowed, nothing
        added to the pulse counters and 0 returned for real counts; there ``flat=None`` means
        every device (counts and up of all of them, in flat order: a dense step, no gathers).

        flat : (K,) flat indices into (R, out, in); counts : (K,) positive integers;
        up : (K,) bool. Entries are in time order and a device may appear several times
        (the pulses of successive samples of a mini-batch): each device receives its
        pulses one by one in that order (:func:`~analogtrain.engine.devices.array.apply_pulses`).
        ``distinct=True`` declares one entry per device (a single update, a row or column
        write); it fixes the order of the noise draws (see that function), not the physics.

        The pulses act on the noise-free (persistent) weights; with pulse counting they are
        added to the up/down counters; with write noise every touched device then gets a
        fresh draw (in entry order if ``distinct``, else by flat index). Returns the number
        of pulses.
        """
        if flat is None:   # a dense expected step: counts and up of every device, in flat order
            if mode != "expected":
                raise ValueError("apply_pulses: flat=None (every device) is for mode 'expected' only")
        elif flat.size == 0:
            return 0
        base = self.w_persistent if self.w_persistent is not None else self.w
        wf = base.reshape(-1)
        mode = mode or self.update_cfg.pulse_mode
        integer = counts.dtype.kind in "iu"
        if mode == "expected":
            apply_expected(self.device, wf, flat, counts, up)
        elif mode == "aggregated" and distinct:
            apply_aggregated(self.device, wf, flat, counts, up, self.rng_noise)
        else:
            apply_pulses(self.device, wf, flat, counts, up, self.rng_noise, distinct=distinct)
        if self.count_pulses and integer and mode != "expected":
            down = ~up
            if distinct:
                self.up_count.reshape(-1)[flat[up]] += counts[up]
                self.down_count.reshape(-1)[flat[down]] += counts[down]
            else:
                np.add.at(self.up_count.reshape(-1), flat[up], counts[up])
                np.add.at(self.down_count.reshape(-1), flat[down], counts[down])
        if self.w_persistent is not None:
            touched = np.flatnonzero(counts) if flat is None else flat if distinct else np.unique(flat)
            wn = self.device.c["write_noise"].astype(self.dtype)[touched // self.device.plane]
            self.w.reshape(-1)[touched] = wf[touched] + wn * standard_normal(self.rng_noise, touched.size, self.dtype)
        return int(counts.sum()) if integer else 0

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
