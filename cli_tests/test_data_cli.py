"""``analogtrain data fetch`` / ``data list`` against a local HTTP server on 127.0.0.1.

No test touches the internet: downloads come from ``http.server`` in a thread (port 0)
serving a temp folder (or the real MNIST files from the shared data folder). The
checksum table ``datasets.download.KNOWN_FILES`` is monkeypatched for the small fake
files, and the commands run in-process through ``main()`` inside click's CliRunner
isolation, so the real error handling (one line on stderr, exit code) is exercised.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from analogtrain import datasets as ds
from analogtrain.datasets import download
from analogtrain.cli import main

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- server
class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        path = srv.root / self.path.lstrip("/")
        if not path.resolve().is_relative_to(srv.root.resolve()) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(rng[len("bytes="):].split("-")[0]) if rng and srv.support_range else 0
        if start >= len(data) and start:
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.truncate_at is not None:          # simulate a dropped connection
            body = body[:srv.truncate_at]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.support_range = True
        self.truncate_at: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def _serve(root: Path):
    srv = _Server(root)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    return srv, t


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Never send the local requests through a proxy from the environment."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("ANALOGTRAIN_DATA", raising=False)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv, t = _serve(root)
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


# ----------------------------------------------------------------------------- helpers
def run(args, env=None) -> tuple[int, str, str]:
    """Run the CLI in-process via ``main()``; (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation(env=env) as (out, err, _):
        rc = main([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
    return rc, out.getvalue().decode(), err.getvalue().decode()


FAKE = {"a.bin": bytes(range(256)) * 40, "b.bin": b"hello analog world\n" * 500}


def fake_table(server, sha_override=None) -> dict:
    """A checksum table for the fake files, served by ``server``, under the name ``mnist``."""
    files = []
    for name, content in FAKE.items():
        (server.root / name).write_bytes(content)
        sha = (sha_override or {}).get(name, hashlib.sha256(content).hexdigest())
        files.append(ds.KnownFile(name, len(content), sha, (server.url,)))
    return {"mnist": files, "warpeace": [], "sklearn_digits": []}


@pytest.fixture
def fake(server, monkeypatch):
    monkeypatch.setattr(download, "KNOWN_FILES", fake_table(server))
    return server


def fetch_json(data_dir, *extra) -> tuple[int, dict | None, str]:
    rc, out, err = run(["data", "fetch", "mnist", "--data-dir", data_dir, "--json", *extra])
    return rc, (json.loads(out) if rc == 0 else None), err


# ----------------------------------------------------------------------------- (a) fake files
def test_fetch_success_then_skip(fake, tmp_path):
    dest = tmp_path / "data"
    rc, doc, err = fetch_json(dest)
    assert rc == 0, err
    assert doc["schema_version"] == 2 and doc["dataset"] == "mnist" and doc["data_dir"] == str(dest)
    assert [f["action"] for f in doc["files"]] == ["downloaded", "downloaded"]
    for name, content in FAKE.items():
        assert (dest / "mnist" / name).read_bytes() == content
        assert not (dest / "mnist" / (name + ".part")).exists()
    n_requests = len(fake.requests)

    rc, doc, err = fetch_json(dest)
    assert rc == 0
    assert [f["action"] for f in doc["files"]] == ["skipped", "skipped"]
    assert len(fake.requests) == n_requests                      # nothing downloaded again


def test_fetch_table_output_and_env_default_destination(fake, tmp_path):
    dest = tmp_path / "envdata"
    rc, out, err = run(["data", "fetch", "mnist"], env={"ANALOGTRAIN_DATA": str(dest)})
    assert rc == 0, err
    assert f"data directory: {dest} (from $ANALOGTRAIN_DATA)" in out
    assert "a.bin" in out and "downloaded" in out
    assert err == ""                                            # no progress bar off a terminal
    assert (dest / "mnist" / "a.bin").is_file()


def test_fetch_checksum_mismatch_leaves_nothing(server, monkeypatch, tmp_path):
    monkeypatch.setattr(download, "KNOWN_FILES", fake_table(server, sha_override={"b.bin": "0" * 64}))
    dest = tmp_path / "data"
    rc, out, err = run(["data", "fetch", "mnist", "--data-dir", dest])
    assert rc == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "b.bin" in lines[0] and "SHA-256" in lines[0]
    assert (dest / "mnist" / "a.bin").is_file()                  # the good file was kept
    assert not (dest / "mnist" / "b.bin").exists()
    assert not (dest / "mnist" / "b.bin.part").exists()


def test_fetch_falls_back_to_next_mirror(fake, tmp_path):
    dest = tmp_path / "data"
    rc, doc, err = fetch_json(dest, "--mirror", fake.url + "missing/", "--mirror", fake.url)
    assert rc == 0, err
    assert all(f["url"].startswith(fake.url) and "/missing/" not in f["url"] for f in doc["files"])
    assert any(p.startswith("/missing/") for p, _ in fake.requests)


def test_fetch_all_mirrors_fail(fake, tmp_path):
    rc, out, err = run(["data", "fetch", "mnist", "--data-dir", tmp_path / "d", "--mirror", fake.url + "nope/"])
    assert rc == 1
    assert err.count("\n") == 1 and "a.bin" in err and "HTTP 404" in err
    assert not (tmp_path / "d" / "mnist" / "a.bin").exists()


def test_fetch_resumes_part_with_range(fake, tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "a.bin.part").write_bytes(FAKE["a.bin"][:3000])
    rc, doc, err = fetch_json(tmp_path / "data")
    assert rc == 0, err
    a = doc["files"][0]
    assert a["file"] == "a.bin" and a["action"] == "downloaded" and a["resumed"] is True
    assert ("/a.bin", "bytes=3000-") in fake.requests
    assert (folder / "a.bin").read_bytes() == FAKE["a.bin"]


def test_fetch_restarts_when_server_ignores_range(fake, tmp_path):
    fake.support_range = False
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "a.bin.part").write_bytes(b"garbage" * 100)
    rc, doc, err = fetch_json(tmp_path / "data")
    assert rc == 0, err
    assert doc["files"][0]["resumed"] is False
    assert (folder / "a.bin").read_bytes() == FAKE["a.bin"]


def test_fetch_corrupt_part_is_redownloaded(fake, tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "a.bin.part").write_bytes(b"\xff" * 3000)          # wrong bytes, resumed, fails the check
    rc, doc, err = fetch_json(tmp_path / "data")
    assert rc == 0, err
    assert (folder / "a.bin").read_bytes() == FAKE["a.bin"]
    assert [r for p, r in fake.requests if p == "/a.bin"] == ["bytes=3000-", None]


def test_fetch_interrupted_then_resumed(fake, tmp_path):
    fake.truncate_at = 4000
    dest = tmp_path / "data"
    rc, out, err = run(["data", "fetch", "mnist", "--data-dir", dest])
    assert rc == 1 and "a.bin" in err and err.count("\n") == 1
    part = dest / "mnist" / "a.bin.part"
    assert part.stat().st_size == 4000 and not (dest / "mnist" / "a.bin").exists()
    fake.truncate_at = None
    rc, doc, err = fetch_json(dest)
    assert rc == 0, err
    assert doc["files"][0]["resumed"] is True
    assert (dest / "mnist" / "a.bin").read_bytes() == FAKE["a.bin"]


def test_fetch_library_progress(fake, tmp_path):
    calls = []
    res = ds.fetch("mnist", tmp_path, progress=lambda done, total: calls.append((done, total)))
    total = sum(len(c) for c in FAKE.values())
    assert [r.action for r in res] == ["downloaded", "downloaded"]
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_fetch_digits_has_no_download(tmp_path):
    rc, out, err = run(["data", "fetch", "sklearn_digits", "--data-dir", tmp_path])
    assert rc == 2 and "cannot be downloaded" in err and err.count("\n") == 1


def test_fetch_unknown_name(tmp_path):
    rc, out, err = run(["data", "fetch", "cifar", "--data-dir", tmp_path])
    assert rc == 2 and "cifar" in err


def test_fetch_choices_come_from_the_registry(tmp_path):
    fetchable = [s.name for s in ds.DATASETS.values() if s.fetchable]
    assert fetchable == ["mnist", "warpeace", "cifar10"]
    rc, out, err = run(["data", "fetch", "--help"])
    assert rc == 0 and f"[{'|'.join(fetchable)}]" in out
    rc, out, err = run(["data", "fetch", "cifar", "--data-dir", tmp_path])
    assert err.count("\n") == 1 and "choose from mnist, warpeace" in err
    rc, out, err = run(["data", "fetch", "digits", "--data-dir", tmp_path])     # the registry name of sklearn_digits
    assert rc == 2 and "cannot be downloaded" in err and "scikit-learn" in err


# ----------------------------------------------------------------------------- data list
def test_list_json_shape(fake, tmp_path):
    dest = tmp_path / "data"
    rc, out, err = run(["data", "list", "--data-dir", dest, "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert {"schema_version", "data_dir", "data_dir_source", "files", "analogtrain_version",
            "config_hash"} <= set(doc)
    assert doc["data_dir"] == str(dest) and doc["data_dir_source"] == "--data-dir"
    assert [r["file"] for r in doc["files"]] == ["a.bin", "b.bin"]
    assert all(set(r) == {"dataset", "file", "present", "size", "expected_size", "verified", "path"}
               for r in doc["files"])
    assert not any(r["present"] for r in doc["files"])

    assert run(["data", "fetch", "mnist", "--data-dir", dest])[0] == 0
    (dest / "mnist" / "b.bin").write_bytes(b"tampered")
    doc = json.loads(run(["data", "list", "--data-dir", dest, "--json"])[1])
    a, b = doc["files"]
    assert a["present"] and a["verified"] and a["size"] == len(FAKE["a.bin"])
    assert b["present"] and not b["verified"] and b["size"] == 8


def test_list_table(tmp_path):
    rc, out, err = run(["data", "list", "--data-dir", tmp_path])
    assert rc == 0
    assert out.splitlines()[0] == f"data directory: {tmp_path} (from --data-dir)"
    assert "train-images-idx3-ubyte.gz" in out and "warpeace_input.txt" in out


def _subprocess(args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "ANALOGTRAIN_DATA"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "analogtrain", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)


def test_subprocess_list(tmp_path):
    p = _subprocess(["data", "list", "--data-dir", tmp_path, "--json"])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema_version"] == 2 and doc["data_dir"] == str(tmp_path)
    assert len(doc["files"]) == 12 and not any(r["present"] for r in doc["files"])


def test_subprocess_error_is_one_line(tmp_path):
    p = _subprocess(["data", "fetch", "sklearn_digits", "--data-dir", tmp_path])
    assert p.returncode == 2
    assert p.stdout == "" and p.stderr.count("\n") == 1 and p.stderr.startswith("analogtrain: error:")


# ----------------------------------------------------------------------------- (b) real MNIST
def test_fetch_real_mnist_from_local_mirror(shared_data, tmp_path):
    src = shared_data / "mnist"
    if not src.is_dir():
        pytest.skip("no mnist/ in shared data")
    srv, t = _serve(src)
    try:
        dest = tmp_path / "data"
        rc, doc, err = fetch_json(dest, "--mirror", srv.url)
        assert rc == 0, err
        assert [f["action"] for f in doc["files"]] == ["downloaded"] * 4
        rc, out, err = run(["data", "list", "--data-dir", dest, "--json"])
        rows = [r for r in json.loads(out)["files"] if r["dataset"] == "mnist"]
        assert len(rows) == 4 and all(r["verified"] for r in rows)
        m = ds.load_mnist(dest, verify=True)
        assert m.verified and m.x_train.shape == (60000, 28, 28)
        rc, doc, err = fetch_json(dest, "--mirror", srv.url)
        assert [f["action"] for f in doc["files"]] == ["skipped"] * 4
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_list_real_shared_data(shared_data):
    rc, out, err = run(["data", "list", "--data-dir", shared_data, "--json"])
    assert rc == 0
    rows = json.loads(out)["files"]
    assert all(r["verified"] for r in rows if r["present"]) and any(r["present"] for r in rows)
