"""Pulsed outer-product update parameters (aihwkit ``UpdateParameters``, docs/pulses.md §2)."""

from __future__ import annotations

from dataclasses import dataclass

from analogtrain.config.fields import check_types, param, validate

PULSE_TYPES = ("stochastic_compressed", "stochastic", "mean_count", "deterministic_implicit", "none")
#: how the coincidences of one update act on a device (docs/pulses.md §2.5, §2.6)
PULSE_MODES = ("exact", "aggregated", "expected")


@dataclass(frozen=True)
class UpdateConfig:
    """How ``lr * d x^T`` becomes pulse trains (docs/pulses.md §2.2).

    ``k = lr max|x| max|d| / dw_min`` is the expected number of coincidences at the
    largest entries. Update-bit-length management (UBLM) sets ``BL = min(ceil(k),
    desired_bl)``; update management (UM) balances the x and d probabilities so both
    peak at ``sqrt(k / BL)``.
    """

    desired_bl: int = param(31, "pulse train length (maximum length with update_bl_management)", unit="slots",
                            ge=1, le=64)
    update_management: bool = param(True, "balance x and d pulse probabilities (UM)")
    update_bl_management: bool = param(True, "shorten trains to ceil(k) slots when k < desired_bl (UBLM)")
    pulse_type: str = param("stochastic_compressed", "how trains are made", choices=PULSE_TYPES)
    fixed_bl: bool = param(True, "keep desired_bl fixed (no UBLM); false lengthens BL when dw_min*BL < lr")
    um_grad_scale: float = param(1.0, "scale of max|d| in update management", unit="1", gt=0.0)
    res: float = param(0.0, "probability resolution (0 = continuous)", unit="1", ge=0.0, le=1.0)
    sto_round: bool = param(False, "stochastic rounding of quantised probabilities")
    x_res_implicit: float = param(0.0, "x probability quantisation of deterministic_implicit (0 = off)",
                                  unit="1", ge=0.0, le=1.0)
    d_res_implicit: float = param(0.0, "d probability quantisation of deterministic_implicit (0 = off)",
                                  unit="1", ge=0.0, le=1.0)
    pulse_mode: str = param("exact", "exact: every pulse with its own noise; aggregated: the n pulses of a "
                                     "device in one update in closed form, one draw per device; expected: no "
                                     "trains, the deterministic expected step (mean field)", choices=PULSE_MODES)

    def __post_init__(self) -> None:
        check_types(self, "update")
        validate(self, "update")
