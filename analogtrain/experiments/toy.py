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

import numpy as np

from analogtrain.config.io import IO_PRESETS
from analogtrain.config.toy import TOY_DEVICE, ToyConfig
from analogtrain.engine.algorithms import algorithm_spec, build_stack
from analogtrain.results.toy import ToyResult
from analogtrain.seeding import generator


def run(cfg: ToyConfig) -> ToyResult:
    """Run the toy: one stack of 2 x len(algorithms) replicas (each algorithm without and with
    the reference offset), 5x5, float64."""
    names, labels, dev_a, dev_w = [], [], [], []
    for alg in cfg.algorithm:
        for off in (0.0, cfg.reference_offset):
            dev_a.append(cfg.device.resolve("A", base=TOY_DEVICE, extra={"A.reference_mean": off}))
            dev_w.append(cfg.device.resolve("W", base=TOY_DEVICE))
            names.append(alg)
            labels.append(alg if off == 0 else f"{alg}+offset")
    cfgs = [algorithm_spec(n).default_config("build-config") for n in names]
    R = len(names)
    alg = build_stack(names, cfgs, dev_w, dev_a, 5, 5, io=IO_PRESETS["preset"], seed=cfg.seed,
                      replica_seeds=[cfg.seed] * R, stack_id=0, dtype=np.float64)
    x = np.ones((R, 5))
    rng = generator(cfg.seed, "data")
    n_rec = cfg.steps // cfg.record_every
    w_mean = np.empty((R, n_rec))
    a_mean = np.empty((R, n_rec))
    tiles = alg.tiles()
    for t in range(cfg.steps):
        d = np.broadcast_to(cfg.gradient + cfg.gradient_noise * rng.standard_normal(5), (R, 5))
        alg.update(x, d, cfg.lr)
        if (t + 1) % cfg.record_every == 0:
            k = (t + 1) // cfg.record_every - 1
            w_mean[:, k] = tiles["W"].w.reshape(R, -1).mean(1)
            a_mean[:, k] = tiles["A"].w.reshape(R, -1).mean(1)
    return ToyResult(config=cfg, labels=labels, steps=np.arange(1, n_rec + 1) * cfg.record_every, w_mean=w_mean,
                     a_mean=a_mean)
