"""End-to-end tests of ``analogtrain device fit`` (in process through ``cli.main``)."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from analogtrain.cli import main
from analogtrain.config.loading import device_from_dict
from analogtrain.experiments.characterise import characterise


def run(argv, capsys):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_ok(argv, capsys):
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    return out


def write_curves(path, cfg_values, cycles=20, pulses=150, seed=0, n_devices=1):
    cfg = device_from_dict(cfg_values)
    res = characterise(cfg, n_devices=n_devices, cycles=cycles, pulses=pulses, random_pulses=10, seed=seed)
    names = {1: "up", -1: "down", 0: "start"}
    lines = ["pulse,direction,value,device"]
    for i in range(n_devices):
        for t in range(res.curves.shape[0]):
            lines.append(f"{t},{names[int(res.directions[t])]},{float(res.curves[t, i])!r},{i}")
    path.write_text("\n".join(lines) + "\n")


SB = dict(model="soft_bounds_reference", w_min=-0.8, w_max=1.2, dw_min=0.02, up_down=0.1, dw_min_std=0.3,
          dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


@pytest.fixture(scope="module")
def sb_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("fitcli") / "sb.csv"
    write_curves(p, SB)
    return p


def test_fit_writes_toml_that_device_reproduces(sb_csv, tmp_path, capsys):
    toml = tmp_path / "fitted.toml"
    fit = json.loads(run_ok(["device", "fit", str(sb_csv), "--out", str(toml), "--json"], capsys))
    assert fit["schema_version"] == 2 and fit["chosen"] == "soft_bounds" and fit["written"] == str(toml)
    r = fit["result"]
    dev = tomllib.loads(toml.read_text())["device"]
    assert dev["model"] == "soft_bounds_reference" and dev["w_max_dtod"] == 0.0 and dev["mult_noise"] is False
    ch = json.loads(run_ok(["device", "--device-config", str(toml), "--devices", "4", "--cycles", "1",
                            "--pulses", "10", "--random-pulses", "200", "--json"], capsys))
    assert ch["n_states"] == pytest.approx(r["n_states"], rel=1e-12)
    assert ch["symmetry_point"]["mean"] == pytest.approx(r["symmetry_point"], abs=1e-12)
    assert ch["symmetry_point"]["std"] == pytest.approx(0.0, abs=1e-12)
    assert ch["dw_min"] == pytest.approx(0.02, rel=0.05)
    assert ch["w_max"]["mean"] == pytest.approx(1.2, rel=0.05) and ch["w_min"]["mean"] == pytest.approx(-0.8, rel=0.05)
    # program and train accept the same file
    run_ok(["program", "--device-config", str(toml), "--algorithm", "agad", "--n-states", "device", "--sigma-r", "0",
            "--seeds", "1", "--steps", "20", "--size", "3", "--no-progress"], capsys)
    out = run_ok(["train", "--device-config", str(toml), "--print-config"], capsys)
    assert "soft_bounds_reference" in out


def test_table_output_and_subtract_sp(sb_csv, tmp_path, capsys):
    toml = tmp_path / "sp.toml"
    out = run_ok(["device", "fit", str(sb_csv), "--subtract-sp", "--out", str(toml)], capsys)
    for text in ("soft_bounds *", "linear_step", "pow_step", "constant_step", "chosen: soft_bounds",
                 "symmetry point", "n_states", "standard errors", "wrote"):
        assert text in out, text
    assert tomllib.loads(toml.read_text())["device"]["subtract_symmetry_point"] is True
    ch = json.loads(run_ok(["device", "--device-config", str(toml), "--devices", "2", "--cycles", "1",
                            "--pulses", "10", "--random-pulses", "200", "--json"], capsys))
    assert ch["symmetry_point_read"]["mean"] == pytest.approx(0.0, abs=1e-12)


def test_model_choice_and_plot(sb_csv, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "fit.png"
    data = json.loads(run_ok(["device", "fit", str(sb_csv), "--model", "linear_step", "--plot", str(png), "--json"],
                             capsys))
    assert data["chosen"] == "linear_step" and [m["model"] for m in data["models"]] == ["linear_step"]
    assert data["result"]["device_config"]["model"] == "linear_step"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_conductance_data_normalised(tmp_path, capsys):
    p = tmp_path / "g.csv"
    write_curves(p, SB, cycles=10)
    lines = p.read_text().splitlines()
    conv = [lines[0]] + [",".join([a, b, repr(40.0 + 25.0 * float(v)), d]) for a, b, v, d in
                         (ln.split(",") for ln in lines[1:])]
    p.write_text("\n".join(conv) + "\n")
    toml = tmp_path / "g.toml"
    data = json.loads(run_ok(["device", "fit", str(p), "--model", "soft_bounds", "--out", str(toml), "--json"],
                             capsys))
    r = data["result"]
    assert r["normalisation"]["how"].startswith("affine")
    assert r["parameters"]["w_max"] == pytest.approx(1.0) and r["parameters"]["w_min"] == pytest.approx(-1.0)
    assert r["symmetry_point_native"] == pytest.approx(40 + 25 * 0.0511, abs=25 * 0.03)
    ch = json.loads(run_ok(["device", "--device-config", str(toml), "--devices", "2", "--cycles", "1", "--pulses",
                            "10", "--random-pulses", "200", "--json"], capsys))
    assert ch["n_states"] == pytest.approx(r["n_states"])


def test_several_devices(tmp_path, capsys):
    p = tmp_path / "d.csv"
    write_curves(p, {**SB, "dw_min_dtod": 0.1}, cycles=3, n_devices=5, seed=2)
    data = json.loads(run_ok(["device", "fit", str(p), "--json"], capsys))
    r = data["result"]
    assert data["data"]["devices"] == r["devices"] == 5
    assert r["device_config"]["dw_min_dtod"] > 0 and r["parameters"]["scale_up"]["std"] > 0


GOOD = "pulse,direction,value\n" + "".join(f"{k},{'up' if k <= 6 else 'down'},{0.01 * min(k, 12 - k)}\n"
                                            for k in range(13))


@pytest.mark.parametrize("content, expect", [
    (b"", "empty file"),
    (b"pulse,direction,value\n", "no data rows"),
    (b"pulse,value\n1,0.5\n", "missing column"),
    (GOOD.replace("0.03", "zero").encode(), "is not a number"),
    (b"pulse,direction,value\n" + b"".join(f"{k},up,{0.01 * k}\n".encode() for k in range(20)), "only up pulses"),
    (b"pulse,direction,value\n0,start,0\n1,up,0.1\n2,down,0\n", "too few points"),
    (b"pulse,direction,value\n0,up,\xff\xfe\n", "not UTF-8"),
    (GOOD.replace("down", "left").encode(), "direction 'left'"),
])
def test_malformed_csv_rejected(tmp_path, capsys, content, expect):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    rc, out, err = run(["device", "fit", str(p)], capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and expect in lines[0], err


def test_usage_errors(tmp_path, capsys):
    rc, out, err = run(["device", "fit", str(tmp_path / "missing.csv")], capsys)
    assert rc == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    p = tmp_path / "ok.csv"
    p.write_text(GOOD)
    rc, out, err = run(["device", "fit", str(p), "--model", "spline"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, out, err = run(["device", "fit", str(p), "--out", str(tmp_path / "no" / "dir" / "x.toml")], capsys)
    assert rc == 2 and "does not exist" in err
    assert not np.any([f.name.endswith(".tmp") for f in tmp_path.iterdir()])
