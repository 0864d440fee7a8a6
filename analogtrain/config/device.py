"""Device configurations: one frozen dataclass per pulsed device model.

Field names are those of the established simulator (IBM aihwkit), so its users feel at
home; the paper's symbols are accepted as aliases (``delta`` = ``dw_min``,
``sigma_r`` = ``reference_std``, ...). Two virtual keys are resolved when a config is
built from a dict (:func:`analogtrain.config.loading.device_from_dict`):

* ``n_states``: sets ``dw_min`` so that ``(w_max - w_min) / granularity == n_states``;
* ``sigma_b``: sets both ``w_max_dtod`` and ``w_min_dtod``;
* ``gamma``: sets both ``gamma_up`` and ``gamma_down`` (linear and exp step).

The equations each model implements are in :mod:`analogtrain.engine.devices.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogtrain.errors import ConfigError
from analogtrain.config.fields import check_types, param, validate


@dataclass(frozen=True)
class PulsedDevice:
    """Parameters shared by every pulsed device (aihwkit ``PulsedDevice``).

    Every model may carry a reference (``reference_mean``, ``reference_std``,
    ``subtract_symmetry_point``): the read weight is ``w = g - ref_ij``. In aihwkit only
    the ``*Reference`` models have one; here it is available on all of them (a superset).

    Per device ij (xi standard normal, drawn once at construction, docs/devices.md §1.1)::

        w_max_ij = w_max (1 + w_max_dtod xi1);  w_min_ij = w_min (1 + w_min_dtod xi2)
        gain = 1 + dw_min_dtod xi3 (exp(dw_min_dtod xi3) if dw_min_dtod_log_normal)
        r = up_down_dtod xi4
        scale_up   = (min(up_down, 0) + gain + r) dw_min
        scale_down = (min(-up_down, 0) + gain - r) dw_min
    """

    model: ClassVar[str] = "pulsed"
    dw_min: float = param(0.001, "mean weight change of one pulse (step size delta)", unit="weight",
                          gt=0.0, le=10.0, aliases=("delta",))
    dw_min_dtod: float = param(0.3, "device-to-device spread of the step size, relative (Gaussian)",
                               unit="1", ge=0.0, le=10.0, aliases=("sigma_dtod", "sigma_d2d"))
    dw_min_dtod_log_normal: bool = param(False, "draw the step-size gain log-normally: exp(dw_min_dtod xi)")
    dw_min_std: float = param(0.3, "cycle-to-cycle noise of each step, relative to the step", unit="1",
                              ge=0.0, le=100.0, aliases=("sigma_ctoc", "sigma_c2c"))
    up_down: float = param(0.0, "systematic up/down bias: > 0 shrinks down steps, < 0 shrinks up steps",
                           unit="1", ge=-10.0, le=10.0)
    up_down_dtod: float = param(0.01, "device-to-device spread of the up/down asymmetry, relative to dw_min",
                                unit="1", ge=0.0, le=10.0, aliases=("sigma_pm",))
    w_max: float = param(0.6, "mean upper weight bound", unit="weight", ge=0.0, le=1e3)
    w_min: float = param(-0.6, "mean lower weight bound", unit="weight", ge=-1e3, le=0.0)
    w_max_dtod: float = param(0.3, "device-to-device spread of w_max, relative", unit="1", ge=0.0, le=10.0)
    w_min_dtod: float = param(0.3, "device-to-device spread of w_min, relative", unit="1", ge=0.0, le=10.0)
    enforce_consistency: bool = param(True, "make step scales positive and bounds contain 0 after the draw")
    write_noise_std: float = param(0.0, "write noise of the visible weight, in units of dw_min (0 = off)",
                                   unit="dw_min", ge=0.0, le=1e4)
    corrupt_devices_prob: float = param(0.0, "probability that a device is stuck at construction", unit="1",
                                        ge=0.0, le=1.0)
    corrupt_devices_range: float = param(0.1, "stuck devices sit uniformly within +-this range", unit="weight",
                                         ge=0.0, le=1e3)
    lifetime: float = param(0.0, "decay lifetime: w <- (w - reset)(1 - 1/lifetime) per decay call (0 = off)",
                            unit="mini-batches", ge=0.0)
    lifetime_dtod: float = param(0.0, "device-to-device spread of the lifetime, relative", unit="1", ge=0.0, le=10.0)
    diffusion: float = param(0.0, "diffusion: w += diffusion xi per diffusion call (0 = off)", unit="weight",
                             ge=0.0, le=1e3)
    diffusion_dtod: float = param(0.0, "device-to-device spread of the diffusion rate, relative", unit="1",
                                  ge=0.0, le=10.0)
    reset: float = param(0.0, "value a reset brings the device to (plus the symmetry point if subtracted)",
                         unit="weight", ge=-1e3, le=1e3)
    reset_dtod: float = param(0.0, "device-to-device spread of the reset value (additive)", unit="weight",
                              ge=0.0, le=1e3)
    reset_std: float = param(0.01, "cycle-to-cycle noise of a reset", unit="weight", ge=0.0, le=1e3)
    reference_mean: float = param(0.0, "mean of the reference offset subtracted from the read weight",
                                  unit="weight", ge=-1e3, le=1e3)
    reference_std: float = param(0.0, "device-to-device spread of the reference offset (the paper's sigma_r)",
                                 unit="weight", ge=0.0, le=1e3, aliases=("sigma_r",))
    subtract_symmetry_point: bool = param(False, "add each device's symmetry point to its reference, so it reads 0 there")

    def __post_init__(self) -> None:
        check_types(self, "device")
        validate(self, "device")
        if not self.w_min < self.w_max:
            raise ConfigError(f"device.w_min: must be < w_max (got w_min={self.w_min:g}, w_max={self.w_max:g})")
        if self.w_min > 0 or self.w_max < 0:
            raise ConfigError(f"device.w_min: the bounds [w_min, w_max] must contain 0 "
                              f"(got [{self.w_min:g}, {self.w_max:g}])")

    @property
    def granularity(self) -> float:
        """Weight granularity of one pulse (aihwkit ``calcWeightGranularity``): ``dw_min``."""
        return self.dw_min

    @property
    def n_states(self) -> float:
        """Number of states ``(w_max - w_min) / granularity`` (docs/devices.md §1.1)."""
        return (self.w_max - self.w_min) / self.granularity

    @classmethod
    def dw_min_for_states(cls, n_states: float, w_min: float, w_max: float, **kw) -> float:
        """The ``dw_min`` giving ``n_states`` states on [w_min, w_max]."""
        return (w_max - w_min) / n_states


@dataclass(frozen=True)
class ConstantStepDevice(PulsedDevice):
    """Constant step (aihwkit ``ConstantStepDevice``): up ``w += scale_up (1 + s e)``,
    down ``w -= scale_down (1 + s e)``, hard bounds. Asymmetric only through ``up_down``."""

    model: ClassVar[str] = "constant_step"


@dataclass(frozen=True)
class LinearStepDevice(PulsedDevice):
    """Linear step (aihwkit ``LinearStepDevice``): the step shrinks linearly with the weight.

    ``slope_up = -gamma_up,ij scale_up / w_ref_up``, ``slope_down = -gamma_down,ij scale_down / w_ref_down``;
    up ``w += (slope_up w + scale_up)(1 + s e)``, down ``w -= (slope_down w + scale_down)(1 + s e)``.
    ``gamma = 1`` with the device's own bounds as reference is soft bounds, ``gamma = 0`` constant step.
    """

    model: ClassVar[str] = "linear_step"
    gamma_up: float = param(0.0, "slope of the up step: 1 = reaches 0 at w_max (soft bounds), 0 = constant",
                            unit="1", ge=-10.0, le=10.0)
    gamma_down: float = param(0.0, "slope of the down step: 1 = reaches 0 at w_min, 0 = constant", unit="1",
                              ge=-10.0, le=10.0)
    gamma_up_dtod: float = param(0.05, "device-to-device spread of gamma_up (additive)", unit="1", ge=0.0, le=10.0)
    gamma_down_dtod: float = param(0.05, "device-to-device spread of gamma_down (additive)", unit="1",
                                   ge=0.0, le=10.0)
    allow_increasing: bool = param(False, "allow negative gamma draws (steps that grow towards the bound)")
    mean_bound_reference: bool = param(True, "slopes refer to the mean bounds (true) or each device's own bounds")
    mult_noise: bool = param(True, "multiplicative c2c noise (true) or additive on the constant part (false)")


@dataclass(frozen=True)
class SoftBoundsDevice(PulsedDevice):
    """Soft bounds (aihwkit ``SoftBoundsDevice``): up ``w += scale_up (1 - w/w_max_ij)``,
    down ``w -= scale_down (1 - w/w_min_ij)``, with c2c noise; a linear step with gamma = 1
    referred to each device's own bounds."""

    model: ClassVar[str] = "soft_bounds"
    mult_noise: bool = param(True, "multiplicative c2c noise (true) or additive (false)")


@dataclass(frozen=True)
class SoftBoundsReferenceDevice(SoftBoundsDevice):
    """Soft bounds with a reference (aihwkit ``SoftBoundsReferenceDevice``): the paper's device.

    The stored (read) weight is ``w = g - ref_ij`` with g the physical state; each pulse
    acts on g with the soft-bounds rule (additive c2c noise by default). With
    ``subtract_symmetry_point`` the reference holds the device's symmetry point, so a
    device at its SP reads 0; ``reference_std`` (sigma_r) adds a random offset.
    """

    model: ClassVar[str] = "soft_bounds_reference"
    mult_noise: bool = param(False, "multiplicative c2c noise (true) or additive (false, the default here)")
    slope_up_dtod: float = param(0.0, "device-to-device spread of the up slope (moves w_max_ij)", unit="1",
                                 ge=0.0, le=10.0)
    slope_down_dtod: float = param(0.0, "device-to-device spread of the down slope (moves w_min_ij)", unit="1",
                                   ge=0.0, le=10.0)


@dataclass(frozen=True)
class PowStepDevice(PulsedDevice):
    """Power step (aihwkit ``PowStepDevice``): with range r = w_max_ij - w_min_ij,
    up ``w += scale_up ((w_max_ij - w)/r)^gamma_up (1 + s e)``,
    down ``w -= scale_down ((w - w_min_ij)/r)^gamma_down (1 + s e)``."""

    model: ClassVar[str] = "pow_step"
    pow_gamma: float = param(1.0, "exponent of the step's dependence on the distance to the bound", unit="1",
                             gt=0.0, le=20.0)
    pow_gamma_dtod: float = param(0.1, "device-to-device spread of the exponent, relative", unit="1",
                                  ge=0.0, le=10.0)
    pow_up_down: float = param(0.0, "up/down bias of the exponent", unit="1", ge=-10.0, le=10.0)
    pow_up_down_dtod: float = param(0.0, "device-to-device spread of the exponent's up/down asymmetry", unit="1",
                                    ge=0.0, le=10.0)

    @property
    def granularity(self) -> float:
        """``dw_min * 0.5 ** pow_gamma``: the step size in the middle of the range."""
        return self.dw_min * 0.5 ** self.pow_gamma

    @classmethod
    def dw_min_for_states(cls, n_states: float, w_min: float, w_max: float, pow_gamma: float = 1.0, **kw) -> float:
        return (w_max - w_min) / n_states / 0.5 ** pow_gamma


@dataclass(frozen=True)
class PowStepReferenceDevice(PowStepDevice):
    """Power step with a reference (aihwkit ``PowStepReferenceDevice``): as PowStep, read as g - ref_ij."""

    model: ClassVar[str] = "pow_step_reference"


@dataclass(frozen=True)
class ExpStepDevice(PulsedDevice):
    """Exponential step (aihwkit ``ExpStepDevice``): with z = 2 w a / (w_max_ij - w_min_ij) + b,
    up ``w += max(1 - A_up exp(gamma_up z), 0)(1 + s e) scale_up``,
    down ``w -= max(1 - A_down exp(-gamma_down z), 0)(1 + s e) scale_down``."""

    model: ClassVar[str] = "exp_step"
    A_up: float = param(0.00081, "amplitude of the up step's exponential decrease", unit="1", ge=-1e3, le=1e3)
    A_down: float = param(0.36833, "amplitude of the down step's exponential decrease", unit="1", ge=-1e3, le=1e3)
    gamma_up: float = param(12.44625, "rate of the up step's exponential", unit="1", ge=-1e3, le=1e3)
    gamma_down: float = param(12.78785, "rate of the down step's exponential", unit="1", ge=-1e3, le=1e3)
    a: float = param(0.244, "scale of the weight in z", unit="1", ge=-1e3, le=1e3)
    b: float = param(0.2425, "offset of z", unit="1", ge=-1e3, le=1e3)
    dw_min_std_add: float = param(0.0, "additive part of the 'complex' c2c noise", unit="weight", ge=0.0)
    dw_min_std_slope: float = param(0.0, "|w|-proportional part of the 'complex' c2c noise", unit="1", ge=0.0)

    @property
    def granularity(self) -> float:
        return self.dw_min


#: model name -> config class
DEVICE_MODELS: dict[str, type[PulsedDevice]] = {
    c.model: c
    for c in (ConstantStepDevice, LinearStepDevice, SoftBoundsDevice, SoftBoundsReferenceDevice,
              PowStepDevice, PowStepReferenceDevice, ExpStepDevice)
}

#: other spellings of model names (aihwkit class names, short forms)
MODEL_ALIASES: dict[str, str] = {
    "ConstantStepDevice": "constant_step", "ConstantStep": "constant_step", "constant-step": "constant_step",
    "LinearStepDevice": "linear_step", "LinearStep": "linear_step", "linear-step": "linear_step",
    "SoftBoundsDevice": "soft_bounds", "SoftBounds": "soft_bounds", "soft-bounds": "soft_bounds",
    "SoftBoundsReferenceDevice": "soft_bounds_reference", "SoftBoundsReference": "soft_bounds_reference",
    "soft-bounds-reference": "soft_bounds_reference",
    "PowStepDevice": "pow_step", "PowStep": "pow_step", "pow-step": "pow_step",
    "PowStepReferenceDevice": "pow_step_reference", "PowStepReference": "pow_step_reference",
    "pow-step-reference": "pow_step_reference",
    "ExpStepDevice": "exp_step", "ExpStep": "exp_step", "exp-step": "exp_step",
}


def device_alias_table() -> dict[str, str]:
    """alias -> field name over all models (aliases mean the same on every model)."""
    from analogtrain.config.fields import field_map

    table: dict[str, str] = {}
    for cls in DEVICE_MODELS.values():
        for key, f in field_map(cls).items():
            table[key] = f.name
    return table


def model_class(name: str) -> type[PulsedDevice]:
    """The config class of a model name or alias; ConfigError if unknown."""
    key = MODEL_ALIASES.get(name, name)
    try:
        return DEVICE_MODELS[key]
    except KeyError:
        raise ConfigError(f"device.model: unknown device model {name!r}; "
                          f"must be one of {', '.join(DEVICE_MODELS)}") from None


def has_reference(cfg: PulsedDevice) -> bool:
    """True if the read weight is ``g - ref`` with a non-zero reference."""
    return cfg.subtract_symmetry_point or cfg.reference_std > 0 or cfg.reference_mean != 0
