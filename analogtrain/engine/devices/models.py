"""Registry of device models: which rule, which parameters, which constants.

A :class:`ModelSpec` ties a model name (``config.DEVICE_MODELS``) to its pure rules in
:mod:`.rules`, the per-device parameter arrays each direction needs, and the
per-replica constants the rules read from ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from analogtrain.engine.devices import rules


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
    #: per-replica constants besides dw_min_std
    constants: tuple[str, ...] = ()
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
                       "dw_min_std_add", "dw_min_std_slope"))

MODELS: dict[str, ModelSpec] = {
    "constant_step": ModelSpec("constant_step", **_LINEAR),
    "soft_bounds": ModelSpec("soft_bounds", **_LINEAR),
    "soft_bounds_reference": ModelSpec("soft_bounds_reference", **_LINEAR),
    "linear_step": ModelSpec("linear_step", **_LINEAR),
    "pow_step": ModelSpec("pow_step", **_POW),
    "pow_step_reference": ModelSpec("pow_step_reference", **_POW),
    "exp_step": ModelSpec("exp_step", **_EXP),
}


def symmetry_point(spec: ModelSpec, p: dict, c: dict, iters: int = 60) -> np.ndarray:
    """Physical symmetry point g* of each device (where up and down steps are equal).

    Uses the model's closed form where it has one, else bisection on
    ``f(g) = up(g) - down(g)`` over ``[w_min_ij, w_max_ij]`` (f is non-increasing for
    every model here: up steps shrink and down steps grow with g). Where f keeps one
    sign over the whole range, g* is the bound it drifts to; where f is 0 everywhere
    (a perfectly symmetric device), g* = 0.
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
    sp = np.where(f_lo <= 0, np.where(f_hi >= 0, 0.0, lo), sp)  # drifts down everywhere -> w_min
    sp = np.where(f_hi >= 0, np.where(f_lo <= 0, 0.0, hi), sp)  # drifts up everywhere -> w_max
    return sp
