"""Training-algorithm configurations (docs/algorithms.md §4, §5).

Names follow the established simulator (aihwkit ``ChoppedTransferCompound``,
``DynamicTransferCompound``, ``MixedPrecisionCompound``). The field defaults of the
transfer family mirror aihwkit's ReRamSB presets (``TTv2ReRamSBPreset``,
``ChoppedTTv2ReRamSBPreset``, ``AGADReRamSBPreset``): fast_lr 0.5, auto_scale on,
auto_granularity 1000, transfer every sample, one pulse max per W write. Which
algorithm uses which config, and each algorithm's named default settings (c-TTv2 chops
randomly with in_chop_prob 0.01, AGAD regularly with 0.02; aihwkit's build_config
values), are in the registry, :mod:`analogtrain.engine.algorithms.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogtrain.errors import ConfigError
from analogtrain.config.fields import check_types, param, validate

@dataclass(frozen=True)
class FloatingPointConfig:
    """Floating-point baseline: exact ``W <- W - lr d x^T``, exact MVMs."""

    name: ClassVar[str] = "fp"

    def __post_init__(self) -> None:
        check_types(self, "algorithm")
        validate(self, "algorithm")


@dataclass(frozen=True)
class SGDConfig:
    """Plain analog SGD: the pulsed outer-product update ``-lr d x^T`` onto the weight array."""

    name: ClassVar[str] = "sgd"

    def __post_init__(self) -> None:
        check_types(self, "algorithm")
        validate(self, "algorithm")


@dataclass(frozen=True)
class MixedPrecisionConfig:
    """Mixed precision (aihwkit ``MixedPrecisionCompound``, docs/algorithms.md §4.2).

    chi += lr d x^T digitally (O(N^2)); every ``transfer_every`` samples, rows are
    transferred: ``n = trunc(chi / eps)``, ``chi -= n eps``, and W receives a pulsed
    update with x = n, d = e_i and learning rate ``eps * transfer_lr`` (eps =
    ``granularity``, or the device's dw_min when 0), with update and bit-length
    management on.
    """

    name: ClassVar[str] = "mp"
    transfer_every: int = param(1, "samples between transfers", unit="samples", ge=1)
    n_rows_per_transfer: int = param(-1, "rows transferred each time (-1 = all)", unit="rows", ge=-1)
    granularity: float = param(0.0, "transfer threshold eps (0 = the W device's dw_min)", unit="weight", ge=0.0)
    transfer_lr: float = param(1.0, "scale of the W write per threshold crossing", unit="1", gt=0.0)
    n_x_bins: int = param(0, "quantise x to this many bins before the digital outer product (0 = off)",
                          unit="bins", ge=0)
    n_d_bins: int = param(0, "quantise d to this many bins (0 = off)", unit="bins", ge=0)
    stoc_round_x: bool = param(True, "stochastic rounding of the x quantisation")
    stoc_round_d: bool = param(True, "stochastic rounding of the d quantisation")
    desired_bl: int = param(31, "maximal pulse-train length of the W writes", unit="slots", ge=1, le=64)

    def __post_init__(self) -> None:
        check_types(self, "algorithm")
        validate(self, "algorithm")
        if self.n_rows_per_transfer == 0:
            raise ConfigError("algorithm.n_rows_per_transfer: must be >= 1 or -1 (all rows) (got 0)")


@dataclass(frozen=True)
class TransferConfig:
    """The Tiki-Taka family: TTv2, chopped TTv2 (c-TTv2) and AGAD (docs/algorithms.md §4.4-4.6, §5).

    Per sample: a chopper-modulated pulsed update of the gradient array A with the
    pulse-count learning rate lambda_A (docs/algorithms.md §5.2); every ``transfer_every`` samples one
    column j of A is read with a one-hot input, demodulated, scaled by lambda_H
    (docs/algorithms.md §5.3) and added to the digital buffer H; where |H| >= 1, W[:, j] receives a
    single pulse of sign(H) and H is reset (forget_buffer). TTv2 reads A against its
    programmed reference (the device's reference offset); AGAD (``dynamic_reference``)
    subtracts a digital reference P_ref, the running mean P of past reads frozen at
    each chopper flip.
    """

    name: ClassVar[str] = "transfer"
    fast_lr: float = param(0.5, "A update strength: lambda_A = fast_lr desired_bl dw_A / (m_x m_d) with auto_scale",
                           unit="1", gt=0.0)
    auto_scale: bool = param(True, "normalise lambda_A by running maxima m_x, m_d of |x| and |d|")
    auto_momentum: float = param(0.99, "momentum of the running maxima", unit="1", gt=0.0, lt=1.0)
    scale_fast_lr: bool = param(False, "multiply lambda_A by the optimizer learning rate")
    transfer_lr: float = param(1.0, "transfer learning rate (times lr if scale_transfer_lr)", unit="1", gt=0.0)
    scale_transfer_lr: bool = param(True, "multiply the transfer learning rate by the optimizer learning rate")
    buffer_granularity: float = param(1.0, "H threshold in units of dw_min(A)", unit="dw_A", gt=0.0)
    auto_granularity: float = param(1000.0, "scale the threshold by auto_granularity / (x_size transfer_every) "
                                            "(0 = off)", unit="samples", ge=0.0)
    correct_gradient_magnitudes: bool = param(False, "scale the threshold by dw_W / dw_A and divide by lambda_A")
    transfer_every: int = param(1, "samples between two column reads (n_s)", unit="samples", ge=1,
                                aliases=("n_s",))
    in_chop_prob: float = param(0.0, "input chopper: flip probability per read (random) or 1/half-period "
                                     "in full passes (regular); 0 = no chopper (TTv2)", unit="1", ge=0.0, le=1.0)
    in_chop_random: bool = param(True, "random chopper flips (true) or a regular period (false)")
    out_chop_prob: float = param(0.0, "output chopper flip probability per full pass", unit="1", ge=0.0, le=1.0)
    dynamic_reference: bool = param(False, "AGAD: subtract the digital reference P_ref instead of relying on the "
                                           "device reference")
    tail_weightening: float = param(5.0, "AGAD beta: EMA weight of the running mean P is min(beta / N_c, 1)",
                                    unit="1", gt=0.0)
    warm_up: bool = param(True, "AGAD: no W writes during the first N_c full passes")
    momentum: float = param(0.0, "H momentum after a write", unit="1", ge=0.0, lt=1.0)
    forget_buffer: bool = param(True, "after a write, H <- momentum H (true) or H - (1 - momentum) n (false)")
    max_steps: int = param(1, "maximal pulses per W device per write", unit="pulses", ge=1, le=64)
    desired_bl: int = param(31, "maximal pulse-train length of the A update", unit="slots", ge=1, le=64)

    def __post_init__(self) -> None:
        check_types(self, "algorithm")
        validate(self, "algorithm")
        if self.dynamic_reference and self.in_chop_prob <= 0:
            raise ConfigError("algorithm.in_chop_prob: AGAD needs a chopper, must be in (0, 1] (got 0)")

    @property
    def n_c(self) -> int:
        """Chopper half-period in full passes, ``max(ceil(1 / in_chop_prob), 2)`` (0 if no chopper)."""
        import math

        return max(math.ceil(1.0 / self.in_chop_prob - 1e-12), 2) if self.in_chop_prob > 0 else 0
