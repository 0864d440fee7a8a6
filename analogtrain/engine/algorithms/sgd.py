"""Plain analog SGD (docs/algorithms.md §4.1): the pulsed outer-product update onto the weight array itself."""

from __future__ import annotations

from analogtrain.engine.tile import AnalogTile
from analogtrain.engine.algorithms.base import SingleTileAlgorithm, as_replica_lr, batched
from analogtrain.engine.algorithms.pulsed_update import batch_update


class AnalogSGD(SingleTileAlgorithm):
    """W on one analog tile; per sample ``W <- W - lr d x^T`` by stochastic pulse coincidences."""

    name = "sgd"

    def __init__(self, tile: AnalogTile):
        super().__init__(tile)

    def update(self, x, d, lr):
        x, d = batched(x), batched(d)
        lr = as_replica_lr(lr, self.n_replicas)
        batch_update(self.tile, x, d, lr)

    def state(self):
        arrs, rng = self.tile.state()
        return {f"W.{k}": v for k, v in arrs.items()}, {"W": rng}

    def load_state(self, arrays, info):
        self.tile.load_state({k[2:]: v for k, v in arrays.items() if k.startswith("W.")}, info["W"])
