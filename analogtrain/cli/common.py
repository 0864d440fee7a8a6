"""What every run command shares, defined once: options generated from the config fields,
the device and output options, and the flow flags -> config -> run -> render.

A command module declares which config fields it offers as flags and calls
:func:`execute`; it has no defaults of its own (they are the config's), and its help texts
come from the fields' declarations (doc, unit, range, default) and the registries.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from analogtrain.config.fields import choices_of, field_type, flag_of, range_text
from analogtrain.config.loader import Layer, build_config, device_file_layer, read_config_file
from analogtrain.config.loading import parse_assignments
from analogtrain.errors import Interrupted
from analogtrain.results import files
from analogtrain.results.render import dumps, to_toml


def _compose(*decorators: Callable) -> Callable:
    def deco(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return deco


# ------------------------------------------------------------------------------ field options
def field_help(cls: type, f: dataclasses.Field) -> str:
    """Help text of a field's flag: its doc, unit, allowed range and default."""
    m = f.metadata
    typ, item = field_type(cls, f)
    parts = [m.get("doc", "")]
    choices = choices_of(m)
    if typ is not bool:
        if choices:
            parts.append(("comma list of " if typ is tuple else "") + "one of " + ", ".join(map(str, choices)))
        else:
            rng = range_text(m)
            parts.append(("comma list, each " if typ is tuple else "") + (rng if rng != "any finite value" else "")
                         + (f"; unit: {m['unit']}" if m.get("unit") else ""))
    default = m.get("default_doc") if f.default is None and m.get("default_doc") else f.default
    if isinstance(default, tuple):
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) if default else "none"
    elif isinstance(default, bool):
        default = "on" if default else "off"
    elif isinstance(default, float):
        default = f"{default:g}"
    text = "; ".join(p.strip("; ") for p in parts if p and p.strip("; "))
    return f"{text[:1].upper()}{text[1:]} [default: {default}]."


def field_options(cls: type, names: Sequence[str], metavars: dict[str, str] | None = None,
                  extra_help: dict[str, str] | None = None) -> Callable:
    """click options for the fields ``names`` of a config class (``--field-name``).

    Every option takes raw text (parsed and validated by the config, the same way as a
    TOML value) and defaults to None (not given); booleans are ``--x/--no-x`` switches.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    decos = []
    for name in names:
        f = fields[name]
        typ, _ = field_type(cls, f)
        flag = flag_of(f)
        help_text = field_help(cls, f) + (" " + extra_help[name] if extra_help and name in extra_help else "")
        if typ is bool:
            decos.append(click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text))
        else:
            mv = (metavars or {}).get(name) or ("LIST" if typ is tuple else None)
            decos.append(click.option(flag, name, default=None, metavar=mv, help=help_text))
    return _compose(*decos)


def virtual_option(name: str, flag: str, help_text: str, metavar: str | None = None) -> Callable:
    return click.option(flag, name, default=None, metavar=metavar, help=help_text)


# ------------------------------------------------------------------------------ shared options
config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                             default=None, metavar="FILE",
                             help="TOML config file (as --print-config writes it: kind, the run's table, [device], "
                                  "[algorithm], [sweep]); flags win over it.")

device_options = _compose(
    click.option("--preset", "preset", default=None, metavar="NAME",
                 help="Device preset (see `analogtrain device --list`) [default: softbounds]."),
    click.option("--device-config", "device_config_file", type=click.Path(dir_okay=False, path_type=Path),
                 default=None, metavar="FILE",
                 help="TOML device file (e.g. from `device fit`): top-level keys or a [device] table."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="Set a device parameter, e.g. --set dw_min=0.01 --set n_states=100 (repeatable; "
                      "A.KEY / W.KEY act on one array of a transfer algorithm); highest precedence."),
)

algo_set_option = click.option("--algo-set", "algo_sets", multiple=True, metavar="KEY=VALUE",
                               help="Set an algorithm parameter, e.g. in_chop_prob=0.05 (repeatable; in a grid, "
                                    "for every algorithm that has it); every key: docs/algorithms.md.")

output_options = _compose(
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 metavar="DIR", help="Write the results (summary.json, config.toml, CSV, arrays.npz) to DIR."),
    click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 metavar="FILE.png", help="Save a plot (needs the optional matplotlib extra)."),
    click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit."),
)

progress_option = click.option("--no-progress", is_flag=True,
                               help="No progress bar (it is only shown when stderr is a terminal anyway).")

# ------------------------------------------------------------------------------ flags -> config
def flag_layer(cls: type, ctx: click.Context, params: dict[str, Any], sweep_items: Sequence[str] = ()) -> Layer:
    """The layer of the values given on the command line: the flags of ``cls``'s fields (and
    virtual keys), ``--preset``, ``--set`` (device), ``--algo-set`` (algorithm) and ``--sweep``."""
    layer = Layer(label="flags")
    opts = {p.name: p for p in ctx.command.params}
    names = ({f.name for f in dataclasses.fields(cls)} - set(cls.tables.values())) | set(cls.virtual)
    for name, value in params.items():
        if name not in names or value is None or value == ():
            continue
        src = ctx.get_parameter_source(name)
        if src is not None and src.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        layer.own[name] = value
        p = opts.get(name)
        layer.flags[name] = p.opts[0] if p is not None and p.opts else "--" + name.replace("_", "-")
    if params.get("preset") is not None:
        layer.preset = params["preset"]
    if params.get("sets"):
        layer.add_table("device", dict(parse_assignments(params["sets"])), label="--set")
    if params.get("algo_sets"):
        layer.add_table("algorithm", dict(parse_assignments(params["algo_sets"], "--algo-set")), label="--algo-set")
    if sweep_items:
        layer.add_table("sweep", dict(parse_assignments(sweep_items, "--sweep")), label="--sweep")
    return layer


def load_layers(cls: type, ctx: click.Context, params: dict[str, Any], base: Sequence[Layer] = (),
                sweep_items: Sequence[str] = ()):
    """The config of ``cls``: ``base`` layers < ``--config`` < ``--device-config`` < flags."""
    layers = list(base)
    if params.get("config_file") is not None:
        layers.append(read_config_file(params["config_file"], cls))
    if params.get("device_config_file") is not None:
        layers.append(device_file_layer(params["device_config_file"]))
    layers.append(flag_layer(cls, ctx, params, sweep_items))
    return build_config(cls, layers)


# ------------------------------------------------------------------------------ running
def show_progress(no_progress: bool) -> bool:
    """Progress bars only on a terminal, and never with --no-progress."""
    return not no_progress and sys.stderr.isatty()


def step_progress(label: str, total: int):
    """A click progress bar on stderr driven by ``(done, total)`` calls; a context manager."""
    class _Bar:
        def __enter__(self):
            self.bar = click.progressbar(length=total, label=label, file=click.get_text_stream("stderr"))
            self.bar.__enter__()
            self.done = 0
            return self

        def __call__(self, done, total_now=None):
            if total_now is not None:
                self.bar.length = total_now
            self.bar.update(done - self.done)
            self.done = done

        def __exit__(self, *exc):
            self.bar.__exit__(*exc)
            return False
    return _Bar()


def epoch_progress():
    """A factory ``(epoch, units) -> bar`` with ``update(n)`` and ``close()`` (training)."""
    stderr = click.get_text_stream("stderr")

    def make(epoch, total):
        bar = click.progressbar(length=total, label=f"epoch {epoch + 1}", file=stderr)
        bar.__enter__()

        class _B:
            def update(self, n):
                bar.update(n)

            def close(self):
                bar.__exit__(None, None, None)
        return _B()
    return make


def print_config(cfg) -> None:
    click.echo(to_toml(cfg.to_dict(), header=f"analogtrain {cfg.kind}: resolved config"))


def render(res, params: dict[str, Any], argv: list[str] | None, write: bool = True) -> None:
    """Finish a run: record the command line, write --out and --plot, print the result."""
    res.argv = argv
    if write and params.get("out_dir") is not None:
        res.write(params["out_dir"])
    if params.get("plot_file") is not None:
        res.plot(params["plot_file"])
    click.echo(dumps(res.to_dict()) if params.get("as_json") else res.table())


def execute(cls: type, ctx: click.Context, params: dict[str, Any], run: Callable, *, base: Sequence[Layer] = (),
            sweep_items: Sequence[str] = (), progress_label: str | None = None,
            progress_total: Callable[[Any], int] | None = None) -> None:
    """The whole flow of a run command: build the config (one error line if it is invalid),
    ``--print-config``, check the outputs before any work, run (with a progress bar on a
    terminal), write and print the result."""
    cfg = load_layers(cls, ctx, params, base, sweep_items)
    if params.get("print_config"):
        print_config(cfg)
        return
    files.prepare_outputs(params.get("out_dir"), params.get("plot_file"))
    if progress_label and show_progress(params.get("no_progress", False)):
        with step_progress(progress_label, progress_total(cfg) if progress_total else 0) as bar:
            res = run(cfg, progress=bar)
    else:
        res = run(cfg)
    from analogtrain.cli import rerun_args_current

    render(res, params, rerun_args_current())


def interruptible(fn: Callable, on_interrupt: Callable[[], str]):
    """Run ``fn()`` turning SIGTERM and Ctrl-C into :class:`Interrupted` with a resume hint."""
    def _raise(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        return fn()
    except KeyboardInterrupt:
        raise Interrupted(on_interrupt()) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
