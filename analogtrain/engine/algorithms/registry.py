"""The algorithm registry: one entry per training algorithm, the only place that lists them.

An :class:`AlgorithmSpec` says everything the rest of the project needs to know about an
algorithm: its canonical name and aliases, the implementation family that runs it (all
replicas of one stack belong to one family; TTv2, c-TTv2 and AGAD share the transfer
family and can run side by side in one stack), its config class and default settings
(per setting style where that applies), the device arrays it keeps (and which of them
accumulates the gradient, i.e. where a reference offset sigma_r acts), and the digital
operations per transferred element that the update-time model counts.

The fields that must agree within a stack belong to the family class
(``STACK_KEYS`` of :class:`~analogtrain.engine.algorithms.transfer.TransferFamily` etc.);
:attr:`AlgorithmSpec.stack_keys` reads them from there.

Adding an algorithm: its config class (in :mod:`analogtrain.config.algorithm`), its
engine module (a new family, or a readout of an existing one), and one entry below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from analogtrain.config.algorithm import (FloatingPointConfig, MixedPrecisionConfig, SGDConfig, TransferConfig)
from analogtrain.config.fields import build, field_map, to_dict, unknown_key_message
from analogtrain.errors import ConfigError

#: the named default settings of the transfer family (aihwkit's two sets of defaults)
STYLES: tuple[str, ...] = ("reramsb", "build-config")
STYLE_DOC = {
    "reramsb": "aihwkit's ReRamSB presets: fast_lr 0.5, A-update BL 31, auto_granularity 1000, chopper p "
               "0.01 (c-TTv2) / 0.02 (AGAD, regular)",
    "build-config": "aihwkit's build_config: fast_lr 0.1, A-update BL 5, no auto_granularity, chopper p 0.1",
}


@dataclass(frozen=True)
class AlgorithmSpec:
    """One training algorithm (see the module docstring).

    ``defaults`` maps a style name (:data:`STYLES`) to the default config of that style;
    algorithms without styles have one entry under ``"*"``. ``estimate_ops`` lists the
    digital operations per element of a transferred N-vector as ``(name, count, what)``
    (the update-time model's accounting, see docs/estimate.md); ``estimate_model`` says
    which formula of the model applies (``"pulsed"``, ``"transfer"``, ``"digital"``) or
    None when the model does not cover the algorithm.
    """

    name: str
    doc: str
    family: str
    config: type
    defaults: Mapping[str, Any]
    aliases: tuple[str, ...] = ()
    arrays: tuple[str, ...] = ()
    gradient_array: str | None = None
    estimate_model: str | None = None
    estimate_ops: tuple[tuple[str, int, str], ...] = ()
    paper_name: str = ""

    def default_config(self, style: str = "reramsb"):
        """The default config in ``style`` (ignored by algorithms without styles)."""
        if style not in STYLES:
            raise ConfigError(f"algo_style: must be one of {', '.join(STYLES)} (got {style!r})",
                              field="algo_style")
        return self.defaults.get(style, self.defaults.get("*"))

    def configure(self, style: str = "reramsb", overrides: Mapping[str, Any] | None = None,
                  section: str = "algorithm"):
        """The validated config: the style's defaults with ``overrides`` applied (keys of
        this algorithm only; strings are parsed)."""
        cfg = self.default_config(style)
        if not overrides:
            return cfg
        merged = to_dict(cfg)
        keys = field_map(self.config)
        for k, v in overrides.items():
            if k not in keys:
                raise ConfigError(unknown_key_message(section, k, sorted(keys)), field=f"{section}.{k}")
            merged[keys[k].name] = v
        return build(self.config, merged, section)

    def keys(self) -> set[str]:
        """Every parameter name (and alias) of this algorithm's config."""
        return set(field_map(self.config))

    @property
    def stack_keys(self) -> tuple[str, ...]:
        """Config fields that must be equal for all replicas of one stack (from the family)."""
        return family_class(self.family).STACK_KEYS

    @property
    def analog(self) -> bool:
        """True if the algorithm keeps its weights on device arrays."""
        return bool(self.arrays)


def _transfer(**kw) -> TransferConfig:
    return TransferConfig(**kw)


#: digital ops per element of the read column (the update-time model; sums 6, 10, 26)
_TTV2_OPS = (
    ("scale_read", 1, "multiply the read value by the transfer rate lambda_H"),
    ("accumulate_h", 1, "add it to the hidden buffer H"),
    ("threshold_test", 2, "|omega| and compare with the threshold 1"),
    ("pulse_count", 1, "n = clip(trunc(omega), +-1): the W pulse sign"),
    ("reset_h", 1, "H <- 0 where a pulse was emitted (forget_buffer)"),
)
_CHOPPER_OPS = (
    ("chopper_demodulation", 2, "compare c_in[j] with c_out[i] and flip the sign of the read value"),
    ("chopper_bookkeeping", 2, "chopper state: draw/count and flip (per element: c_out is per row)"),
)
_AGAD_OPS = (
    ("subtract_p_ref", 1, "delta = v - P_ref (dynamic digital reference instead of a reference array)"),
    ("ema_p", 3, "P <- (1 - mu) P + mu v (two multiplies, one add)"),
    ("copy_p_ref_at_flip", 1, "P_ref <- P at a chopper flip"),
    ("running_variance", 5, "v - P, square, EMA of the variance (significance estimate)"),
    ("significance_gate", 6, "|delta|, sqrt, scale by thres_scale, max with dw_min, compare, mask the H update"),
)
_MP_OPS = (
    ("pulse_count", 4, "chi / eps, truncate, clip to +-l_max (2)"),
    ("residual_update", 2, "chi <- chi - n * eps (multiply, subtract)"),
    ("pulse_train_encoding", 3, "sign, |n|, pulse probability |n| / l_max"),
    ("stochastic_rounding", 2, "draw a uniform number and compare"),
)

ALGORITHMS: dict[str, AlgorithmSpec] = {s.name: s for s in (
    AlgorithmSpec(
        "fp", "floating-point baseline: exact W <- W - lr d x^T and exact MVMs", family="fp",
        config=FloatingPointConfig, defaults={"*": FloatingPointConfig()},
        aliases=("floating-point", "floating_point", "float"), paper_name="FP"),
    AlgorithmSpec(
        "sgd", "plain analog SGD: the pulsed outer-product update onto the weight array", family="sgd",
        config=SGDConfig, defaults={"*": SGDConfig()}, aliases=("analog-sgd", "plain"),
        arrays=("W",), gradient_array="W", estimate_model="pulsed", paper_name="SGD"),
    AlgorithmSpec(
        "mp", "mixed precision: digital gradient accumulation chi, thresholded row writes to W", family="mp",
        config=MixedPrecisionConfig, defaults={"*": MixedPrecisionConfig()},
        aliases=("mixed-precision", "mixed_precision"), arrays=("W",), gradient_array="W",
        estimate_model="digital", estimate_ops=_MP_OPS, paper_name="MP"),
    AlgorithmSpec(
        "ttv2", "Tiki-Taka v2: gradient on A read against its programmed reference, digital buffer H, "
                "single-pulse writes to W", family="transfer", config=TransferConfig,
        defaults={"reramsb": _transfer(in_chop_prob=0.0),
                  "build-config": _transfer(fast_lr=0.1, auto_granularity=0.0, desired_bl=5, in_chop_prob=0.0)},
        aliases=("tiki-taka-v2", "tt-v2"), arrays=("A", "W"), gradient_array="A",
        estimate_model="transfer", estimate_ops=_TTV2_OPS, paper_name="TTv2"),
    AlgorithmSpec(
        "c-ttv2", "chopped TTv2: TTv2 with random input choppers modulating A's update and demodulating "
                  "its reads", family="transfer", config=TransferConfig,
        defaults={"reramsb": _transfer(in_chop_prob=0.01, in_chop_random=True),
                  "build-config": _transfer(fast_lr=0.1, auto_granularity=0.0, desired_bl=5, in_chop_prob=0.1)},
        aliases=("chopped-ttv2", "cttv2", "ttv3", "c_ttv2"), arrays=("A", "W"), gradient_array="A",
        estimate_model="transfer", estimate_ops=_TTV2_OPS + _CHOPPER_OPS, paper_name="c-TTv2"),
    AlgorithmSpec(
        "agad", "AGAD: chopped transfer with a dynamic digital reference P_ref (the running mean of "
                "past reads, frozen at each chopper flip)", family="transfer", config=TransferConfig,
        defaults={"reramsb": _transfer(in_chop_prob=0.02, in_chop_random=False, dynamic_reference=True,
                                       tail_weightening=5.0),
                  "build-config": _transfer(fast_lr=0.1, auto_granularity=0.0, desired_bl=5, in_chop_prob=0.1,
                                            in_chop_random=False, dynamic_reference=True)},
        aliases=("ttv4",), arrays=("A", "W"), gradient_array="A",
        estimate_model="transfer", estimate_ops=_TTV2_OPS + _CHOPPER_OPS + _AGAD_OPS, paper_name="AGAD"),
)}

_ALIASES: dict[str, str] = {a: s.name for s in ALGORITHMS.values() for a in (s.name, *s.aliases)}


def algorithm_names() -> tuple[str, ...]:
    """The canonical names, in registry order."""
    return tuple(ALGORITHMS)


def canonical(name: str, field: str = "algorithm") -> str:
    """The canonical name of an algorithm or alias (case-insensitive); ConfigError naming
    ``field`` otherwise."""
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise ConfigError(f"{field}: unknown algorithm {name!r}; must be one of {', '.join(ALGORITHMS)} "
                      f"(aliases: {', '.join(sorted(a for a in _ALIASES if a not in ALGORITHMS))})", field=field)


def algorithm_spec(name: str, field: str = "algorithm") -> AlgorithmSpec:
    """The registry entry of an algorithm name or alias."""
    return ALGORITHMS[canonical(name, field)]


def family_class(family: str):
    """The engine class that runs a family (imported here, on use, to keep this module light)."""
    from analogtrain.engine.algorithms.floating_point import FloatingPoint
    from analogtrain.engine.algorithms.mixed_precision import MixedPrecision
    from analogtrain.engine.algorithms.sgd import AnalogSGD
    from analogtrain.engine.algorithms.transfer import TransferFamily

    return {"fp": FloatingPoint, "sgd": AnalogSGD, "mp": MixedPrecision, "transfer": TransferFamily}[family]


def keys_of(names) -> set[str]:
    """Every parameter name any of the algorithms ``names`` accepts."""
    out: set[str] = set()
    for n in names:
        out |= algorithm_spec(n).keys()
    return out


def doc_table() -> list[tuple[str, str, str]]:
    """(name, aliases, description) of every algorithm, for help texts and docs."""
    return [(s.name, ", ".join(s.aliases), s.doc) for s in ALGORITHMS.values()]

