"""End-to-end tests of ``analogtrain endurance`` (in process through ``cli.main``)."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest

from analogtrain.cli import main

PROGRAM = ["program", "--algorithm", "ttv2,c-ttv2,agad,sgd", "--n-states", "20", "--sigma-r", "0", "--seeds", "1",
           "--steps", "150", "--size", "4x6", "--no-progress"]


def run(argv, capsys):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_ok(argv, capsys):
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    return out


def fail(argv, capsys, code=2):
    rc, out, err = run(argv, capsys)
    assert rc == code, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog") / "run"
    assert main([*PROGRAM, "--count-pulses", "--out", str(d), "--json"]) == 0
    return d


@pytest.fixture(scope="module")
def program_dir_no_counters(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog") / "nocount"
    assert main([*PROGRAM, "--out", str(d), "--json"]) == 0
    return d


def test_run_dir_counts_equal_saved_counters(program_dir, capsys):
    data = json.loads(run_ok(["endurance", str(program_dir), "--json"], capsys))
    assert data["schema_version"] == 2 and data["source"]["kind"] == "program"
    summary = json.loads((program_dir / "summary.json").read_text())
    z = np.load(program_dir / "arrays.npz")
    assert data["source"]["samples"] == summary["steps"] == 150
    rows = {(r["group"], r["array"]): r for r in data["arrays"]}
    for name, totals in summary["pulses_per_replica"].items():
        for i, t in enumerate(totals):
            if t < 0:
                continue
            row = rows[(f"replica {i}", name)]
            up, down = z[f"{name}.up_pulses"][i], z[f"{name}.down_pulses"][i]
            assert row["pulses"]["total"] == t == int(up.sum() + down.sum())
            assert row["pulses"]["up"] == int(up.sum()) and row["matches_summary"] is True
            assert row["max_device_pulses"]["total"] == int((up + down).max())
    arrays = [(r["algorithm"], r["array"]) for r in data["arrays"]]
    assert arrays == [("ttv2", "A"), ("ttv2", "W"), ("ttv2", "R"), ("c-ttv2", "A"), ("c-ttv2", "W"),
                      ("c-ttv2", "R"), ("agad", "A"), ("agad", "W"), ("sgd", "W")]
    r_row = rows[("replica 0", "R")]
    assert r_row["pulses"]["total"] == 0 and r_row["retention"]["samples"] == 150
    # retention of A: ReRamSB-preset defaults, x_size = 6, n_s = 1
    assert rows[("replica 0", "A")]["retention"]["samples"] == 6
    assert rows[("replica 1", "A")]["retention"]["samples"] == pytest.approx(6 / 0.01)
    assert rows[("replica 2", "A")]["retention"]["samples"] == 50 * 6
    assert all(r["retention"]["seconds"] is None for r in data["arrays"])
    # histogram covers every device
    for r in data["arrays"]:
        assert r["histogram"]["zero"] + sum(r["histogram"]["counts"]) == 24


def test_projection_and_seconds(program_dir, capsys):
    data = json.loads(run_ok(["endurance", str(program_dir), "--samples", "1.5e6", "--samples-per-second", "1e4",
                              "--json"], capsys))
    assert data["samples_projected"] == 1_500_000
    for r in data["arrays"]:
        assert r["projected"]["max_per_device"] == pytest.approx(r["max_device_pulses"]["total"] * 10_000)
        if r["array"] in ("W", "R"):
            assert r["retention"]["seconds"] == pytest.approx(150.0)
    a = next(r for r in data["arrays"] if r["algorithm"] == "ttv2" and r["array"] == "A")
    assert a["retention"]["seconds"] == pytest.approx(6 / 1e4)
    worst = max(r["max_device_pulses"]["total"] for r in data["arrays"]) * 10_000
    assert data["worst"]["projected_max_per_device"] == pytest.approx(worst)
    tight = json.loads(run_ok(["endurance", str(program_dir), "--samples", "1.5e6", "--endurance", str(worst * 0.99),
                               "--json"], capsys))
    assert tight["pass"] is False
    assert json.loads(run_ok(["endurance", str(program_dir), "--samples", "1.5e6", "--endurance", str(worst),
                              "--json"], capsys))["pass"] is True


def test_table_output(program_dir, capsys):
    out = run_ok(["endurance", str(program_dir), "--samples-per-second", "1e6"], capsys)
    assert "pulses per device per input sample" in out and "retention" in out and "histogram" in out
    assert "PASS: projected max pulses per device" in out and "x_size*n_s/in_chop_prob" in out
    assert "R: the reference of TTv2/c-TTv2" in out
    out = run_ok(["endurance", str(program_dir), "--endurance", "1"], capsys)
    assert "FAIL: projected max" in out


def test_out_dir_and_plot(program_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "end"
    png = tmp_path / "hist.png"
    data = json.loads(run_ok(["endurance", str(program_dir), "--out", str(out_dir), "--plot", str(png),
                              "--bins-per-decade", "2", "--json"], capsys))
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved["schema_version"] == 2 and saved["arrays"] == data["arrays"]
    with open(out_dir / "histogram.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"group", "algorithm", "array", "bin_lo", "bin_hi", "devices"}
    per = {}
    for r in rows:
        per[(r["group"], r["array"])] = per.get((r["group"], r["array"]), 0) + int(r["devices"])
    assert set(per.values()) == {24}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]      # atomic writes left no temp files


def test_simulate_without_run_dir(capsys):
    data = json.loads(run_ok(["endurance", "--algorithm", "ttv2,agad", "--steps", "100", "--size", "5",
                              "--n-states", "20", "--seed", "3", "--json"], capsys))
    assert data["source"]["kind"] == "simulated" and data["source"]["samples"] == 100
    assert data["simulation"]["seed"] == 3 and data["simulation"]["count_pulses"] is True
    assert [(r["algorithm"], r["array"]) for r in data["arrays"]] == [("ttv2", "A"), ("ttv2", "W"), ("ttv2", "R"),
                                                                      ("agad", "A"), ("agad", "W")]
    assert all(r["matches_summary"] for r in data["arrays"] if r["array"] != "R")
    a = data["arrays"][0]
    # A of a transfer algorithm takes a few pulses per sample at most (paper: 0.5 - 4 for the busiest device;
    # the auto-scaled update is at most desired_bl = 31 slots long here)
    assert 0 < a["per_sample"]["total"]["mean"] <= a["per_sample"]["total"]["max"] <= 31


def test_train_run_dir(tmp_path, capsys):
    ddir = tmp_path / "data" / "sklearn_digits"
    ddir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [[*rng.integers(0, 17, 64), i % 10] for i in range(1520)]
    (ddir / "digits.csv.gz").write_bytes(gzip.compress("".join(",".join(map(str, r)) + "\n" for r in rows).encode()))
    run_dir = tmp_path / "train"
    run_ok(["train", "--model", "fc3", "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--algorithm",
            "agad", "--epochs", "1", "--limit-train", "20", "--limit-test", "10", "--count-pulses", "--no-progress",
            "--out", str(run_dir)], capsys)
    data = json.loads(run_ok(["endurance", str(run_dir), "--json"], capsys))
    assert data["source"] == {"kind": "train", "path": str(run_dir), "samples": 20}
    z = np.load(run_dir / "arrays.npz")
    rows = {(r["group"], r["array"]): r for r in data["arrays"]}
    assert set(rows) == {(f"layer{k}", a) for k in (0, 1, 2) for a in ("A", "W")}
    for (layer, arr), r in rows.items():
        up, down = z[f"{layer}.{arr}.up_pulses"][0], z[f"{layer}.{arr}.down_pulses"][0]
        assert r["pulses"]["total"] == int(up.sum() + down.sum()) and r["matches_summary"] is True
    # AGAD with train's build-config settings (in_chop_prob 0.1, regular: N_c = 10): N_c * x_size * n_s samples
    assert rows[("layer0", "A")]["retention"]["samples"] == 10 * 64


def test_errors(program_dir, program_dir_no_counters, tmp_path, capsys):
    line = fail(["endurance", str(program_dir_no_counters)], capsys)
    assert "--count-pulses" in line and "no pulse counters" in line
    assert "no such directory" in fail(["endurance", str(tmp_path / "missing")], capsys)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{")
    assert "summary.json" in fail(["endurance", str(bad)], capsys)
    (bad / "summary.json").write_text((program_dir / "summary.json").read_text())
    (bad / "arrays.npz").write_bytes(b"garbage")
    assert "arrays.npz" in fail(["endurance", str(bad)], capsys)
    for flag, value in (("--samples", "0"), ("--samples", "-5"), ("--samples", "abc"), ("--samples", "1.5"),
                        ("--endurance", "0"), ("--endurance", "nan"), ("--samples-per-second", "-1")):
        assert flag in fail(["endurance", str(program_dir), flag, value], capsys)
    assert "not both" in fail(["endurance", str(program_dir), "--algorithm", "agad"], capsys)
    assert "unknown algorithm" in fail(["endurance", "--algorithm", "nope", "--steps", "10"], capsys)
    fail(["endurance", str(program_dir), "--bins-per-decade", "0"], capsys)
