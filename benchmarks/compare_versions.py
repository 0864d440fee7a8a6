"""Compare the results of two versions of the code, run by run, bit for bit.

    git worktree add /tmp/old <commit>
    python -m benchmarks.compare_versions --old /tmp/old [--new .] [--data-dir DIR] [--same-schema] [device estimate toy program train]

Runs the same commands with both source trees (``python -m analogtrain`` with PYTHONPATH
set to each), then compares every result field of the JSON output and every array of
``arrays.npz`` exactly. Renames made on purpose are mapped (network layers named by
their analog index since schema 2; the floating-point weights ``W`` -> ``W.weights``;
pulse counters int64 with -1 fill instead of float64 with NaN). Prints one line per
field and per run; a difference is printed as DIFF/DIFFERENT. Used to show that a
refactor changed no number (docs/results.md). ``--same-schema``: both trees write output
schema 2 (the layer renames above do not apply; e.g. the speed work of issue 12 against d405f84).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OLD = NEW = ROOT = DATA = None
SAME = False

def run(code, args, out):
    if out.exists(): shutil.rmtree(out)
    env = dict(os.environ, PYTHONPATH=code)
    extra = (["--out", str(out)] if args[0] != "estimate" else []) + ["--json"] + \
        (["--no-progress"] if args[0] in ("program", "train") else [])
    p = subprocess.run([sys.executable, "-m", "analogtrain", *args, *extra],
                       capture_output=True, text=True, env=env, cwd="/tmp")
    if p.returncode: raise SystemExit(f"{code}: {args}: {p.stderr}")
    out.mkdir(exist_ok=True)
    (out / "stdout.json").write_text(p.stdout)
    return json.loads(p.stdout)

VOLATILE = {"created", "wall_s", "seconds", "seconds_per_step", "seconds_per_epoch", "stacks", "platform"}

def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if k not in VOLATILE}
    if isinstance(o, list): return [strip(v) for v in o]
    return o

def rename_layers(d, mapping):
    if isinstance(d, dict): return {_ren(k, mapping): rename_layers(v, mapping) for k, v in d.items()}
    if isinstance(d, list): return [rename_layers(v, mapping) for v in d]
    return d

def _ren(k, mapping):
    for a, b in mapping.items():
        if k == a or k.startswith(a + "."): return b + k[len(a):]
    return k

def cmp_arrays(old_dir, new_dir, mapping=None, only=None):
    o, n = dict(np.load(old_dir / "arrays.npz")), np.load(new_dir / "arrays.npz")
    if "W" in o and "W.weights" in o:      # old: fp weights apart ("W"), NaN in "W.weights"; new: one "W.weights"
        o["W.weights"] = np.where(np.isnan(o["W.weights"]), o.pop("W"), o["W.weights"])
    ok = 0
    for k in o:
        nk = _ren(k, mapping or {})
        if nk == "W" or (nk.startswith("layer") and nk.endswith(".W")):
            nk += ".weights"
        if nk not in n.files:
            print("   missing in new:", k); continue
        a, b = o[k], n[nk]
        if only is not None: a, b = a[only], b[only]
        if a.dtype.kind == "f" and b.dtype.kind in "iu":   # counters: old NaN-filled float, new -1-filled int
            mask = np.isfinite(a)
            same = np.array_equal(a[mask].astype(np.int64), b[mask]) and np.all(b[~mask] == -1)
        else:
            same = np.array_equal(a, b, equal_nan=True)
        if not same: print("   DIFF", k, nk)
        else: ok += 1
    print(f"   arrays: {ok}/{len(o)} identical")

def case(name, args, keys, mapping=None, only_replicas=None, new_args=None, files=()):
    if SAME: mapping = None
    print(name, " ".join(args))
    od, nd = ROOT / (name + "-old"), ROOT / (name + "-new")
    a = run(OLD, args, od); b = run(NEW, new_args or args, nd)
    for k in keys:
        va, vb = strip(a.get(k)), strip(b.get(k))
        if mapping: va = rename_layers(va, mapping)
        if only_replicas is not None and isinstance(va, list):
            va = [va[i] for i in only_replicas]
        print(f"   {k}: {'identical' if va == vb else 'DIFFERENT'}")
        if va != vb: print("     old", str(va)[:300], "\n     new", str(vb)[:300])
    for f in files:
        same = (od / f).read_bytes() == (nd / f).read_bytes()
        print(f"   {f}: {'identical' if same else 'DIFFERENT'}")
    if (od / "arrays.npz").exists():
        cmp_arrays(od, nd, mapping, only_replicas)

def main() -> None:
    global OLD, NEW, ROOT, DATA, SAME
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="source tree of the old version")
    ap.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="source tree of the new version")
    ap.add_argument("--data-dir", default=os.environ.get("ANALOGTRAIN_SHARED_DATA",
                                                         str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--same-schema", action="store_true", help="both trees write schema 2: no layer renames")
    ap.add_argument("which", nargs="*", default=["all"])
    a = ap.parse_args()
    SAME = a.same_schema
    OLD, NEW, DATA = str(Path(a.old).resolve()), str(Path(a.new).resolve()), a.data_dir
    ROOT = Path(tempfile.mkdtemp(prefix="analogtrain-compare-"))
    which = a.which
    if "all" in which or "device" in which:
        case("device", ["device", "--preset", "softbounds", "--devices", "16", "--cycles", "1", "--random-pulses", "2000"],
             ["n_states", "n_states_devices", "step_up", "step_down", "measured_step_up", "measured_step_down", "asymmetry",
              "w_min", "w_max", "reference", "symmetry_point", "symmetry_point_simulated", "symmetry_point_read",
              "symmetry_point_abs_diff", "write_noise", "device"], files=("curves.csv", "symmetry_points.csv"))
    if "all" in which or "estimate" in which:
        case("estimate", ["estimate"], ["results", "assumptions", "derived"])
    if "all" in which or "toy" in which:
        case("toy", ["program", "--task", "constant-gradient", "--steps", "300"], ["results", "trace_steps"], files=("traces.csv",))
    if "all" in which or "program" in which:
        case("program-tt", ["program", "--algorithm", "ttv2,c-ttv2,agad", "--n-states", "20", "--sigma-r", "0,0.3", "--seeds", "2",
                            "--steps", "200", "--size", "8", "--count-pulses"], ["cells"], files=("traces.csv",))
        case("program-digital", ["program", "--algorithm", "mp,sgd,fp", "--n-states", "20", "--sigma-r", "0", "--seeds", "2",
                                 "--steps", "200", "--size", "8", "--count-pulses"], ["cells"], files=("traces.csv",))
        case("program-states", ["program", "--algorithm", "agad,sgd,mp", "--n-states", "20,100", "--sigma-r", "0,0.3",
                                "--sigma-r-arrays", "W", "--seeds", "2", "--steps", "300", "--size", "8", "--count-pulses"],
             ["cells"], files=("traces.csv",))
        case("program-sweep", ["program", "--algorithm", "ttv2,agad", "--preset", "linearstep", "--sweep", "gamma=1,0.5", "--sweep",
                               "in_chop_prob=0.02,0.1", "--n-states", "20", "--sigma-r", "0", "--seeds", "1", "--steps", "300",
                               "--size", "5"], ["cells"])
    if "all" in which or "train" in which:
        fc3 = {"layer2": "layer1", "layer4": "layer2"}
        for alg in ("agad", "sgd", "mp", "fp", "ttv2"):
            case(f"train-digits-{alg}", ["train", "--dataset", "digits", "--data-dir", DATA, "--epochs", "2", "--limit-train", "300",
                                         "--algorithm", alg, "--count-pulses"], ["epochs", "data"], mapping=fc3)
        case("train-mnist-fc3", ["train", "--data-dir", DATA, "--epochs", "1", "--limit-train", "500", "--limit-test", "200",
                                 "--algorithm", "c-ttv2", "--algo-style", "reramsb"], ["epochs", "data"], mapping=fc3)
        case("train-lenet", ["train", "--model", "lenet", "--data-dir", DATA, "--epochs", "1", "--limit-train", "100",
                             "--limit-test", "50", "--algorithm", "agad"], ["epochs", "data"],
             mapping={"layer3": "layer1", "layer8": "layer2", "layer10": "layer3"})
        case("train-lstm", ["train", "--model", "lstm", "--data-dir", DATA, "--epochs", "1", "--limit-train", "3000",
                            "--limit-test", "1000", "--algorithm", "agad", "--set", "n_states=200", "--seq-len", "20",
                            "--hidden", "8"], ["epochs", "data"], mapping={"layer2": "layer1", "layer3": "layer2"})


if __name__ == "__main__":
    main()
