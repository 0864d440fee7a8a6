"""Field declarations with documentation, units and ranges, and their validation.

Every config field is declared with :func:`param`, which stores a one-line doc, the
unit and the allowed range in the dataclass field's metadata. :func:`validate` checks
a dataclass instance against that metadata once, when it is built, and raises a
:class:`~analogtrain.errors.ConfigError` naming the field, the allowed range and the
value that was given. The engine trusts validated configs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from analogtrain.errors import ConfigError

_MISSING = dataclasses.MISSING


def param(
    default: Any,
    doc: str,
    *,
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    aliases: Sequence[str] = (),
    nullable: bool = False,
) -> Any:
    """A dataclass field with its documentation and range in the metadata.

    ``ge``/``gt``/``le``/``lt`` bound numbers; ``choices`` restricts strings;
    ``aliases`` are other accepted spellings (e.g. the paper's symbols);
    ``nullable`` allows ``None`` (meaning "derived" or "off", as the doc says).
    """
    meta = dict(doc=doc, unit=unit, ge=ge, gt=gt, le=le, lt=lt, choices=tuple(choices) if choices else None,
                aliases=tuple(aliases), nullable=nullable)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def range_text(meta: dict) -> str:
    """Human text of a field's allowed range, e.g. ``> 0`` or ``in [0, 1]``."""
    if meta.get("choices"):
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    lo = ("[", meta["ge"]) if meta.get("ge") is not None else ("(", meta["gt"]) if meta.get("gt") is not None else None
    hi = ("]", meta["le"]) if meta.get("le") is not None else (")", meta["lt"]) if meta.get("lt") is not None else None
    if lo and hi:
        return f"in {lo[0]}{_fmt(lo[1])}, {_fmt(hi[1])}{hi[0]}"
    if lo:
        return (">= " if lo[0] == "[" else "> ") + _fmt(lo[1])
    if hi:
        return ("<= " if hi[0] == "]" else "< ") + _fmt(hi[1])
    return "any finite value"


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def field_type(cls: type, f: dataclasses.Field) -> type:
    """The Python type of a field (resolving string annotations of simple types)."""
    t = f.type
    if isinstance(t, str):
        t = t.replace(" ", "")
        for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
            if t in (name, f"{name}|None", f"None|{name}", f"Optional[{name}]"):
                return typ
        if t.startswith("tuple"):
            return tuple
        return object
    return t


def coerce(cls: type, f: dataclasses.Field, value: Any, where: str) -> Any:
    """Convert ``value`` (from TOML or a ``KEY=VALUE`` string) to the field's type.

    Strings from the command line are parsed (``"0.5"`` -> 0.5, ``"true"`` -> True).
    Raises ConfigError with the field path ``where`` on a wrong type.
    """
    typ = field_type(cls, f)
    meta = f.metadata
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and meta.get("nullable")):
        if meta.get("nullable"):
            return None
        raise ConfigError(f"{where}: a value is required ({range_text(meta)})")
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{where}: expected true or false (got {value!r})")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer (got {value!r})")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                fv = float(value)
            except ValueError:
                fv = None
            if fv is not None and math.isfinite(fv) and fv.is_integer():
                return int(fv)
        raise ConfigError(f"{where}: expected an integer (got {value!r})")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number (got {value!r})")
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:
                raise ConfigError(f"{where}: number out of range ({range_text(meta)})") from None
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number (got {value!r})")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string (got {value!r})")
    if typ is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list (got {value!r})")
    return value


def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Raise ConfigError if ``value`` violates the field's range/choices."""
    meta = f.metadata
    if value is None:
        if not meta.get("nullable"):
            raise ConfigError(f"{where}: a value is required ({range_text(meta)})")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{where}: must be {range_text(meta)} (got {value!r})")
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, {range_text(meta)} (got {value!r})")
    bad = ((meta.get("ge") is not None and value < meta["ge"])
           or (meta.get("gt") is not None and value <= meta["gt"])
           or (meta.get("le") is not None and value > meta["le"])
           or (meta.get("lt") is not None and value >= meta["lt"]))
    if bad:
        raise ConfigError(f"{where}: must be {range_text(meta)} (got {value!r})")


def validate(obj: Any, section: str) -> None:
    """Check every field of a dataclass instance against its metadata."""
    for f in dataclasses.fields(obj):
        if not f.metadata:
            continue
        check_value(f, getattr(obj, f.name), f"{section}.{f.name}")


def field_map(cls: type) -> dict[str, dataclasses.Field]:
    """Name -> Field of a dataclass, including each field's aliases as extra keys."""
    out: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(cls):
        out[f.name] = f
        for a in f.metadata.get("aliases", ()):
            out[a] = f
    return out


def build(cls: type, values: dict[str, Any], section: str, extra_ok: Sequence[str] = ()) -> Any:
    """Instantiate ``cls`` from a dict of (possibly aliased, possibly string) values.

    Unknown keys raise ConfigError listing the nearest known names. Keys in ``extra_ok``
    are ignored here (the caller handles them).
    """
    fmap = field_map(cls)
    kwargs: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in values.items():
        if key in extra_ok:
            continue
        f = fmap.get(key)
        if f is None:
            raise ConfigError(unknown_key_message(section, key, [f.name for f in dataclasses.fields(cls)]))
        if f.name in given_as:
            raise ConfigError(f"{section}.{key}: given twice (also as {given_as[f.name]})")
        given_as[f.name] = key
        kwargs[f.name] = coerce(cls, f, value, f"{section}.{key}")
    return cls(**kwargs)


def unknown_key_message(section: str, key: str, known: Sequence[str]) -> str:
    """'section.key: unknown key (did you mean X?)' with close matches."""
    import difflib

    close = difflib.get_close_matches(str(key), list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return f"{section}.{key}: unknown key{hint}"


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain dict of a (possibly nested) config dataclass; tuples become lists."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def describe(cls: type) -> list[dict[str, str]]:
    """Rows (name, default, unit, range, doc) documenting every field of ``cls``."""
    rows = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        if not m:
            continue
        default = f.default if f.default is not _MISSING else ""
        rows.append(dict(name=f.name, default=repr(default) if isinstance(default, str) else str(default),
                         unit=m.get("unit", ""), range=range_text(m), doc=m.get("doc", ""),
                         aliases=", ".join(m.get("aliases", ()))))
    return rows
