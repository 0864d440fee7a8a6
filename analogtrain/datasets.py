"""Data sets: where they live, strict readers, and a checksummed downloader.

Layout of a data directory (one folder per data set, as ``/work/shared/data``)::

    DIR/mnist/train-images-idx3-ubyte.gz   (each MNIST file may also be stored
    DIR/mnist/train-labels-idx1-ubyte.gz    uncompressed, without ``.gz``)
    DIR/mnist/t10k-images-idx3-ubyte.gz
    DIR/mnist/t10k-labels-idx1-ubyte.gz
    DIR/warpeace/warpeace_input.txt
    DIR/sklearn_digits/digits.csv.gz

The directory is looked up in this order: the ``data_dir`` argument (``--data-dir``),
``$ANALOGTRAIN_DATA``, the per-user cache (``$XDG_CACHE_HOME/analogtrain`` or
``~/.cache/analogtrain``; ``%LOCALAPPDATA%\\analogtrain`` on Windows).

Everything here is library code: it never prints, and every failure is an
:mod:`analogtrain.errors` exception with a one-line message that names the file and what
was expected. Files are parsed by hand (IDX, CSV, bytes); nothing is unpickled.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, NamedTuple, Sequence

import numpy as np

from analogtrain._version import __version__
from analogtrain.errors import AnalogTrainError, ConfigError, InputError, RunError

# ============================================================================ tables
MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
WARPEACE_FILE = "warpeace_input.txt"
DIGITS_FILE = "digits.csv.gz"

#: data set -> files it needs; each entry lists the accepted names, canonical first.
LAYOUT: dict[str, list[tuple[str, ...]]] = {
    "mnist": [(stem + ".gz", stem) for stem in MNIST_STEMS],
    "warpeace": [(WARPEACE_FILE,)],
    "sklearn_digits": [(DIGITS_FILE,)],
}

#: how to obtain each data set, for error messages.
HOW_TO_GET = {
    "mnist": "run `analogtrain data fetch mnist`",
    "warpeace": "run `analogtrain data fetch warpeace`",
    "sklearn_digits": "copy sklearn/datasets/data/digits.csv.gz from a scikit-learn install",
}


class KnownFile(NamedTuple):
    """A published file: name inside the data set folder, size in bytes, SHA-256 (hex), mirrors.

    A mirror is a base URL; the file is fetched from ``mirror + filename``.
    """

    filename: str
    size: int
    sha256: str
    mirrors: tuple[str, ...]


MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/")
WARPEACE_MIRRORS = ("https://cs.stanford.edu/people/karpathy/char-rnn/",)

#: data set -> the files ``fetch`` downloads and ``dataset_status`` verifies (size, SHA-256).
#: The SHA-256 of the MNIST ``.gz`` files are TensorFlow Datasets' published pins; War and
#: Peace has no published checksum, its pin was derived from the char-rnn file (see docs).
#: Tests replace this table (monkeypatch); production code has no other way to change it.
KNOWN_FILES: dict[str, list[KnownFile]] = {
    "mnist": [
        KnownFile("train-images-idx3-ubyte.gz", 9912422,
                  "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", MNIST_MIRRORS),
        KnownFile("train-labels-idx1-ubyte.gz", 28881,
                  "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", MNIST_MIRRORS),
        KnownFile("t10k-images-idx3-ubyte.gz", 1648877,
                  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", MNIST_MIRRORS),
        KnownFile("t10k-labels-idx1-ubyte.gz", 4542,
                  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", MNIST_MIRRORS),
    ],
    "warpeace": [
        KnownFile(WARPEACE_FILE, 3258246,
                  "fb66ba999dafe24017cdd59e04c56d385a9c8466993d374fd4c6f08b2142985e", WARPEACE_MIRRORS),
    ],
    "sklearn_digits": [
        KnownFile(DIGITS_FILE, 57523,
                  "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22", ()),
    ],
}

#: decompressed MNIST file -> (size in bytes, SHA-256 of the decompressed IDX content).
MNIST_CONTENT: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

NO_VERIFY_HINT = "--no-verify-data"
_CHUNK = 1 << 20                    # bytes per read/write step
_GZIP_MAX_RATIO = 1100              # deflate cannot expand by more than ~1032:1
_TIMEOUT = 60.0                     # seconds without data before a mirror is given up


# ============================================================================ locations
def user_cache_dir() -> Path:
    """The per-user cache folder: ``%LOCALAPPDATA%\\analogtrain`` on Windows, else
    ``$XDG_CACHE_HOME/analogtrain`` (if set to an absolute path) or ``~/.cache/analogtrain``."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "analogtrain"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "analogtrain"
    return Path.home() / ".cache" / "analogtrain"


def describe_data_dir(data_dir: str | Path | None) -> tuple[Path, str]:
    """(data directory, where it came from: ``--data-dir``, ``$ANALOGTRAIN_DATA`` or ``user cache``)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get("ANALOGTRAIN_DATA", "")
    if env:
        return Path(env).expanduser(), "$ANALOGTRAIN_DATA"
    return user_cache_dir(), "user cache"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$ANALOGTRAIN_DATA``, else :func:`user_cache_dir`.

    The directory need not exist.
    """
    return describe_data_dir(data_dir)[0]


def _check_name(name: str) -> None:
    if name not in LAYOUT:
        raise ConfigError(f"unknown data set {name!r} (known: {', '.join(LAYOUT)})")


def _first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        p = folder / n
        if p.is_file():
            return p
    return None


def find_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder of data set ``name`` (``mnist``, ``warpeace``, ``sklearn_digits``).

    Looks in ``<data dir>/<name>/``; a ``data_dir`` that is itself the data set folder
    (it holds the files directly) is accepted too. Raises InputError saying which file is
    missing where and how to get it.
    """
    _check_name(name)
    root, source = describe_data_dir(data_dir)
    candidates = [root / name, root]
    for folder in candidates:
        if all(_first_existing(folder, alts) for alts in LAYOUT[name]):
            return folder
    folder = root / name
    missing = [alts for alts in LAYOUT[name] if _first_existing(folder, alts) is None]
    alts = missing[0]
    what = alts[0] + (f" (or uncompressed {alts[1]})" if len(alts) > 1 else "")
    more = f" and {len(missing) - 1} more file(s)" if len(missing) > 1 else ""
    raise InputError(f"{name}: {what}{more} not found in {folder} (data directory from {source}); "
                     f"{HOW_TO_GET[name]}, or use --data-dir DIR (or $ANALOGTRAIN_DATA) "
                     f"for a directory that holds {name}/")


# ============================================================================ hashing
def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ============================================================================ IDX
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


def _read_idx(path: str | Path) -> tuple[np.ndarray, str]:
    """(array, SHA-256 of the decompressed IDX content)."""
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

    Header: 2 zero bytes, data type code 0x08 (uint8), number of dims ``d``, then ``d``
    big-endian uint32 sizes. Returns a uint8 array of that shape, e.g. (60000, 28, 28) for
    MNIST images (magic 0x00000803) or (60000,) for labels (0x00000801). Raises InputError
    naming the file for an empty, truncated or oversize file, a wrong magic number or type
    code, or a ``.gz`` file that is not valid gzip. A header whose shape needs more bytes
    than the file can hold is refused before anything is allocated.
    """
    return _read_idx(path)[0]


# ============================================================================ MNIST
@dataclass(frozen=True)
class MNIST:
    """MNIST as uint8 arrays: images (N, 28, 28) with pixel values 0..255, labels (N,) in 0..9.

    ``verified`` is True when all four files matched the published SHA-256 pins.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    verified: bool
    path: Path = field(default=Path("."))


def _mnist_part(folder: Path, stem: str, verify: bool) -> np.ndarray:
    path = _first_existing(folder, (stem + ".gz", stem))
    if path is None:  # find_dataset checked, but the folder may have changed since
        raise InputError(f"mnist: {stem}.gz not found in {folder}; {HOW_TO_GET['mnist']}")
    arr, digest = _read_idx(path)
    if verify and digest != MNIST_CONTENT[stem][1]:
        raise InputError(f"{path}: not the canonical MNIST file (SHA-256 of the decompressed content "
                         f"is {digest[:16]}..., expected {MNIST_CONTENT[stem][1][:16]}...); "
                         f"{NO_VERIFY_HINT} accepts other data in MNIST format")
    if stem.endswith("images-idx3-ubyte") and (arr.ndim != 3 or arr.shape[1:] != (28, 28)):
        raise InputError(f"{path}: images of shape {arr.shape}, expected (N, 28, 28)")
    if stem.endswith("labels-idx1-ubyte"):
        if arr.ndim != 1:
            raise InputError(f"{path}: labels of shape {arr.shape}, expected (N,)")
        if arr.size and int(arr.max()) > 9:
            bad = int(np.argmax(arr > 9))
            raise InputError(f"{path}: label {int(arr[bad])} at index {bad}, expected 0..9")
    return arr


def _check_counts(folder: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{folder / (split + '-labels-idx1-ubyte.gz')}: {y.shape[0]} labels for "
                         f"{x.shape[0]} images in {split}-images-idx3-ubyte, expected equal counts")


def load_mnist(data_dir: str | Path | None = None, verify: bool = True) -> MNIST:
    """Load the four MNIST IDX files from ``<data dir>/mnist/`` (``.gz`` or uncompressed).

    With ``verify`` the SHA-256 of each file's decompressed content must equal the published
    pin (a ``.gz`` matching its own published pin always does); otherwise any data in MNIST
    format is accepted. Always checks 28x28 images, equal image/label counts, labels 0..9.
    """
    folder = find_dataset("mnist", data_dir)
    xtr, ytr, xte, yte = (_mnist_part(folder, stem, verify) for stem in MNIST_STEMS)
    _check_counts(folder, "train", xtr, ytr)
    _check_counts(folder, "t10k", xte, yte)
    return MNIST(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, verified=bool(verify), path=folder)


def mnist_arrays(m: MNIST, limit_train: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) for training: x float32 (N, 784) in [0, 1] (pixel/255),
    y int64 (N,). ``limit_train`` keeps the first that many training examples."""
    if limit_train is not None and limit_train < 1:
        raise ConfigError(f"limit_train: must be >= 1 (got {limit_train})")
    xtr, ytr = m.x_train, m.y_train
    if limit_train is not None:
        xtr, ytr = xtr[:limit_train], ytr[:limit_train]

    def flat(x: np.ndarray) -> np.ndarray:
        return (x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255.0))

    return flat(xtr), ytr.astype(np.int64), flat(m.x_test), m.y_test.astype(np.int64)


# ============================================================================ char corpus
def load_corpus(path: str | Path | None = None, verify: bool = True,
                data_dir: str | Path | None = None) -> bytes:
    """The bytes of a text corpus; default: ``<data dir>/warpeace/warpeace_input.txt``.

    Read in binary (War and Peace has a UTF-8 BOM and CRLF line endings; 3,258,246 bytes).
    With ``verify`` the file must be the canonical War and Peace (size and SHA-256).
    """
    if path is None:
        path = find_dataset("warpeace", data_dir) / WARPEACE_FILE
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise InputError(f"{path}: empty file, expected a text corpus")
    if verify:
        ref = KNOWN_FILES["warpeace"][0]
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != ref.size or digest != ref.sha256:
            raise InputError(f"{path}: not the canonical War and Peace file ({len(data)} bytes, SHA-256 "
                             f"{digest[:16]}...; expected {ref.size} bytes, {ref.sha256[:16]}...); "
                             f"{NO_VERIFY_HINT} accepts other text")
    return data


@dataclass(frozen=True)
class CharCorpus:
    """A byte-level corpus split into contiguous train/valid/test parts.

    ``vocab`` (V,) uint8: the sorted distinct byte values of the training part; ``train``,
    ``valid``, ``test``: int64 ids in 0..V-1 (index into ``vocab``); ``offsets``: byte offset
    of each part in the corpus.
    """

    vocab: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    offsets: tuple[int, int, int]

    @property
    def vocab_size(self) -> int:
        return int(self.vocab.size)

    def _lut(self) -> np.ndarray:
        lut = np.full(256, -1, dtype=np.int64)
        lut[self.vocab] = np.arange(self.vocab.size)
        return lut

    def encode(self, data: bytes, what: str = "text", offset: int = 0) -> np.ndarray:
        """Ids (int64, len(data)) of ``data``; InputError on a byte outside the vocabulary."""
        b = np.frombuffer(bytes(data), dtype=np.uint8)
        ids = self._lut()[b]
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            i = int(bad[0])
            byte = bytes([int(b[i])])
            raise InputError(f"byte {byte!r} at position {i} of the {what} (corpus offset {offset + i}) "
                             "does not occur in the training split, so it has no id in the vocabulary")
        return ids

    def decode(self, ids: np.ndarray | Sequence[int]) -> bytes:
        """Bytes of the ids (any int array); ConfigError on an id outside 0..V-1."""
        a = np.asarray(ids, dtype=np.int64).ravel()
        if a.size and (a.min() < 0 or a.max() >= self.vocab.size):
            raise ConfigError(f"decode: ids must be in 0..{self.vocab.size - 1}")
        return self.vocab[a].tobytes()


def _split_sizes(n: int, splits: Sequence[float]) -> tuple[int, int, int]:
    if len(splits) != 3 or any(not math.isfinite(s) or s < 0 for s in splits) \
            or abs(sum(splits) - 1.0) > 1e-9 or splits[0] <= 0:
        raise ConfigError(f"splits: need 3 fractions >= 0 (train > 0) summing to 1 (got {tuple(splits)})")
    n_train = math.floor(n * splits[0] + 1e-9)
    n_valid = math.floor(n * splits[1] + 1e-9)
    return n_train, n_valid, n - n_train - n_valid


def make_corpus(data: bytes, splits: Sequence[float] = (0.9, 0.05, 0.05)) -> CharCorpus:
    """Split ``data`` into contiguous train, valid, test parts (in that order) and encode them.

    Part sizes: ``floor(n*splits[0])`` and ``floor(n*splits[1])`` bytes, test gets the rest.
    The split is contiguous (not shuffled) so that no training context leaks into the
    evaluation text; the vocabulary is built from the training part only, and a byte in
    valid/test that never occurs in train raises InputError naming it and its position.
    """
    n = len(data)
    sizes = _split_sizes(n, splits)
    if n == 0:
        raise InputError("corpus is empty")
    for name, s, k in zip(("train", "valid", "test"), splits, sizes):
        if s > 0 and k == 0:
            raise InputError(f"corpus too short: {n} bytes leave the {name} split empty with splits {tuple(splits)}")
    a, b = sizes[0], sizes[0] + sizes[1]
    train_bytes = np.frombuffer(bytes(data[:a]), dtype=np.uint8)
    vocab = np.unique(train_bytes)
    probe = CharCorpus(vocab=vocab, train=np.empty(0, np.int64), valid=np.empty(0, np.int64),
                       test=np.empty(0, np.int64), offsets=(0, a, b))
    return CharCorpus(vocab=vocab,
                      train=probe.encode(data[:a], "train split", 0),
                      valid=probe.encode(data[a:b], "valid split", a),
                      test=probe.encode(data[b:], "test split", b),
                      offsets=(0, a, b))


def char_sequences(ids: np.ndarray, batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated-BPTT batches: (inputs, targets), each int64 (n_batches, batch_size, seq_len).

    The stream is cut into ``batch_size`` contiguous tracks of equal length; batch ``k``
    holds window ``k`` of every track, so track ``b`` of batch ``k+1`` continues track ``b``
    of batch ``k`` (hidden state can be carried over). ``targets`` is the stream shifted by
    one: ``targets[k, b, t]`` is the id that follows ``inputs[k, b, t]``. Trailing ids that
    do not fill a window are dropped.
    """
    if batch_size < 1 or seq_len < 1:
        raise ConfigError(f"batch_size and seq_len must be >= 1 (got {batch_size}, {seq_len})")
    ids = np.asarray(ids, dtype=np.int64).ravel()
    track = (ids.size - 1) // batch_size if ids.size else 0
    n_batches = track // seq_len
    if n_batches == 0:
        raise InputError(f"text too short: {ids.size} ids cannot fill one batch of {batch_size} x {seq_len} "
                         f"(need at least {batch_size * seq_len + 1})")
    used = n_batches * seq_len

    def tracks(stream: np.ndarray) -> np.ndarray:
        t = stream[:batch_size * track].reshape(batch_size, track)[:, :used]
        return np.ascontiguousarray(t.reshape(batch_size, n_batches, seq_len).transpose(1, 0, 2))

    return tracks(ids[:-1]), tracks(ids[1:])


# ============================================================================ digits
_DIGITS_MAX_BYTES = 64 << 20


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
        path = find_dataset("sklearn_digits", data_dir) / DIGITS_FILE
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


# ============================================================================ download
@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did with one file: ``action`` is ``skipped`` (already present and
    verified) or ``downloaded``; ``url`` is where it came from (None when skipped)."""

    file: str
    path: Path
    action: str
    size: int
    sha256: str
    url: str | None = None
    resumed: bool = False


class _MirrorFailed(Exception):
    """One mirror could not deliver the file (reason in the message)."""


def _file_ok(path: Path, size: int, sha256: str) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256
    except OSError:
        return False


def _raw_alternative_ok(folder: Path, kf: KnownFile) -> Path | None:
    """The verified uncompressed twin of a ``.gz`` MNIST file, if one is present."""
    stem = kf.filename[:-3] if kf.filename.endswith(".gz") else None
    if stem not in MNIST_CONTENT:
        return None
    size, sha = MNIST_CONTENT[stem]
    return folder / stem if _file_ok(folder / stem, size, sha) else None


def _content_range_start(value: str | None) -> int | None:
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, else None."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _open(url: str, start: int):
    req = urllib.request.Request(url, headers={"User-Agent": f"analogtrain/{__version__}"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=_TIMEOUT)


def _download(url: str, part: Path, size: int, on_bytes: Callable[[int], None]) -> bool:
    """Download ``url`` into ``part`` (resuming it with a Range request if it exists).

    Returns True if an existing part was resumed. Raises _MirrorFailed; the part file is
    kept on network errors so that a later attempt can resume it.
    """
    start = part.stat().st_size if part.exists() else 0
    try:
        try:
            resp = _open(url, start)
        except urllib.error.HTTPError as e:
            if e.code != 416 or not start:
                raise
            part.unlink()                      # range not satisfiable: the part is bad, restart
            start, resp = 0, _open(url, 0)
        with resp:
            status = getattr(resp, "status", None) or 200
            if start and status == 206:
                if _content_range_start(resp.headers.get("Content-Range")) != start:
                    part.unlink()
                    raise _MirrorFailed(f"{url}: unexpected Content-Range {resp.headers.get('Content-Range')!r}")
                done, mode = start, "ab"
            else:                              # no Range sent, or the server ignored it: restart
                done, mode = 0, "wb"
            on_bytes(done)
            with open(part, mode) as f:
                while chunk := resp.read(_CHUNK):
                    done += len(chunk)
                    if done > size:
                        raise _MirrorFailed(f"{url}: more than the expected {size} bytes")
                    f.write(chunk)
                    on_bytes(done)
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        raise _MirrorFailed(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _MirrorFailed(f"{url}: {e.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _MirrorFailed(f"{url}: {type(e).__name__}: {e}") from None
    if done < size:
        raise _MirrorFailed(f"{url}: connection closed after {done} of {size} bytes")
    return bool(start) and mode == "ab"


def _fetch_one(kf: KnownFile, folder: Path, mirrors: Sequence[str],
               on_bytes: Callable[[int], None]) -> FetchResult:
    final = folder / kf.filename
    part = folder / (kf.filename + ".part")
    if _file_ok(final, kf.size, kf.sha256):
        return FetchResult(kf.filename, final, "skipped", kf.size, kf.sha256)
    twin = _raw_alternative_ok(folder, kf)
    if twin is not None:
        return FetchResult(twin.name, twin, "skipped", twin.stat().st_size, MNIST_CONTENT[twin.name][1])
    if part.exists() and part.stat().st_size >= kf.size:
        if _file_ok(part, kf.size, kf.sha256):   # complete from an earlier run, never renamed
            os.replace(part, final)
            return FetchResult(kf.filename, final, "downloaded", kf.size, kf.sha256, resumed=True)
        part.unlink()
    reason = "no mirror given"
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += kf.filename
        for attempt in range(2):              # a resumed part that fails the check: once more from 0
            try:
                resumed = _download(url, part, kf.size, on_bytes)
            except _MirrorFailed as e:
                reason = str(e)
                break
            digest = sha256_file(part)
            if digest == kf.sha256:
                os.replace(part, final)
                return FetchResult(kf.filename, final, "downloaded", kf.size, kf.sha256, url, resumed)
            part.unlink()
            reason = f"{url}: SHA-256 {digest[:16]}... does not match the expected {kf.sha256[:16]}..."
            if not resumed:
                break
    raise RunError(f"{final}: download failed from every mirror; last: {reason}")


def fetch(name: str, dest_dir: str | Path | None = None, mirrors: str | Sequence[str] | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[FetchResult]:
    """Download the files of data set ``name`` into ``<dest_dir>/<name>/`` and verify them.

    ``dest_dir`` is a data directory (default: :func:`resolve_data_dir`). Each file goes to
    ``<file>.part`` first (resumed with an HTTP Range request when a part exists and the
    server answers 206), is checked against the size and SHA-256 in :data:`KNOWN_FILES`, and
    only then renamed to its final name. On a mismatch the part is deleted and the next
    mirror is tried; RunError when every mirror failed. Present and verified files are
    skipped. ``mirrors`` (base URL or URLs) replaces the built-in mirror list;
    ``progress(bytes_done, bytes_total)`` is called as bytes arrive (totals over all files).
    """
    _check_name(name)
    files = KNOWN_FILES.get(name, [])
    if mirrors is None and not any(kf.mirrors for kf in files):
        raise ConfigError(f"{name}: cannot be downloaded; {HOW_TO_GET[name]}")
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    folder = resolve_data_dir(dest_dir) / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{folder}: cannot create the data folder ({e.strerror or e})") from None
    report = progress or (lambda done, total: None)
    total = sum(kf.size for kf in files)
    finished = 0
    results = []
    for kf in files:
        def on_bytes(done: int, base: int = finished) -> None:
            report(base + done, total)
        urls = list(mirrors) if mirrors is not None else list(kf.mirrors)
        results.append(_fetch_one(kf, folder, urls, on_bytes))
        finished += kf.size
        report(finished, total)
    return results


# ============================================================================ status
def dataset_status(data_dir: str | Path | None = None) -> list[dict]:
    """One row per known file: dataset, file, present, size (bytes or None), expected_size,
    verified (size and SHA-256 match), path. An MNIST file stored uncompressed is reported
    under its uncompressed name and checked against the decompressed pin."""
    root = resolve_data_dir(data_dir)
    rows = []
    for name, files in KNOWN_FILES.items():
        folder = root / name
        for kf in files:
            path, size, sha = folder / kf.filename, kf.size, kf.sha256
            stem = kf.filename[:-3] if kf.filename.endswith(".gz") else None
            if not path.is_file() and stem in MNIST_CONTENT and (folder / stem).is_file():
                path, (size, sha) = folder / stem, MNIST_CONTENT[stem]
            present = path.is_file()
            rows.append({"dataset": name, "file": path.name, "present": present,
                         "size": path.stat().st_size if present else None, "expected_size": size,
                         "verified": present and _file_ok(path, size, sha), "path": str(path)})
    return rows
