"""Parsing helpers for comma lists, sizes and typed values given on the command line."""

from __future__ import annotations

import math
from typing import Any, Callable

from analogtrain.errors import ConfigError


def parse_scalar(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string."""
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


def comma_list(text: str | list | tuple, flag: str, conv: Callable[[str], Any] = str) -> tuple:
    """Split 'a,b,c' (or take a TOML list) and convert each item; ConfigError naming the flag."""
    items = [str(v).strip() for v in text] if isinstance(text, (list, tuple)) else str(text).split(",")
    items = [i for i in (s.strip() for s in items) if i]
    if not items:
        raise ConfigError(f"{flag}: expected a comma-separated list (got {text!r})")
    out = []
    for i in items:
        try:
            out.append(conv(i))
        except ConfigError:
            raise
        except (TypeError, ValueError):
            raise ConfigError(f"{flag}: {i!r} is not a valid value") from None
    return tuple(out)


def positive_float(flag: str, allow_zero: bool = False) -> Callable[[str], float]:
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise ConfigError(f"{flag}: {s!r} is not a number") from None
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise ConfigError(f"{flag}: must be {'>= 0' if allow_zero else '> 0'} (got {s})")
        return v
    return conv


def parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    """'20' -> (20, 20); '256x784' -> (out=256, in=784)."""
    t = str(text).lower().replace(" ", "")
    parts = t.split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{flag}: expected N or OUTxIN, e.g. 20 or 256x784 (got {text!r})") from None
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1 or max(dims) > 65536:
        raise ConfigError(f"{flag}: expected N or OUTxIN with sizes in [1, 65536] (got {text!r})")
    return dims[0], dims[1]


def parse_sweep(item: str) -> tuple[str, tuple]:
    """'KEY=v1,v2' -> ('KEY', (v1, v2)) with typed values."""
    if "=" not in item:
        raise ConfigError(f"--sweep {item!r}: expected KEY=v1,v2,...")
    key, vals = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--sweep {item!r}: empty key")
    return key, comma_list(vals, f"--sweep {key}", parse_scalar)


def cast_file_values(ctx, values: dict, config_file, table: str, extra: dict | None = None,
                     lists: tuple = ()) -> dict:
    """Convert a TOML table's values with the click types of the command's options, so that a
    config file gets exactly the checks the flags get. TOML lists for ``lists`` keys become
    comma strings first. Raises ConfigError naming the file, table and key."""
    import click

    params = {p.name: p for p in ctx.command.params}
    out = {}
    for key, value in values.items():
        where = f"config file {config_file}: {table}.{key}"
        if key in lists and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a single value (got {type(value).__name__})")
        typ = (extra or {}).get(key) or (params[key].type if key in params else None)
        if typ is None:
            out[key] = value
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number (got {value})")
        if isinstance(typ, click.types.BoolParamType) and not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false (got {value!r})")
        if isinstance(typ, (click.types.StringParamType, click.Choice, click.Path)) and not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string (got {value!r})")
        if isinstance(typ, (click.types.IntParamType, click.types.IntRange)) and (
                isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}: expected an integer (got {value!r})")
        if isinstance(typ, (click.types.FloatParamType, click.types.FloatRange)) and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{where}: expected a number (got {value!r})")
        try:
            out[key] = typ.convert(value, None, ctx)
        except click.BadParameter as e:
            raise ConfigError(f"{where}: {e.format_message()}") from None
        except (OverflowError, ValueError, TypeError):
            raise ConfigError(f"{where}: invalid value {value!r}") from None
    return out


def read_run_config(config_file, section: str) -> tuple[dict, dict]:
    """The ``[section]`` and ``[algorithm]`` tables of a run config file (``program`` or
    ``train``); a ``[device]`` table is read by the shared device options. ConfigError on
    unknown tables or tables that are not tables."""
    from analogtrain.config.loading import read_toml

    if config_file is None:
        return {}, {}
    data = read_toml(config_file)
    unknown = set(data) - {section, "device", "algorithm"}
    if unknown:
        raise ConfigError(f"config file {config_file}: unknown table(s) {', '.join(sorted(unknown))}; "
                          f"expected [{section}], [device], [algorithm]")
    tables = []
    for name in (section, "algorithm"):
        t = data.get(name, {}) or {}
        if not isinstance(t, dict):
            raise ConfigError(f"config file {config_file}: [{name}] must be a table")
        tables.append(dict(t))
    return tables[0], tables[1]


def parse_algo_sets(items, base: dict | None = None) -> dict:
    """``--algo-set KEY=VALUE`` items (typed values) on top of ``base`` (the file's [algorithm])."""
    out = dict(base or {})
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--algo-set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_scalar(v)
    return out
