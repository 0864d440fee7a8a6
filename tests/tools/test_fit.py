"""Tests of analogtrain.tools.fit: recovering device parameters from pulse-response data of our own simulator.

Synthetic data come from :func:`analogtrain.experiments.characterise.characterise` (cycles of
``n`` up then ``n`` down pulses, with cycle-to-cycle noise, seeded), written in the CSV format
of docs/device_fit.md.

Tolerances (single soft-bounds device, 40 cycles x 150 up + 150 down pulses = 12 000 steps,
c2c noise dw_min_std = 0.3): the fit's own standard errors are about 0.55 % for the step sizes
and 0.65 % for the bounds, i.e. 0.007 for up_down = 1 - scale_down/scale_up. So dw_min within
5 % and the bounds within 5 % are >= 7 standard errors, up_down within 0.02 about 3, and the
c2c noise within 10 % (its relative error is ~1/sqrt(2 n) < 1 %) leaves room for the small
bias of clipped steps. The test also checks that each tolerance is >= 2.5 reported standard
errors, so a change that makes the fit noisier fails here rather than by luck.
"""

from __future__ import annotations

import gzip
import math
import tomllib

import numpy as np
import pytest

from analogtrain.tools import fit as F
from analogtrain.config.loading import device_from_dict, resolve_device
from analogtrain.engine.devices.sampling import sample_device
from analogtrain.errors import InputError
from analogtrain.experiments.characterise import characterise

TRUE = dict(model="soft_bounds_reference", w_min=-0.8, w_max=1.2, dw_min=0.02, up_down=0.1, dw_min_std=0.3,
            dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, mult_noise=False)


def true_sp(su, sd, b_max, b_min):
    return (su - sd) / (su / b_max - sd / b_min)


def make_csv(path, n_devices=1, cycles=40, pulses=150, seed=0, transform=lambda v: v, **overrides):
    """Pulse-response CSV of our simulator (long format: device, cycle, pulse, direction, value)."""
    vals = dict(TRUE)
    vals.update(overrides)
    if vals["model"] in ("pow_step", "constant_step"):
        vals.pop("mult_noise", None)
    cfg = device_from_dict(vals)
    res = characterise(cfg, n_devices=n_devices, cycles=cycles, pulses=pulses, random_pulses=10, seed=seed)
    cyc = np.concatenate([[0], np.repeat(np.arange(res.cycles), 2 * res.pulses_per_direction)])
    names = {1: "up", -1: "down", 0: "start"}
    lines = ["device,cycle,pulse,direction,value"]
    for i in range(n_devices):
        for t in range(res.curves.shape[0]):
            lines.append(f"{i},{cyc[t]},{t},{names[int(res.directions[t])]},{float(transform(res.curves[t, i]))!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg, res


@pytest.fixture(scope="module")
def sb_data(tmp_path_factory):
    p = tmp_path_factory.mktemp("fit") / "sb.csv"
    make_csv(p)
    return p


@pytest.fixture(scope="module")
def sb_fit(sb_data):
    return F.fit(F.parse_csv(sb_data))


def test_soft_bounds_recovered(sb_fit):
    assert sb_fit["chosen"] == "soft_bounds"
    r = sb_fit["result"]
    p = r["parameters"]
    assert r["normalisation"]["scale"] == 1.0 and r["normalisation"]["offset"] == 0.0   # already weights
    assert p["dw_min"] == pytest.approx(0.02, rel=0.05)
    assert p["w_max"] == pytest.approx(1.2, rel=0.05)
    assert p["w_min"] == pytest.approx(-0.8, rel=0.05)
    assert abs(p["up_down"] - 0.1) <= 0.02
    assert p["dw_min_std"] == pytest.approx(0.3, rel=0.10)
    assert p["mult_noise"] is False
    assert abs(r["symmetry_point"] - true_sp(0.02, 0.018, 1.2, -0.8)) <= 0.02
    assert r["n_states"] == pytest.approx(2.0 / 0.02, rel=0.07)
    # the tolerances above are several standard errors of this fit (see module docstring)
    se = r["stderr"]
    assert 0.05 * 0.02 >= 2.5 * se["scale_up"] and 0.05 * 1.2 >= 2.5 * se["w_max"]
    assert 0.05 * 0.8 >= 2.5 * se["w_min"]
    su, sd = p["scale_up"]["mean"], p["scale_down"]["mean"]
    se_ud = math.hypot(se["scale_down"] / su, sd * se["scale_up"] / su ** 2)
    assert 0.02 >= 2.5 * se_ud


def test_residuals_and_model_table(sb_fit):
    by = {m["model"]: m for m in sb_fit["models"]}
    assert set(by) == set(F.MODEL_NAMES)
    sb = by["soft_bounds"]
    # the residual is the c2c noise: RMS ~ dw_min_std * step size
    assert sb["residual_rms_normalised"] == pytest.approx(0.3 * 0.019, rel=0.15)
    # a constant step cannot follow the state dependence
    assert by["constant_step"]["residual_rms"] > 1.5 * sb["residual_rms"]
    # linear step / power step have more parameters and do not beat soft bounds by > 1 %
    for name in ("linear_step", "pow_step"):
        if by[name]["applicable"]:
            assert by[name]["residual_rms"] >= sb["residual_rms"] * (1 - F.SIMPLER_TOLERANCE)
    assert by["linear_step"]["parameters"]["gamma_up"]["mean"] == pytest.approx(1.0, abs=0.25)


def test_toml_round_trip(sb_fit, tmp_path):
    r = sb_fit["result"]
    path = tmp_path / "fitted.toml"
    path.write_text(F.device_toml(r, "sb.csv"))
    data = tomllib.loads(path.read_text())
    assert set(data) == {"device"}
    cfg = resolve_device(file_values=data["device"])
    assert cfg.model == "soft_bounds_reference"
    assert cfg.n_states == pytest.approx(r["n_states"], rel=1e-12)
    assert cfg.w_max_dtod == cfg.w_min_dtod == cfg.dw_min_dtod == cfg.up_down_dtod == 0.0
    sp = sample_device(cfg, (1, 3), np.random.default_rng(5))["sp"]
    assert np.allclose(sp, r["symmetry_point"], rtol=0, atol=1e-12)


def test_multiplicative_noise_detected(tmp_path):
    make_csv(tmp_path / "m.csv", cycles=20, mult_noise=True, seed=3)
    r = F.fit(F.parse_csv(tmp_path / "m.csv"), model="soft_bounds")["result"]
    assert r["parameters"]["mult_noise"] is True
    assert r["parameters"]["dw_min_std"] == pytest.approx(0.3, rel=0.1)
    assert r["device_config"]["mult_noise"] is True


def test_conductance_units_are_mapped(tmp_path, sb_fit):
    # the same device read as a conductance 50 + 20 w: the fit is affine-equivariant
    make_csv(tmp_path / "g.csv", transform=lambda v: 50.0 + 20.0 * v)
    res = F.fit(F.parse_csv(tmp_path / "g.csv"), model="soft_bounds")
    r = res["result"]
    w = sb_fit["result"]
    n = r["normalisation"]
    assert n["how"].startswith("affine")
    assert r["parameters"]["w_max"] == pytest.approx(1.0) and r["parameters"]["w_min"] == pytest.approx(-1.0)
    # b_max, b_min in conductance units = 50 + 20 * (weight-unit bounds)
    assert n["offset"] + n["scale"] == pytest.approx(50 + 20 * w["parameters"]["w_max"], rel=1e-6)
    assert n["offset"] - n["scale"] == pytest.approx(50 + 20 * w["parameters"]["w_min"], rel=1e-6)
    assert r["symmetry_point_native"] == pytest.approx(50 + 20 * w["symmetry_point"], rel=1e-6)
    assert r["residual_rms"] == pytest.approx(20 * w["residual_rms"], rel=1e-6)
    assert r["parameters"]["dw_min_std"] == pytest.approx(w["parameters"]["dw_min_std"], rel=0.05)
    with pytest.raises(InputError, match="does not contain 0"):
        F.fit(F.parse_csv(tmp_path / "g.csv"), model="soft_bounds", normalise="none")
    forced = F.fit(F.parse_csv(tmp_path / "g.csv"), model="soft_bounds", normalise="range")["result"]
    assert forced["normalisation"] == n


def test_linear_step_recovered(tmp_path):
    make_csv(tmp_path / "l.csv", model="linear_step", gamma_up=0.3, gamma_down=0.5, gamma_up_dtod=0.0,
             gamma_down_dtod=0.0, cycles=20, pulses=150, seed=1)
    res = F.fit(F.parse_csv(tmp_path / "l.csv"))
    assert res["chosen"] == "linear_step"
    p = res["result"]["parameters"]
    assert p["gamma_up"]["mean"] == pytest.approx(0.3, abs=0.08)
    assert p["gamma_down"]["mean"] == pytest.approx(0.5, abs=0.08)
    assert p["w_max"] == pytest.approx(1.2, rel=0.01) and p["w_min"] == pytest.approx(-0.8, rel=0.01)
    assert p["dw_min"] == pytest.approx(0.02, rel=0.08)


def test_constant_step_chosen(tmp_path):
    make_csv(tmp_path / "c.csv", model="constant_step", cycles=10, pulses=120, seed=2)
    res = F.fit(F.parse_csv(tmp_path / "c.csv"))
    assert res["chosen"] == "constant_step"
    p = res["result"]["parameters"]
    assert p["dw_min"] == pytest.approx(0.02, rel=0.05) and abs(p["up_down"] - 0.1) <= 0.03


def test_pow_step_recovered(tmp_path):
    make_csv(tmp_path / "p.csv", model="pow_step", pow_gamma=2.0, pow_gamma_dtod=0.0, cycles=6, pulses=1000,
             seed=0)
    res = F.fit(F.parse_csv(tmp_path / "p.csv"))
    assert res["chosen"] == "pow_step"
    p = res["result"]["parameters"]
    assert p["gamma_up"]["mean"] == pytest.approx(2.0, abs=0.3)
    assert p["gamma_down"]["mean"] == pytest.approx(2.0, abs=0.3)
    # the power-step bounds are extrapolated (the step vanishes there like a power law, so the
    # device never gets close): loose tolerance
    assert p["w_max"] == pytest.approx(1.2, rel=0.2) and p["w_min"] == pytest.approx(-0.8, rel=0.2)
    cfg = resolve_device(file_values=res["result"]["device_config"])
    assert cfg.model == "pow_step" and cfg.pow_gamma == pytest.approx(max(p["gamma_up"]["mean"],
                                                                          p["gamma_down"]["mean"]))


def test_several_devices_give_spreads(tmp_path):
    make_csv(tmp_path / "d.csv", n_devices=12, cycles=4, pulses=150, seed=4, dw_min_dtod=0.1, up_down_dtod=0.0,
             w_max_dtod=0.1, w_min_dtod=0.1)
    r = F.fit(F.parse_csv(tmp_path / "d.csv"), model="soft_bounds")["result"]
    dc = r["device_config"]
    assert r["devices"] == 12
    assert 0.04 <= dc["dw_min_dtod"] <= 0.2
    assert 0.04 <= dc["w_max_dtod"] <= 0.2 and 0.04 <= dc["w_min_dtod"] <= 0.2
    assert r["parameters"]["scale_up"]["std"] > 0
    assert "stderr" not in r          # several devices: spreads instead of standard errors


def test_identical_devices_give_no_spread(tmp_path):
    # the scatter of the per-device fits is estimation noise, which the fits' standard errors explain
    # (6 devices x 1800 steps: each fit's bounds have a standard error of ~1.5 %; the raw scatter of
    # the fitted bounds is of that size, the corrected spread well below the 10 % of test_several_devices)
    make_csv(tmp_path / "same.csv", n_devices=6, cycles=6, pulses=150, seed=5)
    r = F.fit(F.parse_csv(tmp_path / "same.csv"), model="soft_bounds")["result"]
    dc, p = r["device_config"], r["parameters"]
    for k in ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod"):
        assert dc[k] <= 0.02, (k, dc[k])
    assert dc["w_max_dtod"] < p["w_max_devices"]["std"] / p["w_max"]
    assert dc["w_min_dtod"] < p["w_min_devices"]["std"] / -p["w_min"]


def test_wide_curves_csv_of_device_out(tmp_path):
    # `analogtrain device --out DIR` writes curves.csv with one column w_<i> per device
    cfg, res = make_csv(tmp_path / "long.csv", n_devices=2, cycles=3, pulses=60, seed=6)
    cyc = np.concatenate([[0], np.repeat(np.arange(res.cycles), 2 * res.pulses_per_direction)])
    names = {1: "up", -1: "down", 0: "start"}
    lines = ["pulse,cycle,direction,w_mean,w_std,w_0,w_1"]
    for t in range(res.curves.shape[0]):
        c = res.curves[t]
        lines.append(f"{t},{cyc[t]},{names[int(res.directions[t])]},{float(c.mean())!r},{float(c.std())!r},"
                     f"{float(c[0])!r},{float(c[1])!r}")
    wide = F.parse_csv_text("\n".join(lines))
    long = F.parse_csv(tmp_path / "long.csv")
    assert [d.device for d in wide] == ["0", "1"]
    for a, b in zip(wide, long):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.dw, b.dw) and np.array_equal(a.up, b.up)
    with pytest.raises(InputError, match="data row 2 has 6 fields"):
        F.parse_csv_text("\n".join(lines[:2] + [lines[2].rsplit(",", 1)[0]]), "curves.csv")


# ----------------------------------------------------------------------------- CSV format and errors
def test_parse_steps_and_directions():
    text = ("pulse,direction,value\n0,start,0.0\n1,+1,0.1\n2,up,0.19\n3,1,0.27\n4,U,0.34\n5,up,0.40\n"
            "6,-1,0.30\n7,down,0.21\n8,DOWN,0.13\n9,-,0.06\n10,down,0.0\n12,down,-0.1\n")
    (d,) = F.parse_csv_text(text)
    assert d.n_up == 5 and d.n_down == 5        # pulse 12 follows 10: not a single-pulse step
    assert np.allclose(d.dw[d.up], [0.1, 0.09, 0.08, 0.07, 0.06])
    assert np.allclose(d.w[~d.up], [0.40, 0.30, 0.21, 0.13, 0.06])


def test_parse_several_devices_and_cycles():
    rows = ["device,cycle,pulse,direction,value"]
    for dev in ("a", "b"):
        for cyc in (0, 1):                       # pulse numbering restarts per cycle
            v = 0.0
            rows.append(f"{dev},{cyc},0,start,{v}")
            for k in range(1, 7):
                v += 0.05
                rows.append(f"{dev},{cyc},{k},up,{v}")
            for k in range(7, 13):
                v -= 0.04
                rows.append(f"{dev},{cyc},{k},down,{v}")
    ds = F.parse_csv_text("\n".join(rows))
    assert [d.device for d in ds] == ["a", "b"]
    assert all(d.n_up == 12 and d.n_down == 12 and d.cycles == 2 for d in ds)


GOOD = "pulse,direction,value\n" + "".join(f"{k},{'up' if k <= 6 else 'down'},{0.01 * min(k, 12 - k)}\n"
                                            for k in range(13))


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("pulse,direction,value\n", "no data rows"),
    ("pulse,value\n1,0.1\n", "missing column.*direction"),
    ("step,direction,value\n1,up,0.1\n", "missing column.*pulse"),
    (GOOD.replace("0.03", "abc"), "value 'abc' is not a number"),
    (GOOD.replace("\n3,", "\nx3,"), "pulse 'x3' is not an integer"),
    (GOOD.replace("0.03", "nan"), "not a finite number"),
    (GOOD.replace("down", "sideways"), "direction 'sideways'"),
    ("pulse,direction,value\n" + "".join(f"{k},up,{0.01 * k}\n" for k in range(20)), "only up pulses"),
    ("pulse,direction,value\n" + "".join(f"{k},down,{-0.01 * k}\n" for k in range(20)), "only down pulses"),
    ("pulse,direction,value\n0,start,0\n1,up,0.1\n2,down,0.0\n", "too few points"),
    (GOOD + "3,up,0.5\n", "appears twice"),
    (GOOD, None),
    ("pulse,direction,value\n" + "".join(f"{k},{'down' if k <= 6 else 'up'},{0.01 * min(k, 12 - k)}\n"
                                          for k in range(13)), "directions swapped"),
    ("pulse,direction,value\n1,up\n", "has 2 fields"),
])
def test_malformed_csv(text, match):
    if match is None:
        F.parse_csv_text(text)          # a well-formed variant parses
        return
    with pytest.raises(InputError, match=match):
        F.parse_csv_text(text, "data.csv")


def test_not_utf8_and_missing_file(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(gzip.compress(GOOD.encode()))
    with pytest.raises(InputError, match="not UTF-8"):
        F.parse_csv(p)
    with pytest.raises(InputError, match="no such file"):
        F.parse_csv(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory"):
        F.parse_csv(tmp_path)


def test_utf8_bom_and_comments_accepted():
    text = GOOD.replace("pulse,direction,value", "Pulse, Direction ,VALUE")
    (d,) = F.parse_csv_text("\ufeff# measured 2024\n" + text)
    assert d.n_up == 6 and d.n_down == 6


def test_choose_prefers_fewer_parameters():
    res = [{"model": "linear_step", "applicable": True, "n_params": 6, "residual_rms": 0.995},
           {"model": "soft_bounds", "applicable": True, "n_params": 4, "residual_rms": 1.0},
           {"model": "pow_step", "applicable": False}]
    assert F.choose(res)["model"] == "soft_bounds"
    res[0]["residual_rms"] = 0.9
    assert F.choose(res)["model"] == "linear_step"
    assert F.choose([{"model": "x", "applicable": False}]) is None
