"""Training networks: fc3 / LeNet on MNIST (or the 8x8 digits), the 2-layer LSTM on War and Peace.

``run_train(cfg, out_dir, resume)`` runs epochs of mini-batch training (forward and
backward of the batch, then every analog layer's per-sample pulsed updates), evaluates
on the test split after every epoch, appends one line per epoch to ``metrics.jsonl``
and writes a checkpoint (npz + JSON, RNG states included, never a pickle). A run
resumed from its checkpoint continues exactly as the uninterrupted run would have:
every random number comes from a generator whose state is in the checkpoint, and the
order of operations is the same.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analogtrain import datasets as D
from analogtrain.datasets import Data, DataRequest
from analogtrain import report
from analogtrain.config.algorithm import canonical_algorithm, default_algorithm_config, with_overrides
from analogtrain.config.fields import field_map
from analogtrain.config.io import IO_PRESETS
from analogtrain.errors import ConfigError, InputError, NumericalError
from analogtrain.engine.nn import functional as F
from analogtrain.engine.nn.models import MODELS, LayerFactory, build_model
from analogtrain.seeding import generator, generator_state, restore_generator
from analogtrain.experiments.program import DeviceSource

DATASETS = ("mnist", "warpeace", "digits")
COMPATIBLE = {"fc3": ("mnist", "digits"), "lenet": ("mnist", "digits"), "lstm": ("warpeace",)}


@dataclass(frozen=True)
class TrainConfig:
    model: str = "fc3"
    dataset: str = "mnist"
    algorithm: str = "agad"
    epochs: int = 10
    batch_size: int = 10
    lr: float = 0.1
    lr_step: int = 0            # epochs between learning-rate decays (0 = constant)
    lr_gamma: float = 0.5
    limit_train: int = 0        # 0 = all training samples (LSTM: characters)
    limit_test: int = 0
    seed: int = 0
    io: str = "preset"
    dtype: str = "float32"
    count_pulses: bool = False
    grad_clip: float = 0.0      # global gradient-norm clipping (0 = off; LSTM default 1.0)
    dropout: float = 0.2        # LSTM: between the layers
    seq_len: int = 100          # LSTM
    hidden: int = 64            # LSTM
    algo_sets: tuple = ()
    algo_style: str = "build-config"   # default transfer settings: aihwkit build_config (see config.algorithm)
    weight_scaling_omega: float = 0.1  # map max|W0| to this device weight (aihwkit mapping); 0 = off
    device: DeviceSource = DeviceSource()
    data_dir: str | None = None
    verify_data: bool = True

    def hash_fields(self) -> dict:
        """The fields that define a run (for resume checks): everything but epochs and paths."""
        d = dataclasses.asdict(self)
        for k in ("epochs", "data_dir"):
            d.pop(k)
        return d


def validate_config(cfg: TrainConfig) -> None:
    if cfg.io not in IO_PRESETS:
        raise ConfigError(f"--io: must be one of {', '.join(sorted(IO_PRESETS))} (got {cfg.io!r})")
    if cfg.dtype not in ("float32", "float64"):
        raise ConfigError(f"--dtype: must be float32 or float64 (got {cfg.dtype!r})")
    if cfg.algo_style not in ("build-config", "reramsb"):
        raise ConfigError(f"--algo-style: must be build-config or reramsb (got {cfg.algo_style!r})")
    if cfg.model not in MODELS:
        raise ConfigError(f"--model: unknown model {cfg.model!r}; must be one of {', '.join(MODELS)}")
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset: unknown data set {cfg.dataset!r}; must be one of {', '.join(DATASETS)}")
    if cfg.dataset not in COMPATIBLE[cfg.model]:
        raise ConfigError(f"--model {cfg.model} does not fit --dataset {cfg.dataset}; "
                          f"{cfg.model} trains on {' or '.join(COMPATIBLE[cfg.model])}")
    for name, v, lo in (("--epochs", cfg.epochs, 1), ("--batch-size", cfg.batch_size, 1),
                        ("--seq-len", cfg.seq_len, 1), ("--hidden", cfg.hidden, 1)):
        if v < lo:
            raise ConfigError(f"{name}: must be >= {lo} (got {v})")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ConfigError(f"--lr: must be > 0 (got {cfg.lr})")
    if not (0 < cfg.lr_gamma <= 1):
        raise ConfigError(f"--lr-gamma: must be in (0, 1] (got {cfg.lr_gamma})")
    if not (cfg.weight_scaling_omega >= 0 and math.isfinite(cfg.weight_scaling_omega)):
        raise ConfigError(f"--weight-scaling-omega: must be >= 0 (got {cfg.weight_scaling_omega})")
    if not (0 <= cfg.dropout < 1):
        raise ConfigError(f"--dropout: must be in [0, 1) (got {cfg.dropout})")
    if cfg.grad_clip < 0 or not math.isfinite(cfg.grad_clip):
        raise ConfigError(f"--grad-clip: must be >= 0 (got {cfg.grad_clip})")


# ------------------------------------------------------------------------------- data
# The data sets live in analogtrain.datasets (readers, registry, Data); images come as
# (N, C, H, W). Only the model-specific adaptation stays here: LeNet needs 28x28 images,
# the other networks take each batch flattened to (B, C*H*W).
def load_data(cfg: TrainConfig) -> Data:
    data = D.load(cfg.dataset, DataRequest(data_dir=cfg.data_dir, verify=cfg.verify_data,
                                           limit_train=cfg.limit_train, limit_test=cfg.limit_test,
                                           batch_size=cfg.batch_size, seq_len=cfg.seq_len, dtype=cfg.dtype))
    if cfg.model == "lenet" and data.image_shape != (1, 28, 28):
        raise ConfigError("--model lenet needs 28x28 images (--dataset mnist)")
    return data


def _batch_inputs(model, data: Data, x: np.ndarray) -> np.ndarray:
    """Model inputs of a batch of images (B, C, H, W): as they are for LeNet, else flattened."""
    x = data.inputs(x)
    return x if model.name == "lenet" else x.reshape(len(x), -1)


# ------------------------------------------------------------------------------ model
def build(cfg: TrainConfig, data: Data):
    alg = canonical_algorithm(cfg.algorithm)
    alg_cfg = default_algorithm_config(alg, cfg.algo_style)
    if cfg.algo_sets:
        keys = field_map(type(alg_cfg))
        unknown = [k for k, _ in cfg.algo_sets if k not in keys]
        if unknown:
            from analogtrain.config.fields import unknown_key_message

            raise ConfigError(unknown_key_message("algorithm", unknown[0], list(keys)))
        alg_cfg = with_overrides(alg_cfg, dict(cfg.algo_sets))
    dev_w = cfg.device.resolve("W", {})
    dev_a = cfg.device.resolve("A", {}) if alg in ("ttv2", "c-ttv2", "agad") else None
    io = IO_PRESETS[cfg.io] if alg != "fp" else IO_PRESETS["perfect"]
    factory = LayerFactory(alg, alg_cfg, dev_w, dev_a, io, cfg.seed, dtype=np.dtype(cfg.dtype),
                           count_pulses=cfg.count_pulses, weight_scaling_omega=cfg.weight_scaling_omega)
    if cfg.model == "fc3" and data.kind == "classifier" and math.prod(data.image_shape) != 784:
        return _build_fc3_inputs(factory, math.prod(data.image_shape)), alg_cfg, dev_w, dev_a
    model = build_model(cfg.model, factory, vocab=data.vocab or None, hidden=cfg.hidden, dropout=cfg.dropout,
                        rng_dropout=generator(cfg.seed, "dropout"))
    return model, alg_cfg, dev_w, dev_a


def _build_fc3_inputs(f: LayerFactory, n_inputs: int):
    from analogtrain.engine.nn.layers import Activation, AnalogLinear
    from analogtrain.engine.nn.models import Model

    layers = []
    for n_in, n_out, act in ((n_inputs, 256, True), (256, 128, True), (128, 10, False)):
        alg, b, a = f.make(n_out, n_in, n_in, bias=True)
        layers.append(AnalogLinear(alg, b, a))
        if act:
            layers.append(Activation("sigmoid"))
    return Model("fc3", layers, "classifier")


# -------------------------------------------------------------------------- training
def lr_at(cfg: TrainConfig, epoch: int) -> float:
    return cfg.lr * (cfg.lr_gamma ** (epoch // cfg.lr_step) if cfg.lr_step > 0 else 1.0)


def _bad_array(model) -> str | None:
    """'layerK.ARRAY' of the first analog array (W, A, H, P, ...) holding NaN or inf, or None."""
    for name, layer in model.analog_layers():
        for k, v in layer.arrays().items():
            v = np.asarray(v)
            if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
                return f"{name}.{k}"
    return None


def _check_finite(what: str, arr: np.ndarray, epoch: int, batch: int, model) -> None:
    if np.all(np.isfinite(arr)):
        return
    where = f"at epoch {epoch + 1}, batch {batch + 1}"
    bad = _bad_array(model)
    if bad is not None:
        raise NumericalError(f"non-finite values in {bad} {where}")
    layer = getattr(model, "first_bad_layer", None)
    if layer is not None:
        raise NumericalError(f"non-finite output of {layer} {where}")
    raise NumericalError(f"non-finite {what} {where}")


def train_epoch(cfg, model, data: Data, epoch: int, rng_data, progress=None) -> float:
    lr = lr_at(cfg, epoch)
    losses = []
    if data.kind == "classifier":
        n = len(data.y_train)
        order = rng_data.permutation(n)
        nb = math.ceil(n / cfg.batch_size)
        for bi in range(nb):
            idx = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
            z = model.forward(_batch_inputs(model, data, data.x_train[idx]), True)
            loss, grad = F.cross_entropy(z, data.y_train[idx])
            _check_finite("loss", np.asarray(loss), epoch, bi, model)
            model.backward(grad.astype(z.dtype))
            model.update(lr, cfg.grad_clip)
            losses.append(float(loss))
            if progress:
                progress(len(idx))
    else:
        for bi in range(data.x_train.shape[0]):
            ids = data.x_train[bi].T          # (T, B)
            tgt = data.y_train[bi].T
            z = model.forward(ids, True)
            loss, grad = F.cross_entropy(z, tgt)
            _check_finite("loss", np.asarray(loss), epoch, bi, model)
            model.backward(grad.astype(z.dtype))
            model.update(lr, cfg.grad_clip)
            losses.append(float(loss))
            if progress:
                progress(ids.size)
    return float(np.mean(losses)) if losses else float("nan")


def evaluate(model, data: Data, batch: int = 500) -> dict:
    if data.kind == "classifier":
        wrong, total, loss_sum = 0, 0, 0.0
        for s in range(0, len(data.y_test), batch):
            z = model.forward(_batch_inputs(model, data, data.x_test[s:s + batch]), False)
            y = data.y_test[s:s + batch]
            loss, _ = F.cross_entropy(z, y)
            loss_sum += float(loss) * len(y)
            wrong += int(np.sum(np.argmax(z, axis=1) != y))
            total += len(y)
        return {"test_error_pct": 100.0 * wrong / total, "test_loss": loss_sum / total}
    loss_sum, count = 0.0, 0
    for bi in range(data.x_test.shape[0]):
        z = model.forward(data.x_test[bi].T, False)
        loss, _ = F.cross_entropy(z, data.y_test[bi].T)
        loss_sum += float(loss) * z.shape[0] * z.shape[1]
        count += z.shape[0] * z.shape[1]
    test_loss = loss_sum / max(count, 1)
    return {"test_loss": test_loss, "test_perplexity": float(math.exp(min(test_loss, 700)))}


# ------------------------------------------------------------------------ checkpoints
CHECKPOINT = "checkpoint.json"


def save_checkpoint(out_dir: Path, epoch: int, model, rng_data, rng_dropout, metrics: list, cfg_hash: str,
                    wall: float) -> None:
    """npz (arrays) + JSON (epoch, RNG states, counters); the JSON, written last, commits it."""
    arrays, info = model.state()
    npz_name = f"checkpoint-epoch{epoch + 1:04d}.npz"
    report.write_npz(out_dir / npz_name, arrays)
    ck = {"schema_version": report.SCHEMA_VERSION, "epoch": epoch + 1, "arrays": npz_name, "config_hash": cfg_hash,
          "layers": info, "rng": {"data": generator_state(rng_data),
                                  "dropout": generator_state(rng_dropout) if rng_dropout is not None else None},
          "metrics": metrics, "wall_s": wall}
    report.write_json(out_dir / CHECKPOINT, ck)
    for old in out_dir.glob("checkpoint-epoch*.npz"):
        if old.name != npz_name:
            old.unlink(missing_ok=True)


def load_checkpoint(run_dir: Path) -> tuple[dict, dict]:
    ck = report.read_json(Path(run_dir) / CHECKPOINT,
                          f"--resume {run_dir}: no {CHECKPOINT} there (was the run started with --out?)",
                          f"--resume {run_dir}: {CHECKPOINT} is not readable JSON")
    if not isinstance(ck, dict) or "arrays" not in ck or "epoch" not in ck:
        raise InputError(f"--resume {run_dir}: {CHECKPOINT} is not an analogtrain checkpoint")
    arrays = report.load_npz(Path(run_dir) / str(ck["arrays"]))
    return ck, arrays


@dataclass
class TrainResult:
    config: TrainConfig
    epochs: list
    final: dict
    wall_s: float
    model: Any
    data_info: dict
    resumed_from: int = 0


def run_train(cfg: TrainConfig, out_dir: Path | None = None, resume: Path | None = None,
              progress_factory: Callable[[int, int], Any] | None = None, interrupt_check=None,
              start_files: dict[str, str] | None = None) -> TrainResult:
    """Train; with ``out_dir`` write metrics.jsonl and a checkpoint per epoch; with ``resume``
    continue the run whose checkpoint is in that directory (its config must match).

    ``start_files`` (name -> text, e.g. the resolved config) are written to ``out_dir`` only
    once the data is loaded, the model built and a resume accepted, so that a run refused
    for bad input leaves nothing behind.
    """
    validate_config(cfg)
    data = load_data(cfg)
    model, alg_cfg, dev_w, dev_a = build(cfg, data)
    cfg_hash = report.config_hash(cfg.hash_fields())
    rng_data = generator(cfg.seed, "data")
    rng_dropout = getattr(getattr(model, "drop", None), "rng", None)
    metrics: list[dict] = []
    start, wall0 = 0, 0.0
    if resume is not None:
        ck, arrays = load_checkpoint(resume)
        if ck.get("config_hash") != cfg_hash:
            raise InputError(f"--resume {resume}: the checkpoint belongs to a run with another config "
                             f"(hash {ck.get('config_hash')}, this one {cfg_hash}); only --epochs may change")
        try:
            model.load_state(arrays, ck["layers"])
            rng_data = restore_generator(ck["rng"]["data"])
            if rng_dropout is not None and ck["rng"].get("dropout"):
                model.drop.rng = restore_generator(ck["rng"]["dropout"])
        except (KeyError, ValueError, TypeError) as e:
            raise InputError(f"--resume {resume}: checkpoint does not match the model ({e})") from None
        try:
            start, metrics, wall0 = int(ck["epoch"]), list(ck.get("metrics", [])), float(ck.get("wall_s", 0.0))
        except (TypeError, ValueError) as e:
            raise InputError(f"--resume {resume}: checkpoint.json is not an analogtrain checkpoint ({e})") from None
    if out_dir is not None:
        for name, text in (start_files or {}).items():
            report.write_text(Path(out_dir) / name, text)
        # metrics.jsonl holds exactly the epochs of the checkpoint (none for a fresh run)
        report.write_text(Path(out_dir) / "metrics.jsonl",
                          "".join(report.dumps(m, indent=None) + "\n" for m in metrics))
    t_run = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        n_units = len(data.y_train) if data.kind == "classifier" else int(data.x_train.size)
        bar = progress_factory(epoch, n_units) if progress_factory else None
        try:
            train_loss = train_epoch(cfg, model, data, epoch, rng_data, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        bad = _bad_array(model)
        if bad is not None:   # checked before the checkpoint, so the last good one is kept
            raise NumericalError(f"non-finite values in {bad} after epoch {epoch + 1}")
        ev = evaluate(model, data)
        if not all(math.isfinite(v) for v in ev.values()):
            raise NumericalError(f"non-finite test metrics after epoch {epoch + 1} "
                                 f"(output of {getattr(model, 'first_bad_layer', None) or 'the model'})")
        m = {"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "train_loss": train_loss, **ev,
             "pulses": model.pulse_totals(), "at_bound_pct": model.at_bound_pct(),
             "wall_s": time.perf_counter() - t0,
             "samples": n_units * (epoch + 1)}
        metrics.append(m)
        if out_dir is not None:
            report.append_jsonl(Path(out_dir) / "metrics.jsonl", m)
            save_checkpoint(Path(out_dir), epoch, model, rng_data, model.drop.rng if rng_dropout is not None else None,
                            metrics, cfg_hash, wall0 + time.perf_counter() - t_run)
        if interrupt_check is not None:
            interrupt_check()
    final = dict(metrics[-1]) if metrics else {}
    return TrainResult(config=cfg, epochs=metrics, final=final, wall_s=wall0 + time.perf_counter() - t_run,
                       model=model, data_info=data.info, resumed_from=start)


# ------------------------------------------------------------------ config <-> JSON
def config_to_dict(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["algo_sets"] = dict(cfg.algo_sets)
    d["device"] = {"preset": cfg.device.preset, "values": dict(cfg.device.values), "sets": dict(cfg.device.sets)}
    return d


def config_from_dict(d: dict) -> TrainConfig:
    """A TrainConfig from a plain dict (a saved config.json or CLI values), types checked."""
    if not isinstance(d, dict):
        raise ConfigError("train config: expected a table of settings")
    d = dict(d)
    dev = d.pop("device", {}) or {}
    if not isinstance(dev, dict) or not isinstance(d.get("algo_sets") or {}, dict):
        raise ConfigError("train config: 'device' and 'algo_sets' must be tables")
    for k in ("values", "sets"):
        if not isinstance(dev.get(k) or {}, dict):
            raise ConfigError(f"train config: device.{k} must be a table")
    d["algo_sets"] = tuple((d.get("algo_sets") or {}).items())
    d["device"] = DeviceSource(preset=dev.get("preset"), values=tuple((dev.get("values") or {}).items()),
                               sets=tuple((dev.get("sets") or {}).items()))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"train config: unknown key(s) {', '.join(sorted(unknown))}")
    for f in dataclasses.fields(TrainConfig):
        if f.name in d and f.name not in ("device", "algo_sets"):
            d[f.name] = _typed(f.name, d[f.name], f.default)
    return TrainConfig(**d)


def _typed(name: str, value, default):
    """Check one train setting against the type of its default (bool, int, float, str, or None)."""
    flag = "--" + name.replace("_", "-")
    if name == "data_dir":
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"{flag}: expected a directory path (got {value!r})")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{flag}: expected true or false (got {value!r})")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{flag}: expected an integer (got {value!r})")
        if value < 0:
            raise ConfigError(f"{flag}: must be >= 0 (got {value})")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{flag}: expected a number (got {value!r})")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{flag}: must be a finite number (got {value!r})")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{flag}: expected a string (got {value!r})")
    return value


def config_diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    da, db = a.hash_fields(), b.hash_fields()
    return [k for k in da if da[k] != db.get(k)]
