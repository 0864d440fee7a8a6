"""Registry of device models: which rule, which parameters, which constants.

A :class:`ModelSpec` ties a model name (``config.DEVICE_MODELS``) to its pure pulse rules
in :mod:`.rules`, the per-device parameter arrays each direction needs, how its per-device
step shape is drawn (:mod:`.shapes`) and the per-replica constants the rules read from
``c``. Adding a device model: its config class (:mod:`analogtrain.config.device`), its
rules, its shape function, and one entry in :data:`MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from analogtrain.engine.devices import rules, shapes


@dataclass(frozen=True)
class ModelSpec:
    name: str
    up: Callable
    down: Callable
    up_params: tuple[str, ...]
    down_params: tuple[str, ...]
    #: (g, p, c) -> (up magnitude, down magnitude), noise free
    magnitudes: Callable
    #: closed-form symmetry point (p) -> g*, or None (bisection on the magnitudes)
    symmetry_point: Callable | None
    #: (cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle) -> (params, w_max, w_min)
    shape: Callable = shapes.constant_step
    #: per-replica constants besides dw_min_std
    constants: tuple[str, ...] = ()
    #: cfg -> the model's own per-replica constants (beyond the common ones), or None
    replica_constants: Callable | None = None
    #: signed single rule (g, scale, slope, eps, c) covering both directions, if the model has one
    signed: Callable | None = None


_LINEAR = dict(up=rules.linear_step_up, down=rules.linear_step_down,
               up_params=("scale_up", "slope_up"), down_params=("scale_down", "slope_down"),
               magnitudes=lambda g, p, c: rules.linear_step_magnitudes(g, p),
               symmetry_point=rules.linear_step_symmetry_point, constants=("mult_noise",),
               signed=rules.linear_step_pulse)
_POW = dict(up=rules.pow_step_up, down=rules.pow_step_down,
            up_params=("scale_up", "gamma_up", "w_max", "w_min"),
            down_params=("scale_down", "gamma_down", "w_max", "w_min"),
            magnitudes=lambda g, p, c: rules.pow_step_magnitudes(g, p), symmetry_point=None)
_EXP = dict(up=rules.exp_step_up, down=rules.exp_step_down,
            up_params=("scale_up", "w_max", "w_min"), down_params=("scale_down", "w_max", "w_min"),
            magnitudes=rules.exp_step_magnitudes, symmetry_point=None,
            constants=("A_up", "A_down", "gamma_up", "gamma_down", "a", "b", "complex_noise",
                       "dw_min_std_add", "dw_min_std_slope"), replica_constants=shapes.exp_step_constants)

MODELS: dict[str, ModelSpec] = {
    "constant_step": ModelSpec("constant_step", **_LINEAR, shape=shapes.constant_step),
    "soft_bounds": ModelSpec("soft_bounds", **_LINEAR, shape=shapes.soft_bounds),
    "soft_bounds_reference": ModelSpec("soft_bounds_reference", **_LINEAR, shape=shapes.soft_bounds_reference),
    "linear_step": ModelSpec("linear_step", **_LINEAR, shape=shapes.linear_step),
    "pow_step": ModelSpec("pow_step", **_POW, shape=shapes.pow_step),
    "pow_step_reference": ModelSpec("pow_step_reference", **_POW, shape=shapes.pow_step),
    "exp_step": ModelSpec("exp_step", **_EXP, shape=shapes.exp_step),
}


def symmetry_point(spec: ModelSpec, p: dict, c: dict, iters: int = 60) -> np.ndarray:
    """Physical symmetry point g* of each device (where up and down steps are equal), NaN
    where the device has none (docs/devices.md §1.3).

    Uses the model's closed form where it has one, else bisection on
    ``f(g) = up(g) - down(g)`` over ``[w_min_ij, w_max_ij]`` (f is non-increasing for
    every model here: up steps shrink and down steps grow with g). Where f keeps one
    sign over the whole range the device drifts to a bound, and where f is 0 everywhere
    (a perfectly symmetric device) every state is neutral: in both cases no symmetry
    point exists (NaN).
    """
    if spec.symmetry_point is not None:
        return spec.symmetry_point(p)
    lo = np.array(p["w_min"], dtype=np.float64)
    hi = np.array(p["w_max"], dtype=np.float64)
    pp = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    f_lo = np.subtract(*spec.magnitudes(lo, pp, c))
    f_hi = np.subtract(*spec.magnitudes(hi, pp, c))
    a, b = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = 0.5 * (a + b)
        f = np.subtract(*spec.magnitudes(mid, pp, c))
        pos = f > 0
        a = np.where(pos, mid, a)
        b = np.where(pos, b, mid)
    sp = 0.5 * (a + b)
    return np.where((f_lo > 0) & (f_hi < 0), sp, np.nan)   # a sign change inside the range only
