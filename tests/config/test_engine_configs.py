"""Config dataclasses and their loading: validation, aliases, virtual keys, presets."""

from __future__ import annotations

import dataclasses
import math

import pytest

from analogtrain.config import (DEVICE_MODELS, IO_PRESETS, ConstantStepDevice, IOConfig, LinearStepDevice,
                                PowStepDevice, PulsedDevice, SoftBoundsDevice, SoftBoundsReferenceDevice,
                                UpdateConfig, backward_io, device_from_dict, has_reference, model_class,
                                parse_assignments, read_toml, resolve_device, transfer_read_io)
from analogtrain.engine.devices.presets import PRESETS, canonical_preset, preset_names, preset_values
from analogtrain.config.fields import build
from analogtrain.errors import ConfigError


def _err(fn, *args, **kw) -> str:
    with pytest.raises(ConfigError) as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    assert "\n" not in msg  # one line
    return msg


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("value", [-0.1, 0.0, -1e-9, 11.0])
def test_dw_min_out_of_range(value):
    msg = _err(device_from_dict, {"model": "soft_bounds", "dw_min": value})
    assert msg.startswith("device.dw_min:")
    assert "(0, 10]" in msg and repr(value) in msg


def test_w_min_not_below_w_max():
    msg = _err(device_from_dict, {"model": "soft_bounds", "w_min": 0.0, "w_max": 0.0})
    assert msg.startswith("device.w_min:") and "< w_max" in msg
    msg = _err(SoftBoundsDevice, w_min=0.0, w_max=0.0)
    assert "device.w_min" in msg


@pytest.mark.parametrize("values, field", [
    ({"w_min": 0.2, "w_max": 1.0}, "w_min"),     # [0.2, 1] excludes 0
    ({"w_min": -1.0, "w_max": -0.2}, "w_max"),   # [-1, -0.2] excludes 0
])
def test_bounds_must_contain_zero(values, field):
    msg = _err(device_from_dict, {"model": "soft_bounds", **values})
    assert msg.startswith(f"device.{field}:")
    # the allowed range is stated
    assert ("[-1000, 0]" in msg) or ("[0, 1000]" in msg) or ("contain 0" in msg)


def test_unknown_preset():
    msg = _err(resolve_device, preset="nosuchpreset")
    assert msg.startswith("device.preset:") and "nosuchpreset" in msg and "softbounds" in msg


def test_unknown_model():
    msg = _err(device_from_dict, {"model": "memristor"})
    assert msg.startswith("device.model:") and "soft_bounds" in msg


def test_missing_model():
    assert _err(device_from_dict, {"dw_min": 0.1}).startswith("device.model:")


@pytest.mark.parametrize("key, suggestion", [("dw_mn", "dw_min"), ("w_max_dtd", "w_max_dtod"),
                                             ("refrence_std", "reference_std"), ("sigma_rr", "sigma_r")])
def test_typo_suggests_the_right_key(key, suggestion):
    msg = _err(resolve_device, preset="softbounds", sets=[(key, "0.1")])
    assert msg.startswith(f"device.{key}:")
    assert "unknown key" in msg and f"did you mean {suggestion}" in msg


def test_typo_in_file_layer():
    msg = _err(resolve_device, file_values={"preset": "softbounds", "up_dwn": 0.1})
    assert "device.up_dwn" in msg and "up_down" in msg


@pytest.mark.parametrize("value, expected", [("abc", "expected a number"), (True, "expected a number"),
                                             ([0.1], "expected a number"), ("", "expected a number")])
def test_wrong_type(value, expected):
    msg = _err(device_from_dict, {"model": "soft_bounds", "dw_min": value})
    assert msg.startswith("device.dw_min:") and expected in msg


def test_wrong_type_bool_and_string_fields():
    assert "expected true or false" in _err(device_from_dict, {"model": "soft_bounds", "mult_noise": "maybe"})
    assert "device.mult_noise" in _err(device_from_dict, {"model": "soft_bounds", "mult_noise": 2})
    assert "device.model" in _err(device_from_dict, {"model": 3})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan"])
def test_nan_and_inf_rejected(value):
    msg = _err(device_from_dict, {"model": "soft_bounds", "up_down": value})
    assert msg.startswith("device.up_down:")
    assert "[-10, 10]" in msg  # the allowed range


def test_nan_n_states_rejected():
    msg = _err(device_from_dict, {"model": "soft_bounds", "n_states": math.nan})
    assert msg.startswith("device.n_states:")
    assert "device.n_states" in _err(device_from_dict, {"model": "soft_bounds", "n_states": 0})
    assert "device.n_states" in _err(device_from_dict, {"model": "soft_bounds", "n_states": "many"})
    assert "device.n_states" in _err(device_from_dict, {"model": "soft_bounds", "n_states": True})
    # n_states = 0.1 on [-0.6, 0.6] would need dw_min = 12 > 10
    assert "device.n_states" in _err(device_from_dict, {"model": "soft_bounds", "n_states": 0.1})


def test_direct_construction_validates():
    assert "device.dw_min_std" in _err(SoftBoundsDevice, dw_min_std=-1.0)
    assert "device.corrupt_devices_prob" in _err(ConstantStepDevice, corrupt_devices_prob=1.5)
    assert "device.pow_gamma" in _err(PowStepDevice, pow_gamma=0.0)


def test_io_and_update_validation():
    assert "io.out_bound" in _err(IOConfig, out_bound=0.0)
    assert "io.bound_management" in _err(IOConfig, bound_management="sometimes")
    assert "io.out_noise" in _err(IOConfig, out_noise=math.nan)
    assert "update.desired_bl" in _err(UpdateConfig, desired_bl=0)
    assert "[1, 64]" in _err(UpdateConfig, desired_bl=65)
    assert "update.pulse_type" in _err(UpdateConfig, pulse_type="random")
    msg = _err(build, IOConfig, {"out_bnd": 1.0}, "io")
    assert msg.startswith("io.out_bnd:") and "out_bound" in msg
    assert "update.desired_bl" in _err(build, UpdateConfig, {"desired_bl": 2.5}, "update")
    assert build(UpdateConfig, {"desired_bl": "10"}, "update").desired_bl == 10


def test_io_resolution_as_too_few_levels_rejected_at_construction():
    with pytest.raises(ConfigError, match=r"io\.out_res"):
        IOConfig(out_res=1.5)


def test_io_resolution_as_levels():
    io = IOConfig(out_res=512, out_bound=10.0, inp_res=0.0)
    assert io.out_step == pytest.approx(2 * 10.0 / 510)
    assert io.inp_step == 0.0
    assert IOConfig().inp_step == pytest.approx(2 / 126)
    assert IOConfig().out_step == pytest.approx(24 / 510)


def test_parse_assignments():
    assert parse_assignments(["a=1", " b = x=y "]) == [("a", "1"), ("b", "x=y")]
    for bad in (["a"], ["=1"], ["a="]):
        assert "--set" in _err(parse_assignments, bad)


def test_read_toml_errors(tmp_path):
    assert "no such file" in _err(read_toml, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[device\nx=1")
    assert "invalid TOML" in _err(read_toml, bad)
    assert "is a directory" in _err(read_toml, tmp_path)
    good = tmp_path / "good.toml"
    good.write_text("[device]\npreset = 'softbounds'\nup_down = 0.1\n")
    assert read_toml(good) == {"device": {"preset": "softbounds", "up_down": 0.1}}


# --------------------------------------------------------------------------- aliases, virtual keys
def test_aliases():
    cfg = device_from_dict({"model": "soft_bounds_reference", "sigma_r": 0.25, "delta": 0.05})
    assert cfg.reference_std == 0.25 and cfg.dw_min == 0.05
    cfg = resolve_device(preset="softbounds", sets=[("sigma_r", "0.2"), ("delta", "0.01")])
    assert cfg.reference_std == 0.2 and cfg.dw_min == 0.01
    cfg = resolve_device(preset="softbounds", sets=[("sigma_pm", "0.05"), ("sigma_c2c", "0.1"), ("sigma_dtod", "0.2")])
    assert (cfg.up_down_dtod, cfg.dw_min_std, cfg.dw_min_dtod) == (0.05, 0.1, 0.2)
    assert model_class("SoftBoundsReferenceDevice") is SoftBoundsReferenceDevice
    assert model_class("linear-step") is LinearStepDevice
    assert canonical_preset("ReRamSB") == "reram-sb" and canonical_preset("SOFTBOUNDS") == "softbounds"


@pytest.mark.parametrize("first, second", [("dw_min", "delta"), ("delta", "dw_min")])
def test_alias_and_field_given_twice_is_an_error(first, second):
    values = {"model": "soft_bounds", first: 0.1, second: 0.2}
    with pytest.raises(ConfigError, match="given twice"):
        device_from_dict(values)
    with pytest.raises(ConfigError, match="given twice"):
        resolve_device(file_values=values)


@pytest.mark.parametrize("w_min, w_max, n", [(-1.0, 1.0, 100), (-0.75, 1.25, 50), (-0.6, 0.6, 7)])
def test_n_states_sets_dw_min(w_min, w_max, n):
    cfg = device_from_dict({"model": "soft_bounds", "w_min": w_min, "w_max": w_max, "n_states": n})
    assert cfg.dw_min == pytest.approx((w_max - w_min) / n, rel=1e-12)
    assert cfg.n_states == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("pow_gamma", [1.0, 2.0])
def test_n_states_uses_the_granularity_for_pow_step(pow_gamma):
    cfg = device_from_dict({"model": "pow_step", "pow_gamma": pow_gamma, "n_states": 50})
    # granularity dw_min 0.5^gamma, range 1.2
    assert cfg.dw_min == pytest.approx(1.2 / 50 / 0.5 ** pow_gamma, rel=1e-12)
    assert cfg.n_states == pytest.approx(50, rel=1e-12)


def test_n_states_and_dw_min_later_layer_wins():
    # preset (n_states 20 on [-1, 1]) < --set dw_min
    assert resolve_device(preset="softbounds", sets=[("dw_min", "0.05")]).dw_min == 0.05
    # preset (dw_min 0.002) < --set n_states: (1.25 + 0.75) / 100
    assert resolve_device(preset="reram-sb", sets=[("n_states", "100")]).dw_min == pytest.approx(0.02)
    # file n_states < --set delta (alias of dw_min)
    assert resolve_device(preset="softbounds", file_values={"n_states": 50}, sets=[("delta", "0.01")]).dw_min == 0.01
    # file dw_min < --set n_states
    cfg = resolve_device(preset="reram-sb", file_values={"dw_min": 0.01}, sets=[("n_states", "40")])
    assert cfg.dw_min == pytest.approx(2.0 / 40)
    # n_states kept from the preset follows later changes of the bounds
    cfg = resolve_device(preset="softbounds", sets=[("w_max", "2")])
    assert cfg.dw_min == pytest.approx(3.0 / 20) and cfg.n_states == pytest.approx(20)
    # softbounds preset itself: n_states 20 on [-1, 1]
    assert resolve_device(preset="softbounds").dw_min == pytest.approx(0.1)


def test_sigma_b_sets_both_bound_spreads():
    cfg = resolve_device(preset="softbounds", sets=[("sigma_b", "0.1")])
    assert cfg.w_max_dtod == 0.1 and cfg.w_min_dtod == 0.1
    cfg = device_from_dict({"model": "soft_bounds", "sigma_b": 0.05})
    assert cfg.w_max_dtod == 0.05 and cfg.w_min_dtod == 0.05
    # a later layer setting one half keeps the other half at sigma_b
    cfg = resolve_device(preset="softbounds", file_values={"sigma_b": 0.1}, sets=[("w_max_dtod", "0.2")])
    assert cfg.w_max_dtod == 0.2 and cfg.w_min_dtod == 0.1
    # and a later sigma_b overrides both
    cfg = resolve_device(preset="softbounds", file_values={"w_min_dtod": 0.4}, sets=[("sigma_b", "0.15")])
    assert cfg.w_max_dtod == 0.15 and cfg.w_min_dtod == 0.15


def test_gamma_sets_both_gammas():
    cfg = resolve_device(preset="linearstep", sets=[("gamma", "0.5")])
    assert cfg.gamma_up == 0.5 and cfg.gamma_down == 0.5
    cfg = device_from_dict({"model": "exp_step", "gamma": 3.0})
    assert cfg.gamma_up == 3.0 and cfg.gamma_down == 3.0
    cfg = resolve_device(preset="linearstep", file_values={"gamma": 0.3}, sets=[("gamma_up", "0.7")])
    assert cfg.gamma_up == 0.7 and cfg.gamma_down == 0.3


def test_scoped_keys_need_a_transfer_algorithm():
    assert "A.dw_min" in _err(resolve_device, preset="softbounds", sets=[("A.dw_min", "0.1")])
    cfg_a = resolve_device(preset="softbounds", sets=[("A.dw_min", "0.01"), ("W.dw_min", "0.02")],
                           array="A", allow_scopes=True)
    cfg_w = resolve_device(preset="softbounds", sets=[("A.dw_min", "0.01"), ("W.dw_min", "0.02")],
                           array="W", allow_scopes=True)
    assert cfg_a.dw_min == 0.01 and cfg_w.dw_min == 0.02


def test_precedence_defaults_preset_file_sets():
    cfg = resolve_device(preset="softbounds", file_values={"up_down": 0.1, "dw_min_std": 0.0},
                         sets=[("up_down", "0.2")])
    assert cfg.up_down == 0.2 and cfg.dw_min_std == 0.0 and cfg.w_max == 1.0
    # model without preset: built-in defaults
    cfg = resolve_device(file_values={"model": "constant_step"})
    assert cfg == ConstantStepDevice()


# --------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds(name):
    cfg = resolve_device(preset=name)
    assert isinstance(cfg, PulsedDevice)
    assert type(cfg) is DEVICE_MODELS[preset_values(name)["model"]]
    assert cfg.w_min < 0 < cfg.w_max and cfg.dw_min > 0
    assert math.isfinite(cfg.n_states) and cfg.n_states > 1
    # the preset's own n_states, where it states one
    if "n_states" in PRESETS[name][1]:
        assert cfg.n_states == pytest.approx(PRESETS[name][1]["n_states"])
    # a built config round-trips through a plain dict
    again = device_from_dict({"model": cfg.model, **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}})
    assert again == cfg


def test_paper_preset_values():
    cfg = resolve_device(preset="softbounds")
    assert isinstance(cfg, SoftBoundsReferenceDevice)
    assert cfg.subtract_symmetry_point and has_reference(cfg) and cfg.n_states == pytest.approx(20)
    assert not has_reference(SoftBoundsDevice())


def test_io_presets_and_derived_io():
    assert IO_PRESETS["perfect"].is_perfect
    assert IO_PRESETS["default"] == IOConfig()
    io = IOConfig()
    assert backward_io(io).bound_management == "none" and backward_io(io).noise_management == io.noise_management
    tr = transfer_read_io(io)
    assert tr.bound_management == "none" and tr.noise_management == "none" and tr.out_noise == io.out_noise
