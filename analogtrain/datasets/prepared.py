"""What a model trains on: the request (:class:`DataRequest`) and the prepared arrays (:class:`Data`).

Two kinds of training data, one builder each:

* images for classification, :func:`image_data`: images ``(N, C, H, W)`` and int64
  labels ``(N,)``; how a network consumes the images is the network's business (a fully
  connected net flattens them, a convolutional one takes them as they are);
* characters for language modelling, :func:`character_data`: truncated-BPTT windows of
  int64 ids ``(n_batches, batch_size, seq_len)`` (see :func:`char_sequences`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analogtrain.datasets.corpus import CharCorpus, char_sequences
from analogtrain.errors import ConfigError

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class DataRequest:
    """How to prepare a data set for training (defaults as ``analogtrain train``).

    Attributes:
        data_dir: data directory; None = ``$ANALOGTRAIN_DATA``, then the user cache.
        verify: require the published checksums; False accepts other data in the same format.
        limit_train: keep only the first N training samples (characters for a corpus); 0 = all.
        limit_test: the same for the test split; 0 = all.
        batch_size: character sets: tracks per batch, >= 1 (images: unused, the loop batches).
        seq_len: character sets: characters per window, >= 1 (images: unused).
        dtype: float type of float inputs, ``"float32"`` or ``"float64"`` (a numpy dtype is
            accepted and stored by name).
    """

    data_dir: str | Path | None = None
    verify: bool = True
    limit_train: int = 0
    limit_test: int = 0
    batch_size: int = 10
    seq_len: int = 100
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name, lo in (("limit_train", 0), ("limit_test", 0), ("batch_size", 1), ("seq_len", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(f"{name}: must be an integer >= {lo} (got {v!r})")
        try:
            dt = np.dtype(self.dtype).name if self.dtype is not None else None   # np.dtype(None) is float64
        except TypeError:
            dt = None
        if dt not in DTYPES:
            raise ConfigError(f"dtype: must be float32 or float64 (got {self.dtype!r})")
        object.__setattr__(self, "dtype", dt)


@dataclass(frozen=True)
class Data:
    """Training and test arrays of one data set.

    Attributes:
        kind: the task: ``"classifier"`` (images and labels) or ``"charlm"`` (character ids).
        x_train, x_test: classifier: images ``(N, C, H, W)``, uint8 0..255 (kept as bytes in
            memory, :meth:`inputs` scales each batch) or ``dtype`` already scaled to [0, 1];
            charlm: input ids, int64 ``(n_batches, batch_size, seq_len)``.
        y_train, y_test: classifier: labels, int64 ``(N,)``; charlm: the next ids, int64,
            same shape as ``x``.
        vocab: number of distinct characters (charlm); 0 for images.
        info: plain numbers for the report: ``train_samples``, ``test_samples``, ``inputs``
            (C*H*W) for images; ``train_chars``, ``test_chars``, ``vocab`` for characters.
        dtype: numpy float dtype of the model inputs.
        image_shape: ``(C, H, W)`` of the images; None for characters.
    """

    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocab: int = 0
    info: dict = field(default_factory=dict)
    dtype: Any = np.float32
    image_shape: tuple[int, int, int] | None = None

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """A batch of inputs as floats: uint8 images are scaled to [0, 1] (pixel / 255) in ``dtype``."""
        if x.dtype == np.uint8:
            dt = np.dtype(self.dtype)
            return x.astype(dt) / dt.type(255.0)
        return x


def _first(a: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` entries of ``a`` (all of them for 0)."""
    return a[:limit] if limit else a


def image_data(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
               request: DataRequest) -> Data:
    """Classification data from images ``(N, C, H, W)`` and labels ``(N,)``, limits applied.

    uint8 images stay uint8 (MNIST: 47 MB instead of 188 MB as float32; :meth:`Data.inputs`
    scales each batch to [0, 1]); float images (already in [0, 1]) are cast to
    ``request.dtype``. Labels become int64.
    """
    dt = np.dtype(request.dtype)
    xtr, ytr = _first(x_train, request.limit_train), _first(y_train.astype(np.int64), request.limit_train)
    xte, yte = _first(x_test, request.limit_test), _first(y_test.astype(np.int64), request.limit_test)
    if xtr.dtype != np.uint8:
        xtr, xte = xtr.astype(dt), xte.astype(dt)
    shape = tuple(int(s) for s in x_train.shape[1:])
    return Data("classifier", xtr, ytr, xte, yte, dtype=dt, image_shape=shape,
                info={"train_samples": int(len(ytr)), "test_samples": int(len(yte)), "inputs": math.prod(shape)})


def character_data(corpus: CharCorpus, request: DataRequest) -> Data:
    """Character language-modelling data from a split corpus, limits applied (in characters).

    Training windows: ``request.batch_size`` tracks of ``request.seq_len`` characters;
    the test split uses as many tracks as it can fill, at most ``batch_size``.
    """
    train = _first(corpus.train, request.limit_train)
    test = _first(corpus.test, request.limit_test)
    xi, yi = char_sequences(train, request.batch_size, request.seq_len)
    xt, yt = char_sequences(test, min(request.batch_size, max(1, len(test) // (request.seq_len + 1))),
                            request.seq_len)
    return Data("charlm", xi, yi, xt, yt, vocab=corpus.vocab_size, dtype=np.dtype(request.dtype),
                info={"train_chars": int(len(train)), "test_chars": int(len(test)), "vocab": corpus.vocab_size})
