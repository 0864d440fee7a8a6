"""Tests of analogtrain.datasets.digits: scikit-learn's 8x8 digits CSV reader.

Tiny CSVs are written by the tests; the real file is used only when present in
``$ANALOGTRAIN_SHARED_DATA`` (``shared_data`` fixture, skips otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.datasets import digits
from analogtrain.datasets.digits import load_digits
from analogtrain.errors import InputError
from tests.datasets.files import assert_input_error, digits_csv, make_digits, write


GOOD_ROWS = [[i % 17] * 64 + [i % 10] for i in range(20)]


@pytest.mark.parametrize("gz", [True, False])
def test_load_digits_good(tmp_path, gz):
    p = write(tmp_path / ("digits.csv.gz" if gz else "digits.csv"), digits_csv(GOOD_ROWS), gz=gz)
    x, y = load_digits(p)
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
        load_digits(p)
    assert words in assert_input_error(exc, p)


def test_load_digits_bad_gzip(tmp_path):
    p = write(tmp_path / "digits.csv.gz", digits_csv(GOOD_ROWS))
    with pytest.raises(InputError) as exc:
        load_digits(p)
    assert_input_error(exc, p)


def test_load_digits_default_path_and_missing_folder(tmp_path):
    pixels, labels = make_digits(tmp_path, n=30)
    x, y = load_digits(data_dir=tmp_path)
    np.testing.assert_array_equal(x, (pixels / 16).astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(InputError) as exc:
        load_digits(data_dir=tmp_path / "empty")
    msg = assert_input_error(exc, tmp_path / "empty" / "sklearn_digits")
    assert "digits.csv.gz" in msg and "scikit-learn" in msg


def test_digits_folder_has_no_download():
    assert digits.FOLDER.name == "sklearn_digits" and not digits.FOLDER.downloadable
    assert [kf.filename for kf in digits.FOLDER.files] == [digits.DIGITS_FILE]


def test_real_digits(shared_data):
    if not (shared_data / "sklearn_digits").is_dir():
        pytest.skip("no sklearn_digits/ in shared data")
    x, y = load_digits(data_dir=shared_data)
    assert x.shape == (1797, 64)
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
