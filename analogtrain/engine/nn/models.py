"""The networks and their registry: ``fc3`` (N-256-128-10, sigmoid), ``lenet`` (conv 16/32
5x5, tanh, max-pool, 512-128-10) and ``lstm`` (2 layers, hidden 64, one-hot characters,
linear read-out); every weight matrix on its own analog algorithm instance (docs/nn.md §9).

Initialisation (as PyTorch): weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
drawn from the ``init`` stream of layer k; device draws from ``("device", k, array)``;
pulses, noise and choppers from streams of stack k (k counts the analog layers in build
order).

:data:`MODELS` holds one :class:`ModelSpec` per network: its builder, the data sets it
trains on (default first) and its default training settings, per algorithm family where
they differ (measured: see docs/results.md). Adding a network is one builder function
and one entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from analogtrain.engine.algorithms import algorithm_spec, build_stack
from analogtrain.config.device import PulsedDevice
from analogtrain.config.io import IOConfig
from analogtrain.engine.devices.array import at_bound_fraction
from analogtrain.errors import ConfigError
from analogtrain.seeding import generator
from analogtrain.engine.nn.layers import (Activation, AnalogConv2d, AnalogLinear, AnalogLSTM, Dropout, Flatten, Layer, MaxPool2d)



@dataclass
class LayerFactory:
    """Builds the algorithm of each analog layer from one set of settings."""

    algorithm: str
    alg_cfg: Any
    dev_w: PulsedDevice
    dev_a: PulsedDevice | None
    io: IOConfig
    seed: int
    dtype: Any = np.float32
    count_pulses: bool = False
    weight_scaling_omega: float = 1.0
    index: int = 0
    pulse_mode: str = "exact"

    def make(self, out_size: int, in_size: int, init_fan_in: int, bias: bool, extra_in: int = 0):
        """(algorithm, bias or None, alpha) for an (out, in) array; W and b ~ U(+-1/sqrt(fan_in)).

        With ``weight_scaling_omega`` > 0 (aihwkit's mapping), the array is programmed with
        W0 / alpha, alpha = max|W0| / omega, and the layer multiplies its output by alpha.
        The floating-point baseline is never scaled.
        """
        k = self.index
        self.index += 1
        alg = build_stack([self.algorithm], [self.alg_cfg], [self.dev_w],
                          [self.dev_a] if self.dev_a is not None else None, out_size, in_size, io=self.io,
                          seed=self.seed, replica_seeds=[self.seed], stack_id=k, dtype=self.dtype,
                          count_pulses=self.count_pulses, device_path=(k,), pulse_mode=self.pulse_mode)
        rng = generator(self.seed, "init", k)
        bound = 1.0 / np.sqrt(init_fan_in)
        w0 = rng.uniform(-bound, bound, (1, out_size, in_size))
        b = rng.uniform(-bound, bound, out_size).astype(self.dtype) if bias else None
        alpha = 1.0
        if self.weight_scaling_omega > 0 and algorithm_spec(self.algorithm).analog:
            alpha = float(np.abs(w0).max() / self.weight_scaling_omega)
        alg.set_weights((w0 / alpha).astype(self.dtype))
        return alg, b, alpha


class Model:
    """A stack of layers; ``kind`` is 'classifier' (log-softmax + NLL) or 'charlm'."""

    def __init__(self, name: str, layers: Sequence[Layer], kind: str):
        self.name, self.layers, self.kind = name, list(layers), kind
        self.first_bad_layer: str | None = None

    def forward(self, x, train=True):
        self.first_bad_layer = None
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, train)
            if self.first_bad_layer is None and not np.isfinite(x).all():
                self.first_bad_layer = self.layer_name(i)
        return x

    def layer_name(self, i: int) -> str:
        """``"layerK (AnalogLinear)"`` for the K-th analog layer, ``"layer i (Activation)"`` (its position)
        for the others."""
        layer = self.layers[i]
        if layer.analog:
            k = sum(1 for l in self.layers[:i] if l.analog)
            return f"layer{k} ({type(layer).__name__})"
        return f"layer {i} ({type(layer).__name__})"

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def update(self, lr: float, clip: float = 0.0) -> float:
        """Apply the batch's updates; with ``clip > 0`` scale all gradients so that their
        global L2 norm is at most ``clip`` (as ``clip_grad_norm``). Returns the norm."""
        scale, norm = 1.0, 0.0
        if clip > 0:
            norm = float(np.sqrt(sum(l.grad_sq_norm() for l in self.layers)))
            scale = min(1.0, clip / (norm + 1e-6))
        for layer in self.layers:
            layer.update(lr, scale)
        return norm

    def analog_layers(self) -> list[tuple[str, Layer]]:
        """``("layerK", layer)`` of every analog layer, K counting the analog layers in order."""
        return [(f"layer{k}", l) for k, l in enumerate(l for l in self.layers if l.analog)]

    def state(self) -> tuple[dict, dict]:
        arrays, info = {}, {}
        for name, layer in self.analog_layers():
            a, i = layer.state()
            arrays.update({f"{name}.{k}": v for k, v in a.items()})
            info[name] = i
        return arrays, info

    def load_state(self, arrays: dict, info: dict) -> None:
        for name, layer in self.analog_layers():
            prefix = name + "."
            layer.load_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}, info[name])

    def at_bound_pct(self, margin: float = 0.05) -> dict:
        """{'layer0.W': %, 'layer0.A': %, ...}: the percentage of devices of every device array
        within ``margin`` of their range from a bound (see ``devices.array.at_bound_fraction``)."""
        out = {}
        for name, layer in self.analog_layers():
            for array, tile in sorted(layer.alg.tiles().items()):
                p = tile.device.p
                frac = at_bound_fraction(tile.w, p["ref"], p["w_min"], p["w_max"], margin)
                out[f"{name}.{array}"] = round(100.0 * frac, 3)
        return out

    def pulse_totals(self) -> dict:
        out = {}
        for name, layer in self.analog_layers():
            for arr, n in layer.alg.pulse_totals().items():
                out[f"{name}.{arr}"] = n
        return out

    def bad_array(self) -> tuple[str, str | None, str] | None:
        """``(layer, array, field)`` of the first array holding NaN or inf (a device array's
        weights: ``("layer0", "W", "weights")``; digital state: ``("layer0", None, "H")``), or None."""
        for name, layer in self.analog_layers():
            alg = layer.alg
            named = [((a, "weights"), t.w) for a, t in alg.tiles().items()]
            named += [((a, "persistent_weights"), t.w_persistent) for a, t in alg.tiles().items()
                      if t.w_persistent is not None]
            named += [((None, f), v) for f, v in alg.hidden().items()]
            if not alg.tiles():
                named.append((("W", "weights"), alg.weights()))
            if getattr(layer, "b", None) is not None:
                named.append(((None, "bias"), layer.b))
            for (array, field_name), v in named:
                v = np.asarray(v)
                if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
                    return name, array, field_name
        return None


def build_fc3(f: LayerFactory, input_shape: Sequence[int], **_) -> Model:
    """N-256-128-10 with sigmoid activations; N = the number of input values (784 for MNIST)."""
    n_inputs = int(math.prod(input_shape))
    layers: list[Layer] = [Flatten()]
    for n_in, n_out, act in ((n_inputs, 256, True), (256, 128, True), (128, 10, False)):
        alg, b, a = f.make(n_out, n_in, n_in, bias=True)
        layers.append(AnalogLinear(alg, b, a))
        if act:
            layers.append(Activation("sigmoid"))
    return Model("fc3", layers, "classifier")


def build_lenet(f: LayerFactory, input_shape: Sequence[int], **_) -> Model:
    """conv 16 5x5 - tanh - maxpool 2 - conv 32 5x5 - tanh - maxpool 2 - tanh - 512-128-10 (tanh)."""
    c1, b1, a1 = f.make(16, 1 * 25, 25, bias=True)
    c2, b2, a2 = f.make(32, 16 * 25, 16 * 25, bias=True)
    l1, b3, a3 = f.make(128, 512, 512, bias=True)
    l2, b4, a4 = f.make(10, 128, 128, bias=True)
    layers = [AnalogConv2d(c1, b1, 1, 5, a1), Activation("tanh"), MaxPool2d(2),
              AnalogConv2d(c2, b2, 16, 5, a2), Activation("tanh"), MaxPool2d(2), Activation("tanh"), Flatten(),
              AnalogLinear(l1, b3, a3), Activation("tanh"), AnalogLinear(l2, b4, a4)]
    return Model("lenet", layers, "classifier")


class CharLSTM(Model):
    """Two AnalogLSTM layers (hidden 64, dropout between them) and a linear read-out with a
    digital bias; one-hot inputs. Forward takes ids (T, B) and returns logits (T, B, V)."""

    def __init__(self, f: LayerFactory, vocab: int, hidden: int, dropout: float, rng_dropout):
        self.vocab, self.hidden = vocab, hidden
        a1, _, s1 = f.make(4 * hidden, vocab + hidden + 1, hidden, bias=False)
        a2, _, s2 = f.make(4 * hidden, hidden + hidden + 1, hidden, bias=False)
        ro, b, s3 = f.make(vocab, hidden, hidden, bias=True)
        self.lstm1, self.lstm2 = AnalogLSTM(a1, hidden, s1), AnalogLSTM(a2, hidden, s2)
        self.drop = Dropout(dropout, rng_dropout)
        self.readout = AnalogLinear(ro, b, s3)
        super().__init__("lstm", [self.lstm1, self.drop, self.lstm2, self.readout], "charlm")

    def forward(self, ids, train=True):
        self.first_bad_layer = None
        T, B = ids.shape
        x = np.zeros((T, B, self.vocab), dtype=self.readout.b.dtype)
        np.put_along_axis(x, ids[:, :, None], 1.0, axis=2)
        h = self.lstm1.forward(x, train)
        h = self.drop.forward(h, train)
        h = self.lstm2.forward(h, train)
        y = self.readout.forward(h.reshape(T * B, -1), train)
        if not np.isfinite(y).all():
            self.first_bad_layer = "the LSTM layers or the read-out"
        return y.reshape(T, B, -1)

    def backward(self, grad):
        T, B, V = grad.shape
        g = self.readout.backward(grad.reshape(T * B, V)).reshape(T, B, -1)
        g = self.lstm2.backward(g)
        g = self.drop.backward(g)
        self.lstm1.backward(g)
        return None


def build_lstm(f: LayerFactory, input_shape: Sequence[int] = (), *, vocab: int | None = None, hidden: int = 64,
               dropout: float = 0.2, rng_dropout=None, **_) -> Model:
    if vocab is None:
        raise ConfigError("model lstm needs a character data set (dataset = warpeace)")
    return CharLSTM(f, vocab, hidden, dropout, rng_dropout)


# ----------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ModelSpec:
    """One network: its builder and its default training settings.

    ``build(factory, input_shape, vocab=, hidden=, dropout=, rng_dropout=)`` returns the
    :class:`Model`; ``datasets`` are the data sets it trains on (the first is the default);
    ``image_shape`` is the input image shape (C, H, W) it needs, or None when any input
    size works; ``family_defaults`` maps an algorithm family to settings that replace the
    model's defaults for it (``lr``, and ``algo_sets``: algorithm parameters).
    """

    name: str
    doc: str
    build: Callable[..., Model]
    datasets: tuple[str, ...]
    batch_size: int
    lr: float
    grad_clip: float = 0.0
    image_shape: tuple[int, ...] | None = None
    family_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


#: the networks (docs/nn.md §9; defaults after aihwkit's examples, the transfer family's measured)
MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    ModelSpec("fc3", "3 fully connected layers N-256-128-10, sigmoid (aihwkit example 3)", build_fc3,
              datasets=("mnist", "digits"), batch_size=10, lr=0.5,
              # the lr scales the transfer to W (lambda_H); 0.1 measured best for fc3 (docs/results.md)
              family_defaults={"transfer": {"lr": 0.1}}),
    ModelSpec("lenet", "LeNet-5: two 5x5 convolutions (16, 32 filters), max-pooling, 512-128-10, tanh "
                       "(aihwkit example 4)", build_lenet, datasets=("mnist",), batch_size=8, lr=0.1,
              image_shape=(1, 28, 28),
              # a convolution reads a column of A after every image patch (23 reads per column and image
              # in the first layer): the transfer threshold scales with the column count
              family_defaults={"transfer": {"lr": 0.05, "algo_sets": {"auto_granularity": 1000.0}}}),
    ModelSpec("lstm", "2-layer LSTM (hidden 64, dropout between the layers) on one-hot characters, linear "
                      "read-out (aihwkit example 22)", build_lstm, datasets=("warpeace",), batch_size=32,
              lr=0.1, grad_clip=1.0),
)}


def model_spec(name: str, field_name: str = "train.model") -> ModelSpec:
    """The registry entry of a network; ConfigError naming the field otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"{field_name}: unknown model {name!r}; must be one of {', '.join(MODELS)}",
                          field=field_name) from None


def build_model(name: str, f: LayerFactory, input_shape: Sequence[int] = (), *, vocab: int | None = None,
                hidden: int = 64, dropout: float = 0.2, rng_dropout=None) -> Model:
    """Build the network ``name`` (see :data:`MODELS`) with the algorithms of ``f``."""
    return model_spec(name).build(f, input_shape, vocab=vocab, hidden=hidden, dropout=dropout,
                                  rng_dropout=rng_dropout)
