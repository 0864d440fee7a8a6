"""scikit-learn's 8x8 handwritten digits, read from its CSV (the file sklearn ships).

Folder ``<data dir>/sklearn_digits/`` with ``digits.csv.gz``: one row per image, 64 pixel
values in 0..16 (row-major 8x8), then the label 0..9; 1797 rows. There is no download
mirror: the file is copied from a scikit-learn install (``sklearn/datasets/data/``).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from analogtrain.datasets.locations import DataFolder, KnownFile
from analogtrain.errors import AnalogTrainError, InputError

DIGITS_FILE = "digits.csv.gz"

FOLDER = DataFolder("sklearn_digits", (
    KnownFile(DIGITS_FILE, 57523, "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22", ()),),
    "copy sklearn/datasets/data/digits.csv.gz from a scikit-learn install")

_CHUNK = 1 << 20                    # bytes per read step
_DIGITS_MAX_BYTES = 64 << 20        # refuse (decompressed) files larger than this; the real one is 0.5 MB


def _read_limited(f: BinaryIO, limit: int, path: Path) -> bytes:
    buf = bytearray()
    while chunk := f.read(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise InputError(f"{path}: more than {limit} bytes, too large for the digits CSV")
    return bytes(buf)


def _parse_digits_row(path: Path, lineno: int, line: str) -> list[int]:
    cells = line.split(",")
    if len(cells) != 65:
        raise InputError(f"{path}: line {lineno} has {len(cells)} columns, expected 65 (64 pixels, label)")
    out = []
    for col, c in enumerate(cells, start=1):
        try:
            v = float(c)
        except ValueError:
            raise InputError(f"{path}: line {lineno}, column {col}: {c.strip()[:20]!r} is not a number") from None
        hi = 9 if col == 65 else 16
        if not (math.isfinite(v) and v == int(v) and 0 <= v <= hi):
            what = "label" if col == 65 else "pixel"
            raise InputError(f"{path}: line {lineno}, column {col}: {what} {c.strip()[:20]}, "
                             f"expected an integer in 0..{hi}")
        out.append(int(v))
    return out


def load_digits(path: str | Path | None = None, data_dir: str | Path | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits CSV (default ``<data dir>/sklearn_digits/digits.csv.gz``).

    Each row: 64 pixel values in 0..16, then the label 0..9 (1797 rows in the real file).
    Returns x float32 (N, 64) scaled to [0, 1] (pixel/16) and y int64 (N,).
    """
    if path is None:
        path = FOLDER.find(data_dir) / DIGITS_FILE
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as f:
            raw = _read_limited(f, _DIGITS_MAX_BYTES, path)
    except AnalogTrainError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: unreadable or corrupt ({type(e).__name__}: {e})") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: non-ASCII byte at offset {e.start}, expected a CSV of numbers") from None
    rows = [_parse_digits_row(path, i, line) for i, line in enumerate(text.splitlines(), start=1)
            if line.strip()]
    if not rows:
        raise InputError(f"{path}: no data rows, expected lines of 65 comma-separated numbers")
    a = np.asarray(rows, dtype=np.int64)
    return (a[:, :64].astype(np.float32) / np.float32(16.0)), a[:, 64].copy()
