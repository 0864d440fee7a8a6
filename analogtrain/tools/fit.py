"""Fit pulsed-device models to measured pulse-response data (``analogtrain device fit``).

Input: a CSV with one row per read-out (see :func:`parse_csv` and docs/device_fit.md):
``pulse`` (int), ``direction`` (``up``/``down``, ``+1``/``-1``; ``start``/``0`` for a read without
a pulse), ``value`` (conductance or normalised weight), optional ``device`` and ``cycle``.

Method. A step is the change of ``value`` between two rows of the same device (and
cycle) whose pulse indices differ by exactly 1; its direction is that of the later row,
its state ``w`` the value before the pulse. Each model predicts the noise-free step
``f(w)`` per direction, and its parameters are the least-squares solution of
``sum_k (dw_k - f(w_k))^2`` over the steps of one device (``scipy.optimize.least_squares``,
trust-region reflective with bounds; linear models start from the closed-form OLS line).
The models, in the data's own units:

* ``soft_bounds`` (the paper's): up ``k_up (b_max - w)``, down ``-k_down (w - b_min)``;
  in normalised units ``alpha_up = k_up b_max``, ``alpha_down = -k_down b_min``, i.e.
  ``alpha_up (1 - w/b_max)`` and ``alpha_down (1 - w/b_min)``;
* ``linear_step``: up ``a_up + s_up w``, down ``-(a_down + s_down w)``, clipped to the hard
  bounds = the extreme values seen (``gamma = -slope w_bound / scale``);
* ``pow_step``: up ``S_up ((w_max - w)/r)^gamma_up``, down ``-S_down ((w - w_min)/r)^gamma_down``;
* ``constant_step``: up ``a_up``, down ``-a_down``, clipped to the extremes seen.

Cycle-to-cycle noise comes from the residuals: additive (std ``dw_min_std * scale`` of the
direction, the paper's soft-bounds-reference convention) or multiplicative (std
``dw_min_std * |f(w)|``); the variant with the higher Gaussian likelihood is chosen
(``mult_noise``). Standard errors of one device's parameters come from the Jacobian at the
solution (``cov = (J^T J)^-1 RSS / (n - p)``, delta method for derived values).

Units. If the fitted bounds contain 0 (w_min < 0 < w_max, as the simulator's weights need)
the data are taken as weights and kept in their units; otherwise (conductances, which are
all positive) the model's fitted range ``[b_min, b_max]`` (soft bounds, power step) or the
range of values seen (linear / constant step) is mapped affinely onto [-1, 1]:
``w = (g - offset) / scale`` with ``offset = (b_max + b_min)/2``, ``scale = (b_max - b_min)/2``
(``normalise="range"`` forces the map, ``"none"`` forbids it). Steps scale by ``1/scale``;
slopes, gammas and relative noise are unchanged.

Several devices: each is fitted on its own; the written device has the mean parameters and
device-to-device spreads from their spread (docs/devices.md §1.1 sampling inverted), less the part of
that spread the fits' own standard errors explain (``sqrt(max(var - mean(se^2), 0))``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analogtrain.errors import ConfigError, InputError

MODEL_NAMES = ("soft_bounds", "linear_step", "pow_step", "constant_step")
#: model -> name of the device model written to the TOML file
CONFIG_MODEL = {"soft_bounds": "soft_bounds_reference", "linear_step": "linear_step", "pow_step": "pow_step",
                "constant_step": "constant_step"}
#: parameters per device and direction pair (hard bounds taken from the data count as parameters)
N_PARAMS = {"constant_step": 4, "soft_bounds": 4, "linear_step": 6, "pow_step": 6}
MIN_STEPS = 5               # per direction and device
SIMPLER_TOLERANCE = 0.01    # a model with more parameters must lower the RMS residual by more than 1 %

_UP = {"up", "+1", "1", "+", "u", "pot", "potentiation", "set"}
_DOWN = {"down", "-1", "-", "d", "dep", "depression", "reset"}
_NONE = {"start", "0", "none", "read", ""}


# ------------------------------------------------------------------------------------- data
@dataclass
class DeviceData:
    """Steps of one device: state before the pulse, change, direction (True = up)."""

    device: str
    w: np.ndarray
    dw: np.ndarray
    up: np.ndarray
    values: np.ndarray          # every value read from the device
    rows: int
    cycles: int

    @property
    def n_up(self) -> int:
        return int(self.up.sum())

    @property
    def n_down(self) -> int:
        return int((~self.up).sum())


def parse_csv(path: str | Path) -> list[DeviceData]:
    """Read a pulse-response CSV; InputError with one clear line on any problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a CSV file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text (byte {e.start}), expected a CSV file") from None
    return parse_csv_text(text, str(p))


def parse_csv_text(text: str, name: str = "CSV") -> list[DeviceData]:
    """Parse the CSV text (see the module docstring) into per-device step data."""
    text = text.removeprefix("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{name}: empty file, expected a CSV with columns pulse, direction, value")
    try:
        reader = csv.reader(io.StringIO("\n".join(lines)))
        rows = list(reader)
    except csv.Error as e:
        raise InputError(f"{name}: not a readable CSV ({e})") from None
    header = [h.strip().lower() for h in rows[0]]
    numbers = list(range(1, len(rows)))          # data row number (1-based) of each row after the header
    wide = [h for h in header if re.fullmatch(r"w_\d+", h)] if "value" not in header else []
    if wide and "device" not in header:
        rows, numbers = _wide_to_long(rows, header, wide, name)
        header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("pulse", "direction", "value") if c not in header]
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)} in the header "
                         f"(got {', '.join(h or '?' for h in header)}); need pulse, direction, value "
                         "[, device, cycle]")
    if len(set(header)) != len(header):
        raise InputError(f"{name}: duplicate column names in the header")
    col = {h: i for i, h in enumerate(header)}
    if len(rows) < 2:
        raise InputError(f"{name}: no data rows after the header")
    has_dev, has_cyc = "device" in col, "cycle" in col
    chains: dict[tuple, list] = {}
    for row_no, r in zip(numbers, rows[1:]):
        if len(r) != len(header):
            raise InputError(f"{name}: data row {row_no} has {len(r)} fields, the header has {len(header)}")
        pulse = _int(r[col["pulse"]], name, row_no, "pulse")
        d = r[col["direction"]].strip().lower()
        if d in _UP:
            direction = 1
        elif d in _DOWN:
            direction = -1
        elif d in _NONE:
            direction = 0
        else:
            raise InputError(f"{name}: data row {row_no}: direction {r[col['direction']]!r} is not up/down/+1/-1 "
                             "(or start/0 for a read without a pulse)")
        value = _float(r[col["value"]], name, row_no, "value")
        dev = r[col["device"]].strip() if has_dev else "0"
        cyc = _int(r[col["cycle"]], name, row_no, "cycle") if has_cyc else 0
        chains.setdefault((dev, cyc), []).append((pulse, direction, value, row_no))
    devices: dict[str, dict] = {}
    for (dev, cyc), items in chains.items():
        items.sort(key=lambda t: t[0])
        pulses = np.array([t[0] for t in items])
        dup = np.flatnonzero(np.diff(pulses) == 0)
        if dup.size:
            raise InputError(f"{name}: pulse index {pulses[dup[0]]} appears twice for device {dev!r}"
                             + (f" in cycle {cyc}" if has_cyc else "") + " (rows "
                             f"{items[dup[0]][3]} and {items[dup[0] + 1][3]})")
        vals = np.array([t[2] for t in items], dtype=np.float64)
        dirs = np.array([t[1] for t in items])
        consecutive = (np.diff(pulses) == 1) & (dirs[1:] != 0)
        e = devices.setdefault(dev, {"w": [], "dw": [], "up": [], "values": [], "rows": 0, "cycles": set()})
        e["w"].append(vals[:-1][consecutive])
        e["dw"].append(np.diff(vals)[consecutive])
        e["up"].append(dirs[1:][consecutive] > 0)
        e["values"].append(vals)
        e["rows"] += len(items)
        e["cycles"].add(cyc)
    out = []
    for dev in sorted(devices, key=_natural):
        e = devices[dev]
        d = DeviceData(device=dev, w=np.concatenate(e["w"]), dw=np.concatenate(e["dw"]),
                       up=np.concatenate(e["up"]).astype(bool), values=np.concatenate(e["values"]),
                       rows=e["rows"], cycles=len(e["cycles"]))
        label = f"device {dev!r}" if has_dev else "the data"
        if d.n_up == 0 or d.n_down == 0:
            only = "up" if d.n_down == 0 else "down"
            if d.n_up + d.n_down == 0:
                raise InputError(f"{name}: {label} has no steps (rows with consecutive pulse indices)")
            raise InputError(f"{name}: {label} has only {only} pulses; the fit needs both up and down pulses")
        if d.n_up < MIN_STEPS or d.n_down < MIN_STEPS:
            raise InputError(f"{name}: too few points: {label} has {d.n_up} up and {d.n_down} down steps "
                             f"(need at least {MIN_STEPS} of each; a step is two rows with consecutive pulse indices)")
        if float(np.mean(d.dw[d.up])) <= 0 or float(np.mean(d.dw[~d.up])) >= 0:
            raise InputError(f"{name}: {label}: up pulses do not increase the value on average (or down pulses "
                             "do not decrease it); are the directions swapped?")
        out.append(d)
    return out


def _wide_to_long(rows: list[list[str]], header: list[str], wide: list[str], name: str) -> tuple[list, list]:
    """``curves.csv`` of ``analogtrain device --out`` (one column ``w_<i>`` per device) -> long rows."""
    keep = [i for i, h in enumerate(header) if h in ("pulse", "direction", "cycle")]
    cols = [header.index(h) for h in wide]
    out = [[header[i] for i in keep] + ["device", "value"]]
    numbers = []
    for k, r in enumerate(rows[1:], start=1):
        if len(r) != len(header):
            raise InputError(f"{name}: data row {k} has {len(r)} fields, the header has {len(header)}")
        for h, c in zip(wide, cols):
            out.append([r[i] for i in keep] + [h[2:], r[c]])
            numbers.append(k)
    return out, numbers


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _int(text: str, name: str, row: int, col: str) -> int:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        raise InputError(f"{name}: data row {row}: {col} {text!r} is not an integer") from None
    if not math.isfinite(f) or f != int(f):
        raise InputError(f"{name}: data row {row}: {col} {text!r} is not an integer")
    return int(f)


def _float(text: str, name: str, row: int, col: str) -> float:
    try:
        f = float(text.strip())
    except ValueError:
        raise InputError(f"{name}: data row {row}: {col} {text!r} is not a number") from None
    if not math.isfinite(f):
        raise InputError(f"{name}: data row {row}: {col} {text!r} is not a finite number")
    return f


# ------------------------------------------------------------------------------------- models
@dataclass
class Model:
    """A step model in the data's units: ``predict(theta, w, up, lo, hi) -> dw``."""

    name: str
    predict: Callable
    init: Callable            # (DeviceData) -> (theta0, lower, upper) or None if not applicable
    #: (theta, offset, scale, lo, hi) -> normalised per-device parameters (dict of floats)
    normalised: Callable
    #: (theta, lo, hi) -> (b_min, b_max) range in data units (the range mapped onto [-1, 1])
    native_range: Callable
    theta_names: tuple


def _ols(w, dw):
    A = np.stack([np.ones_like(w), w], 1)
    (a, s), *_ = np.linalg.lstsq(A, dw, rcond=None)
    return float(a), float(s)


# soft bounds: theta = k_up, b_max, k_down, b_min
def _sb_predict(t, w, up, lo, hi):
    return np.where(up, t[0] * (t[1] - w), -t[2] * (w - t[3]))


def _sb_init(d: DeviceData):
    a_u, s_u = _ols(d.w[d.up], d.dw[d.up])
    a_d, s_d = _ols(d.w[~d.up], -d.dw[~d.up])          # down magnitude = a_d + s_d w
    if not (s_u < 0 and s_d > 0):
        return None, ("the step does not shrink towards a bound in "
                      + ("both directions" if s_u >= 0 and s_d <= 0 else "the up direction" if s_u >= 0
                         else "the down direction"))
    t0 = np.array([-s_u, -a_u / s_u, s_d, -a_d / s_d])
    if not t0[3] < t0[1]:
        return None, "the fitted bounds are in the wrong order"
    return (t0, [0.0, -np.inf, 0.0, -np.inf], [np.inf, np.inf, np.inf, np.inf]), None


def _sb_norm(t, c, s, lo, hi):
    b_max, b_min = (t[1] - c) / s, (t[3] - c) / s
    return {"scale_up": t[0] * b_max, "scale_down": -t[2] * b_min, "w_max": b_max, "w_min": b_min,
            "slope_up": -t[0], "slope_down": t[2]}


# linear step: theta = a_up, s_up, a_down, s_down (down magnitude a_down + s_down w); hard bounds lo, hi
def _ls_predict(t, w, up, lo, hi):
    step = np.where(up, t[0] + t[1] * w, -(t[2] + t[3] * w))
    return np.clip(w + step, lo, hi) - w


def _ls_init(d: DeviceData):
    a_u, s_u = _ols(d.w[d.up], d.dw[d.up])
    a_d, s_d = _ols(d.w[~d.up], -d.dw[~d.up])
    return (np.array([a_u, s_u, a_d, s_d]), [-np.inf] * 4, [np.inf] * 4), None


def _ls_norm(t, c, s, lo, hi):
    su, sd = (t[0] + t[1] * c) / s, (t[2] + t[3] * c) / s
    w_max, w_min = (hi - c) / s, (lo - c) / s
    return {"scale_up": su, "scale_down": sd, "w_max": w_max, "w_min": w_min, "slope_up": t[1],
            "slope_down": t[3], "gamma_up": -t[1] * w_max / su if su else 0.0,
            "gamma_down": -t[3] * w_min / sd if sd else 0.0}


# power step: theta = S_up, gamma_up, S_down, gamma_down, w_max, w_min
def _ps_predict(t, w, up, lo, hi):
    r = max(t[4] - t[5], 1e-300)
    bu = np.maximum((t[4] - w) / r, 0.0)
    bd = np.maximum((w - t[5]) / r, 0.0)
    step = np.where(up, t[0] * bu ** t[1], -t[2] * bd ** t[3])
    return np.clip(w + step, t[5], t[4]) - w


def _ps_init(d: DeviceData):
    span = float(d.values.max() - d.values.min()) or 1.0
    init, _ = _sb_init(d)
    if init is not None:
        k_u, b_max, k_d, b_min = init[0]
        r = b_max - b_min
        t0 = np.array([k_u * r, 1.0, k_d * r, 1.0, b_max, b_min])
    else:
        hi, lo = float(d.values.max()), float(d.values.min())
        t0 = np.array([np.mean(d.dw[d.up]) * 2, 1.0, -np.mean(d.dw[~d.up]) * 2, 1.0, hi, lo])
    mid = float(np.mean(d.values))
    lower = [0.0, 0.01, 0.0, 0.01, mid, mid - 100 * span]
    upper = [np.inf, 20.0, np.inf, 20.0, mid + 100 * span, mid]
    t0 = np.clip(t0, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
    return (t0, lower, upper), None


def _ps_norm(t, c, s, lo, hi):
    return {"scale_up": t[0] / s, "scale_down": t[2] / s, "w_max": (t[4] - c) / s, "w_min": (t[5] - c) / s,
            "gamma_up": t[1], "gamma_down": t[3]}


# constant step: theta = a_up, a_down; hard bounds lo, hi
def _cs_predict(t, w, up, lo, hi):
    return np.clip(w + np.where(up, t[0], -t[1]), lo, hi) - w


def _cs_init(d: DeviceData):
    return (np.array([np.mean(d.dw[d.up]), -np.mean(d.dw[~d.up])]), [0.0, 0.0], [np.inf, np.inf]), None


def _cs_norm(t, c, s, lo, hi):
    return {"scale_up": t[0] / s, "scale_down": t[1] / s, "w_max": (hi - c) / s, "w_min": (lo - c) / s,
            "slope_up": 0.0, "slope_down": 0.0}


MODELS: dict[str, Model] = {
    "soft_bounds": Model("soft_bounds", _sb_predict, _sb_init, _sb_norm, lambda t, lo, hi: (t[3], t[1]),
                         ("k_up", "b_max", "k_down", "b_min")),
    "linear_step": Model("linear_step", _ls_predict, _ls_init, _ls_norm, lambda t, lo, hi: (lo, hi),
                         ("a_up", "s_up", "a_down", "s_down")),
    "pow_step": Model("pow_step", _ps_predict, _ps_init, _ps_norm, lambda t, lo, hi: (t[5], t[4]),
                      ("S_up", "gamma_up", "S_down", "gamma_down", "w_max", "w_min")),
    "constant_step": Model("constant_step", _cs_predict, _cs_init, _cs_norm, lambda t, lo, hi: (lo, hi),
                           ("a_up", "a_down")),
}


# ------------------------------------------------------------------------------------- fitting
@dataclass
class DeviceFit:
    device: str
    theta: np.ndarray
    cov: np.ndarray | None
    residuals: np.ndarray       # data units
    pred: np.ndarray            # data units
    lo: float
    hi: float
    data: DeviceData


def fit_device(model: Model, d: DeviceData) -> DeviceFit:
    """Least-squares fit of one device (scipy.optimize.least_squares, 'trf' with bounds)."""
    from scipy.optimize import least_squares

    init, why = model.init(d)
    if init is None:
        raise _NotApplicable(why)
    t0, lower, upper = init
    lo, hi = float(d.values.min()), float(d.values.max())
    scale = float(np.std(d.dw)) or 1.0

    def resid(t):
        return (d.dw - model.predict(t, d.w, d.up, lo, hi)) / scale

    t0 = np.clip(np.asarray(t0, dtype=np.float64), np.asarray(lower) + 0.0, np.asarray(upper) + 0.0)
    try:
        with np.errstate(all="ignore"):
            res = least_squares(resid, t0, bounds=(lower, upper), method="trf", x_scale="jac", max_nfev=2000)
    except (ValueError, np.linalg.LinAlgError) as e:
        raise _NotApplicable(f"the least-squares fit failed ({e})") from None
    theta = res.x
    r = d.dw - model.predict(theta, d.w, d.up, lo, hi)
    if not np.all(np.isfinite(r)):
        raise _NotApplicable("the fit did not converge to finite values")
    n, p = r.size, theta.size
    cov = None
    J = res.jac * scale       # d(pred)/d(theta) up to sign, in data units
    try:
        if n > p:
            cov = np.linalg.inv(J.T @ J) * float(r @ r) / (n - p)
    except np.linalg.LinAlgError:
        cov = None
    return DeviceFit(device=d.device, theta=theta, cov=cov, residuals=r,
                     pred=model.predict(theta, d.w, d.up, lo, hi), lo=lo, hi=hi, data=d)


class _NotApplicable(Exception):
    pass


def _spread(values: np.ndarray, se: np.ndarray | None) -> float:
    """Device-to-device std of fitted values, less the part each fit's own standard error explains:
    ``sqrt(max(var(values) - mean(se^2), 0))``."""
    var = float(np.var(values))
    if se is not None and np.all(np.isfinite(se)):
        var -= float(np.mean(np.asarray(se) ** 2))
    return math.sqrt(max(var, 0.0))


def _split_scales(su: np.ndarray, sd: np.ndarray, se_u: np.ndarray | None = None,
                  se_d: np.ndarray | None = None) -> dict:
    """Invert the docs/devices.md §1.1 draw: per-device scales -> dw_min, up_down, d2d spreads of gain and r.

    ``scale_up = (min(up_down, 0) + gain + r) dw_min``, ``scale_down = (min(-up_down, 0) + gain - r) dw_min``
    with mean gain 1: ``dw_min`` is the larger mean scale and ``up_down`` shrinks the other one.
    """
    msu, msd = float(np.mean(su)), float(np.mean(sd))
    if msu >= msd:
        dw, ud = msu, 1.0 - msd / msu
    else:
        dw, ud = msd, msu / msd - 1.0
    ub, db = min(ud, 0.0), min(-ud, 0.0)
    gu = su / dw - ub          # gain + r
    gd = sd / dw - db          # gain - r
    gain, r = 0.5 * (gu + gd), 0.5 * (gu - gd)
    se = None
    if se_u is not None and se_d is not None:
        se = 0.5 * np.hypot(se_u, se_d) / dw       # up and down steps are fitted independently
    return {"dw_min": dw, "up_down": ud, "gain_std": _spread(gain, se), "r_std": _spread(r, se)}


def _noise(model_name: str, fits: list[DeviceFit], norm: list[dict], scale: float) -> dict:
    """c2c noise from the normalised residuals r_k: additive vs multiplicative.

    Additive (std ``sigma * scale_dir``): ``sigma^2 = sum r^2 / sum scale_dir^2``;
    multiplicative (std ``sigma * |f(w_k)|``): ``sigma^2 = sum r^2 / sum f(w_k)^2`` (ratio-of-sums
    estimators, consistent under their own model and not thrown off by tiny predicted steps).
    The variant is chosen by the Gaussian log-likelihood at each variant's ML sigma, over the
    steps whose predicted size is at least 1 % of the direction's scale.
    """
    r_all, add_all, mult_all = [], [], []
    for f, pn in zip(fits, norm):
        r_all.append(f.residuals / scale)
        add_all.append(np.where(f.data.up, abs(pn["scale_up"]), abs(pn["scale_down"])))
        mult_all.append(np.abs(f.pred / scale))
    r, a, m = np.concatenate(r_all), np.concatenate(add_all), np.concatenate(mult_all)
    sig_add = float(np.sqrt(np.sum(r ** 2) / np.sum(a ** 2))) if np.any(a > 0) else 0.0
    sig_mult = float(np.sqrt(np.sum(r ** 2) / np.sum(m ** 2))) if np.any(m > 0) else 0.0
    out: dict[str, Any] = {"additive": sig_add, "multiplicative": sig_mult}
    if model_name == "pow_step":          # the simulator's power step has multiplicative noise only
        out.update(chosen="multiplicative", mult_noise=True, dw_min_std=sig_mult)
        return out
    if model_name == "constant_step":     # both variants are the same for a constant step
        out.update(chosen="additive", mult_noise=False, dw_min_std=sig_add)
        return out
    both = (a > 0) & (m >= 0.01 * a)
    n = int(both.sum())
    if n < 3:
        out.update(chosen="additive", mult_noise=False, dw_min_std=sig_add)
        return out
    sa = math.sqrt(float(np.mean((r[both] / a[both]) ** 2))) or 1e-300
    sm = math.sqrt(float(np.mean((r[both] / m[both]) ** 2))) or 1e-300
    ll_a = -n * math.log(sa) - float(np.sum(np.log(a[both])))
    ll_m = -n * math.log(sm) - float(np.sum(np.log(m[both])))
    out["log_likelihood"] = {"additive": ll_a, "multiplicative": ll_m}
    if ll_m > ll_a:
        out.update(chosen="multiplicative", mult_noise=True, dw_min_std=sig_mult)
    else:
        out.update(chosen="additive", mult_noise=False, dw_min_std=sig_add)
    return out


def _mapping(ranges: list[tuple[float, float]], mode: str) -> tuple[float, float, str]:
    lo = float(np.mean([r[0] for r in ranges]))
    hi = float(np.mean([r[1] for r in ranges]))
    straddles = lo < 0 < hi
    if mode == "none" or (mode == "auto" and straddles):
        if not straddles:
            raise _NotApplicable(f"the fitted range [{lo:.4g}, {hi:.4g}] does not contain 0; "
                                 "use --normalise range (or auto) for conductance data")
        return 0.0, 1.0, "none (values taken as normalised weights)"
    if not hi > lo:
        raise _NotApplicable("the fitted range is empty")
    return 0.5 * (hi + lo), 0.5 * (hi - lo), "affine map of the fitted range [b_min, b_max] onto [-1, 1]"


def _ms(vals) -> dict:
    a = np.asarray(vals, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std())}


def fit_model(name: str, data: list[DeviceData], normalise: str = "auto", subtract_sp: bool = False) -> dict:
    """Fit one model to every device; the result dict (JSON-able) includes the device config."""
    model = MODELS[name]
    try:
        fits = [fit_device(model, d) for d in data]
        ranges = [model.native_range(f.theta, f.lo, f.hi) for f in fits]
        c, s, how = _mapping(ranges, normalise)
    except _NotApplicable as e:
        return {"model": name, "applicable": False, "reason": str(e)}
    norm = [model.normalised(f.theta, c, s, f.lo, f.hi) for f in fits]
    noise = _noise(name, fits, norm, s)
    su = np.array([p["scale_up"] for p in norm])
    sd = np.array([p["scale_down"] for p in norm])
    wmax = np.array([p["w_max"] for p in norm])
    wmin = np.array([p["w_min"] for p in norm])
    if np.any(su <= 0) or np.any(sd <= 0):
        return {"model": name, "applicable": False,
                "reason": "a fitted step size at w = 0 is not positive (the model does not describe the data)"}
    several = len(fits) > 1
    ses = [_derived_stderr(model, f, c, s) if f.cov is not None else {} for f in fits]

    def se_of(key):
        vals = np.array([e.get(key, np.nan) for e in ses], dtype=np.float64)
        return vals if np.all(np.isfinite(vals)) else None

    split = _split_scales(su, sd, se_of("scale_up"), se_of("scale_down"))
    dev: dict[str, Any] = {
        "model": CONFIG_MODEL[name],
        "dw_min": split["dw_min"], "up_down": split["up_down"],
        "w_max": float(wmax.mean()), "w_min": float(wmin.mean()),
        "dw_min_std": noise["dw_min_std"],
        "dw_min_dtod": split["gain_std"] if several else 0.0, "dw_min_dtod_log_normal": False,
        "up_down_dtod": split["r_std"] if several else 0.0,
        "w_max_dtod": _spread(wmax, se_of("w_max")) / abs(wmax.mean()) if several and wmax.mean() else 0.0,
        "w_min_dtod": _spread(wmin, se_of("w_min")) / abs(wmin.mean()) if several and wmin.mean() else 0.0,
        "write_noise_std": 0.0, "reference_mean": 0.0, "reference_std": 0.0,
        "subtract_symmetry_point": bool(subtract_sp),
    }
    extra: dict[str, Any] = {}
    if name == "soft_bounds":
        dev.update(mult_noise=noise["mult_noise"], slope_up_dtod=0.0, slope_down_dtod=0.0)
    elif name == "linear_step":
        gu = np.array([p["gamma_up"] for p in norm])
        gd = np.array([p["gamma_down"] for p in norm])
        dev.update(gamma_up=float(gu.mean()), gamma_down=float(gd.mean()),
                   gamma_up_dtod=_spread(gu, se_of("gamma_up")) if several else 0.0,
                   gamma_down_dtod=_spread(gd, se_of("gamma_down")) if several else 0.0,
                   allow_increasing=bool(gu.mean() < 0 or gd.mean() < 0), mean_bound_reference=True,
                   mult_noise=noise["mult_noise"])
        extra["gamma_up"], extra["gamma_down"] = _ms(gu), _ms(gd)
    elif name == "pow_step":
        gu = np.array([p["gamma_up"] for p in norm])
        gd = np.array([p["gamma_down"] for p in norm])
        g = _split_scales(gu, gd, se_of("gamma_up"), se_of("gamma_down"))
        dev.update(pow_gamma=g["dw_min"], pow_up_down=g["up_down"],
                   pow_gamma_dtod=g["gain_std"] if several else 0.0,
                   pow_up_down_dtod=g["r_std"] if several else 0.0)
        extra["gamma_up"], extra["gamma_down"] = _ms(gu), _ms(gd)
    try:
        cfg = _device_config(dev)
    except ConfigError as e:
        return {"model": name, "applicable": False, "reason": f"the fitted device is not a valid config ({e})"}
    sp_cfg = _config_symmetry_point(cfg)
    sp_dev = _device_symmetry_points(name, norm)
    r_all = np.concatenate([f.residuals for f in fits])
    mean_step = float(np.mean(np.abs(np.concatenate([f.data.dw for f in fits]))))
    out = {
        "model": name, "applicable": True, "config_model": CONFIG_MODEL[name], "n_params": N_PARAMS[name],
        "devices": len(fits), "steps": {"up": int(sum(f.data.n_up for f in fits)),
                                        "down": int(sum(f.data.n_down for f in fits))},
        "residual_rms": float(np.sqrt(np.mean(r_all ** 2))),
        "residual_rms_normalised": float(np.sqrt(np.mean(r_all ** 2))) / s,
        "residual_rms_relative": float(np.sqrt(np.mean(r_all ** 2))) / mean_step if mean_step else None,
        "normalisation": {"offset": c, "scale": s, "how": how,
                          "formula": "w = (value - offset) / scale"},
        "parameters": {
            "dw_min": dev["dw_min"], "up_down": dev["up_down"], "w_max": dev["w_max"], "w_min": dev["w_min"],
            "scale_up": _ms(su), "scale_down": _ms(sd), "w_max_devices": _ms(wmax), "w_min_devices": _ms(wmin),
            "dw_min_std": noise["dw_min_std"], "mult_noise": noise["mult_noise"], **extra,
        },
        "noise": noise,
        "n_states": float(cfg.n_states),
        "granularity": float(cfg.granularity),
        "symmetry_point": sp_cfg,
        "symmetry_point_native": c + s * sp_cfg,
        "symmetry_point_devices": _ms(sp_dev),
        "asymmetry": float((su.mean() - sd.mean()) / (su.mean() + sd.mean())),
        "native": {"parameters": list(model.theta_names),
                   "per_device": [{"device": f.device, "theta": f.theta.tolist(),
                                   "stderr": (np.sqrt(np.clip(np.diag(f.cov), 0, None)).tolist()
                                              if f.cov is not None else None)} for f in fits]},
        "device_config": dev,
    }
    if name == "soft_bounds":
        out["parameters"].update(slope_up=_ms([p["slope_up"] for p in norm]),
                                 slope_down=_ms([p["slope_down"] for p in norm]))
    elif name == "linear_step":
        out["parameters"].update(slope_up=_ms([p["slope_up"] for p in norm]),
                                 slope_down=_ms([p["slope_down"] for p in norm]))
    if len(fits) == 1 and ses[0]:
        out["stderr"] = ses[0]
    return out


def _derived_stderr(model: Model, f: DeviceFit, c: float, s: float) -> dict:
    """Delta-method standard errors of the normalised parameters of one device."""
    keys = ("scale_up", "scale_down", "w_max", "w_min", "gamma_up", "gamma_down")

    def g(t):
        p = model.normalised(t, c, s, f.lo, f.hi)
        return np.array([p.get(k, np.nan) for k in keys])

    base = g(f.theta)
    G = np.zeros((len(keys), f.theta.size))
    for j in range(f.theta.size):
        h = 1e-6 * max(abs(f.theta[j]), 1e-12)
        tp = f.theta.copy()
        tp[j] += h
        G[:, j] = (g(tp) - base) / h
    var = np.einsum("ij,jk,ik->i", G, f.cov, G)
    out = {}
    for k, b, v in zip(keys, base, var):
        if np.isfinite(b) and np.isfinite(v):
            out[k] = float(math.sqrt(max(v, 0.0)))
    return out


def _device_config(dev: dict):
    from analogtrain.config.loading import device_from_dict

    return device_from_dict(dict(dev), "device")


def _config_symmetry_point(cfg) -> float:
    """Physical SP of the written device with every spread set to 0 (what `device` reports)."""
    from analogtrain.engine.devices.sampling import sample_device

    zero = {f.name: 0.0 for f in dataclasses.fields(cfg) if f.name.endswith("_dtod")}
    c0 = dataclasses.replace(cfg, **zero)
    p = sample_device(c0, (1, 1), np.random.default_rng(0))
    return float(p["sp"][0, 0])


def _device_symmetry_points(name: str, norm: list[dict]) -> np.ndarray:
    from analogtrain.engine.devices import rules
    from analogtrain.engine.devices.models import MODELS as DEV_MODELS, symmetry_point

    p = {k: np.array([q.get(k, 0.0) for q in norm], dtype=np.float64)
         for k in ("scale_up", "scale_down", "w_max", "w_min", "gamma_up", "gamma_down", "slope_up", "slope_down")}
    if name == "pow_step":
        return symmetry_point(DEV_MODELS["pow_step"], p, {})
    # linear family; slopes in the simulator's convention (slope_up < 0 shrinks up steps,
    # slope_down multiplies w in the down magnitude)
    return rules.linear_step_symmetry_point({"scale_up": p["scale_up"], "scale_down": p["scale_down"],
                                             "slope_up": p["slope_up"], "slope_down": p["slope_down"],
                                             "w_max": p["w_max"], "w_min": p["w_min"]})


def choose(results: list[dict]) -> dict | None:
    """The best applicable model: the lowest RMS residual, but a model with fewer parameters
    wins if its RMS is within SIMPLER_TOLERANCE (1 %) of the best."""
    ok = [r for r in results if r.get("applicable")]
    if not ok:
        return None
    best = min(r["residual_rms"] for r in ok)
    close = [r for r in ok if r["residual_rms"] <= best * (1 + SIMPLER_TOLERANCE) + 1e-300]
    return min(close, key=lambda r: (r["n_params"], r["residual_rms"]))


def fit(data: list[DeviceData], model: str = "auto", normalise: str = "auto", subtract_sp: bool = False) -> dict:
    """Fit the requested model (or all, choosing the best) to the devices' steps."""
    if normalise not in ("auto", "none", "range"):
        raise ConfigError(f"--normalise: must be auto, none or range (got {normalise!r})")
    names = MODEL_NAMES if model == "auto" else (model,)
    if model != "auto" and model not in MODELS:
        raise ConfigError(f"--model: must be auto or one of {', '.join(MODEL_NAMES)} (got {model!r})")
    results = [fit_model(n, data, normalise, subtract_sp) for n in names]
    chosen = choose(results)
    if chosen is None:
        reasons = "; ".join(f"{r['model']}: {r['reason']}" for r in results)
        raise InputError(f"no device model fits the data ({reasons})")
    return {"chosen": chosen["model"], "selection": ("--model " + model) if model != "auto" else
            f"lowest RMS residual; fewer parameters preferred within {SIMPLER_TOLERANCE:.0%}",
            "models": results, "result": chosen,
            "data": {"devices": len(data), "rows": int(sum(d.rows for d in data)),
                     "steps_up": int(sum(d.n_up for d in data)), "steps_down": int(sum(d.n_down for d in data)),
                     "value_min": float(min(d.values.min() for d in data)),
                     "value_max": float(max(d.values.max() for d in data))}}


def device_toml(result: dict, source: str = "") -> str:
    """TOML text of the chosen model's ``[device]`` table, with the fit summary as comments."""
    from analogtrain.results.render import to_toml

    dev = result["device_config"]
    sp = result["symmetry_point"]
    header = "\n".join([
        f"analogtrain device fit{(' ' + source) if source else ''}",
        f"model: {result['model']} (device model {dev['model']}), {result['devices']} device(s), "
        f"{result['steps']['up']} up / {result['steps']['down']} down steps",
        f"RMS residual {result['residual_rms']:.4g} (data units), {result['residual_rms_normalised']:.4g} "
        f"(normalised)",
        f"n_states {result['n_states']:.4g}, symmetry point {sp:.4g} (normalised)",
        f"normalisation: {result['normalisation']['how']}: w = (value - {result['normalisation']['offset']:.6g})"
        f" / {result['normalisation']['scale']:.6g}",
        "use: analogtrain device --device-config FILE   (also program / train --device-config FILE)",
    ])
    return to_toml({"device": dev}, header=header)


def run(cfg):
    """Fit the data of a :class:`~analogtrain.config.fit.FitConfig`."""
    from analogtrain.results.fit import FitResult

    data = parse_csv(cfg.data)
    return FitResult(config=cfg, fit=fit(data, model=cfg.model, normalise=cfg.normalise, subtract_sp=cfg.subtract_sp),
                     data=data)
