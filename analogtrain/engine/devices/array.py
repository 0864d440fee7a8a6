"""A stack of sampled device arrays and the pulse-by-pulse application of pulse counts.

:class:`DeviceArray` holds the per-device parameters of ``R`` replica arrays of shape
``(out, in)`` as ``(R, out, in)`` arrays, and the per-replica constants as ``(R,)``
arrays. :func:`apply_pulses` applies pulse counts (or time-ordered pulse sequences) to
the touched devices, one pulse at a time with the model's rule (so soft bounds are
re-evaluated after every pulse and every pulse draws its own cycle-to-cycle noise),
clipping to the device's own bounds after each pulse; :func:`pulse_rounds` is its one
loop over pulse rounds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from analogtrain.config.device import PulsedDevice
from analogtrain.errors import ConfigError
from analogtrain.seeding import standard_normal
from analogtrain.engine.devices import rules
from analogtrain.engine.devices.models import MODELS, ModelSpec
from analogtrain.engine.devices.sampling import replica_constants, sample_device

_PER_DEVICE = ("scale_up", "scale_down", "w_max", "w_min", "ref", "sp", "reset_bias", "decay_scale",
               "diffusion_rate", "slope_up", "slope_down", "gamma_up", "gamma_down")


class DeviceArray:
    """Sampled device parameters of R stacked (out, in) arrays.

    Attributes
    ----------
    cfgs : tuple of PulsedDevice, one per replica (all of the same model)
    spec : ModelSpec of that model
    p : dict name -> (R, out, in) array of per-device parameters (``dtype``)
    c : dict name -> (R,) array (or bool) of per-replica constants
    has_ref : whether any replica has a non-zero reference (``ref``)
    """

    def __init__(self, cfgs: Sequence[PulsedDevice], shape: tuple[int, int],
                 rngs: Sequence[np.random.Generator], dtype=np.float32):
        cfgs = tuple(cfgs)
        if len(cfgs) != len(rngs) or not cfgs:
            raise ValueError("need one generator per replica config")
        models = {c.model for c in cfgs}
        if len(models) != 1:
            raise ConfigError(f"device.model: replicas of one stack must share a model (got {sorted(models)})")
        self.cfgs = cfgs
        self.spec: ModelSpec = MODELS[cfgs[0].model]
        self.shape = (len(cfgs),) + tuple(shape)
        self.dtype = np.dtype(dtype)
        draws = [sample_device(c, shape, r) for c, r in zip(cfgs, rngs)]
        self.p = {k: np.stack([d[k] for d in draws]).astype(self.dtype) for k in _PER_DEVICE if k in draws[0]}
        consts = [replica_constants(c) for c in cfgs]
        # per-replica constants: (R,) float64 arrays for bookkeeping (self.c); for the rules,
        # constants equal in all replicas become scalars, the others per-device arrays
        self.c: dict = {}
        self.c_rule: dict = {}
        for k in consts[0]:
            vals = [cc[k] for cc in consts]
            if isinstance(vals[0], bool):
                if len(set(vals)) != 1:
                    raise ConfigError(f"device.{k}: must be the same for all replicas of one stack")
                self.c[k] = self.c_rule[k] = vals[0]
                continue
            self.c[k] = np.asarray(vals, dtype=np.float64)
            if len(set(vals)) == 1:
                self.c_rule[k] = self.dtype.type(vals[0])
            else:
                self.p["const_" + k] = np.broadcast_to(
                    self.c[k].astype(self.dtype)[:, None, None], self.shape).copy()
        self.has_ref = bool(np.any(self.p["ref"] != 0))
        if self.spec.signed is not None:
            # signed step tables, interleaved per device: entry 2n (down) and 2n + 1 (up) hold
            # (-scale_down, scale_up) and (-slope_down, slope_up) of device n, so the gather
            # of a pulsed device's parameters stays local in memory
            self.signed_scale = np.stack([-self.p["scale_down"].ravel(), self.p["scale_up"].ravel()], 1).ravel()
            self.signed_slope = np.stack([-self.p["slope_down"].ravel(), self.p["slope_up"].ravel()], 1).ravel()
            # the same entries with the device's bounds, one 16-byte row per (device, direction):
            # row 2n + u = (scale, slope, w_min, w_max), so a pulsed device costs one row gather
            lo, hi = self.p["w_min"].ravel(), self.p["w_max"].ravel()
            self.signed_rows = np.stack([self.signed_scale, self.signed_slope, np.repeat(lo, 2), np.repeat(hi, 2)], 1)
        self.flat_p = {k: v.reshape(-1) for k, v in self.p.items()}
        #: every rule constant is one scalar for all replicas (no per-device gather needed)
        self.uniform_constants = all(k in self.c_rule for k in self.c)
        #: the fast in-place kernel of the linear-step family applies (see pulse_rounds): its rule
        #: reads only dw_min_std and mult_noise, which must then be one value for all replicas
        self.fast_signed = self.spec.signed is not None and "dw_min_std" in self.c_rule
        self._work: dict[str, np.ndarray] = {}
        self._aggregate: np.ndarray | None = None
        self.has_write_noise = bool(np.any(self.c["write_noise"] > 0))
        self.has_c2c_noise = bool(np.any(self.c["dw_min_std"] > 0))
        self.has_decay = any(c.lifetime > 0 for c in cfgs)
        self.has_diffusion = any(c.diffusion > 0 for c in cfgs)

    @property
    def n_replicas(self) -> int:
        return self.shape[0]

    @property
    def plane(self) -> int:
        """Devices per replica (out * in)."""
        return self.shape[1] * self.shape[2]

    def dw_min(self) -> np.ndarray:
        """(R,) mean step size of each replica (the unit of update management)."""
        return self.c["dw_min"]

    def granularity(self) -> np.ndarray:
        return self.c["granularity"]

    def symmetry_point(self) -> np.ndarray:
        """(R, out, in) physical symmetry point g* of every device."""
        return self.p["sp"]

    def clip_physical(self, g: np.ndarray) -> np.ndarray:
        """Clip physical states (R, out, in) to each device's bounds."""
        return np.clip(g, self.p["w_min"], self.p["w_max"])

    def aggregate_tables(self) -> dict[str, np.ndarray]:
        """The per-(device, direction) constants of the aggregated mode (docs/pulses.md §2.5),
        built on first use, indexed like :attr:`signed_slope` (entry ``2 n + u``): ``log_rho =
        log1p(slope)``, ``t = (s slope / rho)^2`` (s = dw_min_std of the device's replica) and
        ``log1p_t``; ``steep`` marks slope <= -1 (no closed form; log_rho, t set to 0 there)."""
        if self._aggregate is None:
            slope = self.signed_slope.astype(np.float64)
            s = np.repeat(self.c["dw_min_std"], 2 * self.plane)
            steep = slope <= -1.0
            ok = np.where(steep, 0.0, slope)
            t = np.square(s * ok / (1.0 + ok))
            self._aggregate = {"log_rho": np.log1p(ok).astype(self.dtype), "t": t.astype(self.dtype),
                               "log1p_t": np.log1p(t).astype(self.dtype), "steep": steep,
                               "any_steep": bool(steep.any())}
        return self._aggregate

    def all_constants(self) -> dict:
        """The rule constants of every device (flat order): scalars where all replicas agree."""
        if self.uniform_constants:
            return self.c_rule
        return {**self.c_rule, **{k: self.flat_p["const_" + k] for k in self.c if k not in self.c_rule}}

    def work(self, name: str, n: int) -> np.ndarray:
        """A reusable work buffer of at least ``n`` elements (``dtype``), kept between calls so
        that the per-update hot path allocates nothing per round; returns its first n."""
        buf = self._work.get(name)
        if buf is None or buf.size < n:
            buf = self._work[name] = np.empty(max(n, 2 * (buf.size if buf is not None else 0)), dtype=self.dtype)
        return buf[:n]

    def constants_for(self, flat_idx: np.ndarray) -> dict:
        """Per-replica rule constants for the devices ``flat_idx``: scalars where all
        replicas agree, gathered per-device arrays where they differ (the shared dict
        itself when all agree: callers must not modify it)."""
        if self.uniform_constants:
            return self.c_rule
        out = dict(self.c_rule)
        for k in self.c:
            if k not in out:
                out[k] = self.p["const_" + k].reshape(-1).take(flat_idx)
        return out


def _slice(d: dict, n: int) -> dict:
    return {k: (v[:n] if isinstance(v, np.ndarray) and v.ndim == 1 else v) for k, v in d.items()}


def apply_pulses(dev: DeviceArray, w_flat: np.ndarray, idx: np.ndarray, counts: np.ndarray, up: np.ndarray,
                 rng: np.random.Generator, *, distinct: bool = False) -> None:
    """Apply pulses to the devices of ``w_flat`` in place: entry k gives ``counts[k] >= 1``
    pulses to device ``idx[k]``, up if ``up[k]`` else down.

    ``w_flat`` is the flat stored weight (``g - ref``) of all R*out*in devices. Entries are
    in time order and a device may appear several times, with different directions (one
    entry per sample of a mini-batch): each device receives its pulses one by one in that
    order, exactly as a per-sample loop would apply them. ``distinct`` declares one entry
    per device (a single update). Each pulse applies the model rule to the physical state
    ``g = w + ref`` with a fresh N(0, 1) draw and clips ``g`` to ``[w_min_ij, w_max_ij]``.

    All pulses run in :func:`pulse_rounds`. The order in which *different* devices are
    visited does not change the physics, only which noise draw each pulse gets; it is
    fixed as follows (and so are the results):

    * ``distinct``, model with a signed rule: devices by count (descending, stable), both
      directions in the same rounds; other models: the up devices, then the down devices,
      as two sorted segments (each segment runs one rule);
    * sequences: devices by flat index, then by total count (descending, stable); round
      r gives every device its own r-th pulse, in the direction of that pulse.
    """
    if idx.size == 0:
        return
    if distinct:
        _apply_distinct(dev, w_flat, idx, counts, up, rng)
    else:
        _apply_sequences(dev, w_flat, idx, counts, up, rng)


def _apply_distinct(dev, w_flat, idx, counts, up, rng) -> None:
    """One entry per device (see :func:`apply_pulses`); all noise drawn in one call."""
    if dev.spec.signed is not None:
        n_ge = rounds_of(counts)
        eps = _noise(dev, rng, sum(n_ge))
        if len(n_ge) == 1:  # one pulse per device (the common case): no sorting needed
            pulse_rounds(dev, w_flat, idx, counts, up, eps, n_ge=n_ge)
            return
        order = _order_by_count(counts)
        sel = ((idx << 1) | up).take(order)                # signed index 2 n + up, by count
        pulse_rounds(dev, w_flat, sel >> 1, None, sel & 1, eps, n_ge=n_ge, sel=sel)
        return
    eps = _noise(dev, rng, int(counts.sum()))
    n_up = int(np.count_nonzero(up))
    key = counts.astype(np.int64) + (up.astype(np.int64) << 32)
    order = np.argsort(-key, kind="stable")
    ii, cc, uu = idx[order], counts[order], up[order]
    off = pulse_rounds(dev, w_flat, ii[:n_up], cc[:n_up], uu[:n_up], eps)
    pulse_rounds(dev, w_flat, ii[n_up:], cc[n_up:], uu[n_up:], eps, off)


def _apply_sequences(dev, w_flat, idx, counts, up, rng) -> None:
    """Time-ordered entries, devices repeated (see :func:`apply_pulses`): the pulses are
    expanded device-major, each device's in time order, and the devices sorted by their
    total number of pulses."""
    o = np.argsort(idx, kind="stable")                 # device-major, time order kept
    dev_s, cnt_s, up_s = idx[o], counts[o].astype(np.int64), up[o]
    pulse_up = np.repeat(up_s, cnt_s)                  # every pulse's direction, device-major
    first = np.flatnonzero(np.r_[True, dev_s[1:] != dev_s[:-1]])
    devices = dev_s[first]
    totals = np.add.reduceat(cnt_s, first)
    if totals.max() == 1 and dev.spec.signed is not None:  # one pulse per device: its direction is pulse_up
        pulse_rounds(dev, w_flat, devices, totals, pulse_up, _noise(dev, rng, devices.size), single=True)
        return
    starts = np.r_[0, np.cumsum(totals)[:-1]]
    order = _order_by_count(totals)
    devices, totals, starts = devices[order], totals[order], starts[order]
    pulse_rounds(dev, w_flat, devices, totals, pulse_up, _noise(dev, rng, int(totals.sum())), starts=starts)


def _order_by_count(counts: np.ndarray) -> np.ndarray:
    """Stable order by count, descending (radix sort on uint8 where counts < 256)."""
    if counts.dtype == np.uint8:
        return np.argsort(~counts, kind="stable")
    if counts.max() < 256:
        return np.argsort(~counts.astype(np.uint8), kind="stable")
    return np.argsort(-counts.astype(np.int64), kind="stable")


def rounds_of(counts: np.ndarray) -> list[int]:
    """``n_ge[r]`` = the number of devices with more than r pulses, r = 0 .. max(counts) - 1
    (the size of round r's prefix once the devices are sorted by count); counts >= 1."""
    n_ge = [counts.size]
    while True:
        n = int(np.count_nonzero(counts > len(n_ge)))
        if n == 0:
            return n_ge
        n_ge.append(n)


def pulse_rounds(dev: DeviceArray, w_flat: np.ndarray, ii: np.ndarray, counts: np.ndarray | None, up: np.ndarray,
                 eps: np.ndarray | None, off: int = 0, *, starts: np.ndarray | None = None,
                 single: bool = False, n_ge: list[int] | None = None, sel: np.ndarray | None = None) -> int:
    """Give ``counts[k]`` pulses to device ``ii[k]``, in rounds; returns the noise offset after them.

    ``ii`` are distinct flat device indices sorted by their pulse count ``counts``
    (descending), so the devices receiving an r-th pulse are a prefix of ``n_r`` of them
    and round r = 0, 1, ... updates that prefix in one expression::

        g[:n_r] <- clip(rule_u(g[:n_r], eps[off : off + n_r]), w_min, w_max),   off <- off + n_r

    where ``u``, per device, is the direction of its own r-th pulse: ``up[k]`` for all its
    pulses (``starts`` None), or ``up[starts[k] + r]`` (``starts`` given: ``up`` lists the
    direction of every pulse, device-major, device k's from ``starts[k]`` on). A model
    with a signed rule (the linear-step family) evaluates both directions in one
    expression; with ``starts`` None its step parameters are gathered once, and when its
    rule constants are shared by all replicas it runs in place
    (:func:`~.rules.linear_step_pulse_q`: the noise factor ``q = 1 + s eps`` of every pulse
    formed once, work buffers reused, the same float operations as the rule). Other models,
    with ``starts`` None, need one direction for all ``ii`` (they run that rule), else
    they evaluate both rules and pick per pulse. ``eps``: the N(0, 1) draws (None: no
    cycle-to-cycle noise). ``single``: every count is 1 (one round, ``ii`` need not be sorted).
    ``n_ge`` (the round sizes) and ``sel`` (``2 ii + up``) may be given when known.
    """
    if ii.size == 0:
        return off
    if n_ge is None:
        # n_ge[r] = number of devices with more than r pulses (counts sorted descending)
        n_ge = [ii.size] if single else \
            np.searchsorted(-counts.astype(np.int64), -np.arange(1, int(counts[0]) + 1), side="right").tolist()
    spec, flat_p = dev.spec, dev.flat_p
    g = w_flat.take(ii)
    ref = flat_p["ref"].take(ii) if dev.has_ref else None
    if dev.fast_signed and starts is None:
        step, lo, hi = _signed_step(dev, g, ii, sel if sel is not None else (ii << 1) | up, n_ge, eps, off)
    else:
        c = dev.constants_for(ii)
        lo, hi = flat_p["w_min"].take(ii), flat_p["w_max"].take(ii)
        noise = (lambda o, n: eps[o:o + n]) if eps is not None else (lambda o, n: 0.0)
        if spec.signed is not None and starts is None:
            sel = 2 * ii + up
            scale, slope = dev.signed_scale.take(sel), dev.signed_slope.take(sel)

            def step(r, n, o):
                return spec.signed(g[:n], scale[:n], slope[:n], noise(o, n), _slice(c, n))
        elif spec.signed is not None:
            def step(r, n, o):
                sel = 2 * ii[:n] + up.take(starts[:n] + r)
                return spec.signed(g[:n], dev.signed_scale.take(sel), dev.signed_slope.take(sel), noise(o, n),
                                   _slice(c, n))
        elif starts is None:
            rule, names = (spec.up, spec.up_params) if up[0] else (spec.down, spec.down_params)
            p = {k: flat_p[k].take(ii) for k in names}

            def step(r, n, o):
                return rule(g[:n], _slice(p, n), noise(o, n), _slice(c, n))
        else:
            def step(r, n, o):
                u = up.take(starts[:n] + r)
                pu = {k: flat_p[k].take(ii[:n]) for k in spec.up_params}
                pd = {k: flat_p[k].take(ii[:n]) for k in spec.down_params}
                cn, e = _slice(c, n), noise(o, n)
                return np.where(u, spec.up(g[:n], pu, e, cn), spec.down(g[:n], pd, e, cn))
    if ref is not None:
        g += ref
    for r, n in enumerate(n_ge):          # the one loop over pulse rounds
        gk = step(r, n, off)
        np.maximum(gk, lo[:n], out=gk)
        np.minimum(gk, hi[:n], out=g[:n])
        off += n
    if ref is not None:
        g -= ref
    w_flat[ii] = g
    return off


def _signed_step(dev: DeviceArray, g: np.ndarray, ii: np.ndarray, sel: np.ndarray, n_ge: list[int],
                 eps: np.ndarray | None, off: int):
    """The in-place round step of the linear-step family with shared rule constants, for
    :func:`pulse_rounds`: returns (step, w_min, w_max) of the devices ``ii`` (``sel = 2 ii + up``
    their signed step entries). The noise factor ``q = 1 + s eps`` of every pulse is formed
    once; each round runs :func:`~.rules.linear_step_pulse_q` (the same float operations as
    :func:`~.rules.linear_step_pulse`) into reused buffers."""
    K, total = ii.size, sum(n_ge)
    c = dev.c_rule
    if total > 2 * K:   # many rounds: contiguous step parameters (a strided column costs more per round)
        lo, hi = dev.flat_p["w_min"].take(ii), dev.flat_p["w_max"].take(ii)
        scale, slope = dev.signed_scale.take(sel), dev.signed_slope.take(sel)
    else:               # one or two rounds: one (K, 4) row gather, used as strided columns
        scale, slope, lo, hi = dev.signed_rows.take(sel, axis=0).T
    q = None
    if eps is not None:
        q = np.multiply(eps[off:off + total], c["dw_min_std"], out=dev.work("q", total))
        np.add(q, 1.0, out=q)
    out, tmp = dev.work("out", K), dev.work("tmp", K)
    mult = c["mult_noise"]

    def step(r, n, o):
        return rules.linear_step_pulse_q(g[:n], scale[:n], slope[:n], q[o - off:o - off + n] if q is not None else None,
                                         mult, out[:n], tmp[:n])
    return step, lo, hi


def apply_aggregated(dev: DeviceArray, w_flat: np.ndarray, idx: np.ndarray, counts: np.ndarray, up: np.ndarray,
                     rng: np.random.Generator) -> None:
    """``pulse_mode = "aggregated"`` (docs/pulses.md §2.5): the ``counts[k]`` same-direction pulses
    of device ``idx[k]`` (distinct devices, one update) in closed form, one N(0, 1) draw per
    device, then one clip::

        g <- clip(mean_n(g) + sqrt(var_n(g)) xi, w_min, w_max)       (rules.linear_step_aggregate)

    exact in law for additive noise and without noise, the first two moments for
    multiplicative noise; models without a closed form (power, exp step) take the exact path,
    and so do devices whose single step overshoots its fixed point (signed slope <= -1, a
    device whose range the draw has nearly collapsed; they draw their noise after the others).
    The per-entry constants (log rho, t) come from :meth:`DeviceArray.aggregate_tables`, so an
    update costs one exponential per device (two with multiplicative noise), in the array's
    dtype.
    """
    if dev.spec.signed is None or counts.max() == 1:
        # no closed form; or one pulse per device, where the exact rule already is the law of §2.5
        _apply_distinct(dev, w_flat, idx, counts, up, rng)
        return
    sel = (idx << 1) | up
    tab = dev.aggregate_tables()
    mult = dev.c_rule["mult_noise"]
    ref = dev.flat_p["ref"].take(idx) if dev.has_ref else 0.0
    g0 = w_flat.take(idx) + ref
    s = dev.constants_for(idx)["dw_min_std"]
    mean, var = rules.linear_step_aggregate_fast(
        g0, dev.signed_scale.take(sel), dev.signed_slope.take(sel), counts.astype(dev.dtype), s, mult,
        tab["log_rho"].take(sel), tab["log1p_t"].take(sel) if mult else None, tab["t"].take(sel) if mult else None)
    if dev.has_c2c_noise:
        mean += np.sqrt(var) * standard_normal(rng, idx.size, dev.dtype)
    g = np.clip(mean, dev.flat_p["w_min"].take(idx), dev.flat_p["w_max"].take(idx))
    steep = np.flatnonzero(tab["steep"].take(sel)) if tab["any_steep"] else ()
    if len(steep):
        g[steep] = g0[steep]                      # these keep their state here and run exactly below
    w_flat[idx] = g - ref
    if len(steep):
        _apply_distinct(dev, w_flat, idx[steep], counts[steep], up[steep], rng)


def apply_expected(dev: DeviceArray, w_flat: np.ndarray, idx: np.ndarray | None, n: np.ndarray,
                   up: np.ndarray) -> None:
    """``pulse_mode = "expected"`` (docs/pulses.md §2.6): device ``idx[k]`` takes the deterministic
    expected step of ``n[k]`` (real, >= 0) pulses through its response function, one explicit
    Euler step, then the clip::

        g <- clip(g + n step_up(g), w_min, w_max)     (up)
        g <- clip(g - n step_down(g), w_min, w_max)   (down)

    ``step_*`` the noise-free step of one pulse at g (the model's ``magnitudes``); no
    cycle-to-cycle noise. ``idx`` None: every device, ``n`` and ``up`` in flat order (a dense
    update needs no gathers; devices with n = 0 keep their weight exactly).
    """
    spec, flat_p = dev.spec, dev.flat_p
    names = dict.fromkeys(spec.up_params + spec.down_params + ("w_max", "w_min"))
    if idx is None:
        p, c, w0 = {k: flat_p[k] for k in names}, dev.all_constants(), w_flat
        ref = flat_p["ref"] if dev.has_ref else 0.0
    else:
        p, c, w0 = {k: flat_p[k].take(idx) for k in names}, dev.constants_for(idx), w_flat.take(idx)
        ref = flat_p["ref"].take(idx) if dev.has_ref else 0.0
    g = w0 + ref
    step_up, step_down = spec.magnitudes(g, p, c)
    n = n.astype(dev.dtype, copy=False)
    g = np.clip(g + np.where(up, n * step_up, -n * step_down), p["w_min"], p["w_max"]) - ref
    if idx is None:
        np.copyto(w_flat, g, where=n > 0)
    else:
        w_flat[idx] = g


def _noise(dev: DeviceArray, rng: np.random.Generator, n: int):
    return standard_normal(rng, n, dtype=dev.dtype) if dev.has_c2c_noise else None


def at_bound_fraction(w: np.ndarray, ref: np.ndarray, w_min: np.ndarray, w_max: np.ndarray,
                      margin: float = 0.05) -> float:
    """Fraction of devices whose physical state ``g = w + ref`` lies within ``margin`` of
    their own range ``w_max - w_min`` from either bound (all arrays (R, out, in)).

    A diagnostic of saturation: a TTv2 run whose reference is offset pushes W to its
    bounds (the H buffer integrates the offset like a constant gradient), AGAD does not.
    """
    g = w + ref
    band = margin * (w_max - w_min)
    return float(np.mean((g >= w_max - band) | (g <= w_min + band)))
