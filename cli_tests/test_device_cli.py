"""End-to-end tests of ``analogtrain device`` (in process through ``cli.main`` and via subprocess)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from analogtrain import __version__
from analogtrain.cli import main

FAST = ["--devices", "6", "--cycles", "1", "--pulses", "10", "--random-pulses", "400"]


def run(argv, capsys):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(argv, capsys):
    rc, out, err = run(["device", *argv, "--json"], capsys)
    assert rc == 0, err
    return json.loads(out)


def preset_names(capsys):
    rc, out, err = run(["device", "--list", "--json"], capsys)
    assert rc == 0, err
    return [row["name"] for row in json.loads(out)["presets"]]


def test_list(capsys):
    names = preset_names(capsys)
    assert "softbounds" in names and "reram-sb" in names and len(names) >= 5
    rc, out, err = run(["device", "--list"], capsys)
    assert rc == 0 and err == ""
    for name in names:
        assert name in out
    data = json.loads(run(["device", "--list", "--json"], capsys)[1])
    assert data["schema_version"] == 2
    assert all(isinstance(r["n_states"], (int, float)) and r["model"] for r in data["presets"])


def _check_summary(data):
    assert isinstance(data["schema_version"], int)
    assert isinstance(data["n_states"], (int, float)) and data["n_states"] > 0
    assert isinstance(data["symmetry_point_simulated"]["mean"], (int, float))
    assert isinstance(data["symmetry_point_simulated"]["std"], (int, float))
    none = data["devices_without_symmetry_point"]
    assert 0 <= none <= data["n_devices"]
    if none < data["n_devices"]:     # over the devices that have one
        assert isinstance(data["symmetry_point"]["mean"], (int, float))
        assert isinstance(data["symmetry_point"]["std"], (int, float))
    else:                            # a device whose steps never balance has none
        assert data["symmetry_point"] == {"mean": None, "std": None}


def test_every_listed_preset_characterises(capsys):
    for name in preset_names(capsys):
        rc, out, err = run(["device", "--preset", name, "--json", *FAST], capsys)
        assert rc == 0, (name, err)
        data = json.loads(out)  # exactly one JSON object on stdout
        _check_summary(data)
        assert data["preset"] == name and data["n_devices"] == 6 and data["cycles"] == 1


def test_a_constant_step_device_has_no_symmetry_point_and_keeps_reference_zero(capsys):
    """linearstep with gamma = 0 is a constant step: up and down steps never balance, so there is
    no symmetry point to subtract (before: the bound, reported as 0.07 +- 1.03, was subtracted as
    the reference); with gamma = 0.5 every device has one inside its range."""
    data = json.loads(run(["device", "--preset", "linearstep", "--set", "gamma=0", "--json", *FAST], capsys)[1])
    assert data["devices_without_symmetry_point"] == data["n_devices"]
    assert data["reference"] == {"mean": 0.0, "std": 0.0}
    out = run(["device", "--preset", "linearstep", "--set", "gamma=0", *FAST], capsys)[1]
    assert "6 of 6 devices have none" in out
    data = json.loads(run(["device", "--preset", "linearstep", "--set", "gamma=0.5", "--json", *FAST], capsys)[1])
    assert data["devices_without_symmetry_point"] == 0 and abs(data["symmetry_point"]["mean"]) < 0.2


def test_table_output(capsys):
    rc, out, err = run(["device", "--preset", "softbounds", *FAST], capsys)
    assert rc == 0
    assert "symmetry point (formula)" in out and "n_states" in out


def test_asymmetry_moves_the_symmetry_point(capsys):
    """softbounds (bounds +-1 with 30 % spread, 20 states), up_down = 0.2: scale_down = 0.8 dw, so
    g* = 0.2 / (1/b_max + 0.8/|b_min|), about 0.11 on average; symmetric: about 0.

    The simulated SP averages the second half of 4000 random pulses per device (N = 2000): its
    per-device SE is about step / (kappa sqrt(N)) = b / sqrt(N) = 0.022 (see
    tests/experiments/test_characterise.py), so the mean over 20 devices has SE 0.005; tolerance
    5 SE = 0.025. Seeded (--seed 0)."""
    args = ["--devices", "20", "--cycles", "1", "--pulses", "10", "--random-pulses", "4000"]
    sym = run_json(["--preset", "softbounds", *args], capsys)
    asym = run_json(["--preset", "softbounds", "--set", "up_down=0.2", "--set", "dw_min_dtod=0", *args], capsys)
    assert asym["device"]["up_down"] == 0.2 and asym["device"]["dw_min_dtod"] == 0
    assert abs(sym["symmetry_point"]["mean"]) < 0.03
    assert 0.08 < asym["symmetry_point"]["mean"] < 0.15
    for d in (sym, asym):
        assert abs(d["symmetry_point_simulated"]["mean"] - d["symmetry_point"]["mean"]) < 0.025
        # the preset subtracts the SP: the read weight there is 0
        assert abs(d["symmetry_point_read"]["mean"]) < 1e-9


def test_n_states_override(capsys):
    data = run_json(["--preset", "softbounds", "--set", "n_states=100", *FAST], capsys)
    assert data["n_states"] == pytest.approx(100)
    assert data["device"]["dw_min"] == pytest.approx(0.02)


def test_config_file_device_table(tmp_path, capsys):
    f = tmp_path / "dev.toml"
    f.write_text('[device]\npreset = "softbounds"\nup_down = 0.1\nsigma_r = 0.05\n')
    data = run_json(["--config", str(f), *FAST], capsys)
    assert data["device"]["model"] == "soft_bounds_reference"
    assert data["device"]["up_down"] == 0.1 and data["device"]["reference_std"] == 0.05
    # --set wins over the file
    data = run_json(["--config", str(f), "--set", "up_down=0.3", *FAST], capsys)
    assert data["device"]["up_down"] == 0.3


def test_config_file_top_level_keys(tmp_path, capsys):
    f = tmp_path / "dev.toml"
    f.write_text('model = "constant_step"\ndw_min = 0.01\nw_max = 1.0\nw_min = -1.0\n')
    data = run_json(["--config", str(f), *FAST], capsys)
    assert data["device"]["model"] == "constant_step" and data["device"]["dw_min"] == 0.01
    assert data["n_states"] == pytest.approx(200)


def test_out_dir(tmp_path, capsys):
    out = tmp_path / "res"
    rc, stdout, err = run(["device", "--preset", "softbounds", "--out", str(out), "--json", *FAST], capsys)
    assert rc == 0, err
    for name in ("curves.csv", "symmetry_points.csv", "summary.json", "config.toml"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(stdout)
    _check_summary(summary)
    with open(out / "curves.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["pulse", "cycle", "direction", "w_mean", "w_std"] and len(rows[0]) == 5 + 6
    assert len(rows) == 1 + 1 + 2 * 10  # header + start + 2 n cycles
    with open(out / "symmetry_points.csv") as fh:
        sp = list(csv.reader(fh))
    assert sp[0] == ["device", "formula", "simulated"] and len(sp) == 7
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["kind"] == "device" and cfg["device"] == {"preset": "softbounds"}
    assert summary["device"]["model"] == "soft_bounds_reference"
    # no temporary files left behind
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_print_config(capsys):
    rc, out, err = run(["device", "--preset", "reram-sb", "--set", "dw_min=0.004", "--print-config"], capsys)
    assert rc == 0
    cfg = tomllib.loads(out)
    assert cfg["device"] == {"preset": "reram-sb", "dw_min": 0.004}       # the preset and the typed override


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "resp.png"
    rc, out, err = run(["device", "--preset", "softbounds", "--plot", str(png), *FAST], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_describe(capsys):
    rc, out, err = run(["device", "--preset", "softbounds", "--describe"], capsys)
    assert rc == 0
    assert "dw_min" in out and "reference_std" in out and "n_states" in out
    data = json.loads(run(["device", "--preset", "linearstep", "--describe", "--json"], capsys)[1])
    names = {r["name"]: r for r in data["parameters"]}
    assert data["model"] == "linear_step" and "gamma_up" in names
    assert names["dw_min"]["value"] == pytest.approx(0.1) and names["dw_min"]["range"] == "in (0, 10]"


BAD = {
    "negative dw_min": (["--set", "dw_min=-0.1"], "device.dw_min"),
    "w_min >= w_max": (["--set", "w_min=0", "--set", "w_max=0"], "device.w_min"),
    "bounds exclude 0": (["--set", "w_min=0.2", "--set", "w_max=1"], "device.w_min"),
    "unknown preset": (["--preset", "nosuchdevice"], "device.preset"),
    "typo key": (["--set", "dw_mn=0.1"], "device.dw_mn"),
    "wrong type": (["--set", "dw_min=abc"], "device.dw_min"),
    "nan": (["--set", "up_down=nan"], "device.up_down"),
    "bad n_states": (["--set", "n_states=0"], "device.n_states"),
    "missing --set value": (["--set", "dw_min"], "dw_min"),
}


def _check_error(rc, out, err, field, out_dir):
    assert rc == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert field in lines[0]
    assert "Traceback" not in out + err
    assert out == ""
    assert not out_dir.exists()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case, tmp_path, capsys):
    argv, field = BAD[case]
    out_dir = tmp_path / "out"
    rc, out, err = run(["device", *argv, "--out", str(out_dir), "--json"], capsys)
    _check_error(rc, out, err, field, out_dir)


TOML_BAD = {
    "typo key": ('[device]\npreset = "softbounds"\ndw_mn = 0.1\n', "device.dw_mn"),
    "wrong type": ('[device]\npreset = "softbounds"\ndw_min = "big"\n', "device.dw_min"),
    "nan": ('dw_min = nan\n', "device.dw_min"),
    "negative dw_min": ('[device]\nmodel = "soft_bounds"\ndw_min = -1.0\n', "device.dw_min"),
    "unknown preset": ('[device]\npreset = "nope"\n', "device.preset"),
    "invalid toml": ('[device\n', "bad.toml"),
}


@pytest.mark.parametrize("case", list(TOML_BAD))
def test_bad_config_file(case, tmp_path, capsys):
    text, field = TOML_BAD[case]
    f = tmp_path / "bad.toml"
    f.write_text(text)
    out_dir = tmp_path / "out"
    rc, out, err = run(["device", "--config", str(f), "--out", str(out_dir)], capsys)
    _check_error(rc, out, err, field, out_dir)
    if case == "typo key":
        assert "did you mean dw_min" in err


def test_missing_config_file(tmp_path, capsys):
    out_dir = tmp_path / "out"
    missing = tmp_path / "nope.toml"
    rc, out, err = run(["device", "--config", str(missing), "--out", str(out_dir)], capsys)
    _check_error(rc, out, err, "nope.toml", out_dir)


def test_negative_seed_is_a_usage_error(tmp_path, capsys):
    out_dir = tmp_path / "out"
    rc, out, err = run(["device", "--seed", "-1", "--out", str(out_dir), *FAST], capsys)
    _check_error(rc, out, err, "seed", out_dir)


def test_set_preset_is_applied_or_rejected(capsys):
    rc, out, err = run(["device", "--set", "preset=reram-sb", "--print-config"], capsys)
    if rc == 0:
        assert tomllib.loads(out)["device"] == {"preset": "reram-sb"}
    else:
        assert rc == 2 and "preset" in err


def test_usage_errors_exit_2(capsys):
    for argv in (["device", "--devices", "0"], ["device", "--no-such-flag"]):
        rc, out, err = run(argv, capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- subprocess
def _env():
    env = dict(os.environ)
    env.pop("ANALOGTRAIN_DEBUG", None)
    return env


def test_python_m_help():
    p = subprocess.run([sys.executable, "-m", "analogtrain", "--help"], capture_output=True, text=True,
                       timeout=60, env=_env())
    assert p.returncode == 0, p.stderr
    assert "device" in p.stdout and "Usage" in p.stdout


def test_console_script_version():
    exe = shutil.which("analogtrain") or str(Path(sys.executable).parent / "analogtrain")
    if not Path(exe).exists():
        pytest.skip("console script analogtrain not installed")
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, env=_env())
    assert p.returncode == 0
    assert __version__ in p.stdout


def test_subprocess_error_is_one_line():
    p = subprocess.run([sys.executable, "-m", "analogtrain", "device", "--set", "dw_min=-1"], capture_output=True,
                       text=True, timeout=60, env=_env())
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "device.dw_min" in p.stderr and "Traceback" not in p.stderr
