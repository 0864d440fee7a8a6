"""Device-to-device sampling: one config + one Generator -> per-device parameter arrays.

Implements docs/devices.md §1.1 (every ``*_dtod`` spread of ``PulsedDevice``), §1.3 (the reference
and symmetry-point subtraction) and the model-specific draws of §1.4. All standard
normals of one array are drawn in one call, in a fixed documented order, so a
device draw depends only on (config, shape, generator state).
"""

from __future__ import annotations

import numpy as np

from analogtrain.config.device import PulsedDevice
from analogtrain.engine.devices.models import MODELS, symmetry_point

#: order of the standard-normal planes drawn per array (append only)
_XI = ("w_max", "w_min", "gain", "up_down", "slope_up", "slope_down", "reference", "diffusion",
       "reset", "lifetime", "gamma_up", "gamma_down")


def replica_constants(cfg: PulsedDevice) -> dict:
    """Per-replica scalars the rules read (``c``), from one config."""
    c = dict(dw_min=cfg.dw_min, dw_min_std=cfg.dw_min_std, granularity=cfg.granularity,
             write_noise=cfg.write_noise_std * cfg.dw_min, mult_noise=bool(getattr(cfg, "mult_noise", True)))
    own = MODELS[cfg.model].replica_constants
    if own is not None:
        c.update(own(cfg))
    return c


def sample_device(cfg: PulsedDevice, shape: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the per-device parameters of one (out, in) array (float64).

    Returns a dict with ``scale_up``, ``scale_down``, ``w_max``, ``w_min`` (physical
    bounds), ``ref`` (reference subtracted from the read weight), ``sp`` (physical
    symmetry point; NaN for a device without one), ``reset_bias``, ``decay_scale``, ``diffusion_rate`` and the
    model's own arrays (``slope_up``/``slope_down`` or ``gamma_up``/``gamma_down``).
    """
    xi = dict(zip(_XI, rng.standard_normal((len(_XI),) + tuple(shape))))
    u_corrupt = rng.random(shape)
    u_value = rng.random(shape)

    w_max = cfg.w_max * (1.0 + cfg.w_max_dtod * xi["w_max"])
    w_min = cfg.w_min * (1.0 + cfg.w_min_dtod * xi["w_min"])
    if cfg.dw_min_dtod_log_normal:
        gain = np.exp(cfg.dw_min_dtod * xi["gain"])
    else:
        gain = 1.0 + cfg.dw_min_dtod * xi["gain"]
    r = cfg.up_down_dtod * xi["up_down"]
    up_bias, down_bias = min(cfg.up_down, 0.0), min(-cfg.up_down, 0.0)
    scale_up = (up_bias + gain + r) * cfg.dw_min
    scale_down = (down_bias + gain - r) * cfg.dw_min

    if cfg.enforce_consistency:
        scale_up, scale_down = np.abs(scale_up), np.abs(scale_down)
        swap = w_min > w_max
        w_max, w_min = np.where(swap, w_min, w_max), np.where(swap, w_max, w_min)
        w_max, w_min = np.abs(w_max), -np.abs(w_min)
    else:
        mid = w_max + (w_min - w_max) / 2.0
        bad = w_min > w_max
        w_max, w_min = np.where(bad, mid, w_max), np.where(bad, mid, w_min)

    stuck = u_corrupt < cfg.corrupt_devices_prob
    if stuck.any():
        rng_ = abs(cfg.corrupt_devices_range)
        lo = np.maximum(np.minimum(w_max, w_min), -rng_)
        hi = np.minimum(np.maximum(w_max, w_min), rng_)
        value = lo + (hi - lo) * u_value
        w_max, w_min = np.where(stuck, value, w_max), np.where(stuck, value, w_min)
        scale_up, scale_down = np.where(stuck, 0.0, scale_up), np.where(stuck, 0.0, scale_down)

    out = dict(scale_up=scale_up, scale_down=scale_down)
    straddle = (w_max > 0) & (w_min < 0)
    spec = MODELS[cfg.model]
    params, w_max, w_min = spec.shape(cfg, shape, xi, scale_up, scale_down, w_max, w_min, straddle)
    out.update(params)
    out.update(w_max=w_max, w_min=w_min)
    sp = symmetry_point(spec, out, replica_constants(cfg))
    ref = cfg.reference_mean + cfg.reference_std * xi["reference"]
    reset_bias = cfg.reset + cfg.reset_dtod * xi["reset"]
    if cfg.subtract_symmetry_point:   # a device without a symmetry point (NaN) keeps reference 0 there
        shift = np.where(straddle & np.isfinite(sp), sp, 0.0)
        ref = ref + shift
        reset_bias = reset_bias + shift
    out.update(ref=ref, sp=sp, reset_bias=reset_bias,
               diffusion_rate=np.abs(cfg.diffusion * (1.0 + cfg.diffusion_dtod * xi["diffusion"])))
    t = cfg.lifetime * (1.0 + cfg.lifetime_dtod * xi["lifetime"])
    out["decay_scale"] = np.where(t > 1.0, 1.0 - 1.0 / np.where(t > 1.0, t, 2.0), 0.0)
    return out
