"""``analogtrain verify GOLDEN``: recompute a recorded result and compare it with the golden one."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import click

from analogtrain.cli import cli, rerun_args_current
from analogtrain.errors import ConfigError, InputError
from analogtrain.results import files
from analogtrain.results.provenance import provenance
from analogtrain.results.render import dumps, table
from analogtrain.tools.verify import compare_arrays, compare_json, recompute, worst_first

MISMATCH_EXIT = 3


@cli.command("verify")
@click.argument("golden", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--rtol", type=click.FloatRange(min=0), default=None,
              help="Relative tolerance for floats [default: the golden file's, else 1e-5].")
@click.option("--atol", type=click.FloatRange(min=0), default=None,
              help="Absolute tolerance for floats [default: the golden file's, else 1e-8].")
@click.option("--show", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many of the worst differences to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(golden, rtol, atol, show, as_json):
    """Re-run the run recorded in GOLDEN (a summary.json, or the directory holding it, with an
    optional arrays.npz beside it) from its recorded config, and compare.

    Integers (pulse and sample counts) must match exactly, floats within
    |a - b| <= atol + rtol |a|. Exit 0 on a match, 3 on a mismatch (with a table of the
    worst differences), 1 or 2 on errors. Works from any directory: the recorded config
    holds absolute paths.

    \b
    Use in another project's CI, e.g. in its Makefile:
      golden-check:
      	analogtrain verify tests/golden/agad_small/summary.json
    """
    for flag, v in (("--rtol", rtol), ("--atol", atol)):
        if v is not None and not math.isfinite(v):
            raise InputError(f"verify: {flag} must be a finite number >= 0 (got {v})")
    path = golden / "summary.json" if golden.is_dir() else golden
    gold = files.read_json(path, f"verify: {path}: no such file", f"verify: {path}: not a readable JSON file")
    if not isinstance(gold, dict):
        raise InputError(f"verify: {path}: expected a JSON object written by analogtrain")
    tol = gold.get("verify", {}) if isinstance(gold.get("verify"), dict) else {}
    rtol = rtol if rtol is not None else float(tol.get("rtol", 1e-5))
    atol = atol if atol is not None else float(tol.get("atol", 1e-8))
    golden_npz = path.parent / "arrays.npz"
    golden_arrays = files.load_npz(golden_npz) if golden_npz.exists() else None
    own_args = rerun_args_current()
    if isinstance(gold.get("config"), dict) and isinstance(gold["config"].get("kind"), str):
        try:
            new, new_arrays = recompute(gold)
        except ConfigError as e:
            raise InputError(f"verify: {path}: the recorded config is not valid here ({e})") from None
        command = gold.get("rerun_args") or [gold["config"]["kind"]]
    else:
        new, new_arrays, command = _rerun_legacy(gold, path, golden_arrays is not None)
    diffs = compare_json(gold, new, rtol, atol)
    if golden_arrays is not None:
        diffs += compare_arrays(golden_arrays, new_arrays, rtol, atol)
    diffs = worst_first(diffs)
    result = {**provenance("verify", {"golden": str(path.resolve()), "rtol": rtol, "atol": atol}, None, own_args),
              "golden": str(path), "command": command, "rtol": rtol, "atol": atol, "match": not diffs,
              "n_differences": len(diffs),
              "differences": [{"path": d.path, "golden": d.golden, "new": d.new, "abs_diff": d.abs_diff,
                               "rel_diff": d.rel_diff, "kind": d.kind} for d in diffs[:show]]}
    if as_json:
        click.echo(dumps(result))
    elif not diffs:
        click.echo(f"match: {path} (`analogtrain {' '.join(map(str, command))}`, rtol {rtol:g}, atol {atol:g})")
    else:
        rows = [[d.path, _short(d.golden), _short(d.new), f"{d.abs_diff:.3g}", d.kind] for d in diffs[:show]]
        click.echo(f"MISMATCH: {len(diffs)} difference(s) against {path} (rtol {rtol:g}, atol {atol:g})\n"
                   + table(rows, ["where", "golden", "new", "|diff|", "kind"]))
    return 0 if not diffs else MISMATCH_EXIT


def _rerun_legacy(gold: dict, path: Path, with_arrays: bool):
    """A result without a loadable config (schema 1): re-run its recorded command line."""
    from analogtrain.cli import main

    if not isinstance(gold.get("rerun_args"), list) or not gold.get("rerun_args"):
        raise InputError(f"verify: {path}: no 'config' and no 'rerun_args' recorded (not written by analogtrain "
                         "--out/--json of a version with provenance)")
    args = [str(a) for a in gold["rerun_args"]]
    if args[0] == "verify":
        raise InputError(f"verify: {path}: records a verify run; nothing to recompute")
    with tempfile.TemporaryDirectory(prefix="analogtrain-verify-") as tmp:
        tmpdir = Path(tmp) / "out"
        run_args = args + ["--json"] + (["--out", str(tmpdir)] if path.name == "summary.json" else [])
        buf, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            code = main(run_args)
        if code != 0:
            why = " ".join(err.getvalue().split()) or f"exit code {code}"
            raise InputError(f"verify: re-running `analogtrain {' '.join(args)}` failed: {why}")
        try:
            new = json.loads((tmpdir / "summary.json").read_text() if path.name == "summary.json" else buf.getvalue())
        except (OSError, ValueError):
            raise InputError("verify: the re-run wrote no readable JSON result") from None
        arrays = files.load_npz(tmpdir / "arrays.npz") if with_arrays and (tmpdir / "arrays.npz").exists() else {}
    return new, arrays, args


def _short(v, n: int = 30) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[: n - 3] + "..."
