"""The model-specific part of a device-to-device draw: how each model's per-device step
shape follows from the common draw (docs/devices.md §1.2-1.4).

Each function takes the config, the array shape, the standard-normal planes ``xi`` (see
:mod:`.sampling`), the drawn step sizes and bounds, and the mask of devices whose bounds
straddle 0; it returns ``(model parameters, w_max, w_min)`` (a model may move the bounds:
soft bounds with a reference derives them from its slopes). ``*_constants`` functions give
a model's per-replica constants beyond the common ones.
"""

from __future__ import annotations

import numpy as np


def constant_step(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Constant step: no slope, ``slope_up = slope_down = 0``."""
    return dict(slope_up=np.zeros(shape), slope_down=np.zeros(shape)), w_max, w_min


def soft_bounds(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Soft bounds: the step vanishes at the device's own bounds,
    ``slope_up = -scale_up / w_max_ij``, ``slope_down = -scale_down / w_min_ij``."""
    return dict(slope_up=np.where(w_max > 0, -scale_up / np.where(w_max > 0, w_max, 1.0), 0.0),
                slope_down=np.where(w_min < 0, -scale_down / np.where(w_min < 0, w_min, 1.0), 0.0)), w_max, w_min


def soft_bounds_reference(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Soft bounds with a reference: slopes ``scale / |bound|`` with their own device-to-device
    spread (``slope_*_dtod``); the bounds are then where the step vanishes, ``scale / slope``."""
    slope_dn = np.where(straddle, scale_down / np.where(straddle, -w_min, 1.0), 0.0)
    slope_dn = slope_dn * np.abs(1.0 + cfg.slope_down_dtod * xi["slope_down"])
    slope_up = np.where(straddle, scale_up / np.where(straddle, w_max, 1.0), 0.0)
    slope_up = slope_up * np.abs(1.0 + cfg.slope_up_dtod * xi["slope_up"])
    with np.errstate(divide="ignore", invalid="ignore"):
        w_max = np.where(straddle & (slope_up > 0), scale_up / np.where(slope_up > 0, slope_up, 1.0), w_max)
        w_min = np.where(straddle & (slope_dn > 0), -scale_down / np.where(slope_dn > 0, slope_dn, 1.0), w_min)
    return dict(slope_up=-slope_up, slope_down=slope_dn), w_max, w_min


def linear_step(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Linear step: ``slope = -gamma_ij scale / w_ref`` with ``gamma_ij = gamma + gamma_dtod xi``
    (absolute unless ``allow_increasing``) and ``w_ref`` the mean bounds or the device's own."""
    g_up = cfg.gamma_up + cfg.gamma_up_dtod * xi["gamma_up"]
    g_dn = cfg.gamma_down + cfg.gamma_down_dtod * xi["gamma_down"]
    if not cfg.allow_increasing:
        g_up, g_dn = np.abs(g_up), np.abs(g_dn)
    ref_up = np.full(shape, cfg.w_max) if cfg.mean_bound_reference else w_max
    ref_dn = np.full(shape, cfg.w_min) if cfg.mean_bound_reference else w_min
    return dict(slope_up=np.where(ref_up != 0, -g_up * scale_up / np.where(ref_up != 0, ref_up, 1.0), 0.0),
                slope_down=np.where(ref_dn != 0, -g_dn * scale_down / np.where(ref_dn != 0, ref_dn, 1.0), 0.0)), \
        w_max, w_min


def pow_step(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Power step: exponents ``gamma_up/down = (bias + 1 + pow_gamma_dtod xi +- r) pow_gamma``."""
    gain_g = 1.0 + cfg.pow_gamma_dtod * xi["gamma_up"]
    r_g = cfg.pow_up_down_dtod * xi["gamma_down"]
    ub, db = min(cfg.pow_up_down, 0.0), min(-cfg.pow_up_down, 0.0)
    gu, gd = (ub + gain_g + r_g) * cfg.pow_gamma, (db + gain_g - r_g) * cfg.pow_gamma
    if cfg.enforce_consistency:
        gu, gd = np.abs(gu), np.abs(gd)
    return dict(gamma_up=gu, gamma_down=gd), w_max, w_min


def exp_step(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle):
    """Exponential step: no per-device shape parameters beyond the common ones."""
    return {}, w_max, w_min


def exp_step_constants(cfg) -> dict:
    """The exponential step's per-replica constants (and whether its noise is the 'complex' one)."""
    return dict(A_up=cfg.A_up, A_down=cfg.A_down, gamma_up=cfg.gamma_up, gamma_down=cfg.gamma_down, a=cfg.a, b=cfg.b,
                dw_min_std_add=cfg.dw_min_std_add, dw_min_std_slope=cfg.dw_min_std_slope,
                complex_noise=bool(cfg.dw_min_std_add > 0 or cfg.dw_min_std_slope > 0))
