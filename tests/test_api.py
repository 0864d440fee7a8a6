"""The public Python API: ``at.load_config(f)`` of the TOML that ``--print-config`` writes,
``at.run(config)`` gives exactly the numbers of the CLI's ``--json`` for the same flags;
``result.to_dict()`` is that JSON object; ``result.write(dir)`` writes the files; errors
are ``at.ConfigError``."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import analogtrain as at
from analogtrain.cli import main
from analogtrain.results.render import to_jsonable
from analogtrain.tools.verify import compare_json

#: the same flags for every kind (small runs)
FLAGS = {
    "program": ["program", "--algorithm", "agad,sgd", "--n-states", "20", "--sigma-r", "0,0.3", "--seeds", "2",
                "--steps", "40", "--size", "4x3", "--count-pulses", "--seed", "5", "--no-progress"],
    "toy": ["program", "--task", "constant-gradient", "--steps", "100", "--algorithm", "agad,ttv2"],
    "device": ["device", "--preset", "reram-sb", "--set", "n_states=50", "--devices", "5", "--cycles", "1",
               "--random-pulses", "300", "--seed", "2"],
    "estimate": ["estimate", "--n-s", "4", "--algorithm", "ttv2,agad,mp"],
    "endurance": ["endurance", "--algorithm", "c-ttv2", "--steps", "30", "--size", "4", "--seed", "1"],
    "train": ["train", "--dataset", "digits", "--data-dir", "{data}", "--algorithm", "agad", "--epochs", "1",
              "--limit-train", "60", "--limit-test", "30", "--count-pulses", "--set", "n_states=40", "--no-progress"],
}


def cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("data")
    (root / "sklearn_digits").mkdir()
    rows = [[*rng.integers(0, 17, 64), int(i % 10)] for i in range(1600)]
    with gzip.open(root / "sklearn_digits" / "digits.csv.gz", "wt") as f:
        f.write("".join(",".join(map(str, r)) + "\n" for r in rows))
    return root


@pytest.mark.parametrize("kind", sorted(FLAGS))
def test_run_of_the_printed_config_equals_the_cli_json(kind, tmp_path, digits):
    args = [a.replace("{data}", str(digits)) for a in FLAGS[kind]]
    code, toml_text, err = cli(args + ["--print-config"])
    assert code == 0, err
    f = tmp_path / "run.toml"
    f.write_text(toml_text)
    code, out, err = cli(args + ["--json"])
    assert code == 0, err
    from_cli = json.loads(out)
    cfg = at.load_config(f)
    assert cfg.kind == ("toy" if kind == "toy" else kind) and cfg.to_dict() == from_cli["config"]
    res = at.run(cfg)
    from_api = to_jsonable(res.to_dict())
    assert set(from_api) == set(from_cli)
    diffs = compare_json(from_cli, from_api, rtol=0.0, atol=0.0)      # every number exactly equal
    assert not diffs, [(d.path, d.golden, d.new) for d in diffs[:5]]
    assert from_api["rerun_args"] is None and from_cli["rerun_args"][0] == args[0]


def test_result_write_gives_the_cli_out_files(tmp_path):
    cfg = at.ProgramConfig(algorithm=("agad",), n_states=(20.0,), sigma_r=(0.0,), seeds=1, steps=20, out_size=3,
                           in_size=3)
    written = at.run(cfg).write(tmp_path / "api")
    assert sorted(p.name for p in written) == ["arrays.npz", "config.toml", "summary.json", "traces.csv"]
    code, _, err = cli(["program", "--algorithm", "agad", "--n-states", "20", "--sigma-r", "0", "--seeds", "1",
                        "--steps", "20", "--size", "3", "--no-progress", "--out", tmp_path / "cli"])
    assert code == 0, err
    assert (tmp_path / "api" / "config.toml").read_text() == (tmp_path / "cli" / "config.toml").read_text()
    assert (tmp_path / "api" / "traces.csv").read_bytes() == (tmp_path / "cli" / "traces.csv").read_bytes()
    a, b = np.load(tmp_path / "api" / "arrays.npz"), np.load(tmp_path / "cli" / "arrays.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


def test_config_errors_name_the_field_from_python_toml_and_flags(tmp_path):
    with pytest.raises(at.ConfigError, match=r"^program.lr: must be in \(0, 1e\+06\] \(got -1.0\)$"):
        at.ProgramConfig(lr=(-1.0,))
    f = tmp_path / "bad.toml"
    f.write_text('kind = "program"\n[program]\nlr = [-1.0]\n')
    with pytest.raises(at.ConfigError, match=r"bad.toml: program.lr: must be in \(0, 1e\+06\]"):
        at.load_config(f)
    code, out, err = cli(["program", "--lr", "-1"])
    assert code == 2 and out == ""
    assert err.strip() == "analogtrain: error: --lr (program.lr): must be in (0, 1e+06] (got -1.0)"
    assert issubclass(at.ConfigError, ValueError)


def test_verify_works_from_another_directory(tmp_path, digits, monkeypatch):
    """A run made with relative paths (a config file, a data directory) verifies from elsewhere."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "dev.toml").write_text('[device]\npreset = "softbounds"\nn_states = 30\n')
    os.symlink(digits, work / "data")
    monkeypatch.chdir(work)
    assert cli(["device", "--config", "dev.toml", "--devices", "3", "--cycles", "1", "--random-pulses", "200",
                "--out", "dev_run"])[0] == 0
    assert cli(["train", "--dataset", "digits", "--data-dir", "data", "--algorithm", "sgd", "--epochs", "1",
                "--limit-train", "30", "--limit-test", "20", "--no-progress", "--out", "train_run"])[0] == 0
    cfg = json.loads((work / "train_run" / "summary.json").read_text())["config"]
    assert cfg["train"]["data_dir"] == str((work / "data").resolve())        # recorded absolute
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for run in ("dev_run", "train_run"):
        code, out, err = cli(["verify", work / run / "summary.json"])
        assert code == 0, out + err
        assert out.startswith("match:")


def test_lazy_top_level_names():
    assert at.ProgramConfig.kind == "program" and at.TrainConfig.kind == "train"
    assert "agad" in at.ALGORITHMS and "fc3" in at.MODELS and "mnist" in at.DATASETS
    with pytest.raises(AttributeError):
        at.nothing_here  # noqa: B018
