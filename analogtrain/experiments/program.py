"""Programming a linear layer to a target with analog training (the paper's Fig. 4 experiment).

A layer W (default 20x20, no bias) learns a random target W* ~ U(-0.5, 0.5) from
random inputs x ~ U(-1, 1) with the loss ``0.5 ||W x - W* x||^2`` (batch 1), so the
error at the output is ``d = W x - W* x`` (W x through the analog forward pass). The
reported weight error is ``std(W - W*) / (w_max - w_min)`` in percent, with w_max and
w_min the nominal bounds of the W device.

The grid of :class:`~analogtrain.config.program.ProgramConfig` is a list of replicas;
replicas that can share code run as ONE stacked simulation (TTv2, c-TTv2 and AGAD
together; SGD, MP and FP each on their own; see :func:`plan_stacks`). The target and the
input sequence are the same for every replica (fixed by the master seed, as in the
paper); the seeds index the device-to-device draws ("construction seeds").
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from analogtrain.config.io import IO_PRESETS
from analogtrain.config.program import ProgramConfig, Replica
from analogtrain.engine.algorithms import algorithm_spec, build_stack
from analogtrain.errors import NumericalError
from analogtrain.results import arrays as schema
from analogtrain.results.program import ProgramResult
from analogtrain.seeding import generator


# ------------------------------------------------------------------------------------ stacks
def stack_key(r: Replica) -> tuple:
    """What must agree for two replicas to share a stack: the algorithm family, the device
    models (and noise kind) of their arrays, and the family's structural settings."""
    spec = algorithm_spec(r.algorithm)
    key: list[Any] = [spec.family]
    for dev in (r.dev_w, r.dev_a) if spec.arrays else ():
        if dev is not None:
            key += [dev.model, getattr(dev, "mult_noise", None)]
    key += [getattr(r.alg_cfg, f) for f in spec.stack_keys]
    return tuple(key) + (r.pulse_mode,)


def plan_stacks(reps: Sequence[Replica], jobs: int) -> list[list[int]]:
    """Replica indices of each stack: grouped by :func:`stack_key` (in order of first
    appearance), then split so that the stacks can be spread over ``jobs`` processes (a
    stack is split only when there are fewer stacks than jobs)."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(reps):
        groups.setdefault(stack_key(r), []).append(i)
    stacks = list(groups.values())
    while len(stacks) < jobs:
        big = max(range(len(stacks)), key=lambda i: len(stacks[i]))
        if len(stacks[big]) < 2:
            break
        s = stacks.pop(big)
        h = len(s) // 2
        stacks[big:big] = [s[:h], s[h:]]
    return stacks


# ------------------------------------------------------------------------------------ running
def inputs_and_target(cfg: ProgramConfig) -> tuple[np.ndarray, np.ndarray]:
    """The target W* (out, in) from stream ``init`` and the inputs (steps, in) from ``data``."""
    w_star = generator(cfg.seed, "init").uniform(-cfg.target_range, cfg.target_range, (cfg.out_size, cfg.in_size))
    x = generator(cfg.seed, "data").uniform(-1.0, 1.0, (cfg.steps, cfg.in_size))
    return w_star, x


def trace_steps(cfg: ProgramConfig) -> np.ndarray:
    """The steps at which the weight error is recorded (every ``trace_every``, and the last)."""
    every = cfg.trace_every or max(1, cfg.steps // 100)
    steps = np.arange(every, cfg.steps + 1, every)
    if steps.size == 0 or steps[-1] != cfg.steps:
        steps = np.append(steps, cfg.steps)
    return steps


def weight_error_pct(w: np.ndarray, w_star: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """std over elements of (W - W*) per replica, divided by the W device range, in percent."""
    return 100.0 * (w - w_star).reshape(w.shape[0], -1).std(axis=1) / ranges


def run_stack(cfg: ProgramConfig, reps: Sequence[Replica], stack_id: int,
              progress: Callable[[int], None] | None = None, indices: Sequence[int] | None = None) -> dict:
    """Run one stacked simulation; returns plain arrays (final error, traces, every array).

    ``indices`` are the replicas' positions in the whole grid (for error messages)."""
    indices = list(indices) if indices is not None else list(range(len(reps)))

    def where(k: int) -> str:
        r = reps[k]
        return f"replica {indices[k]} ({', '.join(f'{a}={b}' for a, b in r.cell.items())}, seed index {r.seed_index})"

    t0 = time.perf_counter()
    w_star, xs = inputs_and_target(cfg)
    dtype = np.dtype(cfg.dtype)
    R = len(reps)
    analog = algorithm_spec(reps[0].algorithm).analog
    alg = build_stack([r.algorithm for r in reps], [r.alg_cfg for r in reps], [r.dev_w for r in reps],
                      [r.dev_a for r in reps] if reps[0].dev_a is not None else None, cfg.out_size, cfg.in_size,
                      io=IO_PRESETS[cfg.io], seed=cfg.seed, replica_seeds=[cfg.seed + r.seed_index for r in reps],
                      stack_id=stack_id, dtype=dtype, count_pulses=cfg.count_pulses and analog,
                      pulse_mode=reps[0].pulse_mode)
    lr = np.array([r.lr for r in reps])
    ranges = np.array([r.dev_w.w_max - r.dev_w.w_min for r in reps])
    steps = trace_steps(cfg)
    traces = np.empty((R, steps.size))
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
        if step + 1 == steps[ti]:
            w = alg.weights()
            found = _bad_array(alg, R)          # W and every hidden array (A, H, P, P_ref, chi)
            if found is not None:
                raise NumericalError(f"non-finite values in {found[1]} of {where(found[0])} at step {step + 1}")
            traces[:, ti] = weight_error_pct(w, w_star, ranges)
            ti += 1
            if progress is not None:
                progress(step + 1)
    arrays = {k: np.array(v) for k, v in schema.algorithm_arrays(alg).items()}
    per_replica = {name: (t.up_count + t.down_count).reshape(R, -1).sum(1)
                   for name, t in alg.tiles().items() if t.count_pulses}
    return {"final": traces[:, -1].copy(), "traces": traces, "trace_steps": steps, "arrays": arrays,
            "per_replica_pulses": per_replica, "seconds": time.perf_counter() - t0,
            "kind": algorithm_spec(reps[0].algorithm).family}


def _bad_array(alg, R: int):
    """(replica, array name) of the first state array (weights, persistent weights, digital
    state) with NaN or inf, or None (device constants such as a missing symmetry point are not
    state)."""
    state = ("weights", "persistent_weights", *schema.ALGORITHM_FIELDS)
    for name, a in schema.algorithm_arrays(alg).items():
        if schema.parse(name) is None or schema.parse(name).field not in state:
            continue
        a = np.asarray(a)
        if a.ndim and a.shape[0] == R and np.issubdtype(a.dtype, np.floating):
            ok = np.isfinite(a.reshape(R, -1)).all(axis=1)
            if not ok.all():
                return int(np.flatnonzero(~ok)[0]), name
    return None


def _run_stack_job(args):
    cfg, reps, stack_id, indices = args
    return run_stack(cfg, reps, stack_id, indices=indices)


def run(cfg: ProgramConfig, progress: Callable[[int, int], None] | None = None) -> ProgramResult:
    """Run the whole grid (see the module docstring). ``progress(done_steps, total_steps)``."""
    t0 = time.perf_counter()
    reps = cfg.replicas
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
    arrays = _merge_arrays(results, stacks, R, inv)
    pulses: dict[str, np.ndarray] = {}
    for name in ("A", "W"):
        if any(name in r["per_replica_pulses"] for r in results):
            full = np.full(R, -1, dtype=np.int64)
            for res, s in zip(results, stacks):
                if name in res["per_replica_pulses"]:
                    full[np.array(s)] = res["per_replica_pulses"][name]
            pulses[name] = full
    return ProgramResult(config=cfg, replicas=list(reps), final_error=final, trace_steps=results[0]["trace_steps"],
                         traces=traces, state_arrays=arrays, pulses=pulses, target=inputs_and_target(cfg)[0],
                         wall_s=time.perf_counter() - t0,
                         stacks=[(r["kind"], len(s), r["seconds"]) for r, s in zip(results, stacks)])


def _merge_arrays(results: list[dict], stacks: list[list[int]], R: int, inv: np.ndarray) -> dict[str, np.ndarray]:
    """Every stack's arrays in grid order; where only some stacks have an array (A, H, P, chi),
    the others are filled with NaN (floats) or -1 (integer counters)."""
    arrays: dict[str, np.ndarray] = {}
    for name in sorted({k for r in results for k in r["arrays"]}):
        parts = [res["arrays"].get(name) for res in results]
        if all(a is not None and a.ndim and a.shape[0] == len(s) for a, s in zip(parts, stacks)):
            arrays[name] = np.concatenate(parts)[inv]
            continue
        like = next(a for a in parts if a is not None)
        fill = -1 if like.dtype.kind in "iu" else np.nan
        full = np.full((R,) + like.shape[1:], fill, dtype=like.dtype if like.dtype.kind in "iu" else np.float64)
        for a, s in zip(parts, stacks):
            if a is not None:
                full[np.array(s)] = a
        arrays[name] = full
    return arrays
