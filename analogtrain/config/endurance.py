"""``endurance``: which run to analyse (or which short program run to simulate), and the targets."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import param
from analogtrain.config.program import algorithm_choices, parse_size
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError

#: the simulation settings (used without a run directory)
SIMULATION = ("algorithm", "n_states", "sigma_r", "steps", "out_size", "in_size", "lr", "seed", "device")


@dataclass(frozen=True)
class EnduranceConfig(RunConfig):
    """Pulses per device per input sample of every device array of a run, projected to a
    training run of ``samples`` samples and checked against the device ``endurance``;
    the retention each array needs. Without ``run_dir`` a short ``program`` run (one seed,
    pulse counters on) is simulated from the simulation settings."""

    kind: ClassVar[str] = "endurance"
    section: ClassVar[str] = "endurance"
    tables: ClassVar[dict] = {"device": "device"}
    virtual: ClassVar[dict] = {"size": parse_size}
    paths: ClassVar[tuple] = ("run_dir",)

    run_dir: str | None = param(None, "the --out directory of a program or train run made with --count-pulses "
                                      "(default: simulate)", nullable=True, default_doc="simulate")
    samples: int | None = param(None, "project the pulse counts to a training run of this many input samples "
                                      "(default: the run's own length)", unit="samples", ge=1, nullable=True,
                                default_doc="the run's length")
    endurance: float = param(1e9, "pulses one device can take; an array passes if its projected maximum per "
                                  "device is <= this", unit="pulses", gt=0.0)
    samples_per_second: float | None = param(None, "input samples per second of the hardware, to state the "
                                                   "retention times in seconds", unit="samples/s", gt=0.0,
                                             nullable=True, default_doc="none")
    bins_per_decade: int = param(1, "histogram bins per decade of pulses per device per sample", unit="bins",
                                 ge=1, le=20)
    algorithm: tuple[str, ...] = param(("ttv2", "c-ttv2", "agad"), "(simulation) algorithms", min_items=1,
                                       choices=algorithm_choices)
    n_states: tuple[float, ...] = param((20.0,), "(simulation) device states", unit="states", gt=0.0, min_items=1)
    sigma_r: tuple[float, ...] = param((0.0,), "(simulation) reference offset spread", unit="weight", ge=0.0,
                                       min_items=1)
    steps: int = param(2000, "(simulation) training samples", unit="samples", ge=1, le=10**8)
    out_size: int = param(20, "(simulation) layer rows", unit="rows", ge=1, le=65536)
    in_size: int = param(20, "(simulation) layer columns", unit="columns", ge=1, le=65536)
    lr: tuple[float, ...] = param((0.1,), "(simulation) learning rate", unit="1", gt=0.0, min_items=1)
    seed: int = param(0, "(simulation) master seed", ge=0)
    device: DeviceSpec = DeviceSpec()

    def resolve_defaults(self) -> None:
        from analogtrain.engine.algorithms.registry import canonical

        if isinstance(self.algorithm, tuple):
            self._set("algorithm", tuple(canonical(a, "endurance.algorithm") for a in self.algorithm))

    def check(self) -> None:
        if self.run_dir is None:
            self.simulation()
            return
        default = {f.name: f.default for f in fields(self)}
        given = [n for n in SIMULATION if n != "device" and getattr(self, n) != default[n]]
        if self.device != DeviceSpec():
            given.append("device")
        if given:
            raise ConfigError(f"endurance.run_dir: give either a run directory (RUN_DIR) or the simulation settings "
                              f"({', '.join(given)}), not both", field="endurance.run_dir")

    def simulation(self):
        """The short ``program`` run simulated without a run directory (one seed, counters on)."""
        from analogtrain.config.program import ProgramConfig

        return ProgramConfig(out_size=self.out_size, in_size=self.in_size, steps=self.steps, algorithm=self.algorithm,
                             n_states=self.n_states, sigma_r=self.sigma_r, seeds=1, lr=self.lr, seed=self.seed,
                             count_pulses=True, device=self.device)
