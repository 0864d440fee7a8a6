"""Time per epoch of fc3 with AGAD on MNIST (batch 1 and 10), single thread, and peak memory.

Needs the MNIST files: ``--data-dir`` or $ANALOGTRAIN_SHARED_DATA (default ../shared/data)
or $ANALOGTRAIN_DATA. ``--limit-train N`` times N samples and scales to a 60000-sample
epoch (reported as such). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.train import TrainConfig
from analogtrain.experiments.train import build_network, load_data, train_epoch
from analogtrain.seeding import generator

from ._util import peak_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--algorithm", default="agad")
    ap.add_argument("--model", default="fc3")
    ap.add_argument("--limit-train", type=int, default=6000)
    ap.add_argument("--preset", default="softbounds")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--pulse-mode", default=None, help="exact (default), aggregated, expected")
    ap.add_argument("--algo-style", default="build-config", help="build-config (default) or reramsb")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--weight-scaling-omega", type=float, default=None)
    a = ap.parse_args()
    data_dir = a.data_dir or os.environ.get("ANALOGTRAIN_SHARED_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data")
    extra = {k: v for k, v in (("pulse_mode", a.pulse_mode), ("lr", a.lr),
                                ("weight_scaling_omega", a.weight_scaling_omega)) if v is not None}
    cfg = TrainConfig(model=a.model, dataset="mnist", algorithm=a.algorithm, epochs=1, batch_size=a.batch_size,
                      limit_train=a.limit_train, data_dir=data_dir, device=DeviceSpec(a.preset),
                      algo_style=a.algo_style, **extra)
    data = load_data(cfg)
    model = build_network(cfg, data)
    n = len(data.y_train)
    t0, c0 = time.perf_counter(), time.process_time()
    train_epoch(cfg, model, data, 0, generator(0, "data"))
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"benchmark": "train_epoch", "model": a.model, "algorithm": a.algorithm, "preset": a.preset,
                      "algo_style": a.algo_style, "pulse_mode": getattr(cfg, "pulse_mode", None) or "exact",
                      "batch_size": a.batch_size, "samples_timed": n, "ms_per_sample": sec / n * 1e3,
                      "seconds_per_60k_epoch": sec / n * 60000, "cpu_seconds_per_60k_epoch": cpu / n * 60000,
                      "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
