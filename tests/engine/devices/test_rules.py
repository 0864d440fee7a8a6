"""Per-pulse device rules against their closed forms (docs/devices.md §1.2-1.4).

Each test builds devices without any variation (no d2d spread, no c2c noise), so every
device follows its equation exactly; the pulses go through the whole engine path
(AnalogTile.apply_pulses -> devices.array.apply_pulses -> pulse_rounds -> rules), with
several devices receiving different numbers of pulses and directions in one call, both as
distinct devices and through the sequence path (which must agree exactly without noise).
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import (ConstantStepDevice, ExpStepDevice, LinearStepDevice, PowStepDevice,
                                PowStepReferenceDevice, SoftBoundsDevice, SoftBoundsReferenceDevice)
from analogtrain.engine.devices import rules
from analogtrain.seeding import generator
from analogtrain.engine.tile import AnalogTile

NO_VAR = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def _tile(cfg, n, dtype=np.float64):
    return AnalogTile(cfg, 1, n, rng_device=[generator(1, "device", 0)], rng_pulses=generator(1, "pulses"),
                      rng_noise=generator(1, "noise"), dtype=dtype)


def _pulse(cfg, w0, counts):
    """Read weights after ``counts[k]`` pulses (up if > 0, down if < 0) from read weight w0[k], all in one call."""
    w0 = np.asarray(w0, dtype=np.float64)
    counts = np.asarray(counts)
    out = []
    for distinct in (True, False):
        t = _tile(cfg, w0.size)
        t.set_weights(w0[None, None, :])
        np.testing.assert_allclose(t.w[0, 0], w0, rtol=0, atol=1e-15)  # (w + ref) - ref rounding
        n = t.apply_pulses(np.arange(w0.size), np.abs(counts), counts > 0, distinct=distinct)
        assert n == np.abs(counts).sum()
        out.append(t.w[0, 0].copy())
    np.testing.assert_array_equal(out[0], out[1])
    return out[0]


def soft_up(w0, n, b, dw):
    return b - (b - w0) * (1 - dw / b) ** n


def soft_down(w0, n, b, dw):
    # mirrored: the distance to the (negative) lower bound shrinks by (1 - dw/|b|) per pulse
    return b - (b - w0) * (1 - dw / abs(b)) ** n


W0 = np.array([-0.7, -0.3, 0.0, 0.25, 0.6, 0.9])
NS = [1, 3, 10, 40]


def _grid():
    """(w0, n) for every combination, as flat arrays."""
    w0 = np.repeat(W0, len(NS))
    n = np.tile(NS, len(W0))
    return w0, n


@pytest.mark.parametrize("model", ["soft_bounds", "soft_bounds_reference"])
@pytest.mark.parametrize("mult_noise", [True, False])
def test_soft_bounds_closed_form(model, mult_noise):
    b_max, b_min, dw = 1.0, -0.8, 0.05
    cls = SoftBoundsDevice if model == "soft_bounds" else SoftBoundsReferenceDevice
    cfg = cls(dw_min=dw, w_max=b_max, w_min=b_min, mult_noise=mult_noise, **NO_VAR)
    w0, n = _grid()
    w0 = np.clip(w0, b_min, b_max)
    up = _pulse(cfg, w0, n)
    down = _pulse(cfg, w0, -n)
    np.testing.assert_allclose(up, soft_up(w0, n, b_max, dw), rtol=0, atol=1e-12)
    np.testing.assert_allclose(down, soft_down(w0, n, b_min, dw), rtol=0, atol=1e-12)
    # many pulses converge to the bound and never cross it
    far = _pulse(cfg, np.zeros(2), np.array([2000, -2000]))
    assert b_max - 1e-9 <= far[0] <= b_max and b_min <= far[1] <= b_min + 1e-9


@pytest.mark.parametrize("ref", [0.3, -0.2])
def test_soft_bounds_reference_with_nonzero_reference(ref):
    """Stored weight w = g - ref; the soft-bounds rule acts on g = w + ref."""
    b_max, b_min, dw = 1.0, -1.0, 0.1
    cfg = SoftBoundsReferenceDevice(dw_min=dw, w_max=b_max, w_min=b_min, reference_mean=ref, **NO_VAR)
    w0, n = _grid()
    w0 = np.clip(w0, b_min - ref, b_max - ref)  # physical state within the bounds
    g0 = w0 + ref
    np.testing.assert_allclose(_pulse(cfg, w0, n), soft_up(g0, n, b_max, dw) - ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_pulse(cfg, w0, -n), soft_down(g0, n, b_min, dw) - ref, rtol=0, atol=1e-12)
    # the read weight saturates at bound - ref, not at the bound
    far = _pulse(cfg, np.zeros(2), np.array([3000, -3000]))
    np.testing.assert_allclose(far, [b_max - ref, b_min - ref], atol=1e-9)


def test_constant_step_clips_at_bound():
    dw, b = 0.05, 1.0
    cfg = ConstantStepDevice(dw_min=dw, w_max=b, w_min=-b, **NO_VAR)
    w0, n = _grid()
    np.testing.assert_allclose(_pulse(cfg, w0, n), np.minimum(w0 + n * dw, b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_pulse(cfg, w0, -n), np.maximum(w0 - n * dw, -b), rtol=0, atol=1e-12)


def test_constant_step_up_down_bias():
    """up_down > 0 shrinks the down steps by up_down*dw (docs/devices.md §1.1, one-sided)."""
    dw = 0.01
    cfg = ConstantStepDevice(dw_min=dw, w_max=1.0, w_min=-1.0, up_down=0.2, **NO_VAR)
    out = _pulse(cfg, np.zeros(2), np.array([10, -10]))
    np.testing.assert_allclose(out, [10 * dw, -10 * 0.8 * dw], atol=1e-12)
    cfg = ConstantStepDevice(dw_min=dw, w_max=1.0, w_min=-1.0, up_down=-0.2, **NO_VAR)
    out = _pulse(cfg, np.zeros(2), np.array([10, -10]))
    np.testing.assert_allclose(out, [10 * 0.8 * dw, -10 * dw], atol=1e-12)


@pytest.mark.parametrize("mult_noise", [True, False])
def test_linear_step_gamma_one_own_bounds_equals_soft_bounds(mult_noise):
    b_max, b_min, dw = 0.9, -0.7, 0.04
    lin = LinearStepDevice(dw_min=dw, w_max=b_max, w_min=b_min, gamma_up=1.0, gamma_down=1.0, gamma_up_dtod=0.0,
                           gamma_down_dtod=0.0, mean_bound_reference=False, mult_noise=mult_noise, **NO_VAR)
    sb = SoftBoundsDevice(dw_min=dw, w_max=b_max, w_min=b_min, mult_noise=mult_noise, **NO_VAR)
    w0, n = _grid()
    w0 = np.clip(w0, b_min, b_max)
    for sign in (1, -1):
        np.testing.assert_allclose(_pulse(lin, w0, sign * n), _pulse(sb, w0, sign * n), rtol=0, atol=1e-13)


def test_linear_step_general_gamma():
    """up: w += scale_up + slope_up w with slope_up = -gamma_up dw / w_max (mean bound reference)."""
    dw, gu, gd = 0.02, 0.3, 0.6
    cfg = LinearStepDevice(dw_min=dw, w_max=1.0, w_min=-0.5, gamma_up=gu, gamma_down=gd, gamma_up_dtod=0.0,
                           gamma_down_dtod=0.0, **NO_VAR)
    w0 = np.array([-0.4, 0.0, 0.5])
    up = _pulse(cfg, w0, np.ones(3, dtype=int))
    down = _pulse(cfg, w0, -np.ones(3, dtype=int))
    np.testing.assert_allclose(up, w0 + dw - gu * dw / 1.0 * w0, atol=1e-14)
    np.testing.assert_allclose(down, w0 - (dw - gd * dw / -0.5 * w0), atol=1e-14)
    # n pulses: a linear recursion w <- a + c w, closed form c^n w0 + a (1 - c^n)/(1 - c)
    n = np.array([5, 17, 60])
    a, c = dw, 1 - gu * dw
    np.testing.assert_allclose(_pulse(cfg, w0, n), np.minimum(c ** n * w0 + a * (1 - c ** n) / (1 - c), 1.0),
                               atol=1e-12)


def test_pow_step_gamma_one_closed_form():
    """pow_gamma = 1: up w += dw (w_max - w)/r, down w -= dw (w - w_min)/r, r = w_max - w_min.
    So the distance to the bound shrinks by (1 - dw/r) per pulse."""
    b_max, b_min, dw = 1.0, -0.6, 0.08
    r = b_max - b_min
    for cls in (PowStepDevice, PowStepReferenceDevice):
        cfg = cls(dw_min=dw, w_max=b_max, w_min=b_min, pow_gamma=1.0, pow_gamma_dtod=0.0, **NO_VAR)
        w0, n = _grid()
        w0 = np.clip(w0, b_min, b_max)
        # up and down devices mixed in one call (two sorted segments in apply_pulses)
        sign = np.where(np.arange(w0.size) % 2 == 0, 1, -1)
        out = _pulse(cfg, w0, sign * n)
        expected = np.where(sign > 0, b_max - (b_max - w0) * (1 - dw / r) ** n,
                            b_min + (w0 - b_min) * (1 - dw / r) ** n)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_pow_step_gamma_two_by_hand():
    b_max, b_min, dw, gam = 1.0, -1.0, 0.1, 2.0
    cfg = PowStepDevice(dw_min=dw, w_max=b_max, w_min=b_min, pow_gamma=gam, pow_gamma_dtod=0.0, **NO_VAR)
    w0 = np.array([-0.5, 0.0, 0.5])
    up = _pulse(cfg, w0, np.array([1, 1, 1]))
    down = _pulse(cfg, w0, np.array([-1, -1, -1]))
    np.testing.assert_allclose(up, w0 + dw * ((b_max - w0) / 2.0) ** 2, atol=1e-14)
    np.testing.assert_allclose(down, w0 - dw * ((w0 - b_min) / 2.0) ** 2, atol=1e-14)
    # two pulses, by hand
    w1 = 0.0 + dw * 0.25
    w2 = w1 + dw * ((1 - w1) / 2) ** 2
    assert _pulse(cfg, np.array([0.0]), np.array([2]))[0] == pytest.approx(w2, abs=1e-15)


@pytest.mark.parametrize("A_up, A_down", [(0.00081, 0.36833), (-1.18445, -0.081404), (5.0, 5.0)])
def test_exp_step_one_pulse(A_up, A_down):
    b_max, b_min, dw = 1.0, -1.0, 0.01
    a, b, gu, gd = 0.244, 0.2425, 12.44625, 12.78785
    cfg = ExpStepDevice(dw_min=dw, w_max=b_max, w_min=b_min, A_up=A_up, A_down=A_down, gamma_up=gu, gamma_down=gd,
                        a=a, b=b, **NO_VAR)
    w0 = np.array([-0.9, -0.3, 0.0, 0.4, 0.8])
    z = 2 * w0 * a / (b_max - b_min) + b
    exp_up = w0 + max_(1 - A_up * np.exp(gu * z)) * dw
    exp_down = w0 - max_(1 - A_down * np.exp(-gd * z)) * dw
    ones = np.ones(w0.size, dtype=int)
    np.testing.assert_allclose(_pulse(cfg, w0, ones), np.clip(exp_up, b_min, b_max), rtol=0, atol=1e-14)
    np.testing.assert_allclose(_pulse(cfg, w0, -ones), np.clip(exp_down, b_min, b_max), rtol=0, atol=1e-14)
    if A_up == 5.0:  # 1 - A exp(...) < 0 somewhere: the step is 0 there, never reversed
        assert np.any(1 - A_up * np.exp(gu * z) < 0)


def max_(v):
    return np.maximum(v, 0.0)


# --------------------------------------------------------------------------- the pure rules
def test_pure_linear_rules():
    c_mult = {"dw_min_std": 0.5, "mult_noise": True}
    c_add = {"dw_min_std": 0.5, "mult_noise": False}
    g, su, sd, slu, sld, e = 0.2, 0.1, 0.08, -0.1, 0.08 / 0.9, 1.5
    p = {"scale_up": su, "scale_down": sd, "slope_up": slu, "slope_down": sld}
    assert rules.linear_step_up(g, p, e, c_mult) == pytest.approx(g + (su + slu * g) * (1 + 0.5 * e))
    assert rules.linear_step_down(g, p, e, c_mult) == pytest.approx(g - (sd + sld * g) * (1 + 0.5 * e))
    assert rules.linear_step_up(g, p, e, c_add) == pytest.approx(g + su * (1 + 0.5 * e) + slu * g)
    assert rules.linear_step_down(g, p, e, c_add) == pytest.approx(g - sd * (1 + 0.5 * e) - sld * g)
    up, down = rules.linear_step_magnitudes(g, p)
    assert up == pytest.approx(su + slu * g) and down == pytest.approx(sd + sld * g)


def test_pure_pow_and_exp_rules():
    p = {"scale_up": 0.1, "scale_down": 0.2, "gamma_up": 2.0, "gamma_down": 0.5, "w_max": 1.0, "w_min": -1.0}
    c = {"dw_min_std": 0.0}
    g = 0.2
    assert rules.pow_step_up(g, p, 0.0, c) == pytest.approx(g + 0.1 * 0.4 ** 2)
    assert rules.pow_step_down(g, p, 0.0, c) == pytest.approx(g - 0.2 * 0.6 ** 0.5)
    up, down = rules.pow_step_magnitudes(g, p)
    assert (up, down) == (pytest.approx(0.1 * 0.4 ** 2), pytest.approx(0.2 * 0.6 ** 0.5))
    ce = {"dw_min_std": 0.1, "A_up": 0.5, "A_down": 0.5, "gamma_up": 2.0, "gamma_down": 2.0, "a": 1.0, "b": 0.0,
          "complex_noise": True, "dw_min_std_add": 0.01, "dw_min_std_slope": 0.2}
    pe = {"scale_up": 0.1, "scale_down": 0.1, "w_max": 1.0, "w_min": -1.0}
    z = 2 * g * 1.0 / 2.0
    dwu = (1 - 0.5 * np.exp(2 * z)) * 0.1
    assert rules.exp_step_up(g, pe, 1.0, ce) == pytest.approx(g + dwu + 0.1 * (abs(dwu) + 0.01 + 0.2 * g) * 1.0)


# --------------------------------------------------------------------------- cycle-to-cycle noise
@pytest.mark.parametrize("mult_noise", [True, False])
def test_c2c_noise_of_one_pulse(mult_noise):
    """One up pulse at g0: mean step = noise-free step; std = dw_min_std * (step if mult else dw).

    200x200 = 40000 devices: the SE of the mean step is std/200, of the std std/283; tolerance 5 SE.
    """
    s, dw, b, g0 = 0.4, 0.05, 1.0, 0.5
    cfg = SoftBoundsDevice(dw_min=dw, w_max=b, w_min=-b, mult_noise=mult_noise,
                           **{**NO_VAR, "dw_min_std": s})
    t = AnalogTile(cfg, 200, 200, dtype=np.float64)
    t.set_weights(g0)
    t.apply_pulses(np.arange(t.w.size), np.ones(t.w.size, dtype=int), np.ones(t.w.size, dtype=bool), distinct=True)
    step = (t.w - g0).ravel()
    mean_step = dw * (1 - g0 / b)
    std = s * (mean_step if mult_noise else dw)
    n = step.size
    assert abs(step.mean() - mean_step) < 5 * std / np.sqrt(n)
    assert abs(step.std() - std) < 5 * std / np.sqrt(2 * n)
