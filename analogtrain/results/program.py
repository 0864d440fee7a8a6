"""The result of ``program``: the weight error per grid cell, traces, every internal array."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analogtrain.config.fields import to_dict
from analogtrain.config.io import IO_PRESETS
from analogtrain.results import files
from analogtrain.results import arrays as schema
from analogtrain.results.base import Result
from analogtrain.results.render import table


@dataclass
class ProgramResult(Result):
    """Replicas in grid order; ``final_error`` (R,) and ``traces`` (R, T) in percent at
    ``trace_steps`` (T,); ``state_arrays`` name -> (R, ...) (see :mod:`analogtrain.results.arrays`);
    ``pulses`` array -> (R,) total pulses per replica (-1: the replica has no such array);
    ``stacks`` (family, replicas, seconds) per stacked simulation."""

    kind: ClassVar[str] = "program"

    config: Any
    replicas: list
    final_error: np.ndarray
    trace_steps: np.ndarray
    traces: np.ndarray
    state_arrays: dict = field(default_factory=dict)
    pulses: dict = field(default_factory=dict)
    target: np.ndarray | None = None
    wall_s: float = 0.0
    stacks: list = field(default_factory=list)
    argv: list | None = None
    created: str | None = None

    # ------------------------------------------------------------------ cells
    def cells(self) -> list[dict]:
        """One entry per grid cell: its axis values and ``weight_error_pct`` {mean, std, per_seed}."""
        cells: dict[tuple, dict] = {}
        for i, r in enumerate(self.replicas):
            key = tuple(r.cell.items())
            entry = cells.setdefault(key, {**r.cell, "per_seed": []})
            entry["per_seed"].append(float(self.final_error[i]))
        out = []
        for entry in cells.values():
            a = np.array(entry.pop("per_seed"))
            entry["weight_error_pct"] = {"mean": float(a.mean()), "std": float(a.std()), "per_seed": a.tolist()}
            out.append(entry)
        return out

    def body(self) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {
            "cells": self.cells(), "wall_s": self.wall_s, "n_replicas": len(self.replicas), "steps": cfg.steps,
            "stacks": [{"algorithms": k, "replicas": n, "seconds": s} for k, n, s in self.stacks],
            "seconds_per_step": self.wall_s / cfg.steps,
        }
        if self.pulses:
            out["pulses_per_replica"] = {k: v.tolist() for k, v in self.pulses.items()}
        out["replicas"] = [{"index": i, **r.cell, "seed_index": r.seed_index,
                            "final_weight_error_pct": float(self.final_error[i])}
                           for i, r in enumerate(self.replicas)]
        out["resolved"] = self.resolved()
        out["array_names"] = sorted(self.arrays())
        return out

    def resolved(self) -> dict[str, Any]:
        """The settings the run used beyond the config: I/O, each algorithm's parameters, and the
        devices of each algorithm's first cell."""
        first: dict[str, Any] = {}
        for r in self.replicas:
            first.setdefault(r.algorithm, r)
        devices = {}
        for name, r in first.items():
            d = {}
            for array, dev in (("W", r.dev_w), ("A", r.dev_a)):
                if dev is not None:
                    d[array] = {"model": dev.model, **to_dict(dev)}
            devices[name] = d
        return {"io": to_dict(IO_PRESETS[self.config.io]),
                "algorithms": {name: to_dict(r.alg_cfg) for name, r in first.items()},
                "devices": devices}

    # ------------------------------------------------------------------ files
    def arrays(self) -> dict[str, np.ndarray]:
        out = dict(self.state_arrays)
        if self.target is not None:
            out[schema.key("target")] = self.target
        out[schema.key("final_weight_error_pct")] = self.final_error
        for k, v in self.pulses.items():
            out[schema.key("pulses_total", k)] = v
        return out

    def extra_files(self):
        return {"traces.csv": self._write_traces}

    def _write_traces(self, path: Path) -> None:
        sweep_keys = [k for k, _ in self.config.sweep]
        meta = ["algorithm", "n_states", "sigma_r", "lr", *sweep_keys]
        rows = []
        for i, r in enumerate(self.replicas):
            for k, step in enumerate(self.trace_steps):
                rows.append([*(r.cell.get(m) for m in meta), r.seed_index, i, int(step), float(self.traces[i, k])])
        files.write_csv(path, [*meta, "seed_index", "replica", "step", "weight_error_pct"], rows)

    # ------------------------------------------------------------------ text
    def table(self) -> str:
        cfg = self.config
        cells = self.cells()
        sweep_keys = [k for k, _ in cfg.sweep]
        row_keys = ["algorithm", "n_states"] + (["lr"] if len(cfg.lr) > 1 else []) + sweep_keys
        rows: dict[tuple, dict] = {}
        for c in cells:
            rk = tuple(c.get(k) for k in row_keys)
            rows.setdefault(rk, {})[c["sigma_r"]] = c["weight_error_pct"]
        sig = list(cfg.sigma_r)
        table_rows = [[*(("device" if v is None else v) for v in rk),
                       *[_fmt_ms(vals[s]) if s in vals else "" for s in sig]] for rk, vals in rows.items()]
        headers = row_keys + [f"sigma_r={s:g}" for s in sig]
        text = ("weight error std(W - W*)/(w_max - w_min) in %, mean +- std over seeds\n"
                + table(table_rows, headers))
        return (text + f"\n\n{len(self.replicas)} replicas x {cfg.steps} steps in {self.wall_s:.1f} s "
                f"({', '.join(f'{k}: {n}' for k, n, _ in self.stacks)} replicas per stack)")

    def plot(self, path: str | Path) -> None:
        plt = files.require_matplotlib()
        cfg = self.config
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        groups: dict[tuple, list] = {}
        for c in self.cells():
            key = (c["algorithm"], c["n_states"], c["lr"], *[c.get(k) for k, _ in cfg.sweep])
            groups.setdefault(key, []).append(c)
        for key, cs in groups.items():
            cs = sorted(cs, key=lambda c: c["sigma_r"])
            m = np.array([c["weight_error_pct"]["mean"] for c in cs])
            s = np.array([c["weight_error_pct"]["std"] for c in cs])
            label = f"{key[0]}, n_states={key[1]}" + ("" if len(cfg.lr) == 1 else f", lr={key[2]}") + \
                "".join(f", {k}={v}" for (k, _), v in zip(cfg.sweep, key[3:]))
            ax.errorbar([c["sigma_r"] for c in cs], m, yerr=s, marker="o", capsize=3, label=label)
        ax.set_xlabel("reference offset sigma_r")
        ax.set_ylabel("weight error std(W - W*) / range [%]")
        ax.set_title("programming a linear layer")
        ax.legend(fontsize=7)
        fig.tight_layout()
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)


def _fmt_ms(e: dict) -> str:
    return f"{e['mean']:.2f} +- {e['std']:.2f}"
