"""Tiny data files for the data set tests, written into a tmp dir (never real data)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX content of a uint8 array: 00 00 code ndim, big-endian dims, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write(path: Path, content: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def assert_input_error(exc: pytest.ExceptionInfo, path: Path) -> str:
    """The message of an InputError: one line that names ``path``."""
    msg = str(exc.value)
    assert str(path) in msg, msg
    assert "\n" not in msg
    return msg


def make_mnist(root: Path, n_train=6, n_test=4, gz=True, seed=0, **override) -> Path:
    """A tiny data set in MNIST format under root/mnist; override maps stem -> array."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays.update(override)
    for stem, arr in arrays.items():
        write(root / "mnist" / (stem + (".gz" if gz else "")), idx_bytes(arr), gz=gz)
    return root


def digits_csv(rows: list[list]) -> bytes:
    """The digits CSV of ``rows`` (64 pixels and a label each)."""
    return "".join(",".join(str(v) for v in r) + "\n" for r in rows).encode()


def make_digits(root: Path, n: int = 1510, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """root/sklearn_digits/digits.csv.gz with ``n`` random rows; returns (pixels int (n, 64), labels (n,))."""
    rng = np.random.default_rng(seed)
    pixels, labels = rng.integers(0, 17, (n, 64)), rng.integers(0, 10, n)
    rows = [list(p) + [int(y)] for p, y in zip(pixels, labels)]
    write(root / "sklearn_digits" / "digits.csv.gz", digits_csv(rows), gz=True)
    return pixels, labels


def make_warpeace(root: Path, text: bytes) -> Path:
    """root/warpeace/warpeace_input.txt holding ``text``."""
    return write(root / "warpeace" / "warpeace_input.txt", text)


CIFAR_NAMES = ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
               "data_batch_5.bin", "test_batch.bin")


def cifar_bytes(labels: np.ndarray, images: np.ndarray) -> bytes:
    """CIFAR-10 binary records: per image one label byte, then its 3x32x32 pixel bytes."""
    labels = np.asarray(labels, dtype=np.uint8)
    images = np.asarray(images, dtype=np.uint8).reshape(len(labels), -1)
    return np.concatenate([labels[:, None], images], axis=1).tobytes()


def make_cifar10(root: Path, records: int = 4, seed: int = 0, flat: bool = False,
                 **override: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """root/cifar10/cifar-10-batches-bin/ with the six batch files of ``records`` random records
    each (the reader's RECORDS_PER_FILE must be set to ``records``); ``override`` maps a file
    stem (``data_batch_3``) to its raw content. ``flat``: root/cifar-10-batches-bin/ (root is the
    cifar10 folder). Returns file name -> (images (n, 3, 32, 32), labels (n,))."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin" if flat else root / "cifar10" / "cifar-10-batches-bin"
    out = {}
    for name in CIFAR_NAMES:
        images = rng.integers(0, 256, (records, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, records, dtype=np.uint8)
        out[name] = (images, labels)
        write(folder / name, override.get(name[:-4], cifar_bytes(labels, images)))
    return out
