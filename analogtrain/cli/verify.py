"""``analogtrain verify GOLDEN``: recompute a recorded result and compare it with the golden one."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import click

from analogtrain import report
from analogtrain.errors import InputError
from analogtrain.tools.verify import compare_arrays, compare_json, worst_first
from analogtrain.cli import cli

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
    """Re-run the command recorded in GOLDEN (a summary.json, or the directory holding it,
    with an optional arrays.npz beside it) from its recorded arguments and seed, and compare.

    Integers (pulse and sample counts) must match exactly, floats within
    |a - b| <= atol + rtol |a|. Exit 0 on a match, 3 on a mismatch (with a table of the
    worst differences), 1 or 2 on errors.

    \b
    Use in another project's CI, e.g. in its Makefile:
      golden-check:
      	analogtrain verify tests/golden/agad_small/summary.json
    """
    import math

    for flag, v in (("--rtol", rtol), ("--atol", atol)):
        if v is not None and not math.isfinite(v):
            raise InputError(f"verify: {flag} must be a finite number >= 0 (got {v})")
    path = golden / "summary.json" if golden.is_dir() else golden
    gold = report.read_json(path, f"verify: {path}: no such file", f"verify: {path}: not a readable JSON file")
    if not isinstance(gold, dict) or not isinstance(gold.get("rerun_args"), list) or not gold.get("rerun_args"):
        raise InputError(f"verify: {path}: no 'rerun_args' recorded (not written by analogtrain --out/--json "
                         "of a version with provenance)")
    args = [str(a) for a in gold["rerun_args"]]
    if args[0] == "verify":
        raise InputError(f"verify: {path}: records a verify run; nothing to recompute")
    tol = gold.get("verify", {}) if isinstance(gold.get("verify"), dict) else {}
    rtol = rtol if rtol is not None else float(tol.get("rtol", 1e-5))
    atol = atol if atol is not None else float(tol.get("atol", 1e-8))
    own_args = list(report.RERUN_ARGS or [])   # the nested run below overwrites the global
    golden_npz = path.parent / "arrays.npz"
    has_arrays = golden_npz.exists()
    from_out_dir = path.name == "summary.json"   # written by --out (else: a saved --json output)
    from analogtrain.cli import main

    with tempfile.TemporaryDirectory(prefix="analogtrain-verify-") as tmp:
        tmpdir = Path(tmp) / "out"
        run_args = list(args) + ["--json"]
        if from_out_dir:
            run_args += ["--out", str(tmpdir)]
        buf, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            code = main(run_args)
        if code != 0:
            why = " ".join(err.getvalue().split()) or f"exit code {code}"
            raise InputError(f"verify: re-running `analogtrain {' '.join(args)}` failed: {why}")
        try:
            new = json.loads((tmpdir / "summary.json").read_text() if from_out_dir else buf.getvalue())
        except (OSError, ValueError):
            raise InputError("verify: the re-run wrote no readable JSON result") from None
        diffs = compare_json(gold, new, rtol, atol)
        if has_arrays:
            diffs += compare_arrays(report.load_npz(golden_npz), report.load_npz(tmpdir / "arrays.npz"), rtol, atol)
    diffs = worst_first(diffs)
    report.RERUN_ARGS = own_args
    result = {**report.provenance("verify", {"golden": str(path), "rtol": rtol, "atol": atol}, None, argv=own_args),
              "golden": str(path), "command": args, "rtol": rtol,
              "atol": atol, "match": not diffs, "n_differences": len(diffs),
              "differences": [{"path": d.path, "golden": d.golden, "new": d.new, "abs_diff": d.abs_diff,
                               "rel_diff": d.rel_diff, "kind": d.kind} for d in diffs[:show]]}
    if as_json:
        click.echo(report.dumps(result))
    elif not diffs:
        click.echo(f"match: {path} (`analogtrain {' '.join(args)}`, rtol {rtol:g}, atol {atol:g})")
    else:
        rows = [[d.path, _short(d.golden), _short(d.new), f"{d.abs_diff:.3g}", d.kind] for d in diffs[:show]]
        click.echo(f"MISMATCH: {len(diffs)} difference(s) against {path} (rtol {rtol:g}, atol {atol:g})\n"
                   + report.table(rows, ["where", "golden", "new", "|diff|", "kind"]))
    return 0 if not diffs else MISMATCH_EXIT


def _short(v, n: int = 30) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[: n - 3] + "..."
