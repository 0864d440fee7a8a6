"""Device-to-device draws (docs/devices.md §1.1, §1.3): means, spreads, reproducibility, independence.

All statistical checks use a 200x200 array (N = 40000 draws). For a normal quantity of
std s the standard error (SE) of the sample mean is s/sqrt(N) = s/200 and of the sample
std s/sqrt(2N) = s/283; tolerances are 5 SE. The draws are seeded, so each test has a
fixed outcome; 5 SE makes that outcome a pass for any seed but about one in 10^6.
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import (ConstantStepDevice, LinearStepDevice, PowStepDevice, SoftBoundsDevice,
                                SoftBoundsReferenceDevice)
from analogtrain.engine.devices.array import DeviceArray
from analogtrain.engine.devices.models import MODELS
from analogtrain.engine.devices.sampling import replica_constants, sample_device
from analogtrain.seeding import generator

SHAPE = (200, 200)
N = SHAPE[0] * SHAPE[1]


def check_mean_std(a, mean, std, what=""):
    a = np.asarray(a, dtype=np.float64).ravel()
    assert abs(a.mean() - mean) < 5 * std / np.sqrt(a.size), (what, a.mean(), mean)
    assert abs(a.std() - std) < 5 * std / np.sqrt(2 * a.size), (what, a.std(), std)


def draw(cfg, seed=3, stream=("device", 0)):
    return sample_device(cfg, SHAPE, generator(seed, *stream))


def test_bounds_spread():
    # small dtod: abs()/swap of enforce_consistency never triggers (w_max_dtod xi < -1 needs xi < -12.5)
    cfg = SoftBoundsDevice(w_max=0.9, w_min=-0.7, w_max_dtod=0.08, w_min_dtod=0.05, dw_min=0.01)
    p = draw(cfg)
    check_mean_std(p["w_max"], 0.9, 0.9 * 0.08, "w_max")
    check_mean_std(p["w_min"], -0.7, 0.7 * 0.05, "w_min")
    assert np.all(p["w_max"] > 0) and np.all(p["w_min"] < 0)


@pytest.mark.parametrize("up_down", [0.0, 0.2, -0.3])
def test_step_scales(up_down):
    dw, g_sd, ud_sd = 0.02, 0.1, 0.05
    cfg = ConstantStepDevice(dw_min=dw, dw_min_dtod=g_sd, up_down_dtod=ud_sd, up_down=up_down)
    p = draw(cfg)
    su, sd = p["scale_up"] / dw, p["scale_down"] / dw
    up_bias, down_bias = min(up_down, 0.0), min(-up_down, 0.0)
    # gain = 1 + g_sd xi3, r = ud_sd xi4:  su = up_bias + gain + r, sd = down_bias + gain - r
    check_mean_std(su, 1 + up_bias, np.hypot(g_sd, ud_sd), "scale_up")
    check_mean_std(sd, 1 + down_bias, np.hypot(g_sd, ud_sd), "scale_down")
    check_mean_std((su - sd) / 2, (up_bias - down_bias) / 2, ud_sd, "asymmetry r")
    check_mean_std((su + sd) / 2, 1 + (up_bias + down_bias) / 2, g_sd, "gain")
    # r and gain are independent: their sample correlation has SE 1/sqrt(N)
    assert abs(np.corrcoef((su - sd).ravel(), (su + sd).ravel())[0, 1]) < 5 / np.sqrt(N)


def test_log_normal_gain():
    cfg = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.3, dw_min_dtod_log_normal=True, up_down_dtod=0.0)
    p = draw(cfg)
    assert np.array_equal(p["scale_up"], p["scale_down"])
    check_mean_std(np.log(p["scale_up"] / 0.01), 0.0, 0.3, "log gain")


def test_reference_spread_and_symmetry_point_subtraction():
    cfg = SoftBoundsReferenceDevice(reference_mean=0.1, reference_std=0.2, dw_min=0.01, w_max_dtod=0.05,
                                    w_min_dtod=0.05)
    p = draw(cfg)
    check_mean_std(p["ref"], 0.1, 0.2, "reference")
    # same xi with the SP added: ref_sp - ref = sp exactly, and reset_bias = reset + sp
    cfg_sp = SoftBoundsReferenceDevice(reference_mean=0.1, reference_std=0.2, dw_min=0.01, w_max_dtod=0.05,
                                       w_min_dtod=0.05, subtract_symmetry_point=True, reset=0.05)
    q = draw(cfg_sp)
    np.testing.assert_allclose(q["ref"] - p["ref"], q["sp"], atol=1e-15)
    np.testing.assert_allclose(q["reset_bias"], 0.05 + q["sp"], atol=1e-15)
    assert np.array_equal(p["sp"], q["sp"])


def test_soft_bounds_symmetry_point_formula():
    """sp = (su - sd) / (su / w_max - sd / w_min) per device (docs/devices.md §1.3)."""
    for cls in (SoftBoundsDevice, SoftBoundsReferenceDevice):
        cfg = cls(dw_min=0.01, up_down=0.1, up_down_dtod=0.05, dw_min_dtod=0.2, w_max_dtod=0.1, w_min_dtod=0.1)
        p = draw(cfg)
        su, sd, hi, lo = p["scale_up"], p["scale_down"], p["w_max"], p["w_min"]
        np.testing.assert_allclose(p["sp"], (su - sd) / (su / hi - sd / lo), rtol=1e-12, atol=1e-15)
        # at the SP the up and down steps are equal
        up, down = MODELS[cfg.model].magnitudes(p["sp"], p, replica_constants(cfg))
        np.testing.assert_allclose(up, down, rtol=1e-10)
        # up_down = 0.1 shrinks down steps: the SP moves up, on average by about 0.1/(2 - 0.1) * w_max
        assert p["sp"].mean() > 0.02


def test_soft_bounds_reference_slope_spread_moves_bounds():
    cfg = SoftBoundsReferenceDevice(dw_min=0.01, slope_up_dtod=0.1, slope_down_dtod=0.0, w_max_dtod=0.0,
                                    w_min_dtod=0.0, dw_min_dtod=0.0, up_down_dtod=0.0)
    p = draw(cfg)
    # w_max_ij = scale_up / slope_up = w_max / |1 + 0.1 xi|; w_min unchanged
    assert np.allclose(p["w_min"], -0.6)
    check_mean_std(0.6 / p["w_max"], 1.0, 0.1, "1/w_max")


def test_linear_step_gamma_spread():
    cfg = LinearStepDevice(dw_min=0.01, gamma_up=0.5, gamma_down=0.4, gamma_up_dtod=0.05, gamma_down_dtod=0.02,
                           dw_min_dtod=0.0, up_down_dtod=0.0)
    p = draw(cfg)
    # slope_up = -gamma_up,ij * scale_up / w_max (mean bound reference)
    check_mean_std(-p["slope_up"] * 0.6 / 0.01, 0.5, 0.05, "gamma_up")
    check_mean_std(-p["slope_down"] * -0.6 / 0.01, 0.4, 0.02, "gamma_down")


def test_pow_gamma_spread():
    cfg = PowStepDevice(dw_min=0.01, pow_gamma=2.0, pow_gamma_dtod=0.05)
    p = draw(cfg)
    check_mean_std(p["gamma_up"], 2.0, 0.1, "gamma_up")
    assert np.array_equal(p["gamma_up"], p["gamma_down"])


def test_corrupt_devices():
    cfg = SoftBoundsDevice(corrupt_devices_prob=0.25, corrupt_devices_range=0.1)
    p = draw(cfg)
    stuck = p["scale_up"] == 0
    # Binomial(N, 0.25): SE of the fraction sqrt(0.25*0.75/N) = 0.0022
    assert abs(stuck.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / N)
    assert np.all(p["scale_down"][stuck] == 0)
    assert np.all(p["w_max"][stuck] == p["w_min"][stuck])
    assert np.all(np.abs(p["w_max"][stuck]) <= 0.1)


def test_same_seed_identical_different_stream_uncorrelated():
    cfg = SoftBoundsReferenceDevice(reference_std=0.3, dw_min=0.01)
    a, b = draw(cfg), draw(cfg)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    c = draw(cfg, stream=("noise",))
    d = draw(cfg, stream=("device", 1))
    for other in (c, d):
        for k in ("w_max", "scale_up", "ref"):
            assert not np.array_equal(a[k], other[k])
            # correlation of independent draws: SE 1/sqrt(N) = 0.005, tolerance 5 SE
            assert abs(np.corrcoef(a[k].ravel(), other[k].ravel())[0, 1]) < 5 / np.sqrt(N), k


def test_device_array_per_replica_and_dtype():
    cfgs = [SoftBoundsDevice(dw_min=0.01), SoftBoundsDevice(dw_min=0.02, dw_min_std=0.0)]
    rngs = [generator(0, "device", r) for r in range(2)]
    arr = DeviceArray(cfgs, (3, 4), rngs, dtype=np.float32)
    assert arr.shape == (2, 3, 4) and arr.p["scale_up"].dtype == np.float32
    np.testing.assert_array_equal(arr.dw_min(), [0.01, 0.02])
    # each replica equals its own single draw
    single = sample_device(cfgs[1], (3, 4), generator(0, "device", 1))
    np.testing.assert_allclose(arr.p["scale_up"][1], single["scale_up"].astype(np.float32))
    np.testing.assert_allclose(arr.symmetry_point()[1], single["sp"].astype(np.float32))
    from analogtrain.errors import ConfigError
    with pytest.raises(ConfigError):
        DeviceArray([SoftBoundsDevice(), ConstantStepDevice()], (2, 2), rngs)
    with pytest.raises(ConfigError):
        DeviceArray([SoftBoundsDevice(mult_noise=True), SoftBoundsDevice(mult_noise=False)], (2, 2), rngs)
