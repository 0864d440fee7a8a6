"""A strict reader of IDX files of unsigned bytes (the MNIST format), plain or gzip-compressed.

Header: 2 zero bytes, data type code 0x08 (uint8), number of dims ``d``, then ``d``
big-endian uint32 sizes, then the data. Every malformed file is an InputError naming
the file; a header whose shape needs more bytes than the file can hold is refused
before anything is allocated.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from analogtrain.errors import AnalogTrainError, InputError

_CHUNK = 1 << 20                    # bytes per read step
_GZIP_MAX_RATIO = 1100              # deflate cannot expand by more than ~1032:1

_IDX_DTYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
               0x0D: "float32", 0x0E: "float64"}


def _parse_idx_magic(path: Path, magic: bytes) -> int:
    """Number of dimensions from the 4 magic bytes; InputError unless ``00 00 08 ndim``."""
    if len(magic) == 0:
        raise InputError(f"{path}: empty file, expected an IDX file")
    if len(magic) < 4:
        raise InputError(f"{path}: truncated IDX header ({len(magic)} bytes, expected at least 4)")
    if magic[:2] == b"\x1f\x8b":
        raise InputError(f"{path}: gzip data in a file whose name does not end in .gz; rename it to *.gz")
    if magic[:2] != b"\x00\x00":
        raise InputError(f"{path}: not an IDX file (magic number 0x{magic.hex()}, "
                         "expected 0x000008NN, e.g. 0x00000801 for labels, 0x00000803 for images)")
    code, ndim = magic[2], magic[3]
    if code != 0x08:
        kind = _IDX_DTYPES.get(code, "unknown")
        raise InputError(f"{path}: IDX data type code 0x{code:02x} ({kind}) is not supported, "
                         "expected 0x08 (unsigned byte)")
    if ndim == 0:
        raise InputError(f"{path}: IDX header declares 0 dimensions, expected at least 1")
    return ndim


def _parse_idx_dims(path: Path, raw: bytes, ndim: int) -> tuple[int, ...]:
    if len(raw) < 4 * ndim:
        raise InputError(f"{path}: truncated IDX header ({4 + len(raw)} bytes, "
                         f"expected {4 + 4 * ndim} for {ndim} dimensions)")
    dims = tuple(int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    if math.prod(d or 1 for d in dims) > np.iinfo(np.intp).max:   # numpy refuses such shapes, even empty
        raise InputError(f"{path}: IDX header declares an impossible shape {dims}")
    return dims


def _read_idx_raw(path: Path, h: hashlib._Hash) -> tuple[tuple[int, ...], np.ndarray]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
        ndim = _parse_idx_magic(path, magic)
        raw_dims = f.read(4 * ndim)
        dims = _parse_idx_dims(path, raw_dims, ndim)
        header = 4 + 4 * ndim
        n = math.prod(dims)
        if size != header + n:
            raise InputError(f"{path}: file length {size} bytes does not match its IDX header "
                             f"(expected {header} + {n} = {header + n} bytes for shape {dims})")
        h.update(magic + raw_dims)
        data = np.empty(n, dtype=np.uint8)
        view = memoryview(data)
        got = 0
        while got < n:
            k = f.readinto(view[got:got + _CHUNK])
            if not k:
                raise InputError(f"{path}: file shrank while being read")
            got += k
        h.update(data)
    return dims, data


def _read_idx_gz(path: Path, h: hashlib._Hash) -> tuple[tuple[int, ...], np.ndarray]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise InputError(f"{path}: not a gzip file (the name ends in .gz but the content does not "
                             "start with the gzip magic bytes 1f 8b)")
    with gzip.open(path, "rb") as g:
        magic = g.read(4)
        ndim = _parse_idx_magic(path, magic)
        raw_dims = g.read(4 * ndim)
        dims = _parse_idx_dims(path, raw_dims, ndim)
        n = math.prod(dims)
        if n > _GZIP_MAX_RATIO * size:
            raise InputError(f"{path}: IDX header claims shape {dims} ({n} bytes), more than a "
                             f"{size}-byte gzip file can hold")
        h.update(magic + raw_dims)
        buf = bytearray()
        while len(buf) < n:
            chunk = g.read(min(_CHUNK, n - len(buf)))
            if not chunk:
                raise InputError(f"{path}: truncated IDX data ({len(buf)} of {n} bytes for shape {dims})")
            buf += chunk
        if g.read(1):  # also makes gzip check the CRC and length trailer
            raise InputError(f"{path}: more data than its IDX header declares (expected {n} bytes "
                             f"after the header for shape {dims})")
        h.update(buf)
    return dims, np.frombuffer(buf, dtype=np.uint8)


def read_idx_hashed(path: str | Path) -> tuple[np.ndarray, str]:
    """(array, SHA-256 hex of the decompressed IDX content, header included); see :func:`read_idx`."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        if path.name.endswith(".gz"):
            dims, data = _read_idx_gz(path, h)
        else:
            dims, data = _read_idx_raw(path, h)
    except AnalogTrainError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: unreadable or corrupt ({type(e).__name__}: {e})") from None
    return data.reshape(dims), h.hexdigest()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed if the name ends in ``.gz``).

    Returns a writeable uint8 array of the header's shape, e.g. (60000, 28, 28) for MNIST
    images (magic 0x00000803) or (60000,) for labels (0x00000801). Raises InputError
    naming the file for an empty, truncated or oversize file, a wrong magic number or type
    code, or a ``.gz`` file that is not valid gzip. A header whose shape needs more bytes
    than the file can hold is refused before anything is allocated.
    """
    return read_idx_hashed(path)[0]
