"""Tests of analogtrain.datasets.idx: the strict IDX reader (tiny files written by the tests)."""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from analogtrain.datasets.idx import read_idx, read_idx_hashed
from analogtrain.errors import AnalogTrainError, InputError
from tests.datasets.files import assert_input_error, idx_bytes, write


def idx_path(tmp_path: Path, gz: bool, name: str = "x-idx1-ubyte") -> Path:
    return tmp_path / (name + (".gz" if gz else ""))


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5), (0, 28, 28)])
def test_read_idx_roundtrip(tmp_path, gz, shape):
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.uint8).reshape(shape)
    p = write(idx_path(tmp_path, gz), idx_bytes(arr), gz=gz)
    out = read_idx(p)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_read_idx_labels_and_images_magic(tmp_path):
    lab = write(tmp_path / "l", idx_bytes(np.array([3, 1, 4], np.uint8)))
    img = write(tmp_path / "i", idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    assert lab.read_bytes()[:4] == b"\x00\x00\x08\x01" and img.read_bytes()[:4] == b"\x00\x00\x08\x03"
    assert read_idx(lab).tolist() == [3, 1, 4]
    assert read_idx(img).shape == (2, 28, 28)


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
        read_idx(p)
    msg = assert_input_error(exc, p)
    if words:
        assert words in msg


def test_read_idx_length_mismatch_message(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte", GOOD + b"xyz")
    with pytest.raises(InputError, match=r"file length 43 bytes does not match .* 40 bytes"):
        read_idx(p)


def test_read_idx_gz_name_but_not_gzip(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte.gz", GOOD)
    with pytest.raises(InputError) as exc:
        read_idx(p)
    assert "not a gzip file" in assert_input_error(exc, p)


def test_read_idx_gzip_without_gz_name_hints(tmp_path):
    p = write(tmp_path / "x-idx3-ubyte", GOOD, gz=True)
    with pytest.raises(InputError, match="rename it to"):
        read_idx(p)


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
        read_idx(p)
    assert_input_error(exc, p)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_idx(tmp_path / "nope.gz")


def test_read_idx_gzip_bomb_header_refused_before_allocation(tmp_path):
    # 1 GB claimed by a ~100-byte gzip file: refused from the header alone
    p = write(tmp_path / "bomb.gz", b"\x00\x00\x08\x01" + (10**9).to_bytes(4, "big") + b"\x00" * 1000, gz=True)
    with pytest.raises(InputError, match="more than a"):
        read_idx(p)


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
                arr = read_idx(p)
            except AnalogTrainError:
                continue
            assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_hashed_digest_is_of_the_decompressed_content(tmp_path, gz):
    p = write(idx_path(tmp_path, gz), GOOD, gz=gz)
    arr, digest = read_idx_hashed(p)
    assert digest == hashlib.sha256(GOOD).hexdigest()
    np.testing.assert_array_equal(arr, np.arange(24).reshape(2, 3, 4))
