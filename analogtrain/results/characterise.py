"""The result of ``device``: pulse-response curves, symmetry points, steps, bounds, asymmetry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analogtrain.config.fields import to_dict
from analogtrain.results import files
from analogtrain.results.base import Result
from analogtrain.results.render import table


@dataclass
class Characterisation(Result):
    """``curves`` (T, n_devices) read weights, T = 1 + 2 n cycles, with ``directions`` (T,)
    (+1 up, -1 down, 0 start); ``sp_formula`` / ``sp_simulated`` (n_devices,) physical
    symmetry points; ``sp_trace`` the mean physical state during the random sequence;
    ``summary`` the statistics over devices (see :func:`analogtrain.experiments.characterise.characterise`)."""

    kind: ClassVar[str] = "device"

    config: Any
    device: Any
    n_devices: int
    cycles: int
    pulses_per_direction: int
    random_pulses: int
    summary: dict
    curves: np.ndarray = field(repr=False)
    directions: np.ndarray = field(repr=False)
    sp_formula: np.ndarray = field(repr=False)
    sp_simulated: np.ndarray = field(repr=False)
    sp_trace: np.ndarray = field(repr=False)
    wall_s: float = 0.0
    argv: list | None = None
    created: str | None = None

    def body(self) -> dict[str, Any]:
        return {"preset": self.config.device.preset if self.config is not None else None,
                "device": {"model": self.device.model, **to_dict(self.device)}, "n_devices": self.n_devices,
                "cycles": self.cycles, "pulses_per_direction": self.pulses_per_direction,
                "random_pulses": self.random_pulses, **self.summary, "wall_s": self.wall_s}

    def table(self) -> str:
        out = self.body()

        def ms(key, fmt="{:.4g}"):
            v = out.get(key)
            if not v:
                return ""
            return (fmt.format(v["mean"]) + " +- " + fmt.format(v["std"])) if v.get("std") is not None else ""

        rows = [
            ["model", out["device"]["model"] + (f" (preset {out['preset']})" if out.get("preset") else "")],
            ["devices sampled", out["n_devices"]],
            ["n_states (w_max - w_min) / dw", f"{out['n_states']:.4g}"],
            ["n_states per device", ms("n_states_devices")],
            ["dw_min", f"{out['dw_min']:.4g}"],
            ["step up (scale_up)", ms("step_up")],
            ["step down (scale_down)", ms("step_down")],
            ["measured step up / pulse", ms("measured_step_up")],
            ["measured step down / pulse", ms("measured_step_down")],
            ["asymmetry (up-down)/(up+down)", ms("asymmetry")],
            ["w_min (physical)", ms("w_min")],
            ["w_max (physical)", ms("w_max")],
            ["reference offset", ms("reference")],
            ["symmetry point (formula)", _sp_formula(out, ms("symmetry_point"))],
            ["symmetry point (random pulses)", ms("symmetry_point_simulated")],
            ["|SP simulated - formula| mean / max",
             f"{out['symmetry_point_abs_diff']['mean']:.3g} / {out['symmetry_point_abs_diff']['max']:.3g}"
             if out["symmetry_point_abs_diff"]["mean"] is not None else "-"],
            ["symmetry point, read weight", ms("symmetry_point_read")],
            ["write noise std", f"{out['write_noise']:.4g}"],
            ["response curve", f"{out['cycles']} cycles x {out['pulses_per_direction']} up/down pulses"],
            ["random sequence", f"{out['random_pulses']} pulses"],
        ]
        return table(rows, ["quantity", "value (mean +- std over devices)"])

    # ------------------------------------------------------------------ files
    def extra_files(self):
        return {"curves.csv": self._write_curves, "symmetry_points.csv": self._write_sp}

    def _write_curves(self, path: Path) -> None:
        R = self.n_devices
        cycle = np.concatenate([[0], np.repeat(np.arange(self.cycles), 2 * self.pulses_per_direction)])
        rows = []
        for t in range(self.curves.shape[0]):
            c = self.curves[t]
            rows.append([t, int(cycle[t]), {1: "up", -1: "down", 0: "start"}[int(self.directions[t])],
                         float(c.mean()), float(c.std()), *[float(v) for v in c]])
        files.write_csv(path, ["pulse", "cycle", "direction", "w_mean", "w_std", *[f"w_{i}" for i in range(R)]], rows)

    def _write_sp(self, path: Path) -> None:
        files.write_csv(path, ["device", "formula", "simulated"],
                        [[i, float(a) if np.isfinite(a) else "", float(b)]
                         for i, (a, b) in enumerate(zip(self.sp_formula, self.sp_simulated))])

    def plot(self, path: str | Path) -> None:
        plt = files.require_matplotlib()
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        ax = axes[0]
        x = np.arange(self.curves.shape[0])
        m, s = self.curves.mean(1), self.curves.std(1)
        for i in range(min(5, self.n_devices)):
            ax.plot(x, self.curves[:, i], lw=0.6, alpha=0.6)
        ax.plot(x, m, "k", lw=1.5, label="mean")
        ax.fill_between(x, m - s, m + s, color="k", alpha=0.15, label="+-1 std")
        ax.set_xlabel("pulse")
        ax.set_ylabel("read weight")
        ax.set_title("pulse response")
        ax.legend()
        ax = axes[1]
        ax.hist(self.sp_formula[np.isfinite(self.sp_formula)], bins=30, alpha=0.6, label="formula")
        ax.hist(self.sp_simulated, bins=30, alpha=0.6, label="random pulses")
        ax.set_xlabel("symmetry point (physical weight)")
        ax.set_title("symmetry point over devices")
        ax.legend()
        fig.tight_layout()
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)


def _sp_formula(out: dict, text: str) -> str:
    """The formula SP over the devices that have one, and how many have none."""
    none = out.get("devices_without_symmetry_point", 0)
    if not none:
        return text
    n = out["n_devices"]
    lack = f"{none} of {n} devices have none: up and down steps never balance inside the range"
    return lack if none == n else f"{text} ({lack})"
