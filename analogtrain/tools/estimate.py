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
``k_alg`` are split into named operations (the registry's ``estimate_ops``); only their sums are fitted to
the paper's figures, the split is a plausible accounting (see the docs).

Everything here is a small pure function of an :class:`Assumptions`; nothing is simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analogtrain.config.estimate import Assumptions, EstimateConfig, estimated_algorithms
from analogtrain.engine.algorithms.registry import ALGORITHMS as REGISTRY
from analogtrain.engine.algorithms.registry import canonical as registry_canonical
from analogtrain.errors import ConfigError

#: the algorithms the model covers, and the in-memory (transfer) ones
ALGORITHMS: tuple[str, ...] = estimated_algorithms()
IN_MEMORY: tuple[str, ...] = tuple(n for n in ALGORITHMS if REGISTRY[n].estimate_model == "transfer")

#: FLOP per matrix element of MP's digital outer product chi += d x^T (multiply + accumulate)
MP_OUTER_PRODUCT_FLOP_PER_ELEMENT = 2


def k_ops(algorithm: str) -> int:
    """Digital operations per element of the transferred N-vector (6, 10, 26; 11 for MP; 0 for SGD)."""
    return sum(c for _, c, _ in REGISTRY[canonical(algorithm)].estimate_ops)


def ops_breakdown(algorithm: str) -> dict[str, int]:
    """{operation name: count} whose values sum to :func:`k_ops` (the registry's ``estimate_ops``)."""
    return {name: c for name, c, _ in REGISTRY[canonical(algorithm)].estimate_ops}


DEFAULTS = Assumptions()


def canonical(algorithm: str) -> str:
    """Canonical name of an algorithm the model covers; ConfigError for any other."""
    name = registry_canonical(algorithm, "estimate.algorithm")
    if name not in ALGORITHMS:
        raise ConfigError(f"estimate.algorithm: the update-time model does not cover {name!r} "
                          f"(choose from {', '.join(ALGORITHMS)})", field="estimate.algorithm")
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
    model = REGISTRY[alg].estimate_model
    if model == "pulsed":
        return {"w_update": pulsed_update_ns(a)}
    if model == "digital":
        return {"outer_product": outer_product_ns(a),
                "transfer_ops": vector_ops_ns(k_ops(alg), a),
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


def run(cfg: EstimateConfig):
    """The estimates of ``cfg`` as an :class:`~analogtrain.results.estimate.EstimateResult`."""
    from analogtrain.results.estimate import EstimateResult

    a = cfg.assumptions()
    sweep = list(cfg.sweep_n) if cfg.sweep_n else None
    results = plan(list(cfg.algorithm) if cfg.algorithm else None, a, sweep_n=sweep,
                   add_agad_fast_point=bool(cfg.agad_fast_point))
    return EstimateResult(config=cfg, results=results)
