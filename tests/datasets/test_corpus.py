"""Tests of analogtrain.datasets.corpus: War and Peace reader, train/valid/test split, BPTT batches.

Tiny texts are written by the tests; the real War and Peace is used only when present in
``$ANALOGTRAIN_SHARED_DATA`` (``shared_data`` fixture, skips otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.datasets import corpus
from analogtrain.datasets.corpus import char_sequences, load_corpus, make_corpus
from analogtrain.errors import ConfigError, InputError
from tests.datasets.files import assert_input_error, write


TEXT = b"abracadabra, the quick brown fox jumps over the lazy dog. " * 4   # 232 bytes


def test_make_corpus_split_and_vocab():
    c = make_corpus(TEXT, splits=(0.8, 0.1, 0.1))
    n = len(TEXT)
    assert c.offsets == (0, int(n * 0.8), int(n * 0.8) + int(n * 0.1))
    assert len(c.train) + len(c.valid) + len(c.test) == n
    assert c.decode(c.train) + c.decode(c.valid) + c.decode(c.test) == TEXT     # contiguous, in order
    assert c.vocab.tolist() == sorted(set(TEXT[:c.offsets[1]]))
    assert c.vocab_size == len(set(TEXT))
    assert c.train.dtype == np.int64 and c.train.min() >= 0 and c.train.max() < c.vocab_size
    np.testing.assert_array_equal(c.encode(b"fox"), [c.vocab.tolist().index(ch) for ch in b"fox"])


def test_make_corpus_vocab_from_training_split_only():
    data = b"aabbaabbaabbaabbaabb" + b"ab"             # 22 bytes; train = 19 bytes of a/b
    c = make_corpus(data, splits=(0.9, 0.05, 0.05))
    assert c.vocab.tolist() == [ord("a"), ord("b")]


@pytest.mark.parametrize("split, where", [("valid", 91), ("test", 97)])
def test_make_corpus_unknown_byte(split, where):
    data = bytearray(b"ab" * 50)
    data[where] = 0xE9
    with pytest.raises(InputError) as exc:
        make_corpus(bytes(data), splits=(0.9, 0.05, 0.05))
    msg = str(exc.value)
    assert repr(b"\xe9") in msg and f"{split} split" in msg and f"corpus offset {where}" in msg
    pos = where - (90 if split == "valid" else 95)
    assert f"position {pos} " in msg


def test_make_corpus_too_short_and_bad_splits():
    with pytest.raises(InputError, match="empty"):
        make_corpus(b"")
    with pytest.raises(InputError, match="too short"):
        make_corpus(b"abcdefghij")                 # valid split would be floor(0.5) = 0 bytes
    with pytest.raises(ConfigError):
        make_corpus(TEXT, splits=(0.5, 0.2, 0.2))
    with pytest.raises(ConfigError):
        make_corpus(TEXT, splits=(0.0, 0.5, 0.5))


def test_decode_rejects_bad_ids():
    c = make_corpus(TEXT)
    with pytest.raises(ConfigError):
        c.decode([c.vocab_size])


def test_char_sequences_shapes_and_shift():
    ids = np.arange(103)
    x, y = char_sequences(ids, batch_size=4, seq_len=5)
    track = (103 - 1) // 4                             # 25 ids per track
    assert x.shape == y.shape == (track // 5, 4, 5)
    assert x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)             # targets are the next id
    np.testing.assert_array_equal(x[:, 2, :].ravel(), np.arange(2 * track, 3 * track))   # track 2, in order
    np.testing.assert_array_equal(x[1, :, 0], x[0, :, -1] + 1)                        # batches continue


def test_char_sequences_drops_remainder_and_rejects_short():
    x, _ = char_sequences(np.arange(30), batch_size=2, seq_len=4)   # tracks of 14 -> 3 windows
    assert x.shape == (3, 2, 4)
    with pytest.raises(InputError, match="too short"):
        char_sequences(np.arange(8), batch_size=2, seq_len=4)
    with pytest.raises(InputError):
        char_sequences(np.arange(0), batch_size=1, seq_len=1)
    with pytest.raises(ConfigError):
        char_sequences(np.arange(100), batch_size=0, seq_len=4)


def test_load_corpus_verify(tmp_path):
    p = write(tmp_path / "warpeace" / "warpeace_input.txt", b"\xef\xbb\xbfHello\r\nWorld")
    with pytest.raises(InputError) as exc:
        load_corpus(p, verify=True)
    msg = assert_input_error(exc, p)
    assert "not the canonical War and Peace" in msg and "--no-verify-data" in msg
    assert load_corpus(p, verify=False) == b"\xef\xbb\xbfHello\r\nWorld"          # bytes, CRLF kept
    assert load_corpus(verify=False, data_dir=tmp_path) == p.read_bytes()
    empty = write(tmp_path / "empty.txt", b"")
    with pytest.raises(InputError) as exc:
        load_corpus(empty, verify=False)
    assert_input_error(exc, empty)


def test_warpeace_folder_and_pin():
    assert corpus.FOLDER.name == "warpeace" and corpus.FOLDER.files == (corpus.WARPEACE,)
    assert corpus.WARPEACE.filename == corpus.WARPEACE_FILE == "warpeace_input.txt"
    assert corpus.WARPEACE.size == 3_258_246 and corpus.FOLDER.downloadable


def test_real_corpus(shared_data):
    if not (shared_data / "warpeace").is_dir():
        pytest.skip("no warpeace/ in shared data")
    data = load_corpus(data_dir=shared_data, verify=True)
    assert len(data) == 3_258_246 and data.startswith(b"\xef\xbb\xbf")
    assert len(set(data)) == 87
    c = make_corpus(data)
    assert len(c.train) + len(c.valid) + len(c.test) == 3_258_246
    assert c.vocab_size <= 87
    x, y = char_sequences(c.valid, batch_size=16, seq_len=100)
    assert x.shape[1:] == (16, 100)
