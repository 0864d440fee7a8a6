"""A byte-level character corpus: War and Peace, its train/valid/test split, and BPTT batches.

Folder ``<data dir>/warpeace/`` with ``warpeace_input.txt`` (Karpathy's char-rnn copy of
War and Peace: UTF-8 with a BOM and CRLF line endings, 3,258,246 bytes). The text is
read as bytes; one id per distinct byte of the training split.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from analogtrain.datasets.locations import NO_VERIFY_HINT, DataFolder, KnownFile
from analogtrain.errors import ConfigError, InputError

WARPEACE_FILE = "warpeace_input.txt"
WARPEACE_MIRRORS = ("https://cs.stanford.edu/people/karpathy/char-rnn/",)

#: War and Peace has no published checksum; this pin was derived from the char-rnn file (see docs).
WARPEACE = KnownFile(WARPEACE_FILE, 3258246,
                     "fb66ba999dafe24017cdd59e04c56d385a9c8466993d374fd4c6f08b2142985e", WARPEACE_MIRRORS)

FOLDER = DataFolder("warpeace", (WARPEACE,), "run `analogtrain data fetch warpeace`")


def load_corpus(path: str | Path | None = None, verify: bool = True,
                data_dir: str | Path | None = None) -> bytes:
    """The bytes of a text corpus; default: ``<data dir>/warpeace/warpeace_input.txt``.

    Read in binary (War and Peace has a UTF-8 BOM and CRLF line endings; 3,258,246 bytes).
    With ``verify`` the file must be the canonical War and Peace (size and SHA-256).
    """
    if path is None:
        path = FOLDER.find(data_dir) / WARPEACE_FILE
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
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != WARPEACE.size or digest != WARPEACE.sha256:
            raise InputError(f"{path}: not the canonical War and Peace file ({len(data)} bytes, SHA-256 "
                             f"{digest[:16]}...; expected {WARPEACE.size} bytes, {WARPEACE.sha256[:16]}...); "
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
