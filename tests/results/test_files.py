"""Atomic output files (results/files.py)."""

import os
import stat

import pytest

from analogtrain.results import files as report


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_atomic_files_get_the_umask_mode_not_0600(tmp_path, mask):
    old = os.umask(mask)
    try:
        report.write_json(tmp_path / "a.json", {"x": 1})
        report.write_npz(tmp_path / "b.npz", {"w": __import__("numpy").zeros(2)})
    finally:
        os.umask(old)
    for name in ("a.json", "b.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz"]  # no temporary left


def test_atomic_path_removes_the_temporary_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with report.atomic_path(tmp_path / "c.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
