"""``analogtrain data``: download the data sets (``fetch``) and show what is present (``list``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analogtrain import datasets
from analogtrain.cli import cli, rerun_args_current
from analogtrain.cli.common import progress_option, show_progress
from analogtrain.datasets.download import download_size
from analogtrain.results.provenance import provenance
from analogtrain.results.render import dumps, table
from analogtrain.errors import ConfigError

#: the data sets `data fetch` can download (registry entries whose files have mirrors)
FETCHABLE = tuple(s.name for s in datasets.DATASETS.values() if s.fetchable)
_FETCH_HELP = "\n\n".join([
    "Download data set NAME into DIR/NAME/ and verify its SHA-256.",
    "Files already present and verified are skipped; an interrupted download resumes from its .part file.",
    "\b\n" + "\n".join(f"  {s.name:10s} {s.description}" for s in datasets.DATASETS.values() if s.fetchable),
    *(f"{s.name} has no download: {s.folder.how_to_get} into DIR/{s.folder.name}/."
      for s in datasets.DATASETS.values() if not s.fetchable),
])
_FOLDERS = ", ".join(f"{s.folder.name}/" for s in datasets.DATASETS.values())

_DATA_DIR_HELP = (f"Data directory holding {_FOLDERS}. "
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


def _dataset_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A registry name or alias; a known set without download gets its how-to from ``fetch``."""
    try:
        datasets.dataset_spec(value)
    except ConfigError:
        raise click.BadParameter(f"{value!r} is not a data set; choose from {', '.join(FETCHABLE)}",
                                 ctx, param) from None
    return value


@data.command("fetch", help=_FETCH_HELP)
@click.argument("name", callback=_dataset_name, metavar=f"[{'|'.join(FETCHABLE)}]")
@data_dir_option
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Base URL to download from instead of the built-in mirrors; the file name is appended "
                   "(repeatable, tried in order). Default: the built-in mirrors (MNIST: the CVDF mirror, "
                   "then the PyTorch S3 mirror; War and Peace: the char-rnn page; CIFAR-10: the data set's "
                   "page at the University of Toronto, whose archive cifar-10-binary.tar.gz is unpacked).")
@json_option
@progress_option
def fetch_cmd(name: str, data_dir: Path | None, mirrors: tuple[str, ...], as_json: bool, no_progress: bool) -> None:
    root, source = datasets.describe_data_dir(data_dir)
    kwargs = dict(mirrors=list(mirrors) if mirrors else None)
    if show_progress(no_progress):
        total = download_size(name) or None
        with click.progressbar(length=total, label=f"fetch {name}", file=sys.stderr) as bar:
            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.pos)
            results = datasets.fetch(name, root, progress=progress, **kwargs)
    else:
        results = datasets.fetch(name, root, **kwargs)
    rows = [{"file": r.file, "action": r.action, "size": r.size, "sha256": r.sha256, "resumed": r.resumed,
             "url": r.url, "path": str(r.path)} for r in results]
    if as_json:
        click.echo(dumps({**provenance("data fetch", {"dataset": name}, None, rerun_args_current()), "dataset": name,
                                 "data_dir": str(root), "data_dir_source": source, "files": rows}))
        return
    click.echo(f"data directory: {root} (from {source})")
    click.echo(table([[r["file"], r["action"] + (" (resumed)" if r["resumed"] else ""), r["size"],
                              r["path"]] for r in rows], ["file", "action", "bytes", "path"]))


@data.command("list")
@data_dir_option
@json_option
def list_cmd(data_dir: Path | None, as_json: bool) -> None:
    """Show which data set files are present in the data directory and whether they verify."""
    root, source = datasets.describe_data_dir(data_dir)
    rows = datasets.dataset_status(root)
    if as_json:
        click.echo(dumps({**provenance("data list", {"data_dir": str(root)}, None, rerun_args_current()),
                                 "data_dir": str(root), "data_dir_source": source, "files": rows}))
        return
    click.echo(f"data directory: {root} (from {source})")
    click.echo(table([[r["dataset"], r["file"], "yes" if r["present"] else "no",
                              r["size"] if r["present"] else "-",
                              "yes" if r["verified"] else "no", r["path"]] for r in rows],
                            ["dataset", "file", "present", "bytes", "verified", "path"]))
