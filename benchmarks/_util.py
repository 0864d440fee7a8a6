"""Shared helpers of the benchmark scripts: single-thread environment, timing, peak memory.

Each benchmark runs in its own subprocess (``run_isolated``) with the BLAS/OpenMP
thread counts set to 1 *before* NumPy is imported, so figures are single-thread and
the peak resident memory (``ru_maxrss``) belongs to that benchmark alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

SINGLE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                   "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


def peak_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports kB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0 / 1024.0


def run_isolated(module: str, *args: str) -> dict:
    """Run ``python -m benchmarks.<module> args`` single-threaded; it prints one JSON line last."""
    env = dict(os.environ, **SINGLE_THREAD)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=root, env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark {module} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(fn, repeat: int) -> float:
    """Seconds per call of fn() over ``repeat`` calls (after one warm-up call)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat
