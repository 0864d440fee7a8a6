"""The common interface of the training algorithms.

Every algorithm owns the arrays of one layer (R replicas of an (out, in) weight
matrix) and offers the same small interface:

* ``forward(x)`` / ``backward(d)``: MVMs with the visible weights W, x (R, B, in);
* ``update(x, d, lr)``: the weight update of a mini-batch, x (R, B, in), d (R, B, out),
  ``lr`` a scalar or (R,); analog updates are applied sample by sample, in order;
* ``weights()`` / ``set_weights(w)``: the visible weights (R, out, in);
* ``tiles()`` / ``hidden()``: the device arrays by name ("A", "W") and the digital state
  (H, P, P_ref, choppers, running maxima, chi, ...), typed; one function names them for
  ``arrays.npz`` (:func:`analogtrain.results.arrays.algorithm_arrays`);
* ``state()`` / ``load_state()``: everything that changes during training, as
  (dict of arrays, JSON-able dict), for checkpoints that resume bit for bit.

The update direction follows SGD: ``W <- W - lr d x^T`` with d the error at the output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from analogtrain.errors import ConfigError


def as_replica_lr(lr, n_replicas: int) -> np.ndarray:
    """The learning rate as an (R,) float64 array."""
    if isinstance(lr, (int, float)):
        return np.full(n_replicas, float(lr))
    return np.broadcast_to(np.asarray(lr, dtype=np.float64), (n_replicas,)).copy()


class Algorithm(ABC):
    """Base class; see the module docstring for the contract."""

    name: str = ""
    #: config fields that must be equal for all replicas of one stack (see the registry)
    STACK_KEYS: tuple[str, ...] = ()

    def __init__(self, n_replicas: int, out_size: int, in_size: int):
        self.n_replicas, self.out_size, self.in_size = n_replicas, out_size, in_size

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def backward(self, d: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def update(self, x: np.ndarray, d: np.ndarray, lr) -> None: ...

    @abstractmethod
    def weights(self) -> np.ndarray: ...

    @abstractmethod
    def set_weights(self, w: np.ndarray) -> None: ...

    @abstractmethod
    def state(self) -> tuple[dict[str, np.ndarray], dict]: ...

    @abstractmethod
    def load_state(self, arrays: dict[str, np.ndarray], info: dict) -> None: ...

    def stack_configs(self, cfgs) -> list:
        """``cfgs`` as a list after checking there is one per replica and that the
        :attr:`STACK_KEYS` fields agree (ConfigError naming the field otherwise)."""
        cfgs = list(cfgs)
        if len(cfgs) != self.n_replicas:
            raise ValueError(f"{type(self).__name__}: one config per replica ({self.n_replicas}), got {len(cfgs)}")
        for f in self.STACK_KEYS:
            if len({getattr(c, f) for c in cfgs}) != 1:
                raise ConfigError(f"algorithm.{f}: must be the same for all replicas of one stack", field=f"algorithm.{f}")
        return cfgs

    def tiles(self) -> dict:
        """The device arrays by name (``{"A": tile, "W": tile}``); empty for floating point."""
        return {}

    def hidden(self) -> dict[str, np.ndarray]:
        """The digital state arrays by name (H, P, P_ref, choppers, running maxima, chi, ...);
        see :mod:`analogtrain.results.arrays` for the names."""
        return {}

    def pulse_totals(self) -> dict[str, int]:
        """Total device pulses so far per array (needs pulse counting, else empty)."""
        return {name: int(t.up_count.sum() + t.down_count.sum()) for name, t in self.tiles().items()
                if t.count_pulses}

    def decay(self) -> None:
        """Per-mini-batch slow device processes (lifetime decay, diffusion); default: none."""


class SingleTileAlgorithm(Algorithm):
    """An algorithm whose weights live on one analog tile (``self.tile``): SGD and MP."""

    def __init__(self, tile):
        super().__init__(tile.n_replicas, tile.out_size, tile.in_size)
        self.tile = tile

    def forward(self, x):
        return self.tile.forward(x)

    def backward(self, d):
        return self.tile.backward(d)

    def weights(self):
        return self.tile.get_weights()

    def set_weights(self, w):
        self.tile.set_weights(w)

    def tiles(self):
        return {"W": self.tile}

    def decay(self):
        self.tile.decay()
        self.tile.diffuse()


def batched(v: np.ndarray) -> np.ndarray:
    """(R, n) -> (R, 1, n); (R, B, n) unchanged."""
    return v[:, None, :] if v.ndim == 2 else v
