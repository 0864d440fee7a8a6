"""Programming a linear layer to a target with analog training (the paper's Fig. 4 experiment).

A layer W (default 20x20, no bias) learns a random target W* ~ U(-0.5, 0.5) from
random inputs x ~ U(-1, 1) with the loss ``0.5 ||W x - W* x||^2`` (batch 1), so the
error at the output is ``d = W x - W* x`` (W x through the analog forward pass). The
reported weight error is ``std(W - W*) / (w_max - w_min)`` in percent, with w_max and
w_min the nominal bounds of the W device.

A grid (algorithms x n_states x sigma_r x lr x any swept parameter x seeds) is turned
into replicas; replicas that can share code run as ONE stacked simulation (TTv2,
c-TTv2 and AGAD together; SGD, MP and FP each on their own). The target and the input
sequence are the same for every replica (fixed by the master seed, as in the paper);
the seeds index the device-to-device draws ("construction seeds").
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from analogtrain.engine.algorithms import algorithm_class, build_stack
from analogtrain.config.algorithm import (ALGORITHM_CONFIGS, canonical_algorithm, default_algorithm_config, with_overrides)
from analogtrain.config.device import PulsedDevice
from analogtrain.config.fields import field_map
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.loading import resolve_device
from analogtrain.errors import ConfigError, NumericalError
from analogtrain.seeding import generator

TASKS = ("linear", "constant-gradient")


@dataclass(frozen=True)
class DeviceSource:
    """Where the device comes from: preset, config-file values and KEY=VALUE overrides."""

    preset: str | None = "softbounds"
    values: tuple = ()          # ((key, value), ...) from the config file
    sets: tuple = ()            # ((key, value), ...) from --set

    def resolve(self, array: str, extra: dict) -> PulsedDevice:
        return resolve_device(preset=self.preset, file_values=dict(self.values), sets=list(self.sets), array=array,
                              allow_scopes=True, extra_layers=[extra])


@dataclass(frozen=True)
class ProgramConfig:
    """Resolved settings of one ``program`` run (every field is recorded in the output)."""

    task: str = "linear"
    out_size: int = 20
    in_size: int = 20
    steps: int = 20000
    algorithms: tuple = ("ttv2", "c-ttv2", "agad")
    n_states: tuple = (20, 100)              # () keeps the device's own dw_min
    sigma_r: tuple = (0.0, 0.1, 0.3, 0.5)
    sigma_r_arrays: tuple = ("A",)
    seeds: int = 3
    lr: tuple = (0.1,)
    sweeps: tuple = ()                       # ((key, (v1, v2, ...)), ...)
    zip_sweeps: bool = False
    algo_sets: tuple = ()                    # ((key, value), ...) applied to every algorithm config
    w_sp_corrected: bool | None = None       # None: as the device config says
    io: str = "preset"
    target_range: float = 0.5
    trace_every: int = 0                     # 0 -> steps // 100
    seed: int = 0
    jobs: int = 1
    dtype: str = "float32"
    count_pulses: bool = False
    device: DeviceSource = DeviceSource()


@dataclass
class Replica:
    cell: dict                 # algorithm, n_states, sigma_r, lr, sweep values
    seed_index: int
    algorithm: str
    alg_cfg: Any
    dev_w: PulsedDevice
    dev_a: PulsedDevice | None
    lr: float


@dataclass
class ProgramResult:
    config: ProgramConfig
    replicas: list
    final_error: np.ndarray          # (R,) percent
    trace_steps: np.ndarray          # (n_trace,)
    traces: np.ndarray               # (R, n_trace) percent
    arrays: dict                     # name -> (R, ...) arrays
    pulses: dict                     # array -> (R,) total pulses (with count_pulses)
    wall_s: float
    stacks: list                     # per stack: (algorithm class, n replicas, seconds)
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ grid
def _sweep_combos(cfg: ProgramConfig) -> list[dict]:
    if not cfg.sweeps:
        return [{}]
    keys = [k for k, _ in cfg.sweeps]
    vals = [v for _, v in cfg.sweeps]
    if cfg.zip_sweeps:
        lengths = {len(v) for v in vals}
        if len(lengths) != 1:
            raise ConfigError("--sweep: with --zip every sweep needs the same number of values "
                              f"(got {', '.join(f'{k}: {len(v)}' for k, v in cfg.sweeps)})")
        return [dict(zip(keys, combo)) for combo in zip(*vals)]
    return [dict(zip(keys, combo)) for combo in itertools.product(*vals)]


def _is_algorithm_key(algorithms, key: str) -> bool:
    """A key is an algorithm parameter if any algorithm of the grid has it (or it says ``algo.``)."""
    if key.startswith("algo."):
        return True
    return any(key in field_map(ALGORITHM_CONFIGS[canonical_algorithm(a)]) for a in algorithms)


def _check_algorithm_keys(cfg: ProgramConfig) -> None:
    """Every algorithm key (--algo-set, algo./algorithm sweeps) must belong to some algorithm of the grid."""
    from analogtrain.config.fields import unknown_key_message

    keys = [k for k, _ in cfg.algo_sets] + [k.removeprefix("algo.") for k, _ in cfg.sweeps if k.startswith("algo.")]
    known = set()
    for a in cfg.algorithms:
        known |= set(field_map(ALGORITHM_CONFIGS[canonical_algorithm(a)]))
    for k in keys:
        if k not in known:
            raise ConfigError(unknown_key_message("algorithm", k, sorted(known)))


def build_replicas(cfg: ProgramConfig) -> list[Replica]:
    """Expand the grid into replicas (cells x seeds), resolving every device and algorithm config."""
    reps: list[Replica] = []
    _check_algorithm_keys(cfg)
    n_states_axis = cfg.n_states if cfg.n_states else (None,)
    for alg, ns, sr, lr, sweep in itertools.product(cfg.algorithms, n_states_axis, cfg.sigma_r, cfg.lr,
                                                     _sweep_combos(cfg)):
        alg = canonical_algorithm(alg)
        alg_values = dict(cfg.algo_sets)
        dev_extra: dict[str, Any] = {}
        for k, v in sweep.items():
            if _is_algorithm_key(cfg.algorithms, k):
                alg_values[k.removeprefix("algo.")] = v
            else:
                dev_extra[k] = v
        alg_cfg = default_algorithm_config(alg)
        if alg_values:  # each key applies to the algorithms that have it (checked above)
            keys = field_map(type(alg_cfg))
            alg_values = {k: v for k, v in alg_values.items() if k in keys}
            if alg_values:
                alg_cfg = with_overrides(alg_cfg, alg_values)
        layers = {}
        for array in ("A", "W"):
            extra = dict(dev_extra)
            if ns is not None:
                extra["n_states"] = ns
            if array in cfg.sigma_r_arrays:
                extra[f"{array}.reference_std"] = sr
            if array == "W" and cfg.w_sp_corrected is not None:
                extra["W.subtract_symmetry_point"] = cfg.w_sp_corrected
            layers[array] = extra
        dev_w = cfg.device.resolve("W", layers["W"])
        dev_a = cfg.device.resolve("A", layers["A"]) if algorithm_class(alg) == "transfer" else None
        cell = {"algorithm": alg, "n_states": ns, "sigma_r": sr, "lr": lr, **{k: v for k, v in sweep.items()}}
        for s in range(cfg.seeds):
            reps.append(Replica(cell=cell, seed_index=s, algorithm=alg, alg_cfg=alg_cfg, dev_w=dev_w,
                                dev_a=dev_a, lr=float(lr)))
    return reps


def _stack_key(r: Replica) -> tuple:
    kind = algorithm_class(r.algorithm)
    key: list[Any] = [kind, r.dev_w.model, getattr(r.dev_w, "mult_noise", None)]
    if r.dev_a is not None:
        key += [r.dev_a.model, getattr(r.dev_a, "mult_noise", None)]
    if kind == "transfer":
        key += [getattr(r.alg_cfg, f) for f in ("transfer_every", "desired_bl", "auto_scale", "forget_buffer")]
    if kind == "mp":
        key += [dataclasses.astuple(r.alg_cfg)[:1], r.alg_cfg.n_rows_per_transfer, r.alg_cfg.n_x_bins,
                r.alg_cfg.n_d_bins, r.alg_cfg.desired_bl]
    return tuple(key)


def plan_stacks(reps: list[Replica], jobs: int) -> list[list[int]]:
    """Replica indices of each stack: grouped by what must agree, then split so that the
    stacks can be spread over ``jobs`` processes (a stack is split only when there are
    fewer stacks than jobs)."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(reps):
        groups.setdefault(_stack_key(r), []).append(i)
    stacks = list(groups.values())
    while len(stacks) < jobs:
        big = max(range(len(stacks)), key=lambda i: len(stacks[i]))
        if len(stacks[big]) < 2:
            break
        s = stacks.pop(big)
        h = len(s) // 2
        stacks[big:big] = [s[:h], s[h:]]
    return stacks


# ------------------------------------------------------------------------------ running
def _inputs_and_target(cfg: ProgramConfig) -> tuple[np.ndarray, np.ndarray]:
    w_star = generator(cfg.seed, "init").uniform(-cfg.target_range, cfg.target_range, (cfg.out_size, cfg.in_size))
    x = generator(cfg.seed, "data").uniform(-1.0, 1.0, (cfg.steps, cfg.in_size))
    return w_star, x


def _trace_steps(cfg: ProgramConfig) -> np.ndarray:
    every = cfg.trace_every or max(1, cfg.steps // 100)
    steps = np.arange(every, cfg.steps + 1, every)
    if steps.size == 0 or steps[-1] != cfg.steps:
        steps = np.append(steps, cfg.steps)
    return steps


def weight_error_pct(w: np.ndarray, w_star: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """std over elements of (W - W*) per replica, divided by the W device range, in percent."""
    return 100.0 * (w - w_star).reshape(w.shape[0], -1).std(axis=1) / ranges


def run_stack(cfg: ProgramConfig, reps: list[Replica], stack_id: int,
              progress: Callable[[int], None] | None = None, indices: Sequence[int] | None = None) -> dict:
    """Run one stacked simulation; returns plain arrays (final error, traces, hidden state).

    ``indices`` are the replicas' positions in the whole grid (for error messages)."""
    indices = list(indices) if indices is not None else list(range(len(reps)))

    def where(k: int) -> str:
        r = reps[k]
        return f"replica {indices[k]} ({', '.join(f'{a}={b}' for a, b in r.cell.items())}, seed index {r.seed_index})"

    t0 = time.perf_counter()
    w_star, xs = _inputs_and_target(cfg)
    dtype = np.dtype(cfg.dtype)
    R = len(reps)
    alg = build_stack([r.algorithm for r in reps], [r.alg_cfg for r in reps], [r.dev_w for r in reps],
                      [r.dev_a for r in reps] if reps[0].dev_a is not None else None, cfg.out_size, cfg.in_size,
                      io=IO_PRESETS[cfg.io], seed=cfg.seed, replica_seeds=[cfg.seed + r.seed_index for r in reps],
                      stack_id=stack_id, dtype=dtype, count_pulses=cfg.count_pulses)
    lr = np.array([r.lr for r in reps])
    ranges = np.array([r.dev_w.w_max - r.dev_w.w_min for r in reps])
    trace_steps = _trace_steps(cfg)
    traces = np.empty((R, trace_steps.size))
    ti = 0
    w_star_t = w_star.astype(dtype)
    for step in range(cfg.steps):
        x = np.broadcast_to(xs[step].astype(dtype), (R, cfg.in_size))
        y = alg.forward(x)
        d = y - (w_star_t @ xs[step].astype(dtype))[None, :]
        if not np.isfinite(d).all():
            bad = int(np.flatnonzero(~np.isfinite(d).all(axis=1))[0])
            found = _bad_array(alg, R)
            what = f"values in {found[1]} of {where(found[0])}" if found else f"output of {where(bad)}"
            raise NumericalError(f"non-finite {what} at step {step + 1}")
        alg.update(x, d, lr)
        if step + 1 == trace_steps[ti]:
            w = alg.weights()
            found = _bad_array(alg, R)          # W and every hidden array (A, H, P, P_ref, chi)
            if found is not None:
                raise NumericalError(f"non-finite values in {found[1]} of {where(found[0])} at step {step + 1}")
            traces[:, ti] = weight_error_pct(w, w_star, ranges)
            ti += 1
            if progress is not None:
                progress(step + 1)
    arrays = {k: np.array(v) for k, v in alg.arrays().items()}
    return {"final": traces[:, -1].copy(), "traces": traces, "trace_steps": trace_steps, "arrays": arrays,
            "pulses": alg.pulse_totals() if cfg.count_pulses else {},
            "per_replica_pulses": _per_replica_pulses(alg) if cfg.count_pulses else {},
            "seconds": time.perf_counter() - t0, "kind": algorithm_class(reps[0].algorithm),
            "counters": alg.counters() if hasattr(alg, "counters") else {}}


def _bad_array(alg, R: int):
    """(replica, array name) of the first float array with NaN or inf, or None."""
    for name, a in alg.arrays().items():
        a = np.asarray(a)
        if a.ndim and a.shape[0] == R and np.issubdtype(a.dtype, np.floating):
            ok = np.isfinite(a.reshape(R, -1)).all(axis=1)
            if not ok.all():
                return int(np.flatnonzero(~ok)[0]), name
    return None


def _per_replica_pulses(alg) -> dict:
    out = {}
    for name in ("A", "W", "tile"):
        t = getattr(alg, name, None)
        if t is not None and getattr(t, "count_pulses", False):
            out[name if name != "tile" else "W"] = (t.up_count + t.down_count).reshape(t.n_replicas, -1).sum(1)
    return out


def _run_stack_job(args):
    cfg, reps, stack_id, indices = args
    return run_stack(cfg, reps, stack_id, indices=indices)


def run_program(cfg: ProgramConfig, progress: Callable[[int, int], None] | None = None) -> ProgramResult:
    """Run the whole grid (see module docstring). ``progress(done_steps, total_steps)`` is optional."""
    if cfg.task != "linear":
        raise ConfigError(f"task: run_program handles the linear task (got {cfg.task!r})")
    t0 = time.perf_counter()
    reps = build_replicas(cfg)
    stacks = plan_stacks(reps, cfg.jobs)
    total = cfg.steps * len(stacks)
    results: list[dict] = [None] * len(stacks)  # type: ignore[list-item]
    if cfg.jobs > 1 and len(stacks) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(min(cfg.jobs, len(stacks))) as pool:
            for i, res in enumerate(pool.imap(_run_stack_job, [(cfg, [reps[j] for j in s], i, s)
                                                                for i, s in enumerate(stacks)])):
                results[i] = res
                if progress:
                    progress(cfg.steps * (i + 1), total)
    else:
        for i, s in enumerate(stacks):
            base = cfg.steps * i
            cb = (lambda done, base=base: progress(base + done, total)) if progress else None
            results[i] = run_stack(cfg, [reps[j] for j in s], i, cb, indices=s)
    R = len(reps)
    order = [j for s in stacks for j in s]
    inv = np.empty(R, dtype=np.int64)
    inv[order] = np.arange(R)
    final = np.concatenate([r["final"] for r in results])[inv]
    traces = np.concatenate([r["traces"] for r in results])[inv]
    arrays: dict[str, np.ndarray] = {}
    for name in sorted({k for r in results for k in r["arrays"]}):
        parts = []
        for res, s in zip(results, stacks):
            a = res["arrays"].get(name)
            if a is None or a.ndim == 0 or a.shape[0] != len(s):
                parts = None
                break
            parts.append(a)
        if parts is not None and len(parts) == len(results):
            arrays[name] = np.concatenate(parts)[inv]
        else:  # only some stacks have it (e.g. A, P): fill the others with NaN
            like = next(res["arrays"][name] for res in results if name in res["arrays"])
            full = np.full((R,) + like.shape[1:], np.nan)
            for res, s in zip(results, stacks):
                if name in res["arrays"]:
                    full[np.array(s)] = res["arrays"][name]
            arrays[name] = full
    pulses: dict[str, np.ndarray] = {}
    for name in ("A", "W"):
        if any(name in r["per_replica_pulses"] for r in results):
            full = np.full(R, -1, dtype=np.int64)
            for res, s in zip(results, stacks):
                if name in res["per_replica_pulses"]:
                    full[np.array(s)] = res["per_replica_pulses"][name]
            pulses[name] = full
    return ProgramResult(config=cfg, replicas=reps, final_error=final, trace_steps=results[0]["trace_steps"],
                         traces=traces, arrays=arrays, pulses=pulses, wall_s=time.perf_counter() - t0,
                         stacks=[(r["kind"], len(s), r["seconds"]) for r, s in zip(results, stacks)])


# ------------------------------------------------------------------------------ summary
def cell_key(cell: dict) -> tuple:
    return tuple((k, cell[k]) for k in cell)


def summarise(res: ProgramResult) -> list[dict]:
    """One entry per grid cell: the cell's axes and weight_error_pct {mean, std, per_seed}."""
    cells: dict[tuple, dict] = {}
    for i, r in enumerate(res.replicas):
        key = cell_key(r.cell)
        entry = cells.setdefault(key, {**r.cell, "per_seed": [], "replica_index": []})
        entry["per_seed"].append(float(res.final_error[i]))
        entry["replica_index"].append(i)
    out = []
    for entry in cells.values():
        a = np.array(entry.pop("per_seed"))
        entry["weight_error_pct"] = {"mean": float(a.mean()), "std": float(a.std()), "per_seed": a.tolist()}
        out.append(entry)
    return out
