"""Mixed precision (MP, docs/algorithms.md §4.2): digital gradient accumulation chi, thresholded writes to W."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from analogtrain.config.algorithm import MixedPrecisionConfig
from analogtrain.config.update import UpdateConfig
from analogtrain.seeding import generator_state, restore_generator
from analogtrain.engine.tile import AnalogTile
from analogtrain.engine.algorithms.base import SingleTileAlgorithm, as_replica_lr, batched
from analogtrain.engine.algorithms.pulsed_update import row_writes


def quantize_bins(v: np.ndarray, n_bins: int, stochastic: bool, rng: np.random.Generator) -> np.ndarray:
    """Quantise each row of v (R, n) to ``n_bins // 2`` levels per sign of width ``max|v| / (n_bins // 2)``
    (stochastic rounding optional), clipped to +-half bins. ``n_bins == 0``: unchanged."""
    if n_bins <= 0:
        return v
    half = n_bins // 2
    width = np.abs(v).max(axis=-1, keepdims=True) / half
    width = np.where(width > 0, width, 1.0)
    q = v / width
    q = np.floor(q + rng.random(q.shape)) if stochastic else np.rint(q)
    return (np.clip(q, -half, half) * width).astype(v.dtype)


class MixedPrecision(SingleTileAlgorithm):
    """W on an analog tile, gradient accumulated digitally in chi (R, out, in).

    Per sample: ``chi += lr d x^T`` (O(N^2) digital work). Every ``transfer_every``
    samples, for the next ``n_rows_per_transfer`` rows i (all by default):
    ``n = trunc(chi[i] / eps)``, ``chi[i] -= n eps``, and row i of W receives a pulsed
    update with x = n, d = e_i, learning rate ``eps transfer_lr`` (UM and UBLM on): on
    average ``W[i, j] -= eps transfer_lr n_j``. Conservation: chi + eps * (requested
    counts) equals the accumulated ``lr d x^T`` exactly.
    """

    name = "mp"
    #: config fields that must be equal for all replicas of one stack
    STACK_KEYS = ("transfer_every", "n_rows_per_transfer", "n_x_bins", "n_d_bins", "stoc_round_x", "stoc_round_d",
                  "desired_bl")

    def __init__(self, tile: AnalogTile, cfgs: Sequence[MixedPrecisionConfig], rng_quant: np.random.Generator):
        super().__init__(tile)
        cfgs = self.stack_configs(cfgs)
        self.cfg = cfgs[0]
        gran = np.array([c.granularity for c in cfgs], dtype=np.float64)
        self.eps = np.where(gran > 0, gran, tile.device.dw_min())
        self.transfer_lr = np.array([c.transfer_lr for c in cfgs], dtype=np.float64)
        self.chi = np.zeros(tile.shape, dtype=np.float64)
        self.requested = np.zeros(tile.shape, dtype=np.int64)   # sum of n handed to W (for conservation)
        self.t = 0
        self.row = 0
        self.rng_quant = rng_quant
        self.write_update = UpdateConfig(desired_bl=self.cfg.desired_bl, update_management=True,
                                         update_bl_management=True, pulse_mode=tile.update_cfg.pulse_mode)

    def update(self, x, d, lr):
        x, d = batched(x), batched(d)
        lr = as_replica_lr(lr, self.n_replicas)
        for b in range(x.shape[1]):
            self.step(x[:, b], d[:, b], lr)

    def step(self, x, d, lr):
        c = self.cfg
        xq = quantize_bins(np.asarray(x, np.float64), c.n_x_bins, c.stoc_round_x, self.rng_quant)
        dq = quantize_bins(np.asarray(d, np.float64), c.n_d_bins, c.stoc_round_d, self.rng_quant)
        self.chi += lr[:, None, None] * (dq[:, :, None] * xq[:, None, :])
        self.t += 1
        if self.t % c.transfer_every == 0:
            self.transfer()

    def transfer(self):
        n_rows = self.out_size if self.cfg.n_rows_per_transfer < 0 else min(self.cfg.n_rows_per_transfer,
                                                                              self.out_size)
        rows = (self.row + np.arange(n_rows)) % self.out_size
        self.row = int((self.row + n_rows) % self.out_size)
        eps = self.eps[:, None, None]
        n = np.trunc(self.chi[:, rows, :] / eps)
        self.chi[:, rows, :] -= n * eps
        self.requested[:, rows, :] += n.astype(np.int64)
        if np.any(n != 0):
            row_writes(self.tile, rows, n, self.eps * self.transfer_lr, self.write_update)

    def hidden(self):
        return {"chi": self.chi, "requested_counts": self.requested}

    def state(self):
        arrs, rng = self.tile.state()
        arrays = {f"W.{k}": v for k, v in arrs.items()}
        arrays.update(chi=self.chi.copy(), requested=self.requested.copy())
        return arrays, {"W": rng, "t": self.t, "row": self.row, "quant": generator_state(self.rng_quant)}

    def load_state(self, arrays, info):
        self.tile.load_state({k[2:]: v for k, v in arrays.items() if k.startswith("W.")}, info["W"])
        self.chi[...] = arrays["chi"]
        self.requested[...] = arrays["requested"]
        self.t, self.row = int(info["t"]), int(info["row"])
        self.rng_quant = restore_generator(info["quant"])
