"""The shipped golden files (data/golden) reproduce: `analogtrain verify` exits 0 on each,
and exits 3 once a recorded number is perturbed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analogtrain.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
CASES = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.glob("*/*.json") if p.name in ("summary.json", "estimate.json"))


def test_golden_files_exist():
    assert len(CASES) >= 4, CASES


@pytest.mark.parametrize("case", CASES)
def test_golden_verifies(case, capsys):
    assert main(["verify", str(GOLDEN / case)]) == 0, capsys.readouterr().out


def test_perturbed_golden_is_a_mismatch(tmp_path, capsys):
    src = GOLDEN / "program_small"
    dst = tmp_path / "program_small"
    shutil.copytree(src, dst)
    d = json.loads((dst / "summary.json").read_text())
    d["cells"][0]["weight_error_pct"]["mean"] *= 1.001
    (dst / "summary.json").write_text(json.dumps(d))
    assert main(["verify", str(dst / "summary.json")]) == 3
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "cells[0].weight_error_pct.mean" in out
