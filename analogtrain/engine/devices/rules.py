"""Per-pulse update rules of the pulsed device models, as small pure functions.

Each rule returns the new *physical* state ``g`` of the devices after one pulse in
one direction, before clipping to the device bounds (the caller clips). All arguments
are NumPy arrays (or scalars) that broadcast against ``g``:

* ``p``: per-device parameters of the touched devices (``scale_up``, ``slope_up``, ...);
* ``eps``: one standard normal per device (the cycle-to-cycle noise of this pulse);
* ``c``: per-replica constants (``dw_min_std``, ``mult_noise``, exp-step constants).

Sign convention (aihwkit): an update of sign ``sign(x_j) sign(d_i) > 0`` is a *down*
(depression) pulse, ``< 0`` an *up* pulse, because SGD subtracts ``lr d x^T``.
"""

from __future__ import annotations

import numpy as np


# --- linear-step family: constant step, soft bounds, linear step -------------------------------

def linear_step_pulse(g, scale, slope, eps, c):
    """One pulse of the linear-step family in signed form (docs/devices.md §1.2, §1.4).

    multiplicative noise:  g + (scale + slope g) (1 + s eps)
    additive noise:        g + scale (1 + s eps) + slope g

    with ``(scale, slope) = (scale_up, slope_up)`` for an up pulse and
    ``(-scale_down, -slope_down)`` for a down pulse. Soft bounds have
    ``slope_up = -scale_up / w_max_ij`` and ``slope_down = -scale_down / w_min_ij`` (the
    step vanishes at the bound), constant step has slopes 0, linear step
    ``slope = -gamma scale / w_ref``.
    """
    s = c["dw_min_std"]
    if c["mult_noise"]:
        return g + (scale + slope * g) * (1.0 + s * eps)
    return g + scale * (1.0 + s * eps) + slope * g


def linear_step_pulse_q(g, scale, slope, q, mult_noise, out, tmp):
    """:func:`linear_step_pulse` written into ``out``, with the noise factor ``q = 1 + s eps``
    given (None: no noise, q = 1) and ``tmp`` a work buffer of g's shape::

        multiplicative noise:  out = g + (scale + slope g) q
        additive noise:        out = g + scale q + slope g

    The same float operations in the same order as :func:`linear_step_pulse` (so the same
    bits), without temporaries: the inner loop of the pulse rounds.
    """
    if mult_noise:
        np.multiply(slope, g, out=tmp)
        np.add(scale, tmp, out=tmp)
        if q is not None:
            np.multiply(tmp, q, out=tmp)
        np.add(g, tmp, out=out)
    else:
        if q is not None:
            np.multiply(scale, q, out=out)
            np.add(g, out, out=out)
        else:
            np.add(g, scale, out=out)
        np.multiply(slope, g, out=tmp)
        np.add(out, tmp, out=out)
    return out


def geometric_sum(log_rho, n):
    """``sum_{k=0}^{n-1} rho^k = expm1(n L) / expm1(L)`` with ``L = log rho`` (``n`` where L = 0),
    evaluated without the cancellation of ``(1 - rho^n) / (1 - rho)`` near rho = 1."""
    den = np.expm1(log_rho)
    return np.divide(np.expm1(n * log_rho), den, out=np.array(n, dtype=np.float64, copy=True), where=den != 0)


def linear_step_aggregate(g, scale, slope, n, s, mult_noise):
    """Mean and variance of the state after ``n`` pulses of one direction of the linear-step family,
    before any clip (docs/pulses.md §2.5); signed ``(scale, slope)`` as in :func:`linear_step_pulse`.

    With ``rho = 1 + slope`` (|slope| < 1) and ``b = -scale / slope`` the noise-free fixed point::

        mean     = rho^n g + scale sum_{k<n} rho^k          (= b - (b - g) rho^n for slope != 0)
        additive noise:       var = (s scale)^2 sum_{k<n} rho^(2k)            (exact: a normal law)
        multiplicative noise: var = (s u)^2 rho^(2n - 2) sum_{k<n} (1 + t)^k,
                              u = scale + slope g (the first step), t = (s slope / rho)^2

    All in float64; n (float) may be 0 (mean g, variance 0).
    """
    L = np.log1p(slope)
    mean = np.exp(n * L) * g + scale * geometric_sum(L, n)
    if mult_noise:
        u = scale + slope * g
        t = np.square(s * slope / (1.0 + slope))
        var = np.square(s * u) * np.exp((2.0 * n - 2.0) * L) * geometric_sum(np.log1p(t), n)
        var = np.where(n > 0, var, 0.0)
    else:
        var = np.square(s * scale) * geometric_sum(2.0 * L, n)
    return mean, var


def linear_step_aggregate_fast(g, scale, slope, n, s, mult_noise, log_rho, log1p_t, t):
    """:func:`linear_step_aggregate` in the array's own dtype, with the per-entry constants
    ``log_rho = log1p(slope)``, ``t = (s slope / rho)^2`` and ``log1p(t)`` given (tabled once per
    device and direction)::

        rho^n - 1 = expm1(n log_rho)            (no cancellation, whatever the slope)
        sum_{k<n} rho^k = (rho^n - 1) / slope                           (n where slope = 0)
        additive:        var = (s scale)^2 (rho^n - 1)(rho^n + 1) / (slope (2 + slope))
        multiplicative:  var = (s u)^2 (rho^n / rho)^2 expm1(n log1p t) / t   (n where t = 0)

    (``rho^(2n) - 1 = (rho^n - 1)(rho^n + 1)``, ``rho^2 - 1 = slope (2 + slope)``). One
    exponential per device, two with multiplicative noise.
    """
    em = np.expm1(n * log_rho)
    rho_n = em + 1
    zero = slope == 0
    any_zero = bool(zero.any())
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = em / slope
        if any_zero:
            geo = np.where(zero, n, geo)
        mean = rho_n * g + scale * geo
        if mult_noise:
            geo_t = np.expm1(n * log1p_t) / t
            geo_t = np.where(t == 0, n, geo_t)
            var = np.square(s * (scale + slope * g)) * np.square(rho_n / (1 + slope)) * geo_t
        else:
            geo2 = em * (rho_n + 1) / (slope * (2 + slope))
            if any_zero:
                geo2 = np.where(zero, n, geo2)
            var = np.square(s * scale) * geo2
    return mean, var


def linear_step_up(g, p, eps, c):
    """Up pulse: ``g + (scale_up + slope_up g)(1 + s eps)`` (multiplicative noise) or
    ``g + scale_up (1 + s eps) + slope_up g`` (additive)."""
    return linear_step_pulse(g, p["scale_up"], p["slope_up"], eps, c)


def linear_step_down(g, p, eps, c):
    """Down pulse: ``g - (scale_down + slope_down g)(1 + s eps)`` (multiplicative noise) or
    ``g - scale_down (1 + s eps) - slope_down g`` (additive)."""
    return linear_step_pulse(g, -p["scale_down"], -p["slope_down"], eps, c)


def linear_step_magnitudes(g, p):
    """Noise-free step sizes (up, down) at state g: ``scale + slope g`` per direction."""
    return p["scale_up"] + p["slope_up"] * g, p["scale_down"] + p["slope_down"] * g


def linear_step_symmetry_point(p):
    """g* where up and down steps are equal: ``(su - sd) / (slope_down - slope_up)``, NaN where the
    device has none.

    For soft bounds this is ``(su - sd) / (su / w_max - sd / w_min)`` (docs/devices.md §1.3). A
    symmetry point exists only where the root lies strictly inside ``(w_min, w_max)``. Where
    the two slopes are equal (constant step, a linear step with gamma = 0) the steps never
    balance: the drift goes to the bound on the side of the larger step, or nowhere if the
    steps are exactly equal; where the root lies outside the range (a nearly constant step)
    the drift ends at a bound too. Neither has a symmetry point: NaN.
    """
    su, sd = p["scale_up"], p["scale_down"]
    den = p["slope_down"] - p["slope_up"]
    num = su - sd
    with np.errstate(divide="ignore", invalid="ignore"):
        sp = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.where((sp > p["w_min"]) & (sp < p["w_max"]), sp, np.nan)


# --- power step ----------------------------------------------------------------------------------

def pow_step_up(g, p, eps, c):
    """Up pulse of the power step: ``g + scale_up ((w_max - g) / r)^gamma_up (1 + s eps)``, r = w_max - w_min."""
    r = p["w_max"] - p["w_min"]
    base = np.maximum((p["w_max"] - g) / r, 0.0)
    return g + p["scale_up"] * base ** p["gamma_up"] * (1.0 + c["dw_min_std"] * eps)


def pow_step_down(g, p, eps, c):
    """Down pulse of the power step: ``g - scale_down ((g - w_min) / r)^gamma_down (1 + s eps)``."""
    r = p["w_max"] - p["w_min"]
    base = np.maximum((g - p["w_min"]) / r, 0.0)
    return g - p["scale_down"] * base ** p["gamma_down"] * (1.0 + c["dw_min_std"] * eps)


def pow_step_magnitudes(g, p):
    r = p["w_max"] - p["w_min"]
    up = p["scale_up"] * np.maximum((p["w_max"] - g) / r, 0.0) ** p["gamma_up"]
    down = p["scale_down"] * np.maximum((g - p["w_min"]) / r, 0.0) ** p["gamma_down"]
    return up, down


# --- exponential step ----------------------------------------------------------------------------

def _exp_z(g, p, c):
    return 2.0 * g * c["a"] / (p["w_max"] - p["w_min"]) + c["b"]


def exp_step_up(g, p, eps, c):
    """Up pulse of the exp step: ``g + max(1 - A_up exp(gamma_up z), 0) (1 + s eps) scale_up``,
    ``z = 2 g a / (w_max - w_min) + b``; with complex noise the noise is
    ``s (|dw| + dw_min_std_add + dw_min_std_slope |g|) eps`` instead."""
    y = np.maximum(1.0 - c["A_up"] * np.exp(c["gamma_up"] * _exp_z(g, p, c)), 0.0)
    return _exp_apply(g, y * p["scale_up"], eps, c)


def exp_step_down(g, p, eps, c):
    """Down pulse of the exp step: ``g - max(1 - A_down exp(-gamma_down z), 0) (1 + s eps) scale_down``."""
    y = np.maximum(1.0 - c["A_down"] * np.exp(-c["gamma_down"] * _exp_z(g, p, c)), 0.0)
    return _exp_apply(g, -y * p["scale_down"], eps, c)


def _exp_apply(g, dw, eps, c):
    if c["complex_noise"]:
        return g + dw + c["dw_min_std"] * (np.abs(dw) + c["dw_min_std_add"] + c["dw_min_std_slope"] * np.abs(g)) * eps
    return g + dw * (1.0 + c["dw_min_std"] * eps)


def exp_step_magnitudes(g, p, c):
    z = _exp_z(g, p, c)
    up = np.maximum(1.0 - c["A_up"] * np.exp(c["gamma_up"] * z), 0.0) * p["scale_up"]
    down = np.maximum(1.0 - c["A_down"] * np.exp(-c["gamma_down"] * z), 0.0) * p["scale_down"]
    return up, down
