"""MNIST: the four IDX files, their published checksums, and a loader that checks shapes and labels.

Folder ``<data dir>/mnist/`` with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``;
each file may also be stored uncompressed (without ``.gz``), in which case it is checked
against the pin of its decompressed content (:data:`MNIST_CONTENT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analogtrain.datasets.idx import read_idx_hashed
from analogtrain.datasets.locations import NO_VERIFY_HINT, DataFolder, KnownFile, first_existing
from analogtrain.errors import InputError

MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/")

#: decompressed MNIST file -> (size in bytes, SHA-256 of the decompressed IDX content).
MNIST_CONTENT: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

#: the published ``.gz`` files: size and SHA-256 are TensorFlow Datasets' published pins.
FILES = (
    KnownFile("train-images-idx3-ubyte.gz", 9912422,
              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", MNIST_MIRRORS,
              MNIST_CONTENT["train-images-idx3-ubyte"]),
    KnownFile("train-labels-idx1-ubyte.gz", 28881,
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", MNIST_MIRRORS,
              MNIST_CONTENT["train-labels-idx1-ubyte"]),
    KnownFile("t10k-images-idx3-ubyte.gz", 1648877,
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", MNIST_MIRRORS,
              MNIST_CONTENT["t10k-images-idx3-ubyte"]),
    KnownFile("t10k-labels-idx1-ubyte.gz", 4542,
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", MNIST_MIRRORS,
              MNIST_CONTENT["t10k-labels-idx1-ubyte"]),
)

FOLDER = DataFolder("mnist", FILES, "run `analogtrain data fetch mnist`")


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
    path = first_existing(folder, (stem + ".gz", stem))
    if path is None:  # the folder was found complete, but it may have changed since
        raise InputError(f"mnist: {stem}.gz not found in {folder}; {FOLDER.how_to_get}")
    arr, digest = read_idx_hashed(path)
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
    folder = FOLDER.find(data_dir)
    xtr, ytr, xte, yte = (_mnist_part(folder, stem, verify) for stem in MNIST_STEMS)
    _check_counts(folder, "train", xtr, ytr)
    _check_counts(folder, "t10k", xte, yte)
    return MNIST(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, verified=bool(verify), path=folder)
