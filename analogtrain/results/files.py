"""Files: atomic writes (temporary name, then rename), strict readers, output checks.

A reader never sees a half-written file: every file is written to a temporary name in
the target directory and renamed. Output locations are checked before any work is done,
so a run never fails only when writing its results. Nothing here unpickles.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from analogtrain.errors import InputError
from analogtrain.results.render import dumps


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
