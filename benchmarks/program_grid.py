"""Wall time of the default ``program`` grid: 3 algorithms x 2 n_states x 4 sigma_r x 3 seeds
= 72 replicas, 20000 steps (target: under 25 s on one core); ``--pulse-mode`` sets the update mode. Prints one JSON line
with the table of weight errors, so the figures in README can be checked."""

from __future__ import annotations

import argparse
import json
import time

from analogtrain.config.program import ProgramConfig
from analogtrain.experiments.program import run

from ._util import peak_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--pulse-mode", default=None, help="exact (default), aggregated, expected")
    a = ap.parse_args()
    c0 = time.process_time()
    res = run(ProgramConfig(steps=a.steps, **({"pulse_mode": a.pulse_mode} if a.pulse_mode else {})))
    cpu = time.process_time() - c0
    cells = [{k: c[k] for k in ("algorithm", "n_states", "sigma_r")} | {"mean": c["weight_error_pct"]["mean"],
                                                                         "std": c["weight_error_pct"]["std"]}
             for c in res.cells()]
    print(json.dumps({"benchmark": "program_grid", "pulse_mode": a.pulse_mode or "exact",
                      "replicas": len(res.replicas), "steps": a.steps,
                      "wall_s": res.wall_s, "cpu_s": cpu, "peak_mb": peak_mb(), "cells": cells}))


if __name__ == "__main__":
    main()
