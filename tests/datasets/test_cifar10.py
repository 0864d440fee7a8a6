"""Tests of analogtrain.datasets.cifar10 and of fetching it: the strict reader of the binary
version, the published pins, and ``data fetch cifar10`` (download, verify, unpack safely).

Small batch files (a few records each, ``RECORDS_PER_FILE`` set to match) and a small
``.tar.gz`` in the layout of the published archive are written into a tmp dir; downloads
come from a ``file://`` mirror with ``download.KNOWN_ARCHIVES`` / ``KNOWN_FILES`` replaced
by the pins of those small files. No real CIFAR-10 file is used or shipped.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from analogtrain.datasets import cifar10, download
from analogtrain.datasets.cifar10 import RECORD_BYTES, load_cifar10
from analogtrain.datasets.locations import KnownFile
from analogtrain.datasets.prepared import DataRequest
from analogtrain.datasets.registry import DATASETS, LAYOUT, load
from analogtrain.errors import InputError, RunError
from tests.datasets.files import CIFAR_NAMES, assert_input_error, cifar_bytes, make_cifar10, write

N = 4                      # records per synthetic batch file


@pytest.fixture
def small(monkeypatch):
    """Synthetic batch files hold N records, not the published 10000."""
    monkeypatch.setattr(cifar10, "RECORDS_PER_FILE", N)


def _batch(root: Path, name: str) -> Path:
    return root / "cifar10" / "cifar-10-batches-bin" / name


# ----------------------------------------------------------------------------- the pins
def test_published_pins_and_layout():
    a = cifar10.ARCHIVE
    assert (a.filename, a.size) == ("cifar-10-binary.tar.gz", 170052171)
    assert a.mirrors == ("https://www.cs.toronto.edu/~kriz/",)
    assert a.mirrors[0] + a.filename == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"    # canonical URL
    assert a.sha256 == "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    assert cifar10.ARCHIVE_MD5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert [kf.filename for kf in cifar10.FILES] == [f"cifar-10-batches-bin/{n}" for n in CIFAR_NAMES]
    assert all(kf.size == 10000 * 3073 and len(kf.sha256) == 64 and kf.mirrors == () for kf in cifar10.FILES)
    assert len({kf.sha256 for kf in cifar10.FILES}) == 6
    assert RECORD_BYTES == 3073 and cifar10.RECORDS_PER_FILE == 10000
    f = cifar10.FOLDER
    assert f.name == "cifar10" and f.archive == a and f.downloadable and "data fetch cifar10" in f.how_to_get
    s = DATASETS["cifar10"]
    assert (s.kind, s.image_shape, s.n_classes, s.folder) == ("images", (3, 32, 32), 10, f) and s.fetchable
    assert LAYOUT["cifar10"] == [(kf.filename,) for kf in cifar10.FILES]
    assert download.KNOWN_ARCHIVES == {"cifar10": a} and download.KNOWN_FILES["cifar10"] == list(cifar10.FILES)
    assert download.download_size("cifar10") == 170052171


# ----------------------------------------------------------------------------- reading
def test_good_set_loads_in_order(small, tmp_path):
    written = make_cifar10(tmp_path, records=N)
    c = load_cifar10(tmp_path, verify=False)
    assert c.x_train.shape == (5 * N, 3, 32, 32) and c.y_train.shape == (5 * N,)
    assert c.x_test.shape == (N, 3, 32, 32) and c.y_test.shape == (N,)
    assert c.x_train.dtype == c.y_train.dtype == c.x_test.dtype == np.uint8
    assert c.x_train.flags.c_contiguous and c.verified is False and c.path == tmp_path / "cifar10"
    np.testing.assert_array_equal(c.x_train, np.concatenate([written[n][0] for n in CIFAR_NAMES[:5]]))
    np.testing.assert_array_equal(c.y_train, np.concatenate([written[n][1] for n in CIFAR_NAMES[:5]]))
    np.testing.assert_array_equal(c.x_test, written["test_batch.bin"][0])
    np.testing.assert_array_equal(c.y_test, written["test_batch.bin"][1])
    # the channel planes: byte 1 + 1024 c + 32 i + j of a record is pixel (c, i, j)
    raw = _batch(tmp_path, "data_batch_1.bin").read_bytes()
    assert c.x_train[1, 2, 5, 7] == raw[RECORD_BYTES + 1 + 1024 * 2 + 32 * 5 + 7]


def test_data_dir_may_be_the_cifar10_folder(small, tmp_path):
    make_cifar10(tmp_path / "cifar10", records=N, flat=True)
    assert load_cifar10(tmp_path / "cifar10", verify=False).x_test.shape == (N, 3, 32, 32)


def test_registry_entry_gives_images_like_mnist(small, tmp_path):
    make_cifar10(tmp_path, records=N)
    data = load("cifar10", DataRequest(data_dir=tmp_path, verify=False, limit_train=7, limit_test=3))
    assert data.kind == "classifier" and data.image_shape == (3, 32, 32)
    assert data.x_train.shape == (7, 3, 32, 32) and data.x_train.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.x_test.shape == (3, 3, 32, 32)
    assert data.info == {"train_samples": 7, "test_samples": 3, "inputs": 3072}
    z = data.inputs(data.x_train)
    assert z.dtype == np.float32 and 0.0 <= z.min() and z.max() <= 1.0


def test_full_size_files_load(tmp_path):
    """The published geometry, 10000 records per file (sparse all-zero files but for a few labels)."""
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for k, name in enumerate(CIFAR_NAMES):
        with open(folder / name, "wb") as f:
            f.truncate(10000 * RECORD_BYTES)
            f.seek(9999 * RECORD_BYTES)
            f.write(bytes([k]))                                     # the last record's label
    c = load_cifar10(tmp_path, verify=False)
    assert c.x_train.shape == (50000, 3, 32, 32) and c.x_test.shape == (10000, 3, 32, 32)
    assert c.y_train[[9999, 19999, 49999]].tolist() == [0, 1, 4] and c.y_test[-1] == 5
    assert int(c.y_train.sum()) == 0 + 1 + 2 + 3 + 4 and not c.x_train.any()


@pytest.mark.parametrize("content, expected", [
    (lambda good: good[:-100], "bytes is not a whole number of records (truncated"),
    (lambda good: good + b"\0" * 7, "bytes is not a whole number of records"),
    (lambda good: good[:-RECORD_BYTES], f"{N - 1} records ({(N - 1) * RECORD_BYTES} bytes); expected {N} records"),
    (lambda good: good + good[:RECORD_BYTES], f"{N + 1} records"),
    (lambda good: b"", "0 records (0 bytes)"),
])
def test_wrong_size_files_are_refused(small, tmp_path, content, expected):
    written = make_cifar10(tmp_path, records=N)
    good = cifar_bytes(written["data_batch_3.bin"][1], written["data_batch_3.bin"][0])
    make_cifar10(tmp_path, records=N, data_batch_3=content(good))
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=False)
    msg = assert_input_error(exc, _batch(tmp_path, "data_batch_3.bin"))
    assert expected in msg and f"{RECORD_BYTES} bytes (a label byte and 3x32x32 pixel bytes)" in msg


@pytest.mark.parametrize("label", [10, 255])
def test_label_out_of_range(small, tmp_path, label):
    labels = np.array([1, 2, label, 3], np.uint8)
    make_cifar10(tmp_path, records=N, test_batch=cifar_bytes(labels, np.zeros((N, 3072), np.uint8)))
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=False)
    msg = assert_input_error(exc, _batch(tmp_path, "test_batch.bin"))
    assert f"label {label} in record 2 (byte offset {2 * RECORD_BYTES}), expected 0..9" in msg


def test_missing_file_says_which_and_how_to_get(small, tmp_path):
    make_cifar10(tmp_path, records=N)
    _batch(tmp_path, "data_batch_4.bin").unlink()
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=False)
    msg = assert_input_error(exc, tmp_path / "cifar10")
    assert "cifar-10-batches-bin/data_batch_4.bin not found" in msg and "analogtrain data fetch cifar10" in msg


def test_nothing_there(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALOGTRAIN_DATA", raising=False)
    with pytest.raises(InputError) as exc:
        load("cifar10", DataRequest(data_dir=tmp_path))
    assert "and 5 more file(s) not found" in assert_input_error(exc, tmp_path / "cifar10")


@pytest.mark.parametrize("extra, expected", [
    ("data_batch_6.bin", "6 training batch files (data_batch_1.bin, "),
    ("data_batch_0.bin", "6 training batch files"),
    ("test_batch_2.bin", "2 test batch files (test_batch.bin, test_batch_2.bin), expected exactly one"),
])
def test_wrong_file_count(small, tmp_path, extra, expected):
    make_cifar10(tmp_path, records=N)
    write(_batch(tmp_path, extra), b"\0" * RECORD_BYTES * N)
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=False)
    msg = assert_input_error(exc, tmp_path / "cifar10" / "cifar-10-batches-bin")
    assert expected in msg


def test_a_part_file_left_by_fetch_is_not_a_batch(small, tmp_path):
    make_cifar10(tmp_path, records=N)
    write(_batch(tmp_path, "data_batch_1.bin.part"), b"partial")
    assert load_cifar10(tmp_path, verify=False).x_train.shape[0] == 5 * N


def test_verify_rejects_other_data_and_accepts_pinned(small, tmp_path, monkeypatch):
    make_cifar10(tmp_path, records=N)
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=True)
    msg = assert_input_error(exc, _batch(tmp_path, "data_batch_1.bin"))
    assert "not the canonical CIFAR-10 file" in msg and "--no-verify-data" in msg
    pins = {n: hashlib.sha256(_batch(tmp_path, n).read_bytes()).hexdigest() for n in CIFAR_NAMES}
    monkeypatch.setattr(cifar10, "FILE_SHA256", pins)
    assert load_cifar10(tmp_path, verify=True).verified is True
    monkeypatch.setitem(pins, "test_batch.bin", "0" * 64)
    with pytest.raises(InputError) as exc:
        load_cifar10(tmp_path, verify=True)
    assert "expected 0000000000000000..." in assert_input_error(exc, _batch(tmp_path, "test_batch.bin"))


def test_registry_passes_verify_on(small, tmp_path):
    make_cifar10(tmp_path, records=N)
    with pytest.raises(InputError, match="not the canonical CIFAR-10 file"):
        load("cifar10", DataRequest(data_dir=tmp_path, verify=True))


# ----------------------------------------------------------------------------- fetch: archive
def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _archive_like_the_published_one(root: Path, extra=(), skip=(), replace=None) -> tuple[bytes, dict[str, bytes]]:
    """A .tar.gz laid out as cifar-10-binary.tar.gz (a folder, six batches, the meta text and the
    readme), plus ``extra`` members; returns (archive bytes, batch name -> content)."""
    written = make_cifar10(root / "src", records=N)
    batches = {n: cifar_bytes(written[n][1], written[n][0]) for n in CIFAR_NAMES}
    d = tarfile.TarInfo("cifar-10-batches-bin")
    d.type = tarfile.DIRTYPE
    members = [(d, None)]
    members += [_reg(f"cifar-10-batches-bin/{n}", batches[n]) for n in CIFAR_NAMES if n not in skip]
    members += [_reg("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n"),
                _reg("cifar-10-batches-bin/readme.html", b"<html></html>")]
    members += list(extra)
    if replace:
        members = [replace.get(m[0].name, m) for m in members]
    return _tar_gz(members), batches


def _serve(tmp_path: Path, monkeypatch, archive: bytes, batches: dict[str, bytes],
           archive_sha: str | None = None) -> str:
    """Put ``archive`` on a file:// mirror and pin it (and the batches) as the cifar10 tables."""
    www = tmp_path / "www"
    write(www / "cifar-10-binary.tar.gz", archive)
    url = www.as_uri() + "/"
    sha = archive_sha or hashlib.sha256(archive).hexdigest()
    monkeypatch.setitem(download.KNOWN_ARCHIVES, "cifar10",
                        KnownFile("cifar-10-binary.tar.gz", len(archive), sha, (url,)))
    monkeypatch.setitem(download.KNOWN_FILES, "cifar10", [
        KnownFile(f"cifar-10-batches-bin/{n}", len(batches[n]), hashlib.sha256(batches[n]).hexdigest(), ())
        for n in CIFAR_NAMES])
    monkeypatch.setattr(cifar10, "FILE_SHA256", {n: hashlib.sha256(batches[n]).hexdigest() for n in CIFAR_NAMES})
    return url


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_fetch_downloads_verifies_unpacks_and_skips(small, tmp_path, monkeypatch):
    """Members other than the six batches -- the archive's own extras, names that climb out of
    the folder or are absolute, a link, a batch outside its folder -- are never written."""
    link = tarfile.TarInfo("cifar-10-batches-bin/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    extra = [_reg("../evil.bin", b"x"), _reg("/tmp/analogtrain-evil-abs.bin", b"x"),
             _reg("cifar-10-batches-bin/../../up.bin", b"x"), (link, None),
             _reg("data_batch_1.bin", b"not in its folder")]
    archive, batches = _archive_like_the_published_one(tmp_path, extra=extra)
    url = _serve(tmp_path, monkeypatch, archive, batches)
    data = tmp_path / "data"
    calls = []
    res = download.fetch("cifar10", data, progress=lambda done, total: calls.append((done, total)))
    assert [(r.file, r.action) for r in res] == [("cifar-10-binary.tar.gz", "downloaded")] + \
        [(f"cifar-10-batches-bin/{n}", "extracted") for n in CIFAR_NAMES]
    assert res[0].url == url + "cifar-10-binary.tar.gz" and calls[-1] == (len(archive), len(archive))
    # only the six batches were written and the archive removed; nothing beside or above them
    assert _tree(data) == {"cifar10", "cifar10/cifar-10-batches-bin"} | \
        {f"cifar10/cifar-10-batches-bin/{n}" for n in CIFAR_NAMES}
    assert not [p for p in tmp_path.rglob("*") if p.name in ("evil.bin", "up.bin", "passwd")]
    assert not Path("/tmp/analogtrain-evil-abs.bin").exists()
    for n in CIFAR_NAMES:
        assert (data / "cifar10" / "cifar-10-batches-bin" / n).read_bytes() == batches[n]
    c = load_cifar10(data, verify=True)                                 # the (patched) pins hold
    assert c.verified and c.x_train.shape == (5 * N, 3, 32, 32)
    # a second fetch downloads nothing (the mirror is gone)
    (tmp_path / "www" / "cifar-10-binary.tar.gz").unlink()
    again = download.fetch("cifar10", data)
    assert [r.action for r in again] == ["skipped"] * 6
    rows = [r for r in download.dataset_status(data) if r["dataset"] == "cifar10"]
    assert [r["file"] for r in rows] == list(CIFAR_NAMES) and all(r["verified"] for r in rows)


def test_fetch_reuses_a_verified_archive_and_restarts_a_stale_part(small, tmp_path, monkeypatch):
    archive, batches = _archive_like_the_published_one(tmp_path)
    _serve(tmp_path, monkeypatch, archive, batches)
    data = tmp_path / "data"
    write(data / "cifar10" / "cifar-10-binary.tar.gz.part", b"\xff" * 100)           # a stale, wrong part
    res = download.fetch("cifar10", data)
    assert res[0].action == "downloaded" and not (data / "cifar10" / "cifar-10-binary.tar.gz.part").exists()
    # an archive left by an interrupted unpack is verified and used without a download
    _batch(data, "test_batch.bin").unlink()
    write(data / "cifar10" / "cifar-10-binary.tar.gz", archive)
    res = download.fetch("cifar10", data, mirrors="file:///nonexistent-mirror/")
    assert res[0].action == "skipped" and [r.action for r in res[1:]] == ["extracted"] * 6
    assert not (data / "cifar10" / "cifar-10-binary.tar.gz").exists()
    assert _batch(data, "test_batch.bin").read_bytes() == batches["test_batch.bin"]


def test_fetch_checksum_mismatch_keeps_nothing(small, tmp_path, monkeypatch):
    archive, batches = _archive_like_the_published_one(tmp_path)
    _serve(tmp_path, monkeypatch, archive, batches, archive_sha="0" * 64)
    with pytest.raises(RunError, match=r"cifar-10-binary.tar.gz: download failed from every mirror; last: .*SHA-256"):
        download.fetch("cifar10", tmp_path / "data")
    assert list((tmp_path / "data" / "cifar10").iterdir()) == []


def _link(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


@pytest.mark.parametrize("case, expected", [
    ("link", "member cifar-10-batches-bin/data_batch_2.bin is not a regular file"),
    ("short", (f"member cifar-10-batches-bin/data_batch_2.bin has {N * RECORD_BYTES - 1} bytes, "
               f"expected {N * RECORD_BYTES}")),
    ("missing", "no member cifar-10-batches-bin/test_batch.bin; expected the 6 files"),
    ("twice", "member cifar-10-batches-bin/test_batch.bin occurs twice"),
    ("other", "member cifar-10-batches-bin/data_batch_2.bin: "),
])
def test_fetch_refuses_a_bad_member(small, tmp_path, monkeypatch, case, expected):
    m2 = "cifar-10-batches-bin/data_batch_2.bin"
    written = make_cifar10(tmp_path / "src", records=N)
    good2 = cifar_bytes(written["data_batch_2.bin"][1], written["data_batch_2.bin"][0])
    kw = {"link": {"replace": {m2: (_link(m2), None)}},
          "short": {"replace": {m2: _reg(m2, good2[:-1])}},
          "missing": {"skip": ("test_batch.bin",)},
          "twice": {"extra": [_reg("./cifar-10-batches-bin/test_batch.bin", b"again")]},
          "other": {"replace": {m2: _reg(m2, bytes(len(good2)))}}}[case]
    archive, batches = _archive_like_the_published_one(tmp_path, **kw)
    _serve(tmp_path, monkeypatch, archive, batches)
    data = tmp_path / "data"
    with pytest.raises(RunError) as exc:
        download.fetch("cifar10", data)
    msg = str(exc.value)
    assert msg.startswith(str(data / "cifar10" / "cifar-10-binary.tar.gz")) and expected in msg and "\n" not in msg
    folder = data / "cifar10"
    assert not list(folder.rglob("*.part"))
    assert (folder / "cifar-10-binary.tar.gz").is_file()                # verified; kept for the next try
    if case in ("link", "short", "other"):
        assert not _batch(data, "data_batch_2.bin").exists()


def test_fetch_refuses_a_corrupt_archive(small, tmp_path, monkeypatch):
    _, batches = _archive_like_the_published_one(tmp_path)
    _serve(tmp_path, monkeypatch, b"this is not a tar.gz" * 10, batches)
    with pytest.raises(RunError, match=r"cifar-10-binary.tar.gz: cannot unpack \(ReadError: .*\), expected a "
                                       r"\.tar\.gz archive$"):
        download.fetch("cifar10", tmp_path / "data")


# ----------------------------------------------------------------------------- the command
def _run(args) -> tuple[int, str, str]:
    from analogtrain.cli import main
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        rc = main([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
    return rc, out.getvalue().decode(), err.getvalue().decode()


def test_data_fetch_cifar10_command(small, tmp_path, monkeypatch):
    archive, batches = _archive_like_the_published_one(tmp_path)
    url = _serve(tmp_path, monkeypatch, archive, batches)
    data = tmp_path / "data"
    rc, out, err = _run(["data", "fetch", "cifar10", "--data-dir", data, "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["dataset"] == "cifar10"
    assert [(f["file"], f["action"]) for f in doc["files"]] == [("cifar-10-binary.tar.gz", "downloaded")] + \
        [(f"cifar-10-batches-bin/{n}", "extracted") for n in CIFAR_NAMES]
    assert doc["files"][0]["url"] == url + "cifar-10-binary.tar.gz"
    rc, out, err = _run(["data", "list", "--data-dir", data, "--json"])
    rows = [r for r in json.loads(out)["files"] if r["dataset"] == "cifar10"]
    assert len(rows) == 6 and all(r["verified"] for r in rows)
    # a bad pin: exit 1, one line naming the archive
    monkeypatch.setitem(download.KNOWN_ARCHIVES, "cifar10",
                        download.KNOWN_ARCHIVES["cifar10"]._replace(sha256="0" * 64))
    rc, out, err = _run(["data", "fetch", "cifar10", "--data-dir", tmp_path / "other"])
    assert rc == 1 and out == "" and err.count("\n") == 1 and "cifar-10-binary.tar.gz" in err
