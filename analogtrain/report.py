"""Results -> tables, JSON, CSV, npz, TOML; provenance; atomic file writes.

Nothing here runs a simulation. Every JSON object the CLI prints or writes carries
``schema_version``; every file is written to a temporary name in the target
directory and renamed, so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from analogtrain._version import __version__
from analogtrain.errors import InputError

SCHEMA_VERSION = 1

#: arguments that recompute the current result (set by the CLI; None for library use)
RERUN_ARGS: list[str] | None = None


# ----------------------------------------------------------------------------- JSON
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


def provenance(command: str, config: dict, seed: int | None, argv: Sequence[str] | None = None) -> dict:
    """Provenance block of every output: versions, command, seed and entropy, config hash,
    and ``rerun_args`` (the command's arguments without display options) for ``verify``."""
    from analogtrain.seeding import seed_entropy

    if argv is None:
        argv = RERUN_ARGS
    return {
        "schema_version": SCHEMA_VERSION,
        "analogtrain_version": __version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(terse=True),
        "command": command,
        "rerun_args": list(argv) if argv is not None else None,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "seed": seed,
        "seed_entropy": seed_entropy(seed) if seed is not None else None,
        "config_hash": config_hash(config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# ----------------------------------------------------------------------------- tables
def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], floatfmt: str = ".4g") -> str:
    """A plain-text table (tabulate 'simple' format)."""
    from tabulate import tabulate

    return tabulate([list(r) for r in rows], headers=list(headers), floatfmt=floatfmt, tablefmt="simple")


def mean_std(values: Iterable[float]) -> dict:
    """{'mean', 'std'} of values (population std), NaN-free."""
    a = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(a.mean()) if a.size else None, "std": float(a.std()) if a.size else None}


# ----------------------------------------------------------------------------- TOML out
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


# ----------------------------------------------------------------------------- atomic files
def _umask_mode() -> int:
    """0o666 minus the process umask: the mode ``open(path, "w")`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success, delete on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; results get the usual umask-based mode
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, dumps(obj) + "\n")


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to an (uncompressed) npz atomically; names are kept as given."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())


def write_csv(path: str | Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV atomically (floats in repr precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for r in rows:
        w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in r])
    write_text(path, buf.getvalue())


def append_jsonl(path: str | Path, obj: Any) -> None:
    """Append one JSON line (a complete line per call, flushed and synced)."""
    line = dumps(obj, indent=None) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_json(path: str | Path, missing: str, unreadable: str) -> Any:
    """Parse a JSON file; InputError ``missing`` if it is absent, ``unreadable (reason)`` if it
    cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(missing) from None
    except (OSError, ValueError) as e:
        raise InputError(f"{unreadable} ({e})") from None


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an npz without pickles; InputError naming the file if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable npz file ({e})") from None


def prepare_out_dir(path: str | Path, allow_existing_files: bool = False) -> Path:
    """Check that ``path`` can hold results (create it if needed), before any work is done.

    Raises RunError-free InputError (exit 2) when the directory cannot be created or
    written, so a run never starts only to fail at the end.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_dir():
            raise InputError(f"--out {p}: exists and is not a directory")
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=str(p))
        os.close(fd)
        os.unlink(probe)
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"--out {p}: cannot write there ({e.strerror or e})") from None
    return p


def plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def check_output_file(path: str | Path, flag: str = "--plot") -> None:
    """Fail before any work if ``path`` cannot be written (missing directory, a directory)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(f"{flag} {p}: is a directory, expected a file name")
    if not parent.is_dir():
        raise InputError(f"{flag} {p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{flag} {p}: directory {parent} is not writable")


def prepare_outputs(out_dir: str | Path | None, plot_file: str | Path | None) -> None:
    """Check ``--out DIR`` and ``--plot FILE`` before any work is done (and that matplotlib is
    there when a plot is asked for), so a run never fails only when writing its results."""
    if out_dir is not None:
        prepare_out_dir(out_dir)
    if plot_file is not None:
        check_output_file(plot_file)
        require_matplotlib()


def require_matplotlib():
    """matplotlib.pyplot with the Agg backend, or InputError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'analogtrain[plot]'") from None
    return plt


def eprint(*args, **kw) -> None:
    print(*args, file=sys.stderr, **kw)
