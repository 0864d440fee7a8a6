"""End-to-end tests of ``analogtrain program`` (in process through ``cli.main``, and via subprocess).

Runs are tiny (a few hundred steps, small layers) so the whole file stays well under a minute.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from analogtrain.cli import main
from analogtrain.errors import NumericalError

TINY = ["--n-states", "20", "--seeds", "1", "--steps", "20", "--size", "3x4"]


def run(argv, capsys):
    rc = main(["program", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(argv, capsys):
    rc, out, err = run([*argv, "--json"], capsys)
    assert rc == 0, err
    return json.loads(out)            # the whole of stdout is exactly one JSON object


def _env():
    env = dict(os.environ)
    env.pop("ANALOGTRAIN_DEBUG", None)
    return env


# --------------------------------------------------------------------------- JSON output
def test_json_grid(capsys):
    data = run_json(["--algorithm", "ttv2,c-ttv2,agad", "--n-states", "20", "--sigma-r", "0,0.3", "--seeds", "2",
                     "--lr", "0.1,0.3", "--steps", "300"], capsys)
    assert isinstance(data["schema_version"], int)
    assert isinstance(data["wall_s"], (int, float)) and data["wall_s"] > 0
    cells = data["cells"]
    assert isinstance(cells, list) and len(cells) == 3 * 2 * 2
    combos = {(c["algorithm"], c["n_states"], c["sigma_r"], c["lr"]) for c in cells}
    assert combos == {(a, 20, s, lr) for a in ("ttv2", "c-ttv2", "agad") for s in (0.0, 0.3) for lr in (0.1, 0.3)}
    for c in cells:
        e = c["weight_error_pct"]
        assert set(e) >= {"mean", "std", "per_seed"}
        assert len(e["per_seed"]) == 2 and all(0 <= v < 100 for v in e["per_seed"])
        assert e["mean"] == pytest.approx(np.mean(e["per_seed"]))
        assert e["std"] == pytest.approx(np.std(e["per_seed"]))
    assert data["n_replicas"] == 24 and data["steps"] == 300


def test_table_output(capsys):
    rc, out, err = run(["--algorithm", "ttv2,agad", "--sigma-r", "0,0.5", *TINY], capsys)
    assert rc == 0, err
    assert "sigma_r=0" in out and "sigma_r=0.5" in out and "agad" in out and "ttv2" in out


def test_size_out_x_in(capsys, tmp_path):
    data = run_json(["--algorithm", "agad", "--size", "8x5", "--n-states", "20", "--sigma-r", "0", "--seeds", "1",
                     "--steps", "10", "--out", str(tmp_path / "o")], capsys)
    assert (data["config"]["program"]["out_size"], data["config"]["program"]["in_size"]) == (8, 5)
    z = np.load(tmp_path / "o" / "arrays.npz")
    assert z["W.weights"].shape == (1, 8, 5)
    assert z["target"].shape == (8, 5)


def test_sigma_r_arrays(capsys, tmp_path):
    """Replicas 0 (sigma_r 0) and 1 (sigma_r 0.3) share the seed, hence the device draw: with the
    offset on A only, W's references are identical; with A,W they differ."""
    base = ["--algorithm", "ttv2", "--sigma-r", "0,0.3", "--n-states", "20", "--seeds", "1", "--steps", "5",
            "--size", "3x4"]
    run_json([*base, "--out", str(tmp_path / "a")], capsys)
    data = run_json([*base, "--sigma-r-arrays", "A,W", "--out", str(tmp_path / "aw")], capsys)
    assert data["config"]["program"]["sigma_r_arrays"] == ["A", "W"]
    za, zaw = np.load(tmp_path / "a" / "arrays.npz"), np.load(tmp_path / "aw" / "arrays.npz")
    np.testing.assert_array_equal(za["W.reference"][0], za["W.reference"][1])
    assert not np.allclose(za["A.reference"][0], za["A.reference"][1])
    assert not np.allclose(zaw["W.reference"][0], zaw["W.reference"][1])
    assert not np.allclose(zaw["A.reference"][0], zaw["A.reference"][1])
    np.testing.assert_array_equal(za["W.reference"][0], zaw["W.reference"][0])     # sigma_r 0: no change


def test_sweep_gamma_linearstep(capsys):
    data = run_json(["--algorithm", "ttv2", "--sweep", "gamma=1,0", "--preset", "linearstep", "--sigma-r", "0",
                     *TINY], capsys)
    assert sorted(c["gamma"] for c in data["cells"]) == [0, 1]
    assert data["config"]["sweep"] == {"gamma": [1, 0]}


def test_out_dir_files(capsys, tmp_path):
    out = tmp_path / "run"
    data = run_json(["--algorithm", "ttv2,agad,sgd", "--sigma-r", "0,0.3", "--n-states", "20", "--seeds", "2",
                     "--steps", "30", "--trace-every", "10", "--size", "3x4", "--out", str(out)], capsys)
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "config.toml", "summary.json", "traces.csv"]
    R = 3 * 2 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema_version"] == data["schema_version"]
    assert summary["cells"] == data["cells"]
    assert [r["index"] for r in summary["replicas"]] == list(range(R))
    z = np.load(out / "arrays.npz", allow_pickle=False)
    assert z["W.weights"].shape == (R, 3, 4)
    assert z["A.weights"].shape == (R, 3, 4) and z["H"].shape == (R, 3, 4)
    algos = [r["algorithm"] for r in summary["replicas"]]
    tt = np.array([a != "sgd" for a in algos])
    assert np.all(np.isfinite(z["A.weights"][tt])) and np.all(np.isnan(z["A.weights"][~tt]))
    assert z["target"].shape == (3, 4) and np.all(np.abs(z["target"]) <= 0.5)
    np.testing.assert_allclose(z["final_weight_error_pct"], [r["final_weight_error_pct"] for r in summary["replicas"]])
    with open(out / "traces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == R * 3
    assert {"algorithm", "sigma_r", "seed_index", "replica", "step", "weight_error_pct"} <= set(rows[0])
    assert sorted({int(r["step"]) for r in rows}) == [10, 20, 30]
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["program"]["steps"] == 30 and cfg["program"]["algorithm"] == ["ttv2", "agad", "sgd"]


def test_count_pulses(capsys, tmp_path):
    data = run_json(["--algorithm", "ttv2,sgd", "--sigma-r", "0", *TINY, "--count-pulses", "--out",
                     str(tmp_path / "p")], capsys)
    pulses = data["pulses_per_replica"]
    assert set(pulses) == {"A", "W"}
    assert len(pulses["A"]) == len(pulses["W"]) == 2
    assert pulses["A"][0] > 0                     # the TTv2 replica pulses A
    assert pulses["W"][1] > 0                     # SGD pulses W
    z = np.load(tmp_path / "p" / "arrays.npz")
    np.testing.assert_array_equal(z["A.pulses_total"], pulses["A"])
    assert "W.up_pulses" in z.files
    # without the flag: no pulse totals
    assert "pulses_per_replica" not in run_json(["--algorithm", "sgd", "--sigma-r", "0", *TINY], capsys)


def test_print_config(capsys, tmp_path):
    rc, out, err = run(["--algorithm", "agad", "--sigma-r", "0.1", *TINY, "--print-config", "--out",
                        str(tmp_path / "never")], capsys)
    assert rc == 0, err
    cfg = tomllib.loads(out)
    assert cfg["program"]["algorithm"] == ["agad"] and cfg["program"]["steps"] == 20
    assert cfg["program"]["sigma_r"] == [0.1]
    assert cfg["kind"] == "program" and cfg["device"] == {"preset": "softbounds"}
    # the printed config is loadable and means the same run
    from analogtrain.config.loader import load_config
    from analogtrain.config.program import ProgramConfig

    assert load_config(cfg) == ProgramConfig(algorithm=("agad",), sigma_r=(0.1,), n_states=(20.0,), seeds=1, steps=20,
                                             out_size=3, in_size=4)
    assert not (tmp_path / "never").exists()        # nothing is run or written


def test_config_file(capsys, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[program]\nalgorithm = "c-ttv2"\nsteps = 12\nsigma_r = [0.2]\nn_states = [20]\nseeds = 1\n'
                 'size = "2x3"\n[algorithm]\nin_chop_prob = 0.5\n')
    data = run_json(["--config", str(f)], capsys)
    assert [c["algorithm"] for c in data["cells"]] == ["c-ttv2"]
    assert data["config"]["program"]["steps"] == 12
    assert data["config"]["algorithm"] == {"in_chop_prob": 0.5}
    assert data["resolved"]["algorithms"]["c-ttv2"]["in_chop_prob"] == 0.5


def test_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    rc, out, err = run(["--algorithm", "ttv2", "--sigma-r", "0,0.3", *TINY, "--plot", str(png)], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_constant_gradient_task(capsys):
    data = run_json(["--task", "constant-gradient", "--steps", "200"], capsys)
    assert data["task"] == "constant-gradient"
    assert [r["replica"] for r in data["results"]] == ["ttv2", "ttv2+offset", "c-ttv2", "c-ttv2+offset", "agad",
                                                       "agad+offset"]
    for r in data["results"]:
        assert isinstance(r["final_w_mean"], float) and isinstance(r["direction_correct"], bool)
    assert data["trace_steps"] == list(range(25, 201, 25))


def test_constant_gradient_task_rejects_grid_algorithms(capsys):
    rc, out, err = run(["--task", "constant-gradient", "--algorithm", "sgd", "--steps", "30"], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_constant_gradient_task_few_steps(capsys):
    rc, out, err = run(["--task", "constant-gradient", "--steps", "10", "--json"], capsys)
    assert "internal error" not in err
    assert rc in (0, 2)


def test_constant_gradient_config_records_the_gradient_used(capsys):
    rc, out, err = run(["--task", "constant-gradient", "--print-config"], capsys)
    assert rc == 0, err
    recorded = tomllib.loads(out)["toy"]["gradient"]
    from analogtrain.config.toy import ToyConfig

    used = ToyConfig().gradient
    assert recorded == used


# --------------------------------------------------------------------------- bad input
BAD = {
    "unknown algorithm": ["--algorithm", "bogus"],
    "negative lr": ["--algorithm", "ttv2", "--lr=-0.1"],
    "zero n_states": ["--algorithm", "ttv2", "--n-states", "0"],
    "zip mismatch": ["--algorithm", "ttv2", "--preset", "linearstep", "--zip", "--sweep", "gamma=1,0",
                     "--sweep", "up_down=0,0.1,0.2"],
    "unknown sweep key": ["--algorithm", "ttv2", "--sweep", "bogus=1,2"],
    "size 0": ["--algorithm", "ttv2", "--size", "0"],
    "bad size": ["--algorithm", "ttv2", "--size", "3y4"],
    "sigma_r arrays X": ["--algorithm", "ttv2", "--sigma-r-arrays", "X"],
    "negative sigma_r": ["--algorithm", "ttv2", "--sigma-r", "-0.1"],
    "seeds 0": ["--algorithm", "ttv2", "--seeds", "0"],
    "unknown preset": ["--algorithm", "ttv2", "--preset", "nope"],
    "bad algo value": ["--algorithm", "agad", "--algo-set", "in_chop_prob=0"],
}


@pytest.mark.parametrize("args", list(BAD.values()), ids=list(BAD))
def test_bad_input_exit_2_one_line(args, capsys, tmp_path):
    out_dir = tmp_path / "out"
    extra = [] if "--size" in args else ["--size", "3"]
    rc, out, err = run([*args, *extra, "--steps", "5", "--out", str(out_dir)], capsys)
    assert rc == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("analogtrain")
    assert "Traceback" not in err and "internal error" not in err
    assert not out_dir.exists()


@pytest.mark.parametrize("content, what", [
    ("[program]\nbogus = 1\n", "bogus"),
    ("[device]\nbogus = 1\n", "bogus"),
    ("[nonsense]\nx = 1\n", "nonsense"),
    ("[program\n", "TOML"),
])
def test_bad_config_file_exit_2(content, what, capsys, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(content)
    out_dir = tmp_path / "out"
    rc, out, err = run(["--algorithm", "ttv2", *TINY, "--config", str(f), "--out", str(out_dir)], capsys)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and what in err and "Traceback" not in err
    assert not out_dir.exists()


def test_unknown_algorithm_key_in_config_file_exit_2(capsys, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[algorithm]\nbogus = 1\n")
    out_dir = tmp_path / "out"
    rc, out, err = run(["--algorithm", "ttv2", *TINY, "--config", str(f), "--out", str(out_dir)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_unwritable_out_dir(capsys, tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    rc, out, err = run(["--algorithm", "ttv2", *TINY, "--out", str(regular / "sub")], capsys)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--out" in err and "Traceback" not in err
    assert regular.read_text() == "x"
    rc, out, err = run(["--algorithm", "ttv2", *TINY, "--out", str(regular)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_runtime_error_exit_1(capsys, tmp_path, monkeypatch):
    def boom(cfg, progress=None):
        raise NumericalError("non-finite weights in replica 0 at step 7")

    import analogtrain.experiments.program as prog

    monkeypatch.setattr(prog, "run", boom)
    out_dir = tmp_path / "o"
    rc, out, err = run(["--algorithm", "ttv2", *TINY, "--out", str(out_dir)], capsys)
    assert rc == 1 and out == ""
    assert err.strip().splitlines() == ["analogtrain: error: non-finite weights in replica 0 at step 7"]
    assert not out_dir.exists() or not any(out_dir.iterdir())


# ------------------------------------------------------------------------------ subprocess
def test_python_m_program_json():
    p = subprocess.run([sys.executable, "-m", "analogtrain", "program", "--algorithm", "agad,sgd", "--sigma-r", "0",
                        *TINY, "--json"], capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert [c["algorithm"] for c in data["cells"]] == ["agad", "sgd"]
    assert p.stderr == ""


def test_python_m_program_bad_input(tmp_path):
    p = subprocess.run([sys.executable, "-m", "analogtrain", "program", "--algorithm", "ttv2", "--n-states", "0",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()
