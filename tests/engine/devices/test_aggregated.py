"""pulse_mode = "aggregated" (docs/pulses.md §2.5): the closed-form law of n same-direction pulses
against the exact pulse-by-pulse path.

Statistical tests: ``N = 20 000`` identical devices (no device-to-device spread, so every device
follows the same law) start at one state and receive n pulses of one direction, once pulse by
pulse (``apply_pulses``, exact) and once aggregated (``apply_aggregated``), each with its own
seeded noise stream. Tolerances: the means agree within 5 standard errors of their difference
(``sqrt((v_e + v_a) / N)``: a false alarm has probability below 1e-6 for normal laws) and the
variances within 6 % (a sample variance of N normal draws has a relative standard error of
``sqrt(2 / N) = 1 %``, the ratio of two of them 1.4 %, so 6 % is over four standard errors, with
room for the heavier tails of the product law of multiplicative noise). The start points keep
every device far from its bounds, where the end clip of the aggregated path and the per-pulse
clip of the exact one coincide. Fixed seeds: the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import (ConstantStepDevice, LinearStepDevice, PowStepDevice, SoftBoundsDevice,
                                SoftBoundsReferenceDevice)
from analogtrain.engine.devices import rules
from analogtrain.engine.devices.array import DeviceArray, apply_aggregated, apply_pulses
from analogtrain.seeding import generator

N = 20_000
FLAT = dict(dw_min=0.01, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.0,
            w_min_dtod=0.0)

# the linear-step family: every model and noise kind with a closed form
MODELS = {
    "soft_bounds_mult": SoftBoundsDevice(dw_min_std=0.3, mult_noise=True, **FLAT),
    "soft_bounds_additive": SoftBoundsReferenceDevice(dw_min_std=0.3, mult_noise=False, **FLAT),
    "constant_step": ConstantStepDevice(dw_min_std=0.3, **FLAT),
    "linear_step": LinearStepDevice(dw_min_std=0.5, gamma_up=0.5, gamma_down=0.8, gamma_up_dtod=0.0,
                                    gamma_down_dtod=0.0, **FLAT),
}


def _run(cfg, g0: float, n: int, up: bool, aggregated: bool, seed: int, dtype=np.float64) -> np.ndarray:
    dev = DeviceArray([cfg], (100, N // 100), [generator(0, "device", 0)], dtype=dtype)
    w = np.full(N, g0, dtype=dtype) - dev.flat_p["ref"]
    idx = np.arange(N)
    counts = np.full(N, n, dtype=np.int64)
    ups = np.full(N, up)
    if aggregated:
        apply_aggregated(dev, w, idx, counts, ups, generator(seed, "noise"))
    else:
        apply_pulses(dev, w, idx, counts, ups, generator(seed, "noise"), distinct=True)
    return (w + dev.flat_p["ref"]).astype(np.float64)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("n", [1, 2, 5, 31])
@pytest.mark.parametrize("g0,up", [(-0.5, True), (0.0, False), (0.4, True), (0.5, False)])
def test_mean_and_variance_match_the_exact_path(model, n, g0, up):
    cfg = MODELS[model]
    e = _run(cfg, g0, n, up, aggregated=False, seed=1)
    a = _run(cfg, g0, n, up, aggregated=True, seed=2)
    se = np.sqrt((e.var() + a.var()) / N)
    assert abs(a.mean() - e.mean()) < 5 * se, (a.mean(), e.mean(), se)
    assert a.var() == pytest.approx(e.var(), rel=0.06)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("n", [1, 2, 5, 31])
def test_without_noise_equals_the_recursion(model, n):
    """dw_min_std = 0: the closed form is the noise-free recursion, number by number."""
    cfg = type(MODELS[model])(**{**MODELS[model].__dict__, "dw_min_std": 0.0})
    for g0, up in ((-0.5, True), (0.3, False)):
        np.testing.assert_allclose(_run(cfg, g0, n, up, True, 0), _run(cfg, g0, n, up, False, 0), rtol=0,
                                   atol=1e-12)


def test_closed_form_by_hand():
    """Soft bounds up pulses: scale 0.1, slope -0.1 (b = 1), rho = 0.9, s = 0.5, from g = 0.
    n = 2: mean 1 - 0.81 = 0.19; additive var (0.05)^2 (1 + 0.81); multiplicative
    h_0 = -1: var = (0.81 + 0.0025)^2 - 0.81^2."""
    g, sc, sl, n = np.array([0.0]), np.array([0.1]), np.array([-0.1]), np.array([2.0])
    m, v = rules.linear_step_aggregate(g, sc, sl, n, 0.5, False)
    assert m[0] == pytest.approx(0.19) and v[0] == pytest.approx(0.0025 * 1.81)
    m, v = rules.linear_step_aggregate(g, sc, sl, n, 0.5, True)
    assert m[0] == pytest.approx(0.19) and v[0] == pytest.approx(0.8125 ** 2 - 0.81 ** 2)
    # constant step (slope 0): n scale, n (s scale)^2; n = 0: nothing
    m, v = rules.linear_step_aggregate(g, sc, np.array([0.0]), np.array([5.0]), 0.5, True)
    assert m[0] == pytest.approx(0.5) and v[0] == pytest.approx(5 * 0.05 ** 2)
    m, v = rules.linear_step_aggregate(np.array([0.3]), sc, sl, np.array([0.0]), 0.5, True)
    assert m[0] == pytest.approx(0.3) and v[0] == 0.0


def test_models_without_closed_form_run_exactly():
    """The power step has no closed form: aggregated is the exact path (same stream, same numbers)."""
    cfg = PowStepDevice(dw_min=0.02, dw_min_std=0.3, pow_gamma=1.5, **{k: v for k, v in FLAT.items()
                                                                          if k != "dw_min"})
    np.testing.assert_array_equal(_run(cfg, 0.1, 5, True, True, 3), _run(cfg, 0.1, 5, True, False, 3))


def test_float32_stays_in_bounds():
    """The default dtype: near a bound the end clip keeps every device inside its range."""
    a = _run(MODELS["soft_bounds_mult"], 0.97, 31, True, True, 4, dtype=np.float32)
    assert a.max() <= 1.0 and np.isfinite(a).all()


@pytest.mark.parametrize("mult", [True, False])
def test_fast_form_equals_the_reference_form(mult):
    """The tabled, expm1-based form used by the tile equals the float64 reference form, also for
    tiny and zero slopes (no cancellation), within float32 rounding."""
    rng = np.random.default_rng(0)
    slope = np.concatenate([[0.0, 1e-9, -1e-9, 1e-6], rng.uniform(-0.3, 0.3, 200)])
    scale = rng.uniform(-0.1, 0.1, slope.size)
    g = rng.uniform(-0.5, 0.5, slope.size)
    n = rng.integers(0, 40, slope.size).astype(np.float64)
    s = 0.4
    t = np.square(s * slope / (1 + slope))
    m_ref, v_ref = rules.linear_step_aggregate(g, scale, slope, n, s, mult)
    f4 = np.float32
    m, v = rules.linear_step_aggregate_fast(g.astype(f4), scale.astype(f4), slope.astype(f4), n.astype(f4), f4(s),
                                            mult, np.log1p(slope).astype(f4), np.log1p(t).astype(f4), t.astype(f4))
    np.testing.assert_allclose(m, m_ref, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(v, v_ref, rtol=2e-4, atol=1e-12)
