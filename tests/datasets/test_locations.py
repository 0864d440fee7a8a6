"""Tests of analogtrain.datasets.locations: data directory lookup, KnownFile names, DataFolder.find."""

from __future__ import annotations

import pytest

from analogtrain.datasets import locations
from analogtrain.datasets.locations import DataFolder, KnownFile, describe_data_dir, resolve_data_dir
from analogtrain.errors import InputError
from tests.datasets.files import assert_input_error, write


def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALOGTRAIN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert describe_data_dir(None) == (tmp_path / "env", "$ANALOGTRAIN_DATA")
    monkeypatch.delenv("ANALOGTRAIN_DATA")
    assert describe_data_dir(None) == (tmp_path / "xdg" / "analogtrain", "user cache")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir(None) == tmp_path / "home" / ".cache" / "analogtrain"
    monkeypatch.setattr(locations.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert resolve_data_dir(None) == tmp_path / "local" / "analogtrain"


def test_describe_data_dir_flag_wins_and_empty_flag_is_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALOGTRAIN_DATA", str(tmp_path / "env"))
    assert describe_data_dir(str(tmp_path / "arg")) == (tmp_path / "arg", "--data-dir")
    assert describe_data_dir("") == (tmp_path / "env", "$ANALOGTRAIN_DATA")


def test_known_file_names():
    plain = KnownFile("a.txt", 3, "0" * 64, ())
    packed = KnownFile("b-ubyte.gz", 3, "0" * 64, ("http://x/",), unpacked=(10, "1" * 64))
    assert plain.names == ("a.txt",) and plain.unpacked is None
    assert packed.names == ("b-ubyte.gz", "b-ubyte")
    assert KnownFile("c.gz", 3, "0" * 64, ()).names == ("c.gz",)      # no pin of the content: .gz only


FOLDER = DataFolder("toy", (KnownFile("a.txt", 1, "0" * 64, ()),
                            KnownFile("b-ubyte.gz", 1, "0" * 64, ("http://x/",), unpacked=(1, "0" * 64))),
                    "ask the toy maker")


def test_data_folder_find(tmp_path):
    write(tmp_path / "toy" / "a.txt", b"a")
    write(tmp_path / "toy" / "b-ubyte", b"b")                         # stored uncompressed
    assert FOLDER.find(tmp_path) == tmp_path / "toy"
    assert FOLDER.find(tmp_path / "toy") == tmp_path / "toy"            # the folder itself
    assert FOLDER.downloadable


def test_data_folder_find_missing_names_file_folder_and_remedy(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALOGTRAIN_DATA", raising=False)
    with pytest.raises(InputError) as exc:
        FOLDER.find(tmp_path)
    msg = assert_input_error(exc, tmp_path / "toy")
    assert msg.startswith("toy: a.txt and 1 more file(s) not found")
    assert "(data directory from --data-dir)" in msg and "ask the toy maker" in msg and "--data-dir DIR" in msg
    write(tmp_path / "toy" / "a.txt", b"a")
    with pytest.raises(InputError, match=r"b-ubyte.gz \(or uncompressed b-ubyte\) not found"):
        FOLDER.find(tmp_path)
