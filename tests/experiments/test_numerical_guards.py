"""Numerical guards: NaN injected into a running ``train`` or ``program`` stops the run with
NumericalError naming the step (epoch and batch for train), the layer and the array where
it can; the last good checkpoint (an earlier epoch) stays intact and loadable, and
metrics.jsonl holds only complete lines.

NaN is injected by monkeypatching: a weight element set to NaN after the k-th mini-batch
update (``Model.update``), a layer's forward returning NaN at the k-th training call, or a
stacked algorithm of ``program`` whose forward/update is wrapped. Training runs on a
synthetic 8x8-digits file (100 training samples, batch 10: 10 batches per epoch).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

import analogtrain.experiments.program as P
import analogtrain.experiments.train as T
from analogtrain.cli import main
from analogtrain.config.program import ProgramConfig
from analogtrain.config.train import TrainConfig
from analogtrain.experiments import checkpoint
from analogtrain.results.arrays import algorithm_arrays
from analogtrain.errors import NumericalError
from analogtrain.engine.nn import layers as L
from analogtrain.engine.nn import models as M

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

BATCHES = 10          # per epoch: 100 samples / batch 10


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 10, 1797)
    proto = rng.integers(0, 17, (10, 64))
    x = np.clip(proto[y] + rng.integers(-3, 4, (1797, 64)), 0, 16)
    root = tmp_path_factory.mktemp("digits")
    d = root / "sklearn_digits"
    d.mkdir()
    with gzip.open(d / "digits.csv.gz", "wt") as f:
        f.write("\n".join(",".join(str(int(v)) for v in row) + f",{int(lab)}" for row, lab in zip(x, y)) + "\n")
    return root


def train_cfg(digits_dir: Path, **kw) -> TrainConfig:
    base = dict(model="fc3", dataset="digits", algorithm="agad", epochs=3, batch_size=10, lr=0.5, limit_train=100,
                limit_test=50, data_dir=str(digits_dir), count_pulses=True)
    base.update(kw)
    return TrainConfig(**base)


def nan_after_update(monkeypatch, k: int, layer: int, array: str) -> None:
    """After the k-th mini-batch update (1-based, counted over the run) set one element of the
    array ``array`` (schema name) of the algorithm of ``model.layers[layer]`` (a position) to NaN."""
    orig = M.Model.update
    count = {"n": 0}

    def update(self, lr, clip=0.0):
        r = orig(self, lr, clip)
        count["n"] += 1
        if count["n"] == k:
            a = algorithm_arrays(self.layers[layer].alg)[array]
            a[(0,) * a.ndim] = np.nan
        return r

    monkeypatch.setattr(M.Model, "update", update)


def nan_forward(monkeypatch, k: int, layer: int) -> None:
    """The k-th training-mode forward of ``model.layers[layer]`` returns NaN."""
    built = {}
    orig_build, orig_forward = T.build_network, L.AnalogLinear.forward
    count = {"n": 0}

    def build(cfg, data):
        r = orig_build(cfg, data)
        built["model"] = r
        return r

    def forward(self, x, train=True):
        y = orig_forward(self, x, train)
        if train and "model" in built and self is built["model"].layers[layer]:
            count["n"] += 1
            if count["n"] == k:
                y = np.full_like(y, np.nan)
        return y

    monkeypatch.setattr(T, "build_network", build)
    monkeypatch.setattr(L.AnalogLinear, "forward", forward)


def where(k: int) -> tuple[int, int]:
    """(epoch, batch), 1-based, of the mini-batch after the k-th update."""
    return k // BATCHES + 1, k % BATCHES + 1


def assert_last_good_checkpoint(out: Path, cfg: TrainConfig, epoch: int, reference: Path) -> None:
    """checkpoint.json at ``epoch``, its arrays finite and equal to an uninterrupted run's
    checkpoint of that epoch, loadable and resumable; metrics.jsonl complete lines only."""
    ck, arrays = checkpoint.load(out)
    assert ck["epoch"] == epoch
    assert [p.name for p in out.glob("checkpoint-epoch*.npz")] == [f"checkpoint-epoch{epoch:04d}.npz"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    for k, v in arrays.items():
        if v.dtype.kind == "f":
            assert np.all(np.isfinite(v)), f"non-finite {k} in the kept checkpoint"
    _, ref_arrays = checkpoint.load(reference)
    assert sorted(arrays) == sorted(ref_arrays)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], ref_arrays[k], err_msg=f"checkpoint array {k} differs")
    raw = (out / "metrics.jsonl").read_text()
    assert raw.endswith("\n")
    lines = raw.splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, epoch + 1))
    # loadable: the run resumes from it (no more injection) to the end
    resumed = T.run(dataclasses.replace(cfg, epochs=epoch + 1), out_dir=out, resume=True)
    assert resumed.resumed_from == epoch and len(resumed.epochs) == epoch + 1


@pytest.fixture(scope="module")
def reference_run(digits_dir, tmp_path_factory) -> Path:
    """An uninterrupted 1-epoch run: the checkpoint a failed epoch-2 run must keep."""
    out = tmp_path_factory.mktemp("reference")
    T.run(train_cfg(digits_dir, epochs=1), out_dir=out)
    return out


# ============================================================================ train
#: fc3's layers: Flatten, Linear (analog layer0), Sigmoid, Linear (layer1), Sigmoid, Linear (layer2)
@pytest.mark.parametrize("k, position, name, array", [(13, 3, "layer1", "W.weights"), (12, 1, "layer0", "W.weights"),
                                                       (15, 5, "layer2", "W.weights")],
                         ids=["layer1-epoch2-batch4", "layer0-epoch2-batch3", "layer2-epoch2-batch6"])
def test_train_nan_weight_names_epoch_batch_layer_array(digits_dir, reference_run, tmp_path, monkeypatch, k, position,
                                                        name, array):
    cfg = train_cfg(digits_dir)
    nan_after_update(monkeypatch, k, position, array)
    with pytest.raises(NumericalError) as ei:
        T.run(cfg, out_dir=tmp_path)
    msg = str(ei.value)
    epoch, batch = where(k)
    assert f"epoch {epoch}" in msg and f"batch {batch}" in msg, msg
    assert f"{name}.{array}" in msg, msg
    monkeypatch.undo()
    assert_last_good_checkpoint(tmp_path, cfg, 1, reference_run)


def test_train_nan_forward_names_epoch_and_batch(digits_dir, reference_run, tmp_path, monkeypatch):
    cfg = train_cfg(digits_dir)
    nan_forward(monkeypatch, 13, layer=3)           # the 13th training forward = epoch 2, batch 3
    with pytest.raises(NumericalError) as ei:
        T.run(cfg, out_dir=tmp_path)
    msg = str(ei.value)
    assert "epoch 2" in msg and "batch 3" in msg, msg
    monkeypatch.undo()
    assert_last_good_checkpoint(tmp_path, cfg, 1, reference_run)


def test_train_nan_forward_names_the_layer(digits_dir, tmp_path, monkeypatch):
    nan_forward(monkeypatch, 13, layer=3)          # position 3: the second linear layer, analog layer1
    with pytest.raises(NumericalError) as ei:
        T.run(train_cfg(digits_dir), out_dir=tmp_path)
    assert "layer1 (AnalogLinear)" in str(ei.value), str(ei.value)


def test_train_nan_at_end_of_epoch_keeps_previous_checkpoint(digits_dir, reference_run, tmp_path, monkeypatch):
    """NaN in W after the last batch of epoch 2: caught by the evaluation, epoch 2 is not saved."""
    cfg = train_cfg(digits_dir)
    nan_after_update(monkeypatch, 20, 3, "W.weights")
    with pytest.raises(NumericalError) as ei:
        T.run(cfg, out_dir=tmp_path)
    assert "epoch 2" in str(ei.value)
    monkeypatch.undo()
    assert_last_good_checkpoint(tmp_path, cfg, 1, reference_run)


def test_train_nan_at_end_of_epoch_names_layer_and_array(digits_dir, tmp_path, monkeypatch):
    nan_after_update(monkeypatch, 20, 3, "W.weights")
    with pytest.raises(NumericalError) as ei:
        T.run(train_cfg(digits_dir), out_dir=tmp_path)
    assert "layer1.W.weights" in str(ei.value), str(ei.value)


@pytest.mark.parametrize("array", ["A.weights", "H"])
def test_train_nan_in_hidden_array_is_caught(digits_dir, tmp_path, monkeypatch, array):
    nan_after_update(monkeypatch, 20, 3, array)
    try:
        T.run(train_cfg(digits_dir), out_dir=tmp_path)
    except NumericalError as e:
        assert "epoch 2" in str(e) and f"layer1.{array}" in str(e)
        ck, arrays = checkpoint.load(tmp_path)
        assert ck["epoch"] == 1
        return
    _, arrays = checkpoint.load(tmp_path)
    bad = [k for k, v in arrays.items() if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
    assert bad, "the injection did not reach the checkpoint (test broken)"
    raise AssertionError(f"no NumericalError; the final checkpoint holds non-finite {bad}")


def test_train_lstm_nan_forward_names_epoch_and_batch(tmp_path, monkeypatch):
    """The character LSTM path (analog LSTM layer) of the guard."""
    d = tmp_path / "data" / "warpeace"
    d.mkdir(parents=True)
    (d / "warpeace_input.txt").write_bytes(b"the quick brown fox jumps over the lazy dog. " * 60)
    cfg = TrainConfig(model="lstm", dataset="warpeace", algorithm="agad", epochs=2, batch_size=2, lr=0.1,
                        seq_len=10, hidden=4, limit_train=400, limit_test=100, grad_clip=1.0,
                        data_dir=str(tmp_path / "data"), verify_data=False)
    orig = M.Model.update
    count = {"n": 0}
    n_batches = T.load_data(cfg).x_train.shape[0]

    def update(self, lr, clip=0.0):
        r = orig(self, lr, clip)
        count["n"] += 1
        if count["n"] == n_batches + 2:           # epoch 2, after its second batch
            for _, layer in self.analog_layers():
                w = algorithm_arrays(layer.alg)["W.weights"]
                w[(0,) * w.ndim] = np.nan
                break
        return r

    monkeypatch.setattr(M.Model, "update", update)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NumericalError) as ei:
        T.run(cfg, out_dir=out)
    msg = str(ei.value)
    assert "epoch 2" in msg and "batch 3" in msg and "W.weights" in msg, msg
    ck, arrays = checkpoint.load(out)
    assert ck["epoch"] == 1
    assert all(np.all(np.isfinite(v)) for v in arrays.values() if v.dtype.kind == "f")
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]


def test_train_cli_nan_exit_1_one_line_checkpoint_kept(digits_dir, reference_run, tmp_path, monkeypatch, capsys):
    """Through the CLI: exit 1, one line naming epoch and batch, no final outputs, epoch-1 checkpoint kept."""
    monkeypatch.delenv("ANALOGTRAIN_DEBUG", raising=False)
    nan_after_update(monkeypatch, 13, 3, "W.weights")
    out = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--data-dir", str(digits_dir), "--algorithm", "agad", "--epochs", "3",
            "--batch-size", "10", "--lr", "0.5", "--limit-train", "100", "--limit-test", "50", "--count-pulses",
            "--no-progress", "--out", str(out)]
    capsys.readouterr()
    code = main(args)
    cap = capsys.readouterr()
    assert code == 1
    lines = cap.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err + cap.out, cap.err
    assert re.search(r"epoch 2\b.*batch 4\b", lines[0]) and "layer1.W.weights" in lines[0], lines[0]
    assert not (out / "summary.json").exists() and not (out / "arrays.npz").exists()
    monkeypatch.undo()
    assert_last_good_checkpoint(out, train_cfg(digits_dir), 1, reference_run)


# ============================================================================ program
def wrap_stack(monkeypatch, mode: str, step: int, array: str = "W.weights") -> None:
    """Wrap every stacked algorithm of ``program``: 'forward' -> the forward of ``step`` (1-based)
    returns NaN; 'array' -> after the update of ``step`` one element of ``array`` becomes NaN."""
    orig = P.build_stack

    def build_stack(*a, **kw):
        alg = orig(*a, **kw)
        n = {"done": 0}
        forward, update = alg.forward, alg.update

        def fwd(x):
            y = forward(x)
            if mode == "forward" and n["done"] == step - 1:
                y = np.full_like(y, np.nan)
            return y

        def upd(x, d, lr):
            update(x, d, lr)
            n["done"] += 1
            if mode == "array" and n["done"] == step:
                a = algorithm_arrays(alg)[array]
                a[(0,) * a.ndim] = np.nan

        alg.forward, alg.update = fwd, upd
        return alg

    monkeypatch.setattr(P, "build_stack", build_stack)


PROGRAM_CFG = dict(algorithm=("agad",), n_states=(20,), sigma_r=(0.0,), seeds=1, steps=50, trace_every=10)


def test_program_nan_forward_names_step_and_replica(monkeypatch):
    wrap_stack(monkeypatch, "forward", 7)
    with pytest.raises(NumericalError) as ei:
        P.run(ProgramConfig(**PROGRAM_CFG))
    msg = str(ei.value)
    assert "step 7" in msg and "replica 0" in msg and "agad" in msg, msg


def test_program_nan_weights_at_trace_step_names_array(monkeypatch):
    wrap_stack(monkeypatch, "array", 50, "W.weights")     # the last step is a trace step
    with pytest.raises(NumericalError) as ei:
        P.run(ProgramConfig(**PROGRAM_CFG))
    msg = str(ei.value)
    assert "step 50" in msg and re.search(r"\bW\b", msg) and "replica 0" in msg, msg


def test_program_nan_weights_mid_run_stops_at_next_step(monkeypatch):
    wrap_stack(monkeypatch, "array", 7, "W.weights")
    with pytest.raises(NumericalError) as ei:
        P.run(ProgramConfig(**PROGRAM_CFG))
    assert "step 8" in str(ei.value), str(ei.value)


def test_program_nan_weights_mid_run_names_array(monkeypatch):
    wrap_stack(monkeypatch, "array", 7, "W.weights")
    with pytest.raises(NumericalError) as ei:
        P.run(ProgramConfig(**PROGRAM_CFG))
    assert re.search(r"\bW\b", str(ei.value)), str(ei.value)


@pytest.mark.parametrize("array", ["A.weights", "H"])
def test_program_nan_in_hidden_array_is_caught(monkeypatch, array):
    wrap_stack(monkeypatch, "array", 7, array)
    try:
        res = P.run(ProgramConfig(**PROGRAM_CFG))
    except NumericalError as e:
        assert "step" in str(e) and array.split(".")[0] in str(e)
        return
    bad = [k for k, v in res.arrays().items() if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
    assert bad, "the injection did not reach the result (test broken)"
    raise AssertionError(f"no NumericalError; the result holds non-finite {bad}")


def test_program_cli_nan_exit_1_one_line_no_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ANALOGTRAIN_DEBUG", raising=False)
    wrap_stack(monkeypatch, "forward", 7)
    out = tmp_path / "prog"
    capsys.readouterr()
    code = main(["program", "--algorithm", "agad", "--n-states", "20", "--sigma-r", "0", "--seeds", "1", "--steps",
                 "50", "--trace-every", "10", "--no-progress", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 1
    lines = cap.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err + cap.out, cap.err
    assert "step 7" in lines[0] and "replica 0" in lines[0], lines[0]
    assert cap.out == ""
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
