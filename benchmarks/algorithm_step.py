"""Per-sample time of each training algorithm on one tile (default 512x512, batch 1).

Runs ``analogtrain program --size N --algorithm ALG --seeds R --steps S`` in-process (the same
code path as the CLI) twice, with ``--warmup`` and with ``warmup + steps`` steps (the weight
error recorded only at the end), and reports the difference per step and replica: the cost
of a sample without the construction of the devices. ``--seeds R`` stacks R replicas (one
stacked simulation); ``--pulse-mode`` sets the update mode (exact, aggregated, expected).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from analogtrain.config.program import ProgramConfig
from analogtrain.experiments.program import run

from ._util import peak_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", default="agad")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=1, help="replicas stacked in one simulation")
    ap.add_argument("--pulse-mode", default=None)
    a = ap.parse_args()
    walls, cpus = [], []
    for steps in (a.warmup, a.warmup + a.steps):
        kw = {"pulse_mode": a.pulse_mode} if a.pulse_mode else {}
        cfg = ProgramConfig(out_size=a.size, in_size=a.size, steps=steps, algorithm=(a.algorithm,),
                            n_states=(20.0,), sigma_r=(0.0,), seeds=a.seeds, trace_every=steps, **kw)
        t0, c0 = time.perf_counter(), time.process_time()
        run(cfg)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    ms = (walls[1] - walls[0]) / a.steps / a.seeds * 1e3
    cpu_ms = (cpus[1] - cpus[0]) / a.steps / a.seeds * 1e3
    print(json.dumps({"benchmark": "algorithm_step", "algorithm": a.algorithm, "size": a.size, "steps": a.steps,
                      "replicas": a.seeds, "pulse_mode": a.pulse_mode or "exact", "ms_per_sample": ms,
                      "ms_per_sample_per_replica": ms, "cpu_ms_per_sample": cpu_ms, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
