"""README's Python example runs as written (in a temporary working directory) and prints what
its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def example(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- example: " + re.escape(name) + r"[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, f"no example {name!r} in README"
    return m.group(1)


def test_python_api_example_runs(tmp_path, monkeypatch):
    code = example("python-api")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    text = out.getvalue()
    assert "weight error" in text and "agad 0.3" in text
    assert "train.lr: must be in (0, 1e+06] (got -1)" in text
    written = sorted(p.name for p in (tmp_path / "runs" / "example").iterdir())
    assert written == ["arrays.npz", "config.toml", "summary.json", "traces.csv"]
