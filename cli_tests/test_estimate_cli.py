"""End-to-end tests of ``analogtrain estimate`` (main(), CliRunner and a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from analogtrain.cli import _register, cli, main

PAPER = {("ttv2", 2, 5): 56.3, ("c-ttv2", 2, 5): 62.1, ("agad", 2, 5): 30.9, ("mp", 2, 5): 3024.5,
         ("agad", 10, 1): 17.1}


def run_json(capsys, *args) -> dict:
    rc = main(["estimate", "--json", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def run_error(capsys, *args) -> str:
    rc = main(["estimate", *args])
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- JSON
def test_json_schema_default_run(capsys):
    d = run_json(capsys)
    assert d["schema_version"] == 2
    assert set(d["assumptions"]) >= {"n", "n_s", "l_max", "l_w", "t_mvm", "t_pulse", "tflops", "arrays_per_core"}
    assert d["assumptions"]["n"] == 512 and d["assumptions"]["tflops"] == 0.7
    res = d["results"]
    assert [(r["algorithm"], r["n_s"], r["l_max"]) for r in res] == [
        ("sgd", 2, 5), ("mp", 2, 5), ("ttv2", 2, 5), ("c-ttv2", 2, 5), ("agad", 2, 5), ("agad", 10, 1)]
    for r in res:
        assert {"algorithm", "n", "n_s", "l_max", "time_ns", "published_ns", "speedup_vs_mp", "terms"} <= set(r)
        assert isinstance(r["algorithm"], str)
        assert all(isinstance(r[k], int) and not isinstance(r[k], bool) for k in ("n", "n_s", "l_max"))
        assert isinstance(r["time_ns"], float) and isinstance(r["speedup_vs_mp"], float)
        assert isinstance(r["terms"], dict) and r["terms"]
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in r["terms"].items())
        assert sum(r["terms"].values()) == pytest.approx(r["time_ns"])
        assert sum(r["ops"].values()) == r["k_ops"]
        key = (r["algorithm"], r["n_s"], r["l_max"])
        if key in PAPER:
            assert r["published_ns"] == PAPER[key]
        else:
            assert r["published_ns"] is None
    by = {(r["algorithm"], r["n_s"], r["l_max"]): r for r in res}
    for key in [("ttv2", 2, 5), ("c-ttv2", 2, 5), ("mp", 2, 5), ("agad", 10, 1)]:
        assert abs(by[key]["time_ns"] / PAPER[key] - 1) < 0.005, key
        assert by[key]["note"] is None
    agad = by[("agad", 2, 5)]
    assert agad["note"] and "30.9" in agad["note"] and "n_s = 20.5" in agad["note"]
    assert by[("mp", 2, 5)]["speedup_vs_mp"] == pytest.approx(1.0)
    assert by[("ttv2", 2, 5)]["ops"] == {"scale_read": 1, "accumulate_h": 1, "threshold_test": 2,
                                          "pulse_count": 1, "reset_h": 1}


def test_json_published_null_when_an_assumption_changes(capsys):
    d = run_json(capsys, "--t-pulse", "10")
    assert d["assumptions"]["t_pulse"] == 10.0
    assert len(d["results"]) == 6
    assert all(r["published_ns"] is None and r["note"] is None for r in d["results"])
    ttv2 = next(r for r in d["results"] if r["algorithm"] == "ttv2")
    assert ttv2["terms"]["a_update"] == pytest.approx(50.0)
    assert ttv2["terms"]["w_write"] == pytest.approx(5.0)


def test_agad_special_point_alone(capsys):
    d = run_json(capsys, "--algorithm", "agad", "--n-s", "10", "--l-max", "1")
    assert len(d["results"]) == 1
    r = d["results"][0]
    assert (r["algorithm"], r["n_s"], r["l_max"], r["published_ns"]) == ("agad", 10, 1, 17.1)
    assert r["time_ns"] == pytest.approx(17.107, abs=1e-3)
    assert 170 < r["speedup_vs_mp"] < 180


def test_algorithm_list_and_aliases(capsys):
    d = run_json(capsys, "--algorithm", "TTv2, chopped-ttv2,mp")
    assert [r["algorithm"] for r in d["results"]] == ["ttv2", "c-ttv2", "mp"]
    d = run_json(capsys, "--algorithm", "agad")  # both AGAD points
    assert [(r["n_s"], r["l_max"]) for r in d["results"]] == [(2, 5), (10, 1)]
    d = run_json(capsys, "--algorithm", "agad", "--n-s", "4")  # n_s given: no extra point
    assert [(r["n_s"], r["l_max"], r["published_ns"]) for r in d["results"]] == [(4, 5, None)]


def test_sweep_n(capsys):
    ns = [64, 128, 256, 512, 1024, 2048, 4096]
    d = run_json(capsys, "--sweep-n", ",".join(map(str, ns)))
    assert d["assumptions"]["sweep_n"] == ns
    res = d["results"]
    assert len(res) == 5 * len(ns)
    by = {(r["algorithm"], r["n"]): r for r in res}
    assert set(by) == {(a, n) for a in ("sgd", "mp", "ttv2", "c-ttv2", "agad") for n in ns}
    # MP's outer product grows as N^2, the in-memory digital terms as N
    assert by[("mp", 4096)]["terms"]["outer_product"] == pytest.approx(
        64**2 * by[("mp", 64)]["terms"]["outer_product"])
    for alg in ("ttv2", "c-ttv2", "agad"):
        assert by[(alg, 4096)]["terms"]["vector_ops"] == pytest.approx(64 * by[(alg, 64)]["terms"]["vector_ops"])
        assert by[(alg, 4096)]["terms"]["a_update"] == by[(alg, 64)]["terms"]["a_update"]
    assert by[("sgd", 64)]["time_ns"] == by[("sgd", 4096)]["time_ns"]
    # published only at N = 512
    assert by[("ttv2", 512)]["published_ns"] == 56.3
    assert by[("ttv2", 1024)]["published_ns"] is None


def test_table_output(capsys):
    rc = main(["estimate"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert "speed-up vs MP" in out and "paper (ns)" in out and "assumptions:" in out
    assert "56.28" in out and "56.3" in out and "3024.52" in out and "17.11" in out
    assert "30.9 [1]" in out and "[1] paper 30.9 ns not reproduced" in out
    assert "k=26" in out and "significance_gate 6" in out
    row = next(line for line in out.splitlines() if line.startswith("sgd"))
    assert row.split()[:4] == ["sgd", "512", "2", "5"]


# ----------------------------------------------------------------------------- config file
def test_config_file_and_flags_win(tmp_path, capsys):
    cfg = tmp_path / "est.toml"
    cfg.write_text('[estimate]\nn = 256\nt_pulse = 10\nalgorithm = ["ttv2", "mp"]\n')
    d = run_json(capsys, "--config", str(cfg))
    assert d["assumptions"]["n"] == 256 and d["assumptions"]["t_pulse"] == 10.0
    assert [r["algorithm"] for r in d["results"]] == ["ttv2", "mp"]
    d = run_json(capsys, "--config", str(cfg), "--t-pulse", "5", "--n", "512", "--algorithm", "ttv2")
    assert d["results"][0]["published_ns"] == 56.3
    assert d["results"][0]["time_ns"] == pytest.approx(56.277, abs=1e-3)


def test_config_file_sets_n_s_l_max(tmp_path, capsys):
    cfg = tmp_path / "est.toml"
    cfg.write_text("[estimate]\nn_s = 10\nl_max = 1\nalgorithm = 'agad'\n")
    d = run_json(capsys, "--config", str(cfg))
    assert [(r["n_s"], r["l_max"], r["published_ns"]) for r in d["results"]] == [(10, 1, 17.1)]


@pytest.mark.parametrize("body, key", [
    ("[estimate]\nfoo = 1\n", "estimate.foo"),
    ("[estimate]\nn = 'big'\n", "estimate.n"),
    ("[estimate]\nn_s = 2.0\n", "estimate.n_s"),
    ("[estimate]\nn_s = 0\n", "estimate.n_s"),
    ("[estimate]\nt_mvm = -4\n", "estimate.t_mvm"),
    ("[estimate]\ntflops = 0\n", "estimate.tflops"),
    ("[estimate]\nl_max = true\n", "estimate.l_max"),
    ("[estimate]\nalgorithm = 'adam'\n", "estimate.algorithm"),
    ("[estimate]\nsweep_n = [64, 0]\n", "estimate.sweep_n"),
    ("[device]\nn_states = 20\n", "[estimate]"),
    ("[estimate\n", "invalid TOML"),
])
def test_bad_config_file(tmp_path, capsys, body, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    line = run_error(capsys, "--config", str(cfg))
    assert key in line and str(cfg) in line


# ----------------------------------------------------------------------------- bad flags
@pytest.mark.parametrize("args, flag", [
    (["--n", "0"], "--n"),
    (["--n", "-3"], "--n"),
    (["--n-s", "0"], "--n-s"),
    (["--l-max", "0"], "--l-max"),
    (["--l-w", "-1"], "--l-w"),
    (["--t-mvm", "-1"], "--t-mvm"),
    (["--t-pulse", "-5"], "--t-pulse"),
    (["--t-pulse", "nan"], "--t-pulse"),
    (["--tflops", "0"], "--tflops"),
    (["--arrays-per-core", "0"], "--arrays-per-core"),
    (["--n", "abc"], "--n"),
    (["--algorithm", "adam"], "--algorithm"),
    (["--algorithm", "ttv2,,mp"], "--algorithm"),
    (["--sweep-n", "64,x"], "--sweep-n"),
    (["--sweep-n", "0,64"], "--sweep-n"),
    (["--n", "64", "--sweep-n", "64,128"], "sweep_n"),
])
def test_bad_flags_exit_2_one_line(capsys, args, flag):
    line = run_error(capsys, *args)
    assert flag in line


def test_zero_times_are_accepted(capsys):
    d = run_json(capsys, "--t-mvm", "0", "--t-pulse", "0", "--algorithm", "ttv2")
    assert d["results"][0]["time_ns"] == pytest.approx(6 * 512 / 175 / 2)


# ----------------------------------------------------------------------------- plot
def test_plot_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "t.png"
    rc = main(["estimate", "--sweep-n", "64,512,4096", "--plot", str(png)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]  # no temporary left behind


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = run_error(capsys, "--plot", str(tmp_path / "t.png"))
    assert "matplotlib" in line and "--plot" in line
    assert not (tmp_path / "t.png").exists()


def test_plot_into_missing_directory(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    line = run_error(capsys, "--plot", str(tmp_path / "nope" / "t.png"))
    assert "--plot" in line


# ----------------------------------------------------------------------------- CliRunner and subprocess
def test_clirunner_help_states_units_and_defaults():
    _register()
    res = CliRunner().invoke(cli, ["estimate", "--help"], terminal_width=200)
    assert res.exit_code == 0
    help_text = " ".join(res.output.split())
    for frag in ("--t-pulse NS", "unit: ns", "[default: 5]", "[default: 40]", "[default: 512]",
                 "[default: 0.7]", "unit: TFLOPS", "[default: 4]", "[default: 2]", "--sweep-n", "--config FILE"):
        assert frag in help_text, frag


def test_clirunner_json():
    _register()
    res = CliRunner().invoke(cli, ["estimate", "--json", "--algorithm", "c-ttv2"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["results"][0]["published_ns"] == 62.1


def test_subprocess_python_m(tmp_path):
    env = dict(os.environ, ANALOGTRAIN_DEBUG="")
    ok = subprocess.run([sys.executable, "-m", "analogtrain", "estimate", "--json", "--algorithm", "mp"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    assert abs(d["results"][0]["time_ns"] / 3024.5 - 1) < 0.005
    bad = subprocess.run([sys.executable, "-m", "analogtrain", "estimate", "--n-s", "0"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "--n-s" in bad.stderr and "Traceback" not in bad.stderr
