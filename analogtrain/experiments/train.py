"""Training networks: the loop, evaluation and resume (nothing else).

``run(cfg, out_dir, resume)`` loads the data set (:mod:`analogtrain.datasets`), builds the
network (:mod:`analogtrain.engine.nn.models`), then runs epochs of mini-batch training
(forward and backward of the batch, then every analog layer's per-sample pulsed updates),
evaluates on the test split after every epoch and, with ``out_dir``, appends one line per
epoch to ``metrics.jsonl`` and writes a checkpoint (:mod:`.checkpoint`). A run resumed from
its checkpoint continues exactly as the uninterrupted run would have: every random number
comes from a generator whose state is in the checkpoint, and the order of operations is
the same.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analogtrain import datasets as D
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.train import TrainConfig
from analogtrain.datasets import Data, DataRequest
from analogtrain.engine.nn import functional as F
from analogtrain.engine.nn.models import LayerFactory, Model, build_model
from analogtrain.errors import InputError, NumericalError
from analogtrain.experiments import checkpoint
from analogtrain.results import arrays as schema
from analogtrain.results import files
from analogtrain.results.render import config_hash, dumps, to_toml
from analogtrain.results.train import TrainResult
from analogtrain.seeding import generator, restore_generator


def load_data(cfg: TrainConfig) -> Data:
    """The data set of the run, prepared by the data-set registry."""
    return D.load(cfg.dataset, DataRequest(data_dir=cfg.data_dir, verify=cfg.verify_data, limit_train=cfg.limit_train,
                                           limit_test=cfg.limit_test, batch_size=cfg.batch_size, seq_len=cfg.seq_len,
                                           dtype=cfg.dtype))


def build_network(cfg: TrainConfig, data: Data) -> Model:
    """The network of the run, every analog layer on its own instance of the algorithm."""
    spec = cfg.algorithm_spec()
    devices = cfg.devices()
    io = IO_PRESETS[cfg.io] if spec.analog else IO_PRESETS["perfect"]
    factory = LayerFactory(cfg.algorithm, cfg.algorithm_config(), devices.get("W"), devices.get("A"), io, cfg.seed,
                           dtype=np.dtype(cfg.dtype), count_pulses=cfg.count_pulses and spec.analog,
                           weight_scaling_omega=cfg.weight_scaling_omega, pulse_mode=cfg.pulse_mode or "exact")
    return build_model(cfg.model, factory, data.image_shape or (), vocab=data.vocab or None, hidden=cfg.hidden,
                       dropout=cfg.dropout, rng_dropout=generator(cfg.seed, "dropout"))


# -------------------------------------------------------------------------- one epoch
def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): ``lr * lr_gamma ** (epoch // lr_step)``."""
    return cfg.lr * (cfg.lr_gamma ** (epoch // cfg.lr_step) if cfg.lr_step > 0 else 1.0)


def _check_finite(what: str, arr: np.ndarray, epoch: int, batch: int, model: Model) -> None:
    if np.all(np.isfinite(arr)):
        return
    where = f"at epoch {epoch + 1}, batch {batch + 1}"
    bad = model.bad_array()
    if bad is not None:
        raise NumericalError(f"non-finite values in {schema.key(bad[2], bad[1], bad[0])} {where}")
    if model.first_bad_layer is not None:
        raise NumericalError(f"non-finite output of {model.first_bad_layer} {where}")
    raise NumericalError(f"non-finite {what} {where}")


def _step(cfg: TrainConfig, model: Model, x, y, lr: float, epoch: int, bi: int) -> float:
    z = model.forward(x, True)
    loss, grad = F.cross_entropy(z, y)
    _check_finite("loss", np.asarray(loss), epoch, bi, model)
    model.backward(grad.astype(z.dtype))
    model.update(lr, cfg.grad_clip)
    return float(loss)


def train_epoch(cfg: TrainConfig, model: Model, data: Data, epoch: int, rng_data, progress=None) -> float:
    """One epoch (a new permutation of the training images from ``rng_data``; character
    windows in order); returns the mean training loss."""
    lr = lr_at(cfg, epoch)
    losses = []
    if data.kind == "classifier":
        n = len(data.y_train)
        order = rng_data.permutation(n)
        for bi in range(math.ceil(n / cfg.batch_size)):
            idx = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
            losses.append(_step(cfg, model, data.inputs(data.x_train[idx]), data.y_train[idx], lr, epoch, bi))
            if progress:
                progress(len(idx))
    else:
        for bi in range(data.x_train.shape[0]):
            ids = data.x_train[bi].T          # (T, B)
            losses.append(_step(cfg, model, ids, data.y_train[bi].T, lr, epoch, bi))
            if progress:
                progress(ids.size)
    return float(np.mean(losses)) if losses else float("nan")


def evaluate(model: Model, data: Data, batch: int = 500) -> dict:
    """Test error (%) and loss (nats) of a classifier; loss and perplexity of a character model."""
    if data.kind == "classifier":
        wrong, total, loss_sum = 0, 0, 0.0
        for s in range(0, len(data.y_test), batch):
            z = model.forward(data.inputs(data.x_test[s:s + batch]), False)
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


# -------------------------------------------------------------------------- the run
def run(cfg: TrainConfig, out_dir: str | Path | None = None, resume: bool = False,
        progress: Callable[[int, int], Any] | None = None, interrupt_check: Callable[[], None] | None = None
        ) -> TrainResult:
    """Train (see the module docstring).

    With ``out_dir`` the run writes ``config.toml``, ``metrics.jsonl`` and a checkpoint per
    epoch there, and at the end ``summary.json`` and ``arrays.npz``; nothing is written
    before the data is loaded, the network built and a resume accepted, so a run refused
    for bad input leaves nothing behind. ``resume``: continue the run whose checkpoint is in
    ``out_dir`` (its config must be this one up to ``epochs``). ``progress(epoch, units)``
    returns a bar with ``update(n)`` and ``close()``; ``interrupt_check()`` runs after every
    epoch's checkpoint (it may raise to stop).
    """
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise InputError("resume: needs the run directory (out_dir)")
    if out is not None and not resume and checkpoint.exists(out):
        raise InputError(f"--out {out}: already holds a training run (checkpoint.json); continue it with "
                         f"--resume {out}, or choose another --out")
    data = load_data(cfg)
    model = build_network(cfg, data)
    cfg_hash = config_hash(cfg.hash_fields())
    rng_data = generator(cfg.seed, "data")
    metrics: list[dict] = []
    start, wall0 = 0, 0.0
    if resume:
        start, metrics, wall0, rng_data = _resume(out, model, cfg_hash)
    if out is not None:
        files.prepare_out_dir(out)
        files.write_text(out / "config.toml", to_toml(cfg.to_dict(), header="analogtrain train: resolved config"))
        # metrics.jsonl holds exactly the epochs of the checkpoint (none for a fresh run)
        files.write_text(out / "metrics.jsonl", "".join(dumps(m, indent=None) + "\n" for m in metrics))
    t_run = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        n_units = len(data.y_train) if data.kind == "classifier" else int(data.x_train.size)
        bar = progress(epoch, n_units) if progress else None
        try:
            train_loss = train_epoch(cfg, model, data, epoch, rng_data, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        bad = model.bad_array()
        if bad is not None:   # checked before the checkpoint, so the last good one is kept
            raise NumericalError(f"non-finite values in {schema.key(bad[2], bad[1], bad[0])} after epoch {epoch + 1}")
        ev = evaluate(model, data)
        if not all(math.isfinite(v) for v in ev.values()):
            raise NumericalError(f"non-finite test metrics after epoch {epoch + 1} "
                                 f"(output of {model.first_bad_layer or 'the model'})")
        m = {"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "train_loss": train_loss, **ev,
             "pulses": model.pulse_totals(), "at_bound_pct": model.at_bound_pct(),
             "wall_s": time.perf_counter() - t0, "samples": n_units * (epoch + 1)}
        metrics.append(m)
        if out is not None:
            files.append_jsonl(out / "metrics.jsonl", m)
            drop = getattr(model, "drop", None)
            checkpoint.save(out, epoch, model, rng_data, drop.rng if drop is not None else None, metrics, cfg_hash,
                            wall0 + time.perf_counter() - t_run)
        if interrupt_check is not None:
            interrupt_check()
    return TrainResult(config=cfg, epochs=metrics, wall_s=wall0 + time.perf_counter() - t_run, model=model,
                       data_info=dict(data.info), resumed_from=start)


def _resume(out: Path, model: Model, cfg_hash: str):
    """Load the checkpoint in ``out`` into ``model``: (start epoch, metrics, wall time, data generator)."""
    ck, arrays = checkpoint.load(out)
    if ck.get("config_hash") != cfg_hash:
        raise InputError(f"--resume {out}: the checkpoint belongs to a run with another config "
                         f"(hash {ck.get('config_hash')}, this one {cfg_hash}); only --epochs may change")
    try:
        model.load_state(arrays, ck["layers"])
        rng_data = restore_generator(ck["rng"]["data"])
        drop = getattr(model, "drop", None)
        if drop is not None and ck["rng"].get("dropout"):
            drop.rng = restore_generator(ck["rng"]["dropout"])
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"--resume {out}: checkpoint does not match the model ({e})") from None
    try:
        return int(ck["epoch"]), list(ck.get("metrics", [])), float(ck.get("wall_s", 0.0)), rng_data
    except (TypeError, ValueError) as e:
        raise InputError(f"--resume {out}: checkpoint.json is not an analogtrain checkpoint ({e})") from None
