"""The bad-input catalogue: every subcommand refuses bad input cleanly.

Each row of ``CASES`` is one bad invocation. For every row the test asserts, in this order:

1. no ``Traceback`` anywhere on stdout or stderr;
2. the expected exit code (2: usage, config or input error; 1: failure while running);
3. EXACTLY one line on stderr;
4. that line names the offending field, flag or file (every string of ``names``);
5. nothing on stdout (no partial result);
6. no file left in the output location (``--out DIR`` is passed wherever the command has
   it; ``device fit --out FILE`` and ``estimate --plot FILE`` write into that directory;
   ``data fetch --data-dir`` is the output of ``fetch``). Empty sub-folders are tolerated.

Each check raises its own ``AssertionError`` subclass, so that a row with a known bug is
marked ``xfail(strict=True, raises=<that check>)``: it fails loudly if the bug is fixed
(XPASS) *or* if another of its checks breaks.

Placeholders in arguments and names: ``{fx}`` the module's shared input folder (built
once), ``{tmp}`` the test's own folder, ``{out}`` = ``{tmp}/out``. Most rows run in-process
through ``main()`` (fast); a few run as ``python -m analogtrain`` subprocesses.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from analogtrain.cli import main

REPO = Path(__file__).resolve().parents[1]


# ============================================================================ the checks
class CatalogueFailure(AssertionError):
    """Base of the per-check failures (so xfail can name the check a bug breaks)."""


class TracebackShown(CatalogueFailure):
    pass


class WrongExit(CatalogueFailure):
    pass


class NotOneLine(CatalogueFailure):
    pass


class NotNamed(CatalogueFailure):
    pass


class PartialOutput(CatalogueFailure):
    pass


class OutputLeft(CatalogueFailure):
    pass


class RunDirModified(CatalogueFailure):
    pass


def _files_under(p: Path) -> list[str]:
    if not p.exists():
        return []
    if p.is_file():
        return [str(p)]
    return sorted(str(f.relative_to(p)) for f in p.rglob("*") if not f.is_dir())


def check(code: int, stdout: str, stderr: str, expected_code: int, names: list[str], out: Path | None) -> None:
    where = f"exit {code}, stderr {stderr!r}"
    if "Traceback" in stdout or "Traceback" in stderr:
        raise TracebackShown(f"traceback shown: {where}")
    if code != expected_code:
        raise WrongExit(f"expected exit {expected_code}: {where}")
    lines = stderr.splitlines()
    if len(lines) != 1:
        raise NotOneLine(f"expected exactly one line on stderr, got {len(lines)}: {stderr!r}")
    missing = [n for n in names if n not in lines[0]]
    if missing:
        raise NotNamed(f"the error line does not name {missing}: {lines[0]!r}")
    if stdout.strip():
        raise PartialOutput(f"stdout not empty on error: {stdout[:300]!r}")
    if out is not None:
        left = _files_under(out)
        if left:
            raise OutputLeft(f"files left in {out} after the error: {left}")


# ============================================================================ inputs
def _write_idx(path: Path, arr, code: int = 0x08, magic: bytes | None = None, truncate: int | None = None) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    if magic is not None:
        head = magic + head[4:]
    data = head + arr.tobytes()
    path.write_bytes(data if truncate is None else data[:truncate])


_MNIST = {"train-images-idx3-ubyte": (20, 28, 28), "train-labels-idx1-ubyte": (20,),
          "t10k-images-idx3-ubyte": (10, 28, 28), "t10k-labels-idx1-ubyte": (10,)}


def _mnist(root: Path, name: str, broken: str | None = None, **how) -> None:
    """A tiny MNIST folder root/name/mnist/ with the file ``broken`` written as ``how`` says."""
    d = root / name / "mnist"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem, shape in _MNIST.items():
        arr = rng.integers(0, 10 if len(shape) == 1 else 256, shape)
        if stem != broken:
            _write_idx(d / stem, arr)
        elif how.get("empty"):
            (d / stem).write_bytes(b"")
        elif how.get("not_gzip"):
            (d / (stem + ".gz")).write_bytes(b"this is not gzip data")
        else:
            _write_idx(d / stem, how.pop("arr", arr), **how)


def _digits_text(n: int = 1797, seed: int = 7) -> str:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    proto = rng.integers(0, 17, (10, 64))
    x = np.clip(proto[y] + rng.integers(-3, 4, (n, 64)), 0, 16)
    return "\n".join(",".join(str(int(v)) for v in row) + f",{int(lab)}" for row, lab in zip(x, y)) + "\n"


def _digits(root: Path, name: str, text: str | None = None, raw: bytes | None = None) -> None:
    d = root / name / "sklearn_digits"
    d.mkdir(parents=True)
    if raw is not None:
        (d / "digits.csv.gz").write_bytes(raw)
    else:
        with gzip.open(d / "digits.csv.gz", "wt") as f:
            f.write(text)


def _corpus(root: Path, name: str, data: bytes) -> None:
    d = root / name / "warpeace"
    d.mkdir(parents=True)
    (d / "warpeace_input.txt").write_bytes(data)


def _curve_csv(swap: bool = False, bad_row: int | None = None, bad_value: str = "inf") -> str:
    rows, v = ["pulse,direction,value"], 0.0
    for p in range(40):
        up = (p // 10) % 2 == 0
        v += (0.01 if up else -0.01) * (-1 if swap else 1)
        rows.append(f"{p},{'up' if up else 'down'},{bad_value if p == bad_row else v}")
    return "\n".join(rows) + "\n"


#: a [program] table that makes a run tiny if a bad key is (wrongly) accepted
PROG_FAST = {"algorithm": '"sgd"', "n_states": '"20"', "sigma_r": '"0"', "seeds": "1", "steps": "5"}
#: a [train] table that makes a run tiny (data_dir is filled in by the fixture)
TRAIN_FAST = {"dataset": '"digits"', "algorithm": '"sgd"', "epochs": "1", "limit_train": "50", "limit_test": "20"}


def _table(name: str, base: dict, **bad: str) -> str:
    merged = {**base, **bad}
    return f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in merged.items())


TOML_FILES = {
    "dev_nan.toml": "dw_min = nan\n",
    "dev_inf.toml": "[device]\ndw_min = inf\n",
    "dev_unknown_key.toml": "[device]\nbogus = 1\n",
    "dev_unknown_table.toml": "[bogus]\ndw_min = 0.01\n",
    "dev_model_int.toml": "[device]\nmodel = 5\n",
    "dev_list.toml": "[device]\nn_states = [1, 2]\n",
    "dev_table_value.toml": "[device]\ndw_min = {a = 1}\n",
    "dev_int_as_bool.toml": "[device]\nsubtract_symmetry_point = 1\n",
    "dev_bad_preset.toml": '[device]\npreset = "nope"\n',
    "trunc.toml": "a = [1,\n",
    "empty.toml": "",
    "prog_unknown_table.toml": "[bogus]\nx = 1\n",
    "prog_unknown_key.toml": _table("program", PROG_FAST, bogus="1"),
    "prog_lr_nan.toml": _table("program", PROG_FAST, lr="nan"),
    "prog_algo_inf.toml": _table("program", PROG_FAST, algorithm='"agad"') + "[algorithm]\nfast_lr = inf\n",
    "prog_steps_str.toml": _table("program", PROG_FAST, steps='"abc"'),
    "prog_steps_neg.toml": _table("program", PROG_FAST, steps="-5"),
    "prog_seeds_zero.toml": _table("program", PROG_FAST, seeds="0"),
    "prog_dtype.toml": _table("program", PROG_FAST, dtype='"float16"'),
    "prog_io.toml": _table("program", PROG_FAST, io='"nope"'),
    "prog_target_nan.toml": _table("program", PROG_FAST, target_range="nan"),
    "prog_seed_str.toml": _table("program", PROG_FAST, seed='"x"'),
    "prog_seed_neg.toml": _table("program", PROG_FAST, seed="-1"),
    "prog_jobs_zero.toml": _table("program", PROG_FAST, jobs="0"),
    "prog_trace_neg.toml": _table("program", PROG_FAST, trace_every="-3"),
    "prog_zip_str.toml": _table("program", PROG_FAST, zip='"maybe"'),
    "prog_count_str.toml": _table("program", PROG_FAST, count_pulses='"no"'),
    "prog_sweep_int.toml": _table("program", PROG_FAST, sweep="5"),
    "est_n_zero.toml": "[estimate]\nn = 0\n",
    "est_nan.toml": "[estimate]\nt_pulse = nan\n",
    "est_unknown.toml": "[estimate]\nbogus = 1\n",
    "est_str.toml": '[estimate]\nn = "abc"\n',
    "est_bool.toml": "[estimate]\nn = true\n",
    "est_scalar.toml": "estimate = 5\n",
    "dev_deep.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    "dev_huge_int.toml": "dw_min = 1" + "0" * 400 + "\n",
    "est_huge_int.toml": "[estimate]\nt_pulse = 1" + "0" * 400 + "\n",
}

#: [train] tables (written with data_dir pointing at the synthetic digits)
TRAIN_TOML = {
    "train_unknown_table.toml": "[bogus]\nx = 1\n",
    "train_unknown_key.toml": {"bogus": "1"},
    "train_lr_nan.toml": {"lr": "nan"},
    "train_lr_str.toml": {"lr": '"abc"'},
    "train_epochs_float.toml": {"epochs": "1.5"},
    "train_io.toml": {"io": '"nope"'},
    "train_dtype.toml": {"dtype": '"float16"'},
    "train_seed_neg.toml": {"seed": "-1"},
    "train_batch_float.toml": {"batch_size": "2.5"},
    "train_hidden_str.toml": {"hidden": '"x"'},
    "train_data_dir_int.toml": {"data_dir": "5"},
    "train_limit_neg.toml": {"limit_train": "-1"},
    "train_count_str.toml": {"count_pulses": '"yes"'},
    "train_lr_step_neg.toml": {"lr_step": "-1"},
}


def _quiet_main(args: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in args])


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    """Every static bad (and good) input, written once for the module."""
    root = tmp_path_factory.mktemp("bad_inputs")
    for name, text in TOML_FILES.items():
        (root / name).write_text(text)
    (root / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    # data sets
    _digits(root, "digits", _digits_text())
    _digits(root, "digits_empty", "")
    _digits(root, "digits_cols", "1,2,3\n")
    _digits(root, "digits_nan", "nan," + ",".join(["1"] * 63) + ",3\n")
    _digits(root, "digits_label", ",".join(["1"] * 64) + ",12\n")
    _digits(root, "digits_not_gzip", raw=b"1,2,3\n")
    for name, text in TRAIN_TOML.items():
        body = text if isinstance(text, str) else \
            _table("train", {**TRAIN_FAST, "data_dir": json.dumps(str(root / "digits"))}, **text)
        (root / name).write_text(body)
    _mnist(root, "mnist_empty", "train-images-idx3-ubyte", empty=True)
    _mnist(root, "mnist_truncated", "train-images-idx3-ubyte", truncate=100)
    _mnist(root, "mnist_short_header", "train-images-idx3-ubyte", truncate=2)
    _mnist(root, "mnist_magic", "train-images-idx3-ubyte", magic=b"\x12\x34\x08\x03")
    _mnist(root, "mnist_type", "train-images-idx3-ubyte", code=0x0D)
    _mnist(root, "mnist_shape", "train-images-idx3-ubyte", arr=np.zeros((20, 8, 8)))
    _mnist(root, "mnist_count", "train-labels-idx1-ubyte", arr=np.zeros(19))
    _mnist(root, "mnist_label", "train-labels-idx1-ubyte", arr=np.full(20, 12))
    _mnist(root, "mnist_not_gzip", "train-images-idx3-ubyte", not_gzip=True)
    _mnist(root, "mnist_good")
    text = b"the quick brown fox jumps over the lazy dog. " * 200
    _corpus(root, "wp_unknown_byte", text + b"Z" * 10)    # 'Z' only in the test split
    _corpus(root, "wp_empty", b"")
    _corpus(root, "wp_short", b"ab")
    _corpus(root, "wp_good", text)
    # CSV files for device fit
    (root / "empty.csv").write_text("")
    (root / "wrongcols.csv").write_text("a,b,c\n1,2,3\n")
    (root / "headeronly.csv").write_text("pulse,direction,value\n")
    (root / "badvalue.csv").write_text("pulse,direction,value\n0,up,abc\n")
    (root / "nanvalue.csv").write_text("pulse,direction,value\n0,up,nan\n1,up,0.1\n")
    (root / "infvalue.csv").write_text(_curve_csv(bad_row=15))
    (root / "baddir.csv").write_text("pulse,direction,value\n0,sideways,0.1\n")
    (root / "badpulse.csv").write_text("pulse,direction,value\nx,up,0.1\n")
    (root / "extrafield.csv").write_text("pulse,direction,value\n0,up,0.1,5\n")
    (root / "onlyup.csv").write_text("pulse,direction,value\n0,start,0\n1,up,0.1\n2,up,0.2\n")
    (root / "dup.csv").write_text("pulse,direction,value\n0,up,0.1\n0,up,0.2\n")
    (root / "swapped.csv").write_text(_curve_csv(swap=True))
    (root / "good.csv").write_text(_curve_csv())
    (root / "binary.csv").write_bytes(b"\xff\xfe\xfa")
    # JSON files for verify
    (root / "nongolden.json").write_text('{"a": 1}')
    (root / "list.json").write_text("[1, 2]")
    (root / "empty.json").write_text("")
    (root / "notjson.json").write_text("this is not json")
    (root / "verify_of_verify.json").write_text('{"rerun_args": ["verify", "x"]}')
    (root / "failing_rerun.json").write_text('{"rerun_args": ["program", "--steps", "0"]}')
    (root / "afile").write_text("a regular file")
    # real runs: a train run (resume cases, endurance without counters), a program run
    # without pulse counters, a device run (its curves.csv)
    assert _quiet_main(["train", "--dataset", "digits", "--data-dir", root / "digits", "--epochs", "1",
                        "--limit-train", "50", "--limit-test", "20", "--algorithm", "sgd", "--no-progress",
                        "--out", root / "run"]) == 0
    assert _quiet_main(["program", "--algorithm", "agad", "--n-states", "20", "--sigma-r", "0", "--seeds", "1",
                        "--steps", "20", "--out", root / "prog"]) == 0
    return root


# ============================================================================ per-test setups
def _unreadable(rel: str) -> Callable[[Path, Path], None]:
    """Copy fx/rel into tmp, chmod 000; skip when the file stays readable (root)."""
    def setup(fx: Path, tmp: Path) -> None:
        src = fx / rel
        dst = tmp / Path(rel).name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
        target = dst if not dst.is_dir() else next(p for p in dst.rglob("*") if p.is_file() and "images" in p.name)
        target.chmod(0)
        try:
            with open(target, "rb"):
                pass
        except PermissionError:
            return
        target.chmod(0o644)
        pytest.skip("running as root: chmod 000 does not make a file unreadable")
    return setup


def _unwritable_dir(fx: Path, tmp: Path) -> None:
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):
        ro.chmod(0o755)
        pytest.skip("running as root: chmod 555 does not make a directory unwritable")


def _copy_run(name: str = "run", mutate: Callable[[Path, Path], None] | None = None):
    def setup(fx: Path, tmp: Path) -> None:
        shutil.copytree(fx / name, tmp / name)
        if mutate is not None:
            mutate(fx, tmp / name)
    return setup


def _mix_checkpoint(fx: Path, run: Path) -> None:
    """Put the checkpoint of a run with another learning rate into ``run``."""
    other = run.parent / "other"
    assert _quiet_main(["train", "--dataset", "digits", "--data-dir", fx / "digits", "--epochs", "1",
                        "--limit-train", "50", "--limit-test", "20", "--algorithm", "sgd", "--lr", "0.2",
                        "--no-progress", "--out", other]) == 0
    for f in ("checkpoint.json", "checkpoint-epoch0001.npz"):
        shutil.copy(other / f, run / f)
    shutil.rmtree(other)


def _truncate_checkpoint(fx: Path, run: Path) -> None:
    (run / "checkpoint.json").write_text((run / "checkpoint.json").read_text()[:50])


def _drop_npz(fx: Path, run: Path) -> None:
    (run / "checkpoint-epoch0001.npz").unlink()


def _bad_config_toml(fx: Path, run: Path) -> None:
    (run / "config.toml").write_text('kind = "train"\n[train]\nmodel = "fc3"\nbogus = 1\n')


def _config_toml_wrong_types(fx: Path, run: Path) -> None:
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("epochs = 1", 'epochs = "one"'))


def _shape_mismatch(fx: Path, run: Path) -> None:
    p = run / "checkpoint-epoch0001.npz"
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layer0.W.w"] = arrays["layer0.W.w"][..., :3]
    np.savez(p, **arrays)


def _garbage_arrays(fx: Path, run: Path) -> None:
    (run / "arrays.npz").write_bytes(b"garbage, not an npz")


def _snapshot(d: Path) -> dict[str, bytes]:
    return {f: (d / f).read_bytes() for f in _files_under(d)}


# ============================================================================ the catalogue
@dataclass
class Case:
    id: str
    args: list
    code: int
    names: list
    out: str | None = "dir"        # "dir": --out {out}; "file": --out {out}/fitted.toml; "plot";
    #                                 "datadir": --data-dir {out}; None: the command has no output
    setup: Callable | None = None
    keep: str | None = None        # a folder under {tmp} that must stay byte-identical
    bug: str | None = None
    fails: tuple = ()


def C(id, args, code, names, out="dir", setup=None, keep=None, bug=None, fails=(WrongExit,)):
    return Case(id, list(args), code, list(names), out, setup, keep, bug, fails if bug else ())


DEV = ["device", "--devices", "2", "--cycles", "1", "--pulses", "5", "--random-pulses", "100"]
FIT = ["device", "fit"]
PROG = ["program", "--algorithm", "sgd", "--n-states", "20", "--sigma-r", "0", "--seeds", "1", "--steps", "5",
        "--no-progress"]
TOY = ["program", "--task", "constant-gradient", "--steps", "25"]
TRAIN = ["train", "--dataset", "digits", "--data-dir", "{fx}/digits", "--epochs", "1", "--limit-train", "50",
         "--limit-test", "20", "--algorithm", "sgd", "--no-progress"]
MNIST = ["train", "--model", "fc3", "--dataset", "mnist", "--no-verify-data", "--epochs", "1", "--limit-train", "10",
         "--limit-test", "5", "--algorithm", "sgd", "--no-progress"]
LSTM = ["train", "--model", "lstm", "--no-verify-data", "--epochs", "1", "--seq-len", "10", "--hidden", "4",
        "--batch-size", "2", "--algorithm", "sgd", "--no-progress"]
END = ["endurance", "--algorithm", "agad", "--steps", "10", "--size", "4"]

RESUME_REWRITE = ("cli/train.py lines ~184-186 rewrite config.json and config.toml of the --resume directory "
                  "(with the new --epochs) before run_train checks the checkpoint, so a refused resume leaves the "
                  "run directory changed (config.json says epochs 2, the checkpoint is at epoch 1)")
TRAIN_LEFTOVER = ("cli/train.py writes an empty metrics.jsonl, config.json and config.toml into --out (lines "
                  "~180-186) before run_train loads the data or builds the model, so a run that fails there "
                  "leaves them behind "
                  "(expected: --out absent or empty after an input error)")
PROGRAM_TOML = ("cli/program.py takes [program] values from a --config file without the checks the flags get "
                "(click IntRange/Choice): `int(pick(...))`, `bool(...)`, `pick('io', ...)` (program.py ~lines "
                "109-145); ")
TRAIN_TOML_BUG = ("experiments/train.py config_from_dict (line ~355) and validate_config (line ~74) never "
                  "check the types/ranges of [train] values from a --config file (only the flags are checked "
                  "by click); ")
PLOT_BUG = ("--plot into a missing directory is not checked before the run (estimate and device fit do check "
            "it): report.atomic_path raises FileNotFoundError after the work, an internal error with exit 1; "
            "any --out files were already written")

CASES: list[Case] = [
    # ---------------------------------------------------------------- device: flags
    C("device-unknown-preset", [*DEV, "--preset", "nope"], 2, ["device.preset", "nope"]),
    C("device-set-negative", [*DEV, "--set", "dw_min=-1"], 2, ["device.dw_min"]),
    C("device-set-nan", [*DEV, "--set", "dw_min=nan"], 2, ["device.dw_min", "nan"]),
    C("device-set-inf", [*DEV, "--set", "dw_min=inf"], 2, ["device.dw_min", "inf"]),
    C("device-set-wrong-type", [*DEV, "--set", "dw_min=abc"], 2, ["device.dw_min", "abc"]),
    C("device-set-unknown-key", [*DEV, "--set", "bogus_key=1"], 2, ["bogus_key"]),
    C("device-set-no-equals", [*DEV, "--set", "noequals"], 2, ["--set", "noequals"]),
    C("device-set-n_states-nan", [*DEV, "--set", "n_states=nan"], 2, ["device.n_states"]),
    C("device-set-n_states-bool", [*DEV, "--set", "n_states=true"], 2, ["device.n_states"]),
    C("device-set-unknown-scope", [*DEV, "--set", "X.dw_min=0.1"], 2, ["X.dw_min"]),
    C("device-set-scope-without-transfer", [*DEV, "--set", "A.dw_min=0.1"], 2, ["A.dw_min"]),
    C("device-set-unknown-model", [*DEV, "--set", "model=nope"], 2, ["device.model", "nope"]),
    C("device-set-bad-bool", [*DEV, "--set", "enforce_consistency=maybe"], 2, ["enforce_consistency"]),
    C("device-conflicting-preset", [*DEV, "--set", "preset=linearstep", "--preset", "softbounds"], 2,
      ["--set preset=linearstep", "--preset softbounds"]),
    C("device-devices-zero", [*DEV, "--devices", "0"], 2, ["--devices"]),
    C("device-devices-not-int", [*DEV, "--devices", "abc"], 2, ["--devices"]),
    C("device-seed-negative", [*DEV, "--seed", "-1"], 2, ["--seed"]),
    C("device-unknown-option", [*DEV, "--nonsense"], 2, ["--nonsense"]),
    C("device-out-below-file", [*DEV, "--out", "{fx}/afile/sub"], 2, ["--out", "afile"], out=None),
    C("device-out-unwritable", [*DEV, "--out", "{tmp}/ro/out"], 2, ["--out", "ro/out"], out=None,
      setup=_unwritable_dir),
    C("device-plot-missing-dir", [*DEV, "--plot", "{tmp}/nodir/x.png"], 2, ["--plot"]),
    # ---------------------------------------------------------------- device: TOML files
    C("device-config-missing", [*DEV, "--config", "{tmp}/missing.toml"], 2, ["missing.toml"]),
    C("device-config-is-dir", [*DEV, "--config", "{fx}"], 2, ["--config"]),
    C("device-config-unreadable", [*DEV, "--config", "{tmp}/dev_nan.toml"], 2, ["dev_nan.toml"],
      setup=_unreadable("dev_nan.toml")),
    C("device-config-nan", [*DEV, "--config", "{fx}/dev_nan.toml"], 2, ["device.dw_min", "nan"]),
    C("device-config-inf", [*DEV, "--config", "{fx}/dev_inf.toml"], 2, ["device.dw_min", "inf"]),
    C("device-config-unknown-key", [*DEV, "--config", "{fx}/dev_unknown_key.toml"], 2, ["device.bogus"]),
    C("device-config-unknown-table", [*DEV, "--config", "{fx}/dev_unknown_table.toml"], 2, ["bogus"]),
    C("device-config-truncated", [*DEV, "--config", "{fx}/trunc.toml"], 2, ["trunc.toml", "invalid TOML"]),
    C("device-config-binary", [*DEV, "--config", "{fx}/binary.toml"], 2, ["binary.toml", "UTF-8"]),
    C("device-config-model-int", [*DEV, "--config", "{fx}/dev_model_int.toml"], 2, ["device.model"]),
    C("device-config-list-value", [*DEV, "--config", "{fx}/dev_list.toml"], 2, ["device.n_states"]),
    C("device-config-table-value", [*DEV, "--config", "{fx}/dev_table_value.toml"], 2, ["device.dw_min"]),
    C("device-config-int-as-bool", [*DEV, "--config", "{fx}/dev_int_as_bool.toml"], 2,
      ["device.subtract_symmetry_point"]),
    C("device-config-deeply-nested", [*DEV, "--config", "{fx}/dev_deep.toml"], 2, ["dev_deep.toml"]),
    C("device-config-int-beyond-float", [*DEV, "--config", "{fx}/dev_huge_int.toml"], 2, ["device.dw_min"]),
    C("device-device-config-missing", [*DEV, "--device-config", "{tmp}/missing_dev.toml"], 2, ["missing_dev.toml"]),
    C("device-device-config-bad-preset", [*DEV, "--device-config", "{fx}/dev_bad_preset.toml"], 2,
      ["device.preset", "nope"]),
    # ---------------------------------------------------------------- device fit
    C("fit-missing-file", [*FIT, "{tmp}/missing.csv"], 2, ["missing.csv"], out="file"),
    C("fit-is-directory", [*FIT, "{fx}"], 2, ["is a directory"], out="file"),
    C("fit-unreadable", [*FIT, "{tmp}/good.csv"], 2, ["good.csv"], out="file", setup=_unreadable("good.csv")),
    C("fit-empty", [*FIT, "{fx}/empty.csv"], 2, ["empty.csv", "empty"], out="file"),
    C("fit-wrong-columns", [*FIT, "{fx}/wrongcols.csv"], 2, ["wrongcols.csv", "pulse"], out="file"),
    C("fit-header-only", [*FIT, "{fx}/headeronly.csv"], 2, ["headeronly.csv"], out="file"),
    C("fit-value-not-number", [*FIT, "{fx}/badvalue.csv"], 2, ["badvalue.csv", "value"], out="file"),
    C("fit-value-nan", [*FIT, "{fx}/nanvalue.csv"], 2, ["nanvalue.csv", "value"], out="file"),
    C("fit-value-inf", [*FIT, "{fx}/infvalue.csv"], 2, ["infvalue.csv", "row 16", "value"], out="file"),
    C("fit-bad-direction", [*FIT, "{fx}/baddir.csv"], 2, ["baddir.csv", "direction"], out="file"),
    C("fit-bad-pulse", [*FIT, "{fx}/badpulse.csv"], 2, ["badpulse.csv", "pulse"], out="file"),
    C("fit-extra-field", [*FIT, "{fx}/extrafield.csv"], 2, ["extrafield.csv", "row 1"], out="file"),
    C("fit-only-up-pulses", [*FIT, "{fx}/onlyup.csv"], 2, ["onlyup.csv", "up"], out="file"),
    C("fit-duplicate-pulse", [*FIT, "{fx}/dup.csv"], 2, ["dup.csv", "pulse index 0"], out="file"),
    C("fit-binary", [*FIT, "{fx}/binary.csv"], 2, ["binary.csv", "UTF-8"], out="file"),
    C("fit-swapped-directions", [*FIT, "{fx}/swapped.csv"], 2, ["swapped.csv"], out="file"),
    C("fit-unknown-model", [*FIT, "{fx}/good.csv", "--model", "nope"], 2, ["--model"], out="file"),
    C("fit-out-missing-dir", [*FIT, "{fx}/good.csv", "--out", "{tmp}/nodir/fitted.toml"], 2, ["--out", "nodir"],
      out=None),
    # ---------------------------------------------------------------- program: flags
    C("program-unknown-algorithm", [*PROG, "--algorithm", "nope"], 2, ["algorithm", "nope"]),
    C("program-empty-algorithm", [*PROG, "--algorithm", ""], 2, ["--algorithm"]),
    C("program-n-states-zero", [*PROG, "--n-states", "0"], 2, ["--n-states"]),
    C("program-n-states-nan", [*PROG, "--n-states", "nan"], 2, ["--n-states", "nan"]),
    C("program-n-states-not-number", [*PROG, "--n-states", "20,abc"], 2, ["--n-states", "abc"]),
    C("program-sigma-r-negative", [*PROG, "--sigma-r", "-1"], 2, ["--sigma-r"]),
    C("program-sigma-r-inf", [*PROG, "--sigma-r", "inf"], 2, ["--sigma-r", "inf"]),
    C("program-lr-nan", [*PROG, "--lr", "nan"], 2, ["--lr", "nan"]),
    C("program-size-zero", [*PROG, "--size", "0"], 2, ["--size"]),
    C("program-size-3d", [*PROG, "--size", "3x4x5"], 2, ["--size", "3x4x5"]),
    C("program-steps-zero", [*PROG, "--steps", "0"], 2, ["--steps"]),
    C("program-seeds-not-int", [*PROG, "--seeds", "abc"], 2, ["--seeds"]),
    C("program-sigma-r-arrays", [*PROG, "--sigma-r-arrays", "B"], 2, ["--sigma-r-arrays"]),
    C("program-sweep-no-equals", [*PROG, "--sweep", "gamma"], 2, ["--sweep", "gamma"]),
    C("program-sweep-unknown-key", [*PROG, "--sweep", "bogus=1,2"], 2, ["bogus"]),
    C("program-sweep-nan", [*PROG, "--n-states", "device", "--sweep", "dw_min=nan"], 2, ["dw_min", "nan"]),
    C("program-zip-unequal", [*PROG, "--sweep", "up_down=0.1,0.2", "--sweep", "dw_min_std=0.1", "--zip"], 2,
      ["--zip", "sweep up_down: 2"]),
    C("program-algo-set-unknown", [*PROG, "--algo-set", "bogus=1"], 2, ["algorithm.bogus"]),
    C("program-algo-set-inf", [*PROG, "--algorithm", "agad", "--algo-set", "fast_lr=inf"], 2, ["fast_lr"]),
    C("program-io-unknown", [*PROG, "--io", "nope"], 2, ["--io"]),
    C("program-conflicting-preset", [*PROG, "--set", "preset=linearstep", "--preset", "softbounds"], 2,
      ["--preset"]),
    C("program-unknown-preset", [*PROG, "--preset", "nope"], 2, ["device.preset", "nope"]),
    C("program-out-below-file", [*PROG, "--out", "{fx}/afile/sub"], 2, ["--out"], out=None),
    C("program-out-is-file", [*PROG, "--out", "{fx}/afile"], 2, ["--out"], out=None),
    C("program-plot-missing-dir", [*PROG, "--plot", "{tmp}/nodir/x.png"], 2, ["--plot"]),
    C("toy-option-not-for-toy", [*TOY, "--seeds", "2"], 2, ["--seeds"]),
    C("toy-wrong-algorithm", [*TOY, "--algorithm", "sgd"], 2, ["--algorithm", "sgd"]),
    C("toy-too-few-steps", [*TOY, "--steps", "10"], 2, ["--steps"]),
    C("toy-device-nan", [*TOY, "--set", "dw_min=nan"], 2, ["device.dw_min"]),
    C("toy-out-below-file", [*TOY, "--out", "{fx}/afile/x"], 2, ["--out"], out=None),
    # ---------------------------------------------------------------- program: TOML files
    C("program-config-unknown-table", ["program", "--config", "{fx}/prog_unknown_table.toml"], 2, ["bogus"]),
    C("program-config-unknown-key", ["program", "--config", "{fx}/prog_unknown_key.toml"], 2, ["bogus"]),
    C("program-config-truncated", ["program", "--config", "{fx}/trunc.toml"], 2, ["trunc.toml"]),
    C("program-config-lr-nan", ["program", "--config", "{fx}/prog_lr_nan.toml"], 2, ["lr", "nan"]),
    C("program-config-algorithm-inf", ["program", "--config", "{fx}/prog_algo_inf.toml"], 2, ["fast_lr"]),
    C("program-config-device-inf", [*PROG, "--n-states", "device", "--config", "{fx}/dev_inf.toml"], 2,
      ["device.dw_min", "inf"]),
    C("program-config-steps-string", ["program", "--config", "{fx}/prog_steps_str.toml"], 2, ["steps"]),
    C("program-config-steps-negative", ["program", "--config", "{fx}/prog_steps_neg.toml"], 2, ["steps"]),
    C("program-config-seeds-zero", ["program", "--config", "{fx}/prog_seeds_zero.toml"], 2, ["seeds"]),
    C("program-config-dtype", ["program", "--config", "{fx}/prog_dtype.toml"], 2, ["dtype"]),
    C("program-config-io", ["program", "--config", "{fx}/prog_io.toml"], 2, ["io", "nope"]),
    C("program-config-target-range-nan", ["program", "--config", "{fx}/prog_target_nan.toml"], 2,
      ["target_range"]),
    C("program-config-seed-string", ["program", "--config", "{fx}/prog_seed_str.toml"], 2, ["seed"]),
    C("program-config-seed-negative", ["program", "--config", "{fx}/prog_seed_neg.toml"], 2, ["seed"]),
    C("program-config-jobs-zero", ["program", "--config", "{fx}/prog_jobs_zero.toml"], 2, ["jobs"]),
    C("program-config-trace-every-negative", ["program", "--config", "{fx}/prog_trace_neg.toml"], 2,
      ["trace_every"]),
    C("program-config-zip-string", ["program", "--config", "{fx}/prog_zip_str.toml"], 2, ["zip"]),
    C("program-config-count-pulses-string", ["program", "--config", "{fx}/prog_count_str.toml"], 2,
      ["count_pulses"]),
    C("program-config-sweep-not-table", ["program", "--config", "{fx}/prog_sweep_int.toml"], 2, ["sweep"]),
    # ---------------------------------------------------------------- train: flags
    C("train-unknown-model", [*TRAIN, "--model", "nope"], 2, ["--model"]),
    C("train-lenet-on-warpeace", [*TRAIN, "--model", "lenet", "--dataset", "warpeace"], 2,
      ["model lenet", "--dataset", "warpeace"]),
    C("train-lstm-on-mnist", [*TRAIN, "--model", "lstm", "--dataset", "mnist"], 2, ["model lstm", "--dataset", "mnist"]),
    C("train-lenet-on-digits", [*TRAIN, "--model", "lenet"], 2, ["lenet", "digits", "8x8"],
      fails=(OutputLeft,)),
    C("train-lr-nan", [*TRAIN, "--lr", "nan"], 2, ["--lr", "nan"]),
    C("train-lr-inf", [*TRAIN, "--lr", "inf"], 2, ["--lr", "inf"]),
    C("train-lr-negative", [*TRAIN, "--lr", "-1"], 2, ["--lr"]),
    C("train-lr-not-number", [*TRAIN, "--lr", "abc"], 2, ["--lr"]),
    C("train-lr-gamma-nan", [*TRAIN, "--lr-gamma", "nan"], 2, ["--lr-gamma"]),
    C("train-dropout-one", [*TRAIN, "--dropout", "1"], 2, ["--dropout"]),
    C("train-grad-clip-inf", [*TRAIN, "--grad-clip", "inf"], 2, ["--grad-clip"]),
    C("train-omega-nan", [*TRAIN, "--weight-scaling-omega", "nan"], 2, ["--weight-scaling-omega"]),
    C("train-unknown-algorithm", [*TRAIN, "--algorithm", "nope"], 2, ["algorithm", "nope"]),
    C("train-algo-set-unknown", [*TRAIN, "--algorithm", "agad", "--algo-set", "bogus=1"], 2, ["algorithm.bogus"]),
    C("train-algo-set-nan", [*TRAIN, "--algorithm", "agad", "--algo-set", "fast_lr=nan"], 2, ["fast_lr", "nan"]),
    C("train-epochs-zero", [*TRAIN, "--epochs", "0"], 2, ["--epochs"]),
    C("train-conflicting-preset", [*TRAIN, "--set", "preset=linearstep", "--preset", "softbounds"], 2,
      ["--preset"]),
    C("train-unknown-preset", [*TRAIN, "--preset", "nope"], 2, ["device.preset", "nope"]),
    C("train-set-nan", [*TRAIN, "--set", "dw_min=nan"], 2, ["device.dw_min", "nan"]),
    C("train-out-below-file", [*TRAIN, "--out", "{fx}/afile/sub"], 2, ["--out"], out=None),
    # ---------------------------------------------------------------- train: TOML files
    C("train-config-unknown-table", ["train", "--config", "{fx}/train_unknown_table.toml"], 2, ["bogus"]),
    C("train-config-unknown-key", ["train", "--config", "{fx}/train_unknown_key.toml"], 2, ["bogus"]),
    C("train-config-lr-nan", ["train", "--config", "{fx}/train_lr_nan.toml"], 2, ["lr", "nan"]),
    C("train-config-lr-string", ["train", "--config", "{fx}/train_lr_str.toml"], 2, ["lr"]),
    C("train-config-epochs-float", ["train", "--config", "{fx}/train_epochs_float.toml"], 2, ["epochs"]),
    C("train-config-io", ["train", "--config", "{fx}/train_io.toml"], 2, ["io", "nope"]),
    C("train-config-dtype", ["train", "--config", "{fx}/train_dtype.toml"], 2, ["dtype"]),
    C("train-config-seed-negative", ["train", "--config", "{fx}/train_seed_neg.toml"], 2, ["seed"]),
    C("train-config-batch-size-float", ["train", "--config", "{fx}/train_batch_float.toml"], 2, ["batch"]),
    C("train-config-hidden-string", ["train", "--config", "{fx}/train_hidden_str.toml"], 2, ["hidden"]),
    C("train-config-data-dir-int", ["train", "--config", "{fx}/train_data_dir_int.toml"], 2, ["data_dir"]),
    C("train-config-limit-train-negative", ["train", "--config", "{fx}/train_limit_neg.toml"], 2,
      ["limit_train"]),
    C("train-config-count-pulses-string", ["train", "--config", "{fx}/train_count_str.toml"], 2,
      ["count_pulses"]),
    C("train-config-lr-step-negative", ["train", "--config", "{fx}/train_lr_step_neg.toml"], 2, ["lr_step"]),
    C("train-config-device-inf", [*TRAIN, "--config", "{fx}/dev_inf.toml"], 2, ["device.dw_min", "inf"]),
    # ---------------------------------------------------------------- train: data files
    C("mnist-missing", [*MNIST, "--data-dir", "{tmp}/nodata"], 2, ["mnist", "not found"],
      fails=(OutputLeft,)),
    C("mnist-empty-idx", [*MNIST, "--data-dir", "{fx}/mnist_empty"], 2, ["train-images-idx3-ubyte", "empty"], fails=(OutputLeft,)),
    C("mnist-truncated-idx", [*MNIST, "--data-dir", "{fx}/mnist_truncated"], 2,
      ["train-images-idx3-ubyte", "does not match"], fails=(OutputLeft,)),
    C("mnist-truncated-header", [*MNIST, "--data-dir", "{fx}/mnist_short_header"], 2,
      ["train-images-idx3-ubyte", "truncated"], fails=(OutputLeft,)),
    C("mnist-wrong-magic", [*MNIST, "--data-dir", "{fx}/mnist_magic"], 2, ["train-images-idx3-ubyte", "magic"], fails=(OutputLeft,)),
    C("mnist-wrong-type-code", [*MNIST, "--data-dir", "{fx}/mnist_type"], 2,
      ["train-images-idx3-ubyte", "type code"], fails=(OutputLeft,)),
    C("mnist-image-shape", [*MNIST, "--data-dir", "{fx}/mnist_shape"], 2, ["train-images-idx3-ubyte", "shape"], fails=(OutputLeft,)),
    C("mnist-label-count", [*MNIST, "--data-dir", "{fx}/mnist_count"], 2, ["train-labels-idx1-ubyte", "19"], fails=(OutputLeft,)),
    C("mnist-label-range", [*MNIST, "--data-dir", "{fx}/mnist_label"], 2, ["train-labels-idx1-ubyte", "12"], fails=(OutputLeft,)),
    C("mnist-gz-not-gzip", [*MNIST, "--data-dir", "{fx}/mnist_not_gzip"], 2,
      ["train-images-idx3-ubyte.gz", "gzip"], fails=(OutputLeft,)),
    C("mnist-unreadable", [*MNIST, "--data-dir", "{tmp}"], 2, ["train-images-idx3-ubyte"],
      setup=_unreadable("mnist_good/mnist"), fails=(OutputLeft,)),
    C("mnist-not-canonical", [*MNIST[:5], *MNIST[6:], "--data-dir", "{fx}/mnist_good"], 2,
      ["train-images-idx3-ubyte", "--no-verify-data"], fails=(OutputLeft,)),
    C("corpus-unknown-byte", [*LSTM, "--data-dir", "{fx}/wp_unknown_byte"], 2,
      ["b'Z'", "test split", "warpeace_input.txt"], fails=(NotNamed, OutputLeft)),
    C("corpus-empty", [*LSTM, "--data-dir", "{fx}/wp_empty"], 2, ["warpeace_input.txt", "empty"], fails=(OutputLeft,)),
    C("corpus-too-short", [*LSTM, "--data-dir", "{fx}/wp_short"], 2, ["too short"],
      fails=(OutputLeft,)),
    C("corpus-too-short-for-batch", [*LSTM, "--data-dir", "{fx}/wp_good", "--seq-len", "100000"], 2,
      ["too short"], fails=(OutputLeft,)),
    C("corpus-not-canonical", [*LSTM[:3], *LSTM[4:], "--data-dir", "{fx}/wp_good"], 2,
      ["warpeace_input.txt", "--no-verify-data"], fails=(OutputLeft,)),
    C("digits-empty", [*TRAIN[:4], "{fx}/digits_empty", *TRAIN[5:]], 2, ["digits.csv.gz", "no data"], fails=(OutputLeft,)),
    C("digits-wrong-columns", [*TRAIN[:4], "{fx}/digits_cols", *TRAIN[5:]], 2, ["digits.csv.gz", "columns"], fails=(OutputLeft,)),
    C("digits-nan-pixel", [*TRAIN[:4], "{fx}/digits_nan", *TRAIN[5:]], 2, ["digits.csv.gz", "nan"], fails=(OutputLeft,)),
    C("digits-label-range", [*TRAIN[:4], "{fx}/digits_label", *TRAIN[5:]], 2, ["digits.csv.gz", "label"], fails=(OutputLeft,)),
    C("digits-not-gzip", [*TRAIN[:4], "{fx}/digits_not_gzip", *TRAIN[5:]], 2, ["digits.csv.gz"], fails=(OutputLeft,)),
    # ---------------------------------------------------------------- train: resume
    C("train-out-holds-a-run", [*TRAIN, "--out", "{tmp}/run"], 2, ["--out", "checkpoint.json"], out=None,
      setup=_copy_run(), keep="run"),
    C("resume-missing-dir", ["train", "--resume", "{tmp}/nothing", "--no-progress"], 2, ["--resume", "nothing"]),
    C("resume-other-config", ["train", "--resume", "{tmp}/run", "--lr", "0.3", "--no-progress"], 2,
      ["--resume", "lr"], setup=_copy_run(), keep="run"),
    C("resume-other-algorithm", ["train", "--resume", "{tmp}/run", "--algorithm", "agad", "--no-progress"], 2,
      ["--resume", "algorithm"], setup=_copy_run(), keep="run"),
    C("resume-checkpoint-of-other-run", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["--resume", "another config"], out=None, setup=_copy_run(mutate=_mix_checkpoint), keep="run", fails=(RunDirModified,)),
    C("resume-truncated-checkpoint", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["checkpoint.json"], out=None, setup=_copy_run(mutate=_truncate_checkpoint), keep="run", fails=(RunDirModified,)),
    C("resume-missing-npz", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["checkpoint-epoch0001.npz"], out=None, setup=_copy_run(mutate=_drop_npz), keep="run", fails=(RunDirModified,)),
    C("resume-bad-config-toml", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["config.toml", "bogus"], out=None, setup=_copy_run(mutate=_bad_config_toml), keep="run"),
    C("resume-config-toml-wrong-types", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["config.toml", "train.epochs"], out=None, setup=_copy_run(mutate=_config_toml_wrong_types), keep="run"),
    C("resume-shape-mismatch", ["train", "--resume", "{tmp}/run", "--epochs", "2", "--no-progress"], 2,
      ["--resume", "shape"], out=None, setup=_copy_run(mutate=_shape_mismatch), keep="run", fails=(RunDirModified,)),
    # ---------------------------------------------------------------- estimate
    C("estimate-n-zero", ["estimate", "--n", "0"], 2, ["--n"], out="plot"),
    C("estimate-n-negative", ["estimate", "--n", "-5"], 2, ["--n"], out="plot"),
    C("estimate-n-s-zero", ["estimate", "--n-s", "0"], 2, ["--n-s"], out="plot"),
    C("estimate-t-pulse-negative", ["estimate", "--t-pulse", "-1"], 2, ["--t-pulse"], out="plot"),
    C("estimate-t-mvm-nan", ["estimate", "--t-mvm", "nan"], 2, ["--t-mvm", "nan"], out="plot"),
    C("estimate-t-mvm-inf", ["estimate", "--t-mvm", "inf"], 2, ["--t-mvm", "inf"], out="plot"),
    C("estimate-tflops-zero", ["estimate", "--tflops", "0"], 2, ["--tflops"], out="plot"),
    C("estimate-n-fraction", ["estimate", "--n", "1.5"], 2, ["--n"], out="plot"),
    C("estimate-unknown-algorithm", ["estimate", "--algorithm", "nope"], 2, ["--algorithm", "nope"], out="plot"),
    C("estimate-empty-algorithm-name", ["estimate", "--algorithm", "agad,"], 2, ["--algorithm"], out="plot"),
    C("estimate-sweep-zero", ["estimate", "--sweep-n", "0,1"], 2, ["--sweep-n"], out="plot"),
    C("estimate-sweep-not-int", ["estimate", "--sweep-n", "a,b"], 2, ["--sweep-n"], out="plot"),
    C("estimate-n-and-sweep", ["estimate", "--n", "10", "--sweep-n", "10,20"], 2, ["--n", "sweep_n"],
      out="plot"),
    C("estimate-config-missing", ["estimate", "--config", "{tmp}/missing.toml"], 2, ["missing.toml"], out="plot"),
    C("estimate-config-empty", ["estimate", "--config", "{fx}/empty.toml"], 2, ["empty.toml", "[estimate]"],
      out="plot"),
    C("estimate-config-n-zero", ["estimate", "--config", "{fx}/est_n_zero.toml"], 2, ["estimate.n"], out="plot"),
    C("estimate-config-nan", ["estimate", "--config", "{fx}/est_nan.toml"], 2, ["estimate.t_pulse", "nan"],
      out="plot"),
    C("estimate-config-unknown-key", ["estimate", "--config", "{fx}/est_unknown.toml"], 2, ["estimate.bogus"],
      out="plot"),
    C("estimate-config-string", ["estimate", "--config", "{fx}/est_str.toml"], 2, ["estimate.n"], out="plot"),
    C("estimate-config-bool", ["estimate", "--config", "{fx}/est_bool.toml"], 2, ["estimate.n"], out="plot"),
    C("estimate-config-not-table", ["estimate", "--config", "{fx}/est_scalar.toml"], 2, ["estimate"],
      out="plot"),
    C("estimate-config-int-beyond-float", ["estimate", "--config", "{fx}/est_huge_int.toml"], 2,
      ["estimate.t_pulse"], out="plot"),
    C("estimate-plot-missing-dir", ["estimate", "--plot", "{tmp}/nodir/x.png"], 2, ["--plot", "nodir"], out=None),
    # ---------------------------------------------------------------- data
    C("data-fetch-unknown", ["data", "fetch", "nope"], 2, ["nope"], out="datadir"),
    C("data-fetch-not-downloadable", ["data", "fetch", "sklearn_digits"], 2, ["sklearn_digits"], out="datadir"),
    C("data-fetch-dir-below-file", ["data", "fetch", "mnist", "--data-dir", "{fx}/afile/x"], 2, ["afile"],
      out=None),
    C("data-fetch-unreachable-mirror", ["data", "fetch", "mnist", "--mirror", "file:///nonexistent-mirror/"], 1,
      ["train-images-idx3-ubyte.gz", "nonexistent-mirror"], out="datadir"),
    C("data-list-dir-is-file", ["data", "list", "--data-dir", "{fx}/afile"], 2, ["--data-dir"], out=None),
    # ---------------------------------------------------------------- verify
    C("verify-missing", ["verify", "{tmp}/missing.json"], 2, ["missing.json"], out=None),
    C("verify-not-json", ["verify", "{fx}/notjson.json"], 2, ["notjson.json"], out=None),
    C("verify-empty-json", ["verify", "{fx}/empty.json"], 2, ["empty.json"], out=None),
    C("verify-non-golden-json", ["verify", "{fx}/nongolden.json"], 2, ["nongolden.json", "rerun_args"], out=None),
    C("verify-json-list", ["verify", "{fx}/list.json"], 2, ["list.json"], out=None),
    C("verify-of-verify", ["verify", "{fx}/verify_of_verify.json"], 2, ["verify_of_verify.json"], out=None),
    C("verify-dir-without-summary", ["verify", "{fx}/digits"], 2, ["summary.json"], out=None),
    C("verify-unreadable", ["verify", "{tmp}/nongolden.json"], 2, ["nongolden.json"], out=None,
      setup=_unreadable("nongolden.json")),
    C("verify-corrupt-arrays", ["verify", "{tmp}/prog"], 2, ["arrays.npz"], out=None,
      setup=_copy_run("prog", mutate=_garbage_arrays)),
    C("verify-rtol-negative", ["verify", "{fx}/prog", "--rtol", "-1"], 2, ["--rtol"], out=None),
    C("verify-rtol-nan", ["verify", "{fx}/prog", "--rtol", "nan"], 2, ["--rtol", "nan"], out=None),
    C("verify-atol-inf", ["verify", "{fx}/prog", "--atol", "inf"], 2, ["--atol", "inf"], out=None),
    C("verify-rerun-fails", ["verify", "{fx}/failing_rerun.json"], 2, ["--steps"], out=None, fails=(NotOneLine,)),
    # ---------------------------------------------------------------- endurance
    C("endurance-samples-zero", [*END, "--samples", "0"], 2, ["--samples"]),
    C("endurance-samples-nan", [*END, "--samples", "nan"], 2, ["--samples", "nan"]),
    C("endurance-samples-fraction", [*END, "--samples", "1.5"], 2, ["--samples"]),
    C("endurance-endurance-negative", [*END, "--endurance", "-1"], 2, ["--endurance"]),
    C("endurance-rate-inf", [*END, "--samples-per-second", "inf"], 2, ["--samples-per-second", "inf"]),
    C("endurance-missing-run", ["endurance", "{tmp}/nothing"], 2, ["nothing"]),
    C("endurance-run-is-file", ["endurance", "{fx}/afile"], 2, ["afile"]),
    C("endurance-run-and-sim-flags", ["endurance", "{fx}/prog", "--algorithm", "agad"], 2,
      ["RUN_DIR", "--algorithm"]),
    C("endurance-program-without-counters", ["endurance", "{fx}/prog"], 2, ["prog", "--count-pulses"]),
    C("endurance-train-without-counters", ["endurance", "{fx}/run"], 2, ["run", "--count-pulses"]),
    C("endurance-simulate-fp-only", ["endurance", "--algorithm", "fp", "--steps", "10", "--size", "4"], 2, ["fp"], fails=(NotNamed,)),
    C("endurance-unknown-algorithm", [*END, "--algorithm", "nope"], 2, ["algorithm", "nope"]),
    C("endurance-size-zero", [*END, "--size", "0"], 2, ["--size"]),
    C("endurance-conflicting-preset", [*END, "--set", "preset=linearstep", "--preset", "softbounds"], 2,
      ["--preset"]),
    C("endurance-out-below-file", [*END, "--out", "{fx}/afile/sub"], 2, ["--out"], out=None),
    C("endurance-plot-missing-dir", [*END, "--plot", "{tmp}/nodir/x.png"], 2, ["--plot"]),
]


def _params(cases):
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(reason="BUG: " + c.bug, strict=True, raises=c.fails)] if c.bug else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def _materialise(case: Case, fx: Path, tmp: Path) -> tuple[list[str], list[str], Path | None]:
    out = tmp / "out"

    def sub(s: str) -> str:
        return str(s).replace("{fx}", str(fx)).replace("{tmp}", str(tmp)).replace("{out}", str(out))

    args = [sub(a) for a in case.args]
    names = [sub(n) for n in case.names]
    watch: Path | None = out
    if case.out == "dir":
        args += ["--out", str(out)]
    elif case.out == "file":
        out.mkdir()
        args += ["--out", str(out / "fitted.toml")]
    elif case.out == "plot":
        out.mkdir()
        args += ["--plot", str(out / "plot.png")]
    elif case.out == "datadir":
        args += ["--data-dir", str(out)]
    else:
        watch = None
    return args, names, watch


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No debug tracebacks; log handlers bound to this test's stderr (the CLI calls basicConfig)."""
    monkeypatch.delenv("ANALOGTRAIN_DEBUG", raising=False)
    saved = logging.root.handlers[:]
    logging.root.handlers[:] = []
    yield
    logging.root.handlers[:] = saved


def test_catalogue_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 50
    commands = {c.args[0] if c.args[0] != "device" or c.args[1] != "fit" else "device fit" for c in CASES}
    assert {"device", "device fit", "program", "train", "estimate", "data", "verify", "endurance"} <= commands


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input(case: Case, fx: Path, tmp_path: Path, capsys):
    if case.setup is not None:
        case.setup(fx, tmp_path)
    args, names, watch = _materialise(case, fx, tmp_path)
    before = _snapshot(tmp_path / case.keep) if case.keep else None
    capsys.readouterr()
    code = main(args)
    cap = capsys.readouterr()
    check(code, cap.out, cap.err, case.code, names, watch)
    if before is not None:
        after = _snapshot(tmp_path / case.keep)
        changed = sorted(set(before) ^ set(after)) + [f for f in before if f in after and before[f] != after[f]]
        if changed:
            raise RunDirModified(f"the refused command modified {changed} in {case.keep}")


#: the same rows through a real process (``python -m analogtrain``): exit status, stderr as a
#: user sees it (Python warnings included), no traceback
SUBPROCESS_IDS = ("device-set-nan", "program-config-truncated", "estimate-n-zero", "fit-empty",
                  "verify-non-golden-json", "train-lenet-on-warpeace", "data-fetch-unreachable-mirror",
                  "program-config-steps-string", "mnist-wrong-magic")


@pytest.mark.parametrize("case", _params([c for c in CASES if c.id in SUBPROCESS_IDS]))
def test_bad_input_subprocess(case: Case, fx: Path, tmp_path: Path):
    if case.setup is not None:
        case.setup(fx, tmp_path)
    args, names, watch = _materialise(case, fx, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "ANALOGTRAIN_DEBUG"}
    r = subprocess.run([sys.executable, "-m", "analogtrain", *args], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    check(r.returncode, r.stdout, r.stderr, case.code, names, watch)
