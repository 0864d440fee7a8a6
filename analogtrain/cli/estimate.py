"""``analogtrain estimate``: the per-sample update-time model (the paper's runtime estimate)."""

from __future__ import annotations

import click

from analogtrain.cli import cli
from analogtrain.cli.common import config_option, execute, field_options, output_options
from analogtrain.config.estimate import EstimateConfig

FIELDS = ["algorithm", "n", "n_s", "l_max", "l_w", "t_mvm", "t_pulse", "tflops", "arrays_per_core", "sweep_n",
          "agad_fast_point"]


@cli.command("estimate")
@field_options(EstimateConfig, FIELDS, metavars={"n": "N", "n_s": "N", "l_max": "N", "l_w": "N", "t_mvm": "NS",
                                                 "t_pulse": "NS", "tflops": "X", "arrays_per_core": "N",
                                                 "sweep_n": "N1,N2,..."})
@config_option
@output_options
@click.pass_context
def estimate_cmd(ctx, **params):
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
    from analogtrain.tools.estimate import run

    execute(EstimateConfig, ctx, params, run)
