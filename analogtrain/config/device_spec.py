"""Which device a run uses: a preset name plus the user's overrides, merged once.

A :class:`DeviceSpec` is what a run config stores about its devices: the preset (or
None when the overrides name a ``model``) and the user's keys, already merged from the
config file's ``[device]`` table, a ``--device-config`` file and ``--set`` flags (later
wins; aliases become field names; a virtual key and the fields it stands for exclude
each other, e.g. ``n_states`` and ``dw_min``). Keys may be scoped to one array of a
transfer algorithm: ``A.reference_std`` acts on the gradient array A only.

The device of one array is resolved on demand (:meth:`DeviceSpec.resolve`), with the
layers, lowest first: preset < a run's own base layer (e.g. the toy's fixed device) <
these overrides < a grid cell's axis values (n_states, sigma_r, a swept key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from analogtrain.config.device import PulsedDevice, device_alias_table
from analogtrain.config.fields import coerce, field_map
from analogtrain.config.loading import resolve_device, split_scope
from analogtrain.errors import ConfigError

DEFAULT_PRESET = "softbounds"
_SCOPES = ("A", "W")


def _canonical_key(key: str, aliases: Mapping[str, str]) -> str:
    """``"A.sigma_r"`` -> ``"A.reference_std"``; unknown names stay as given (errors come later)."""
    if "." in key:
        scope, name = key.split(".", 1)
        su = scope.upper()
        if su in _SCOPES:
            return f"{su}.{aliases.get(name, name)}"
        if scope.lower() == "device":
            return aliases.get(name, name)
        return key
    return aliases.get(key, key)


def flatten_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """A TOML ``[device]`` table as flat keys: nested ``[device.A]`` tables (or TOML's dotted
    keys ``A.reference_std = 0.3``) become scoped keys ``"A.reference_std"``."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict) and str(k).upper() in _SCOPES:
            for kk, vv in v.items():
                out[f"{str(k).upper()}.{kk}"] = vv
        else:
            out[str(k)] = v
    return out


def merge_layers(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge override layers (lowest first) into one ordered dict of canonical keys.

    A key given again by a later layer moves to the end, so that processing the merged
    dict in order gives the same result as applying the layers one after the other
    (this is how a later ``dw_min`` beats an earlier ``n_states`` and vice versa). Within
    one layer a field may be given once (``sigma_r`` and ``reference_std`` together are
    an error).
    """
    aliases = device_alias_table()
    merged: dict[str, Any] = {}
    for layer in layers:
        seen: dict[str, str] = {}
        for k, v in layer.items():
            ck = _canonical_key(str(k), aliases)
            if ck in seen:
                raise ConfigError(f"device.{k}: given twice (also as {seen[ck]})", field=f"device.{k}")
            seen[ck] = str(k)
            merged.pop(ck, None)
            merged[ck] = v
    return merged


@dataclass(frozen=True)
class DeviceSpec:
    """A preset and the user's merged overrides (see the module docstring).

    ``values`` is a tuple of ``(key, value)`` pairs in merge order. Built directly in
    Python, e.g. ``DeviceSpec("reram-sb", (("n_states", 100),))``; the device of every
    array is resolved once at construction, so a bad key or value fails here.
    """

    preset: str | None = DEFAULT_PRESET
    values: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.preset is not None and not isinstance(self.preset, str):
            raise ConfigError(f"device.preset: expected a preset name (got {self.preset!r})", field="device.preset")
        object.__setattr__(self, "values", tuple((str(k), v) for k, v in dict(self.values).items()))
        if self.preset is None and "model" not in self.as_dict():
            raise ConfigError("device.model: missing; give a preset (--preset NAME) or model = "
                              "\"soft_bounds_reference\" etc.", field="device.model")
        devices = {array: self.resolve(array) for array in self.scopes() or (None,)}
        object.__setattr__(self, "values", tuple((k, self._typed(k, v, devices)) for k, v in self.values))

    @staticmethod
    def _typed(key: str, value: Any, devices: Mapping[str | None, PulsedDevice]) -> Any:
        """A value given as text (``--set dw_min=0.004``) as its field's type, so the spec holds
        (and a config file records) numbers and booleans, not strings."""
        if not isinstance(value, str):
            return value
        scope, name = split_scope(key)
        dev = devices.get(scope) or next(iter(devices.values()))
        f = field_map(type(dev)).get(name)
        if f is not None:
            return coerce(type(dev), f, value, f"device.{key}")
        if name in ("n_states", "sigma_b", "gamma"):
            return float(value)
        return value

    # ------------------------------------------------------------------ building
    @classmethod
    def from_layers(cls, layers: Sequence[Mapping[str, Any]], preset: str | None = None,
                    where: Sequence[str] = ()) -> "DeviceSpec":
        """The spec from override layers (lowest first: config file table, device file,
        ``--set`` pairs) and an explicit ``--preset``.

        A ``preset`` key in a layer chooses the preset too (a later one wins); a layer that
        names a ``model`` without a preset drops the presets below it; with neither a
        preset nor a model anywhere the default preset is used. ``where`` names each layer
        for the conflict message of an explicit preset.
        """
        chosen: str | None = None
        plain: list[dict[str, Any]] = []
        for i, layer in enumerate(layers):
            layer = flatten_table(layer)
            if "preset" in layer:
                p = layer.pop("preset")
                if preset is not None and p != preset and where and i == len(layers) - 1:
                    raise ConfigError(f"{where[i]} preset={p} conflicts with --preset {preset}", field="device.preset")
                chosen = p
                plain = [{k: v for k, v in pl.items() if k != "model"} for pl in plain]
            elif "model" in layer:
                chosen = None
                plain = [{k: v for k, v in pl.items() if k != "model"} for pl in plain]
            plain.append(layer)
        if preset is not None:
            chosen = preset
        merged = merge_layers(plain)
        if chosen is None and "model" not in merged:
            chosen = DEFAULT_PRESET
        return cls(preset=chosen, values=tuple(merged.items()))

    def with_values(self, **values: Any) -> "DeviceSpec":
        """A copy with more overrides on top (``with_values(n_states=100)``)."""
        return DeviceSpec(self.preset, tuple(merge_layers([self.as_dict(), values]).items()))

    # ------------------------------------------------------------------ reading
    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def scopes(self) -> tuple[str, ...]:
        """The array scopes (``"A"``, ``"W"``) the overrides name."""
        return tuple(sorted({split_scope(k)[0] for k in self.as_dict() if split_scope(k)[0]}))

    def keys(self, array: str | None = None) -> set[str]:
        """The override keys that act on ``array`` (unscoped ones act on every array)."""
        out = set()
        for k in self.as_dict():
            scope, name = split_scope(k)
            if scope is None or scope == array:
                out.add(name)
        return out

    def resolve(self, array: str | None = None, *, base: Mapping[str, Any] | None = None,
                extra: Mapping[str, Any] | None = None, allow_scopes: bool = True) -> PulsedDevice:
        """The validated device config of ``array`` ("A", "W" or None): preset < ``base`` <
        the overrides < ``extra`` (a grid cell's values; keys may be scoped)."""
        layers = [dict(base or {}), self.as_dict(), dict(extra or {})]
        return resolve_device(preset=self.preset, file_values={}, sets=(), array=array, allow_scopes=allow_scopes,
                              extra_layers=layers)

    def to_table(self) -> dict[str, Any]:
        """The ``[device]`` table of a config file: ``preset`` and the overrides, scoped keys
        as ``[device.A]`` / ``[device.W]`` subtables."""
        out: dict[str, Any] = {}
        if self.preset is not None:
            out["preset"] = self.preset
        sub: dict[str, dict[str, Any]] = {}
        for k, v in self.values:
            scope, name = split_scope(k)
            if scope is None:
                out[name] = v
            else:
                sub.setdefault(scope, {})[name] = v
        out.update(sub)
        return out

    def describe(self) -> str:
        """One line: ``softbounds + n_states=100, A.reference_std=0.3``."""
        parts = [f"{k}={v}" for k, v in self.values]
        head = self.preset or "custom"
        return head + (" + " + ", ".join(parts) if parts else "")
