"""``analogtrain endurance``: pulses per device, projected endurance and retention of each array."""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from analogtrain.tools import endurance as E
from analogtrain import report
from analogtrain.errors import ConfigError
from analogtrain.cli import cli
from analogtrain.cli.options import device_options, load_device_sources, seed_option
from analogtrain.cli.parsing import comma_list, parse_size, positive_float

#: simulation flags and their defaults (used only without RUN_DIR)
_SIM_DEFAULTS = dict(algorithm="ttv2,c-ttv2,agad", n_states="20", sigma_r="0", steps=2000, size="20", lr="0.1")
_SIM_PARAMS = ("algorithm", "n_states", "sigma_r", "steps", "size", "lr", "preset", "config_file",
               "device_config_file", "sets", "seed")


def _positive_number(text: str | None, flag: str, integer: bool = False):
    if text is None:
        return None
    try:
        v = float(str(text).strip())
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{flag}: must be > 0 (got {text})")
    if integer:
        if v != round(v):
            raise ConfigError(f"{flag}: must be a whole number of samples (got {text})")
        return int(round(v))
    return v


@cli.command("endurance")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--samples", "samples", default=None, metavar="N",
              help="Project the pulse counts to a training run of N input samples, e.g. 6e6 "
                   "[default: the run's own length].")
@click.option("--endurance", "endurance", default="1e9", show_default=True, metavar="PULSES",
              help="Pulses one device can take; an array passes if its projected max per device is <= this.")
@click.option("--samples-per-second", "rate", default=None, metavar="RATE",
              help="Input samples per second of the hardware, to express retention times in seconds.")
@click.option("--bins-per-decade", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Histogram bins per decade of pulses per device per sample.")
@click.option("--algorithm", default=None, metavar="LIST",
              help="(no RUN_DIR) algorithms to simulate, comma list [default: ttv2,c-ttv2,agad].")
@click.option("--n-states", default=None, metavar="LIST", help="(no RUN_DIR) device states [default: 20].")
@click.option("--sigma-r", default=None, metavar="LIST", help="(no RUN_DIR) reference offset spread [default: 0].")
@click.option("--steps", type=click.IntRange(1, 10**8), default=None,
              help="(no RUN_DIR) training samples to simulate [default: 2000].")
@click.option("--size", default=None, metavar="N|OUTxIN", help="(no RUN_DIR) layer shape [default: 20].")
@click.option("--lr", default=None, metavar="LIST", help="(no RUN_DIR) learning rate [default: 0.1].")
@device_options
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Write summary.json and histogram.csv to DIR.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png", help="Plot the histograms (needs the optional matplotlib extra).")
@click.pass_context
def endurance_cmd(ctx, run_dir, samples, endurance, rate, bins_per_decade, algorithm, n_states, sigma_r, steps,
                  size, lr, preset, config_file, device_config_file, sets, seed, as_json, out_dir, plot_file):
    """Endurance and retention requirements: pulses per device per input sample of A, W (and R).

    \b
    RUN_DIR is the --out directory of `program` or `train` run with --count-pulses. Without
    RUN_DIR a short `program` run (linear layer, one seed, counters on) is simulated with the
    flags marked (no RUN_DIR).
    Per array and replica/layer: mean, median, 99th percentile and max over devices of
    pulses per device per sample (up, down, total), a log-binned histogram, the pulses
    projected to --samples N, PASS/FAIL against --endurance, and the retention time:
    A one transfer/chopper period (TTv2 x_size*n_s, c-TTv2 x_size*n_s/in_chop_prob,
    AGAD N_c*x_size*n_s samples), W and the TTv2/c-TTv2 reference R the whole run.

    \b
    Examples:
      analogtrain endurance runs/prog --samples 6e6 --samples-per-second 1e6
      analogtrain endurance --algorithm agad --n-states 100 --steps 5000 --json
      analogtrain endurance runs/fc3 --endurance 1e8 --out endurance/ --plot hist.png
    """
    n_target = _positive_number(samples, "--samples", integer=True)
    endur = _positive_number(endurance, "--endurance")
    sps = _positive_number(rate, "--samples-per-second")
    given_sim = [p for p in _SIM_PARAMS if ctx.get_parameter_source(p).name not in ("DEFAULT", "DEFAULT_MAP")
                 and ctx.params.get(p) not in (None, ())]
    if run_dir is not None and given_sim:
        flags = ", ".join("--" + p.replace("_file", "").replace("_", "-") for p in given_sim)
        raise ConfigError(f"endurance: give either RUN_DIR or simulation flags, not both (got RUN_DIR and {flags})")
    if run_dir is not None:
        run = E.load_run(run_dir)
    else:
        run = None
    sim_cfg = None
    if run is None:
        sim_cfg = _sim_config(algorithm, n_states, sigma_r, steps, size, lr, preset, config_file,
                              device_config_file, sets, seed)
    report.prepare_outputs(out_dir, plot_file)
    if run is None:
        from analogtrain.experiments.program import build_replicas, run_program

        build_replicas(sim_cfg)   # resolve and validate every config before any work
        run = E.from_program_result(run_program(sim_cfg))
    res = E.analyse(run, n_target, endur, sps, bins_per_decade)
    settings = {"run_dir": str(run_dir) if run_dir is not None else None, "samples": n_target,
                "endurance": endur, "samples_per_second": sps, "bins_per_decade": bins_per_decade}
    if sim_cfg is not None:
        settings["simulation"] = _sim_dict(sim_cfg)
    out = report.provenance("endurance", settings, seed if sim_cfg is not None else None)
    out.pop("argv", None)
    if sim_cfg is not None:
        out["simulation"] = settings["simulation"]
    out.update(res)
    if out_dir is not None:
        report.write_json(out_dir / "summary.json", out)
        report.write_csv(out_dir / "histogram.csv", ["group", "algorithm", "array", "bin_lo", "bin_hi", "devices"],
                         _histogram_rows(res))
    if plot_file is not None:
        _plot(plot_file, res)
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_tables(res))


def _sim_config(algorithm, n_states, sigma_r, steps, size, lr, preset, config_file, device_config_file, sets, seed):
    from analogtrain.config.algorithm import canonical_algorithm
    from analogtrain.experiments.program import DeviceSource, ProgramConfig

    d = _SIM_DEFAULTS
    algos = comma_list(algorithm or d["algorithm"], "--algorithm", canonical_algorithm)
    ns_text = n_states or d["n_states"]
    ns = () if str(ns_text).strip().lower() in ("device", "none") else \
        comma_list(ns_text, "--n-states", positive_float("--n-states"))
    srs = comma_list(sigma_r or d["sigma_r"], "--sigma-r", positive_float("--sigma-r", allow_zero=True))
    lrs = comma_list(lr or d["lr"], "--lr", positive_float("--lr"))
    out_size, in_size = parse_size(size or d["size"])
    dp, dv, dpairs = load_device_sources(preset, config_file, device_config_file, sets)
    return ProgramConfig(task="linear", out_size=out_size, in_size=in_size, steps=int(steps or d["steps"]),
                         algorithms=algos, n_states=ns, sigma_r=srs, seeds=1, lr=lrs, seed=seed,
                         count_pulses=True, device=DeviceSource(preset=dp, values=tuple(dv.items()),
                                                                sets=tuple(dpairs)))


def _sim_dict(cfg) -> dict:
    return {"algorithm": list(cfg.algorithms), "n_states": list(cfg.n_states) or "device",
            "sigma_r": list(cfg.sigma_r), "lr": list(cfg.lr), "steps": cfg.steps,
            "size": f"{cfg.out_size}x{cfg.in_size}", "seed": cfg.seed, "seeds": 1, "count_pulses": True,
            "device_source": {"preset": cfg.device.preset, "file": dict(cfg.device.values),
                              "set": dict(cfg.device.sets)}}


def _histogram_rows(res: dict):
    edges = res["histogram_edges"]
    for r in res["arrays"]:
        h = r["histogram"]
        yield [r["group"], r["algorithm"], r["array"], 0.0, 0.0, h["zero"]]
        for k, c in enumerate(h["counts"]):
            yield [r["group"], r["algorithm"], r["array"], float(edges[k]), float(edges[k + 1]), c]


def _g(v) -> str:
    return f"{v:.3g}"


def _label(r: dict) -> str:
    lab = r["labels"]
    extra = {k: v for k, v in lab.items() if k not in ("algorithm", "layer", "seed_index", "lr")}
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()]
    return r["group"] + (f" ({', '.join(parts)})" if parts else "")


def _tables(res: dict) -> str:
    src = res["source"]
    N = res["samples_projected"]
    head = (f"pulses per device per input sample ({src['kind']} run"
            + (f" {src['path']}" if src.get("path") else "") + f", {src['samples']} samples); "
            f"projected to N = {N:g} samples; endurance {res['endurance']:.3g} pulses")
    rows = []
    for r in res["arrays"]:
        t, u, d = r["per_sample"]["total"], r["per_sample"]["up"], r["per_sample"]["down"]
        p = r["projected"]
        rows.append([_label(r), r["algorithm"], r["array"], _g(t["mean"]), _g(t["median"]), _g(t["p99"]),
                     _g(t["max"]), _g(u["max"]), _g(d["max"]), r["pulses"]["total"], _g(p["max_per_device"]),
                     "PASS" if p["pass"] else "FAIL"])
    t1 = report.table(rows, ["replica/layer", "alg", "array", "mean", "median", "p99", "max", "up max",
                             "down max", "run total", "proj. max/device", "endurance"])
    rrows = []
    for r in res["arrays"]:
        ret = r["retention"]
        sec = f"{ret['seconds']:.3g}" if ret.get("seconds") is not None else "(give --samples-per-second)"
        rrows.append([_label(r), r["algorithm"], r["array"], _g(ret["samples"]), sec, ret["formula"]])
    t2 = report.table(rrows, ["replica/layer", "alg", "array", "retention [samples]", "[s]", "formula"])
    edges = res["histogram_edges"]
    cols = ["0"] + [f"[{edges[k]:.2g},{edges[k + 1]:.2g})" for k in range(len(edges) - 1)]
    hrows = [[_label(r), r["array"], r["histogram"]["zero"], *r["histogram"]["counts"]] for r in res["arrays"]]
    t3 = report.table(hrows, ["replica/layer", "array", *cols])
    verdict = "PASS" if res["pass"] else "FAIL"
    w = res["worst"]
    line = (f"{verdict}: projected max pulses per device {w['projected_max_per_device']:.3g} "
            f"({w['group']}, {w['array']}) vs endurance {res['endurance']:.3g} over N = {N:g} samples"
            if w else f"{verdict}: no pulsed arrays")
    notes = ["R: the reference of TTv2/c-TTv2, programmed once (not counted), 0 training pulses, "
             "must hold its value the whole run"] if any(r["array"] == "R" for r in res["arrays"]) else []
    notes += res.get("notes", [])
    mism = [r for r in res["arrays"] if r.get("matches_summary") is False]
    if mism:
        notes.append("WARNING: totals differ from the run's summary.json for "
                     + ", ".join(f"{r['group']}/{r['array']}" for r in mism))
    return "\n\n".join([head + "\n" + t1,
                        "retention (how long each array must hold its state)\n" + t2,
                        "histogram: devices per bin of total pulses per device per sample\n" + t3,
                        "\n".join([line, *notes])])


def _plot(path: Path, res: dict) -> None:
    plt = report.require_matplotlib()
    rows = res["arrays"]
    edges = np.asarray(res["histogram_edges"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        c = np.asarray(r["histogram"]["counts"])
        if edges.size >= 2 and c.sum() > 0:
            ax.stairs(c, edges, label=f"{r['group']} {r['algorithm']} {r['array']}")
    ax.set_xscale("log")
    ax.set_xlabel("pulses per device per input sample")
    ax.set_ylabel("devices")
    ax.set_title(f"pulse distribution (endurance {res['endurance']:.2g} over {res['samples_projected']:g} samples)")
    if rows:
        ax.legend(fontsize=6)
    fig.tight_layout()
    with report.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
