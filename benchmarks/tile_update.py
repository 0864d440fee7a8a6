"""Per-sample pulsed update of one 512x512 tile (issue: <= 1 ms per sample, later <= 0.4 ms).

Inputs x, d ~ U(-1, 1) (dense: every line pulses), update management on, bit-length
management off so the train length is exactly BL (31 or 5), learning rate chosen so
that k = lr max|x| max|d| / dw_min = ``k`` (default 1: the largest entries expect one
coincidence; the array expects about k/4 pulses per device). Device: the softbounds
preset (dw_min 0.1, c2c noise 0.3) unless ``--preset``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from analogtrain.config import UpdateConfig, resolve_device
from analogtrain.engine.algorithms.pulsed_update import sample_update
from analogtrain.engine.tile import AnalogTile

from ._util import peak_mb, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--bl", type=int, default=31)
    ap.add_argument("--k", type=float, default=1.0)
    ap.add_argument("--preset", default="softbounds")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    dev = resolve_device(a.preset)
    upd = UpdateConfig(desired_bl=a.bl, update_management=True, update_bl_management=False)
    tile = AnalogTile(dev, a.size, a.size, update=upd, dtype=np.dtype(a.dtype))
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, (a.samples + 1, a.size)).astype(a.dtype)
    ds = rng.uniform(-1, 1, (a.samples + 1, a.size)).astype(a.dtype)
    state = {"i": 0, "pulses": 0}

    def one():
        i = state["i"] % len(xs)
        x, d = xs[i:i + 1], ds[i:i + 1]
        lr = a.k * dev.dw_min / (np.abs(x).max() * np.abs(d).max())
        state["pulses"] += sample_update(tile, x, d, lr)
        state["i"] += 1

    sec = timed(one, a.samples)
    print(json.dumps({"benchmark": "tile_update", "size": a.size, "bl": a.bl, "k": a.k, "preset": a.preset,
                      "dtype": a.dtype, "ms_per_sample": sec * 1e3, "samples_per_s": 1.0 / sec,
                      "pulses_per_sample": state["pulses"] / (a.samples + 1), "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
