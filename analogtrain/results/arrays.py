"""The array schema: the one place that names every exported array.

``arrays.npz`` of ``program`` and ``train`` holds every internal array under a dotted name
``[layer.][array.]field``:

* ``layer`` - ``layer0``, ``layer1``, ... (the analog layers of a network, in order); absent
  for ``program``, whose arrays have a leading replica axis instead;
* ``array`` - the device array: ``A`` (the gradient array of the transfer family) or ``W``
  (the weights); absent for the digital state of an algorithm;
* ``field`` - see :data:`TILE_FIELDS` (per device array), :data:`ALGORITHM_FIELDS` (the
  digital state of an algorithm) and :data:`RUN_FIELDS` (a ``program`` run's own arrays).

Shapes: a tile field is ``(R, out, in)`` (R replicas; 1 in a network layer); choppers
``c_in`` (R, in) and ``c_out`` (R, out); running maxima ``m_x``, ``m_d`` (R,). The
floating-point baseline has no device array; its weights are exported as ``W.weights``.

Code that needs an array gets it typed from the engine objects (``alg.tiles()``,
``alg.hidden()``) or, reading a saved file, through :func:`parse` / :func:`counters`;
nothing else builds or splits these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

#: per device array (tile): field -> meaning
TILE_FIELDS: dict[str, str] = {
    "weights": "visible (read) weight w = g - ref, as the MVMs see it (with write noise, if any)",
    "persistent_weights": "the weight without the write noise of the last write (devices with write noise)",
    "reference": "the reference ref subtracted from the physical state g (symmetry point and offset)",
    "symmetry_point": "physical symmetry point g* of each device",
    "w_max_bound": "upper bound of each device's physical state",
    "w_min_bound": "lower bound of each device's physical state",
    "scale_up": "step size of an up pulse at g = 0 (per device)",
    "scale_down": "step size of a down pulse at g = 0 (per device)",
    "up_pulses": "exact count of up pulses each device received (int64; with count_pulses)",
    "down_pulses": "exact count of down pulses each device received (int64; with count_pulses)",
}
#: digital state of an algorithm: field -> meaning
ALGORITHM_FIELDS: dict[str, str] = {
    "H": "transfer buffer H (transfer family)",
    "P": "AGAD: running mean of the reads of each column",
    "P_ref": "AGAD: the dynamic reference (P frozen at the last chopper flip)",
    "c_in": "input chopper signs (+1/-1) per column",
    "c_out": "output chopper signs (+1/-1) per row",
    "m_x": "running maximum of |x| (auto_scale)",
    "m_d": "running maximum of |d| (auto_scale)",
    "chi": "MP: digital gradient accumulator",
    "requested_counts": "MP: pulse counts handed to W so far (chi + eps * counts = accumulated gradient)",
}
#: a program run's own arrays: name -> meaning
RUN_FIELDS: dict[str, str] = {
    "target": "the target W* (out, in)",
    "final_weight_error_pct": "final weight error of each replica (R,), %",
    "pulses_total": "total pulses of an array per replica (R,), int64, -1 where the replica has no such array",
}
#: a network layer's own digital arrays
LAYER_FIELDS: dict[str, str] = {"bias": "digital bias of the layer (out,)"}
ARRAYS = ("A", "W")


@dataclass(frozen=True)
class ArrayKey:
    """A parsed array name: ``field`` of ``array`` ("A", "W" or None) of ``layer`` (or None)."""

    field: str
    array: str | None = None
    layer: str | None = None

    @property
    def name(self) -> str:
        return ".".join(p for p in (self.layer, self.array, self.field) if p)


def key(field: str, array: str | None = None, layer: str | None = None) -> str:
    """The exported name of an array, e.g. ``key("weights", "A", "layer0")`` -> ``layer0.A.weights``."""
    return ArrayKey(field, array, layer).name


def parse(name: str) -> ArrayKey | None:
    """The inverse of :func:`key`; None for a name that is not in the schema."""
    parts = name.split(".")
    layer = parts.pop(0) if len(parts) > 1 and parts[0].startswith("layer") and parts[0][5:].isdigit() else None
    array = parts.pop(0) if len(parts) > 1 and parts[0] in ARRAYS else None
    if len(parts) != 1:
        return None
    field = parts[0]
    if array:
        ok = field in TILE_FIELDS or (layer is None and field == "pulses_total")
    else:
        ok = field in ALGORITHM_FIELDS or (field in LAYER_FIELDS if layer else field in RUN_FIELDS)
    return ArrayKey(field, array, layer) if ok else None


# ------------------------------------------------------------------------------------ export
def tile_arrays(tile) -> dict[str, np.ndarray]:
    """The :data:`TILE_FIELDS` of one tile (R replicas)."""
    p = tile.device.p
    out = {"weights": tile.w, "reference": p["ref"], "symmetry_point": p["sp"], "w_max_bound": p["w_max"],
           "w_min_bound": p["w_min"], "scale_up": p["scale_up"], "scale_down": p["scale_down"]}
    if tile.w_persistent is not None:
        out["persistent_weights"] = tile.w_persistent
    if tile.count_pulses:
        out["up_pulses"] = tile.up_count
        out["down_pulses"] = tile.down_count
    return out


def algorithm_arrays(alg, layer: str | None = None) -> dict[str, np.ndarray]:
    """Every array of one algorithm instance (its tiles and its digital state), named."""
    out: dict[str, np.ndarray] = {}
    tiles = alg.tiles()
    for array, tile in tiles.items():
        for field, v in tile_arrays(tile).items():
            out[key(field, array, layer)] = v
    if not tiles:                         # floating point: digital weights
        out[key("weights", "W", layer)] = alg.weights()
    for field, v in alg.hidden().items():
        out[key(field, None, layer)] = v
    return out


def model_arrays(model) -> dict[str, np.ndarray]:
    """Every array of every analog layer of a network (``layerK.`` prefixes)."""
    out: dict[str, np.ndarray] = {}
    for name, layer in model.analog_layers():
        out.update(algorithm_arrays(layer.alg, name))
        if getattr(layer, "b", None) is not None:
            out[key("bias", None, name)] = layer.b
    return out


# ------------------------------------------------------------------------------------ reading
def counters(arrays: Mapping[str, Any]) -> dict[tuple[str | None, str], tuple[np.ndarray, np.ndarray]]:
    """The pulse counters in a saved set of arrays: ``{(layer, array): (up, down)}`` (layer None
    for a program run); only pairs where both counters are present."""
    found: dict[tuple[str | None, str], dict[str, np.ndarray]] = {}
    for name, v in arrays.items():
        k = parse(name)
        if k is not None and k.array and k.field in ("up_pulses", "down_pulses"):
            found.setdefault((k.layer, k.array), {})[k.field] = np.asarray(v)
    return {lk: (d["up_pulses"], d["down_pulses"]) for lk, d in found.items() if len(d) == 2}


def describe() -> list[tuple[str, str, str]]:
    """(name pattern, shape, meaning) of every exported array, for docs and ``--describe``."""
    rows = [(f"[layerK.]<A|W>.{f}", "(R, out, in)", d) for f, d in TILE_FIELDS.items()]
    rows += [(f"[layerK.]{f}", "(R, ...)", d) for f, d in ALGORITHM_FIELDS.items()]
    rows += [(f"layerK.{f}", "", d) for f, d in LAYER_FIELDS.items()]
    rows += [(f, "", d) for f, d in RUN_FIELDS.items()]
    return rows
