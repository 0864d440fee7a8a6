"""Where data sets live: the data directory lookup and the files a data set folder holds.

Layout of a data directory (one folder per data set, as ``/work/shared/data``)::

    DIR/mnist/train-images-idx3-ubyte.gz   (each MNIST file may also be stored
    DIR/mnist/train-labels-idx1-ubyte.gz    uncompressed, without ``.gz``)
    DIR/mnist/t10k-images-idx3-ubyte.gz
    DIR/mnist/t10k-labels-idx1-ubyte.gz
    DIR/warpeace/warpeace_input.txt
    DIR/sklearn_digits/digits.csv.gz
    DIR/cifar10/cifar-10-batches-bin/data_batch_1.bin   (.. data_batch_5.bin, test_batch.bin:
                                                         the folder the published archive unpacks to)

The directory is looked up in this order: the ``data_dir`` argument (``--data-dir``),
``$ANALOGTRAIN_DATA``, the per-user cache (``$XDG_CACHE_HOME/analogtrain`` or
``~/.cache/analogtrain``; ``%LOCALAPPDATA%\\analogtrain`` on Windows).

Each reader module declares its folder as a :class:`DataFolder` (folder name, the
published files as :class:`KnownFile` rows, how to obtain them, and the archive they come
in if they are published packed); the registry and the downloader read those
declarations, so a data set's files are named in one place.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

from analogtrain.errors import InputError

#: the flag that accepts data whose checksum differs from the published one (for messages)
NO_VERIFY_HINT = "--no-verify-data"


class KnownFile(NamedTuple):
    """A published file of a data set folder.

    ``filename``: path inside the folder (``/``-separated, it may name a sub-folder);
    ``size``: bytes; ``sha256``: hex digest of the file; ``mirrors``: base URLs, the file is
    fetched from ``mirror + filename`` (empty: it is not downloaded by itself, but possibly
    unpacked from its folder's archive); ``unpacked``: for a ``.gz`` file that may also be stored
    decompressed (same name without ``.gz``), ``(size in bytes, SHA-256)`` of the
    decompressed content, else None.
    """

    filename: str
    size: int
    sha256: str
    mirrors: tuple[str, ...]
    unpacked: tuple[int, str] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The names the file may have in its folder, canonical first."""
        if self.unpacked is not None and self.filename.endswith(".gz"):
            return (self.filename, self.filename[:-3])
        return (self.filename,)


# ============================================================================ directory
def user_cache_dir() -> Path:
    """The per-user cache folder: ``%LOCALAPPDATA%\\analogtrain`` on Windows, else
    ``$XDG_CACHE_HOME/analogtrain`` (if set to an absolute path) or ``~/.cache/analogtrain``."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "analogtrain"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "analogtrain"
    return Path.home() / ".cache" / "analogtrain"


def describe_data_dir(data_dir: str | Path | None) -> tuple[Path, str]:
    """(data directory, where it came from: ``--data-dir``, ``$ANALOGTRAIN_DATA`` or ``user cache``)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get("ANALOGTRAIN_DATA", "")
    if env:
        return Path(env).expanduser(), "$ANALOGTRAIN_DATA"
    return user_cache_dir(), "user cache"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$ANALOGTRAIN_DATA``, else :func:`user_cache_dir`.

    The directory need not exist.
    """
    return describe_data_dir(data_dir)[0]


def first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    """``folder / name`` for the first of ``names`` that is a file there, else None."""
    for n in names:
        p = folder / n
        if p.is_file():
            return p
    return None


# ============================================================================ folder
@dataclass(frozen=True)
class DataFolder:
    """The folder ``<data dir>/<name>/`` of one data set and the files it must hold.

    ``name``: folder name; ``files``: the published files (each may be stored under any
    of its :attr:`KnownFile.names`); ``how_to_get``: what a user whose folder lacks a
    file should do, e.g. ``run `analogtrain data fetch mnist```; ``archive``: the published
    ``.tar.gz`` the files come in, or None. With an archive, ``data fetch`` downloads and
    verifies the archive, then unpacks exactly ``files`` from it: each member whose name is
    one of their ``filename`` values, checked against its size and SHA-256.
    """

    name: str
    files: tuple[KnownFile, ...]
    how_to_get: str
    archive: KnownFile | None = None

    @property
    def downloadable(self) -> bool:
        """True if the files (or their archive) have mirrors, so ``analogtrain data fetch`` can
        download the set."""
        return any(kf.mirrors for kf in self.files) or bool(self.archive and self.archive.mirrors)

    def find(self, data_dir: str | Path | None = None) -> Path:
        """The folder holding all files: ``<data dir>/<name>/``, or the data directory itself
        when it holds the files directly. Raises InputError saying which file is missing
        where and how to get it."""
        root, source = describe_data_dir(data_dir)
        for folder in (root / self.name, root):
            if all(first_existing(folder, kf.names) for kf in self.files):
                return folder
        folder = root / self.name
        missing = [kf.names for kf in self.files if first_existing(folder, kf.names) is None]
        alts = missing[0]
        what = alts[0] + (f" (or uncompressed {alts[1]})" if len(alts) > 1 else "")
        more = f" and {len(missing) - 1} more file(s)" if len(missing) > 1 else ""
        raise InputError(f"{self.name}: {what}{more} not found in {folder} (data directory from {source}); "
                         f"{self.how_to_get}, or use --data-dir DIR (or $ANALOGTRAIN_DATA) "
                         f"for a directory that holds {self.name}/")
