"""Tests of analogtrain.datasets.registry and .prepared: one DatasetSpec per data set, load -> Data.

Every entry is loaded from small synthetic files written into a tmp dir (shapes, dtypes,
limits, errors); the real data sets are used only when present in
``$ANALOGTRAIN_SHARED_DATA`` (``shared_data`` fixture, skips otherwise).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import analogtrain.datasets as ds
from analogtrain.datasets import cifar10, corpus
from analogtrain.datasets.mnist import load_mnist
from analogtrain.datasets.prepared import Data, DataRequest
from analogtrain.datasets.registry import DATASETS, KINDS, LAYOUT, DatasetSpec, dataset_spec, find_dataset, load
from analogtrain.errors import ConfigError, InputError
from tests.datasets.files import assert_input_error, make_cifar10, make_digits, make_mnist, make_warpeace

TEXT = b"abracadabra, the quick brown fox jumps over the lazy dog. " * 40     # 2320 bytes


def _mnist(root):
    make_mnist(root, n_train=6, n_test=4)
    return DataRequest(data_dir=root, verify=False)


def _digits(root):
    make_digits(root, n=1510)
    return DataRequest(data_dir=root)


def _warpeace(root):
    make_warpeace(root, TEXT)
    return DataRequest(data_dir=root, verify=False, batch_size=2, seq_len=10)


def _cifar10(root):
    make_cifar10(root, records=CIFAR_RECORDS)
    return DataRequest(data_dir=root, verify=False)


#: data set -> writes its synthetic files under root and returns the request that loads them
SYNTHETIC = {"mnist": _mnist, "digits": _digits, "warpeace": _warpeace, "cifar10": _cifar10}

CIFAR_RECORDS = 4       # records per synthetic CIFAR-10 batch file (the published files hold 10000)


@pytest.fixture
def small_cifar10(monkeypatch):
    """The CIFAR-10 reader expects CIFAR_RECORDS records per batch file, as ``_cifar10`` writes."""
    monkeypatch.setattr(cifar10, "RECORDS_PER_FILE", CIFAR_RECORDS)


# ----------------------------------------------------------------------------- the table
def test_every_entry_has_a_synthetic_test():
    assert set(SYNTHETIC) == set(DATASETS)


@pytest.mark.parametrize("name", list(DATASETS))
def test_entry_is_consistent(name):
    s = DATASETS[name]
    assert s.name == name and s.kind in KINDS and s.description and callable(s.load)
    if s.kind == "images":
        assert len(s.image_shape) == 3 and all(d >= 1 for d in s.image_shape) and s.n_classes >= 2
    else:
        assert s.image_shape is None and s.n_classes is None
    archive_mirrors = bool(s.folder.archive and s.folder.archive.mirrors)
    assert s.fetchable == (any(kf.mirrors for kf in s.folder.files) or archive_mirrors)
    assert dataset_spec(name) is s and all(dataset_spec(a) is s for a in s.aliases)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"


def test_the_four_data_sets():
    assert list(DATASETS) == ["mnist", "warpeace", "digits", "cifar10"]
    assert [n for n, s in DATASETS.items() if s.fetchable] == ["mnist", "warpeace", "cifar10"]
    assert DATASETS["cifar10"].image_shape == (3, 32, 32) and DATASETS["cifar10"].folder.archive is not None
    assert DATASETS["mnist"].image_shape == (1, 28, 28) and DATASETS["digits"].image_shape == (1, 8, 8)
    assert DATASETS["digits"].folder.name == "sklearn_digits" and DATASETS["digits"].aliases == ("sklearn_digits",)
    assert DATASETS["warpeace"].kind == "characters"
    assert LAYOUT == {s.folder.name: [kf.names for kf in s.folder.files] for s in DATASETS.values()}
    assert LAYOUT["mnist"][0] == ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")


def test_unknown_name_is_a_config_error_naming_dataset():
    for call in (lambda: dataset_spec("cifar"), lambda: load("cifar"), lambda: find_dataset("cifar", "/nonexistent")):
        with pytest.raises(ConfigError) as exc:
            call()
        msg = str(exc.value)
        assert msg.startswith("dataset: unknown data set 'cifar'")
        assert all(n in msg for n in ("mnist", "warpeace", "digits", "sklearn_digits", "cifar10"))


def test_find_dataset_unknown_name():
    with pytest.raises(ConfigError, match="unknown data set"):
        find_dataset("cifar", "/nonexistent")


def test_find_dataset_by_name_or_alias(tmp_path):
    make_digits(tmp_path, n=3)
    assert find_dataset("digits", tmp_path) == find_dataset("sklearn_digits", tmp_path) == tmp_path / "sklearn_digits"


def test_spec_checks_its_fields():
    base = DATASETS["digits"]
    with pytest.raises(ConfigError, match="kind"):
        dataclasses.replace(base, kind="audio")
    with pytest.raises(ConfigError, match="image_shape"):
        dataclasses.replace(base, image_shape=None)
    with pytest.raises(ConfigError, match="image_shape"):
        DatasetSpec(name="t", folder=base.folder, description="x", kind="characters", load=base.load,
                    image_shape=(1, 2, 2), n_classes=3)


def test_package_reexports():
    for name in ("DATASETS", "dataset_spec", "DataRequest", "Data", "load", "find_dataset", "LAYOUT",
                 "KNOWN_FILES", "KnownFile", "fetch", "dataset_status", "load_mnist", "read_idx", "load_corpus",
                 "make_corpus", "char_sequences", "load_digits", "describe_data_dir", "resolve_data_dir",
                 "WARPEACE_FILE", "MNIST_STEMS", "CharCorpus", "MNIST"):
        assert hasattr(ds, name), name
    assert ds.KNOWN_FILES is ds.download.KNOWN_FILES and ds.load is load and ds.Data is Data


# ----------------------------------------------------------------------------- every entry loads
@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_loads_synthetic_files(name, tmp_path, small_cifar10):
    spec = DATASETS[name]
    data = load(name, SYNTHETIC[name](tmp_path))
    assert isinstance(data, Data)
    if spec.kind == "images":
        assert data.kind == "classifier" and data.image_shape == spec.image_shape and data.vocab == 0
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            assert x.ndim == 4 and x.shape[1:] == spec.image_shape and x.shape[0] == y.shape[0] > 0
            assert y.dtype == np.int64 and 0 <= y.min() and y.max() < spec.n_classes
            z = data.inputs(x[:3])
            assert z.dtype == np.float32 and 0.0 <= z.min() and z.max() <= 1.0
        assert data.info == {"train_samples": len(data.y_train), "test_samples": len(data.y_test),
                             "inputs": math.prod(spec.image_shape)}
    else:
        assert data.kind == "charlm" and data.image_shape is None and data.vocab >= 2
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            assert x.dtype == y.dtype == np.int64 and x.ndim == 3 and x.shape == y.shape
            assert 0 <= x.min() and x.max() < data.vocab
        assert data.info["vocab"] == data.vocab


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_applies_the_limits(name, tmp_path, small_cifar10):
    req = SYNTHETIC[name](tmp_path)
    full = load(name, req)
    small = load(name, dataclasses.replace(req, limit_train=3 if full.kind == "classifier" else 500,
                                           limit_test=2 if full.kind == "classifier" else 60))
    if full.kind == "classifier":
        assert len(small.x_train) == len(small.y_train) == 3 and len(small.y_test) == 2
        np.testing.assert_array_equal(small.x_train, full.x_train[:3])
        np.testing.assert_array_equal(small.y_test, full.y_test[:2])
        assert small.info["train_samples"] == 3 and small.info["test_samples"] == 2
    else:
        assert small.info["train_chars"] == 500 and small.info["test_chars"] == 60
        np.testing.assert_array_equal(small.x_train[0, 0], full.x_train[0, 0])    # track 0 starts the same
        assert small.x_train.shape[0] < full.x_train.shape[0]


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_says_where_its_files_are_missing(name, tmp_path, monkeypatch):
    monkeypatch.delenv("ANALOGTRAIN_DATA", raising=False)
    with pytest.raises(InputError) as exc:
        load(name, DataRequest(data_dir=tmp_path))
    msg = assert_input_error(exc, tmp_path / DATASETS[name].folder.name)
    assert DATASETS[name].folder.how_to_get in msg


# ----------------------------------------------------------------------------- images
def test_mnist_images_stay_uint8_and_scale_per_batch(tmp_path):
    """The arrays a model trains on (formerly mnist_arrays): (N, 1, 28, 28) bytes, pixel/255 per batch."""
    req = _mnist(tmp_path)
    m = load_mnist(tmp_path, verify=False)
    data = load("mnist", dataclasses.replace(req, limit_train=4))
    assert data.x_train.shape == (4, 1, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (4, 1, 28, 28) and data.y_test.shape == (4,)
    np.testing.assert_array_equal(data.x_train[:, 0], m.x_train[:4])
    np.testing.assert_array_equal(data.y_train, m.y_train[:4])
    xtr = data.inputs(data.x_train)
    assert xtr.dtype == np.float32 and 0.0 <= xtr.min() and xtr.max() <= 1.0
    np.testing.assert_allclose(xtr[1].ravel(), m.x_train[1].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(xtr, m.x_train[:4, None].astype(np.float32) / np.float32(255))
    f64 = load("mnist", dataclasses.replace(req, dtype="float64"))
    assert f64.x_train.dtype == np.uint8 and f64.inputs(f64.x_train).dtype == np.float64
    with pytest.raises(ConfigError):
        dataclasses.replace(req, limit_train=-1)


def test_mnist_verify_is_passed_on(tmp_path):
    req = _mnist(tmp_path)
    with pytest.raises(InputError, match="not the canonical MNIST file"):
        load("mnist", dataclasses.replace(req, verify=True))


def test_digits_fixed_split_and_scaling(tmp_path):
    pixels, labels = make_digits(tmp_path, n=1510)
    data = load("digits", DataRequest(data_dir=tmp_path, verify=True))     # nothing to verify: no pin check
    assert data.x_train.shape == (1500, 1, 8, 8) and data.x_test.shape == (10, 1, 8, 8)
    assert data.x_train.dtype == np.float32
    expected = pixels.astype(np.float32) / np.float32(16.0)
    np.testing.assert_array_equal(data.x_train.reshape(1500, 64), expected[:1500])
    np.testing.assert_array_equal(data.x_test.reshape(10, 64), expected[1500:])
    np.testing.assert_array_equal(data.y_test, labels[1500:])
    assert data.inputs(data.x_train) is data.x_train                       # already floats
    f64 = load("digits", DataRequest(data_dir=tmp_path, dtype=np.float64))
    assert f64.x_train.dtype == np.float64 and f64.dtype == np.float64
    np.testing.assert_array_equal(f64.x_train, data.x_train.astype(np.float64))


# ----------------------------------------------------------------------------- characters
def test_warpeace_windows(tmp_path):
    make_warpeace(tmp_path, TEXT)
    data = load("warpeace", DataRequest(data_dir=tmp_path, verify=False, batch_size=2, seq_len=10))
    c = corpus.make_corpus(TEXT)
    assert data.vocab == c.vocab_size
    x, y = corpus.char_sequences(c.train, 2, 10)
    np.testing.assert_array_equal(data.x_train, x)
    np.testing.assert_array_equal(data.y_train, y)
    n_test = len(c.test)                                                   # 116 ids: 2 tracks fit
    xt, _ = corpus.char_sequences(c.test, min(2, max(1, n_test // 11)), 10)
    np.testing.assert_array_equal(data.x_test, xt)
    assert data.info == {"train_chars": len(c.train), "test_chars": n_test, "vocab": c.vocab_size}
    assert data.x_train.shape[1:] == (2, 10)


def test_warpeace_errors_name_the_file(tmp_path):
    path = make_warpeace(tmp_path, TEXT)
    req = DataRequest(data_dir=tmp_path, verify=False, batch_size=2, seq_len=10)
    with pytest.raises(InputError, match="not the canonical War and Peace"):
        load("warpeace", dataclasses.replace(req, verify=True))
    make_warpeace(tmp_path, TEXT + b"Z" * 10)                               # 'Z' only in the test split
    with pytest.raises(InputError) as exc:
        load("warpeace", req)
    msg = assert_input_error(exc, path)
    assert "b'Z'" in msg and "test split" in msg and "warpeace_input.txt" in msg
    make_warpeace(tmp_path, b"ab")
    with pytest.raises(InputError, match="too short") as exc:
        load("warpeace", req)
    assert_input_error(exc, path)
    make_warpeace(tmp_path, TEXT)
    with pytest.raises(InputError, match="text too short"):
        load("warpeace", dataclasses.replace(req, seq_len=100000))


# ----------------------------------------------------------------------------- request, Data
@pytest.mark.parametrize("field, value", [("limit_train", -1), ("limit_test", -5), ("batch_size", 0),
                                          ("seq_len", 0), ("limit_train", 1.5), ("batch_size", True),
                                          ("dtype", "int8"), ("dtype", "nonsense"), ("dtype", None)])
def test_request_rejects(field, value):
    with pytest.raises(ConfigError) as exc:
        DataRequest(**{field: value})
    assert str(exc.value).startswith(f"{field}: ")


def test_request_defaults_and_dtype_by_name():
    r = DataRequest()
    assert (r.data_dir, r.verify, r.limit_train, r.limit_test, r.batch_size, r.seq_len, r.dtype) == \
        (None, True, 0, 0, 10, 100, "float32")
    assert DataRequest(dtype=np.float64).dtype == "float64"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.limit_train = 3


def test_data_inputs_scaling():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    d = Data("classifier", x, np.zeros(1, np.int64), x, np.zeros(1, np.int64), dtype=np.float64)
    out = d.inputs(x)
    assert out.dtype == np.float64 and out.tolist() == [[0.0, 0.2, 1.0]]


# ----------------------------------------------------------------------------- real data
def test_real_data_sets(shared_data):
    for name, spec in DATASETS.items():
        if not (shared_data / spec.folder.name).is_dir():
            continue
        images = spec.kind == "images"
        data = load(name, DataRequest(data_dir=shared_data, limit_train=1000 if images else 4000,
                                      limit_test=500 if images else 2000, batch_size=16))
        if images:
            assert data.x_train.shape == (1000, *spec.image_shape) and len(data.y_test) <= 500
        else:
            assert data.x_train.shape == ((4000 - 1) // 16 // 100, 16, 100) and data.vocab <= 87
    if (shared_data / "sklearn_digits").is_dir():
        full = load("digits", DataRequest(data_dir=shared_data))
        assert len(full.y_train) == 1500 and len(full.y_test) == 297
