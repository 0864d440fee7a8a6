"""Field declarations with documentation, units and ranges, and their validation.

Every config field is declared once with :func:`param`, which stores a one-line doc,
the unit, the allowed range (or choices), aliases and the command-line flag in the
dataclass field's metadata. The same metadata drives everything else:

* :func:`coerce` turns a raw value (a TOML value or a command-line string) into the
  field's type (``bool``, ``int``, ``float``, ``str`` or a ``tuple`` of one of those);
* :func:`validate` checks a built dataclass once, in its ``__post_init__``, and raises a
  :class:`~analogtrain.errors.ConfigError` naming the field, the allowed range and the
  value that was given; so an invalid config object cannot exist;
* :func:`describe` documents every field (``--describe``, the CLI's help texts).

The engine trusts validated configs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import sys
import typing
from typing import Any, Callable, Sequence

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
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
    aliases: Sequence[str] = (),
    nullable: bool = False,
    flag: str | None = None,
    min_items: int = 0,
    default_doc: str | None = None,
) -> Any:
    """A dataclass field with its documentation and range in the metadata.

    ``ge``/``gt``/``le``/``lt`` bound numbers; ``choices`` restricts values (a sequence,
    or a function returning one, e.g. the names of a registry); for a tuple field the
    range and choices apply to every element and ``min_items`` bounds its length;
    ``aliases`` are other accepted spellings (the paper's symbols, the established
    simulator's names); ``nullable`` allows ``None`` (meaning "derived" or "off", as the
    doc says); ``flag`` is the command-line flag (default ``--field-name``);
    ``default_doc`` describes a derived default in help texts (e.g. "per model").
    """
    meta = dict(doc=doc, unit=unit, ge=ge, gt=gt, le=le, lt=lt, choices=choices, aliases=tuple(aliases),
                nullable=nullable, flag=flag, min_items=min_items, default_doc=default_doc)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def choices_of(meta) -> tuple | None:
    """The allowed values of a field (evaluating a registry function), or None."""
    c = meta.get("choices")
    if c is None:
        return None
    return tuple(c() if callable(c) else c)


def range_text(meta) -> str:
    """Human text of a field's allowed range, e.g. ``> 0`` or ``in [0, 1]``."""
    choices = choices_of(meta)
    if choices:
        return "one of " + ", ".join(str(c) for c in choices)
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


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a field: its ``flag`` metadata, else ``--name-with-dashes``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


# ------------------------------------------------------------------------------ types
_SIMPLE = {"bool": bool, "int": int, "float": float, "str": str}


def field_type(cls: type, f: dataclasses.Field) -> tuple[type, type | None]:
    """(type, element type) of a field: ``(float, None)``, ``(tuple, float)`` for
    ``tuple[float, ...]``, ``(object, None)`` for anything else (nested configs)."""
    return _field_types(cls).get(f.name) or _resolve_type(cls, f)


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, tuple[type, type | None]]:
    return {f.name: _resolve_type(cls, f) for f in dataclasses.fields(cls)}


def _resolve_type(cls: type, f: dataclasses.Field) -> tuple[type, type | None]:
    t = f.type
    if isinstance(t, str):
        try:
            t = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))[f.name]
        except Exception:  # an annotation we cannot resolve: treat as opaque
            return _from_text(t)
    args = [a for a in typing.get_args(t) if a is not type(None)]
    origin = typing.get_origin(t)
    if origin is tuple:
        item = args[0] if args and args[0] in (bool, int, float, str) else None
        return tuple, item
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return field_type_of(args[0])
    return field_type_of(t)


def field_type_of(t) -> tuple[type, type | None]:
    if t in (bool, int, float, str):
        return t, None
    if typing.get_origin(t) is tuple:
        args = typing.get_args(t)
        return tuple, (args[0] if args and args[0] in (bool, int, float, str) else None)
    return object, None


def _from_text(t: str) -> tuple[type, type | None]:
    t = t.replace(" ", "")
    for name, typ in _SIMPLE.items():
        if t in (name, f"{name}|None", f"None|{name}", f"Optional[{name}]"):
            return typ, None
    if t.startswith("tuple"):
        for name, typ in _SIMPLE.items():
            if t.startswith(f"tuple[{name}"):
                return tuple, typ
        return tuple, None
    return object, None


# ------------------------------------------------------------------------------ coercion
def _err(where: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: {text}", field=where)


def coerce(cls: type, f: dataclasses.Field, value: Any, where: str, strict: bool = False) -> Any:
    """Convert ``value`` (from TOML or a ``KEY=VALUE`` string) to the field's type.

    Strings from the command line are parsed (``"0.5"`` -> 0.5, ``"true"`` -> True,
    ``"a,b"`` -> ``("a", "b")`` for a tuple field). With ``strict`` (typed sources such as
    TOML, which has real numbers and booleans) a string is refused for a number or boolean
    field; a tuple field still accepts a comma string. Raises ConfigError with the field
    path ``where`` on a wrong type; ranges are checked later, by :func:`validate`.
    """
    typ, item = field_type(cls, f)
    meta = f.metadata
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and meta.get("nullable")):
        if meta.get("nullable"):
            return None
        raise _err(where, f"a value is required ({range_text(meta)})")
    if typ is tuple:
        if isinstance(value, str):
            parts = [v.strip() for v in value.split(",")]
            if len(parts) > 1 and not all(parts):
                raise _err(where, f"empty value in the list {value!r}")
            value = [v for v in parts if v]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        if item is None:
            return tuple(value)
        return tuple(coerce_scalar(item, v, where) for v in value)
    if typ in (bool, int, float, str):
        if strict and ((typ is not str and isinstance(value, str)) or (typ is int and isinstance(value, float))):
            kind = {bool: "true or false", int: "an integer", float: "a number"}[typ]
            raise _err(where, f"expected {kind} (got {value!r})")
        return coerce_scalar(typ, value, where)
    return value


def coerce_scalar(typ: type, value: Any, where: str) -> Any:
    """One value as ``typ`` (bool, int, float or str); ConfigError naming ``where`` otherwise."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
            return False
        raise _err(where, f"expected true or false (got {value!r})")
    if typ is int:
        if isinstance(value, bool):
            raise _err(where, f"expected an integer (got {value!r})")
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
        raise _err(where, f"expected an integer (got {value!r})")
    if typ is float:
        if isinstance(value, bool):
            raise _err(where, f"expected a number (got {value!r})")
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:
                raise _err(where, "number out of range") from None
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _err(where, f"expected a number (got {value!r})")
    if typ is str:
        if isinstance(value, str):
            return value
        raise _err(where, f"expected a string (got {value!r})")
    return value


# ------------------------------------------------------------------------------ validation
def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Raise ConfigError if ``value`` violates the field's range, choices or length."""
    meta = f.metadata
    if value is None:
        if not meta.get("nullable"):
            raise _err(where, f"a value is required ({range_text(meta)})")
        return
    if isinstance(value, tuple):
        if len(value) < meta.get("min_items", 0):
            raise _err(where, f"needs at least {meta['min_items']} value(s) (got {len(value)})")
        for v in value:
            _check_one(meta, v, where)
        return
    _check_one(meta, value, where)


def _check_one(meta, value: Any, where: str) -> None:
    choices = choices_of(meta)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if choices and value not in choices:
            raise _err(where, f"must be {range_text(meta)} (got {value!r})")
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise _err(where, f"must be a finite number, {range_text(meta)} (got {value!r})")
    if choices and value not in choices:
        raise _err(where, f"must be {range_text(meta)} (got {value!r})")
    bad = ((meta.get("ge") is not None and value < meta["ge"])
           or (meta.get("gt") is not None and value <= meta["gt"])
           or (meta.get("le") is not None and value > meta["le"])
           or (meta.get("lt") is not None and value >= meta["lt"]))
    if bad:
        raise _err(where, f"must be {range_text(meta)} (got {value!r})")


def validate(obj: Any, section: str) -> None:
    """Check every declared field of a dataclass instance against its metadata."""
    for f in dataclasses.fields(obj):
        if not f.metadata:
            continue
        check_value(f, getattr(obj, f.name), f"{section}.{f.name}")


def check_types(obj: Any, section: str) -> None:
    """Check that every declared field holds a value of its type (for objects built directly
    in Python, where no coercion ran): ints are accepted for floats, nothing else is."""
    for f in dataclasses.fields(obj):
        if not f.metadata:
            continue
        v = getattr(obj, f.name)
        if v is None:
            continue
        typ, item = field_type(type(obj), f)
        where = f"{section}.{f.name}"
        if typ is tuple:
            if not isinstance(v, tuple):
                raise _err(where, f"expected a tuple of values (got {v!r})")
            if item is not None:
                for x in v:
                    _check_type(item, x, where)
        elif typ in (bool, int, float, str):
            _check_type(typ, v, where)


def _check_type(typ: type, v: Any, where: str) -> None:
    ok = (isinstance(v, bool) if typ is bool else
          (isinstance(v, int) and not isinstance(v, bool)) if typ is int else
          (isinstance(v, (int, float)) and not isinstance(v, bool)) if typ is float else
          isinstance(v, str))
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[typ]
        raise _err(where, f"expected {kind} (got {v!r})")


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
            raise ConfigError(unknown_key_message(section, key, [f.name for f in dataclasses.fields(cls)]),
                              field=f"{section}.{key}")
        if f.name in given_as:
            raise _err(f"{section}.{key}", f"given twice (also as {given_as[f.name]})")
        given_as[f.name] = key
        kwargs[f.name] = coerce(cls, f, value, f"{section}.{key}")
    return cls(**kwargs)


def unknown_key_message(section: str, key: str, known: Sequence[str]) -> str:
    """'section.key: unknown key (did you mean X?)' with close matches."""
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
    """Rows (name, default, unit, range, doc, aliases) documenting every field of ``cls``."""
    rows = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        if not m:
            continue
        default = f.default if f.default is not _MISSING else ""
        if m.get("default_doc") and default is None:
            default = m["default_doc"]
        rows.append(dict(name=f.name, default=repr(default) if isinstance(default, str) and not m.get("default_doc")
                         else str(default), unit=m.get("unit", ""), range=range_text(m), doc=m.get("doc", ""),
                         aliases=", ".join(m.get("aliases", ()))))
    return rows
