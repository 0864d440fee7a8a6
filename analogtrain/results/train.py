"""The result of ``train``: per-epoch metrics, the final ones, and every internal array."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from analogtrain.results import arrays as schema
from analogtrain.results.base import Result
from analogtrain.results.render import table


@dataclass
class TrainResult(Result):
    """``epochs``: one dict per epoch (epoch, lr, train_loss, test_error_pct or test_perplexity,
    test_loss, pulses, at_bound_pct, wall_s, samples); ``model`` the trained network;
    ``data_info`` the data set's sizes; ``resumed_from`` the epoch a resumed run started at."""

    kind: ClassVar[str] = "train"

    config: Any
    epochs: list
    wall_s: float
    model: Any = field(repr=False)
    data_info: dict = field(default_factory=dict)
    resumed_from: int = 0
    argv: list | None = None
    created: str | None = None

    @property
    def final(self) -> dict:
        return dict(self.epochs[-1]) if self.epochs else {}

    def body(self) -> dict[str, Any]:
        return {"final": self.final, "epochs": self.epochs, "wall_s": self.wall_s, "data": self.data_info,
                "resumed_from_epoch": self.resumed_from, "seconds_per_epoch": self.wall_s / max(1, len(self.epochs))}

    def arrays(self) -> dict[str, np.ndarray]:
        return schema.model_arrays(self.model)

    def table(self) -> str:
        rows = []
        for m in self.epochs:
            metric = f"{m['test_error_pct']:.2f}" if "test_error_pct" in m else f"{m['test_loss']:.4f}"
            rows.append([m["epoch"], f"{m['lr']:.4g}", f"{m['train_loss']:.4f}", metric,
                         sum(m["pulses"].values()) if m["pulses"] else "", f"{m['wall_s']:.1f}"])
        head = "test error %" if self.epochs and "test_error_pct" in self.epochs[0] else "test loss"
        cfg = self.config
        return (f"{cfg.model} on {cfg.dataset} with {cfg.algorithm}\n"
                + table(rows, ["epoch", "lr", "train loss", head, "pulses", "seconds"]))
