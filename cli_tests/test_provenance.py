"""Every JSON output carries provenance, and ``verify`` recomputes fresh results.

Provenance (``analogtrain.results.provenance``): ``schema_version``, ``analogtrain_version``,
``numpy_version``, ``config_hash``, ``rerun_args`` (the arguments without display options),
and ``seed`` / ``seed_entropy`` for commands that take a seed. Checked on every JSON a
command prints (``--json``) or writes (``summary.json`` under ``--out``). An output without
provenance is a bug, marked ``xfail(strict=True)`` naming the command.

``verify`` must return 0 on a fresh ``--out`` (or saved ``--json``) result and 3 once one
number of the golden summary.json, or one element of an array in arrays.npz, is perturbed.
Training uses a synthetic ``sklearn_digits/digits.csv.gz`` written into a temp data dir.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import analogtrain
from analogtrain import datasets as ds
from analogtrain.results import provenance as report
from analogtrain.cli import main, rerun_args
from analogtrain.seeding import seed_entropy

PROVENANCE = ("schema_version", "analogtrain_version", "numpy_version", "config_hash", "rerun_args")
SEEDED = ("seed", "seed_entropy")


# ============================================================================ fixtures
def _digits(root: Path) -> Path:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 10, 1797)
    proto = rng.integers(0, 17, (10, 64))
    x = np.clip(proto[y] + rng.integers(-3, 4, (1797, 64)), 0, 16)
    lines = "\n".join(",".join(str(int(v)) for v in row) + f",{int(lab)}" for row, lab in zip(x, y))
    d = root / "sklearn_digits"
    d.mkdir(parents=True)
    with gzip.open(d / "digits.csv.gz", "wt") as f:
        f.write(lines + "\n")
    return root


def _curve_csv() -> str:
    rows, v = ["pulse,direction,value"], 0.0
    rng = np.random.default_rng(3)
    for p in range(60):
        up = (p // 15) % 2 == 0
        step = 0.02 * (1 - v) if up else -0.02 * (1 + v)
        v += step * (1 + 0.1 * rng.normal())
        rows.append(f"{p},{'up' if up else 'down'},{v!r}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("provenance")
    _digits(root / "data")
    (root / "curve.csv").write_text(_curve_csv())
    mirror = root / "mirror"
    mirror.mkdir()
    (mirror / "warpeace_input.txt").write_bytes(b"a tiny corpus for a fetch from a file:// mirror\n")
    return root


def run(args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def run_json(args, capsys) -> dict:
    code, out, err = run(args, capsys)
    assert code == 0, err
    return json.loads(out)


# ============================================================================ the outputs
DEV = ["device", "--devices", "3", "--cycles", "1", "--pulses", "5", "--random-pulses", "100", "--seed", "5"]
PROG = ["program", "--algorithm", "agad,sgd", "--n-states", "20", "--sigma-r", "0", "--seeds", "1", "--steps", "30",
        "--seed", "3", "--count-pulses", "--no-progress"]
TOY = ["program", "--task", "constant-gradient", "--steps", "100", "--algorithm", "agad", "--seed", "2"]
TRAIN = ["train", "--dataset", "digits", "--data-dir", "{data}", "--epochs", "1", "--limit-train", "60",
         "--limit-test", "30", "--algorithm", "agad", "--count-pulses", "--seed", "1", "--no-progress"]
END = ["endurance", "--algorithm", "agad", "--steps", "20", "--size", "4", "--seed", "4"]

NO_PROVENANCE = "BUG: `analogtrain {}` prints JSON without provenance (only schema_version; {})"

#: id -> (args, how the JSON is read: 'stdout' (--json) or 'out' (--out DIR/summary.json), seed or None, xfail)
OUTPUTS = {
    "device-json": (DEV + ["--json"], "stdout", 5, None),
    "device-out": (DEV, "out", 5, None),
    "device-list-json": (["device", "--list", "--json"], "stdout", None, None),
    "device-describe-json": (["device", "--describe", "--json"], "stdout", None, None),
    "device-fit-json": (["device", "fit", "{inputs}/curve.csv", "--json"], "stdout", None, None),
    "program-json": (PROG + ["--json"], "stdout", 3, None),
    "program-out": (PROG, "out", 3, None),
    "toy-json": (TOY + ["--json"], "stdout", 2, None),
    "toy-out": (TOY, "out", 2, None),
    "train-json": (TRAIN + ["--json"], "stdout", 1, None),
    "train-out": (TRAIN, "out", 1, None),
    "estimate-json": (["estimate", "--json"], "stdout", None, None),
    "estimate-sweep-json": (["estimate", "--sweep-n", "64,128", "--algorithm", "agad", "--json"], "stdout", None,
                            None),
    "endurance-sim-json": (END + ["--json"], "stdout", 4, None),
    "endurance-sim-out": (END, "out", 4, None),
    "data-list-json": (["data", "list", "--data-dir", "{data}", "--json"], "stdout", None, None),
    "data-fetch-json": (["data", "fetch", "warpeace", "--data-dir", "{tmp}/fetched", "--mirror",
                         "file://{inputs}/mirror/", "--json", "--no-progress"], "stdout", None, None),
}


def _materialise(args, inputs: Path, tmp: Path) -> list[str]:
    return [str(a).replace("{data}", str(inputs / "data")).replace("{inputs}", str(inputs))
            .replace("{tmp}", str(tmp)) for a in args]


def _fake_warpeace(monkeypatch, inputs: Path) -> None:
    data = (inputs / "mirror" / "warpeace_input.txt").read_bytes()
    monkeypatch.setitem(ds.KNOWN_FILES, "warpeace",
                        [ds.KnownFile("warpeace_input.txt", len(data), hashlib.sha256(data).hexdigest(), ())])


def check_provenance(doc: dict, args: list[str], seed: int | None) -> None:
    missing = [k for k in PROVENANCE + (SEEDED if seed is not None else ()) if k not in doc]
    assert not missing, f"no {missing} in the output of `analogtrain {' '.join(args)}`"
    assert doc["schema_version"] == report.SCHEMA_VERSION
    assert doc["analogtrain_version"] == analogtrain.__version__
    assert doc["numpy_version"] == np.__version__
    assert isinstance(doc["config_hash"], str) and re.fullmatch(r"[0-9a-f]{16}", doc["config_hash"])
    assert doc["rerun_args"] == rerun_args(args), "rerun_args must be the arguments without display options"
    if seed is not None:
        assert doc["seed"] == seed
        assert doc["seed_entropy"] == seed_entropy(seed)


def _params():
    out = []
    for name, (args, where, seed, bug) in OUTPUTS.items():
        marks = [pytest.mark.xfail(reason=bug, strict=True, raises=AssertionError)] if bug else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.mark.parametrize("name", _params())
def test_output_carries_provenance(name, inputs, tmp_path, capsys, monkeypatch):
    args, where, seed, _ = OUTPUTS[name]
    args = _materialise(args, inputs, tmp_path)
    if name == "data-fetch-json":
        _fake_warpeace(monkeypatch, inputs)
    if where == "stdout":
        doc = run_json(args, capsys)
    else:
        out = tmp_path / "out"
        code, _, err = run(args + ["--out", str(out)], capsys)
        assert code == 0, err
        doc = json.loads((out / "summary.json").read_text())
    check_provenance(doc, args, seed)


def test_endurance_of_a_run_dir_carries_provenance(inputs, tmp_path, capsys):
    """endurance RUN_DIR (no seed of its own): provenance of the analysis, rerun_args naming the run."""
    run_dir = tmp_path / "prog"
    assert run(PROG + ["--out", run_dir], capsys)[0] == 0
    args = ["endurance", str(run_dir), "--json"]
    doc = run_json(args, capsys)
    check_provenance(doc, args, None)
    out = tmp_path / "end"
    assert run(["endurance", str(run_dir), "--out", out], capsys)[0] == 0
    check_provenance(json.loads((out / "summary.json").read_text()), ["endurance", str(run_dir), "--out", str(out)],
                     None)


def test_verify_json_carries_provenance(tmp_path, capsys):
    golden = tmp_path / "dev"
    assert run(DEV + ["--out", golden], capsys)[0] == 0
    args = ["verify", str(golden), "--json"]
    capsys.readouterr()
    code = main(args)
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    check_provenance(doc, args, None)


def test_config_hash_ignores_display_options_and_follows_the_config(tmp_path, capsys):
    a = run_json(PROG + ["--json"], capsys)
    out = tmp_path / "o"
    assert run(PROG + ["--out", out], capsys)[0] == 0
    b = json.loads((out / "summary.json").read_text())
    c = run_json(PROG + ["--json", "--lr", "0.2"], capsys)
    assert a["config_hash"] == b["config_hash"]
    assert a["config_hash"] != c["config_hash"]
    assert a["rerun_args"] == b["rerun_args"] == rerun_args(PROG)


# ============================================================================ verify
def verify(path, capsys) -> tuple[int, str]:
    code, out, err = run(["verify", path], capsys)
    assert "Traceback" not in out + err
    return code, out + err


def _first_float(node, key):
    """(container, key) of the first non-zero float at or below node[key] (depth first)."""
    v = node[key]
    if isinstance(v, float) and v != 0.0:
        return node, key
    children = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, _ in children:
        found = _first_float(v, k)
        if found is not None:
            return found
    return None


def _perturb_json(path: Path, where: list, factor: float = 1.01) -> None:
    """Multiply one number (the first non-zero float at or below ``where``) by ``factor``."""
    doc = json.loads(path.read_text())
    node = doc
    for k in where[:-1]:
        node = node[k]
    found = _first_float(node, where[-1])
    assert found is not None, f"no non-zero float under {where}"
    container, key = found
    container[key] *= factor
    path.write_text(json.dumps(doc, indent=2))


def _perturb_npz(path: Path, name: str) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    a = arrays[name].copy()
    flat = a.reshape(-1)
    k = int(np.flatnonzero(flat)[0]) if np.any(flat) else 0
    flat[k] = flat[k] * a.dtype.type(1.5) + a.dtype.type(0.25)
    arrays[name] = a
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_verify_device_out(tmp_path, capsys):
    golden = tmp_path / "dev"
    assert run(DEV + ["--out", golden], capsys)[0] == 0
    assert verify(golden, capsys)[0] == 0
    assert verify(golden / "summary.json", capsys)[0] == 0
    _perturb_json(golden / "summary.json", ["dw_min"])
    code, text = verify(golden, capsys)
    assert code == 3 and "dw_min" in text


def test_verify_program_out_summary_number(tmp_path, capsys):
    golden = tmp_path / "prog"
    assert run(PROG + ["--out", golden], capsys)[0] == 0
    assert verify(golden, capsys)[0] == 0
    _perturb_json(golden / "summary.json", ["cells", 0, "weight_error_pct", "mean"])
    code, text = verify(golden, capsys)
    assert code == 3 and "weight_error_pct" in text


def test_verify_program_out_array_element(tmp_path, capsys):
    golden = tmp_path / "prog"
    assert run(PROG + ["--out", golden], capsys)[0] == 0
    assert verify(golden, capsys)[0] == 0
    _perturb_npz(golden / "arrays.npz", "W.weights")
    code, text = verify(golden, capsys)
    assert code == 3 and "W.weights" in text


def test_verify_program_pulse_counter_off_by_one(tmp_path, capsys):
    """Integers (pulse counts) must match exactly: one pulse more is a mismatch."""
    golden = tmp_path / "prog"
    assert run(PROG + ["--out", golden], capsys)[0] == 0
    with np.load(golden / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    name = next(k for k in sorted(arrays) if k.endswith("up_pulses"))
    arrays[name] = arrays[name].copy()
    arrays[name].reshape(-1)[0] += 1
    with open(golden / "arrays.npz", "wb") as f:
        np.savez(f, **arrays)
    code, text = verify(golden, capsys)
    assert code == 3 and name in text


def test_verify_toy_out(tmp_path, capsys):
    golden = tmp_path / "toy"
    assert run(TOY + ["--out", golden], capsys)[0] == 0
    assert verify(golden, capsys)[0] == 0
    _perturb_json(golden / "summary.json", ["w_mean"])
    assert verify(golden, capsys)[0] == 3


def test_verify_saved_json_output(tmp_path, capsys):
    """A result saved from --json (not a summary.json under --out) is verified from stdout."""
    path = tmp_path / "estimate.json"
    code, out, err = run(["estimate", "--json"], capsys)
    assert code == 0, err
    path.write_text(out)
    assert verify(path, capsys)[0] == 0
    doc = json.loads(out)
    doc["results"][0]["time_ns"] *= 1.01
    path.write_text(json.dumps(doc))
    assert verify(path, capsys)[0] == 3


def test_verify_train_out(inputs, tmp_path, capsys):
    golden = tmp_path / "train"
    args = _materialise(TRAIN, inputs, tmp_path)
    assert run(args + ["--out", golden], capsys)[0] == 0
    assert verify(golden, capsys)[0] == 0
    name = next(k for k in sorted(np.load(golden / "arrays.npz").files) if k.endswith("W.weights"))
    _perturb_npz(golden / "arrays.npz", name)
    assert verify(golden, capsys)[0] == 3


def test_verify_resumed_train_run(inputs, tmp_path, capsys):
    golden = tmp_path / "train"
    args = _materialise(TRAIN, inputs, tmp_path)
    assert run(args + ["--out", golden], capsys)[0] == 0
    assert run(["train", "--resume", golden, "--epochs", "2", "--no-progress"], capsys)[0] == 0
    code, text = verify(golden, capsys)
    assert code == 0, text


def test_verify_golden_copy_is_independent_of_the_original(tmp_path, capsys):
    """verify re-runs into a temp dir: the golden directory itself is left untouched."""
    golden = tmp_path / "prog"
    assert run(PROG + ["--out", golden], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in golden.iterdir()}
    assert verify(golden, capsys)[0] == 0
    assert {p.name: p.read_bytes() for p in golden.iterdir()} == before
    shutil.rmtree(golden)
