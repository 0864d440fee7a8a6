"""``analogtrain device fit DATA.csv``: fit device models to a measured pulse response, write a TOML device."""

from __future__ import annotations

from pathlib import Path

import click

from analogtrain.cli import rerun_args_current
from analogtrain.cli.common import field_options, load_layers, print_config, render
from analogtrain.cli.device import device
from analogtrain.config.fit import FitConfig
from analogtrain.errors import InputError
from analogtrain.results import files


@device.command("fit")
@click.argument("data", type=click.Path(path_type=Path), metavar="DATA.csv")
@field_options(FitConfig, ["model", "normalise", "subtract_sp"])
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.toml", help="Write the fitted device as a TOML [device] table (atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png", help="Plot step vs state with the fitted curves (needs matplotlib).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit.")
@click.pass_context
def fit_cmd(ctx, **params):
    """Fit soft-bounds, linear-step, power-step and constant-step models to pulse-response data.

    \b
    DATA.csv columns (header required, any order): pulse (integer index), direction
    (up/down or +1/-1; start/0 for a read without a pulse), value (conductance or
    normalised weight); optional device (several devices: each is fitted, the device file
    gets their mean and spreads) and cycle. A step is the value change between rows of one
    device (and cycle) whose pulse indices differ by 1. Each model's step-vs-state relation
    is fitted by least squares (scipy.optimize.least_squares); c2c noise comes from the
    residuals. The curves.csv of `analogtrain device --out DIR` (columns w_0, w_1, ...) is
    accepted too. See docs/device_fit.md.

    \b
    Examples:
      analogtrain device fit measured.csv
      analogtrain device fit measured.csv --model soft_bounds --out fitted.toml --json
      analogtrain device --device-config fitted.toml
    """
    from analogtrain.tools.fit import run

    params["data"] = str(params["data"])
    cfg = load_layers(FitConfig, ctx, params)
    if params.get("print_config"):
        print_config(cfg)
        return
    out = params.get("out_file")
    if out is not None:
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"--out {out}: directory {parent} does not exist")
        if out.is_dir():
            raise InputError(f"--out {out}: is a directory, expected a file name")
    files.prepare_outputs(None, params.get("plot_file"))
    res = run(cfg)
    if out is not None:
        res.write_device(out)
    render(res, {"as_json": params.get("as_json"), "plot_file": params.get("plot_file")}, rerun_args_current(),
           write=False)
