"""Tests of analogtrain.datasets: IDX reader, MNIST, character corpus, digits CSV, locations.

Tiny files are written by the tests; the real data sets are used only when present in
``$ANALOGTRAIN_SHARED_DATA`` (``shared_data`` fixture, skips otherwise).
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from analogtrain import datasets as ds
from analogtrain.errors import AnalogTrainError, ConfigError, InputError


# ----------------------------------------------------------------------------- helpers
def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX content of a uint8 array: 00 00 code ndim, big-endian dims, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write(path: Path, content: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def idx_path(tmp_path: Path, gz: bool, name: str = "x-idx1-ubyte") -> Path:
    return tmp_path / (name + (".gz" if gz else ""))


def assert_input_error(exc: pytest.ExceptionInfo, path: Path) -> str:
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


# ----------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5), (0, 28, 28)])
def test_read_idx_roundtrip(tmp_path, gz, shape):
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.uint8).reshape(shape)
    p = write(idx_path(tmp_path, gz), idx_bytes(arr), gz=gz)
    out = ds.read_idx(p)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_read_idx_labels_and_images_magic(tmp_path):
    lab = write(tmp_path / "l", idx_bytes(np.array([3, 1, 4], np.uint8)))
    img = write(tmp_path / "i", idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    assert lab.read_bytes()[:4] == b"\x00\x00\x08\x01" and img.read_bytes()[:4] == b"\x00\x00\x08\x03"
    assert ds.read_idx(lab).tolist() == [3, 1, 4]
    assert ds.read_idx(img).shape == (2, 28, 28)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))

BAD_CONTENT = {
    "empty": (b"", "empty"),
    "short-magic": (b"\x00\x00", "truncated IDX header"),
    "truncated-header": (GOOD[:9], "truncated IDX header"),
    "truncated-data": (GOOD[:-1], None),
    "oversize": (GOOD + b"\x00", None),
    "wrong-magic": (b"\x01\x02" + GOOD[2:], "not an IDX file"),
    "wrong-dtype": (GOOD[:2] + b"\x0d" + GOOD[3:], "data type code 0x0d"),
    "zero-dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "huge-dims": (b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + b"\x00" * 10, None),
    "zero-and-huge-dims": (b"\x00\x00\x08\x03" + b"\x00" * 4 + b"\xff\xff\xff\xff" * 2, "impossible shape"),
}


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("case", sorted(BAD_CONTENT))
def test_read_idx_rejects(tmp_path, gz, case):
    content, words = BAD_CONTENT[case]
    p = write(idx_path(tmp_path, gz), content, gz=gz)
    with pytest.raises(InputError) as exc:
        ds.read_idx(p)
    msg = assert_input_error(exc, p)
    if words:
        assert words in msg


def test_read_idx_length_mismatch_message(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte", GOOD + b"xyz")
    with pytest.raises(InputError, match=r"file length 43 bytes does not match .* 40 bytes"):
        ds.read_idx(p)


def test_read_idx_gz_name_but_not_gzip(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte.gz", GOOD)
    with pytest.raises(InputError) as exc:
        ds.read_idx(p)
    assert "not a gzip file" in assert_input_error(exc, p)


def test_read_idx_gzip_without_gz_name_hints(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte", GOOD, gz=True)
    with pytest.raises(InputError, match="rename it to"):
        ds.read_idx(p)


@pytest.mark.parametrize("damage", ["truncate", "crc", "garbage"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    z = bytearray(gzip.compress(GOOD))
    if damage == "truncate":
        z = z[:-12]
    elif damage == "crc":
        z[-8] ^= 0xFF
    else:
        z[12:20] = b"\xff" * 8
    p = write(tmp_path / "x.gz", bytes(z))
    with pytest.raises(InputError) as exc:
        ds.read_idx(p)
    assert_input_error(exc, p)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ds.read_idx(tmp_path / "nope.gz")


def test_read_idx_gzip_bomb_header_refused_before_allocation(tmp_path):
    # 1 GB claimed by a ~100-byte gzip file: refused from the header alone
    p = write(tmp_path / "bomb.gz", b"\x00\x00\x08\x01" + (10**9).to_bytes(4, "big") + b"\x00" * 1000, gz=True)
    with pytest.raises(InputError, match="more than a"):
        ds.read_idx(p)


def _idx_like(code: int, ndim: int, dims: list[int], payload: bytes) -> bytes:
    return bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


_fuzz_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(_idx_like, st.sampled_from([0x08, 0x08, 0x09, 0x0D]), st.integers(0, 6),
              st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)), max_size=6),
              st.binary(max_size=300)),
)


@settings(max_examples=200, deadline=None)
@given(data=_fuzz_bytes, cut=st.integers(0, 64))
def test_read_idx_fuzz_only_project_errors(data, cut):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        z = gzip.compress(data)
        files = [write(d / "a-ubyte", data), write(d / "b-ubyte.gz", data),
                 write(d / "c-ubyte.gz", z), write(d / "d-ubyte.gz", z[:max(len(z) - cut, 0)])]
        for p in files:
            try:
                arr = ds.read_idx(p)
            except AnalogTrainError:
                continue
            assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8


# ----------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_unverified(tmp_path, gz):
    make_mnist(tmp_path, gz=gz)
    m = ds.load_mnist(tmp_path, verify=False)
    assert m.x_train.shape == (6, 28, 28) and m.y_train.shape == (6,)
    assert m.x_test.shape == (4, 28, 28) and m.y_test.shape == (4,)
    assert m.x_train.dtype == np.uint8 and m.verified is False
    assert m.path == tmp_path / "mnist"


def test_load_mnist_accepts_dataset_folder_itself(tmp_path):
    make_mnist(tmp_path)
    assert ds.load_mnist(tmp_path / "mnist", verify=False).x_train.shape[0] == 6


def test_load_mnist_verify_rejects_non_canonical(tmp_path):
    make_mnist(tmp_path)
    with pytest.raises(InputError) as exc:
        ds.load_mnist(tmp_path, verify=True)
    msg = assert_input_error(exc, tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    assert "not the canonical MNIST file" in msg and "--no-verify-data" in msg


def test_load_mnist_verify_accepts_pinned_content(tmp_path, monkeypatch):
    make_mnist(tmp_path, gz=True)
    pins = {}
    for stem in ds.MNIST_STEMS:
        content = gzip.decompress((tmp_path / "mnist" / (stem + ".gz")).read_bytes())
        pins[stem] = (len(content), hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(ds, "MNIST_CONTENT", pins)
    assert ds.load_mnist(tmp_path, verify=True).verified is True


def test_load_mnist_count_mismatch(tmp_path):
    make_mnist(tmp_path, **{"train-labels-idx1-ubyte": np.zeros(5, np.uint8)})
    with pytest.raises(InputError) as exc:
        ds.load_mnist(tmp_path, verify=False)
    assert "5 labels for 6 images" in assert_input_error(exc, tmp_path / "mnist")


def test_load_mnist_label_out_of_range(tmp_path):
    make_mnist(tmp_path, **{"t10k-labels-idx1-ubyte": np.array([1, 2, 10, 3], np.uint8)})
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(InputError) as exc:
        ds.load_mnist(tmp_path, verify=False)
    assert "label 10 at index 2" in assert_input_error(exc, p)


def test_load_mnist_wrong_image_shape(tmp_path):
    make_mnist(tmp_path, **{"train-images-idx3-ubyte": np.zeros((6, 27, 28), np.uint8)})
    p = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(InputError) as exc:
        ds.load_mnist(tmp_path, verify=False)
    assert "(N, 28, 28)" in assert_input_error(exc, p)


def test_load_mnist_missing_says_how_to_get(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError) as exc:
        ds.load_mnist(tmp_path, verify=False)
    msg = assert_input_error(exc, tmp_path / "mnist")
    assert "t10k-labels-idx1-ubyte.gz" in msg and "analogtrain data fetch mnist" in msg and "--data-dir" in msg


def test_mnist_arrays(tmp_path):
    make_mnist(tmp_path)
    m = ds.load_mnist(tmp_path, verify=False)
    xtr, ytr, xte, yte = ds.mnist_arrays(m, limit_train=4)
    assert xtr.shape == (4, 784) and xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xte.shape == (4, 784) and yte.shape == (4,)
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    np.testing.assert_allclose(xtr[1], m.x_train[1].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ytr, m.y_train[:4])
    with pytest.raises(ConfigError):
        ds.mnist_arrays(m, limit_train=0)


# ----------------------------------------------------------------------------- locations
def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALOGTRAIN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert ds.describe_data_dir(None) == (tmp_path / "env", "$ANALOGTRAIN_DATA")
    monkeypatch.delenv("ANALOGTRAIN_DATA")
    assert ds.describe_data_dir(None) == (tmp_path / "xdg" / "analogtrain", "user cache")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ds.resolve_data_dir(None) == tmp_path / "home" / ".cache" / "analogtrain"
    monkeypatch.setattr(ds.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert ds.resolve_data_dir(None) == tmp_path / "local" / "analogtrain"


def test_find_dataset_unknown_name():
    with pytest.raises(ConfigError, match="unknown data set"):
        ds.find_dataset("cifar", "/nonexistent")


# ----------------------------------------------------------------------------- corpus
TEXT = b"abracadabra, the quick brown fox jumps over the lazy dog. " * 4   # 232 bytes


def test_make_corpus_split_and_vocab():
    c = ds.make_corpus(TEXT, splits=(0.8, 0.1, 0.1))
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
    c = ds.make_corpus(data, splits=(0.9, 0.05, 0.05))
    assert c.vocab.tolist() == [ord("a"), ord("b")]


@pytest.mark.parametrize("split, where", [("valid", 91), ("test", 97)])
def test_make_corpus_unknown_byte(split, where):
    data = bytearray(b"ab" * 50)
    data[where] = 0xE9
    with pytest.raises(InputError) as exc:
        ds.make_corpus(bytes(data), splits=(0.9, 0.05, 0.05))
    msg = str(exc.value)
    assert repr(b"\xe9") in msg and f"{split} split" in msg and f"corpus offset {where}" in msg
    pos = where - (90 if split == "valid" else 95)
    assert f"position {pos} " in msg


def test_make_corpus_too_short_and_bad_splits():
    with pytest.raises(InputError, match="empty"):
        ds.make_corpus(b"")
    with pytest.raises(InputError, match="too short"):
        ds.make_corpus(b"abcdefghij")                 # valid split would be floor(0.5) = 0 bytes
    with pytest.raises(ConfigError):
        ds.make_corpus(TEXT, splits=(0.5, 0.2, 0.2))
    with pytest.raises(ConfigError):
        ds.make_corpus(TEXT, splits=(0.0, 0.5, 0.5))


def test_decode_rejects_bad_ids():
    c = ds.make_corpus(TEXT)
    with pytest.raises(ConfigError):
        c.decode([c.vocab_size])


def test_char_sequences_shapes_and_shift():
    ids = np.arange(103)
    x, y = ds.char_sequences(ids, batch_size=4, seq_len=5)
    track = (103 - 1) // 4                             # 25 ids per track
    assert x.shape == y.shape == (track // 5, 4, 5)
    assert x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)             # targets are the next id
    np.testing.assert_array_equal(x[:, 2, :].ravel(), np.arange(2 * track, 3 * track))   # track 2, in order
    np.testing.assert_array_equal(x[1, :, 0], x[0, :, -1] + 1)                        # batches continue


def test_char_sequences_drops_remainder_and_rejects_short():
    x, _ = ds.char_sequences(np.arange(30), batch_size=2, seq_len=4)   # tracks of 14 -> 3 windows
    assert x.shape == (3, 2, 4)
    with pytest.raises(InputError, match="too short"):
        ds.char_sequences(np.arange(8), batch_size=2, seq_len=4)
    with pytest.raises(InputError):
        ds.char_sequences(np.arange(0), batch_size=1, seq_len=1)
    with pytest.raises(ConfigError):
        ds.char_sequences(np.arange(100), batch_size=0, seq_len=4)


def test_load_corpus_verify(tmp_path):
    p = write(tmp_path / "warpeace" / "warpeace_input.txt", b"\xef\xbb\xbfHello\r\nWorld")
    with pytest.raises(InputError) as exc:
        ds.load_corpus(p, verify=True)
    msg = assert_input_error(exc, p)
    assert "not the canonical War and Peace" in msg and "--no-verify-data" in msg
    assert ds.load_corpus(p, verify=False) == b"\xef\xbb\xbfHello\r\nWorld"          # bytes, CRLF kept
    assert ds.load_corpus(verify=False, data_dir=tmp_path) == p.read_bytes()
    empty = write(tmp_path / "empty.txt", b"")
    with pytest.raises(InputError) as exc:
        ds.load_corpus(empty, verify=False)
    assert_input_error(exc, empty)


# ----------------------------------------------------------------------------- digits
def digits_csv(rows: list[list]) -> bytes:
    return "".join(",".join(str(v) for v in r) + "\n" for r in rows).encode()


GOOD_ROWS = [[i % 17] * 64 + [i % 10] for i in range(20)]


@pytest.mark.parametrize("gz", [True, False])
def test_load_digits_good(tmp_path, gz):
    p = write(tmp_path / ("digits.csv.gz" if gz else "digits.csv"), digits_csv(GOOD_ROWS), gz=gz)
    x, y = ds.load_digits(p)
    assert x.shape == (20, 64) and x.dtype == np.float32 and y.shape == (20,)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[3], 3 / 16)
    assert y.tolist() == [i % 10 for i in range(20)]


def _bad(row_change):
    rows = [list(r) for r in GOOD_ROWS]
    row_change(rows)
    return rows


BAD_DIGITS = {
    "columns": (_bad(lambda r: r[2].pop()), "64 columns, expected 65"),
    "not-number": (_bad(lambda r: r[1].__setitem__(5, "x1")), "is not a number"),
    "pixel-range": (_bad(lambda r: r[0].__setitem__(0, 17)), "expected an integer in 0..16"),
    "label-range": (_bad(lambda r: r[4].__setitem__(64, 10)), "expected an integer in 0..9"),
    "fraction": (_bad(lambda r: r[4].__setitem__(3, 1.5)), "expected an integer"),
    "nan": (_bad(lambda r: r[4].__setitem__(3, "nan")), "expected an integer"),
    "empty": ([], "no data rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_DIGITS))
def test_load_digits_malformed(tmp_path, case):
    rows, words = BAD_DIGITS[case]
    p = write(tmp_path / "digits.csv.gz", digits_csv(rows), gz=True)
    with pytest.raises(InputError) as exc:
        ds.load_digits(p)
    assert words in assert_input_error(exc, p)


def test_load_digits_bad_gzip(tmp_path):
    p = write(tmp_path / "digits.csv.gz", digits_csv(GOOD_ROWS))
    with pytest.raises(InputError) as exc:
        ds.load_digits(p)
    assert_input_error(exc, p)


# ----------------------------------------------------------------------------- status
def test_dataset_status_tiny(tmp_path):
    make_mnist(tmp_path, gz=False)
    rows = ds.dataset_status(tmp_path)
    assert [r["dataset"] for r in rows].count("mnist") == 4
    mn = [r for r in rows if r["dataset"] == "mnist"]
    assert all(r["present"] and not r["verified"] and not r["file"].endswith(".gz") for r in mn)
    wp = next(r for r in rows if r["dataset"] == "warpeace")
    assert wp["present"] is False and wp["size"] is None and wp["verified"] is False
    assert set(rows[0]) == {"dataset", "file", "present", "size", "expected_size", "verified", "path"}


# ----------------------------------------------------------------------------- real data
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no mnist/ in shared data")
    m = ds.load_mnist(shared_data, verify=True)
    assert m.verified
    assert m.x_train.shape == (60000, 28, 28) and m.x_test.shape == (10000, 28, 28)
    assert np.bincount(m.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(m.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert m.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    xtr, ytr, _, _ = ds.mnist_arrays(m, limit_train=1000)
    assert xtr.shape == (1000, 784) and abs(float(m.x_train.mean()) - 33.3184) < 1e-3


def test_real_corpus(shared_data):
    if not (shared_data / "warpeace").is_dir():
        pytest.skip("no warpeace/ in shared data")
    data = ds.load_corpus(data_dir=shared_data, verify=True)
    assert len(data) == 3_258_246 and data.startswith(b"\xef\xbb\xbf")
    assert len(set(data)) == 87
    c = ds.make_corpus(data)
    assert len(c.train) + len(c.valid) + len(c.test) == 3_258_246
    assert c.vocab_size <= 87
    x, y = ds.char_sequences(c.valid, batch_size=16, seq_len=100)
    assert x.shape[1:] == (16, 100)


def test_real_digits_and_status(shared_data):
    if not (shared_data / "sklearn_digits").is_dir():
        pytest.skip("no sklearn_digits/ in shared data")
    x, y = ds.load_digits(data_dir=shared_data)
    assert x.shape == (1797, 64)
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    rows = ds.dataset_status(shared_data)
    assert all(r["verified"] for r in rows if r["present"])
