"""The ``analogtrain`` command line: a click group and one module per subcommand.

Each command maps its flags to config fields and calls one run function
(:func:`analogtrain.cli.common.execute`); the configs validate themselves, the work happens
in :mod:`analogtrain.experiments`, :mod:`analogtrain.tools` and the engine, and the results
render themselves. Every error the
project raises on purpose becomes one line on stderr and an exit code (2 for usage and
configuration errors, 1 for failures while running); no traceback is shown unless
``ANALOGTRAIN_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from analogtrain._version import __version__
from analogtrain.errors import AnalogTrainError, Interrupted

CONTEXT_SETTINGS = dict(help_option_names=["-h", "--help"], max_content_width=100)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="analogtrain")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output on stderr (repeatable).")
def cli(verbose: int, quiet: int) -> None:
    """Simulate training of neural networks on analog resistive crossbar arrays.

    \b
    Algorithms: analog SGD, mixed precision (MP), Tiki-Taka v2 (TTv2), chopped TTv2
    (c-TTv2), AGAD, and a floating-point baseline (Rasch, Carta et al., Nat. Commun. 2024).
    Results go to stdout (a table, or one JSON object with --json); logs, warnings and
    progress go to stderr. Exit codes: 0 ok, 1 failure while running, 2 usage or config error.
    """
    level = logging.WARNING - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(logging.DEBUG, min(level, logging.CRITICAL)), stream=sys.stderr,
                        format="analogtrain: %(message)s")


#: the command modules; each adds its command to ``cli`` when imported
COMMANDS = ("device", "device_fit", "program", "train", "estimate", "endurance", "data", "verify")


def _register() -> None:
    for name in COMMANDS:
        __import__(f"{__name__}.{name}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


#: the arguments of the running command (for provenance and ``verify`` reruns)
CURRENT_ARGS: list[str] = []

#: options that only change where or how results are shown, not what is computed
_DISPLAY_OPTIONS = {"--out": 1, "--plot": 1, "--json": 0, "--print-config": 0, "--no-progress": 0,
                    "--resume": 1, "-v": 0, "-q": 0, "--verbose": 0, "--quiet": 0}
#: options whose value is a path: recorded as an absolute path, so the command means the same anywhere
_PATH_OPTIONS = ("--config", "--device-config", "--data-dir")


def rerun_args(args: list[str]) -> list[str]:
    """The full argument list (subcommand included) without display options, with the paths
    of ``--config``, ``--device-config`` and ``--data-dir`` made absolute (provenance)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        key = a.split("=", 1)[0]
        if key in _DISPLAY_OPTIONS:
            i += 1 + (_DISPLAY_OPTIONS[key] if "=" not in a else 0)
            continue
        if key in _PATH_OPTIONS:
            if "=" in a:
                out.append(f"{key}={_abs(a.split('=', 1)[1])}")
            elif i + 1 < len(args):
                out += [a, _abs(args[i + 1])]
                i += 2
                continue
            else:
                out.append(a)
            i += 1
            continue
        out.append(a)
        i += 1
    return out


def _abs(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


def rerun_args_current() -> list[str]:
    """:func:`rerun_args` of the running command (empty outside the CLI)."""
    return rerun_args(CURRENT_ARGS)


def pin_threads() -> None:
    """Run BLAS/OpenMP single-threaded unless ANALOGTRAIN_THREADS says otherwise.

    Multi-threaded BLAS may sum in a different order and change the last bits of an MVM,
    which can flip a stochastic pulse decision; one thread keeps runs reproducible
    whatever OMP_NUM_THREADS / OPENBLAS_NUM_THREADS the caller has set. Must run before
    NumPy is imported (the CLI does it first thing).
    """
    n = os.environ.get("ANALOGTRAIN_THREADS", "1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = n


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m analogtrain``."""
    if "numpy" not in sys.modules:
        pin_threads()
    _register()
    args = sys.argv[1:] if argv is None else list(argv)
    CURRENT_ARGS[:] = args
    debug = os.environ.get("ANALOGTRAIN_DEBUG", "") not in ("", "0")
    try:
        rv = cli.main(args=args, prog_name="analogtrain", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("analogtrain: aborted", err=True)
        return 130
    except click.ClickException as e:  # usage errors, bad option values, missing files
        prefix = e.ctx.command_path if getattr(e, "ctx", None) is not None else "analogtrain"
        click.echo(f"{prefix}: error: {_one_line(e.format_message())}", err=True)
        return e.exit_code
    except Interrupted as e:
        click.echo(f"analogtrain: {_one_line(e)}", err=True)
        return e.exit_code
    except AnalogTrainError as e:
        if debug:
            raise
        click.echo(f"analogtrain: error: {_one_line(e)}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("analogtrain: interrupted", err=True)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except Exception as e:  # a bug: say so in one line, trace only on request
        if debug:
            raise
        click.echo(f"analogtrain: internal error: {type(e).__name__}: {_one_line(e)} "
                   "(set ANALOGTRAIN_DEBUG=1 for a traceback, and please report it)", err=True)
        return 1


def run() -> None:
    sys.exit(main())
