"""Training algorithms over analog tiles, one module each, with a small common interface.

* :mod:`.floating_point` - exact floating-point baseline
* :mod:`.sgd` - plain analog SGD (pulsed update onto W)
* :mod:`.mixed_precision` - MP: digital accumulator chi, thresholded writes to W
* :mod:`.ttv2` - TTv2 / c-TTv2 readout (static reference, input choppers)
* :mod:`.agad` - AGAD readout (dynamic digital reference P_ref)
* :mod:`.transfer` - the shared Tiki-Taka machinery that runs TTv2, c-TTv2 and AGAD
  replicas together in one stack
* :mod:`.scaling` - learning-rate plumbing (running maxima, lambda_A, lambda_H)

:func:`build_stack` builds one stacked simulation of R replicas from per-replica
configs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from analogtrain.config.algorithm import TransferConfig
from analogtrain.config.device import PulsedDevice
from analogtrain.config.io import IOConfig
from analogtrain.config.update import UpdateConfig
from analogtrain.errors import ConfigError
from analogtrain.seeding import generator
from analogtrain.engine.tile import AnalogTile
from analogtrain.engine.algorithms.base import Algorithm
from analogtrain.engine.algorithms.floating_point import FloatingPoint
from analogtrain.engine.algorithms.mixed_precision import MixedPrecision
from analogtrain.engine.algorithms.sgd import AnalogSGD
from analogtrain.engine.algorithms.registry import ALGORITHMS, algorithm_spec, canonical
from analogtrain.engine.algorithms.transfer import TransferFamily

__all__ = ["Algorithm", "FloatingPoint", "AnalogSGD", "MixedPrecision", "TransferFamily", "build_stack",
           "ALGORITHMS", "algorithm_spec", "canonical"]

#: index of each array in the device-draw stream of a replica (W first, so W's devices
#: are the same for every algorithm at the same seed)
ARRAY_STREAM = {"W": 0, "A": 1}


def build_stack(names: Sequence[str], alg_cfgs: Sequence, dev_w: Sequence[PulsedDevice],
                dev_a: Sequence[PulsedDevice] | None, out_size: int, in_size: int, *, io: IOConfig,
                seed: int, replica_seeds: Sequence[int], stack_id: int = 0, dtype=np.float32,
                count_pulses: bool = False, update: UpdateConfig | None = None,
                device_path: tuple = (), pulse_mode: str = "exact") -> Algorithm:
    """One stacked simulation of R replicas of an (out, in) layer.

    names : per-replica algorithm names, all of one family (see the registry)
    alg_cfgs : per-replica algorithm configs; dev_w / dev_a : per-replica device configs
    io : forward I/O of W (backward: the same without bound management)
    seed, stack_id : root of the dynamic streams (pulses, noise, chopper) of this stack
    replica_seeds : per replica, the seed of its device-to-device draw (stream
        ``("device", *device_path, array)`` of that seed; layers pass their index as path)
    update : pulse settings of the SGD update onto W (default aihwkit UpdateParameters)
    pulse_mode : ``UpdateConfig.pulse_mode`` of every tile of the stack (docs/pulses.md §2.5, §2.6)
    """
    classes = {algorithm_spec(n).family for n in names}
    if len(classes) != 1:
        raise ConfigError(f"algorithm: one stack cannot mix the families {sorted(classes)}")
    kind = classes.pop()
    R = len(names)
    if kind == "fp":
        return FloatingPoint(R, out_size, in_size, dtype=dtype)

    def tile(devs, array, upd, tile_io):
        idx = ARRAY_STREAM[array]
        return AnalogTile(list(devs), out_size, in_size, io=tile_io, update=replace(upd, pulse_mode=pulse_mode),
                          rng_device=[generator(s, "device", *device_path, idx) for s in replica_seeds],
                          rng_pulses=generator(seed, "pulses", stack_id, idx),
                          rng_noise=generator(seed, "noise", stack_id, idx), dtype=dtype,
                          count_pulses=count_pulses)

    if kind == "sgd":
        return AnalogSGD(tile(dev_w, "W", update or UpdateConfig(), io))
    if kind == "mp":
        return MixedPrecision(tile(dev_w, "W", update or UpdateConfig(), io), list(alg_cfgs),
                              generator(seed, "noise", stack_id, 2))
    cfgs: list[TransferConfig] = list(alg_cfgs)
    if dev_a is None:
        raise ConfigError("algorithm: transfer algorithms need a device for A")
    a_update = UpdateConfig(desired_bl=cfgs[0].desired_bl, update_management=True, update_bl_management=True)
    w = tile(dev_w, "W", UpdateConfig(desired_bl=1, update_management=False, update_bl_management=False), io)
    a = tile(dev_a, "A", a_update, io)
    return TransferFamily(a, w, cfgs, generator(seed, "chopper", stack_id), names=[canonical(n) for n in names])
