"""Endurance and retention requirements of the arrays of a training run (paper: "Endurance and retention").

Pure statistics over the tile's exact per-device pulse counters (``AnalogTile(count_pulses=True)``:
``up_count`` / ``down_count``, saved as ``*.up_pulses`` / ``*.down_pulses`` in ``arrays.npz``).
:func:`load_run` reads a ``program`` or ``train`` output directory (its ``config`` says which
run it was; the counters are found through :func:`analogtrain.results.arrays.counters`),
:func:`from_program_result` takes an in-process ``program`` result, and :func:`run` does the
whole analysis of an :class:`~analogtrain.config.endurance.EnduranceConfig` (simulating a short
``program`` run first when no run directory is given).

Per array (A, W, and the reference R of TTv2 / c-TTv2), per replica (program) or layer
(train):

* pulses per device per input sample, ``n_ij / S`` with ``n_ij`` the device's counter and
  ``S`` the input samples of the run: mean, median, 99th percentile and max over the
  array's devices, for up pulses, down pulses and their sum;
* the distribution of the total per-sample rate as a histogram with log-spaced bins
  (devices that never received a pulse are counted in a separate ``0`` bin);
* the projection to a training run of ``N`` samples: ``n_ij N / S`` (exact counts when
  ``N == S``); the array passes the endurance check when the projected maximum over its
  devices is ``<= endurance`` (pulses one device survives);
* retention: how long the array must hold its state (see :func:`retention`).

The reference array R of TTv2 / c-TTv2 is programmed once, before training (those
programming pulses are not counted): it receives 0 training pulses and must hold its
value for the whole run. AGAD replaces it by the digital reference P_ref.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from analogtrain.errors import ConfigError, InputError

STAT_KEYS = ("mean", "median", "p99", "max")
DIRECTIONS = ("up", "down", "total")


# ------------------------------------------------------------------------------ data model
@dataclass
class Group:
    """One replica (program) or one layer (train): its algorithm and per-array counters."""

    key: str                                 # "replica 3" or "layer0"
    algorithm: str
    labels: dict                             # grid cell (program) or layer name (train)
    counts: dict                             # array name ("A", "W") -> (up, down) int64 (out, in)
    alg_cfg: dict | None = None              # transfer config fields (transfer_every, in_chop_prob, ...)
    updates_per_sample: float = 1.0          # layer updates per input sample (conv / LSTM > 1)


@dataclass
class RunCounts:
    kind: str                                # "program", "train" or "simulated"
    samples: int                             # input samples of the run (S)
    groups: list
    source: str | None = None
    summary_totals: dict = field(default_factory=dict)   # "<group key>/<array>" -> total from summary.json
    notes: list = field(default_factory=list)


# ------------------------------------------------------------------------------ statistics
def per_sample_stats(up: np.ndarray, down: np.ndarray, samples: int) -> dict:
    """Pulses per device per input sample: {up, down, total} x {mean, median, p99, max}.

    ``up`` and ``down`` are exact integer counters of one array (any shape); ``samples``
    the input samples during which they were accumulated. Also returns the exact integer
    totals ``pulses`` {up, down, total} and ``max_device_pulses`` {up, down, total}.
    """
    if samples <= 0:
        raise ConfigError(f"samples: must be > 0 (got {samples})")
    up = np.asarray(up, dtype=np.int64).ravel()
    down = np.asarray(down, dtype=np.int64).ravel()
    total = up + down
    out: dict[str, Any] = {"per_sample": {}, "pulses": {}, "max_device_pulses": {}}
    for name, n in (("up", up), ("down", down), ("total", total)):
        rate = n.astype(np.float64) / samples
        out["per_sample"][name] = {"mean": float(rate.mean()), "median": float(np.median(rate)),
                                   "p99": float(np.percentile(rate, 99)), "max": float(rate.max())}
        out["pulses"][name] = int(n.sum())
        out["max_device_pulses"][name] = int(n.max())
    return out


def projection(max_device_pulses: int, total_pulses: int, n_devices: int, run_samples: int,
               target_samples: int, endurance: float) -> dict:
    """Pulses of a run of ``target_samples`` samples, scaled from ``run_samples`` (linear in samples).

    ``max_per_device = max_device_pulses * target / run`` (exact when target == run); the
    array passes if that is ``<= endurance``.
    """
    if run_samples <= 0 or target_samples <= 0:
        raise ConfigError(f"samples: must be > 0 (got run {run_samples}, target {target_samples})")
    if not endurance > 0:
        raise ConfigError(f"--endurance: must be > 0 (got {endurance})")
    f = target_samples / run_samples
    mx = max_device_pulses * f if target_samples != run_samples else float(max_device_pulses)
    return {"samples": int(target_samples), "max_per_device": mx,
            "mean_per_device": total_pulses * f / max(n_devices, 1), "total": total_pulses * f,
            "endurance": float(endurance), "fraction_of_endurance": mx / endurance, "pass": bool(mx <= endurance)}


def log_bin_edges(values: Sequence[np.ndarray], bins_per_decade: int = 1) -> np.ndarray:
    """Common log-spaced edges 10^(k/b) covering every positive value (empty if there is none)."""
    pos = [np.asarray(v, dtype=np.float64)[np.asarray(v) > 0] for v in values]
    pos = [p for p in pos if p.size]
    if not pos:
        return np.zeros(0)
    lo = min(float(p.min()) for p in pos)
    hi = max(float(p.max()) for p in pos)
    b = int(bins_per_decade)
    k0 = math.floor(math.log10(lo) * b + 1e-9)
    k1 = math.floor(math.log10(hi) * b + 1e-9) + 1     # hi falls in [10^((k1-1)/b), 10^(k1/b))
    return 10.0 ** (np.arange(k0, k1 + 1) / b)


def histogram(rates: np.ndarray, edges: np.ndarray) -> dict:
    """Counts of devices per bin [e_k, e_k+1) of the per-sample rate, plus ``zero`` (no pulse)."""
    r = np.asarray(rates, dtype=np.float64).ravel()
    zero = int(np.count_nonzero(r <= 0))
    pos = r[r > 0]
    if edges.size < 2:
        counts = np.zeros(0, dtype=np.int64)
    else:
        idx = np.searchsorted(edges, pos, side="right") - 1
        idx = np.clip(idx, 0, edges.size - 2)
        counts = np.bincount(idx, minlength=edges.size - 1).astype(np.int64)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "zero": zero}


# ------------------------------------------------------------------------------ retention
def retention(algorithm: str, array: str, x_size: int, alg_cfg: dict | None, run_samples: int,
              updates_per_sample: float = 1.0) -> dict:
    """Samples the array must hold its state, the formula used and a note.

    A (TT family) must hold what it accumulated until it has been transferred:

    * no chopper (TTv2, ``in_chop_prob = 0``): one transfer period ``x_size * n_s`` (every
      column is read once per ``x_size * n_s`` layer updates);
    * random chopper (c-TTv2): the mean chopper period ``x_size * n_s / in_chop_prob``
      (a column's chopper flips with probability p at each of its reads);
    * regular chopper (AGAD, or c-TTv2 with ``in_chop_random = false``): the chopper
      half-period ``N_c * x_size * n_s``, ``N_c = max(ceil(1 / in_chop_prob), 2)``, over which
      the read is compared with the frozen reference P_ref.

    These periods count layer updates; divided by ``updates_per_sample`` (> 1 for
    convolutions and LSTMs, which update once per patch / time step) they become input
    samples. W and the reference R must hold for the whole run (``run_samples``).
    """
    if array in ("W", "R"):
        note = "weights: must hold their value for the whole training run" if array == "W" else \
            ("reference: programmed once, receives no training pulses, must hold its value the whole run "
             + ("(TTv2: tolerates only small drift, about 5 % of the range)" if algorithm == "ttv2" else
                "(c-TTv2: chopping tolerates larger drift, up to about 25 % of the range)"))
        return {"samples": float(run_samples), "formula": "whole run (N samples)", "note": note}
    cfg = alg_cfg or {}
    n_s = int(cfg.get("transfer_every", 1))
    p = float(cfg.get("in_chop_prob", 0.0))
    random_chop = bool(cfg.get("in_chop_random", True))
    if p <= 0:
        updates = x_size * n_s
        formula = f"x_size*n_s = {x_size}*{n_s}"
        note = "gradient: one transfer period (each column of A is read every x_size*n_s updates)"
    elif random_chop:
        updates = x_size * n_s / p
        formula = f"x_size*n_s/in_chop_prob = {x_size}*{n_s}/{p:g}"
        note = "gradient: one mean chopper period (random flips with probability in_chop_prob per read)"
    else:
        n_c = max(math.ceil(1.0 / p - 1e-12), 2)
        updates = n_c * x_size * n_s
        formula = f"N_c*x_size*n_s = {n_c}*{x_size}*{n_s}"
        note = "gradient: one chopper period of the regular chopper (reference P_ref frozen at each flip)"
    ups = float(updates_per_sample) if updates_per_sample and updates_per_sample > 0 else 1.0
    if ups != 1.0:
        formula += f" / {ups:g} updates per sample"
    return {"samples": updates / ups, "formula": formula, "note": note}


def arrays_of(algorithm: str, alg_cfg: dict | None) -> tuple[str, ...]:
    """Device arrays an algorithm uses (the registry's), plus the programmed reference R of a
    transfer algorithm without a dynamic reference (TTv2, c-TTv2); none for FP."""
    from analogtrain.engine.algorithms.registry import algorithm_spec

    spec = algorithm_spec(algorithm)
    if spec.family == "transfer" and not bool((alg_cfg or {}).get("dynamic_reference", False)):
        return (*spec.arrays, "R")
    return spec.arrays


# ------------------------------------------------------------------------------ analysis
def analyse(run: RunCounts, target_samples: int | None = None, endurance: float = 1e9,
            samples_per_second: float | None = None, bins_per_decade: int = 1) -> dict:
    """Statistics, histogram, projection, pass/fail and retention of every array of ``run``."""
    N = int(target_samples) if target_samples is not None else int(run.samples)
    if N <= 0:
        raise ConfigError(f"--samples: must be > 0 (got {target_samples})")
    if not (endurance > 0 and math.isfinite(endurance)):
        raise ConfigError(f"--endurance: must be a finite number > 0 (got {endurance})")
    if samples_per_second is not None and not (samples_per_second > 0 and math.isfinite(samples_per_second)):
        raise ConfigError(f"--samples-per-second: must be a finite number > 0 (got {samples_per_second})")
    rows: list[dict] = []
    rates: list[np.ndarray] = []
    for g in run.groups:
        shape = next(iter(g.counts.values()))[0].shape if g.counts else None
        for array in arrays_of(g.algorithm, g.alg_cfg):
            if array == "R":
                if shape is None:
                    continue
                up = down = np.zeros(shape, dtype=np.int64)
            elif array in g.counts:
                up, down = g.counts[array]
            else:
                continue
            st = per_sample_stats(up, down, run.samples)
            n_dev = int(np.asarray(up).size)
            proj = projection(st["max_device_pulses"]["total"], st["pulses"]["total"], n_dev, run.samples, N,
                              endurance)
            x_size = int(np.asarray(up).shape[-1])
            ret = retention(g.algorithm, array, x_size, g.alg_cfg, N, g.updates_per_sample)
            ret["seconds"] = ret["samples"] / samples_per_second if samples_per_second else None
            row = {"group": g.key, "algorithm": g.algorithm, "labels": g.labels, "array": array,
                   "shape": list(np.asarray(up).shape), "devices": n_dev, "run_samples": int(run.samples),
                   "pulses": st["pulses"], "max_device_pulses": st["max_device_pulses"],
                   "per_sample": st["per_sample"], "projected": proj, "retention": ret}
            if array == "R":
                row["note"] = "programmed once before training (not counted); 0 training pulses"
            key = f"{g.key}/{array}"
            if key in run.summary_totals:
                row["summary_total"] = int(run.summary_totals[key])
                row["matches_summary"] = bool(int(run.summary_totals[key]) == st["pulses"]["total"])
            rows.append(row)
            rates.append((np.asarray(up, dtype=np.int64) + np.asarray(down, dtype=np.int64)).ravel()
                          / run.samples)
    edges = log_bin_edges(rates, bins_per_decade)
    for row, r in zip(rows, rates):
        row["histogram"] = histogram(r, edges)
    worst = max(rows, key=lambda r: r["projected"]["max_per_device"]) if rows else None
    return {
        "source": {"kind": run.kind, "path": run.source, "samples": int(run.samples)},
        "samples_projected": N,
        "endurance": float(endurance),
        "samples_per_second": samples_per_second,
        "bins_per_decade": int(bins_per_decade),
        "histogram_edges": edges.tolist(),
        "arrays": rows,
        "pass": bool(all(r["projected"]["pass"] for r in rows)),
        "worst": ({"group": worst["group"], "array": worst["array"],
                   "projected_max_per_device": worst["projected"]["max_per_device"]} if worst else None),
        "notes": list(run.notes),
    }


# ------------------------------------------------------------------------------ inputs
def _as_counts(a: np.ndarray, where: str) -> np.ndarray | None:
    """An exact int64 counter array; None where the replica has no such array (filled with -1)."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise InputError(f"{where}: pulse counters must be integers (got dtype {a.dtype})")
    if a.size and np.all(a < 0):
        return None
    if np.any(a < 0):
        raise InputError(f"{where}: pulse counters are not non-negative integers")
    return a.astype(np.int64)


def no_counters_message(path, algorithms=None) -> str:
    algs = set(algorithms or [])
    if algs and algs <= {"fp"}:
        return (f"{path}: the run trained only the floating-point baseline (fp), which applies no device "
                "pulses; count pulses of an analog algorithm (sgd, mp, ttv2, c-ttv2, agad) with --count-pulses")
    return (f"{path}: the run has no pulse counters (no up_pulses / down_pulses in arrays.npz); "
            "rerun it with --count-pulses")


def from_program(arrays: dict, config, summary_totals: dict | None = None, kind: str = "program",
                 source: str | None = None) -> RunCounts:
    """RunCounts of a ``program`` run: ``arrays`` with a leading replica axis, ``config`` its
    :class:`~analogtrain.config.program.ProgramConfig` (the replicas' algorithms and settings)."""
    from analogtrain.config.fields import to_dict
    from analogtrain.results import arrays as schema

    reps = config.replicas
    found = schema.counters(arrays)
    if not found:
        raise InputError(no_counters_message(source or "program result", [r.algorithm for r in reps]))
    groups = []
    for i, rep in enumerate(reps):
        counts = {}
        for (_, name), (ua, da) in found.items():
            if ua.ndim < 2 or ua.shape[0] != len(reps) or ua.shape != da.shape:
                raise InputError(f"{source}: {name} pulse counters have shape {ua.shape}, expected "
                                 f"({len(reps)}, out, in)")
            u = _as_counts(ua[i], f"{source}: {name}.up_pulses[{i}]")
            d = _as_counts(da[i], f"{source}: {name}.down_pulses[{i}]")
            if u is not None and d is not None:
                counts[name] = (u, d)
        labels = {**rep.cell, "seed_index": rep.seed_index}
        groups.append(Group(key=f"replica {i}", algorithm=rep.algorithm, labels=labels, counts=counts,
                            alg_cfg=to_dict(rep.alg_cfg)))
    return RunCounts(kind=kind, samples=int(config.steps), groups=groups, source=source,
                     summary_totals=summary_totals or {})


def from_program_result(res) -> RunCounts:
    """RunCounts of an in-process :class:`~analogtrain.results.program.ProgramResult`."""
    totals = {f"replica {i}/{name}": int(t) for name, v in (res.pulses or {}).items()
              for i, t in enumerate(np.asarray(v).tolist()) if t >= 0}
    return from_program(res.arrays(), res.config, totals, kind="simulated")


def from_train(arrays: dict, config, samples: int, layer_samples: dict | None = None,
               summary_totals: dict | None = None, source: str | None = None) -> RunCounts:
    """RunCounts of a ``train`` run: ``layerK.<A|W>.up_pulses`` (1, out, in), ``config`` its
    :class:`~analogtrain.config.train.TrainConfig`, ``samples`` the input samples of the run,
    ``layer_samples`` the layer updates of each layer (from the checkpoint; convolutions and
    LSTMs update once per patch / time step)."""
    from analogtrain.config.fields import to_dict
    from analogtrain.results import arrays as schema

    found = schema.counters(arrays)
    if not found:
        raise InputError(no_counters_message(source or "train result", [config.algorithm]))
    if samples <= 0:
        raise InputError(f"{source}: the run saw {samples} samples")
    alg_cfg = to_dict(config.algorithm_config())
    layers: dict[str, dict] = {}
    for (layer, name), (ua, da) in found.items():
        u = _as_counts(ua[0] if ua.ndim == 3 else ua, f"{source}: {layer}.{name}.up_pulses")
        d = _as_counts(da[0] if da.ndim == 3 else da, f"{source}: {layer}.{name}.down_pulses")
        if u is not None and d is not None:
            layers.setdefault(layer or "layer", {})[name] = (u, d)
    notes, groups = [], []
    for layer in sorted(layers, key=_natural):
        n = (layer_samples or {}).get(layer)
        ups = n / samples if isinstance(n, int) and n > 0 else 1.0
        groups.append(Group(key=layer, algorithm=config.algorithm, labels={"layer": layer}, counts=layers[layer],
                            alg_cfg=alg_cfg, updates_per_sample=ups))
    if layer_samples is None and arrays_of(config.algorithm, alg_cfg):
        notes.append("no checkpoint.json: retention of A assumes one layer update per input sample")
    return RunCounts(kind="train", samples=int(samples), groups=groups, source=source,
                     summary_totals=summary_totals or {}, notes=notes)


def _natural(s: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path.parent}: no {path.name} there ({what})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text, expected JSON") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def _read_npz(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path.parent}: no arrays.npz there (was the run written with --out?)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(f"{path}: not a readable npz file ({type(e).__name__}: {e})") from None


def load_run(run_dir: str | Path) -> RunCounts:
    """RunCounts of a ``program`` or ``train`` output directory (summary.json + arrays.npz)."""
    from analogtrain.config.loader import load_config

    d = Path(run_dir)
    if not d.exists():
        raise InputError(f"{d}: no such directory")
    if not d.is_dir():
        raise InputError(f"{d}: not a directory (expected a program or train --out directory)")
    summary = _read_json(d / "summary.json", "expected a program or train --out directory")
    if not isinstance(summary, dict) or not isinstance(summary.get("config"), dict):
        raise InputError(f"{d / 'summary.json'}: not the summary of a program or train run")
    kind = summary["config"].get("kind")
    if kind not in ("program", "train"):
        if summary.get("schema_version", 1) < 2:
            raise InputError(f"{d / 'summary.json'}: written by an older analogtrain (schema "
                             f"{summary.get('schema_version')}); rerun the run to analyse it")
        raise InputError(f"{d / 'summary.json'}: not the summary of a program or train run (kind {kind!r})")
    try:
        config = load_config(summary["config"])
    except ConfigError as e:
        raise InputError(f"{d / 'summary.json'}: its config is not valid ({e})") from None
    algorithms = [config.algorithm] if kind == "train" else list(config.algorithm)
    arrays = _read_npz(d / "arrays.npz")
    from analogtrain.results import arrays as schema

    if not schema.counters(arrays):
        if set(algorithms) <= {"fp"}:
            raise InputError(f"{d}: the run uses only the floating-point baseline (fp): no analog devices, "
                             "no pulses to count")
        raise InputError(no_counters_message(d))
    if kind == "train":
        epochs = summary.get("epochs")
        try:
            samples = int(epochs[-1]["samples"])
        except (TypeError, KeyError, IndexError, ValueError):
            raise InputError(f"{d / 'summary.json'}: a train summary needs 'epochs' with 'samples'") from None
        layer_samples = None
        if (d / "checkpoint.json").is_file():
            try:
                ck = _read_json(d / "checkpoint.json", "train checkpoint")
                layer_samples = {k: v.get("samples") for k, v in (ck.get("layers") or {}).items()
                                 if isinstance(v, dict)}
            except (InputError, AttributeError):
                layer_samples = None
        totals = {}
        pulses = epochs[-1].get("pulses") or {}
        if isinstance(pulses, dict):
            for k, v in pulses.items():
                if "." in k and isinstance(v, int):
                    layer, name = k.rsplit(".", 1)
                    totals[f"{layer}/{name}"] = v
        return from_train(arrays, config, samples, layer_samples, totals, source=str(d))
    totals = {}
    ppr = summary.get("pulses_per_replica")
    if isinstance(ppr, dict):
        for name, vals in ppr.items():
            if isinstance(vals, list):
                for i, t in enumerate(vals):
                    if isinstance(t, int) and t >= 0:
                        totals[f"replica {i}/{name}"] = t
    return from_program(arrays, config, totals, kind="program", source=str(d))


def run(cfg):
    """The endurance analysis of an :class:`~analogtrain.config.endurance.EnduranceConfig`."""
    from analogtrain.results.endurance import EnduranceResult

    if cfg.run_dir is not None:
        counts = load_run(cfg.run_dir)
    else:
        from analogtrain.experiments.program import run as run_program

        counts = from_program_result(run_program(cfg.simulation()))
    return EnduranceResult(config=cfg, analysis=analyse(counts, cfg.samples, cfg.endurance, cfg.samples_per_second,
                                                        cfg.bins_per_decade))
