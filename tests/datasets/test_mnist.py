"""Tests of analogtrain.datasets.mnist: the four IDX files, pins, shape/label/count checks.

Tiny files in MNIST format are written by the tests; the real MNIST is used only when
present in ``$ANALOGTRAIN_SHARED_DATA`` (``shared_data`` fixture, skips otherwise).
"""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from analogtrain.datasets import mnist
from analogtrain.datasets.mnist import MNIST_STEMS, load_mnist
from analogtrain.datasets.prepared import DataRequest
from analogtrain.datasets.registry import load
from analogtrain.errors import InputError
from tests.datasets.files import assert_input_error, make_mnist


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_unverified(tmp_path, gz):
    make_mnist(tmp_path, gz=gz)
    m = load_mnist(tmp_path, verify=False)
    assert m.x_train.shape == (6, 28, 28) and m.y_train.shape == (6,)
    assert m.x_test.shape == (4, 28, 28) and m.y_test.shape == (4,)
    assert m.x_train.dtype == np.uint8 and m.verified is False
    assert m.path == tmp_path / "mnist"


def test_load_mnist_accepts_dataset_folder_itself(tmp_path):
    make_mnist(tmp_path)
    assert load_mnist(tmp_path / "mnist", verify=False).x_train.shape[0] == 6


def test_load_mnist_verify_rejects_non_canonical(tmp_path):
    make_mnist(tmp_path)
    with pytest.raises(InputError) as exc:
        load_mnist(tmp_path, verify=True)
    msg = assert_input_error(exc, tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    assert "not the canonical MNIST file" in msg and "--no-verify-data" in msg


def test_load_mnist_verify_accepts_pinned_content(tmp_path, monkeypatch):
    make_mnist(tmp_path, gz=True)
    pins = {}
    for stem in MNIST_STEMS:
        content = gzip.decompress((tmp_path / "mnist" / (stem + ".gz")).read_bytes())
        pins[stem] = (len(content), hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_CONTENT", pins)
    assert load_mnist(tmp_path, verify=True).verified is True


def test_load_mnist_count_mismatch(tmp_path):
    make_mnist(tmp_path, **{"train-labels-idx1-ubyte": np.zeros(5, np.uint8)})
    with pytest.raises(InputError) as exc:
        load_mnist(tmp_path, verify=False)
    assert "5 labels for 6 images" in assert_input_error(exc, tmp_path / "mnist")


def test_load_mnist_label_out_of_range(tmp_path):
    make_mnist(tmp_path, **{"t10k-labels-idx1-ubyte": np.array([1, 2, 10, 3], np.uint8)})
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(InputError) as exc:
        load_mnist(tmp_path, verify=False)
    assert "label 10 at index 2" in assert_input_error(exc, p)


def test_load_mnist_wrong_image_shape(tmp_path):
    make_mnist(tmp_path, **{"train-images-idx3-ubyte": np.zeros((6, 27, 28), np.uint8)})
    p = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(InputError) as exc:
        load_mnist(tmp_path, verify=False)
    assert "(N, 28, 28)" in assert_input_error(exc, p)


def test_load_mnist_missing_says_how_to_get(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError) as exc:
        load_mnist(tmp_path, verify=False)
    msg = assert_input_error(exc, tmp_path / "mnist")
    assert "t10k-labels-idx1-ubyte.gz" in msg and "analogtrain data fetch mnist" in msg and "--data-dir" in msg


def test_published_files_pin_their_decompressed_content():
    """Each .gz row carries the pin of its decompressed twin, so a stored-uncompressed file verifies."""
    assert [kf.filename for kf in mnist.FILES] == [s + ".gz" for s in MNIST_STEMS]
    for kf in mnist.FILES:
        assert kf.unpacked == mnist.MNIST_CONTENT[kf.filename[:-3]]
        assert kf.names == (kf.filename, kf.filename[:-3]) and kf.mirrors == mnist.MNIST_MIRRORS
    assert mnist.FOLDER.name == "mnist" and mnist.FOLDER.downloadable


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no mnist/ in shared data")
    m = load_mnist(shared_data, verify=True)
    assert m.verified
    assert m.x_train.shape == (60000, 28, 28) and m.x_test.shape == (10000, 28, 28)
    assert np.bincount(m.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(m.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert m.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    data = load("mnist", DataRequest(data_dir=shared_data, limit_train=1000))
    assert data.x_train.shape == (1000, 1, 28, 28) and abs(float(m.x_train.mean()) - 33.3184) < 1e-3
