"""The data sets, one :class:`DatasetSpec` each, and how each becomes training data.

Adding a data set is one reader module (which declares its :class:`DataFolder` and reads
the files) plus one entry in :data:`DATASETS` (which says what the data is and turns it
into :class:`Data` with :func:`image_data` or :func:`character_data`). Everything else
(``find_dataset``, ``data fetch``, ``data list``, ``train --dataset``) reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from analogtrain.datasets import cifar10, corpus, digits, mnist
from analogtrain.datasets.locations import DataFolder
from analogtrain.datasets.prepared import Data, DataRequest, character_data, image_data
from analogtrain.errors import ConfigError, InputError

KINDS = ("images", "characters")


@dataclass(frozen=True)
class DatasetSpec:
    """One data set.

    Attributes:
        name: the name ``train --dataset`` and ``data fetch`` take.
        folder: its folder under the data directory and the files there (from the reader).
        description: one line for help texts and docs.
        kind: ``"images"`` (classification) or ``"characters"`` (character language modelling).
        load: ``load(request) -> Data``: read the files, split, apply the limits.
        image_shape: images: ``(channels, height, width)`` of one image; else None.
        n_classes: images: number of classes (labels are 0..n_classes-1); else None.
        aliases: other names accepted for it (e.g. its folder name).
    """

    name: str
    folder: DataFolder
    description: str
    kind: str
    load: Callable[[DataRequest], Data]
    image_shape: tuple[int, int, int] | None = None
    n_classes: int | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{self.name}: kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        images = self.kind == "images"
        if images != (self.image_shape is not None and self.n_classes is not None):
            raise ConfigError(f"{self.name}: image_shape and n_classes are given for images, and only for them")

    @property
    def fetchable(self) -> bool:
        """True if ``analogtrain data fetch NAME`` can download it (its files have mirrors)."""
        return self.folder.downloadable


# ----------------------------------------------------------------------------- loaders
def _load_mnist(request: DataRequest) -> Data:
    """uint8 images (N, 1, 28, 28), 60000 train / 10000 test."""
    m = mnist.load_mnist(request.data_dir, verify=request.verify)
    return image_data(m.x_train[:, None], m.y_train, m.x_test[:, None], m.y_test, request)


DIGITS_TRAIN = 1500     # fixed split of the 8x8 digits: the first 1500 rows train, the rest (297) test


def _load_digits(request: DataRequest) -> Data:
    """float images (N, 1, 8, 8) in [0, 1] (pixel / 16); the file has no checksum to verify."""
    x, y = digits.load_digits(data_dir=request.data_dir)
    x = x.reshape(len(x), 1, 8, 8)
    return image_data(x[:DIGITS_TRAIN], y[:DIGITS_TRAIN], x[DIGITS_TRAIN:], y[DIGITS_TRAIN:], request)


def _load_cifar10(request: DataRequest) -> Data:
    """uint8 images (N, 3, 32, 32), 50000 train / 10000 test (the five training batches in order)."""
    c = cifar10.load_cifar10(request.data_dir, verify=request.verify)
    return image_data(c.x_train, c.y_train, c.x_test, c.y_test, request)


def _load_warpeace(request: DataRequest) -> Data:
    """Byte ids of War and Peace, split 90/5/5 (train / valid / test), in BPTT windows."""
    raw = corpus.load_corpus(data_dir=request.data_dir, verify=request.verify)
    try:
        split = corpus.make_corpus(raw)
    except InputError as e:
        path = corpus.FOLDER.find(request.data_dir) / corpus.WARPEACE_FILE
        raise InputError(f"{path}: {e}") from None
    return character_data(split, request)


# ----------------------------------------------------------------------------- the table
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec(name="mnist", folder=mnist.FOLDER, kind="images", image_shape=(1, 28, 28), n_classes=10,
                description="MNIST handwritten digits: 60000 train / 10000 test grey images, 28x28",
                load=_load_mnist),
    DatasetSpec(name="warpeace", folder=corpus.FOLDER, kind="characters",
                description="War and Peace (char-rnn copy), 3.26 MB of text, one id per byte",
                load=_load_warpeace),
    DatasetSpec(name="digits", aliases=("sklearn_digits",), folder=digits.FOLDER, kind="images",
                image_shape=(1, 8, 8), n_classes=10,
                description="scikit-learn's 8x8 handwritten digits: 1797 images, first 1500 train, 297 test",
                load=_load_digits),
    DatasetSpec(name="cifar10", folder=cifar10.FOLDER, kind="images", image_shape=cifar10.IMAGE_SHAPE,
                n_classes=cifar10.N_CLASSES,
                description="CIFAR-10 (binary version): 50000 train / 10000 test colour images, 3x32x32, 10 classes",
                load=_load_cifar10),
)}


def _by_name(specs: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
    """name or alias -> entry; ConfigError if two entries claim the same name."""
    out: dict[str, DatasetSpec] = {}
    for spec in specs.values():
        for n in (spec.name, *spec.aliases):
            if n in out:
                raise ConfigError(f"dataset: {n!r} names both {out[n].name} and {spec.name}")
            out[n] = spec
    return out


_BY_NAME = _by_name(DATASETS)

#: folder name -> the accepted names of each file it must hold, canonical first (from the readers).
LAYOUT: dict[str, list[tuple[str, ...]]] = {s.folder.name: [kf.names for kf in s.folder.files]
                                            for s in DATASETS.values()}


def _known_names() -> str:
    aliases = [a for s in DATASETS.values() for a in s.aliases]
    return ", ".join(DATASETS) + (f" (aliases: {', '.join(aliases)})" if aliases else "")


def dataset_spec(name: str) -> DatasetSpec:
    """The entry of data set ``name`` (or one of its aliases); ConfigError naming ``dataset`` if unknown."""
    spec = _BY_NAME.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"dataset: unknown data set {name!r}; must be one of {_known_names()}")
    return spec


def load(name: str, request: DataRequest | None = None) -> Data:
    """Training data of data set ``name`` (or an alias): ``dataset_spec(name).load(request)``.

    ``request`` None means ``DataRequest()`` (all samples, verified, float32). Images come
    as ``(N, C, H, W)`` with ``C, H, W`` = the entry's ``image_shape``.
    """
    spec = dataset_spec(name)
    data = spec.load(request if request is not None else DataRequest())
    if spec.kind == "images" and data.image_shape != spec.image_shape:   # a reader that forgot to check
        raise InputError(f"{spec.folder.name}: images of shape {data.image_shape}, expected {spec.image_shape}")
    return data


def find_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder of data set ``name`` (``mnist``, ``warpeace``, ``digits`` alias ``sklearn_digits``,
    ``cifar10``).

    Looks in ``<data dir>/<folder>/``; a ``data_dir`` that is itself the data set folder
    (it holds the files directly) is accepted too. Raises ConfigError for an unknown name
    and InputError saying which file is missing where and how to get it.
    """
    return dataset_spec(name).folder.find(data_dir)
