"""apply_pulses / pulse_rounds: the vectorised pulse rounds equal a plain per-device, per-pulse
loop, for distinct devices and for time-ordered sequences with repeated devices."""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import (ConstantStepDevice, ExpStepDevice, LinearStepDevice, PowStepDevice,
                                SoftBoundsDevice, SoftBoundsReferenceDevice)
from analogtrain.engine.devices.array import DeviceArray, apply_pulses, pulse_rounds
from analogtrain.seeding import generator

SHAPE = (6, 7)

# d2d variation on, c2c noise off: every device differs, but each follows its rule exactly
CONFIGS = {
    "constant_step": ConstantStepDevice(dw_min=0.05, dw_min_std=0.0, up_down=0.1, w_max=0.5, w_min=-0.5),
    "soft_bounds": SoftBoundsDevice(dw_min=0.05, dw_min_std=0.0, up_down_dtod=0.1),
    "soft_bounds_reference": SoftBoundsReferenceDevice(dw_min=0.05, dw_min_std=0.0, reference_std=0.2,
                                                       up_down_dtod=0.1, subtract_symmetry_point=True),
    "linear_step": LinearStepDevice(dw_min=0.05, dw_min_std=0.0, gamma_up=0.5, gamma_down=0.3),
    "pow_step": PowStepDevice(dw_min=0.05, dw_min_std=0.0, pow_gamma=1.5, pow_gamma_dtod=0.2),
    "exp_step": ExpStepDevice(dw_min=0.05, dw_min_std=0.0),
}


def brute_force(dev: DeviceArray, w_flat, idx, counts, up):
    """One device at a time, one pulse at a time, with the model's own up/down rule."""
    w = w_flat.astype(np.float64).copy()
    spec = dev.spec
    flat_p = {k: v.reshape(-1).astype(np.float64) for k, v in dev.p.items()}
    c = {k: (v if isinstance(v, bool) else float(np.asarray(v).ravel()[0])) for k, v in dev.c.items()}
    for k, n, u in zip(idx, counts, up):
        rule = spec.up if u else spec.down
        names = spec.up_params if u else spec.down_params
        p = {name: flat_p[name][k] for name in names}
        g = w[k] + flat_p["ref"][k]
        for _ in range(int(n)):
            g = rule(g, p, 0.0, c)
            g = min(max(g, flat_p["w_min"][k]), flat_p["w_max"][k])
        w[k] = g - flat_p["ref"][k]
    return w


@pytest.mark.parametrize("distinct", [True, False])
@pytest.mark.parametrize("model", sorted(CONFIGS))
def test_vectorised_equals_brute_force(model, distinct):
    """Distinct devices, either declared (``distinct``) or through the sequence path."""
    cfg = CONFIGS[model]
    dev = DeviceArray([cfg, cfg], SHAPE, [generator(4, "device", 0), generator(4, "device", 1)], dtype=np.float64)
    rng = np.random.default_rng(0)
    total = dev.shape[0] * dev.plane
    # start inside every device's bounds
    g0 = dev.p["w_min"] + rng.random(dev.shape) * (dev.p["w_max"] - dev.p["w_min"])
    w_flat = (g0 - dev.p["ref"]).reshape(-1).copy()
    idx = rng.choice(total, size=total * 2 // 3, replace=False)  # unique, unsorted, both replicas
    counts = rng.integers(1, 40, size=idx.size)
    counts[:5] = 300  # some devices to the bound
    up = rng.random(idx.size) < 0.5
    expected = brute_force(dev, w_flat, idx, counts, up)
    untouched = np.setdiff1d(np.arange(total), idx)
    before = w_flat.copy()
    apply_pulses(dev, w_flat, idx, counts, up, generator(0, "noise"), distinct=distinct)
    np.testing.assert_allclose(w_flat, expected, rtol=0, atol=1e-12)
    assert np.array_equal(w_flat[untouched], before[untouched])
    g = w_flat.reshape(dev.shape) + dev.p["ref"]
    assert np.all(g <= dev.p["w_max"] + 1e-12) and np.all(g >= dev.p["w_min"] - 1e-12)


@pytest.mark.parametrize("model", sorted(CONFIGS))
def test_sequences_equal_brute_force_in_time_order(model):
    """Repeated devices with changing directions (the samples of a mini-batch): each device
    gets its entries' pulses one by one in entry order, as the brute-force loop over entries."""
    cfg = CONFIGS[model]
    dev = DeviceArray([cfg, cfg], SHAPE, [generator(5, "device", 0), generator(5, "device", 1)], dtype=np.float64)
    rng = np.random.default_rng(3)
    total = dev.shape[0] * dev.plane
    g0 = dev.p["w_min"] + rng.random(dev.shape) * (dev.p["w_max"] - dev.p["w_min"])
    w_flat = (g0 - dev.p["ref"]).reshape(-1).copy()
    idx = rng.integers(0, total // 2, size=3 * total)       # about 6 entries per device, half the devices
    counts = rng.integers(1, 6, size=idx.size)
    counts[:3] = 200                                         # some devices to the bound
    up = rng.random(idx.size) < 0.5
    expected = brute_force(dev, w_flat, idx, counts, up)     # entry by entry: time order
    apply_pulses(dev, w_flat, idx, counts, up, generator(0, "noise"))
    np.testing.assert_allclose(w_flat, expected, rtol=0, atol=1e-12)
    assert np.array_equal(w_flat[total // 2:], (g0 - dev.p["ref"]).reshape(-1)[total // 2:])


def test_pulse_rounds_by_hand():
    """Three devices sorted by count (3, 2, 1): round 0 pulses all three, round 1 the first two,
    round 2 the first; noise eps[off + k] of round r goes to device k of its prefix.

    Constant step dw = 0.1 with noise s = 0.5 (no slope): a pulse is g +- dw (1 + s eps).
    Per-pulse directions (``starts``): device 0 up, down, up; device 1 down, down; device 2 up.
    """
    cfg = ConstantStepDevice(dw_min=0.1, dw_min_std=0.5, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=5.0,
                             w_min=-5.0, w_max_dtod=0.0, w_min_dtod=0.0)
    dev = DeviceArray([cfg], (1, 4), [generator(0, "device", 0)], dtype=np.float64)
    eps = np.array([0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 9.0])
    ii, counts = np.array([3, 0, 1]), np.array([3, 2, 1])
    # device-major pulse directions: device 3 (k=0) from 0, device 0 (k=1) from 3, device 1 (k=2) from 5
    up = np.array([True, False, True, False, False, True])
    w = np.zeros(4)
    off = pulse_rounds(dev, w, ii, counts, up, eps, 1, starts=np.array([0, 3, 5]))
    assert off == 1 + 6
    # round 0 (eps[1:4] = 1, -1, 0.5): dev 3 up, dev 0 down, dev 1 up
    # round 1 (eps[4:6] = 2, -2):      dev 3 down, dev 0 down
    # round 2 (eps[6] = 9):            dev 3 up
    step = lambda e: 0.1 * (1 + 0.5 * e)  # noqa: E731
    expected = np.array([-step(-1) - step(-2), step(0.5), 0.0, step(1) - step(2) + step(9)])
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    # one direction per device (starts None): device k's pulses all go up[k]
    w = np.zeros(4)
    assert pulse_rounds(dev, w, ii, counts, np.array([True, False, True]), eps) == 6
    # rounds: eps[0:3] = 0, 1, -1 (devices 3, 0, 1), eps[3:5] = 0.5, 2 (3, 0), eps[5] = -2 (3)
    np.testing.assert_allclose(w, [-step(1) - step(2), step(-1), 0.0, step(0) + step(0.5) + step(-2)], atol=1e-15)
    # single: every count 1, no sort needed
    w = np.zeros(4)
    assert pulse_rounds(dev, w, np.array([2, 0]), np.array([1, 1]), np.array([False, True]), eps, 4,
                        single=True) == 6
    np.testing.assert_allclose(w, [step(-2), 0.0, -step(2), 0.0], atol=1e-15)


def test_distinct_and_sequence_noise_orders():
    """The order of the noise draws is part of the results (see apply_pulses): distinct devices
    of a signed model take the draws by count, in entry order; sequences by flat index."""
    cfg = ConstantStepDevice(dw_min=0.1, dw_min_std=0.5, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=5.0,
                             w_min=-5.0, w_max_dtod=0.0, w_min_dtod=0.0)
    dev = DeviceArray([cfg], (1, 4), [generator(0, "device", 0)], dtype=np.float64)
    idx, counts, up = np.array([2, 0, 3]), np.array([1, 1, 1]), np.array([True, True, True])
    eps = generator(7, "noise").standard_normal(3)
    w = np.zeros(4)
    apply_pulses(dev, w, idx, counts, up, generator(7, "noise"), distinct=True)
    np.testing.assert_allclose(w[idx], 0.1 * (1 + 0.5 * eps), atol=1e-15)
    w = np.zeros(4)
    apply_pulses(dev, w, idx, counts, up, generator(7, "noise"))
    np.testing.assert_allclose(w[np.sort(idx)], 0.1 * (1 + 0.5 * eps), atol=1e-15)


def test_empty_and_float32():
    cfg = CONFIGS["soft_bounds"]
    dev = DeviceArray([cfg], SHAPE, [generator(0, "device", 0)], dtype=np.float32)
    w = np.zeros(dev.plane, dtype=np.float32)
    apply_pulses(dev, w, np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([], dtype=bool),
                 generator(0, "noise"))
    assert not w.any()
    apply_pulses(dev, w, np.array([3]), np.array([2]), np.array([True]), generator(0, "noise"))
    assert w.dtype == np.float32 and w[3] > 0 and np.count_nonzero(w) == 1


def test_per_replica_constants():
    """Replicas with different c2c noise in one stack: the noise-free replica stays exact."""
    quiet = SoftBoundsDevice(dw_min=0.05, dw_min_std=0.0)
    noisy = SoftBoundsDevice(dw_min=0.05, dw_min_std=0.5)
    dev = DeviceArray([noisy, quiet], SHAPE, [generator(1, "device", 0), generator(1, "device", 1)],
                      dtype=np.float64)
    assert "const_dw_min_std" in dev.p
    total = dev.shape[0] * dev.plane
    idx = np.arange(total)
    counts = np.full(total, 5)
    up = np.arange(total) % 3 == 0
    w = np.zeros(total)
    apply_pulses(dev, w, idx, counts, up, generator(1, "noise"))
    plane = dev.plane
    # replica 1 (quiet) equals the noise-free brute force, replica 0 (noisy) does not
    quiet_dev = DeviceArray([quiet], SHAPE, [generator(1, "device", 1)], dtype=np.float64)
    expected = brute_force(quiet_dev, np.zeros(plane), np.arange(plane), counts[plane:], up[plane:])
    np.testing.assert_allclose(w[plane:], expected, atol=1e-12)
    noisy_dev = DeviceArray([noisy], SHAPE, [generator(1, "device", 0)], dtype=np.float64)
    noisy_dev.c["dw_min_std"] = np.array([0.0])
    free = brute_force(noisy_dev, np.zeros(plane), np.arange(plane), counts[:plane], up[:plane])
    assert np.abs(w[:plane] - free).max() > 1e-3


def test_one_noise_draw_per_pulse():
    """Each pulse draws its own N(0,1): after n pulses of a constant step with multiplicative
    noise the change is dw (n + s sum(eps)), so its std over devices is s dw sqrt(n).

    40000 devices: SE of the std is std/sqrt(2N) = std/283; tolerance 5 SE.
    """
    n, s, dw = 9, 0.5, 0.001
    cfg = ConstantStepDevice(dw_min=dw, dw_min_std=s, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0)
    shape = (200, 200)
    dev = DeviceArray([cfg], shape, [generator(2, "device", 0)], dtype=np.float64)
    N = dev.plane
    w = np.zeros(N)
    apply_pulses(dev, w, np.arange(N), np.full(N, n), np.ones(N, dtype=bool), generator(2, "noise"))
    std = s * dw * np.sqrt(n)
    assert abs(w.mean() - n * dw) < 5 * std / np.sqrt(N)
    assert abs(w.std() - std) < 5 * std / np.sqrt(2 * N)


def test_at_bound_fraction_by_hand():
    from analogtrain.engine.devices.array import at_bound_fraction

    # range [-1, 1] (width 2), margin 0.05 -> band 0.1: g >= 0.9 or g <= -0.9 counts
    w = np.array([[[0.95, 0.85, -0.95, 0.0]]])
    ref = np.array([[[0.0, 0.1, 0.0, 0.0]]])        # g = 0.95, 0.95, -0.95, 0
    lo, hi = np.full_like(w, -1.0), np.full_like(w, 1.0)
    assert at_bound_fraction(w, ref, lo, hi) == 0.75
    assert at_bound_fraction(w, ref, lo, hi, margin=0.01) == 0.0   # band 0.02
    # per-device bounds: a device with range [0, 0.5] at 0.49 is at its bound
    assert at_bound_fraction(np.array([0.49]), np.array([0.0]), np.array([0.0]), np.array([0.5])) == 1.0
