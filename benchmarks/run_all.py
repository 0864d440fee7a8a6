"""``make bench``: run every benchmark single-threaded in its own process and print a table.

    python -m benchmarks.run_all            # everything (several minutes)
    python -m benchmarks.run_all --quick    # shorter runs
"""

from __future__ import annotations

import argparse
import json

from ._util import run_isolated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-train", action="store_true", help="skip the MNIST epoch benchmark")
    a = ap.parse_args()
    results = []
    for bl in (31, 5):
        results.append(run_isolated("tile_update", "--bl", str(bl), "--samples", "100" if a.quick else "300"))
    for alg in ("ttv2", "c-ttv2", "agad", "mp", "sgd"):
        results.append(run_isolated("algorithm_step", "--algorithm", alg, "--steps", "200" if a.quick else "1000"))
    for mode in ("aggregated", "expected"):
        results.append(run_isolated("algorithm_step", "--algorithm", "agad", "--pulse-mode", mode,
                                    "--steps", "200" if a.quick else "1000"))
    results.append(run_isolated("program_grid", "--steps", "2000" if a.quick else "20000"))
    if not a.skip_train:
        for bs in (1, 10):
            try:
                results.append(run_isolated("train_epoch", "--batch-size", str(bs),
                                            "--limit-train", "2000" if a.quick else "6000"))
            except RuntimeError as e:
                print(f"train_epoch skipped: {str(e).splitlines()[-1]}")
    for r in results:
        print(json.dumps(r))
    print()
    print(f"{'benchmark':<16} {'setting':<34} {'figure':>22} {'peak MB':>8}")
    for r in results:
        b = r["benchmark"]
        if b == "tile_update":
            s, f = f"{r['size']}x{r['size']} BL={r['bl']} k={r['k']:g}", \
                f"{r['ms_per_sample']:.3f} ms/sample"
        elif b == "algorithm_step":
            s, f = f"{r['algorithm']} {r['size']}x{r['size']} {r.get('pulse_mode', 'exact')}", \
                f"{r['ms_per_sample']:.3f} ms/sample"
        elif b == "program_grid":
            s, f = f"{r['replicas']} replicas x {r['steps']} steps", f"{r['wall_s']:.1f} s"
        else:
            s, f = f"{r['model']} {r['algorithm']} batch {r['batch_size']}", \
                f"{r['seconds_per_60k_epoch']:.1f} s/60k epoch"
        print(f"{b:<16} {s:<34} {f:>22} {r['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main()
