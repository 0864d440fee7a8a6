"""Rendering results: JSON (strict, no NaN), TOML, plain-text tables, the config hash."""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, dataclasses, tuples, paths; NaN/inf -> None."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON text (strict: no NaN) of ``obj``."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, sort_keys=False)


def config_hash(config: Any) -> str:
    """SHA-256 (hex, first 16 chars) of the canonical JSON of a resolved config."""
    canon = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], floatfmt: str = ".4g") -> str:
    """A plain-text table (tabulate 'simple' format)."""
    from tabulate import tabulate

    return tabulate([list(r) for r in rows], headers=list(headers), floatfmt=floatfmt, tablefmt="simple")


def mean_std(values: Iterable[float]) -> dict:
    """{'mean', 'std'} of values (population std), NaN-free."""
    a = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(a.mean()) if a.size else None, "std": float(a.std()) if a.size else None}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ValueError("TOML has no null")
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict, header: str = "") -> str:
    """TOML text of a dict of scalars/lists and (nested) tables; None values are omitted."""
    out = io.StringIO()
    if header:
        for line in header.splitlines():
            out.write(f"# {line}\n")
    _toml_table(out, data, [])
    return out.getvalue()


def _toml_table(out, data: dict, path: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        out.write("\n[" + ".".join(_toml_key(p) for p in path) + "]\n")
    for k, v in scalars.items():
        out.write(f"{_toml_key(k)} = {_toml_value(v)}\n")
    for k, v in tables.items():
        _toml_table(out, v, path + [k])


def _toml_key(k: str) -> str:
    return k if all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)
