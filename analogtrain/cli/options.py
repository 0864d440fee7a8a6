"""Options shared by several subcommands, defined once.

``device_options`` (``--preset``, ``--config``, ``--device-config``, ``--set``) choose and
adjust the device exactly the same way in ``device``, ``program`` and ``train``;
``output_options`` give ``--json``, ``--out``, ``--plot`` and ``--print-config``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from analogtrain.config.loading import parse_assignments, read_toml
from analogtrain.errors import ConfigError


def _compose(*decorators: Callable) -> Callable:
    def deco(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return deco


seed_option = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                           help="Master seed; split into named streams (device draw, pulses, noise, data).")

device_options = _compose(
    click.option("--preset", "preset", default=None, metavar="NAME",
                 help="Device preset (see `analogtrain device --list`). Default: softbounds."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 metavar="FILE", help="TOML config file; its [device] table (or top-level keys) sets the device."),
    click.option("--device-config", "device_config_file", type=click.Path(dir_okay=False, path_type=Path),
                 default=None, metavar="FILE",
                 help="TOML device file (e.g. from `device fit`): top-level keys or a [device] table."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="Set a device parameter, e.g. --set dw_min=0.01 --set n_states=100 (repeatable); "
                      "highest precedence."),
)

output_options = _compose(
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 metavar="DIR", help="Write results (summary.json, CSV, npz, resolved config) to DIR."),
    click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 metavar="FILE.png", help="Save a plot (needs the optional matplotlib extra)."),
    click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit."),
)

progress_option = click.option("--no-progress", is_flag=True,
                               help="No progress bar (it is only shown when stderr is a terminal anyway).")


def device_table(data: dict[str, Any]) -> dict[str, Any]:
    """The device part of a TOML dict: its [device] table, else its top-level scalar keys."""
    dev = data.get("device")
    if isinstance(dev, dict):
        return dict(dev)
    return {k: v for k, v in data.items() if not isinstance(v, dict)}


def load_device_sources(preset, config_file, device_config_file, sets) -> tuple[str | None, dict, list]:
    """(preset, file values, --set pairs) from the shared device options.

    The config file's device table is the lower layer, the device file the upper; with
    neither a preset nor a model anywhere the default preset ``softbounds`` is used.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_toml(config_file)
        table = device_table(data)
        if not table and not any(k in data for k in ("program", "train", "algorithm", "estimate")):
            raise ConfigError(f"config file {config_file}: no [device] table and no device keys "
                              f"(found {', '.join(sorted(data)) or 'nothing'})")
        values.update(table)
    if device_config_file is not None:
        dev = device_table(read_toml(device_config_file, what="device file"))
        if not dev:
            raise ConfigError(f"device file {device_config_file}: no [device] table and no device keys")
        if "model" in dev or "preset" in dev:
            values.pop("preset", None)
            values.pop("model", None)
        values.update(dev)
    pairs = parse_assignments(sets)
    set_presets = [v for k, v in pairs if k == "preset"]
    if set_presets:
        if preset is not None and preset != set_presets[-1]:
            raise ConfigError(f"--set preset={set_presets[-1]} conflicts with --preset {preset}")
        preset = set_presets[-1]
        pairs = [(k, v) for k, v in pairs if k != "preset"]
    if preset is None and "preset" not in values and "model" not in values and not any(k == "model" for k, _ in pairs):
        preset = "softbounds"
    return preset, values, pairs


def show_progress(no_progress: bool) -> bool:
    """Progress bars only on a terminal, and never with --no-progress."""
    return not no_progress and sys.stderr.isatty()


def echo_result(text: str) -> None:
    click.echo(text)


def fail_usage(msg: str) -> None:
    raise ConfigError(msg)
