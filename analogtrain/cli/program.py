"""``analogtrain program``: program a linear layer to a target (paper Fig. 4), or the Fig. 3 toy."""

from __future__ import annotations

from pathlib import Path

import click

from analogtrain.cli import cli
from analogtrain.cli.common import (algo_set_option, config_option, device_options, execute, field_options,
                                    output_options, progress_option, virtual_option)
from analogtrain.config.loading import read_toml
from analogtrain.config.program import ProgramConfig
from analogtrain.config.toy import ToyConfig
from analogtrain.errors import ConfigError

GRID = ["algorithm", "n_states", "sigma_r", "sigma_r_arrays", "seeds", "lr", "steps"]
SETTINGS = ["zip", "w_sp_corrected", "io", "target_range", "trace_every", "jobs", "dtype", "count_pulses", "seed",
            "pulse_mode"]
TOY = ("algorithm", "steps", "seed")


@cli.command("program")
@click.option("--task", type=click.Choice(("linear", "constant-gradient")), default=None,
              help="linear: learn a random target W* (paper Fig. 4); constant-gradient: the 5x5 toy of Fig. 3 "
                   "(takes --algorithm, --steps, --seed and the device options) [default: linear].")
@field_options(ProgramConfig, GRID, metavars={"steps": "N", "seeds": "N"})
@virtual_option("size", "--size", "Layer shape N or OUTxIN, e.g. 20 or 256x784 [default: 20].", "N|OUTxIN")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=v1,v2",
              help="Sweep a device key (gamma, up_down, A.dw_min_std, ...) or an algorithm key (in_chop_prob, or "
                   "scoped: alg.fast_lr) over the values given (repeatable; a grid unless --zip).")
@algo_set_option
@field_options(ProgramConfig, SETTINGS)
@config_option
@device_options
@output_options
@progress_option
@click.pass_context
def program(ctx, **params):
    """Program a linear layer to a random target and report the weight error.

    The error is std(W - W*) / (w_max - w_min) in percent, per grid cell (mean +- std over
    construction seeds). Default: TTv2, c-TTv2, AGAD x 20, 100 states x sigma_r 0, 0.1,
    0.3, 0.5 x 3 seeds on the softbounds device with ReRamSB-preset settings, 20000 steps;
    all replicas of one algorithm family run as one stacked simulation.

    \b
    Examples:
      analogtrain program
      analogtrain program --algorithm agad --n-states 20 --sigma-r 0,0.5 --steps 5000 --json
      analogtrain program --preset linearstep --sweep gamma=1,0.5,0.2,0 --sigma-r 0 --n-states 20
      analogtrain program --size 512 --algorithm agad --seeds 1 --steps 2000 --json
      analogtrain program --task constant-gradient --plot toy.png
    """
    if _is_toy(params):
        flags = {q.name: q.opts[0] for q in ctx.command.params}
        given = [flags[p] for p in GRID + SETTINGS + ["size", "sweeps", "algo_sets"]
                 if p not in TOY and params.get(p) not in (None, ())]
        if given:
            raise ConfigError(f"--task constant-gradient: option(s) {', '.join(given)} do not apply (the toy is a "
                              "fixed 5x5 experiment; it takes --algorithm, --steps, --seed and the device options)")
        from analogtrain.experiments.toy import run

        params = {k: v for k, v in params.items() if k in TOY or k not in GRID + SETTINGS}
        return execute(ToyConfig, ctx, params, run)
    from analogtrain.experiments.program import plan_stacks, run

    execute(ProgramConfig, ctx, params, run, sweep_items=params.get("sweeps") or (), progress_label="program",
            progress_total=lambda cfg: cfg.steps * len(plan_stacks(cfg.replicas, cfg.jobs)))


def _is_toy(params) -> bool:
    if params.get("task") is not None:
        return params["task"] == "constant-gradient"
    f = params.get("config_file")
    if f is not None and Path(f).is_file():
        data = read_toml(f)
        return data.get("kind") == "toy" or isinstance(data.get("toy"), dict)
    return False
