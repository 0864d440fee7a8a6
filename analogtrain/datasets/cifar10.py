"""CIFAR-10, binary version: the six batch files, their published checksums, and a strict reader.

Folder ``<data dir>/cifar10/`` holding ``cifar-10-batches-bin/``, exactly as the published
archive ``cifar-10-binary.tar.gz`` unpacks (``tar xzf cifar-10-binary.tar.gz -C DIR/cifar10``,
or ``analogtrain data fetch cifar10``)::

    cifar-10-batches-bin/data_batch_1.bin .. data_batch_5.bin    training, 5 x 10000 images
    cifar-10-batches-bin/test_batch.bin                           test, 10000 images

Each file is 10000 records of 3073 bytes: one label byte (0..9), then the image as
3 x 32 x 32 bytes (the red, green and blue planes, each row-major): the array layout
(3, 32, 32), like MNIST's (1, 28, 28). The archive's other members (``batches.meta.txt``
with the class names, ``readme.html``) are not needed and not unpacked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analogtrain.datasets.locations import NO_VERIFY_HINT, DataFolder, KnownFile
from analogtrain.errors import InputError

BATCH_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"

IMAGE_SHAPE = (3, 32, 32)
N_CLASSES = 10
RECORD_BYTES = 1 + 3 * 32 * 32          # 3073: the label, then the pixels
#: records in each batch file. Read when a file is checked, so tests may set it (monkeypatch)
#: to write small files; the published files hold 10000.
RECORDS_PER_FILE = 10000

CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)

#: the published archive: size and MD5 from the data set page (www.cs.toronto.edu/~kriz/cifar.html);
#: the SHA-256, which is what ``data fetch`` checks, is TensorFlow Datasets' published pin of the
#: same URL (also used by torchvision's Ruby port); see docs/datasets.md.
ARCHIVE = KnownFile("cifar-10-binary.tar.gz", 170052171,
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", CIFAR10_MIRRORS)
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

#: SHA-256 of each batch file as unpacked (30,730,000 bytes each): the pins of torchvision's
#: Ruby port (ankane/torchvision-ruby); the test file's pin is also published independently.
#: Read when a file is checked, so tests may replace it (monkeypatch).
FILE_SHA256: dict[str, str] = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}

FILES = tuple(KnownFile(f"{BATCH_DIR}/{name}", 10000 * RECORD_BYTES, FILE_SHA256[name], ())
              for name in (*TRAIN_FILES, TEST_FILE))

FOLDER = DataFolder("cifar10", FILES, "run `analogtrain data fetch cifar10`", archive=ARCHIVE)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class CIFAR10:
    """CIFAR-10 as uint8 arrays: images (N, 3, 32, 32) with pixel values 0..255, labels (N,)
    in 0..9; 50000 training and 10000 test images. ``verified`` is True when every file
    matched its published SHA-256; ``path`` is the folder holding ``cifar-10-batches-bin/``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    verified: bool
    path: Path = field(default=Path("."))


def _read_records(path: Path, out: np.ndarray, sha256: str | None) -> None:
    """Fill ``out`` (R, RECORD_BYTES) uint8 with the records of ``path``: the file must hold
    exactly R whole records, every label must be 0..9 and, if ``sha256`` is given, the
    file's SHA-256 must equal it. InputError (one line naming the file) otherwise."""
    n = out.shape[0]
    expected = (f"expected {n} records of {RECORD_BYTES} bytes (a label byte and 3x32x32 pixel bytes) "
                f"= {n * RECORD_BYTES} bytes")
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            if size % RECORD_BYTES:
                raise InputError(f"{path}: {size} bytes is not a whole number of records (truncated or not "
                                 f"a CIFAR-10 binary file); {expected}")
            if size != n * RECORD_BYTES:
                raise InputError(f"{path}: {size // RECORD_BYTES} records ({size} bytes); {expected}")
            view = memoryview(out.reshape(-1))
            h = hashlib.sha256() if sha256 is not None else None
            done = 0
            while done < size:
                got = f.readinto(view[done:done + _CHUNK])
                if not got:
                    raise InputError(f"{path}: the file ended after {done} bytes while reading; {expected}")
                if h is not None:
                    h.update(view[done:done + got])
                done += got
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; {FOLDER.how_to_get}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a CIFAR-10 batch file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    labels = out[:, 0]
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{path}: label {int(labels[i])} in record {i} (byte offset {i * RECORD_BYTES}), "
                         f"expected 0..{N_CLASSES - 1}")
    if h is not None and h.hexdigest() != sha256:
        raise InputError(f"{path}: not the canonical CIFAR-10 file (SHA-256 {h.hexdigest()[:16]}..., expected "
                         f"{sha256[:16]}...); {NO_VERIFY_HINT} accepts other data in the CIFAR-10 binary format")


def read_batches(paths: list[Path], sha256: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The records of CIFAR-10 batch files, in order: ``(images uint8 (N, 3, 32, 32), labels uint8 (N,))``.

    Every file must hold exactly :data:`RECORDS_PER_FILE` records (``N`` = that times the
    number of files) with labels 0..9; ``sha256`` (one pin or None per file) adds the
    checksum check. Raises InputError naming the file and what was expected.
    """
    per_file = RECORDS_PER_FILE
    records = np.empty((per_file * len(paths), RECORD_BYTES), dtype=np.uint8)
    pins = sha256 if sha256 is not None else [None] * len(paths)
    for k, (path, pin) in enumerate(zip(paths, pins)):
        _read_records(Path(path), records[k * per_file:(k + 1) * per_file], pin)
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, *IMAGE_SHAPE)
    return images, records[:, 0].copy()


def _check_file_count(batches: Path) -> None:
    """Exactly the five training batches and the one test batch: no ``data_batch_6.bin`` or a
    second test file next to them (a folder of another version or a mixed copy)."""
    train = sorted(p.name for p in batches.glob("data_batch_*.bin"))
    if train != sorted(TRAIN_FILES):
        raise InputError(f"{batches}: {len(train)} training batch files ({', '.join(train)}), expected exactly "
                         f"{len(TRAIN_FILES)}: {TRAIN_FILES[0]} .. {TRAIN_FILES[-1]}")
    test = sorted(p.name for p in batches.glob("test_batch*.bin"))
    if test != [TEST_FILE]:
        raise InputError(f"{batches}: {len(test)} test batch files ({', '.join(test)}), expected exactly one: "
                         f"{TEST_FILE}")


def load_cifar10(data_dir: str | Path | None = None, verify: bool = True) -> CIFAR10:
    """Load CIFAR-10 (binary version) from ``<data dir>/cifar10/cifar-10-batches-bin/``.

    ``data_dir`` may also be the ``cifar10`` folder itself (the one holding
    ``cifar-10-batches-bin/``). Always checks: the six files are there and no other batch
    files, each holds exactly 10000 whole 3073-byte records, labels 0..9. With ``verify``
    each file's SHA-256 must equal its published pin; otherwise any data in the format is
    accepted. Returns uint8 images (N, 3, 32, 32) and uint8 labels (N,).
    """
    folder = FOLDER.find(data_dir)
    batches = folder / BATCH_DIR
    _check_file_count(batches)
    pins = FILE_SHA256 if verify else {}
    x_train, y_train = read_batches([batches / n for n in TRAIN_FILES], [pins.get(n) for n in TRAIN_FILES])
    x_test, y_test = read_batches([batches / TEST_FILE], [pins.get(TEST_FILE)])
    return CIFAR10(x_train, y_train, x_test, y_test, verified=bool(verify), path=folder)
