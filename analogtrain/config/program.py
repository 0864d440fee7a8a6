"""``program``: the settings of the linear-layer programming experiment (paper Fig. 4) and its grid.

A grid (algorithms x n_states x sigma_r x lr x swept keys) times ``seeds`` construction
seeds is expanded into replicas (:meth:`ProgramConfig.replicas`), each with its resolved
device configs (W, and A for the transfer family) and algorithm config. Everything is
resolved when the config is built, so a bad value anywhere in the grid fails before any
work is done.

Rules that keep every setting effective (a setting that cannot act on a cell is an
error, never ignored):

* sigma_r (the reference offset spread) acts on the array that accumulates the gradient
  (``sigma_r_arrays = ["gradient"]``, the default: A for the transfer family, the single
  array W for SGD and MP); naming an array an algorithm of the grid does not have, or a
  sigma_r > 0 for the floating-point baseline (no devices), is an error;
* a grid axis beats the user's device keys in every cell, so a device key that an axis
  overrides (``dw_min`` under an n_states axis, ``reference_std`` under sigma_r, a swept
  key) is an error;
* an ``[algorithm]`` key or an ``alg.``-scoped sweep key must belong to some algorithm of
  the grid, and a scoped device key (``A.dw_min``) to an array some algorithm has.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from analogtrain.config.device import PulsedDevice
from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import param, unknown_key_message
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.loading import _GROUPS, split_scope
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError

DTYPES = ("float32", "float64")
#: sweep keys with this prefix are algorithm parameters (``alg.in_chop_prob``)
ALGORITHM_SCOPES = ("alg.", "algo.")
#: sweep keys that are settings of the run itself (neither device nor algorithm keys)
RUN_SWEEP_KEYS = ("pulse_mode",)


def algorithm_choices() -> tuple[str, ...]:
    from analogtrain.engine.algorithms.registry import algorithm_names

    return algorithm_names()


def parse_size(value: Any, where: str) -> dict:
    """``"20"`` -> 20 x 20, ``"256x784"`` -> out 256, in 784 (also ``[256, 784]``)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = f"{value[0]}x{value[1]}"
    t = str(value).lower().replace(" ", "")
    try:
        dims = [int(p) for p in t.split("x")]
    except ValueError:
        raise ConfigError(f"{where}: expected N or OUTxIN, e.g. 20 or 256x784 (got {value!r})", field=where) from None
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1 or max(dims) > 65536:
        raise ConfigError(f"{where}: expected N or OUTxIN with sizes in [1, 65536] (got {value!r})", field=where)
    return {"out_size": dims[0], "in_size": dims[1]}


def _n_states(value: Any, where: str) -> dict:
    """``n_states = "device"`` keeps the device's own step size (an empty axis)."""
    if isinstance(value, str) and value.strip().lower() in ("device", "none", ""):
        return {"n_states": ()}
    return {"n_states": value}


@dataclass(frozen=True)
class Replica:
    """One simulated layer of the grid: a cell (its axis values) and a construction seed."""

    cell: dict                  # algorithm, n_states, sigma_r, lr, swept keys -> value
    seed_index: int
    algorithm: str
    alg_cfg: Any
    dev_w: PulsedDevice | None
    dev_a: PulsedDevice | None
    lr: float
    pulse_mode: str = "exact"


@dataclass(frozen=True)
class ProgramConfig(RunConfig):
    """Program a linear layer to a random target W* ~ U(-target_range, target_range) from
    inputs x ~ U(-1, 1), batch 1; report std(W - W*) / (w_max - w_min) per grid cell."""

    kind: ClassVar[str] = "program"
    section: ClassVar[str] = "program"
    tables: ClassVar[dict] = {"device": "device", "algorithm": "algo_sets", "sweep": "sweep"}
    virtual: ClassVar[dict] = {"size": parse_size, "n_states": _n_states}

    out_size: int = param(20, "rows of the layer (outputs)", unit="rows", ge=1, le=65536)
    in_size: int = param(20, "columns of the layer (inputs)", unit="columns", ge=1, le=65536)
    steps: int = param(20000, "training samples (batch 1)", unit="samples", ge=1, le=10**9)
    algorithm: tuple[str, ...] = param(("ttv2", "c-ttv2", "agad"), "algorithms of the grid", min_items=1,
                                       choices=algorithm_choices, aliases=("algorithms",))
    n_states: tuple[float, ...] = param((20.0, 100.0), "device states of A and W (sets dw_min); empty or "
                                                       "\"device\" keeps the device's own", unit="states", gt=0.0)
    sigma_r: tuple[float, ...] = param((0.0, 0.1, 0.3, 0.5), "reference offset spread sigma_r (reference_std)",
                                       unit="weight", ge=0.0, le=1e3, min_items=1)
    sigma_r_arrays: tuple[str, ...] = param(("gradient",), "arrays whose reference gets the sigma_r offset: "
                                            "gradient (A for the transfer family, W for SGD and MP), A, W",
                                            choices=("gradient", "A", "W"), min_items=1)
    seeds: int = param(3, "device construction seeds per cell (seed, seed+1, ...)", unit="seeds", ge=1, le=1000)
    lr: tuple[float, ...] = param((0.1,), "learning rate(s)", unit="1", gt=0.0, le=1e6, min_items=1)
    zip: bool = param(False, "pair the sweep axes element by element instead of a grid")
    w_sp_corrected: bool | None = param(None, "subtract W's own symmetry point (the paper's SP-corrected W); "
                                              "unset: as the device config says", nullable=True)
    io: str = param("preset", "I/O of the forward pass (preset: out_noise 0.1, out_bound 20, 7-bit DAC, "
                              "9-bit ADC)", choices=tuple(sorted(IO_PRESETS)))
    target_range: float = param(0.5, "the target W* is drawn from U(-target_range, target_range)", unit="weight",
                                gt=0.0, le=1e3)
    trace_every: int = param(0, "record the weight error every N steps (0: steps/100)", unit="steps", ge=0,
                             le=10**9)
    seed: int = param(0, "master seed: target, inputs and the dynamic streams; construction seeds are "
                         "seed + seed index", ge=0)
    jobs: int = param(1, "processes; stacks (or halves of a stack) run in parallel, and the stack split is "
                         "part of the result", unit="processes", ge=1, le=256)
    dtype: str = param("float32", "floating-point type of the arrays", choices=DTYPES)
    count_pulses: bool = param(False, "keep exact per-device up/down pulse counters")
    pulse_mode: str | None = param(None, "how the pulses of one update act on every array (docs/pulses.md "
                                         "§2.5-2.6): exact, aggregated (closed form per device), expected (mean "
                                         "field); sweepable (--sweep pulse_mode=exact,aggregated); unset: exact",
                                   choices=lambda: _pulse_modes(), nullable=True, default_doc="exact")
    device: DeviceSpec = DeviceSpec()
    algo_sets: tuple = ()
    sweep: tuple = ()

    # ------------------------------------------------------------------ validation
    def resolve_defaults(self) -> None:
        from analogtrain.engine.algorithms.registry import canonical

        self._set("algorithm", tuple(canonical(a, "program.algorithm") for a in self.algorithm))
        self._set("sigma_r_arrays", tuple(s if s == "gradient" else str(s).upper() for s in self.sigma_r_arrays))
        self._set("sweep", tuple((str(k), _values(v, f"sweep.{k}")) for k, v in self.sweep))
        self._set("algo_sets", tuple((str(k), v) for k, v in self.algo_sets))

    def check(self) -> None:
        from analogtrain.engine.algorithms.registry import algorithm_spec, keys_of

        if not isinstance(self.device, DeviceSpec):
            raise ConfigError("program.device: expected a DeviceSpec", field="program.device")
        known = keys_of(self.algorithm)
        for k, _ in self.algo_sets:
            if k not in known:
                raise ConfigError(unknown_key_message("algorithm", k, sorted(known)), field=f"algorithm.{k}")
        for k, vals in self.sweep:
            if not vals:
                raise ConfigError(f"sweep.{k}: needs at least one value", field=f"sweep.{k}")
            if k in RUN_SWEEP_KEYS:
                bad = [v for v in vals if v not in _pulse_modes()]
                if bad:
                    raise ConfigError(f"sweep.{k}: must be one of {', '.join(_pulse_modes())} (got {bad[0]!r})",
                                      field=f"sweep.{k}")
                continue
            if _algorithm_key(k, known) and k.split(".", 1)[-1] not in known and "." in k:
                raise ConfigError(unknown_key_message("algorithm", k.split(".", 1)[1], sorted(known)),
                                  field=f"sweep.{k}")
        if self.zip and self.sweep and len({len(v) for _, v in self.sweep}) != 1:
            raise ConfigError("program.zip: zipped sweeps need the same number of values (got "
                              + ", ".join(f"sweep {k}: {len(v)}" for k, v in self.sweep) + ")", field="program.zip")
        specs = [algorithm_spec(a) for a in self.algorithm]
        for arr in self.sigma_r_arrays:
            if arr == "gradient":
                continue
            lacking = [s.name for s in specs if s.arrays and arr not in s.arrays]
            if lacking:
                raise ConfigError(f"program.sigma_r_arrays: {', '.join(lacking)} has no array {arr} "
                                  f"(its arrays: {', '.join(algorithm_spec(lacking[0]).arrays)}); use gradient "
                                  "(the array that accumulates the gradient) or name arrays every algorithm has",
                                  field="program.sigma_r_arrays")
        if any(s > 0 for s in self.sigma_r):
            digital = [s.name for s in specs if not s.arrays]
            if digital:
                raise ConfigError(f"program.sigma_r: {', '.join(digital)} has no device reference, so a sigma_r > 0 "
                                  "cannot act on it; run it with sigma_r = 0 (or in its own grid)",
                                  field="program.sigma_r")
        scopes = self.device.scopes()
        have = {a for s in specs for a in s.arrays}
        for sc in scopes:
            if sc not in have:
                raise ConfigError(f"device.{sc}.*: no algorithm of the grid has an array {sc} "
                                  f"({', '.join(self.algorithm)})", field=f"device.{sc}")
        self._check_overridden()
        _ = self.replicas  # resolve every cell now: a bad value anywhere fails at construction

    def _check_overridden(self) -> None:
        """A user device key that a grid axis overrides in every cell is an error."""
        from analogtrain.engine.algorithms.registry import keys_of

        known = keys_of(self.algorithm)
        axes: dict[str, str] = {}
        if self.n_states:
            axes.update({"n_states": "the n_states axis", "dw_min": "the n_states axis"})
        for k, _ in self.sweep:
            if _algorithm_key(k, known) or k in RUN_SWEEP_KEYS:
                continue
            scope, name = split_scope(k)
            for n in (name, *_group(name)):
                axes[n if scope is None else f"{scope}.{n}"] = f"the sweep of {k}"
        for key in self.device.as_dict():
            scope, name = split_scope(key)
            hit = axes.get(name) or (axes.get(f"{scope}.{name}") if scope else None)
            if name == "reference_std" and self._offset_arrays_cover(scope):
                hit = "the sigma_r axis"
            if hit and self._effective(key):
                raise ConfigError(f"device.{key}: overridden by {hit} in every cell, so it would have no effect; "
                                  "remove it" + (" or give n_states = \"device\" (--n-states device)"
                                                 if "n_states" in hit else ""), field=f"device.{key}")

    def _effective(self, key: str) -> bool:
        """Whether the user's ``key`` changes the device at all (a device file lists every field,
        most at their default: those change nothing, so an axis overriding them loses nothing)."""
        scope, _ = split_scope(key)
        array = scope or "W"
        without = DeviceSpec(self.device.preset, tuple((k, v) for k, v in self.device.values if k != key)) \
            if (self.device.preset is not None or key != "model") else None
        if without is None:
            return True
        try:
            return without.resolve(array) != self.device.resolve(array)
        except ConfigError:
            return True

    def _offset_arrays_cover(self, scope: str | None) -> bool:
        arrays = set(self.sigma_r_arrays)
        if scope is None:
            return True
        return scope in arrays or "gradient" in arrays

    # ------------------------------------------------------------------ the grid
    def sweep_combos(self) -> list[dict]:
        if not self.sweep:
            return [{}]
        keys = [k for k, _ in self.sweep]
        vals = [v for _, v in self.sweep]
        combos = zip(*vals) if self.zip else itertools.product(*vals)
        return [dict(zip(keys, c)) for c in combos]

    @cached_property
    def replicas(self) -> list[Replica]:
        """Every replica of the grid (cells in axis order, each repeated for the seeds)."""
        from analogtrain.engine.algorithms.registry import algorithm_spec, keys_of

        known = keys_of(self.algorithm)
        reps: list[Replica] = []
        n_states_axis = self.n_states if self.n_states else (None,)
        for alg, ns, sr, lr, combo in itertools.product(self.algorithm, n_states_axis, self.sigma_r, self.lr,
                                                         self.sweep_combos()):
            spec = algorithm_spec(alg)
            alg_values = dict(self.algo_sets)
            dev_extra: dict[str, Any] = {}
            pulse_mode = combo.get("pulse_mode", self.pulse_mode or "exact")
            for k, v in combo.items():
                if k in RUN_SWEEP_KEYS:
                    continue
                if _algorithm_key(k, known):
                    alg_values[_strip_scope(k)] = v
                else:
                    dev_extra[k] = v
            own = spec.keys()
            alg_cfg = spec.configure("reramsb", {k: v for k, v in alg_values.items() if k in own})
            offset_arrays = {spec.gradient_array if a == "gradient" else a for a in self.sigma_r_arrays}
            devices: dict[str, PulsedDevice | None] = {"A": None, "W": None}
            for array in spec.arrays:
                extra = dict(dev_extra)
                if ns is not None:
                    extra["n_states"] = ns
                if array in offset_arrays:
                    extra[f"{array}.reference_std"] = sr
                if array == "W" and self.w_sp_corrected is not None:
                    extra["W.subtract_symmetry_point"] = self.w_sp_corrected
                devices[array] = self.device.resolve(array, extra=extra)
            if not spec.arrays:      # fp: the device still sets the nominal range of the error
                devices["W"] = self.device.resolve("W", extra={"n_states": ns} if ns is not None else {})
            cell = {"algorithm": alg, "n_states": ns, "sigma_r": sr, "lr": lr, **combo}
            for s in range(self.seeds):
                reps.append(Replica(cell=cell, seed_index=s, algorithm=alg, alg_cfg=alg_cfg, dev_w=devices["W"],
                                    dev_a=devices["A"], lr=float(lr), pulse_mode=pulse_mode))
        return reps

    def resolved_algorithms(self) -> dict[str, dict]:
        """The algorithm settings of the first cell of each algorithm (for reports)."""
        from analogtrain.config.fields import to_dict

        out: dict[str, dict] = {}
        for r in self.replicas:
            out.setdefault(r.algorithm, to_dict(r.alg_cfg))
        return out


def _pulse_modes() -> tuple[str, ...]:
    from analogtrain.config.update import PULSE_MODES

    return PULSE_MODES


def _values(v: Any, where: str) -> tuple:
    """A sweep's values: a TOML list, or a comma string from the command line (typed)."""
    if isinstance(v, str):
        from analogtrain.config.loading import parse_scalar

        items = [x.strip() for x in v.split(",") if x.strip()]
        if not items:
            raise ConfigError(f"{where}: expected a comma-separated list of values (got {v!r})", field=where)
        return tuple(parse_scalar(x) for x in items)
    if isinstance(v, (list, tuple)):
        for x in v:
            if isinstance(x, (dict, list, tuple)):
                raise ConfigError(f"{where}: expected a list of values (got {v!r})", field=where)
        return tuple(v)
    raise ConfigError(f"{where}: expected a list of values KEY = [v1, v2, ...] (got {v!r})", field=where)


def _algorithm_key(key: str, known: set[str]) -> bool:
    """A sweep key is an algorithm parameter if it is scoped ``alg.``/``algo.`` or (bare) if some
    algorithm of the grid has it."""
    return key.startswith(ALGORITHM_SCOPES) or key in known


def _strip_scope(key: str) -> str:
    for p in ALGORITHM_SCOPES:
        if key.startswith(p):
            return key[len(p):]
    return key


def _group(name: str) -> tuple[str, ...]:
    """The fields a virtual device key stands for, or the virtual key a field belongs to."""
    if name in _GROUPS:
        return tuple(_GROUPS[name])
    return tuple(v for v, targets in _GROUPS.items() if name in targets)

