"""``program --task constant-gradient``: the settings of the constant-gradient toy (paper Fig. 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import param
from analogtrain.config.loading import split_scope
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError

#: the toy's own device layer, between the preset and the user's keys: 40 states (step 0.05) and
#: spreads of 0.1 (the paper's caption value is cut off in the source; see docs/algorithms.md)
TOY_DEVICE = {"dw_min": 0.05, "dw_min_dtod": 0.1, "up_down_dtod": 0.1, "w_max_dtod": 0.1, "w_min_dtod": 0.1,
              "dw_min_std": 0.1}


def transfer_algorithms() -> tuple[str, ...]:
    from analogtrain.engine.algorithms.registry import ALGORITHMS

    return tuple(n for n, s in ALGORITHMS.items() if s.family == "transfer")


@dataclass(frozen=True)
class ToyConfig(RunConfig):
    """A 5x5 layer under a constant gradient plus noise (x = 1, d_i = gradient + noise xi), each
    transfer algorithm with and without a reference offset on A; W and A recorded every
    ``record_every`` updates."""

    kind: ClassVar[str] = "toy"
    section: ClassVar[str] = "toy"
    tables: ClassVar[dict] = {"device": "device"}

    steps: int = param(3000, "updates", unit="updates", ge=1, le=10**8)
    algorithm: tuple[str, ...] = param(("ttv2", "c-ttv2", "agad"), "algorithms (transfer family)",
                                       choices=transfer_algorithms, min_items=1, aliases=("algorithms",))
    seed: int = param(0, "master seed", ge=0)
    record_every: int = param(25, "record the means of W and A every N updates", unit="updates", ge=1)
    reference_offset: float = param(-0.8, "A's reference relative to its symmetry point in the offset case",
                                    unit="weight", ge=-10.0, le=10.0)
    gradient: float = param(0.2, "the constant gradient d_i (the correct W decreases)", unit="1", ge=-100.0,
                            le=100.0)
    gradient_noise: float = param(1.0, "std of the noise added to the gradient per update", unit="1", ge=0.0,
                                  le=100.0)
    lr: float = param(0.02, "learning rate", unit="1", gt=0.0, le=1e3)
    device: DeviceSpec = DeviceSpec()

    def resolve_defaults(self) -> None:
        from analogtrain.engine.algorithms.registry import canonical

        if isinstance(self.algorithm, tuple):
            self._set("algorithm", tuple(canonical(a, "toy.algorithm") for a in self.algorithm))

    def check(self) -> None:
        if self.steps < self.record_every:
            raise ConfigError(f"toy.steps: the constant-gradient task records every {self.record_every} updates; "
                              f"must be >= {self.record_every} (got {self.steps})", field="toy.steps")
        for k in self.device.as_dict():
            scope, name = split_scope(k)
            if name == "reference_mean" and scope in (None, "A"):
                raise ConfigError(f"device.{k}: overridden by the toy's reference offset (reference_offset) on A, "
                                  "so it would have no effect; remove it", field=f"device.{k}")
        for array in ("A", "W"):
            self.device.resolve(array, base=TOY_DEVICE)
