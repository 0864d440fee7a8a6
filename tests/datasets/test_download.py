"""Tests of analogtrain.datasets.download: the KNOWN_FILES index, fetch from a file:// mirror, dataset_status.

The HTTP side of ``fetch`` (Range requests, resume, mirror fall-back) is exercised end to
end in ``cli_tests/test_data_cli.py`` against a local server; here downloads come from a
``file://`` mirror in a tmp dir, with ``download.KNOWN_FILES`` replaced for fake files.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest

from analogtrain.datasets import download
from analogtrain.datasets.download import KNOWN_FILES, KnownFile, dataset_status, fetch, known_files
from analogtrain.datasets.registry import DATASETS
from analogtrain.errors import ConfigError, RunError
from tests.datasets.files import make_mnist, write


# ----------------------------------------------------------------------------- the table
def test_known_files_index_the_registry():
    assert list(KNOWN_FILES) == [s.folder.name for s in DATASETS.values()]
    for spec in DATASETS.values():
        assert KNOWN_FILES[spec.folder.name] == list(spec.folder.files)
        assert known_files(spec.name) == list(spec.folder.files)
    assert known_files("sklearn_digits") == known_files("digits")        # an alias


# ----------------------------------------------------------------------------- status
def test_dataset_status_tiny(tmp_path):
    make_mnist(tmp_path, gz=False)
    rows = dataset_status(tmp_path)
    assert [r["dataset"] for r in rows].count("mnist") == 4
    mn = [r for r in rows if r["dataset"] == "mnist"]
    assert all(r["present"] and not r["verified"] and not r["file"].endswith(".gz") for r in mn)
    wp = next(r for r in rows if r["dataset"] == "warpeace")
    assert wp["present"] is False and wp["size"] is None and wp["verified"] is False
    assert set(rows[0]) == {"dataset", "file", "present", "size", "expected_size", "verified", "path"}


def test_real_status(shared_data):
    rows = dataset_status(shared_data)
    assert all(r["verified"] for r in rows if r["present"]) and any(r["present"] for r in rows)


# ----------------------------------------------------------------------------- fetch
A, B = bytes(range(256)) * 8, b"hello analog world\n" * 50
B_GZ = gzip.compress(B)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror with a.bin and b-ubyte.gz, listed as the files of 'mnist'."""
    www = write(tmp_path / "www" / "a.bin", A).parent
    write(www / "b-ubyte.gz", B_GZ)
    url = www.as_uri() + "/"
    table = {"mnist": [KnownFile("a.bin", len(A), hashlib.sha256(A).hexdigest(), (url,)),
                       KnownFile("b-ubyte.gz", len(B_GZ), hashlib.sha256(B_GZ).hexdigest(), (url,),
                                 unpacked=(len(B), hashlib.sha256(B).hexdigest()))],
             "warpeace": [], "sklearn_digits": []}
    monkeypatch.setattr(download, "KNOWN_FILES", table)
    return url


def test_fetch_then_skip(mirror, tmp_path):
    calls = []
    res = fetch("mnist", tmp_path / "data", progress=lambda done, total: calls.append((done, total)))
    assert [(r.file, r.action, r.url) for r in res] == [("a.bin", "downloaded", mirror + "a.bin"),
                                                         ("b-ubyte.gz", "downloaded", mirror + "b-ubyte.gz")]
    assert (tmp_path / "data" / "mnist" / "a.bin").read_bytes() == A
    assert calls[-1] == (len(A) + len(B_GZ),) * 2
    assert [r.action for r in fetch("mnist", tmp_path / "data")] == ["skipped", "skipped"]


def test_fetch_skips_a_verified_uncompressed_twin(mirror, tmp_path):
    write(tmp_path / "data" / "mnist" / "b-ubyte", B)                    # stored decompressed
    res = fetch("mnist", tmp_path / "data")
    assert (res[1].file, res[1].action, res[1].size) == ("b-ubyte", "skipped", len(B))
    assert not (tmp_path / "data" / "mnist" / "b-ubyte.gz").exists()
    rows = [r for r in dataset_status(tmp_path / "data") if r["dataset"] == "mnist"]
    assert [(r["file"], r["verified"]) for r in rows] == [("a.bin", True), ("b-ubyte", True)]


def test_fetch_checksum_mismatch_keeps_nothing(mirror, tmp_path, monkeypatch):
    bad = [download.KNOWN_FILES["mnist"][0]._replace(sha256="0" * 64)]
    monkeypatch.setitem(download.KNOWN_FILES, "mnist", bad)
    with pytest.raises(RunError, match=r"a.bin: download failed from every mirror; last: .*SHA-256"):
        fetch("mnist", tmp_path / "data")
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_fetch_names(tmp_path):
    with pytest.raises(ConfigError, match="unknown data set 'cifar'"):
        fetch("cifar", tmp_path)
    for name in ("digits", "sklearn_digits"):
        with pytest.raises(ConfigError, match=f"^{name}: cannot be downloaded; copy .* scikit-learn"):
            fetch(name, tmp_path)
    assert not (tmp_path / "digits").exists()


def test_fetch_alias_goes_to_the_folder(tmp_path, monkeypatch):
    """A name or alias of a set downloads into its folder (digits -> sklearn_digits/)."""
    csv = b"0," * 64 + b"1\n"
    write(tmp_path / "www" / "digits.csv.gz", csv)
    kf = KnownFile("digits.csv.gz", len(csv), hashlib.sha256(csv).hexdigest(), ())
    monkeypatch.setitem(download.KNOWN_FILES, "sklearn_digits", [kf])
    res = fetch("digits", tmp_path / "data", mirrors=(tmp_path / "www").as_uri())
    assert res[0].path == tmp_path / "data" / "sklearn_digits" / "digits.csv.gz"
