"""Hypothesis fuzz tests of the config loaders: every call succeeds or raises the project's
own error (``AnalogTrainError``), never anything else, and never takes more than a few seconds.

Covered: ``read_toml`` on arbitrary bytes; ``resolve_device`` on arbitrary dicts (real keys,
aliases, scoped keys and random strings; floats incl. nan/inf, ints, bools, strings, lists,
nested dicts); ``fields.build`` for IOConfig / UpdateConfig / TransferConfig; the train
config loader ``config_from_dict`` + ``validate_config``; the ``device fit`` CSV reader.
Known bugs are pinned by small explicit tests marked ``xfail(strict=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analogtrain.config.algorithm import TransferConfig
from analogtrain.config.device import DEVICE_MODELS
from analogtrain.config.fields import build, field_map
from analogtrain.config.io import IOConfig
from analogtrain.config.loading import device_keys, parse_assignments, read_toml, resolve_device
from analogtrain.config.update import UpdateConfig
from analogtrain.engine.devices.presets import preset_names
from analogtrain.errors import AnalogTrainError
from analogtrain.config.loader import load_config
from analogtrain.config.train import TrainConfig

try:
    from analogtrain.tools import fit as FIT
except ImportError:  # pragma: no cover - the device fit reader is optional
    FIT = None

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
CALL_LIMIT_S = 5.0


class TooSlow(AssertionError):
    pass


@contextlib.contextmanager
def bounded(seconds: float = CALL_LIMIT_S):
    """Fail (TooSlow) if the block runs longer than ``seconds`` (SIGALRM where available)."""
    use_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    t0 = time.perf_counter()
    if use_alarm:
        def on_alarm(signum, frame):
            raise TooSlow(f"one call took more than {seconds} s")
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if time.perf_counter() - t0 > seconds:
        raise TooSlow(f"one call took {time.perf_counter() - t0:.1f} s (limit {seconds} s)")


def succeeds_or_project_error(fn, *args, **kw):
    """Run ``fn``; return its result, or None if it raised an AnalogTrainError.
    Any other exception propagates and fails the test with hypothesis' minimal example."""
    with bounded():
        try:
            return fn(*args, **kw)
        except AnalogTrainError:
            return None


# ============================================================================ strategies
SPECIAL_STRINGS = ["nan", "inf", "-inf", "NaN", "1e999", "-0", "0", "1", "-1", "0.5", "true", "false", "yes", "none",
                   "null", "", " ", "0x10", "1_000", "1e-320", "A", "W", "abs_max", "iterative", "stochastic",
                   "soft_bounds", "softbounds", "ttv2", "agad"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),   # (ints beyond float range: see the xfail pins)
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-320, 1e308]),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
)
values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                      max_leaves=8)
random_keys = st.text(min_size=0, max_size=12)

_DEVICE_KEYS = sorted({k for m in DEVICE_MODELS for k in device_keys(m)})
device_key = st.one_of(
    st.sampled_from(_DEVICE_KEYS),
    st.sampled_from(_DEVICE_KEYS).map(lambda k: "A." + k),
    st.sampled_from(_DEVICE_KEYS).map(lambda k: "W." + k),
    st.sampled_from(_DEVICE_KEYS).map(lambda k: "device." + k),
    st.sampled_from(["model", "preset", "n_states", "sigma_b", "gamma", "x.y", ".", "A.", "a.dw_min"]),
    random_keys,
)
model_value = st.one_of(st.sampled_from(sorted(DEVICE_MODELS)), values)
preset_value = st.one_of(st.none(), st.sampled_from(preset_names()), st.text(max_size=10))


@st.composite
def device_dicts(draw):
    d = draw(st.dictionaries(device_key, values, max_size=8))
    if draw(st.booleans()):
        d["model"] = draw(model_value)
    return d


def field_dicts(cls):
    keys = st.one_of(st.sampled_from(sorted(field_map(cls))), random_keys)
    return st.dictionaries(keys, values, max_size=8)


# ============================================================================ read_toml
@FUZZ
@given(data=st.binary(max_size=400))
def test_read_toml_arbitrary_bytes(tmp_path, data):
    p = tmp_path / "fuzz.toml"
    p.write_bytes(data)
    out = succeeds_or_project_error(read_toml, p)
    assert out is None or isinstance(out, dict)


TOML_PIECES = ["[device]\n", "[a.b]\n", "[[x]]\n", "dw_min = ", "nan", "inf", "-inf", "1e999", "0.1", "\"s\"",
               "'''", "\"\"\"", "[", "]", "{", "}", ",", "=", "\n", "# c\n", "a.b = 1\n", "1979-05-27T07:32:00Z",
               "true", "0x1F", "1_0", "\\u0000", "\x00", "\ufeff", "\r\n", " ", "key"]


@FUZZ
@given(text=st.lists(st.sampled_from(TOML_PIECES), max_size=30).map("".join))
def test_read_toml_toml_like_text(tmp_path, text):
    p = tmp_path / "fuzz.toml"
    p.write_text(text, encoding="utf-8")
    succeeds_or_project_error(read_toml, p)


def test_read_toml_deeply_nested(tmp_path):
    p = tmp_path / "deep.toml"
    p.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    succeeds_or_project_error(read_toml, p)


# ============================================================================ resolve_device
@FUZZ
@given(preset=preset_value, file_values=device_dicts(), sets=st.lists(st.tuples(device_key, values), max_size=4),
       array=st.sampled_from([None, "A", "W"]), allow_scopes=st.booleans())
def test_resolve_device_arbitrary_dicts(preset, file_values, sets, array, allow_scopes):
    cfg = succeeds_or_project_error(resolve_device, preset=preset, file_values=file_values, sets=sets,
                                    array=array, allow_scopes=allow_scopes)
    if cfg is not None:  # a config that was accepted is fully valid: every float finite
        for f in dataclasses.fields(cfg):
            v = getattr(cfg, f.name)
            if isinstance(v, float):
                assert math.isfinite(v), f"{f.name} = {v} accepted"


@FUZZ
@given(items=st.lists(st.text(max_size=20), max_size=5))
def test_set_assignments_then_resolve(items):
    """--set KEY=VALUE strings straight from a command line."""
    pairs = succeeds_or_project_error(parse_assignments, items)
    if pairs is not None:
        succeeds_or_project_error(resolve_device, preset="softbounds", sets=pairs)


@FUZZ
@given(extra=device_dicts(), preset=st.sampled_from(preset_names()))
def test_resolve_device_extra_layers(extra, preset):
    succeeds_or_project_error(resolve_device, preset=preset, extra_layers=[extra], array="A", allow_scopes=True)


# ============================================================================ fields.build
@pytest.mark.parametrize("cls, section", [(IOConfig, "io"), (UpdateConfig, "update"), (TransferConfig, "algorithm")],
                         ids=["IOConfig", "UpdateConfig", "TransferConfig"])
def test_build_arbitrary_values(cls, section):
    @FUZZ
    @given(values=field_dicts(cls))
    def inner(values):
        cfg = succeeds_or_project_error(build, cls, values, section)
        if cfg is not None:
            assert isinstance(cfg, cls)
            for f in dataclasses.fields(cfg):
                v = getattr(cfg, f.name)
                if isinstance(v, float) and f.metadata:
                    assert math.isfinite(v), f"{section}.{f.name} = {v} accepted"

    inner()


# ============================================================================ ints beyond float range
HUGE = 10 ** 400       # TOML (tomllib) returns such literals as Python ints: `dw_min = 1000...0`

OVERFLOW_BUG = ("BUG: analogtrain/config/fields.py coerce (line ~119, `return float(value)` for an int) raises "
                "OverflowError for an int beyond float range instead of ConfigError; CLI repro: a TOML file with "
                "`dw_min = 1` followed by 400 zeros -> `analogtrain device --config huge.toml` is an internal "
                "error, exit 1 (estimate.check_value, line ~170, has the same problem for [estimate] values)")


def test_resolve_device_int_beyond_float_range():
    succeeds_or_project_error(resolve_device, preset="softbounds", file_values={"dw_min": HUGE})


@pytest.mark.parametrize("cls, key", [(IOConfig, "inp_bound"), (UpdateConfig, "um_grad_scale"),
                                      (TransferConfig, "fast_lr")], ids=["IOConfig", "UpdateConfig", "TransferConfig"])
def test_build_int_beyond_float_range(cls, key):
    succeeds_or_project_error(build, cls, {key: HUGE}, "section")


def test_int_field_beyond_float_range_is_rejected():
    """An int field takes big ints without converting them to float: a range error, no crash."""
    assert succeeds_or_project_error(build, UpdateConfig, {"desired_bl": HUGE}, "update") is None


# ============================================================================ train config loader
_TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _typed_value(name: str):
    """A value of the field's own type (any range): ints for int fields, floats incl. nan/inf for
    float fields, any string for str fields."""
    t = str(_TRAIN_FIELDS[name].type).replace(" | None", "")
    if t == "int":
        return st.integers(min_value=-10 ** 6, max_value=10 ** 6)
    if t == "float":
        return st.floats(allow_nan=True, allow_infinity=True)
    if t == "bool":
        return st.booleans()
    if t == "str":
        return st.one_of(st.sampled_from(["fc3", "lenet", "lstm", "mnist", "digits", "warpeace", "agad", "sgd",
                                          "preset", "float32", "build-config"]), st.text(max_size=8))
    if "None" in t:
        return st.one_of(st.none(), st.text(max_size=8))
    return st.none()


@st.composite
def typed_train_dicts(draw):
    names = draw(st.lists(st.sampled_from([n for n in _TRAIN_FIELDS if n not in ("algo_sets", "device")]),
                          unique=True, max_size=8))
    d = {n: draw(_typed_value(n)) for n in names}
    if draw(st.booleans()):
        d["algo_sets"] = draw(st.dictionaries(st.text(max_size=8), scalars, max_size=3))
    if draw(st.booleans()):
        d["device"] = {"preset": draw(preset_value), **draw(st.dictionaries(device_key, scalars, max_size=3))}
    return d


def _load_train(d):
    """A train config from a flat dict: ``algo_sets`` -> [algorithm], ``device`` -> [device], the rest [train]."""
    d = dict(d)
    data = {"kind": "train", "train": d}
    if "algo_sets" in d:
        data["algorithm"] = d.pop("algo_sets")
    if "device" in d:
        data["device"] = d.pop("device")
    return load_config(data)


@FUZZ
@given(d=typed_train_dicts())
def test_train_config_typed_values(d):
    """Values of the right type but any range: the config rejects bad ones with ConfigError."""
    cfg = succeeds_or_project_error(_load_train, d)
    if cfg is not None:
        assert cfg.epochs >= 1 and cfg.batch_size >= 1 and math.isfinite(cfg.lr) and cfg.lr > 0
        assert 0 <= cfg.dropout < 1 and math.isfinite(cfg.grad_clip) and cfg.grad_clip >= 0


train_keys = st.one_of(st.sampled_from(sorted(_TRAIN_FIELDS)), random_keys)


@settings(FUZZ, report_multiple_bugs=False, derandomize=True, database=None)
@given(d=st.dictionaries(train_keys, values, max_size=8))
def test_train_config_arbitrary_values(d):
    succeeds_or_project_error(_load_train, d)


def test_train_config_device_not_a_table():
    succeeds_or_project_error(_load_train, {"device": 5})


def test_train_config_lr_string():
    succeeds_or_project_error(_load_train, {"lr": "abc"})


# ============================================================================ device fit CSV
needs_fit = pytest.mark.skipif(FIT is None or not hasattr(FIT, "parse_csv_text"), reason="no device fit reader")

CSV_TOKENS = ["pulse", "direction", "value", "device", "cycle", "w_0", "w_1", "up", "down", "start", "+1", "-1",
              "0", "1", "2", "-0.01", "0.01", "nan", "inf", "-inf", "1e999", "", "x", "\"", "\"a,b\"", "#", "\ufeff",
              " ", "1.5", "10000000000000000000000", "0x10"]


@st.composite
def csv_like(draw):
    header = draw(st.lists(st.sampled_from(["pulse", "direction", "value", "device", "cycle", "w_0", "w_1", "x"]),
                           min_size=0, max_size=5))
    rows = draw(st.lists(st.lists(st.sampled_from(CSV_TOKENS), min_size=0, max_size=len(header) + 1), max_size=25))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return sep.join([",".join(header)] + [",".join(r) for r in rows])


@needs_fit
@FUZZ
@given(text=st.text(max_size=300))
def test_fit_csv_arbitrary_text(text):
    out = succeeds_or_project_error(FIT.parse_csv_text, text, "fuzz.csv")
    assert out is None or isinstance(out, list)


@needs_fit
@FUZZ
@given(text=csv_like())
def test_fit_csv_structured_text(text):
    out = succeeds_or_project_error(FIT.parse_csv_text, text, "fuzz.csv")
    if out:
        for d in out:
            assert d.n_up >= FIT.MIN_STEPS and d.n_down >= FIT.MIN_STEPS
            for arr in (d.w, d.dw, d.values):
                assert all(math.isfinite(float(v)) for v in arr)


@needs_fit
@FUZZ
@given(data=st.binary(max_size=300))
def test_fit_csv_arbitrary_bytes(tmp_path, data):
    p = tmp_path / "fuzz.csv"
    p.write_bytes(data)
    succeeds_or_project_error(FIT.parse_csv, p)


@needs_fit
@settings(FUZZ, max_examples=40)     # each example runs four least-squares fits
@given(seed=st.integers(0, 10 ** 6), n=st.integers(1, 4), steps=st.integers(5, 30),
       noise=st.sampled_from([0.0, 1e-4, 1e-2, 1.0]), scale=st.sampled_from([1e-12, 1e-3, 1.0, 1e6]))
def test_fit_on_random_curves(seed, n, steps, noise, scale):
    """The whole fit on plausible random pulse responses: a result or a project error."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = ["device,pulse,direction,value"]
    for dev in range(n):
        v, p = 0.0, 0
        for cyc in range(2):
            for direction in ("up", "down"):
                for _ in range(steps):
                    step = rng.uniform(0.001, 0.02) * (1 if direction == "up" else -1)
                    v += (step + noise * rng.normal() * 0.01) * scale
                    rows.append(f"{dev},{p},{direction},{v!r}")
                    p += 1
    data = succeeds_or_project_error(FIT.parse_csv_text, "\n".join(rows), "curves.csv")
    assume(data is not None)
    succeeds_or_project_error(FIT.fit, data)
