"""``estimate``: the assumptions of the update-time model and which algorithms to report.

The defaults are the paper's (N = 512, n_s = 2, l_max = 5, l_w = 1, MVM 40 ns, pulse 5 ns,
0.7 TFLOPS per core shared by 4 arrays); see docs/estimate.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from analogtrain.config.fields import check_types, param, validate
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError


def estimated_algorithms() -> tuple[str, ...]:
    """The registry's algorithms the update-time model covers (all but floating point)."""
    from analogtrain.engine.algorithms.registry import ALGORITHMS

    return tuple(n for n, s in ALGORITHMS.items() if s.estimate_model is not None)


@dataclass(frozen=True)
class Assumptions:
    """The hardware and algorithm assumptions of the estimate (defaults: the paper's)."""

    n: int = param(512, "tile size N (N x N array; the read column has N elements)", unit="elements", ge=1)
    n_s: int = param(2, "samples between two column reads/transfers (n_s)", unit="samples", ge=1)
    l_max: int = param(5, "pulse-train length of the parallel update (A; W for SGD; MP's W write)",
                       unit="pulses", ge=1)
    l_w: int = param(1, "pulses per W write at a transfer (single-pulse write)", unit="pulses", ge=0)
    t_mvm: float = param(40.0, "time of one analog MVM (a column read)", unit="ns", ge=0.0)
    t_pulse: float = param(5.0, "time of one update pulse", unit="ns", ge=0.0)
    tflops: float = param(0.7, "digital (FP8) throughput of one core", unit="TFLOPS", gt=0.0)
    arrays_per_core: int = param(4, "arrays sharing one core's digital throughput", unit="arrays", ge=1)

    def __post_init__(self) -> None:
        check_types(self, "estimate")
        validate(self, "estimate")

    @property
    def flop_per_ns(self) -> float:
        """Digital throughput available to one array, FLOP/ns (= tflops * 1000 / arrays_per_core)."""
        return self.tflops * 1000.0 / self.arrays_per_core

    @property
    def vector_op_ns(self) -> float:
        """Time of one elementwise operation over an N-vector, ns (N / F)."""
        return self.n / self.flop_per_ns

    def replace(self, **changes) -> "Assumptions":
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(Assumptions)}
        d.update(changes)
        return Assumptions(**d)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Assumptions)}


KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Assumptions))


@dataclass(frozen=True)
class EstimateConfig(RunConfig, Assumptions):
    """The update-phase time per input sample of each algorithm, with every term printed.

    The assumption fields are :class:`Assumptions`'s (``n`` may be left unset for a sweep)."""

    kind: ClassVar[str] = "estimate"
    section: ClassVar[str] = "estimate"

    n: int | None = param(None, "tile size N (N x N array; the read column has N elements; default 512, "
                                "none with sweep_n)", unit="elements", ge=1, nullable=True, default_doc="512")
    algorithm: tuple[str, ...] | None = param(None, "algorithms to report (default: all the model covers)",
                                              choices=estimated_algorithms, nullable=True, min_items=1,
                                              default_doc="all")
    sweep_n: tuple[int, ...] | None = param(None, "report the time vs tile size N for these N (instead of one N)",
                                            unit="elements", ge=1, nullable=True, min_items=1, default_doc="none")
    agad_fast_point: bool | None = param(None, "also report AGAD at n_s = 10, l_max = 1 (the paper's special "
                                               "setting; default: when n_s and l_max are the paper's)",
                                         nullable=True, default_doc="when n_s, l_max are defaults")

    def resolve_defaults(self) -> None:
        from analogtrain.engine.algorithms.registry import canonical

        if isinstance(self.algorithm, tuple):
            if any(str(a).strip().lower() == "all" for a in self.algorithm):
                self._set("algorithm", None)
            else:
                self._set("algorithm", tuple(dict.fromkeys(canonical(a, "estimate.algorithm")
                                                           for a in self.algorithm)))
        if isinstance(self.sweep_n, tuple) and all(isinstance(v, int) for v in self.sweep_n):
            self._set("sweep_n", tuple(sorted(set(self.sweep_n))))
        if self.n is None and not self.sweep_n:
            self._set("n", 512)
        if self.agad_fast_point is None:
            self._set("agad_fast_point", self.n_s == 2 and self.l_max == 5)

    def check(self) -> None:
        if self.n is not None and self.sweep_n:
            raise ConfigError("estimate.n: give n or sweep_n, not both (the sweep sets N)", field="estimate.n")

    def assumptions(self, n: int | None = None) -> Assumptions:
        """The model's assumptions (at tile size ``n`` for a sweep point)."""
        return Assumptions(n=n if n is not None else (self.n or 512), n_s=self.n_s, l_max=self.l_max, l_w=self.l_w,
                           t_mvm=self.t_mvm, t_pulse=self.t_pulse, tflops=self.tflops,
                           arrays_per_core=self.arrays_per_core)
