"""The one loader of run configs: built-in defaults < presets < TOML file < command-line flags.

Every subcommand and :func:`analogtrain.load_config` build their config here. Values
arrive in :class:`Layer` objects (a TOML file, a device file, the flags), lowest
precedence first; :func:`build_config` merges them, converts every raw value with the
field's own type (:func:`~analogtrain.config.fields.coerce`) and constructs the frozen
config class, which validates itself. When a value is refused, the message names where
it came from::

    --lr (train.lr): must be > 0 (got -1.0)
    config file /runs/a.toml: program.steps: must be >= 1 (got -5)

Relative paths (a data directory, a measured-data file) are made absolute: against the
working directory for flags, against the file's own directory for a TOML file, so a
saved config means the same wherever it is run from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import coerce, field_map, unknown_key_message
from analogtrain.config.loading import read_toml
from analogtrain.errors import ConfigError
from analogtrain.kinds import KINDS, config_class

def all_config_classes() -> list[type]:
    return [config_class(k) for k in KINDS]


@dataclass
class Layer:
    """One source of values.

    ``own``: the run's own fields (or virtual keys) -> raw values; ``tables``: table name
    -> list of raw dicts (a layer may hold two device tables: a config file's and a device
    file's); ``label``: where the values come from (``"config file a.toml"``, ``"flags"``);
    ``flags``: for the flag layer, field -> the flag the user typed (``"--lr"``), so that
    errors name it; ``preset``: an explicit ``--preset``; ``base_dir``: relative paths are
    taken relative to it.
    """

    label: str
    own: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    preset: str | None = None
    base_dir: Path | None = None
    table_labels: dict[str, list[str]] = field(default_factory=dict)
    typed: bool = False

    def add_table(self, name: str, values: Mapping[str, Any], label: str | None = None) -> None:
        self.tables.setdefault(name, []).append(dict(values))
        self.table_labels.setdefault(name, []).append(label or self.label)


# ---------------------------------------------------------------------------------- files
def file_layer(data: Mapping[str, Any], cls: type, label: str, base_dir: Path | None) -> Layer:
    """A layer from a parsed TOML file (or the ``config`` object of a summary.json).

    Accepted tables: the class's own section and its :attr:`tables`; a ``kind`` key, if
    present, must be the class's kind. Top-level scalar keys (other than ``kind``) are
    device keys when the class has a device (a device file written without a table).
    """
    data = dict(data)
    kind = data.pop("kind", None)
    if kind is not None and kind != cls.kind:
        raise ConfigError(f"{label}: kind = {kind!r}, expected {cls.kind!r} for this command", field="kind")
    layer = Layer(label=label, base_dir=base_dir, typed=True)
    known = {cls.section, *cls.tables}
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ConfigError(f"{label}: unknown table(s) {', '.join(unknown)}; expected "
                          + ", ".join(f"[{t}]" for t in [cls.section, *cls.tables]), field=unknown[0])
    if scalars:
        if "device" in cls.tables and "device" not in tables:
            tables["device"] = scalars
        else:
            k = sorted(scalars)[0]
            raise ConfigError(f"{label}: top-level key {k!r}: expected the tables "
                              + ", ".join(f"[{t}]" for t in [cls.section, *cls.tables]), field=k)
    if not tables:
        raise ConfigError(f"{label}: no [{cls.section}] table"
                          + (f" (nor {', '.join(f'[{t}]' for t in cls.tables)})" if cls.tables else ""),
                          field=cls.section)
    for name, t in tables.items():
        if name == cls.section:
            own = dict(t)
            fields = set(field_map(cls))
            for sub in [k for k in own if k in cls.tables]:     # [program] sweep = {...}: a table inline
                if isinstance(own[sub], dict):
                    layer.add_table(sub, own.pop(sub))
                elif sub not in fields:
                    raise ConfigError(f"{label}: {cls.section}.{sub} must be a table ([{sub}] KEY = value)",
                                      field=f"{cls.section}.{sub}")
            layer.own.update(own)
        else:
            layer.add_table(name, t)
    return layer


def read_config_file(path: str | Path, cls: type, what: str = "config file") -> Layer:
    p = Path(path)
    data = read_toml(p, what=what)
    return file_layer(data, cls, f"{what} {p}", p.resolve().parent)


def device_file_layer(path: str | Path) -> Layer:
    """A ``--device-config`` file: its ``[device]`` table, or its top-level keys."""
    p = Path(path)
    data = read_toml(p, what="device file")
    table = data.get("device") if isinstance(data.get("device"), dict) else \
        {k: v for k, v in data.items() if not isinstance(v, dict) and k != "kind"}
    if not table:
        raise ConfigError(f"device file {p}: no [device] table and no device keys", field="device")
    layer = Layer(label=f"device file {p}", base_dir=p.resolve().parent, typed=True)
    layer.add_table("device", table)
    return layer


def infer_kind(data: Mapping[str, Any]) -> str | None:
    """The kind of a config dict without a ``kind`` key, from its tables."""
    if isinstance(data.get("kind"), str):
        return data["kind"]
    for kind in KINDS:
        cls = config_class(kind)
        if cls.section in data and isinstance(data[cls.section], dict):
            return kind
    if isinstance(data.get("device"), dict) or any(not isinstance(v, dict) for v in data.values()):
        return "device"
    return None


def load_config(source: str | Path | Mapping[str, Any]):
    """A run config from a TOML file (as ``--print-config`` writes it) or its dict.

    The ``kind`` key says which run it is (``program``, ``train``, ``device``, ``fit``,
    ``toy``, ``estimate``, ``endurance``); without it the kind is taken from the tables.
    Raises :class:`~analogtrain.errors.ConfigError` naming the field and the allowed
    range for any invalid value.
    """
    if isinstance(source, Mapping):
        data, label, base = dict(source), "config", None
    else:
        p = Path(source)
        data, label, base = read_toml(p), f"config file {p}", p.resolve().parent
    kind = infer_kind(data)
    if kind is None:
        raise ConfigError(f"{label}: no 'kind' key and no table that names a run ({', '.join(KINDS)})",
                          field="kind")
    cls = config_class(kind)
    return build_config(cls, [file_layer(data, cls, label, base)])


# ---------------------------------------------------------------------------------- merging
def build_config(cls: type, layers: Sequence[Layer]):
    """The config of ``cls`` from ``layers`` (lowest precedence first); see the module docstring."""
    section = cls.section
    fmap = field_map(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    table_fields = set(cls.tables.values())
    raw: dict[str, tuple[Any, Layer, str]] = {}         # field -> (value, layer, key as given)
    for layer in layers:
        for key, value in layer.own.items():
            if key in cls.virtual:
                where = _where(layer, key, section)
                try:
                    expanded = cls.virtual[key](value, where)
                except ConfigError as e:
                    raise _relabel(e, layer, key, section) from None
                for fname, v in expanded.items():
                    raw[fname] = (v, layer, key)
                continue
            f = fmap.get(key)
            if f is None or f.name in table_fields:
                msg = unknown_key_message(section, key, sorted(n for n in names - table_fields))
                raise _relabel(ConfigError(msg, field=f"{section}.{key}"), layer, key, section) from None
            raw[f.name] = (value, layer, key)
    kwargs: dict[str, Any] = {}
    for fname, (value, layer, key) in raw.items():
        f = next(ff for ff in dataclasses.fields(cls) if ff.name == fname)
        try:
            v = coerce(cls, f, value, f"{section}.{fname}", strict=layer.typed)
        except ConfigError as e:
            raise _relabel(e, layer, key, section) from None
        if fname in cls.paths and isinstance(v, str):
            try:
                v = _absolute(v, layer.base_dir, f"{section}.{fname}")
            except ConfigError as e:
                raise _relabel(e, layer, key, section) from None
        kwargs[fname] = v
    for table, fname in cls.tables.items():
        parts = [(t, lay) for lay in layers for t in lay.tables.get(table, [])]
        labels = [lab for lay in layers for lab in lay.table_labels.get(table, [])]
        preset = next((lay.preset for lay in reversed(layers) if lay.preset is not None), None)
        if fname == "device":
            if parts or preset is not None:
                kwargs[fname] = DeviceSpec.from_layers([t for t, _ in parts], preset=preset, where=labels)
        elif parts:
            merged: dict[str, Any] = {}
            for t, _ in parts:
                for k, v in t.items():
                    merged.pop(k, None)
                    merged[k] = v
            kwargs[fname] = tuple(merged.items())
    sources = {fname: (layer, key) for fname, (_, layer, key) in raw.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        fname = (e.field or "").split(".", 1)[1] if (e.field or "").startswith(section + ".") else None
        if fname in sources:
            layer, key = sources[fname]
            raise _relabel(e, layer, key, section) from None
        raise


def _where(layer: Layer, key: str, section: str) -> str:
    return f"{section}.{key}"


def _relabel(e: ConfigError, layer: Layer, key: str, section: str) -> ConfigError:
    """The same error, saying where the value came from (a flag or a file)."""
    msg = str(e)
    if layer.flags and key in layer.flags:
        flag = layer.flags[key]
        fld = e.field or f"{section}.{key}"
        rest = msg[len(fld) + 2:] if msg.startswith(fld + ": ") else msg
        return ConfigError(f"{flag} ({fld}): {rest}", field=e.field)
    if layer.label and layer.label not in ("flags", "config"):
        return ConfigError(f"{layer.label}: {msg}", field=e.field)
    return e


def _absolute(path: str, base: Path | None, where: str = "path") -> str:
    """``path`` made absolute (``~`` expanded; relative to ``base``, else the working directory)."""
    try:
        p = Path(path)
        try:
            p = p.expanduser()
        except RuntimeError:          # "~user" of an unknown user: keep it literal
            pass
        if not p.is_absolute():
            p = (base or Path.cwd()) / p
        return str(p.resolve())
    except (ValueError, OSError) as e:
        raise ConfigError(f"{where}: not a valid path {path!r} ({e})", field=where) from None


def layer_from_dict(values: Mapping[str, Any], label: str = "flags") -> Layer:
    """A layer of own fields only (tests and Python callers)."""
    return Layer(label=label, own=dict(values))
