"""``analogtrain train``: train fc3 / LeNet on MNIST (or the 8x8 digits), the LSTM on War and Peace."""

from __future__ import annotations

import click

from analogtrain.cli import cli, rerun_args_current
from analogtrain.cli.common import (algo_set_option, config_option, device_options, epoch_progress, field_options,
                                    interruptible, load_layers, print_config, progress_option, render, show_progress)
from analogtrain.config.loader import build_config, read_config_file
from analogtrain.config.train import TrainConfig
from analogtrain.errors import InputError

FIELDS = ["model", "dataset", "algorithm", "algo_style", "weight_scaling_omega", "epochs", "batch_size", "lr",
          "lr_step", "lr_gamma", "limit_train", "limit_test", "io", "dtype", "count_pulses", "grad_clip", "dropout",
          "seq_len", "hidden", "data_dir", "verify_data", "seed", "pulse_mode"]


@cli.command("train")
@field_options(TrainConfig, FIELDS, metavars={"data_dir": "DIR"})
@algo_set_option
@config_option
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write config.toml, metrics.jsonl, a checkpoint per epoch, summary.json and arrays.npz to DIR.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Continue the run in DIR from its last checkpoint (only --epochs may change).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit.")
@progress_option
@click.pass_context
def train(ctx, **params):
    """Train a network with an analog training algorithm; report test error or loss per epoch.

    \b
    Examples:
      analogtrain train --model fc3 --algorithm agad --preset softbounds --set n_states=20
      analogtrain train --model fc3 --algorithm fp --epochs 1 --data-dir DIR --json
      analogtrain train --model lenet --algorithm agad --epochs 10 --out runs/lenet
      analogtrain train --model lstm --algorithm agad --limit-train 200000 --epochs 2
      analogtrain train --resume runs/lenet --epochs 20
    """
    from analogtrain.experiments.train import run

    resume = params.get("resume_dir")
    if resume is not None:
        saved = _saved_layer(resume)
        cfg = load_layers(TrainConfig, ctx, params, base=[saved])
        before = build_config(TrainConfig, [saved])
        diff = _diff(before.hash_fields(), cfg.hash_fields())
        if diff:
            raise InputError(f"--resume {resume}: the run there has another config ({', '.join(diff)} differ); "
                             "only --epochs may change")
    else:
        cfg = load_layers(TrainConfig, ctx, params)
    if params.get("print_config"):
        print_config(cfg)
        return
    out = resume if resume is not None else params.get("out_dir")
    progress = epoch_progress() if show_progress(params.get("no_progress", False)) else None
    hint = (lambda: f"interrupted; resume with: analogtrain train --resume {out}") if out is not None else \
        (lambda: "interrupted (no --out, nothing was saved)")
    res = interruptible(lambda: run(cfg, out_dir=out, resume=resume is not None, progress=progress), hint)
    res.argv = rerun_args_current()
    if out is not None:
        res.write(out)
    render(res, {"as_json": params.get("as_json")}, res.argv, write=False)


def _saved_layer(run_dir):
    from pathlib import Path

    p = Path(run_dir)
    if not (p / "config.toml").is_file():
        raise InputError(f"--resume {run_dir}: no config.toml there (not an analogtrain train --out directory)")
    try:
        return read_config_file(p / "config.toml", TrainConfig, what=f"--resume {run_dir}:")
    except InputError:
        raise
    except Exception as e:  # a damaged config.toml is a bad input, not a bug
        raise InputError(f"--resume {run_dir}: config.toml is not a train config ({e})") from None


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two nested dicts (``train.lr``, ``device.n_states``)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out
