"""The result of the constant-gradient toy: the means of W and A over time, per replica."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analogtrain.results import files
from analogtrain.results.base import Result
from analogtrain.results.render import table


@dataclass
class ToyResult(Result):
    """``labels`` (R,): "ttv2", "ttv2+offset", ...; ``steps`` (T,) the recorded updates;
    ``w_mean`` / ``a_mean`` (R, T) the mean of W and the mean read of A (relative to A's
    reference). The correct W decreases."""

    kind: ClassVar[str] = "toy"
    command: ClassVar[str] = "program"

    config: Any
    labels: list
    steps: np.ndarray
    w_mean: np.ndarray
    a_mean: np.ndarray
    argv: list | None = None
    created: str | None = None

    @property
    def final_w(self) -> np.ndarray:
        return self.w_mean[:, -1].copy()

    def results(self) -> list[dict]:
        return [{"replica": lab, "final_w_mean": float(self.w_mean[i, -1]), "final_a_mean": float(self.a_mean[i, -1]),
                 "direction_correct": bool(self.w_mean[i, -1] < self.w_mean[i, 0] - 1e-9)}
                for i, lab in enumerate(self.labels)]

    def body(self) -> dict[str, Any]:
        return {"task": "constant-gradient", "expected_direction": "W decreases", "results": self.results(),
                "trace_steps": self.steps.tolist(), "w_mean": self.w_mean, "a_mean": self.a_mean}

    def table(self) -> str:
        rows = [[r["replica"], f"{r['final_w_mean']:.3f}", f"{r['final_a_mean']:.3f}",
                 "yes" if r["direction_correct"] else "NO"] for r in self.results()]
        return (f"constant gradient: the correct W moves down; offset = reference "
                f"{-self.config.reference_offset:g} below A's SP\n"
                + table(rows, ["replica", f"mean W after {self.config.steps}", "mean A (read)", "W moved down"]))

    def extra_files(self):
        return {"traces.csv": self._write_traces}

    def _write_traces(self, path: Path) -> None:
        rows = [[lab, int(s), float(self.w_mean[i, k]), float(self.a_mean[i, k])]
                for i, lab in enumerate(self.labels) for k, s in enumerate(self.steps)]
        files.write_csv(path, ["replica", "step", "w_mean", "a_mean"], rows)

    def plot(self, path: str | Path) -> None:
        plt = files.require_matplotlib()
        algos = list(self.config.algorithm)
        fig, axes = plt.subplots(2, len(algos), figsize=(4 * len(algos), 6), sharex=True, squeeze=False)
        for i, lab in enumerate(self.labels):
            col = algos.index(lab.split("+")[0])
            style = "--" if "offset" in lab else "-"
            axes[0, col].plot(self.steps, self.w_mean[i], style, label=lab)
            axes[1, col].plot(self.steps, self.a_mean[i], style, label=lab)
            axes[0, col].set_title(lab.split("+")[0])
        for ax in axes[0]:
            ax.set_ylabel("mean W")
            ax.legend(fontsize=7)
        for ax in axes[1]:
            ax.set_ylabel("mean A (read)")
            ax.set_xlabel("update")
        fig.tight_layout()
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
