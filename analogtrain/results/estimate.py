"""The result of ``estimate``: the update time per sample of each algorithm, term by term."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from analogtrain.config.estimate import KEYS, Assumptions
from analogtrain.results import files
from analogtrain.results.base import Result

_TERM_ORDER = ("w_update", "a_update", "column_read", "w_write", "vector_ops", "outer_product", "transfer_ops")
DEFAULT_PLOT_N = (64, 128, 256, 512, 1024, 2048, 4096)


@dataclass
class EstimateResult(Result):
    """``results``: one :class:`~analogtrain.tools.estimate.Estimate` per algorithm (and per N of a sweep)."""

    kind: ClassVar[str] = "estimate"

    config: Any
    results: list
    argv: list | None = None
    created: str | None = None

    def body(self) -> dict[str, Any]:
        a = self.config.assumptions()
        sweep = list(self.config.sweep_n) if self.config.sweep_n else None
        assumptions = {**a.to_dict(), **({"n": None} if sweep else {}), "sweep_n": sweep}
        return {"assumptions": assumptions,
                "derived": {"digital_flop_per_ns": a.flop_per_ns, "vector_op_ns": None if sweep else a.vector_op_ns},
                "results": [r.to_dict() for r in self.results]}

    # ------------------------------------------------------------------ text
    def table(self) -> str:
        sweep = list(self.config.sweep_n) if self.config.sweep_n else None
        text = _sweep_text(self.results, sweep) if sweep else _text(self.results)
        return text + "\n\n" + _assumptions_text(self.config.assumptions(), sweep)

    def plot(self, path: str | Path) -> None:
        from analogtrain.tools import estimate as est

        plt = files.require_matplotlib()
        a = self.config.assumptions()
        algs = list(self.config.algorithm or est.ALGORITHMS)
        ns = list(self.config.sweep_n or DEFAULT_PLOT_N)
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for alg in algs:
            times = [est.update_time_ns(alg, a.replace(n=n)) for n in ns]
            (line,) = ax.plot(ns, times, marker="o", ms=3, label=alg)
            pub = est.published_ns(alg, a.replace(n=512))
            if pub is not None:
                ax.plot([512], [pub], marker="x", ms=8, ls="none", color=line.get_color())
        ax.plot([], [], marker="x", ls="none", color="k", label="paper (N=512)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tile size N")
        ax.set_ylabel("update time per sample (ns)")
        ax.set_title(f"n_s={a.n_s}, l_max={a.l_max}, t_mvm={a.t_mvm:g} ns, t_pulse={a.t_pulse:g} ns, "
                     f"F={a.flop_per_ns:g} FLOP/ns", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)


def _table(rows, headers, right: int = 0, align: list[str] | None = None) -> str:
    """A plain table of preformatted cells (no number re-parsing); columns from ``right`` on right-aligned."""
    from tabulate import tabulate

    align = align or ["left" if i < right else "right" for i in range(len(headers))]
    return tabulate([[("" if c is None else str(c)) for c in r] for r in rows], headers=list(headers),
                    tablefmt="simple", disable_numparse=True, colalign=align)


def _fmt(v: float | None, nd: int = 2) -> str:
    return "" if v is None else f"{v:.{nd}f}"


def _text(results) -> str:
    notes: list[str] = []
    rows = []
    for r in results:
        d = r.to_dict()
        pub = _fmt(d["published_ns"], 1)
        if d["note"]:
            notes.append(d["note"])
            pub += f" [{len(notes)}]"
        rows.append([d["algorithm"], d["n"], d["n_s"], d["l_max"], _fmt(d["time_ns"]), pub,
                     _fmt(d["deviation"] * 100, 2) if d["deviation"] is not None else "",
                     _fmt(d["speedup_vs_mp"], 1)])
    lines = [_table(rows, ["algorithm", "n", "n_s", "l_max", "time (ns)", "paper (ns)", "dev (%)",
                           "speed-up vs MP"], right=1)]
    names = [k for k in _TERM_ORDER if any(k in r.terms for r in results)]
    trows = [[r.algorithm, r.assumptions.n_s, r.assumptions.l_max, *[_fmt(r.terms.get(k)) for k in names]]
             for r in results]
    lines += ["", "terms (ns per sample):", _table(trows, ["algorithm", "n_s", "l_max", *names], right=1)]
    lines += ["", "digital ops per element of the transferred N-vector (x N/F, every n_s samples):"]
    seen = set()
    for r in results:
        if r.algorithm in seen or not r.ops:
            continue
        seen.add(r.algorithm)
        lines.append(f"  {r.algorithm:7s} k={r.k_ops:<3d}= " + " + ".join(f"{k} {v}" for k, v in r.ops.items()))
    if any(r.algorithm == "mp" for r in results):
        lines.append("  mp      plus the outer product: 2 FLOP (multiply, accumulate) per matrix element, every sample")
    if notes:
        lines += ["", "notes:"] + [f"  [{i}] {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(lines)


def _digital_ns(r) -> float:
    return sum(r.terms.get(k, 0.0) for k in ("vector_ops", "outer_product", "transfer_ops"))


def _sweep_text(results, sweep: list[int]) -> str:
    algs = list(dict.fromkeys(r.algorithm for r in results))
    by = {(r.algorithm, r.assumptions.n): r for r in results}
    rows = [[n, *[_fmt(by[(alg, n)].time_ns) for alg in algs]] for n in sweep]
    lines = ["time per sample (ns) vs tile size N:", _table(rows, ["n", *algs], right=0)]
    if len(sweep) >= 2:
        lo, hi = sweep[0], sweep[-1]
        lines += ["", f"growth from N={lo} to N={hi} (N x{hi / lo:g}):"]
        for alg in algs:
            t_lo, t_hi = by[(alg, lo)], by[(alg, hi)]
            dig_lo, dig_hi = _digital_ns(t_lo), _digital_ns(t_hi)
            digital = (f"digital terms x{dig_hi / dig_lo:.0f} ({'O(N^2)' if alg == 'mp' else 'O(N)'})"
                       if dig_lo > 0 else "no digital terms")
            lines.append(f"  {alg:7s} total x{t_hi.time_ns / t_lo.time_ns:.2f}, {digital}")
    pubs = [r for r in results if r.published_ns is not None]
    if pubs:
        lines += ["", "paper's figures at these settings: "
                  + ", ".join(f"{r.algorithm} N={r.assumptions.n}: {r.published_ns:g} ns (ours {r.time_ns:.2f})"
                              for r in pubs)]
    return "\n".join(lines)


def _assumptions_text(a: Assumptions, sweep: list[int] | None) -> str:
    import dataclasses

    meta = {f.name: f.metadata for f in dataclasses.fields(Assumptions)}
    default = Assumptions()
    rows = []
    for key in KEYS:
        m = meta[key]
        value = ",".join(map(str, sweep)) if (key == "n" and sweep) else f"{getattr(a, key):g}"
        source = "sweep_n" if (key == "n" and sweep) else \
            ("default" if getattr(a, key) == getattr(default, key) else "set")
        rows.append([key, value, m["unit"], source, m["doc"]])
    rows.append(["F (derived)", f"{a.flop_per_ns:g}", "FLOP/ns per array", "", "tflops * 1000 / arrays_per_core"])
    if not sweep:
        rows.append(["N/F (derived)", f"{a.vector_op_ns:.4f}", "ns", "", "one elementwise op over an N-vector"])
    return "assumptions:\n" + _table(rows, ["assumption", "value", "unit", "source", "meaning"],
                                     align=["left", "right", "left", "left", "left"])
