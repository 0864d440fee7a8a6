"""Per-sample update-time model of the training algorithms (paper's runtime estimate).

A reconstruction of the estimate in Rasch, Carta et al., Nat. Commun. 2024 (see
``docs/estimate.md`` §6): the time one input sample costs in the update
phase of a tile of size N x N, as a sum of named terms in nanoseconds::

    in-memory (ttv2, c-ttv2, agad):
        a_update    = l_max * t_pulse                  # parallel pulsed outer product onto A, every sample
        column_read = t_mvm / n_s                       # one column of A read, every n_s samples
        w_write     = l_w * t_pulse / n_s               # single-pulse write onto W, every n_s samples
        vector_ops  = k_alg * N / F / n_s               # k_alg digital ops per element of the read column
    sgd:
        w_update    = l_max * t_pulse                   # parallel pulsed outer product onto W
    mp (mixed precision, digital gradient accumulation):
        outer_product = 2 * N**2 / F                    # chi += d x^T (multiply + accumulate), every sample
        transfer_ops  = k_mp * N / F / n_s              # one row of chi -> pulse counts, every n_s samples
        w_write       = l_max * t_pulse / n_s           # that row written onto W (pulse train <= l_max)

F is the digital throughput available to one array, ``tflops * 1000 / arrays_per_core``
FLOP per ns (0.7 TFLOPS shared by 4 arrays = 175 FLOP/ns). The digital operation counts
``k_alg`` are split into named operations (:data:`VECTOR_OPS`); only their sums are fitted to
the paper's figures, the split is a plausible accounting (see the docs).

Everything here is a small pure function of an :class:`Assumptions`; nothing is simulated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from analogtrain.errors import ConfigError

ALGORITHMS: tuple[str, ...] = ("sgd", "mp", "ttv2", "c-ttv2", "agad")
IN_MEMORY: tuple[str, ...] = ("ttv2", "c-ttv2", "agad")

#: accepted spellings -> canonical name
ALIASES: dict[str, str] = {
    "sgd": "sgd", "analog-sgd": "sgd",
    "mp": "mp", "mixed-precision": "mp",
    "ttv2": "ttv2", "tiki-taka-v2": "ttv2",
    "c-ttv2": "c-ttv2", "cttv2": "c-ttv2", "chopped-ttv2": "c-ttv2", "ttv3": "c-ttv2",
    "agad": "agad", "ttv4": "agad",
}

# ----------------------------------------------------------------------------- operation counts
# Digital operations per element of the read column (an N-vector), executed once per transfer,
# i.e. every n_s samples. Each entry: (name, count, what it is). Sums: TTv2 6, c-TTv2 10, AGAD 26.
_TTV2_OPS: tuple[tuple[str, int, str], ...] = (
    ("scale_read", 1, "multiply the read value by the transfer rate lambda_H"),
    ("accumulate_h", 1, "add it to the hidden buffer H"),
    ("threshold_test", 2, "|omega| and compare with the threshold 1"),
    ("pulse_count", 1, "n = clip(trunc(omega), +-1): the W pulse sign"),
    ("reset_h", 1, "H <- 0 where a pulse was emitted (forget_buffer)"),
)
_CHOPPER_OPS: tuple[tuple[str, int, str], ...] = (
    ("chopper_demodulation", 2, "compare c_in[j] with c_out[i] and flip the sign of the read value"),
    ("chopper_bookkeeping", 2, "chopper state: draw/count and flip (per element: c_out is per row)"),
)
_AGAD_OPS: tuple[tuple[str, int, str], ...] = (
    ("subtract_p_ref", 1, "delta = v - P_ref (dynamic digital reference instead of a reference array)"),
    ("ema_p", 3, "P <- (1 - mu) P + mu v (two multiplies, one add)"),
    ("copy_p_ref_at_flip", 1, "P_ref <- P at a chopper flip"),
    ("running_variance", 5, "v - P, square, EMA of the variance (significance estimate)"),
    ("significance_gate", 6, "|delta|, sqrt, scale by thres_scale, max with dw_min, compare, mask the H update"),
)
VECTOR_OPS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "sgd": (),
    "ttv2": _TTV2_OPS,
    "c-ttv2": _TTV2_OPS + _CHOPPER_OPS,
    "agad": _TTV2_OPS + _CHOPPER_OPS + _AGAD_OPS,
    # mixed precision: per element of the row of chi transferred every n_s samples
    "mp": (
        ("pulse_count", 4, "chi / eps, truncate, clip to +-l_max (2)"),
        ("residual_update", 2, "chi <- chi - n * eps (multiply, subtract)"),
        ("pulse_train_encoding", 3, "sign, |n|, pulse probability |n| / l_max"),
        ("stochastic_rounding", 2, "draw a uniform number and compare"),
    ),
}

#: FLOP per matrix element of MP's digital outer product chi += d x^T (multiply + accumulate)
MP_OUTER_PRODUCT_FLOP_PER_ELEMENT = 2


def k_ops(algorithm: str) -> int:
    """Digital operations per element of the transferred N-vector (6, 10, 26; 11 for MP; 0 for SGD)."""
    return sum(c for _, c, _ in VECTOR_OPS[canonical(algorithm)])


def ops_breakdown(algorithm: str) -> dict[str, int]:
    """{operation name: count} whose values sum to :func:`k_ops`."""
    return {name: c for name, c, _ in VECTOR_OPS[canonical(algorithm)]}


# ----------------------------------------------------------------------------- assumptions
def _meta(flag: str, unit: str, kind: str, help: str) -> dict:
    return {"flag": flag, "unit": unit, "kind": kind, "help": help}


@dataclass(frozen=True)
class Assumptions:
    """The hardware and algorithm assumptions of the estimate; defaults are the paper's."""

    n: int = field(default=512, metadata=_meta(
        "--n", "elements", "int>=1", "tile size N (N x N array; the read column has N elements)"))
    n_s: int = field(default=2, metadata=_meta(
        "--n-s", "samples", "int>=1", "samples between two column reads/transfers (n_s)"))
    l_max: int = field(default=5, metadata=_meta(
        "--l-max", "pulses", "int>=1", "pulse-train length of the parallel update (A; W for SGD; MP's W write)"))
    l_w: int = field(default=1, metadata=_meta(
        "--l-w", "pulses", "int>=0", "pulses per W write at a transfer (single-pulse write)"))
    t_mvm: float = field(default=40.0, metadata=_meta(
        "--t-mvm", "ns", "float>=0", "time of one analog MVM (a column read)"))
    t_pulse: float = field(default=5.0, metadata=_meta(
        "--t-pulse", "ns", "float>=0", "time of one update pulse"))
    tflops: float = field(default=0.7, metadata=_meta(
        "--tflops", "TFLOPS", "float>0", "digital (FP8) throughput of one core"))
    arrays_per_core: int = field(default=4, metadata=_meta(
        "--arrays-per-core", "arrays", "int>=1", "arrays sharing one core's digital throughput"))

    def __post_init__(self) -> None:
        for f in fields(self):
            check_value(f.name, getattr(self, f.name), f.metadata["flag"])

    @property
    def flop_per_ns(self) -> float:
        """Digital throughput available to one array, FLOP/ns (= tflops * 1000 / arrays_per_core)."""
        return self.tflops * 1000.0 / self.arrays_per_core

    @property
    def vector_op_ns(self) -> float:
        """Time of one elementwise operation over an N-vector, ns (N / F)."""
        return self.n / self.flop_per_ns

    def replace(self, **changes: Any) -> "Assumptions":
        d = asdict(self)
        d.update(changes)
        return Assumptions(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


KEYS: tuple[str, ...] = tuple(f.name for f in fields(Assumptions))
FIELD_META: dict[str, dict] = {f.name: dict(f.metadata) for f in fields(Assumptions)}


def check_value(key: str, value: Any, label: str | None = None) -> Any:
    """Validate one assumption; ConfigError ``"<label>: must be ... (got ...)"`` if invalid.

    ``label`` names where the value came from (a flag or a config-file key); default: the flag.
    Returns the value (ints as int, floats as float).
    """
    if key not in FIELD_META:
        raise ConfigError(f"{label or key}: unknown assumption (known: {', '.join(KEYS)})")
    label = label or FIELD_META[key]["flag"]
    kind = FIELD_META[key]["kind"]
    if isinstance(value, bool):
        raise ConfigError(f"{label}: must be a number, not a boolean (got {value!r})")
    if kind.startswith("int"):
        if not isinstance(value, int):
            raise ConfigError(f"{label}: must be an integer (got {value!r})")
        lo = int(kind.split(">=")[1])
        if value < lo:
            raise ConfigError(f"{label}: must be an integer >= {lo} (got {value})")
        return int(value)
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{label}: must be a number (got {value!r})")
    try:
        v = float(value)
    except OverflowError:
        raise ConfigError(f"{label}: must be finite (got a number out of range)") from None
    if not math.isfinite(v):
        raise ConfigError(f"{label}: must be finite (got {value!r})")
    if kind == "float>0" and not v > 0:
        raise ConfigError(f"{label}: must be > 0 (got {value!r})")
    if kind == "float>=0" and v < 0:
        raise ConfigError(f"{label}: must be >= 0 (got {value!r})")
    return v


DEFAULTS = Assumptions()


def canonical(algorithm: str) -> str:
    """Canonical algorithm name; ConfigError for an unknown one."""
    name = ALIASES.get(str(algorithm).strip().lower())
    if name is None:
        raise ConfigError(f"--algorithm: unknown algorithm {algorithm!r} (choose from {', '.join(ALGORITHMS)})")
    return name


# ----------------------------------------------------------------------------- the terms (ns)
def pulsed_update_ns(a: Assumptions) -> float:
    """Parallel pulsed outer-product update (A, or W for SGD), every sample: l_max * t_pulse."""
    return a.l_max * a.t_pulse


def column_read_ns(a: Assumptions) -> float:
    """One column read of A (one analog MVM) every n_s samples: t_mvm / n_s."""
    return a.t_mvm / a.n_s


def w_write_ns(a: Assumptions) -> float:
    """Single-pulse write onto W at each transfer, every n_s samples: l_w * t_pulse / n_s."""
    return a.l_w * a.t_pulse / a.n_s


def vector_ops_ns(k: int, a: Assumptions) -> float:
    """k elementwise digital ops over the read N-vector every n_s samples: k * N / F / n_s."""
    return k * a.vector_op_ns / a.n_s


def outer_product_ns(a: Assumptions) -> float:
    """MP's digital outer product chi += d x^T, every sample: 2 N^2 / F."""
    return MP_OUTER_PRODUCT_FLOP_PER_ELEMENT * a.n * a.n / a.flop_per_ns


def mp_w_write_ns(a: Assumptions) -> float:
    """MP's write of one row of pulse counts onto W every n_s samples: l_max * t_pulse / n_s."""
    return a.l_max * a.t_pulse / a.n_s


def terms(algorithm: str, a: Assumptions = DEFAULTS) -> dict[str, float]:
    """The named terms (ns per sample) of ``algorithm``; they sum to :func:`update_time_ns`."""
    alg = canonical(algorithm)
    if alg == "sgd":
        return {"w_update": pulsed_update_ns(a)}
    if alg == "mp":
        return {"outer_product": outer_product_ns(a),
                "transfer_ops": vector_ops_ns(k_ops("mp"), a),
                "w_write": mp_w_write_ns(a)}
    return {"a_update": pulsed_update_ns(a),
            "column_read": column_read_ns(a),
            "w_write": w_write_ns(a),
            "vector_ops": vector_ops_ns(k_ops(alg), a)}


TERM_DOC: dict[str, str] = {
    "w_update": "pulsed update of W, l_max * t_pulse (every sample)",
    "a_update": "pulsed update of A, l_max * t_pulse (every sample)",
    "column_read": "column read of A, t_mvm / n_s",
    "w_write": "W write at a transfer, l_w * t_pulse / n_s (MP: l_max * t_pulse / n_s)",
    "vector_ops": "digital ops on the read column, k * N / F / n_s",
    "outer_product": "MP digital outer product, 2 N^2 / F (every sample)",
    "transfer_ops": "MP digital ops on the transferred row of chi, k * N / F / n_s",
}


def update_time_ns(algorithm: str, a: Assumptions = DEFAULTS) -> float:
    """Update-phase time per input sample, ns."""
    return math.fsum(terms(algorithm, a).values())


# ----------------------------------------------------------------------------- the paper's figures
#: (algorithm, n_s, l_max) -> published ns, valid only with every other assumption at its default
PUBLISHED: dict[tuple[str, int, int], float] = {
    ("ttv2", 2, 5): 56.3,
    ("c-ttv2", 2, 5): 62.1,
    ("agad", 2, 5): 30.9,
    ("mp", 2, 5): 3024.5,
    ("agad", 10, 1): 17.1,
}
#: relative tolerance within which our model counts as reproducing a published figure
TOLERANCE = 0.005


def published_ns(algorithm: str, a: Assumptions) -> float | None:
    """The paper's figure for exactly this configuration, or None where it publishes none."""
    alg = canonical(algorithm)
    others = {k: v for k, v in a.to_dict().items() if k not in ("n_s", "l_max")}
    default_others = {k: v for k, v in DEFAULTS.to_dict().items() if k not in ("n_s", "l_max")}
    if others != default_others:
        return None
    return PUBLISHED.get((alg, a.n_s, a.l_max))


def n_s_for_time(algorithm: str, a: Assumptions, target_ns: float) -> float | None:
    """The (real-valued) n_s at which this model gives ``target_ns``, other assumptions fixed.

    All amortised terms scale as 1/n_s, so n_s = amortised(n_s=1) / (target - per-sample terms);
    None when the per-sample terms alone already reach the target.
    """
    one = a.replace(n_s=1)
    t = terms(algorithm, one)
    per_sample = t.get("a_update", 0.0) + t.get("w_update", 0.0) + t.get("outer_product", 0.0)
    amortised = math.fsum(t.values()) - per_sample
    if target_ns <= per_sample or amortised <= 0:
        return None
    return amortised / (target_ns - per_sample)


def discrepancy_note(algorithm: str, a: Assumptions) -> str | None:
    """A one-line explanation where our value misses the published one by more than TOLERANCE."""
    pub = published_ns(algorithm, a)
    if pub is None:
        return None
    ours = update_time_ns(algorithm, a)
    if abs(ours / pub - 1.0) <= TOLERANCE:
        return None
    parts = [f"paper {pub:g} ns not reproduced (ours {ours:.1f} ns, {100 * (ours / pub - 1):+.0f} %)"]
    needs = []
    ns_here = n_s_for_time(algorithm, a, pub)
    if ns_here is not None:
        needs.append(f"n_s = {ns_here:.1f} (l_max = {a.l_max})")
    if a.l_max != 1:
        ns_one = n_s_for_time(algorithm, a.replace(l_max=1), pub)
        if ns_one is not None:
            needs.append(f"n_s = {ns_one:.1f} (l_max = 1)")
    if needs:
        parts.append(f"this model gives {pub:g} ns only with " + " or ".join(needs))
    t = terms(algorithm, a)
    floor = ours - t.get("vector_ops", 0.0) - t.get("transfer_ops", 0.0)
    parts.append(f"at n_s = {a.n_s} its floor without any digital op is {floor:.1f} ns; see docs/estimate.md")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Estimate:
    algorithm: str
    assumptions: Assumptions
    time_ns: float
    terms: dict[str, float]
    ops: dict[str, int]
    k_ops: int
    published_ns: float | None
    speedup_vs_mp: float
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        a = self.assumptions
        return {
            "algorithm": self.algorithm, "n": a.n, "n_s": a.n_s, "l_max": a.l_max,
            "time_ns": self.time_ns, "published_ns": self.published_ns,
            "deviation": (self.time_ns / self.published_ns - 1.0) if self.published_ns else None,
            "speedup_vs_mp": self.speedup_vs_mp, "terms": dict(self.terms),
            "k_ops": self.k_ops, "ops": dict(self.ops), "note": self.note,
        }


def estimate(algorithm: str, a: Assumptions = DEFAULTS) -> Estimate:
    """Everything reported about one algorithm at one set of assumptions."""
    alg = canonical(algorithm)
    t = terms(alg, a)
    total = math.fsum(t.values())
    mp = update_time_ns("mp", a)
    return Estimate(algorithm=alg, assumptions=a, time_ns=total, terms=t, ops=ops_breakdown(alg),
                    k_ops=k_ops(alg), published_ns=published_ns(alg, a),
                    speedup_vs_mp=(mp / total) if total > 0 else math.inf,
                    note=discrepancy_note(alg, a))


#: the paper's special AGAD setting ("supported for certain device settings")
AGAD_FAST_POINT: dict[str, int] = {"n_s": 10, "l_max": 1}
DEFAULT_SWEEP_N: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)


def plan(algorithms: list[str] | None = None, a: Assumptions = DEFAULTS, sweep_n: list[int] | None = None,
         add_agad_fast_point: bool = True) -> list[Estimate]:
    """The estimates the CLI reports.

    Without a sweep: each algorithm at ``a``, plus AGAD at n_s = 10, l_max = 1 when AGAD is
    selected and ``add_agad_fast_point``. With ``sweep_n``: each algorithm at each N (in order).
    """
    algs = [canonical(x) for x in (algorithms or ALGORITHMS)]
    algs = list(dict.fromkeys(algs))
    if sweep_n:
        return [estimate(alg, a.replace(n=n)) for alg in algs for n in sweep_n]
    out = [estimate(alg, a) for alg in algs]
    if add_agad_fast_point and "agad" in algs:
        fast = a.replace(**AGAD_FAST_POINT)
        if fast != a:
            out.append(estimate("agad", fast))
    return out
