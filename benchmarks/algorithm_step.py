"""Per-sample time of each training algorithm on one tile (default 512x512, batch 1).

Runs ``analogtrain program --size N --algorithm ALG --seeds 1 --steps S`` in-process
(the same code path as the CLI) and reports wall seconds per step. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

from analogtrain.config.program import ProgramConfig
from analogtrain.experiments.program import run

from ._util import peak_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", default="agad")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=500)
    a = ap.parse_args()
    cfg = ProgramConfig(out_size=a.size, in_size=a.size, steps=a.steps, algorithm=(a.algorithm,), n_states=(20.0,),
                        sigma_r=(0.0,), seeds=1)
    res = run(cfg)
    print(json.dumps({"benchmark": "algorithm_step", "algorithm": a.algorithm, "size": a.size, "steps": a.steps,
                      "ms_per_sample": res.wall_s / a.steps * 1e3, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
