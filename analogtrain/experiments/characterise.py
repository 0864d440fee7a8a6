"""Characterise a device model: pulse-response curves, symmetry point, steps, bounds.

``characterise(cfg)`` samples ``n_devices`` devices of one config and measures

* pulse-response curves: ``cycles`` cycles of ``n`` up pulses then ``n`` down pulses,
  starting from read weight 0, recording every device's read weight after each pulse;
* the symmetry point (SP) two ways: from the model's formula (per device; a device whose
  up and down steps never balance inside its range has none, and is counted) and from a
  long random +-1 pulse sequence (fair coin per device and pulse) started at each
  device's lower bound, time-averaged over the second half of the sequence;
* number of states, step sizes, bounds, up/down asymmetry, reference offsets.
"""

from __future__ import annotations

import time

import numpy as np

from analogtrain.config.characterise import CharacteriseConfig
from analogtrain.config.device import PulsedDevice
from analogtrain.engine.tile import AnalogTile
from analogtrain.results.characterise import Characterisation
from analogtrain.seeding import generator


def _ms(a) -> dict:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        return {"mean": None, "std": None}
    return {"mean": float(a.mean()), "std": float(a.std())}


def default_pulses(cfg: PulsedDevice) -> int:
    """Pulses per direction of a response cycle: about the number of states (>= 10)."""
    return int(max(10, min(20000, round(cfg.n_states))))


def default_random_pulses(cfg: PulsedDevice) -> int:
    """Length of the random sequence: 40 n_states, within [4000, 100000], enough to forget the start."""
    return int(max(4000, min(100000, round(40 * cfg.n_states))))


def run(config: CharacteriseConfig) -> Characterisation:
    """Characterise the device of ``config`` (see the module docstring)."""
    t0 = time.perf_counter()
    res = characterise(config.device_config(), n_devices=config.devices, cycles=config.cycles, pulses=config.pulses,
                       random_pulses=config.random_pulses, seed=config.seed)
    res.config = config
    res.wall_s = time.perf_counter() - t0
    return res


def characterise(cfg: PulsedDevice, *, n_devices: int = 100, cycles: int = 3, pulses: int | None = None,
                 random_pulses: int | None = None, seed: int = 0, dtype=np.float64) -> Characterisation:
    """Sample ``n_devices`` devices of ``cfg`` and measure them (see module docstring)."""
    n = int(pulses if pulses is not None else default_pulses(cfg))
    L = int(random_pulses if random_pulses is not None else default_random_pulses(cfg))
    tile = AnalogTile(cfg, 1, n_devices, rng_device=[generator(seed, "device", 0)],
                      rng_pulses=generator(seed, "pulses"), rng_noise=generator(seed, "noise"), dtype=dtype)
    dev = tile.device
    flat = np.arange(n_devices)
    ones = np.ones(n_devices, dtype=np.int64)
    up, down = np.ones(n_devices, dtype=bool), np.zeros(n_devices, dtype=bool)

    # pulse-response curves from read weight 0
    T = 1 + 2 * n * cycles
    curves = np.empty((T, n_devices))
    directions = np.zeros(T, dtype=np.int8)
    curves[0] = tile.w[0, 0]
    t = 1
    for _ in range(cycles):
        for sign in (1, -1):
            for _ in range(n):
                tile.apply_pulses(flat, ones, up if sign > 0 else down, distinct=True)
                curves[t] = tile.w[0, 0]
                directions[t] = sign
                t += 1
    steps = np.diff(curves, axis=0)
    up_steps = steps[directions[1:] > 0]
    down_steps = steps[directions[1:] < 0]

    # symmetry point from a random +-1 sequence started at the lower bound
    tile.set_weights(dev.p["w_min"] - dev.p["ref"])
    coin = generator(seed, "data")
    acc = np.zeros(n_devices)
    n_acc = 0
    trace_every = max(1, L // 400)
    trace = []
    for k in range(L):
        sign = np.where(coin.random(n_devices) < 0.5, 1, -1)
        tile.apply_pulses(flat, ones, sign > 0, distinct=True)
        if k >= L // 2:
            acc += tile.physical()[0, 0]
            n_acc += 1
        if k % trace_every == 0:
            trace.append(float(tile.physical()[0, 0].mean()))
    sp_sim = acc / max(n_acc, 1)

    p = {k: v[0, 0].astype(np.float64) for k, v in dev.p.items()}
    sp = p["sp"]                      # NaN where a device has no symmetry point (it drifts to a bound)
    has_sp = np.isfinite(sp)
    ref = p["ref"]
    step_mean = 0.5 * (p["scale_up"] + p["scale_down"])
    with np.errstate(divide="ignore", invalid="ignore"):
        asym = np.where(step_mean > 0, (p["scale_up"] - p["scale_down"]) / (2 * step_mean), 0.0)
        n_states_dev = np.where(step_mean > 0, (p["w_max"] - p["w_min"]) / step_mean, np.inf)
    finite = np.isfinite(n_states_dev)
    summary = {
        "model": cfg.model,
        "n_states": float(cfg.n_states),
        "n_states_devices": _ms(n_states_dev[finite]) if finite.any() else {"mean": None, "std": None},
        "dw_min": float(cfg.dw_min),
        "granularity": float(cfg.granularity),
        "step_up": _ms(p["scale_up"]),
        "step_down": _ms(p["scale_down"]),
        "measured_step_up": _ms(up_steps) if up_steps.size else None,
        "measured_step_down": _ms(-down_steps) if down_steps.size else None,
        "asymmetry": _ms(asym),
        "w_min": _ms(p["w_min"]),
        "w_max": _ms(p["w_max"]),
        "reference": _ms(ref),
        "symmetry_point": _ms(sp[has_sp]),
        "devices_without_symmetry_point": int(np.count_nonzero(~has_sp)),
        "symmetry_point_simulated": _ms(sp_sim),
        "symmetry_point_read": _ms((sp - ref)[has_sp]),
        "symmetry_point_abs_diff": {"mean": float(np.abs(sp_sim - sp)[has_sp].mean()) if has_sp.any() else None,
                                    "max": float(np.abs(sp_sim - sp)[has_sp].max()) if has_sp.any() else None},
        "write_noise": float(cfg.write_noise_std * cfg.dw_min),
    }
    return Characterisation(config=None, device=cfg, n_devices=n_devices, cycles=cycles,
                            pulses_per_direction=n, random_pulses=L, summary=summary, curves=curves,
                            directions=directions, sp_formula=sp, sp_simulated=sp_sim, sp_trace=np.array(trace))
