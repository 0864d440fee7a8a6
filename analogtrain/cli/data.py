"""``analogtrain data``: download the data sets (``fetch``) and show what is present (``list``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analogtrain import datasets, report
from analogtrain.cli import cli
from analogtrain.cli.options import progress_option, show_progress

_DATA_DIR_HELP = ("Data directory holding mnist/, warpeace/, sklearn_digits/. "
                  "Default: $ANALOGTRAIN_DATA if set, else the per-user cache "
                  "($XDG_CACHE_HOME/analogtrain or ~/.cache/analogtrain; %LOCALAPPDATA%\\analogtrain on Windows).")

data_dir_option = click.option("--data-dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                               default=None, metavar="DIR", help=_DATA_DIR_HELP)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object instead of a table. Default: table.")


@cli.group("data")
def data() -> None:
    """Download the data sets and show which are present and verified.

    \b
    Examples:
      analogtrain data fetch mnist
      analogtrain data fetch warpeace --data-dir ./data
      analogtrain data fetch mnist --mirror file:///srv/mirror/mnist/
      analogtrain data list --json
    """


@data.command("fetch")
@click.argument("name", type=click.Choice(sorted(datasets.LAYOUT)), metavar="NAME")
@data_dir_option
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Base URL to download from instead of the built-in mirrors; the file name is appended "
                   "(repeatable, tried in order). Default: the built-in mirrors (MNIST: the CVDF mirror, "
                   "then the PyTorch S3 mirror; War and Peace: the char-rnn page).")
@json_option
@progress_option
def fetch_cmd(name: str, data_dir: Path | None, mirrors: tuple[str, ...], as_json: bool, no_progress: bool) -> None:
    """Download data set NAME (mnist or warpeace) into DIR/NAME/ and verify its SHA-256.

    Files already present and verified are skipped; an interrupted download resumes
    from its .part file. sklearn_digits has no download: copy digits.csv.gz from a
    scikit-learn install into DIR/sklearn_digits/.
    """
    root, source = datasets.describe_data_dir(data_dir)
    kwargs = dict(mirrors=list(mirrors) if mirrors else None)
    if show_progress(no_progress):
        total = sum(kf.size for kf in datasets.KNOWN_FILES.get(name, [])) or None
        with click.progressbar(length=total, label=f"fetch {name}", file=sys.stderr) as bar:
            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.pos)
            results = datasets.fetch(name, root, progress=progress, **kwargs)
    else:
        results = datasets.fetch(name, root, **kwargs)
    rows = [{"file": r.file, "action": r.action, "size": r.size, "sha256": r.sha256, "resumed": r.resumed,
             "url": r.url, "path": str(r.path)} for r in results]
    if as_json:
        click.echo(report.dumps({**report.provenance("data fetch", {"dataset": name}, None), "dataset": name,
                                 "data_dir": str(root), "data_dir_source": source, "files": rows}))
        return
    click.echo(f"data directory: {root} (from {source})")
    click.echo(report.table([[r["file"], r["action"] + (" (resumed)" if r["resumed"] else ""), r["size"],
                              r["path"]] for r in rows], ["file", "action", "bytes", "path"]))


@data.command("list")
@data_dir_option
@json_option
def list_cmd(data_dir: Path | None, as_json: bool) -> None:
    """Show which data set files are present in the data directory and whether they verify."""
    root, source = datasets.describe_data_dir(data_dir)
    rows = datasets.dataset_status(root)
    if as_json:
        click.echo(report.dumps({**report.provenance("data list", {"data_dir": str(root)}, None),
                                 "data_dir": str(root), "data_dir_source": source, "files": rows}))
        return
    click.echo(f"data directory: {root} (from {source})")
    click.echo(report.table([[r["dataset"], r["file"], "yes" if r["present"] else "no",
                              r["size"] if r["present"] else "-",
                              "yes" if r["verified"] else "no", r["path"]] for r in rows],
                            ["dataset", "file", "present", "bytes", "verified", "path"]))
