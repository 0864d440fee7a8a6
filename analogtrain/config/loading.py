"""Building configs from presets, TOML files and ``KEY=VALUE`` overrides.

Precedence, lowest first: built-in defaults < preset < TOML config file < command-line
``--set KEY=VALUE``. Device dicts are merged layer by layer; within the merge two
virtual keys are resolved:

* ``n_states`` and ``dw_min`` exclude each other: the layer that sets one drops the
  other from the layers below (so ``--set n_states=100`` on a preset that fixes
  ``dw_min`` wins, and vice versa);
* ``sigma_b`` (the paper's bound variation) sets ``w_max_dtod`` and ``w_min_dtod``.

Keys may be scoped to one array of a transfer algorithm: ``A.reference_std=0.3``
applies to the fast array A only, ``W.dw_min=0.01`` to the weight array W only.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from analogtrain.errors import ConfigError
from analogtrain.config.device import PulsedDevice, model_class
from analogtrain.config.fields import build, field_map, unknown_key_message

ARRAY_SCOPES = ("A", "W")
_VIRTUAL_DEVICE_KEYS = ("n_states", "sigma_b", "gamma", "preset")
#: virtual key -> the field names it sets (a later layer setting either side drops the other)
_GROUPS = {"n_states": ("dw_min",), "sigma_b": ("w_max_dtod", "w_min_dtod"), "gamma": ("gamma_up", "gamma_down")}


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file; ConfigError naming the file on any problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {p}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {p}: is a directory, expected a TOML file") from None
    except OSError as e:
        raise ConfigError(f"{what} {p}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {p}: not UTF-8 text, expected a TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} {p}: invalid TOML ({e})") from None
    except RecursionError:
        raise ConfigError(f"{what} {p}: invalid TOML (nested too deeply)") from None


def parse_scalar(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string (a value typed on
    the command line whose field type is not known yet, e.g. a sweep value)."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_assignments(items: Iterable[str], flag: str = "--set") -> list[tuple[str, str]]:
    """``["a=1", "b=x"]`` -> ``[("a", "1"), ("b", "x")]``; ConfigError on a malformed item."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        if not k or not v:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE with a non-empty key and value")
        out.append((k, v))
    return out


def split_scope(key: str) -> tuple[str | None, str]:
    """``"A.dw_min"`` -> ``("A", "dw_min")``; ``"dw_min"`` -> ``(None, "dw_min")``."""
    if "." in key:
        scope, rest = key.split(".", 1)
        su = scope.upper()
        if su in ARRAY_SCOPES:
            return su, rest
        if scope.lower() == "device":
            return None, rest
        raise ConfigError(f"device.{key}: unknown scope {scope!r}; use A.KEY or W.KEY (or no scope)")
    return None, key


def scoped_layer(values: dict[str, Any], array: str | None, allow_scopes: bool) -> dict[str, Any]:
    """The keys of one layer that apply to ``array`` (unscoped first, then scoped ones)."""
    plain: dict[str, Any] = {}
    scoped: dict[str, Any] = {}
    for k, v in values.items():
        scope, name = split_scope(k)
        if scope is None:
            plain[name] = v
        elif not allow_scopes:
            raise ConfigError(f"device.{k}: array scopes (A./W.) only apply to transfer algorithms")
        elif scope == array:
            scoped[name] = v
    plain.update(scoped)
    return plain


def merge_device_layers(layers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge device dicts, lowest precedence first.

    Aliases are mapped to field names first. A virtual key (``n_states``, ``sigma_b``,
    ``gamma``) and the fields it stands for exclude each other: the later layer wins.
    """
    from analogtrain.config.device import device_alias_table

    aliases = device_alias_table()
    merged: dict[str, Any] = {}
    for layer in layers:
        canon: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        for k, v in layer.items():
            name = aliases.get(k, k)
            if name in given_as:
                raise ConfigError(f"device.{k}: given twice (also as {given_as[name]})")
            given_as[name] = k
            canon[name] = v
        for k, v in canon.items():
            for virtual, targets in _GROUPS.items():
                if k == virtual:
                    for t in targets:
                        merged.pop(t, None)
                elif k in targets and virtual in merged:
                    value = merged.pop(virtual)
                    if virtual != "n_states":  # expand the other half of a pair
                        for t in targets:
                            merged.setdefault(t, value)
            merged[k] = v
    return merged


def device_from_dict(values: dict[str, Any], section: str = "device") -> PulsedDevice:
    """A validated device config from one merged dict (must contain ``model``)."""
    values = dict(values)
    values.pop("preset", None)
    model = values.pop("model", None)
    if model is None:
        raise ConfigError(f"{section}.model: missing; give a preset (--preset NAME) or model = \"soft_bounds_reference\" etc.")
    if not isinstance(model, str):
        raise ConfigError(f"{section}.model: expected a string (got {model!r})")
    cls = model_class(model)
    n_states = values.pop("n_states", None)
    for virtual in ("sigma_b", "gamma"):
        if virtual in values:
            value = values.pop(virtual)
            for t in _GROUPS[virtual]:
                values[t] = value
    cfg = build(cls, values, section)
    if n_states is not None:
        try:
            ns = float(n_states)
        except (TypeError, ValueError):
            raise ConfigError(f"{section}.n_states: expected a number (got {n_states!r})") from None
        if not math.isfinite(ns) or ns <= 0 or isinstance(n_states, bool):
            raise ConfigError(f"{section}.n_states: must be > 0 (got {n_states!r})")
        kw = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
        dw = cls.dw_min_for_states(ns, **kw)
        if not 0 < dw <= 10:
            raise ConfigError(f"{section}.n_states: gives dw_min = {dw:g}, outside (0, 10]")
        cfg = dataclasses.replace(cfg, dw_min=dw)
    return cfg


def device_keys(model: str) -> list[str]:
    """Every key a device dict of ``model`` accepts (fields, aliases, virtual keys)."""
    return sorted(set(field_map(model_class(model))) | set(_VIRTUAL_DEVICE_KEYS) | {"model"})


def resolve_device(
    preset: str | None = None,
    file_values: dict[str, Any] | None = None,
    sets: Sequence[tuple[str, Any]] = (),
    array: str | None = None,
    allow_scopes: bool = False,
    extra_layers: Sequence[dict[str, Any]] = (),
    section: str = "device",
) -> PulsedDevice:
    """The device config of one array from a preset, a config-file table and overrides.

    ``extra_layers`` sit between the config file and the command-line overrides (the
    algorithm layer uses them, e.g. for the sigma_r sweep value of a replica).
    """
    from analogtrain.engine.devices.presets import canonical_preset, preset_values, preset_names

    file_values = dict(file_values or {})
    base_name = preset if preset is not None else file_values.pop("preset", None)
    if preset is not None:
        file_values.pop("preset", None)
    layers: list[dict[str, Any]] = []
    if base_name is not None:
        canon = canonical_preset(str(base_name))
        if canon is None:
            raise ConfigError(f"{section}.preset: unknown preset {base_name!r}; "
                              f"known: {', '.join(preset_names())}")
        layers.append(preset_values(canon))
    layers.append(scoped_layer(file_values, array, allow_scopes))
    for extra in extra_layers:
        layers.append(scoped_layer(extra, array, allow_scopes))
    layers.append(scoped_layer(dict(sets), array, allow_scopes))
    merged = merge_device_layers(layers)
    _check_keys(merged, section)
    return device_from_dict(merged, section)


def _check_keys(values: dict[str, Any], section: str) -> None:
    model = values.get("model")
    if not isinstance(model, str):
        return
    known = device_keys(model)
    for k in values:
        if k not in known:
            raise ConfigError(unknown_key_message(section, k, [n for n in known if not n.startswith("sigma_") or n == "sigma_r"]))
