"""Every config class validates itself when built: each out-of-range, wrong-type or unknown
value raises ``ConfigError`` naming the field (and the allowed range), whether the value
comes from Python, a TOML file or a flag; the TOML form round-trips."""

from __future__ import annotations

import dataclasses
import math

import pytest

import analogtrain as at
from analogtrain.config.algorithm import MixedPrecisionConfig, TransferConfig
from analogtrain.config.device import DEVICE_MODELS
from analogtrain.config.fields import choices_of, field_type
from analogtrain.config.io import IOConfig
from analogtrain.config.loader import KINDS, config_class, load_config
from analogtrain.config.update import UpdateConfig
from analogtrain.errors import ConfigError

RUN_CLASSES = [config_class(k) for k in KINDS]
ENGINE_CLASSES = [*DEVICE_MODELS.values(), IOConfig, UpdateConfig, MixedPrecisionConfig, TransferConfig]
SECTION = {**{c: c.section for c in RUN_CLASSES}, **{c: "device" for c in DEVICE_MODELS.values()},
           IOConfig: "io", UpdateConfig: "update", MixedPrecisionConfig: "algorithm", TransferConfig: "algorithm"}
#: the minimal valid arguments of classes with a required field
REQUIRED = {at.FitConfig: {"data": "/nonexistent/measured.csv"}}


def bad_values(cls, f):
    """(label, bad value) pairs for one declared field: below/above its range, not finite, not
    in its choices, of the wrong type; for tuple fields, a tuple holding one bad element."""
    m = f.metadata
    typ, item = field_type(cls, f)
    scalar = item if typ is tuple else typ
    out = []
    if scalar in (int, float):
        one = 1 if scalar is int else 1.0
        if m.get("ge") is not None:
            out.append(("below ge", scalar(m["ge"]) - one if scalar is int else m["ge"] - max(abs(m["ge"]) * 0.5, 0.5)))
        if m.get("gt") is not None:
            out.append(("equal gt", scalar(m["gt"])))
        if m.get("le") is not None:
            out.append(("above le", scalar(m["le"]) + one if scalar is int else m["le"] + max(abs(m["le"]) * 0.5, 0.5)))
        if m.get("lt") is not None:
            out.append(("equal lt", scalar(m["lt"])))
        if scalar is float:
            out.append(("nan", math.nan))
            out.append(("inf", math.inf))
        out.append(("a string", "abc"))
    if scalar is bool:
        out.append(("an int for a bool", 1))
    if choices_of(m) and scalar is str:
        out.append(("not a choice", "nope"))
    if scalar is str and not choices_of(m):
        out.append(("a number for a string", 5))
    if typ is tuple:
        out = [(f"tuple with {lab}", (v,)) for lab, v in out]
        if m.get("min_items"):
            out.append(("empty tuple", ()))
    return out


def cases():
    for cls in RUN_CLASSES + ENGINE_CLASSES:
        for f in dataclasses.fields(cls):
            if not f.metadata:
                continue
            for label, value in bad_values(cls, f):
                yield pytest.param(cls, f.name, value, id=f"{cls.__name__}.{f.name}-{label}")


@pytest.mark.parametrize("cls, name, value", list(cases()))
def test_every_field_rejects_a_bad_value_naming_the_field(cls, name, value):
    with pytest.raises(ConfigError) as ei:
        cls(**{**REQUIRED.get(cls, {}), name: value})
    msg = str(ei.value)
    assert f"{SECTION[cls]}.{name}" in msg, msg
    assert "\n" not in msg


def test_the_case_list_covers_every_declared_range():
    """Every declared range or choice of every config class has at least one bad-value case."""
    covered = {(c.values[0].__name__, c.values[1]) for c in cases()}
    for cls in RUN_CLASSES + ENGINE_CLASSES:
        for f in dataclasses.fields(cls):
            m = f.metadata
            if m and (any(m.get(k) is not None for k in ("ge", "gt", "le", "lt")) or choices_of(m)):
                assert (cls.__name__, f.name) in covered, (cls.__name__, f.name)


@pytest.mark.parametrize("cls", RUN_CLASSES, ids=lambda c: c.kind)
def test_defaults_are_valid_and_round_trip_through_toml(cls, tmp_path):
    from analogtrain.results.render import to_toml

    cfg = cls(**REQUIRED.get(cls, {}))
    d = cfg.to_dict()
    assert d["kind"] == cls.kind and cls.section in d
    assert load_config(d) == cfg
    f = tmp_path / "c.toml"
    f.write_text(to_toml(d))
    assert load_config(f) == cfg


@pytest.mark.parametrize("cls", RUN_CLASSES, ids=lambda c: c.kind)
def test_configs_are_frozen(cls):
    cfg = cls(**REQUIRED.get(cls, {}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_derived_defaults_are_filled_from_the_registries():
    """A library user gets the same run as the CLI: per-model and per-family defaults are in the config."""
    cfg = at.TrainConfig(model="lenet", algorithm="agad")
    assert (cfg.dataset, cfg.batch_size, cfg.lr, dict(cfg.algo_sets)) == ("mnist", 8, 0.05, {"auto_granularity": 1000.0})
    cfg = at.TrainConfig(model="lenet", algorithm="sgd")
    assert (cfg.lr, cfg.algo_sets) == (0.1, ())
    cfg = at.TrainConfig(model="lstm", algorithm="fp")
    assert (cfg.dataset, cfg.batch_size, cfg.grad_clip) == ("warpeace", 32, 1.0)
    assert at.TrainConfig(model="fc3", algorithm="ttv2", lr=0.3).lr == 0.3          # given values win
    assert at.CharacteriseConfig(device=at.DeviceSpec("reram-sb")).pulses == 1000     # about n_states
    assert at.EstimateConfig(n_s=10).agad_fast_point is False


def test_train_config_checks_model_dataset_and_scopes():
    with pytest.raises(ConfigError, match="train.dataset: model lenet does not train on dataset digits"):
        at.TrainConfig(model="lenet", dataset="digits")
    with pytest.raises(ConfigError, match="train.dataset: must be one of mnist"):
        at.TrainConfig(dataset="cifar")
    with pytest.raises(ConfigError, match=r"device.A.\*: array scopes"):
        at.TrainConfig(algorithm="sgd", device=at.DeviceSpec("softbounds", (("A.dw_min", 0.01),)))
    with pytest.raises(ConfigError, match="algorithm.bogus"):
        at.TrainConfig(algorithm="agad", algo_sets=(("bogus", 1),))


def test_loader_names_the_source_of_a_bad_value(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('kind = "program"\n[program]\nsteps = -5\n')
    with pytest.raises(ConfigError, match=r"^config file .*p.toml: program.steps: must be in \[1, 1000000000\] \(got -5\)$"):
        load_config(f)
    f.write_text('kind = "train"\n[program]\nsteps = 5\n')
    with pytest.raises(ConfigError, match=r"unknown table\(s\) program; expected \[train\]"):
        load_config(f)
    f.write_text('kind = "program"\n[program]\nsteps = "5"\n')          # TOML has numbers: a string is refused
    with pytest.raises(ConfigError, match="program.steps: expected an integer"):
        load_config(f)
    f.write_text('[program]\nbogus = 1\n')
    with pytest.raises(ConfigError, match="program.bogus: unknown key"):
        load_config(f)


def test_relative_paths_in_a_file_are_taken_from_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "t.toml"
    f.write_text('[train]\ndataset = "digits"\ndata_dir = "../data"\n')
    assert load_config(f).data_dir == str((tmp_path / "data").resolve())
