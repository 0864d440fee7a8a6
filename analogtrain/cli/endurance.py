"""``analogtrain endurance``: pulses per device, projected endurance and retention of each array."""

from __future__ import annotations

import click

from analogtrain.cli import cli
from analogtrain.cli.common import config_option, device_options, execute, field_options, output_options, virtual_option
from analogtrain.config.endurance import EnduranceConfig
from analogtrain.errors import ConfigError

SIMULATION = ["algorithm", "n_states", "sigma_r", "steps", "lr", "seed"]


@cli.command("endurance")
@click.argument("run_dir", required=False, metavar="[RUN_DIR]")
@field_options(EnduranceConfig, ["samples", "endurance", "samples_per_second", "bins_per_decade"],
               metavars={"samples": "N", "endurance": "PULSES", "samples_per_second": "RATE"})
@field_options(EnduranceConfig, SIMULATION)
@virtual_option("size", "--size", "(simulation) layer shape N or OUTxIN [default: 20].", "N|OUTxIN")
@config_option
@device_options
@output_options
@click.pass_context
def endurance_cmd(ctx, **params):
    """Endurance and retention requirements: pulses per device per input sample of A, W (and R).

    \b
    RUN_DIR is the --out directory of `program` or `train` run with --count-pulses. Without
    RUN_DIR a short `program` run (linear layer, one seed, counters on) is simulated with the
    flags marked (simulation).
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
    from analogtrain.tools.endurance import run

    if params.get("run_dir") is not None:
        flags = {q.name: q.opts[0] for q in ctx.command.params}
        given = [flags[p] for p in [*SIMULATION, "size", "preset", "device_config_file", "sets"]
                 if params.get(p) not in (None, ())]
        if given:
            raise ConfigError(f"endurance: give either RUN_DIR or simulation flags, not both (got RUN_DIR and "
                              f"{', '.join(given)})")
    execute(EnduranceConfig, ctx, params, run)
