"""``analogtrain train``: train fc3 / LeNet on MNIST (or the 8x8 digits) and the LSTM on War and Peace."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click

from analogtrain import report
from analogtrain.config.algorithm import canonical_algorithm
from analogtrain.config.io import IO_PRESETS
from analogtrain.errors import ConfigError, InputError, Interrupted
from analogtrain.experiments.train import (DATASETS, TrainConfig, config_diff, config_from_dict, config_to_dict, run_train,
                                 validate_config)
from analogtrain.engine.nn.models import MODELS
from analogtrain.cli import cli
from analogtrain.cli.options import device_options, load_device_sources, progress_option, seed_option, show_progress
from analogtrain.cli.parsing import parse_algo_sets, read_run_config

#: per-model defaults where a flag is not given (aihwkit examples, docs/nn.md §9)
MODEL_DEFAULTS = {
    "fc3": dict(dataset="mnist", batch_size=10, lr=0.5, grad_clip=0.0),
    "lenet": dict(dataset="mnist", batch_size=8, lr=0.1, grad_clip=0.0),
    "lstm": dict(dataset="warpeace", batch_size=32, lr=0.1, grad_clip=1.0),
}
#: learning rates of the transfer algorithms where they differ from the model default (the
#: lr scales the transfer to W, lambda_H; measured: fc3 0.1, LeNet 0.05, see README)
TRANSFER_LR = {"fc3": 0.1, "lenet": 0.05}
#: transfer-algorithm settings per model: LeNet's convolutions read a column of A after every
#: image patch (23 reads of each column per image for the first layer), so the threshold is
#: scaled with the column count (auto_granularity) to keep the transfer rate per image sane
TRANSFER_ALGO_SETS = {"lenet": {"auto_granularity": 1000.0}}
_FLAGS = ("model", "dataset", "algorithm", "algo_style", "weight_scaling_omega", "epochs", "batch_size", "lr", "lr_step", "lr_gamma", "limit_train",
          "limit_test", "io", "dtype", "count_pulses", "grad_clip", "dropout", "seq_len", "hidden")


@cli.command("train")
@click.option("--model", type=click.Choice(MODELS), default=None, help="Network [default: fc3].")
@click.option("--dataset", type=click.Choice(DATASETS), default=None,
              help="Data set [default: mnist for fc3/lenet, warpeace for lstm].")
@click.option("--algorithm", default=None, help="fp, sgd, mp, ttv2, c-ttv2 or agad [default: agad].")
@click.option("--algo-set", "algo_sets", multiple=True, metavar="KEY=VALUE",
              help="Set an algorithm parameter, e.g. in_chop_prob=0.05 (repeatable).")
@click.option("--algo-style", type=click.Choice(["build-config", "reramsb"]), default=None,
              help="Default transfer-algorithm settings: aihwkit build_config (fast_lr 0.1, A-update BL 5, "
                   "chopper 0.1) or the ReRamSB presets (fast_lr 0.5, BL 31, auto_granularity 1000, chopper "
                   "0.01/0.02; about 3x more pulses) [default: build-config].")
@click.option("--weight-scaling-omega", type=float, default=None,
              help="Map the largest initial weight of each layer to this device weight and scale the output "
                   "digitally (aihwkit mapping; 0.1 leaves room for the weights to grow 10x); 0 = off "
                   "[default: 0.1].")
@click.option("--epochs", type=click.IntRange(1, 100000), default=None, help="Epochs [default: 10].")
@click.option("--batch-size", type=click.IntRange(1, 100000), default=None,
              help="Mini-batch size [default: fc3 10, lenet 8, lstm 32].")
@click.option("--lr", type=float, default=None,
              help="Learning rate [default: fc3 0.5 (0.1 with ttv2/c-ttv2/agad), lenet 0.1 (0.05 with "
                   "ttv2/c-ttv2/agad, which also get auto_granularity 1000), lstm 0.1].")
@click.option("--lr-step", type=click.IntRange(0, 100000), default=None,
              help="Multiply the learning rate by --lr-gamma every N epochs (0 = constant) [default: 0].")
@click.option("--lr-gamma", type=float, default=None, help="Learning-rate decay factor [default: 0.5].")
@click.option("--limit-train", type=click.IntRange(0, 10**9), default=None,
              help="Use only the first N training samples (LSTM: characters); 0 = all [default: 0].")
@click.option("--limit-test", type=click.IntRange(0, 10**9), default=None,
              help="Use only the first N test samples (LSTM: characters); 0 = all [default: 0].")
@click.option("--io", "io", type=click.Choice(sorted(IO_PRESETS)), default=None,
              help="Forward/backward I/O of the analog arrays [default: preset].")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None, help="Array type [default: float32].")
@click.option("--count-pulses", is_flag=True, default=None, help="Keep exact per-device up/down pulse counters.")
@click.option("--grad-clip", type=float, default=None,
              help="Clip the global gradient norm to this value, 0 = off [default: lstm 1.0, others 0].")
@click.option("--dropout", type=float, default=None, help="LSTM dropout between the layers [default: 0.2].")
@click.option("--seq-len", type=click.IntRange(1, 100000), default=None, help="LSTM sequence length [default: 100].")
@click.option("--hidden", type=click.IntRange(1, 100000), default=None, help="LSTM hidden size [default: 64].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory (one folder per data set) [default: $ANALOGTRAIN_DATA, then the user cache].")
@click.option("--no-verify-data", is_flag=True, help="Accept data files whose SHA-256 differs from the published ones.")
@device_options
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write config, metrics.jsonl, checkpoints, summary.json and arrays.npz to DIR.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the run in DIR from its last checkpoint (only --epochs may change).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit.")
@progress_option
@click.pass_context
def train(ctx, model, dataset, algorithm, algo_sets, algo_style, weight_scaling_omega, epochs, batch_size, lr, lr_step, lr_gamma, limit_train,
          limit_test, io, dtype, count_pulses, grad_clip, dropout, seq_len, hidden, data_dir, no_verify_data, preset,
          config_file, device_config_file, sets, seed, as_json, out_dir, resume_dir, print_config, no_progress):
    """Train a network with an analog training algorithm; report test error or loss per epoch.

    \b
    Examples:
      analogtrain train --model fc3 --algorithm agad --preset softbounds --set n_states=20
      analogtrain train --model fc3 --algorithm fp --epochs 1 --data-dir DIR --json
      analogtrain train --model lenet --algorithm agad --epochs 10 --out runs/lenet
      analogtrain train --model lstm --algorithm agad --limit-train 200000 --epochs 2
      analogtrain train --resume runs/lenet --epochs 20
    """
    given = {k: v for k, v in dict(model=model, dataset=dataset, algorithm=algorithm, algo_style=algo_style,
                                   weight_scaling_omega=weight_scaling_omega, epochs=epochs,
                                   batch_size=batch_size, lr=lr, lr_step=lr_step, lr_gamma=lr_gamma,
                                   limit_train=limit_train, limit_test=limit_test, io=io, dtype=dtype,
                                   count_pulses=count_pulses, grad_clip=grad_clip, dropout=dropout, seq_len=seq_len,
                                   hidden=hidden).items() if v is not None}
    file_train, file_algo = read_run_config(config_file, "train")
    if file_train:
        bad = set(file_train) - set(_FLAGS) - {"seed", "data_dir", "verify_data"}
        if bad:
            raise ConfigError(f"config file {config_file}: [train] has unknown key(s) {', '.join(sorted(bad))}")
        file_train = _cast_file_values(ctx, file_train, config_file)
    base: TrainConfig | None = None
    if resume_dir is not None:
        base = _saved_config(resume_dir)
    algo_pairs = parse_algo_sets(algo_sets, file_algo)
    if base is not None:
        values = config_to_dict(base)
        values.update({k: v for k, v in file_train.items()})
        values.update(given)
        if ctx.get_parameter_source("seed").name != "DEFAULT":
            values["seed"] = seed
        if algo_pairs:
            values["algo_sets"] = {**values["algo_sets"], **algo_pairs}
        if preset or config_file or device_config_file or sets:
            dp, dv, dpairs = load_device_sources(preset, config_file, device_config_file, sets)
            values["device"] = {"preset": dp, "values": dv, "sets": dict(dpairs)}
        if data_dir is not None:
            values["data_dir"] = str(data_dir)
        if no_verify_data:
            values["verify_data"] = False
        cfg = config_from_dict(values)
        diff = config_diff(base, cfg)
        if diff:
            raise InputError(f"--resume {resume_dir}: the run there has another config "
                             f"({', '.join(diff)} differ); only --epochs may change")
    else:
        merged: dict[str, Any] = {**file_train, **given}
        mname = merged.get("model", "fc3")
        if mname not in MODEL_DEFAULTS:
            raise ConfigError(f"--model: unknown model {mname!r}; must be one of {', '.join(MODELS)}")
        merged["algorithm"] = canonical_algorithm(str(merged.get("algorithm", "agad")))
        if merged["algorithm"] in ("ttv2", "c-ttv2", "agad"):
            if mname in TRANSFER_LR:
                merged.setdefault("lr", TRANSFER_LR[mname])
            for k, v in TRANSFER_ALGO_SETS.get(mname, {}).items():
                algo_pairs.setdefault(k, v)
        for k, v in MODEL_DEFAULTS[mname].items():
            merged.setdefault(k, v)
        merged["model"] = mname
        if ctx.get_parameter_source("seed").name == "DEFAULT" and "seed" in file_train:
            seed = int(file_train["seed"])
        dp, dv, dpairs = load_device_sources(preset, config_file, device_config_file, sets)
        merged.update(seed=seed, algo_sets=algo_pairs,
                      device={"preset": dp, "values": dv, "sets": dict(dpairs)},
                      data_dir=str(data_dir) if data_dir is not None else file_train.get("data_dir"),
                      verify_data=not no_verify_data and bool(file_train.get("verify_data", True)))
        try:
            cfg = config_from_dict(merged)
        except TypeError as e:
            raise ConfigError(f"train config: {e}") from None
    validate_config(cfg)
    _check_resolvable(cfg)
    resolved = {"train": {k: v for k, v in config_to_dict(cfg).items() if v is not None}}
    if print_config:
        click.echo(report.to_toml(report.to_jsonable(resolved), header="analogtrain train: resolved config"))
        return
    target_dir = out_dir if out_dir is not None else resume_dir
    if out_dir is not None and resume_dir is None and (out_dir / "checkpoint.json").exists():
        raise InputError(f"--out {out_dir}: already holds a training run (checkpoint.json); continue it with "
                         f"--resume {out_dir}, or choose another --out")
    rerun = _rerun_args(resume_dir, epochs)
    start_files = {}
    if target_dir is not None:
        report.prepare_out_dir(target_dir)
        start_files = {"config.json": report.dumps(config_to_dict(cfg)) + "\n",
                       "config.toml": report.to_toml(report.to_jsonable(resolved),
                                                     header="analogtrain train: resolved config"),
                       "rerun.json": report.dumps({"rerun_args": rerun}) + "\n"}
    progress = _progress_factory() if show_progress(no_progress) else None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        res = run_train(cfg, out_dir=target_dir, resume=resume_dir, progress_factory=progress,
                        start_files=start_files)
    except KeyboardInterrupt:
        where = f"; resume with: analogtrain train --resume {target_dir}" if target_dir is not None else \
            " (no --out, nothing was saved)"
        raise Interrupted(f"interrupted{where}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    out = report.provenance("train", resolved, cfg.seed, argv=rerun)
    out.update({"config": resolved["train"], "final": res.final, "epochs": res.epochs, "wall_s": res.wall_s,
                "data": res.data_info, "resumed_from_epoch": res.resumed_from,
                "seconds_per_epoch": res.wall_s / max(1, len(res.epochs) - 0)})
    if target_dir is not None:
        report.write_npz(target_dir / "arrays.npz", {k: v for k, v in res.model.arrays().items()})
        report.write_json(target_dir / "summary.json", out)
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_table(res, cfg))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _rerun_args(resume_dir: Path | None, epochs: int | None) -> list[str] | None:
    """Arguments that recompute this run from scratch: for a resumed run, the original run's
    arguments (from its rerun.json) with the new --epochs."""
    if resume_dir is None:
        return report.RERUN_ARGS
    try:
        args = list(json.loads((Path(resume_dir) / "rerun.json").read_text(encoding="utf-8"))["rerun_args"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if epochs is not None:
        clean, i = [], 0
        while i < len(args):
            if args[i] == "--epochs":
                i += 2
                continue
            if args[i].startswith("--epochs="):
                i += 1
                continue
            clean.append(args[i])
            i += 1
        args = clean + ["--epochs", str(epochs)]
    return args


def _saved_config(run_dir: Path) -> TrainConfig:
    d = report.read_json(Path(run_dir) / "config.json",
                         f"--resume {run_dir}: no config.json there (not an analogtrain train --out directory)",
                         f"--resume {run_dir}: config.json is not readable")
    try:
        return config_from_dict(d)
    except (ConfigError, TypeError, AttributeError, ValueError) as e:
        raise InputError(f"--resume {run_dir}: config.json is not a train config ({e})") from None


def _cast_file_values(ctx, values: dict, config_file) -> dict:
    """Check [train] values with the same click types as the flags (ranges, choices, types)."""
    from analogtrain.cli.parsing import cast_file_values

    return cast_file_values(ctx, values, config_file, "train", extra={"verify_data": click.BOOL,
                                                                        "data_dir": click.STRING})


def _check_resolvable(cfg: TrainConfig) -> None:
    """Resolve the device and algorithm configs now, so bad values fail before any data is read."""
    from analogtrain.config.algorithm import default_algorithm_config, with_overrides

    cfg.device.resolve("W", {})
    cfg.device.resolve("A", {})
    alg_cfg = default_algorithm_config(cfg.algorithm, cfg.algo_style)
    if cfg.algo_sets:
        with_overrides(alg_cfg, dict(cfg.algo_sets))


def _progress_factory():
    stderr = click.get_text_stream("stderr")

    def make(epoch, total):
        bar = click.progressbar(length=total, label=f"epoch {epoch + 1}", file=stderr)
        bar.__enter__()

        class _B:
            def update(self, n):
                bar.update(n)

            def close(self):
                bar.__exit__(None, None, None)
        return _B()
    return make


def _table(res, cfg: TrainConfig) -> str:
    rows = []
    for m in res.epochs:
        metric = (f"{m['test_error_pct']:.2f}" if "test_error_pct" in m else f"{m['test_loss']:.4f}")
        rows.append([m["epoch"], f"{m['lr']:.4g}", f"{m['train_loss']:.4f}", metric,
                     sum(m["pulses"].values()) if m["pulses"] else "", f"{m['wall_s']:.1f}"])
    head = "test error %" if res.epochs and "test_error_pct" in res.epochs[0] else "test loss"
    return (f"{cfg.model} on {cfg.dataset} with {cfg.algorithm}\n"
            + report.table(rows, ["epoch", "lr", "train loss", head, "pulses", "seconds"]))
