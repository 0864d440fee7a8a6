"""``analogtrain program``: program a linear layer to a target with analog training (paper Fig. 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from analogtrain import report
from analogtrain.config.algorithm import canonical_algorithm
from analogtrain.config.fields import to_dict
from analogtrain.config.io import IO_PRESETS
from analogtrain.errors import ConfigError
from analogtrain.experiments.program import TASKS, DeviceSource, ProgramConfig, run_program, summarise
from analogtrain.cli import cli
from analogtrain.cli.options import device_options, load_device_sources, output_options, progress_option, seed_option, show_progress
from analogtrain.cli.parsing import (comma_list, parse_algo_sets, parse_scalar, parse_size, parse_sweep, positive_float,
                      read_run_config)

#: flag name -> (TOML key in [program], default)
_DEFAULTS: dict[str, Any] = dict(task="linear", algorithm="ttv2,c-ttv2,agad", n_states="20,100",
                                 sigma_r="0,0.1,0.3,0.5", sigma_r_arrays="A", seeds=3, lr="0.1", steps=20000,
                                 size="20", io="preset", trace_every=0, jobs=1, dtype="float32",
                                 count_pulses=False, target_range=0.5)


@cli.command("program")
@click.option("--task", type=click.Choice(TASKS), default=None,
              help="linear: learn a random target W* [default]; constant-gradient: the 5x5 toy of Fig. 3.")
@click.option("--algorithm", default=None, metavar="LIST",
              help="Algorithms, comma list of fp, sgd, mp, ttv2, c-ttv2, agad [default: ttv2,c-ttv2,agad].")
@click.option("--n-states", default=None, metavar="LIST",
              help="Number of device states of A and W (sets dw_min), comma list; 'device' keeps the "
                   "device's own [default: 20,100].")
@click.option("--sigma-r", default=None, metavar="LIST",
              help="Reference offset spread sigma_r (reference_std, weight units), comma list [default: 0,0.1,0.3,0.5].")
@click.option("--sigma-r-arrays", default=None, metavar="A|W|A,W",
              help="Arrays whose reference gets the sigma_r offset [default: A, as in the paper].")
@click.option("--seeds", type=click.IntRange(1, 1000), default=None,
              help="Number of device construction seeds per cell (seed, seed+1, ...) [default: 3].")
@click.option("--lr", default=None, metavar="LIST", help="Learning rate(s), comma list [default: 0.1].")
@click.option("--steps", type=click.IntRange(1, 10**9), default=None, help="Training samples (batch 1) [default: 20000].")
@click.option("--size", default=None, metavar="N|OUTxIN", help="Layer shape: 20 or 256x784 [default: 20].")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=v1,v2",
              help="Sweep any device (e.g. gamma, up_down, A.dw_min_std) or algorithm parameter "
                   "(e.g. in_chop_prob, fast_lr) over the values given (repeatable; a grid unless --zip).")
@click.option("--zip", "zip_sweeps", is_flag=True, help="Pair the --sweep axes element by element instead of a grid.")
@click.option("--algo-set", "algo_sets", multiple=True, metavar="KEY=VALUE",
              help="Set an algorithm parameter for every algorithm that has it (e.g. transfer_every=2).")
@click.option("--w-sp-corrected/--no-w-sp-corrected", default=None,
              help="Subtract W's own symmetry point (the paper's 'SP-corrected W') [default: as the device config].")
@click.option("--io", "io_name", type=click.Choice(sorted(IO_PRESETS)), default=None,
              help="I/O of the forward pass: preset (out_noise 0.1, out_bound 20, 7-bit DAC, 9-bit ADC), "
                   "default, standard or perfect [default: preset].")
@click.option("--trace-every", type=click.IntRange(0, 10**9), default=None,
              help="Record the weight error every N steps [default: steps/100].")
@click.option("--jobs", type=click.IntRange(1, 256), default=None,
              help="Processes; stacks (or halves of a stack) run in parallel. Results depend on the "
                   "stack split, so --jobs is part of the recorded config [default: 1].")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help="Floating-point type of the arrays [default: float32].")
@click.option("--count-pulses", is_flag=True, default=None, help="Keep exact per-device up/down pulse counters.")
@device_options
@seed_option
@output_options
@progress_option
@click.pass_context
def program(ctx, task, algorithm, n_states, sigma_r, sigma_r_arrays, seeds, lr, steps, size, sweeps, zip_sweeps,
            algo_sets, w_sp_corrected, io_name, trace_every, jobs, dtype, count_pulses, preset, config_file,
            device_config_file, sets, seed, as_json, out_dir, plot_file, print_config, no_progress):
    """Program a linear layer to a random target and report the weight error.

    The error is std(W - W*) / (w_max - w_min) in percent, per grid cell (mean +- std over
    construction seeds). Default: the paper-style grid TTv2, c-TTv2, AGAD x 20, 100 states x
    sigma_r 0, 0.1, 0.3, 0.5 x 3 seeds on the softbounds device with ReRamSB-preset settings,
    20000 steps; all replicas of one algorithm family run as one stacked simulation.

    \b
    Examples:
      analogtrain program
      analogtrain program --algorithm agad --n-states 20 --sigma-r 0,0.5 --steps 5000 --json
      analogtrain program --preset linearstep --sweep gamma=1,0.5,0.2,0 --sigma-r 0 --n-states 20
      analogtrain program --size 512 --algorithm agad --seeds 1 --steps 2000 --json
      analogtrain program --task constant-gradient --plot toy.png
    """
    file_cfg, file_algo = read_run_config(config_file, "program")
    if file_cfg:
        bad = set(file_cfg) - set(_DEFAULTS) - {"sweep", "seed", "zip", "w_sp_corrected"}
        if bad:
            raise ConfigError(f"config file {config_file}: [program] has unknown key(s) {', '.join(sorted(bad))}")
        file_cfg = _cast_program_file(ctx, file_cfg, config_file)

    def pick(name, value):
        if value is not None:
            return value
        return file_cfg.get(name, _DEFAULTS[name])

    if ctx.get_parameter_source("seed").name == "DEFAULT" and "seed" in file_cfg:
        seed = int(file_cfg["seed"])
    task = pick("task", task)
    if task == "constant-gradient":
        from analogtrain.cli.toy import run_toy_command

        return run_toy_command(ctx, algorithm, preset, config_file, device_config_file, sets, seed, steps,
                               as_json, out_dir, plot_file, print_config)
    algos = comma_list(pick("algorithm", algorithm), "--algorithm", canonical_algorithm)
    ns_text = pick("n_states", n_states)
    ns = () if str(ns_text).strip().lower() in ("device", "none", "") else \
        comma_list(ns_text, "--n-states", positive_float("--n-states"))
    srs = comma_list(pick("sigma_r", sigma_r), "--sigma-r", positive_float("--sigma-r", allow_zero=True))
    arrays = comma_list(pick("sigma_r_arrays", sigma_r_arrays), "--sigma-r-arrays", lambda s: s.upper())
    for a in arrays:
        if a not in ("A", "W"):
            raise ConfigError(f"--sigma-r-arrays: expected A, W or A,W (got {a!r})")
    lrs = comma_list(pick("lr", lr), "--lr", positive_float("--lr"))
    out_size, in_size = parse_size(pick("size", size))
    sweep_items = list(file_cfg.get("sweep", {}).items()) if isinstance(file_cfg.get("sweep"), dict) else []
    sweep_list = [(k, comma_list(v, f"sweep {k}", parse_scalar)) for k, v in sweep_items]
    sweep_list += [parse_sweep(s) for s in sweeps]
    algo_pairs = parse_algo_sets(algo_sets, file_algo)
    dev_preset, dev_values, dev_pairs = load_device_sources(preset, config_file, device_config_file, sets)
    cfg = ProgramConfig(
        task=task, out_size=out_size, in_size=in_size, steps=int(pick("steps", steps)), algorithms=algos,
        n_states=ns, sigma_r=srs, sigma_r_arrays=arrays, seeds=int(pick("seeds", seeds)), lr=lrs,
        sweeps=tuple(sweep_list), zip_sweeps=bool(zip_sweeps or file_cfg.get("zip", False)),
        algo_sets=tuple(algo_pairs.items()),
        w_sp_corrected=w_sp_corrected if w_sp_corrected is not None else file_cfg.get("w_sp_corrected"),
        io=pick("io", io_name), trace_every=int(pick("trace_every", trace_every)), seed=seed,
        jobs=int(pick("jobs", jobs)), dtype=pick("dtype", dtype), count_pulses=bool(pick("count_pulses", count_pulses)),
        target_range=float(file_cfg.get("target_range", 0.5)),
        device=DeviceSource(preset=dev_preset, values=tuple(dev_values.items()), sets=tuple(dev_pairs)))
    from analogtrain.experiments.program import build_replicas

    replicas = build_replicas(cfg)  # resolves and validates every config before any work
    resolved = resolved_config(cfg, replicas)
    if print_config:
        click.echo(report.to_toml(resolved, header="analogtrain program: resolved config"))
        return
    report.prepare_outputs(out_dir, plot_file)
    res = _run_with_progress(cfg, show_progress(no_progress))
    cells = summarise(res)
    out = report.provenance("program", resolved, seed)
    out.update({"config": resolved, "cells": [_public_cell(c) for c in cells], "wall_s": res.wall_s,
                "n_replicas": len(res.replicas), "steps": cfg.steps,
                "stacks": [{"algorithms": k, "replicas": n, "seconds": s} for k, n, s in res.stacks],
                "seconds_per_step": res.wall_s / cfg.steps})
    if res.pulses:
        out["pulses_per_replica"] = {k: v.tolist() for k, v in res.pulses.items()}
    if out_dir is not None:
        _write_outputs(out_dir, out, res, resolved)
    if plot_file is not None:
        _plot(plot_file, cells, cfg)
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_table(cells, cfg))
        click.echo(f"\n{len(res.replicas)} replicas x {cfg.steps} steps in {res.wall_s:.1f} s "
                   f"({', '.join(f'{k}: {n}' for k, n, _ in res.stacks)} replicas per stack)")


#: [program] keys whose option has another name
_FILE_TO_PARAM = {"io": "io_name", "zip": "zip_sweeps"}


def _cast_program_file(ctx, values: dict, config_file) -> dict:
    """[program] values get the checks of the corresponding flags (types, ranges, choices)."""
    import math

    from analogtrain.cli.parsing import cast_file_values

    out = dict(values)
    sweep = out.pop("sweep", None)
    target = out.pop("target_range", None)
    renamed = {_FILE_TO_PARAM.get(k, k): v for k, v in out.items()}
    cast = cast_file_values(ctx, renamed, config_file, "program",
                            lists=("algorithm", "n_states", "sigma_r", "sigma_r_arrays", "lr"))
    back = {v: k for k, v in _FILE_TO_PARAM.items()}
    out = {back.get(k, k): v for k, v in cast.items()}
    if sweep is not None:
        if not isinstance(sweep, dict):
            raise ConfigError(f"config file {config_file}: program.sweep must be a table KEY = [v1, v2, ...]")
        out["sweep"] = sweep
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) \
                or target <= 0:
            raise ConfigError(f"config file {config_file}: program.target_range must be a number > 0 (got {target!r})")
        out["target_range"] = float(target)
    return out


def resolved_config(cfg: ProgramConfig, replicas) -> dict:
    first = {}
    for r in replicas:
        first.setdefault(r.algorithm, r)
    return {
        "program": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                    {"task": cfg.task, "size": f"{cfg.out_size}x{cfg.in_size}", "steps": cfg.steps,
                     "algorithm": list(cfg.algorithms), "n_states": list(cfg.n_states) or "device",
                     "sigma_r": list(cfg.sigma_r), "sigma_r_arrays": list(cfg.sigma_r_arrays),
                     "seeds": cfg.seeds, "lr": list(cfg.lr), "io": cfg.io, "trace_every": cfg.trace_every,
                     "jobs": cfg.jobs, "dtype": cfg.dtype, "count_pulses": cfg.count_pulses,
                     "target_range": cfg.target_range, "seed": cfg.seed, "zip": cfg.zip_sweeps,
                     "w_sp_corrected": cfg.w_sp_corrected}.items() if v is not None},
        "sweep": {k: list(v) for k, v in cfg.sweeps},
        "device_source": {"preset": cfg.device.preset, "file": dict(cfg.device.values),
                          "set": dict(cfg.device.sets)},
        "io": to_dict(IO_PRESETS[cfg.io]),
        "algorithm_defaults": {name: to_dict(r.alg_cfg) for name, r in first.items()},
        "device_example": {name: {"W": {"model": r.dev_w.model, **to_dict(r.dev_w)},
                                  **({"A": {"model": r.dev_a.model, **to_dict(r.dev_a)}} if r.dev_a else {})}
                           for name, r in first.items()},
    }


def _run_with_progress(cfg, show: bool):
    if not show:
        return run_program(cfg)
    with click.progressbar(length=cfg.steps * 1, label="program", file=click.get_text_stream("stderr")) as bar:
        state = {"done": 0}

        def cb(done, total):
            bar.length = total
            bar.update(done - state["done"])
            state["done"] = done

        return run_program(cfg, progress=cb)


def _public_cell(c: dict) -> dict:
    c = dict(c)
    c.pop("replica_index", None)
    return c


def _fmt_ms(e: dict) -> str:
    return f"{e['mean']:.2f} +- {e['std']:.2f}"


def _table(cells: list[dict], cfg: ProgramConfig) -> str:
    sweep_keys = [k for k, _ in cfg.sweeps]
    row_keys = ["algorithm", "n_states"] + (["lr"] if len(cfg.lr) > 1 else []) + sweep_keys
    rows: dict[tuple, dict] = {}
    for c in cells:
        rk = tuple(c.get(k) for k in row_keys)
        rows.setdefault(rk, {})[c["sigma_r"]] = c["weight_error_pct"]
    sig = list(cfg.sigma_r)
    table_rows = [[*(("device" if v is None else v) for v in rk), *[_fmt_ms(vals[s]) if s in vals else "" for s in sig]]
                  for rk, vals in rows.items()]
    headers = row_keys + [f"sigma_r={s:g}" for s in sig]
    return ("weight error std(W - W*)/(w_max - w_min) in %, mean +- std over seeds\n"
            + report.table(table_rows, headers))


def _write_outputs(out_dir: Path, out: dict, res, resolved: dict) -> None:
    sweep_keys = [k for k, _ in res.config.sweeps]
    meta = ["algorithm", "n_states", "sigma_r", "lr", *sweep_keys]
    rows = []
    for i, r in enumerate(res.replicas):
        for k, step in enumerate(res.trace_steps):
            rows.append([*(r.cell.get(m) for m in meta), r.seed_index, i, int(step), float(res.traces[i, k])])
    report.write_csv(out_dir / "traces.csv", [*meta, "seed_index", "replica", "step", "weight_error_pct"], rows)
    arrays = dict(res.arrays)
    from analogtrain.experiments.program import _inputs_and_target

    arrays["target"] = _inputs_and_target(res.config)[0]
    arrays["final_weight_error_pct"] = res.final_error
    if res.pulses:
        for k, v in res.pulses.items():
            arrays[f"{k}.pulses_total"] = v
    report.write_npz(out_dir / "arrays.npz", arrays)
    report.write_text(out_dir / "config.toml", report.to_toml(_toml_safe(resolved),
                                                              header="analogtrain program: resolved config"))
    summary = dict(out)
    summary["replicas"] = [{"index": i, **r.cell, "seed_index": r.seed_index, "final_weight_error_pct":
                            float(res.final_error[i])} for i, r in enumerate(res.replicas)]
    summary["array_names"] = sorted(arrays)
    report.write_json(out_dir / "summary.json", summary)


def _toml_safe(obj):
    if isinstance(obj, dict):
        return {k: _toml_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_toml_safe(v) for v in obj if v is not None]
    return obj


def _plot(path: Path, cells: list[dict], cfg: ProgramConfig) -> None:
    plt = report.require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    groups: dict[tuple, list] = {}
    for c in cells:
        key = (c["algorithm"], c["n_states"], c["lr"], *[c.get(k) for k, _ in cfg.sweeps])
        groups.setdefault(key, []).append(c)
    for key, cs in groups.items():
        cs = sorted(cs, key=lambda c: c["sigma_r"])
        x = [c["sigma_r"] for c in cs]
        m = np.array([c["weight_error_pct"]["mean"] for c in cs])
        s = np.array([c["weight_error_pct"]["std"] for c in cs])
        label = f"{key[0]}, n_states={key[1]}" + ("" if len(cfg.lr) == 1 else f", lr={key[2]}") + \
            "".join(f", {k}={v}" for (k, _), v in zip(cfg.sweeps, key[3:]))
        ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=label)
    ax.set_xlabel("reference offset sigma_r")
    ax.set_ylabel("weight error std(W - W*) / range [%]")
    ax.set_title("programming a linear layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with report.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
