"""Download the data sets (checksummed, resumable) and report which files are present and verified.

``fetch(name)`` downloads the published files of one data set into ``<data dir>/<folder>/``:
each goes to ``<file>.part`` first (resumed with an HTTP Range request), is checked against
its size and SHA-256, and only then renamed. A data set published as one archive (CIFAR-10)
downloads the archive that way, then unpacks exactly its known files from it (each checked
against its own size and SHA-256) and removes the archive. ``dataset_status()`` lists every
known file. Both read :data:`KNOWN_FILES` and :data:`KNOWN_ARCHIVES`, indexes of the
registry's folders built once at import.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import zlib
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from analogtrain._version import __version__
from analogtrain.datasets.locations import KnownFile, resolve_data_dir
from analogtrain.datasets.registry import DATASETS, dataset_spec
from analogtrain.errors import ConfigError, InputError, RunError

#: folder name -> the files ``fetch`` downloads and ``dataset_status`` verifies (size, SHA-256),
#: gathered from the registry (each reader declares its files). Functions here read this
#: module attribute when called, so tests may replace it (monkeypatch) with their own table.
KNOWN_FILES: dict[str, list[KnownFile]] = {s.folder.name: list(s.folder.files) for s in DATASETS.values()}

#: folder name -> the published archive its files are unpacked from (only for the sets published
#: as one archive); read when called, so tests may replace it too.
KNOWN_ARCHIVES: dict[str, KnownFile] = {s.folder.name: s.folder.archive for s in DATASETS.values()
                                        if s.folder.archive is not None}

_CHUNK = 1 << 20                    # bytes per read/write step
_TIMEOUT = 60.0                     # seconds without data before a mirror is given up


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def known_files(name: str) -> list[KnownFile]:
    """The published files of data set ``name`` (a name or alias), from :data:`KNOWN_FILES`."""
    return KNOWN_FILES.get(dataset_spec(name).folder.name, [])


def known_archive(name: str) -> KnownFile | None:
    """The archive data set ``name`` is published in (from :data:`KNOWN_ARCHIVES`), or None."""
    return KNOWN_ARCHIVES.get(dataset_spec(name).folder.name)


def download_size(name: str) -> int:
    """Bytes ``fetch(name)`` downloads when nothing is present: the archive, else the files."""
    archive = known_archive(name)
    return archive.size if archive is not None else sum(kf.size for kf in known_files(name))


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did with one file: ``action`` is ``skipped`` (already present and
    verified), ``downloaded`` or ``extracted`` (unpacked from the archive downloaded just
    before it, which is then removed); ``url`` is where it came from (None when skipped or
    extracted)."""

    file: str
    path: Path
    action: str
    size: int
    sha256: str
    url: str | None = None
    resumed: bool = False


class _MirrorFailed(Exception):
    """One mirror could not deliver the file (reason in the message)."""


def _file_ok(path: Path, size: int, sha256: str) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256
    except OSError:
        return False


def _unpacked_twin(kf: KnownFile) -> str | None:
    """Name of the decompressed twin a ``.gz`` file may be stored as (if its content is pinned)."""
    names = kf.names
    return names[1] if len(names) > 1 else None


def _raw_alternative_ok(folder: Path, kf: KnownFile) -> Path | None:
    """The verified uncompressed twin of a ``.gz`` file (e.g. MNIST), if one is present."""
    stem = _unpacked_twin(kf)
    if stem is None:
        return None
    size, sha = kf.unpacked
    return folder / stem if _file_ok(folder / stem, size, sha) else None


def _content_range_start(value: str | None) -> int | None:
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, else None."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _open(url: str, start: int):
    req = urllib.request.Request(url, headers={"User-Agent": f"analogtrain/{__version__}"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=_TIMEOUT)


def _download(url: str, part: Path, size: int, on_bytes: Callable[[int], None]) -> bool:
    """Download ``url`` into ``part`` (resuming it with a Range request if it exists).

    Returns True if an existing part was resumed. Raises _MirrorFailed; the part file is
    kept on network errors so that a later attempt can resume it.
    """
    start = part.stat().st_size if part.exists() else 0
    try:
        try:
            resp = _open(url, start)
        except urllib.error.HTTPError as e:
            if e.code != 416 or not start:
                raise
            part.unlink()                      # range not satisfiable: the part is bad, restart
            start, resp = 0, _open(url, 0)
        with resp:
            status = getattr(resp, "status", None) or 200
            if start and status == 206:
                if _content_range_start(resp.headers.get("Content-Range")) != start:
                    part.unlink()
                    raise _MirrorFailed(f"{url}: unexpected Content-Range {resp.headers.get('Content-Range')!r}")
                done, mode = start, "ab"
            else:                              # no Range sent, or the server ignored it: restart
                done, mode = 0, "wb"
            on_bytes(done)
            with open(part, mode) as f:
                while chunk := resp.read(_CHUNK):
                    done += len(chunk)
                    if done > size:
                        raise _MirrorFailed(f"{url}: more than the expected {size} bytes")
                    f.write(chunk)
                    on_bytes(done)
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        raise _MirrorFailed(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _MirrorFailed(f"{url}: {e.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _MirrorFailed(f"{url}: {type(e).__name__}: {e}") from None
    if done < size:
        raise _MirrorFailed(f"{url}: connection closed after {done} of {size} bytes")
    return bool(start) and mode == "ab"


def _fetch_one(kf: KnownFile, folder: Path, mirrors: Sequence[str],
               on_bytes: Callable[[int], None]) -> FetchResult:
    final = folder / kf.filename
    part = folder / (kf.filename + ".part")
    if _file_ok(final, kf.size, kf.sha256):
        return FetchResult(kf.filename, final, "skipped", kf.size, kf.sha256)
    twin = _raw_alternative_ok(folder, kf)
    if twin is not None:
        return FetchResult(twin.name, twin, "skipped", twin.stat().st_size, kf.unpacked[1])
    if part.exists() and part.stat().st_size >= kf.size:
        if _file_ok(part, kf.size, kf.sha256):   # complete from an earlier run, never renamed
            os.replace(part, final)
            return FetchResult(kf.filename, final, "downloaded", kf.size, kf.sha256, resumed=True)
        part.unlink()
    reason = "no mirror given"
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += kf.filename
        for attempt in range(2):              # a resumed part that fails the check: once more from 0
            try:
                resumed = _download(url, part, kf.size, on_bytes)
            except _MirrorFailed as e:
                reason = str(e)
                break
            digest = sha256_file(part)
            if digest == kf.sha256:
                os.replace(part, final)
                return FetchResult(kf.filename, final, "downloaded", kf.size, kf.sha256, url, resumed)
            part.unlink()
            reason = f"{url}: SHA-256 {digest[:16]}... does not match the expected {kf.sha256[:16]}..."
            if not resumed:
                break
    raise RunError(f"{final}: download failed from every mirror; last: {reason}")


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, kf: KnownFile, dest: Path,
                    archive: Path) -> None:
    """Copy one regular member of ``kf.size`` bytes to ``dest`` via ``<dest>.part``, checking its
    SHA-256 on the way; RunError (the part removed) on any mismatch."""
    where = f"{archive}: member {member.name}"
    if not member.isreg():
        raise RunError(f"{where} is not a regular file (a link or special file), expected {kf.size} bytes of data")
    if member.size != kf.size:
        raise RunError(f"{where} has {member.size} bytes, expected {kf.size}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    src = tar.extractfile(member)
    try:
        with src, open(part, "wb") as out:
            done = 0
            while chunk := src.read(min(_CHUNK, kf.size - done)):
                h.update(chunk)
                out.write(chunk)
                done += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if done != kf.size or h.hexdigest() != kf.sha256:
            raise RunError(f"{where}: {done} bytes with SHA-256 {h.hexdigest()[:16]}..., expected {kf.size} "
                           f"bytes with {kf.sha256[:16]}...")
        os.replace(part, dest)
    finally:
        if part.exists():
            part.unlink()


def extract_archive(archive: Path, folder: Path, files: Sequence[KnownFile]) -> list[FetchResult]:
    """Unpack exactly ``files`` from the ``.tar.gz`` ``archive`` into ``folder``.

    A member is unpacked only when its name equals a file's ``filename`` (after a leading
    ``./``); it is then written to ``folder / filename`` -- a path from our table, never one
    from the archive, so a member name cannot reach outside the folder -- through
    ``<file>.part``, and renamed once its size and SHA-256 match. Every other member is
    skipped. RunError (one line naming the archive and the member) for a wanted member that
    is a link or special file, has the wrong size or checksum, occurs twice or is missing,
    and for an archive that cannot be read.
    """
    want = {kf.filename: kf for kf in files}
    done: dict[str, FetchResult] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                kf = want.get(name)
                if kf is None:
                    continue
                if name in done:
                    raise RunError(f"{archive}: member {name} occurs twice, expected it once")
                dest = folder / kf.filename
                _extract_member(tar, member, kf, dest, archive)
                done[name] = FetchResult(kf.filename, dest, "extracted", kf.size, kf.sha256)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise RunError(f"{archive}: cannot unpack ({type(e).__name__}: {e}), expected a .tar.gz archive") from None
    except OSError as e:
        raise RunError(f"{archive}: cannot unpack ({e.strerror or e})") from None
    missing = [n for n in want if n not in done]
    if missing:
        raise RunError(f"{archive}: no member {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                       else "") + f"; expected the {len(want)} files {', '.join(want)}")
    return [done[n] for n in want]


def _fetch_archive(archive: KnownFile, files: Sequence[KnownFile], folder: Path, mirrors: Sequence[str],
                   on_bytes: Callable[[int], None]) -> list[FetchResult]:
    """The files of a set published as one archive: skipped when all are present and verified;
    else the archive is fetched (or reused, if present and verified), unpacked, and removed."""
    if all(_file_ok(folder / kf.filename, kf.size, kf.sha256) for kf in files):
        return [FetchResult(kf.filename, folder / kf.filename, "skipped", kf.size, kf.sha256) for kf in files]
    got = _fetch_one(archive, folder, mirrors, on_bytes)
    unpacked = extract_archive(got.path, folder, files)
    got.path.unlink()
    return [got, *unpacked]


def fetch(name: str, dest_dir: str | Path | None = None, mirrors: str | Sequence[str] | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[FetchResult]:
    """Download the files of data set ``name`` into ``<dest_dir>/<folder>/`` and verify them.

    ``dest_dir`` is a data directory (default: :func:`resolve_data_dir`). Each file goes to
    ``<file>.part`` first (resumed with an HTTP Range request when a part exists and the
    server answers 206), is checked against the size and SHA-256 in :data:`KNOWN_FILES`, and
    only then renamed to its final name. On a mismatch the part is deleted and the next
    mirror is tried; RunError when every mirror failed. Present and verified files are
    skipped. ``mirrors`` (base URL or URLs) replaces the built-in mirror list;
    ``progress(bytes_done, bytes_total)`` is called as bytes arrive (totals over all files).

    A set published as one archive (:data:`KNOWN_ARCHIVES`) downloads the archive that way,
    unpacks its files with :func:`extract_archive` and removes it; when all its files are
    present and verified nothing is downloaded.
    """
    spec = dataset_spec(name)
    files = known_files(name)
    archive = known_archive(name)
    sources = [archive] if archive is not None else files
    if mirrors is None and not any(kf.mirrors for kf in sources):
        raise ConfigError(f"{name}: cannot be downloaded; {spec.folder.how_to_get}")
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    folder = resolve_data_dir(dest_dir) / spec.folder.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{folder}: cannot create the data folder ({e.strerror or e})") from None
    report = progress or (lambda done, total: None)
    if archive is not None:
        urls = list(mirrors) if mirrors is not None else list(archive.mirrors)
        results = _fetch_archive(archive, files, folder, urls, lambda done: report(done, archive.size))
        report(archive.size, archive.size)
        return results
    total = sum(kf.size for kf in files)
    finished = 0
    results = []
    for kf in files:
        def on_bytes(done: int, base: int = finished) -> None:
            report(base + done, total)
        urls = list(mirrors) if mirrors is not None else list(kf.mirrors)
        results.append(_fetch_one(kf, folder, urls, on_bytes))
        finished += kf.size
        report(finished, total)
    return results


# ============================================================================ status
def dataset_status(data_dir: str | Path | None = None) -> list[dict]:
    """One row per known file: dataset (its folder name), file, present, size (bytes or None),
    expected_size, verified (size and SHA-256 match), path. A ``.gz`` file stored uncompressed
    (MNIST) is reported under its uncompressed name and checked against the decompressed pin."""
    root = resolve_data_dir(data_dir)
    rows = []
    for name, files in KNOWN_FILES.items():
        folder = root / name
        for kf in files:
            path, size, sha = folder / kf.filename, kf.size, kf.sha256
            stem = _unpacked_twin(kf)
            if not path.is_file() and stem is not None and (folder / stem).is_file():
                path, (size, sha) = folder / stem, kf.unpacked
            present = path.is_file()
            rows.append({"dataset": name, "file": path.name, "present": present,
                         "size": path.stat().st_size if present else None, "expected_size": size,
                         "verified": present and _file_ok(path, size, sha), "path": str(path)})
    return rows
