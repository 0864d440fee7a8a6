"""Forward/backward MVM non-idealities (aihwkit ``IOParameters``, docs/io.md §3)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from analogtrain.errors import ConfigError
from analogtrain.config.fields import check_types, param, validate

NOISE_MANAGEMENT = ("abs_max", "none")
BOUND_MANAGEMENT = ("iterative", "none")


@dataclass(frozen=True)
class IOConfig:
    """One analog matrix-vector product: y = ADC(W DAC(x s) + noise) / s (docs/io.md §3.2).

    Resolutions are relative to the full range, as in aihwkit: the DAC step is
    ``inp_res * 2 * inp_bound`` and the ADC step ``out_res * 2 * out_bound``; a value
    > 1 is read as a number of levels (step = 2 bound / (levels - 2)... i.e. 1/(levels-2)).
    """

    is_perfect: bool = param(False, "exact floating-point MVM (all other fields ignored)")
    inp_bound: float = param(1.0, "input (DAC) range +-inp_bound", unit="input", gt=0.0, le=1e6)
    inp_res: float = param(1 / 126, "DAC resolution relative to the full range (1/126 = 7 bit); 0 = no quantisation",
                           unit="1", ge=0.0, le=1e9)
    inp_sto_round: bool = param(False, "stochastic rounding in the DAC")
    inp_noise: float = param(0.0, "Gaussian noise added to each quantised input", unit="input", ge=0.0, le=1e3)
    out_bound: float = param(12.0, "output (ADC) range +-out_bound", unit="output", gt=0.0, le=1e9)
    out_res: float = param(1 / 510, "ADC resolution relative to the full range (1/510 = 9 bit); 0 = no quantisation",
                           unit="1", ge=0.0, le=1e9)
    out_noise: float = param(0.06, "Gaussian noise added to each output before the ADC", unit="output",
                             ge=0.0, le=1e3)
    w_noise: float = param(0.0, "Gaussian weight noise per MVM (additive, per device)", unit="weight",
                           ge=0.0, le=1e3)
    noise_management: str = param("abs_max", "input scaling: abs_max divides x by max|x| before the DAC",
                                  choices=NOISE_MANAGEMENT)
    bound_management: str = param("iterative", "on output saturation halve the input and repeat (forward only)",
                                  choices=BOUND_MANAGEMENT)
    nm_thres: float = param(0.0, "cap of the noise-management scale (0 = no cap)", unit="input", ge=0.0)
    max_bm_factor: float = param(1000.0, "largest bound-management reduction factor", unit="1", ge=1.0)
    max_bm_res: float = param(0.25, "bound management stops once the reduction exceeds max_bm_res / DAC step",
                              unit="1", gt=0.0)
    bm_test_negative_bound: bool = param(True, "also count saturation at -out_bound")
    out_scale: float = param(1.0, "digital scale applied to the output", unit="1", gt=0.0, le=1e6)

    def __post_init__(self) -> None:
        check_types(self, "io")
        validate(self, "io")
        for name in ("inp_res", "out_res"):
            v = getattr(self, name)
            if 1 < v <= 2:
                raise ConfigError(f"io.{name}: a resolution > 1 is a number of levels and must be > 2 (got {v:g})")

    @property
    def inp_step(self) -> float:
        """DAC step Delta_in (0 = no quantisation)."""
        return _step(self.inp_res, self.inp_bound)

    @property
    def out_step(self) -> float:
        """ADC step Delta_out (0 = no quantisation)."""
        return _step(self.out_res, self.out_bound)


def _step(res: float, bound: float) -> float:
    if res <= 0:
        return 0.0
    if res > 1:  # number of levels, as in aihwkit
        if res <= 2:
            raise ConfigError("io resolution given as levels must be > 2")
        res = 1.0 / (res - 2.0)
    return res * 2.0 * bound


#: named I/O presets (aihwkit IOParameters, PresetIOParameters, StandardIOParameters)
IO_PRESETS: dict[str, IOConfig] = {
    "default": IOConfig(),
    "preset": IOConfig(out_bound=20.0, out_noise=0.1),
    "standard": IOConfig(inp_res=1 / 254, out_res=1 / 254, out_bound=10.0, out_noise=0.04),
    "perfect": IOConfig(is_perfect=True),
}


def transfer_read_io(io: IOConfig) -> IOConfig:
    """The I/O of a transfer read: the same without noise and bound management (docs/io.md §3.2)."""
    return replace(io, noise_management="none", bound_management="none")


def backward_io(io: IOConfig) -> IOConfig:
    """The backward pass never uses bound management (aihwkit forces it off)."""
    return replace(io, bound_management="none")
