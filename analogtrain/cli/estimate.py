"""``analogtrain estimate``: the per-sample update-time model (paper's runtime estimate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from analogtrain.tools import estimate as est
from analogtrain import report
from analogtrain.config.loading import read_toml
from analogtrain.errors import ConfigError, InputError
from analogtrain.cli import cli

#: config-file keys besides the assumptions
_EXTRA_KEYS = ("algorithm", "sweep_n")


def _help(key: str) -> str:
    m = est.FIELD_META[key]
    default = getattr(est.DEFAULTS, key)
    kind = m["kind"].replace(">=", " >= ").replace(">0", " > 0")
    return f"{m['help'][0].upper()}{m['help'][1:]}; unit: {m['unit']}, {kind} [default: {default:g}]."


def _assumption_options(f):
    for key in reversed(est.KEYS):
        m = est.FIELD_META[key]
        is_int = m["kind"].startswith("int")
        metavar = "NS" if m["unit"] == "ns" else ("INT" if is_int else "X")
        f = click.option(m["flag"], key, type=int if is_int else float, default=None, metavar=metavar,
                         help=_help(key))(f)
    return f


@cli.command("estimate")
@click.option("--algorithm", "algorithm", default=None, metavar="LIST",
              help="Comma-separated algorithms among sgd, mp, ttv2, c-ttv2, agad "
                   "[default: all five, plus AGAD at n_s=10, l_max=1 unless --n-s/--l-max is given].")
@_assumption_options
@click.option("--sweep-n", "sweep_n", default=None, metavar="N1,N2,...",
              help="Report each algorithm's time vs tile size N for these N (comma-separated integers >= 1), "
                   "e.g. 64,128,256,512,1024,2048,4096 [default: no sweep; --plot uses that list].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="TOML file whose [estimate] table sets any of: "
                                   + ", ".join(est.KEYS + _EXTRA_KEYS) + " (flags win).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png", help="Draw time per sample vs N on log-log axes (needs the optional "
                                       "matplotlib extra).")
def estimate_cmd(algorithm, sweep_n, config_file, as_json, plot_file, **flags):
    """Estimate the update-phase time per input sample (ns) of each training algorithm.

    \b
    Model (see docs/estimate.md), F = tflops*1000/arrays_per_core FLOP/ns:
      sgd           l_max*t_pulse
      ttv2/c-ttv2/agad
                    l_max*t_pulse + (t_mvm + l_w*t_pulse + k*N/F)/n_s,  k = 6 / 10 / 26
      mp            2*N^2/F + (11*N/F + l_max*t_pulse)/n_s
    The paper's figures (Rasch, Carta et al. 2024) are printed beside ours where it gives one.

    \b
    Examples:
      analogtrain estimate
      analogtrain estimate --algorithm agad --n-s 10 --l-max 1
      analogtrain estimate --sweep-n 64,128,256,512,1024,2048,4096 --plot time_vs_n.png
      analogtrain estimate --t-pulse 10 --json
    """
    values, labels, algs, sweep, specified = _resolve(config_file, flags, algorithm, sweep_n)
    if plot_file is not None:
        _check_writable(plot_file)
        report.require_matplotlib()
    a = est.Assumptions(**values)
    add_fast = not ({"n_s", "l_max"} & specified)
    results = est.plan(algs, a, sweep_n=sweep, add_agad_fast_point=add_fast)
    assumptions = {**a.to_dict(), **({"n": None} if sweep else {}), "sweep_n": sweep}
    out = {
        **report.provenance("estimate", {"assumptions": assumptions, "algorithms": list(algs or [])}, None),
        "assumptions": assumptions,
        "derived": {"digital_flop_per_ns": a.flop_per_ns,
                    "vector_op_ns": None if sweep else a.vector_op_ns},
        "results": [r.to_dict() for r in results],
    }
    if plot_file is not None:
        _plot(plot_file, algs, a, sweep or list(est.DEFAULT_SWEEP_N))
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_sweep_text(results, sweep) if sweep else _text(results))
        click.echo("")
        click.echo(_assumptions_text(a, labels, sweep))
        if plot_file is not None:
            click.echo(f"analogtrain: plot written to {plot_file}", err=True)


# ----------------------------------------------------------------------------- resolution
def _resolve(config_file, flags: dict[str, Any], algorithm_flag, sweep_flag):
    """(assumption values, {key: source label}, algorithms, sweep list, keys set by the user)."""
    values: dict[str, Any] = est.DEFAULTS.to_dict()
    labels: dict[str, str] = {k: "default" for k in est.KEYS}
    specified: set[str] = set()
    algorithm, alg_label = None, "--algorithm"
    sweep, sweep_label = None, "--sweep-n"
    file_has_n = False
    if config_file is not None:
        table = _estimate_table(config_file)
        for key, v in table.items():
            label = f"{config_file}: estimate.{key}"
            if key == "algorithm":
                algorithm, alg_label = v, label
            elif key == "sweep_n":
                sweep, sweep_label = v, label
            else:
                values[key] = est.check_value(key, v, label)
                labels[key] = f"config {config_file}"
                specified.add(key)
                file_has_n = file_has_n or key == "n"
    for key, v in flags.items():
        if v is None:
            continue
        values[key] = est.check_value(key, v, est.FIELD_META[key]["flag"])
        labels[key] = "flag"
        specified.add(key)
    if algorithm_flag is not None:
        algorithm, alg_label = algorithm_flag, "--algorithm"
    if sweep_flag is not None:
        sweep, sweep_label = sweep_flag, "--sweep-n"
    algs = _parse_algorithms(algorithm, alg_label) if algorithm is not None else None
    sweep_list = _parse_sweep(sweep, sweep_label) if sweep is not None else None
    if sweep_list is not None:
        n_by_flag = flags.get("n") is not None
        if n_by_flag and sweep_flag is not None:
            raise ConfigError("--n and --sweep-n: give one of them, not both")
        if file_has_n and not n_by_flag and sweep_flag is None:
            raise ConfigError(f"{config_file}: estimate.n and estimate.sweep_n: give one of them, not both")
        if n_by_flag:  # a --n flag overrides a sweep from the config file
            sweep_list = None
    return values, labels, algs, sweep_list, specified


def _estimate_table(path: Path) -> dict[str, Any]:
    data = read_toml(path)
    table = data.get("estimate")
    if table is None:
        raise ConfigError(f"{path}: no [estimate] table (keys: {', '.join(est.KEYS + _EXTRA_KEYS)})")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: estimate must be a table ([estimate]), got {type(table).__name__}")
    for key, v in table.items():
        if key not in est.KEYS and key not in _EXTRA_KEYS:
            raise ConfigError(f"{path}: estimate.{key}: unknown key (known: {', '.join(est.KEYS + _EXTRA_KEYS)})")
        if isinstance(v, dict):
            raise ConfigError(f"{path}: estimate.{key}: must be a value, not a table")
    return table


def _parse_algorithms(value: Any, label: str) -> list[str]:
    if isinstance(value, str):
        items = [x for x in value.split(",")]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        items = list(value)
    else:
        raise ConfigError(f"{label}: must be a comma-separated string or a list of names (got {value!r})")
    items = [x.strip() for x in items]
    if not items or any(not x for x in items):
        raise ConfigError(f"{label}: empty algorithm name in {value!r} (choose from {', '.join(est.ALGORITHMS)})")
    if any(x.lower() == "all" for x in items):
        return list(est.ALGORITHMS)
    out = []
    for x in items:
        name = est.ALIASES.get(x.lower())
        if name is None:
            raise ConfigError(f"{label}: unknown algorithm {x!r} (choose from {', '.join(est.ALGORITHMS)})")
        out.append(name)
    return list(dict.fromkeys(out))


def _parse_sweep(value: Any, label: str) -> list[int]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        try:
            ns = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"{label}: expected comma-separated integers >= 1 (got {value!r})") from None
    elif isinstance(value, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        ns = list(value)
    else:
        raise ConfigError(f"{label}: expected a list of integers >= 1 (got {value!r})")
    if not ns or any(n < 1 for n in ns):
        raise ConfigError(f"{label}: expected integers >= 1 (got {value!r})")
    return sorted(set(ns))


def _check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--plot {path}: directory {parent} does not exist")


# ----------------------------------------------------------------------------- text output
_TERM_ORDER = ("w_update", "a_update", "column_read", "w_write", "vector_ops", "outer_product", "transfer_ops")


def _table(rows, headers, right: int = 0, align: list[str] | None = None) -> str:
    """A plain table of preformatted cells (no number re-parsing); columns from ``right`` on right-aligned."""
    from tabulate import tabulate

    align = align or ["left" if i < right else "right" for i in range(len(headers))]
    return tabulate([[("" if c is None else str(c)) for c in r] for r in rows], headers=list(headers),
                    tablefmt="simple", disable_numparse=True, colalign=align)


def _fmt(v: float | None, nd: int = 2) -> str:
    return "" if v is None else f"{v:.{nd}f}"


def _text(results: list[est.Estimate]) -> str:
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
    # terms
    names = [k for k in _TERM_ORDER if any(k in r.terms for r in results)]
    trows = [[r.algorithm, r.assumptions.n_s, r.assumptions.l_max, *[_fmt(r.terms.get(k)) for k in names]]
             for r in results]
    lines += ["", "terms (ns per sample):",
              _table(trows, ["algorithm", "n_s", "l_max", *names], right=1)]
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


def _sweep_text(results: list[est.Estimate], sweep: list[int]) -> str:
    algs = list(dict.fromkeys(r.algorithm for r in results))
    by = {(r.algorithm, r.assumptions.n): r for r in results}
    rows = [[n, *[_fmt(by[(alg, n)].time_ns) for alg in algs]] for n in sweep]
    lines = ["time per sample (ns) vs tile size N:",
             _table(rows, ["n", *algs], right=0)]
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


def _digital_ns(r: est.Estimate) -> float:
    return sum(r.terms.get(k, 0.0) for k in ("vector_ops", "outer_product", "transfer_ops"))


def _assumptions_text(a: est.Assumptions, labels: dict[str, str], sweep: list[int] | None) -> str:
    rows = []
    for key in est.KEYS:
        m = est.FIELD_META[key]
        value = f"{','.join(map(str, sweep))}" if (key == "n" and sweep) else f"{getattr(a, key):g}"
        source = "--sweep-n" if (key == "n" and sweep) else labels[key]
        rows.append([key, value, m["unit"], source, m["help"]])
    rows.append(["F (derived)", f"{a.flop_per_ns:g}", "FLOP/ns per array", "", "tflops * 1000 / arrays_per_core"])
    if not sweep:
        rows.append(["N/F (derived)", f"{a.vector_op_ns:.4f}", "ns", "", "one elementwise op over an N-vector"])
    return "assumptions:\n" + _table(rows, ["assumption", "value", "unit", "source", "meaning"],
                                     align=["left", "right", "left", "left", "left"])


# ----------------------------------------------------------------------------- plot
def _plot(path: Path, algs: list[str] | None, a: est.Assumptions, ns: list[int]) -> None:
    plt = report.require_matplotlib()
    algs = algs or list(est.ALGORITHMS)
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
    with report.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
