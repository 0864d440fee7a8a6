"""``device fit``: which measured pulse response to fit, with which model and units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogtrain.config.fields import param
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError


def model_choices() -> tuple[str, ...]:
    from analogtrain.tools.fit import MODEL_NAMES

    return ("auto", *MODEL_NAMES)


@dataclass(frozen=True)
class FitConfig(RunConfig):
    """Fit device models to a measured pulse response (a CSV) and describe the best one as a
    device config."""

    kind: ClassVar[str] = "fit"
    section: ClassVar[str] = "fit"
    paths: ClassVar[tuple] = ("data",)

    data: str | None = param(None, "the measured pulse response: a CSV with columns pulse, direction, value "
                                   "(optionally device, cycle); see docs/device_fit.md", nullable=True,
                             default_doc="required")
    model: str = param("auto", "model to fit; auto fits all and keeps the lowest RMS residual (fewer parameters "
                               "win within 1 %)", choices=model_choices)
    normalise: str = param("auto", "auto: keep the units if the fitted bounds contain 0 (weights), else "
                                   "(conductances) map the fitted range onto [-1, 1]; range: always map; "
                                   "none: never map", choices=("auto", "none", "range"))
    subtract_sp: bool = param(False, "write subtract_symmetry_point = true (the device reads 0 at its symmetry "
                                     "point, the ideal TTv2 reference)")

    def check(self) -> None:
        if self.data is None:
            raise ConfigError("fit.data: a measured pulse-response CSV is required", field="fit.data")
