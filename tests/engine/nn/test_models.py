"""Tests of analogtrain.engine.nn.models: the registry, the networks' structure and
initialisation, the whole model's gradient and the Model bookkeeping (clipping,
diagnostics, state).

Gradients are checked in float64 on the floating-point algorithm against central finite
differences of ``functional.cross_entropy(model.forward(x), y)``, with the tolerance argued
in ``test_functional.py`` (``RTOL = 1e-6``; the losses here are O(1)). The weight gradient
is read from what ``Model.update`` applies: on fp ``W <- W - lr dL/dW`` exactly, so with
``lr = 1`` the step is the gradient up to one rounding of W (~1e-17 absolute). Where a
layer has thousands of weights, the finite differences are taken at random entries (the
norm-wise relative error over those entries; a wrong factor, sign or transposition shows at
any entry it touches).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.train import TrainConfig
from analogtrain.datasets import dataset_spec
from analogtrain.engine.algorithms import ALGORITHMS, algorithm_spec
from analogtrain.engine.devices.array import DeviceArray
from analogtrain.engine.nn import functional as F
from analogtrain.engine.nn.layers import (Activation, AnalogConv2d, AnalogLinear, AnalogLSTM, Dropout, Flatten,
                                          MaxPool2d)
from analogtrain.engine.nn.models import MODELS, LayerFactory, build_lstm, build_model, model_spec
from analogtrain.errors import ConfigError
from analogtrain.seeding import generator, generator_state, restore_generator
from tests.engine.nn.test_functional import RTOL, assert_grad, rel_err

SOFT = DeviceSpec("softbounds")
#: soft bounds with bounds +-2 and no device-to-device spread (so every symmetry point, i.e. every
#: reference, is 0): weights up to |w| = 1.5 are programmed unclipped
WIDE = DeviceSpec("softbounds", (("w_max", 2.0), ("w_min", -2.0), ("w_max_dtod", 0.0), ("w_min_dtod", 0.0),
                                 ("dw_min_dtod", 0.0), ("up_down_dtod", 0.0)))


def factory(alg: str = "fp", *, seed: int = 0, dtype=np.float64, omega: float = 1.0, count: bool = False,
            device: DeviceSpec = SOFT, io: str = "perfect") -> LayerFactory:
    spec = algorithm_spec(alg)
    dev_w = device.resolve("W") if spec.analog else None
    dev_a = device.resolve("A") if "A" in spec.arrays else None
    return LayerFactory(alg, spec.default_config("build-config"), dev_w, dev_a, IO_PRESETS[io], seed, dtype=dtype,
                        count_pulses=count, weight_scaling_omega=omega)


def build(name, alg="fp", *, shape=(1, 4, 4), vocab=5, hidden=3, dropout=0.0, rng_dropout=None, **kw):
    f = factory(alg, **kw)
    if name == "lstm":
        return build_model(name, f, vocab=vocab, hidden=hidden, dropout=dropout,
                           rng_dropout=rng_dropout if rng_dropout is not None else np.random.default_rng(0))
    return build_model(name, f, shape)


def images(rng, B, shape, dtype=np.float64):
    return rng.random((B, *shape)).astype(dtype)


def layer_params(model):
    """(W_a (out, in), bias or None, alpha) of every analog layer, copied."""
    return [(l.alg.weights()[0].copy(), None if getattr(l, "b", None) is None else l.b.copy(), l.alpha)
            for _, l in model.analog_layers()]


def train_step(model, x, y, lr, clip=0.0):
    z = model.forward(x, True)
    loss, g = F.cross_entropy(z, y)
    gx = model.backward(g.astype(z.dtype))
    norm = model.update(lr, clip)
    return z, loss, gx, norm


def fd_at(loss, arr: np.ndarray, idx: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` w.r.t. the entries ``idx`` of ``arr`` (flat, float64, in place)."""
    assert arr.dtype == np.float64 and arr.flags.c_contiguous
    flat = arr.reshape(-1)
    g = np.zeros(len(idx))
    for n, k in enumerate(idx):
        old = flat[k]
        flat[k] = old + eps
        lp = float(loss())
        flat[k] = old - eps
        lm = float(loss())
        flat[k] = old
        g[n] = (lp - lm) / (2 * eps)
    return g


# --------------------------------------------------------------------------- registry
def test_every_registry_entry_is_complete():
    """Every network has a builder, data sets it trains on (known to the data-set registry,
    of the right kind, the first one the default), a positive batch size and lr, and
    family defaults only for known families and keys."""
    assert set(MODELS) == {"fc3", "lenet", "lstm"}
    # the documented defaults (TrainConfig.dataset's help text)
    assert {n: s.datasets[0] for n, s in MODELS.items()} == {"fc3": "mnist", "lenet": "mnist", "lstm": "warpeace"}
    families = {s.family for s in ALGORITHMS.values()}
    for name, spec in MODELS.items():
        assert spec.name == name and spec.doc and callable(spec.build)
        assert model_spec(name) is spec
        assert isinstance(spec.datasets, tuple) and spec.datasets
        for ds in spec.datasets:
            data = dataset_spec(ds)
            assert data.name == ds                                       # canonical names, not aliases
            assert data.kind == ("characters" if name == "lstm" else "images")
            if spec.image_shape is not None:
                assert data.image_shape == spec.image_shape
        assert isinstance(spec.batch_size, int) and spec.batch_size > 0
        assert spec.lr > 0 and spec.grad_clip >= 0
        for fam, d in spec.family_defaults.items():
            assert fam in families and set(d) <= {"lr", "algo_sets"}
            assert d.get("lr", 1.0) > 0
            transfer_keys = algorithm_spec("ttv2").keys()
            assert set(d.get("algo_sets", {})) <= transfer_keys
        # the registry is what a train config falls back to: the first data set is the default
        for alg in ("sgd", "agad"):
            cfg = TrainConfig(model=name, algorithm=alg)
            assert cfg.dataset == spec.datasets[0] and cfg.batch_size == spec.batch_size
            assert cfg.lr == spec.family_defaults.get(algorithm_spec(alg).family, {}).get("lr", spec.lr)
            assert cfg.grad_clip == spec.grad_clip


def test_unknown_model_is_a_config_error_naming_the_field():
    for call in (lambda: model_spec("nope"), lambda: build_model("nope", factory())):
        with pytest.raises(ConfigError) as e:
            call()
        assert e.value.field == "train.model"
        assert str(e.value).startswith("train.model:") and "'nope'" in str(e.value)
        assert all(n in str(e.value) for n in MODELS)
    with pytest.raises(ConfigError) as e:
        model_spec("nope", "x.net")
    assert e.value.field == "x.net"


def test_every_model_builds_for_its_default_dataset():
    """The classifier's outputs are the data set's classes; lstm needs a vocabulary."""
    rng = np.random.default_rng(0)
    for name, spec in MODELS.items():
        data = dataset_spec(spec.datasets[0])
        if data.kind == "images":
            model = build_model(name, factory(dtype=np.float32), data.image_shape)
            assert model.kind == "classifier"
            assert model.forward(images(rng, 2, data.image_shape, np.float32)).shape == (2, data.n_classes)
        else:
            model = build_model(name, factory(dtype=np.float32), vocab=11, rng_dropout=np.random.default_rng(0))
            assert model.kind == "charlm"
            assert model.forward(rng.integers(0, 11, (3, 2))).shape == (3, 2, 11)
    with pytest.raises(ConfigError, match="lstm needs a character data set"):
        build_lstm(factory(), (1, 28, 28))


# --------------------------------------------------------------------------- structure
def _analog(model):
    return [l for l in model.layers if l.analog]


def _check_names(model):
    """analog_layers() = ("layer0", first analog layer), ("layer1", second), ... in layer order."""
    named = model.analog_layers()
    assert [n for n, _ in named] == [f"layer{k}" for k in range(len(named))]
    assert [l for _, l in named] == _analog(model)


@pytest.mark.parametrize("alg,shape,n_in", [("fp", (1, 28, 28), 784), ("fp", (2, 3, 5), 30),
                                             ("fp", (1, 8, 8), 64), ("agad", (1, 8, 8), 64)])
def test_fc3_structure(alg, shape, n_in):
    """Flatten, N-256 sigmoid, 256-128 sigmoid, 128-10 (N = the input size); on agad every
    array is an A and a W tile of that shape."""
    model = build("fc3", alg, shape=shape, dtype=np.float32)
    assert model.name == "fc3" and model.kind == "classifier"
    assert [type(l) for l in model.layers] == [Flatten, AnalogLinear, Activation, AnalogLinear, Activation,
                                                AnalogLinear]
    assert [l.kind for l in model.layers if isinstance(l, Activation)] == ["sigmoid", "sigmoid"]
    shapes = [(256, n_in), (128, 256), (10, 128)]
    for layer, (m, n) in zip(_analog(model), shapes):
        assert layer.alg.weights().shape == (1, m, n)
        assert layer.b.shape == (m,) and layer.b.dtype == np.float32
        assert set(layer.alg.tiles()) == (set() if alg == "fp" else {"A", "W"})
        assert all(t.shape == (1, m, n) for t in layer.alg.tiles().values())
    _check_names(model)
    x = images(np.random.default_rng(0), 3, shape, np.float32)
    assert model.forward(x).shape == (3, 10)


@pytest.mark.parametrize("alg", ["fp", "agad"])
def test_lenet_structure(alg):
    model = build("lenet", alg, shape=(1, 28, 28), dtype=np.float32)
    assert [type(l) for l in model.layers] == [AnalogConv2d, Activation, MaxPool2d, AnalogConv2d, Activation,
                                                MaxPool2d, Activation, Flatten, AnalogLinear, Activation,
                                                AnalogLinear]
    assert {l.kind for l in model.layers if isinstance(l, Activation)} == {"tanh"}
    assert [l.k for l in model.layers if isinstance(l, MaxPool2d)] == [2, 2]
    c1, c2, l1, l2 = _analog(model)
    assert (c1.c, c1.k, c2.c, c2.k) == (1, 5, 16, 5)
    for layer, (m, n) in zip((c1, c2, l1, l2), [(16, 25), (32, 16 * 25), (128, 512), (10, 128)]):
        assert layer.alg.weights().shape == (1, m, n) and layer.b.shape == (m,)
    _check_names(model)
    x = images(np.random.default_rng(0), 2, (1, 28, 28), np.float32)
    h = x
    for layer, want in zip(model.layers[:8], [(16, 24, 24), (16, 24, 24), (16, 12, 12), (32, 8, 8), (32, 8, 8),
                                              (32, 4, 4), (32, 4, 4), (512,)]):
        h = layer.forward(h)
        assert h.shape == (2, *want)
    assert model.forward(x).shape == (2, 10)


@pytest.mark.parametrize("alg", ["fp", "agad"])
@pytest.mark.parametrize("hidden", [3, 64])
def test_lstm_structure(alg, hidden):
    V = 7
    model = build("lstm", alg, vocab=V, hidden=hidden, dropout=0.3, dtype=np.float32)
    assert model.name == "lstm" and model.kind == "charlm"
    assert [type(l) for l in model.layers] == [AnalogLSTM, Dropout, AnalogLSTM, AnalogLinear]
    assert model.layers == [model.lstm1, model.drop, model.lstm2, model.readout]
    assert model.drop.p == 0.3 and model.lstm1.h == model.lstm2.h == hidden
    for layer, (m, n) in zip(_analog(model), [(4 * hidden, V + hidden + 1), (4 * hidden, 2 * hidden + 1),
                                              (V, hidden)]):
        assert layer.alg.weights().shape == (1, m, n)
    assert model.readout.b.shape == (V,)
    _check_names(model)
    ids = np.random.default_rng(0).integers(0, V, (4, 2))
    z = model.forward(ids)
    assert z.shape == (4, 2, V) and z.dtype == np.float32
    assert model.backward(np.ones_like(z)) is None                    # no gradient w.r.t. the ids


def test_charlm_forward_is_the_layers_on_one_hot_inputs():
    """CharLSTM.forward = readout(lstm2(dropout(lstm1(onehot(ids))))): at evaluation without
    dropout, in training with the mask of functional.dropout_forward from the model's generator."""
    V, T, B, p = 5, 4, 3, 0.5
    model = build("lstm", vocab=V, hidden=3, dropout=p, rng_dropout=np.random.default_rng(3))
    ids = np.random.default_rng(1).integers(0, V, (T, B))
    onehot = np.eye(V)[ids]
    for train in (False, True):
        z = model.forward(ids, train=train)
        h = model.lstm1.forward(onehot, train)
        if train:
            h, _ = F.dropout_forward(h, p, np.random.default_rng(3))
        h = model.lstm2.forward(h, train)
        want = model.readout.forward(h.reshape(T * B, -1), train).reshape(T, B, V)
        np.testing.assert_array_equal(z, want)


# --------------------------------------------------------------------------- initialisation
FAN_IN = {"fc3": [16, 256, 128], "lenet": [25, 400, 512, 128], "lstm": [3, 3, 3]}


@pytest.mark.parametrize("name", ["fc3", "lenet", "lstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_init_draws_from_the_init_stream_of_each_layer(name, dtype):
    """Layer k's W0 and then b are U(+-1/sqrt(fan_in)) from generator(seed, "init", k), in that
    order (fan_in: inputs of fc/conv, hidden size for the LSTM gates and read-out, as PyTorch)."""
    seed = 3
    model = build(name, shape=(1, 4, 4) if name == "fc3" else (1, 28, 28), seed=seed, dtype=dtype)
    for k, (fan_in, layer) in enumerate(zip(FAN_IN[name], _analog(model))):
        rng = generator(seed, "init", k)
        bound = 1 / math.sqrt(fan_in)
        w = layer.alg.weights()
        want_w = rng.uniform(-bound, bound, w.shape)
        np.testing.assert_array_equal(w, want_w.astype(dtype))
        assert w.dtype == dtype and layer.alpha == 1.0
        if getattr(layer, "b", None) is not None:
            np.testing.assert_array_equal(layer.b, rng.uniform(-bound, bound, layer.b.shape).astype(dtype))
        if w.size > 100:                                              # the range is used, not exceeded
            assert 0.9 * bound < np.abs(w).max() <= bound


@pytest.mark.parametrize("name", ["fc3", "lstm"])
def test_init_is_reproducible_and_depends_on_the_seed(name):
    """Two builds with the same seed have identical weights, biases and devices; another seed
    gives other weights and biases in every layer."""
    a, b, c = (build(name, "agad", seed=s, dtype=np.float32) for s in (7, 7, 8))
    for (la, lb, lc) in zip(_analog(a), _analog(b), _analog(c)):
        np.testing.assert_array_equal(la.alg.weights(), lb.alg.weights())
        for arr in ("A", "W"):
            np.testing.assert_array_equal(la.alg.tiles()[arr].device.p["w_max"], lb.alg.tiles()[arr].device.p["w_max"])
        assert not np.array_equal(la.alg.weights(), lc.alg.weights())
        if getattr(la, "b", None) is not None:
            np.testing.assert_array_equal(la.b, lb.b)
            assert not np.array_equal(la.b, lc.b)


def test_random_streams_of_each_layer():
    """Layer k's W and A devices are drawn from generator(seed, "device", k, 0 for W / 1 for A);
    its pulse trains and noise start at generator(seed, "pulses" / "noise", k, array index) and
    its choppers at generator(seed, "chopper", k): no two layers share a stream."""
    seed = 4
    model = build("fc3", "agad", seed=seed, dtype=np.float32)
    for k, layer in enumerate(_analog(model)):
        for idx, arr in enumerate(("W", "A")):
            tile = layer.alg.tiles()[arr]
            want = DeviceArray([SOFT.resolve(arr)], tile.shape[1:], [generator(seed, "device", k, idx)])
            for key in ("w_max", "w_min", "scale_up", "scale_down", "ref"):
                np.testing.assert_array_equal(tile.device.p[key], want.p[key], err_msg=f"layer{k}.{arr}.{key}")
            assert generator_state(tile.rng_pulses) == generator_state(generator(seed, "pulses", k, idx))
            assert generator_state(tile.rng_noise) == generator_state(generator(seed, "noise", k, idx))
        assert generator_state(layer.alg.rng_chopper) == generator_state(generator(seed, "chopper", k))


@pytest.mark.parametrize("alg", ["sgd", "agad"])
@pytest.mark.parametrize("omega", [0.5, 1.5])
def test_weight_scaling_programs_w0_over_alpha(alg, omega):
    """omega > 0, analog: alpha = max|W0| / omega, max|W_a| = omega and alpha W_a = W0 (devices
    with bounds +-2 and no spread: nothing is clipped; float64)."""
    seed = 2
    model = build("fc3", alg, seed=seed, omega=omega, device=WIDE)
    for k, layer in enumerate(_analog(model)):
        w_a = layer.alg.weights()
        assert not layer.alg.tiles()["W"].device.has_ref
        bound = 1 / math.sqrt(FAN_IN["fc3"][k])
        w0 = generator(seed, "init", k).uniform(-bound, bound, w_a.shape)
        assert layer.alpha == np.abs(w0).max() / omega
        assert np.abs(w_a).max() == pytest.approx(omega, rel=1e-12)
        np.testing.assert_allclose(layer.alpha * w_a, w0, rtol=1e-12, atol=1e-15)


def test_weight_scaling_is_clipped_by_the_devices():
    """The softbounds preset (bounds 1 +- 30 %) and omega = 1: where W0 / alpha + ref falls outside
    a device's bounds the device sits at the bound, elsewhere alpha W_a = W0 (float32)."""
    seed = 2
    model = build("fc3", "sgd", seed=seed, omega=1.0, dtype=np.float32)
    clipped_somewhere = False
    for k, layer in enumerate(_analog(model)):
        tile = layer.alg.tiles()["W"]
        p = tile.device.p
        w_a = tile.w
        bound = 1 / math.sqrt(FAN_IN["fc3"][k])
        w0 = generator(seed, "init", k).uniform(-bound, bound, w_a.shape)
        target = w0 / layer.alpha + p["ref"]
        # float32 programming: decide in/out only where the target is not within 1e-5 of a bound
        out = (target > p["w_max"] + 1e-5) | (target < p["w_min"] - 1e-5)
        inside = (target < p["w_max"] - 1e-5) & (target > p["w_min"] + 1e-5)
        clipped_somewhere |= bool(out.any())
        g = (w_a + p["ref"])[out]
        assert np.all(np.isclose(g, p["w_max"][out], atol=1e-6) | np.isclose(g, p["w_min"][out], atol=1e-6))
        np.testing.assert_allclose(layer.alpha * w_a[inside], w0[inside], rtol=1e-5, atol=1e-6)
        assert inside.mean() > 0.5
    assert clipped_somewhere


def test_fp_is_never_scaled_and_omega_zero_turns_scaling_off():
    for alg, omega in (("fp", 0.5), ("sgd", 0.0)):
        model = build("fc3", alg, seed=1, omega=omega, device=WIDE)
        for k, layer in enumerate(_analog(model)):
            bound = 1 / math.sqrt(FAN_IN["fc3"][k])
            w0 = generator(1, "init", k).uniform(-bound, bound, layer.alg.weights().shape)
            assert layer.alpha == 1.0
            np.testing.assert_allclose(layer.alg.weights(), w0, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["fc3", "lstm"])
def test_scaled_analog_model_computes_the_fp_model(name):
    """With perfect I/O, unclipped devices and omega = 0.5 the analog model's logits and input
    gradient equal the fp model's (same seed): alpha is applied in every forward and backward."""
    rng = np.random.default_rng(5)
    fp = build(name, "fp", seed=9)
    an = build(name, "sgd", seed=9, omega=0.5, device=WIDE)
    assert all(l.alpha != 1.0 for l in _analog(an))
    if name == "fc3":
        x, y = images(rng, 3, (1, 4, 4)), rng.integers(0, 10, 3)
    else:
        x, y = rng.integers(0, 5, (4, 2)), rng.integers(0, 5, (4, 2))
    z_fp, z_an = fp.forward(x), an.forward(x)
    np.testing.assert_allclose(z_an, z_fp, rtol=1e-10, atol=1e-12)
    g = F.cross_entropy(z_fp, y)[1]
    gx_fp, gx_an = fp.backward(g), an.backward(g)
    if name == "fc3":
        np.testing.assert_allclose(gx_an, gx_fp, rtol=1e-10, atol=1e-13)
    else:                                                             # no input gradient; compare the layers'
        np.testing.assert_allclose(an.lstm1.grad_sq_norm(), fp.lstm1.grad_sq_norm(), rtol=1e-9)


# --------------------------------------------------------------------------- the model's gradient
def _check_weight_grads(model, loss, x, y, n_entries, rng, lr=1.0, prepare=lambda: None):
    """FD at random entries of every analog layer's W_a and bias, then one update(lr) on fp:
    the step / lr at those entries must match (fp: alpha = 1). ``prepare()`` runs before the
    training step's forward (as ``loss()`` must run it before its own)."""
    picks, fds = [], []
    for _, layer in model.analog_layers():
        w = layer.alg.w
        iw = rng.choice(w.size, min(n_entries, w.size), replace=False)
        b = getattr(layer, "b", None)
        ib = None if b is None else rng.choice(b.size, min(n_entries, b.size), replace=False)
        picks.append((iw, ib))
        fds.append((fd_at(loss, w, iw), None if ib is None else fd_at(loss, b, ib)))
    before = layer_params(model)
    prepare()
    train_step(model, x, y, lr)
    for (iw, ib), (fw, fb), (w0, b0, alpha), (_, layer) in zip(picks, fds, before, model.analog_layers()):
        assert alpha == 1.0
        step_w = ((w0 - layer.alg.weights()[0]) / lr).reshape(-1)[iw]
        assert np.linalg.norm(fw) > 1e-8, "degenerate: the loss does not depend on these weights"
        assert rel_err(step_w, fw) < RTOL
        if ib is not None:
            assert rel_err(((b0 - layer.b) / lr)[ib], fb) < RTOL


def test_fc3_gradient_by_finite_differences():
    """fc3 on 4x4 inputs, fp, float64: the input gradient of backward (all 48 entries) and the
    weight/bias steps of update (48 random entries per array) agree with FD of the mean
    cross-entropy."""
    rng = np.random.default_rng(10)
    model = build("fc3", shape=(1, 4, 4), seed=1)
    x = images(rng, 3, (1, 4, 4))
    y = rng.integers(0, 10, 3)
    loss = lambda: F.cross_entropy(model.forward(x), y)[0]  # noqa: E731
    gx = model.backward(F.cross_entropy(model.forward(x), y)[1])
    assert gx.shape == x.shape
    assert_grad(gx, loss, x)
    _check_weight_grads(model, loss, x, y, 48, rng)


def test_lenet_gradient_by_finite_differences():
    """LeNet (28x28, fp, float64): input gradient at 40 random pixels, weights and biases at 16
    random entries per array. The inputs are random, so no two values of a pooling window are
    within the FD step of each other and the max-pooling is differentiable at x."""
    rng = np.random.default_rng(11)
    model = build("lenet", shape=(1, 28, 28), seed=2)
    x = images(rng, 2, (1, 28, 28))
    y = rng.integers(0, 10, 2)
    loss = lambda: F.cross_entropy(model.forward(x), y)[0]  # noqa: E731
    gx = model.backward(F.cross_entropy(model.forward(x), y)[1])
    ix = rng.choice(x.size, 40, replace=False)
    fx = fd_at(loss, x, ix)
    assert np.linalg.norm(fx) > 1e-6 and rel_err(gx.reshape(-1)[ix], fx) < RTOL
    _check_weight_grads(model, loss, x, y, 16, rng)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_lstm_gradient_by_finite_differences(dropout):
    """Char-LSTM (vocab 5, hidden 3, T 4, B 2, fp, float64): every weight of both LSTM arrays, the
    read-out and its bias, from one update, against FD. With dropout the generator is reseeded
    before every forward, so every evaluation uses the same mask (the training step's too)."""
    rng = np.random.default_rng(12)
    model = build("lstm", vocab=5, hidden=3, seed=3, dropout=dropout)

    def reseed():
        model.drop.rng = np.random.default_rng(77)

    def loss():
        reseed()
        return F.cross_entropy(model.forward(ids), y)[0]

    ids = rng.integers(0, 5, (4, 2))
    y = rng.integers(0, 5, (4, 2))
    _check_weight_grads(model, loss, ids, y, 10_000, rng, prepare=reseed)


# --------------------------------------------------------------------------- Model.update(lr, clip)
@pytest.mark.parametrize("name", ["fc3", "lstm"])
def test_update_clips_the_global_gradient_norm(name):
    """Three identical fp models, one batch: without clipping the steps / lr are the gradients
    G_k (weights and biases), N = sqrt(sum_k ||G_k||^2). update(lr, N / 4) returns N and scales
    every layer's step by (N / 4) / (N + 1e-6), so the global norm of the step / lr is N / 4;
    update(lr, 10 N) returns N and leaves the steps bit for bit unclipped."""
    rng = np.random.default_rng(13)
    if name == "fc3":
        x, y = images(rng, 4, (1, 4, 4)), rng.integers(0, 10, 4)
    else:
        x, y = rng.integers(0, 5, (4, 2)), rng.integers(0, 5, (4, 2))
    lr = 0.5

    def steps_and_norm(clip):
        """(per layer (weight step / lr, bias step / lr), returned norm) of a fresh model's update."""
        model = build(name, seed=4)
        before = layer_params(model)
        norm = train_step(model, x, y, lr, clip)[3]
        steps = [((w0 - l.alg.weights()[0]) / lr, None if b0 is None else (b0 - l.b) / lr)
                 for (w0, b0, _), (_, l) in zip(before, model.analog_layers())]
        return steps, norm

    def global_norm(steps):
        return math.sqrt(sum(np.sum(w ** 2) + (0.0 if b is None else np.sum(b ** 2)) for w, b in steps))

    grads, norm0 = steps_and_norm(0.0)
    N = global_norm(grads)
    clipped, norm1 = steps_and_norm(N / 4)
    unclipped, norm2 = steps_and_norm(10 * N)
    norms = [norm0, norm1, norm2]
    steps = [grads, clipped, unclipped]
    assert norms[0] == 0.0                                        # no clipping, no norm computed
    assert norms[1] == pytest.approx(N, rel=1e-9) and norms[2] == pytest.approx(N, rel=1e-9)
    scale = (N / 4) / (N + 1e-6)
    for (gw, gb), (cw, cb), (uw, ub) in zip(*steps):
        np.testing.assert_allclose(cw, scale * gw, rtol=1e-8, atol=1e-13)
        np.testing.assert_array_equal(uw, gw)
        if gb is not None:
            np.testing.assert_allclose(cb, scale * gb, rtol=1e-8, atol=1e-13)
            np.testing.assert_array_equal(ub, gb)
    assert global_norm(clipped) == pytest.approx(scale * N, rel=1e-9) and global_norm(clipped) <= N / 4


# --------------------------------------------------------------------------- diagnostics
def test_at_bound_pct_per_tile():
    """Keys layerK.A / layerK.W; each value is 100 x the fraction of devices whose physical state
    g = w + ref lies within margin x (w_max_ij - w_min_ij) of a bound, rounded to 3 decimals.
    omega = 1 on the preset's spread bounds puts some W devices at a bound; A starts at its
    symmetry point, far from them. margin 0.5 covers every device."""
    model = build("fc3", "agad", seed=5, dtype=np.float32)
    x, y = images(np.random.default_rng(0), 4, (1, 4, 4), np.float32), np.arange(4)
    train_step(model, x, y, 0.5)
    pct = model.at_bound_pct()
    assert list(pct) == [f"layer{k}.{a}" for k in range(3) for a in ("A", "W")]
    for name, layer in model.analog_layers():
        for arr, tile in layer.alg.tiles().items():
            p = tile.device.p
            g = tile.w.astype(np.float64) + p["ref"]
            band = 0.05 * (p["w_max"].astype(np.float64) - p["w_min"])
            want = 100 * np.mean((g >= p["w_max"] - band) | (g <= p["w_min"] + band))
            assert pct[f"{name}.{arr}"] == pytest.approx(want, abs=6e-4)
    assert all(pct[f"layer{k}.W"] > 0 for k in range(3))
    assert all(v == 100.0 for v in model.at_bound_pct(margin=0.5).values())
    assert build("fc3", "fp").at_bound_pct() == {}
    assert list(build("fc3", "sgd", dtype=np.float32).at_bound_pct()) == ["layer0.W", "layer1.W", "layer2.W"]


def test_pulse_totals_are_the_tiles_counters():
    """With pulse counting, layerK.ARRAY = the sum of that tile's up and down counters; for the
    transfer family the W total equals the family's own count of W write pulses (TTv2: no
    warm-up, so W is written within three batches). Without counting (or on fp) there is
    nothing to report."""
    rng = np.random.default_rng(1)
    model = build("fc3", "ttv2", seed=6, dtype=np.float32, count=True)
    for _ in range(3):
        train_step(model, images(rng, 4, (1, 4, 4), np.float32), rng.integers(0, 10, 4), 1.0)
    tot = model.pulse_totals()
    assert list(tot) == [f"layer{k}.{a}" for k in range(3) for a in ("A", "W")]
    for name, layer in model.analog_layers():
        for arr, tile in layer.alg.tiles().items():
            assert tot[f"{name}.{arr}"] == int(tile.up_count.sum() + tile.down_count.sum())
        assert tot[f"{name}.W"] == layer.alg.w_writes
        assert tot[f"{name}.A"] > 0
    assert any(tot[f"layer{k}.W"] > 0 for k in range(3))
    assert build("fc3", "agad", dtype=np.float32).pulse_totals() == {}
    assert build("fc3", "fp", count=True).pulse_totals() == {}


def _poke(arr, value):
    """Set one element of ``arr`` to ``value``; returns a function that restores it."""
    flat = arr.reshape(-1)
    assert np.shares_memory(flat, arr)
    old = flat[1].copy()
    flat[1] = value

    def undo():
        flat[1] = old
    return undo


def test_bad_array_names_the_first_non_finite_array():
    model = build("fc3", "agad", seed=7, dtype=np.float32)
    train_step(model, images(np.random.default_rng(0), 2, (1, 4, 4), np.float32), np.arange(2), 0.5)
    assert model.bad_array() is None
    l0, l1, l2 = _analog(model)
    cases = [
        (l1.alg.W.w, np.nan, ("layer1", "W", "weights")),
        (l1.alg.A.w, np.inf, ("layer1", "A", "weights")),
        (l1.alg.H, np.nan, ("layer1", None, "H")),
        (l2.alg.P_ref, -np.inf, ("layer2", None, "P_ref")),
        (l0.b, np.nan, ("layer0", None, "bias")),
    ]
    for arr, value, want in cases:
        undo = _poke(arr, value)
        assert model.bad_array() == want
        undo()
        assert model.bad_array() is None
    # two at once: the first layer wins
    undo2, undo1 = _poke(l2.alg.W.w, np.nan), _poke(l1.b, np.nan)
    assert model.bad_array() == ("layer1", None, "bias")
    undo1()
    undo2()
    # fp: the digital weights count as W.weights
    fp = build("fc3")
    undo = _poke(_analog(fp)[2].alg.w, np.nan)
    assert fp.bad_array() == ("layer2", "W", "weights")
    undo()
    assert fp.bad_array() is None
    # write noise: the noise-free persistent weights are checked too
    noisy = build("fc3", "sgd", dtype=np.float32, device=DeviceSpec("softbounds", (("write_noise_std", 1.0),)))
    tile = _analog(noisy)[0].alg.tile
    assert tile.w_persistent is not None
    _poke(tile.w_persistent, np.nan)
    assert noisy.bad_array() == ("layer0", "W", "persistent_weights")


def test_layer_name_and_first_bad_layer():
    model = build("fc3")
    assert [model.layer_name(i) for i in range(6)] == [
        "layer 0 (Flatten)", "layer0 (AnalogLinear)", "layer 2 (Activation)", "layer1 (AnalogLinear)",
        "layer 4 (Activation)", "layer2 (AnalogLinear)"]
    lenet = build("lenet", shape=(1, 28, 28))
    assert lenet.layer_name(0) == "layer0 (AnalogConv2d)" and lenet.layer_name(3) == "layer1 (AnalogConv2d)"
    assert lenet.layer_name(5) == "layer 5 (MaxPool2d)" and lenet.layer_name(8) == "layer2 (AnalogLinear)"
    x = images(np.random.default_rng(0), 2, (1, 4, 4))
    model.forward(x)
    assert model.first_bad_layer is None
    undo = _poke(_analog(model)[1].alg.w, np.nan)
    with np.errstate(invalid="ignore"):
        model.forward(x)
        assert model.first_bad_layer == "layer1 (AnalogLinear)"
        undo()
        x[0, 0, 0, 0] = np.inf
        model.forward(x)
        assert model.first_bad_layer == "layer 0 (Flatten)"


# --------------------------------------------------------------------------- state round trip
def _assert_states_equal(a, b):
    arrs_a, info_a = a
    arrs_b, info_b = b
    assert sorted(arrs_a) == sorted(arrs_b)
    for k in arrs_a:
        np.testing.assert_array_equal(arrs_a[k], arrs_b[k], err_msg=k)
    assert info_a == info_b


@pytest.mark.parametrize("name", ["fc3", "lstm"])
def test_model_state_round_trip_continues_bit_for_bit(name):
    """agad with pulse counting and noisy I/O: state() after two batches, loaded into a freshly
    built model, restores every layer exactly; both then train two more batches (with gradient
    clipping) to identical logits, norms and states. Model.state does not hold the dropout
    stream (train.py checkpoints it with the data stream), so it is carried over the same way."""
    rng = np.random.default_rng(14)
    if name == "fc3":
        batches = [(images(rng, 4, (1, 4, 4), np.float32), rng.integers(0, 10, 4)) for _ in range(4)]
        kw = {}
    else:
        batches = [(rng.integers(0, 5, (4, 2)), rng.integers(0, 5, (4, 2))) for _ in range(4)]
        kw = {"dropout": 0.5}

    def make():
        return build(name, "agad", seed=8, dtype=np.float32, count=True, io="default",
                     rng_dropout=generator(8, "dropout"), **kw)

    a = make()
    for x, y in batches[:2]:
        train_step(a, x, y, 0.5)
    snap = a.state()
    n_analog = len(a.analog_layers())
    assert set(snap[1]) == {f"layer{k}" for k in range(n_analog)}
    assert all(k.split(".", 1)[0] in snap[1] for k in snap[0])
    assert f"layer{n_analog - 1}.bias" in snap[0] and "layer0.H" in snap[0]
    b = make()
    fresh = b.state()
    b.load_state(*snap)
    if name == "lstm":
        b.drop.rng = restore_generator(generator_state(a.drop.rng))
    _assert_states_equal(b.state(), snap)
    with pytest.raises(AssertionError):
        _assert_states_equal(fresh, snap)
    for x, y in batches[2:]:
        za, la, _, na = train_step(a, x, y, 0.5, clip=1.0)
        zb, lb, _, nb = train_step(b, x, y, 0.5, clip=1.0)
        np.testing.assert_array_equal(za, zb)
        assert la == lb and na == nb and na > 0
    _assert_states_equal(a.state(), b.state())
