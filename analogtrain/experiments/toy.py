"""The constant-gradient toy of the paper's Fig. 3.

A 5x5 layer receives a constant gradient ``g = d x^T`` (mean +grad on every entry, so the
correct weights move steadily *down*) plus zero-mean noise: x = 1 and d_i = grad + xi_i
with xi ~ N(0, noise^2) drawn per update. (With a noise-free constant gradient every A
pulse goes the same way, A simply saturates at its bound and no reference offset smaller
than A's range can flip the sign of its read; the noise lets A settle where drift and the
soft-bounds pull towards the symmetry point balance, as in real training.) The arrays are soft-bounds devices with
step delta = 0.05 (40 states); A's reference is either at each device's symmetry point
(no offset) or 0.8 below it ("reference offset r = SP - 0.8", so A reads +0.8 too high
at its SP, pushing W the wrong way). Every ``record_every`` (25) updates the mean read of
A and the mean of W are recorded for TTv2, c-TTv2 and AGAD, with and without offset
(six replicas, one stacked simulation).

Device spreads (the caption's value is cut off in the source): 0.1 for the bound,
step and asymmetry device-to-device spreads and for the cycle-to-cycle noise. The
transfer settings are aihwkit ``build_config`` values (fast_lr 0.1, update BL 5,
chopper probability 0.1) with the transfer scaled so that a W pulse needs about ten
reads of a fully driven A column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analogtrain.engine.algorithms import build_stack
from analogtrain.config.algorithm import TRANSFER_BUILD_CONFIG
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.loading import resolve_device
from analogtrain.seeding import generator

ALGOS = ("ttv2", "c-ttv2", "agad")


@dataclass
class ToyResult:
    labels: list            # (R,) "ttv2", "ttv2+offset", ...
    steps: np.ndarray       # (T,)
    w_mean: np.ndarray      # (R, T) mean of W
    a_mean: np.ndarray      # (R, T) mean read of A (stored value, i.e. relative to its reference)
    final_w: np.ndarray     # (R,)
    expected_direction: int  # -1: the correct W decreases


def run_toy(steps: int = 3000, record_every: int = 25, offset: float = -0.8, grad: float = 0.2,
            noise: float = 1.0, lr: float = 0.02, seed: int = 0, preset: str | None = "softbounds", values: dict | None = None,
            sets: list | None = None, algorithms=ALGOS) -> ToyResult:
    if steps < record_every:
        from analogtrain.errors import ConfigError

        raise ConfigError(f"--steps: the constant-gradient task records every {record_every} updates; "
                          f"must be >= {record_every} (got {steps})")
    base = dict(values or {})
    layer = {"dw_min": 0.05, "dw_min_dtod": 0.1, "up_down_dtod": 0.1, "w_max_dtod": 0.1, "w_min_dtod": 0.1,
             "dw_min_std": 0.1}
    names, labels, dev_a, dev_w = [], [], [], []
    for alg in algorithms:
        for off in (0.0, offset):
            extra = dict(layer)
            extra["A.reference_mean"] = off
            dev_a.append(resolve_device(preset=preset, file_values=base, sets=list(sets or []), array="A",
                                        allow_scopes=True, extra_layers=[extra]))
            dev_w.append(resolve_device(preset=preset, file_values=base, sets=list(sets or []), array="W",
                                        allow_scopes=True, extra_layers=[layer]))
            names.append(alg)
            labels.append(alg if off == 0 else f"{alg}+offset")
    cfgs = [TRANSFER_BUILD_CONFIG[n] for n in names]
    R = len(names)
    alg = build_stack(names, cfgs, dev_w, dev_a, 5, 5, io=IO_PRESETS["preset"], seed=seed,
                      replica_seeds=[seed] * R, stack_id=0, dtype=np.float64)
    x = np.ones((R, 5))
    rng = generator(seed, "data")
    n_rec = steps // record_every
    w_mean = np.empty((R, n_rec))
    a_mean = np.empty((R, n_rec))
    for t in range(steps):
        d = np.broadcast_to(grad + noise * rng.standard_normal(5), (R, 5))
        alg.update(x, d, lr)
        if (t + 1) % record_every == 0:
            k = (t + 1) // record_every - 1
            w_mean[:, k] = alg.W.w.reshape(R, -1).mean(1)
            a_mean[:, k] = alg.A.w.reshape(R, -1).mean(1)
    return ToyResult(labels=labels, steps=np.arange(1, n_rec + 1) * record_every, w_mean=w_mean, a_mean=a_mean,
                     final_w=w_mean[:, -1].copy(), expected_direction=-1)
