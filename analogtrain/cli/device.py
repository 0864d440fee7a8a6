"""``analogtrain device``: characterise a device preset or a TOML device config."""

from __future__ import annotations

import click

from analogtrain.cli import cli, rerun_args_current
from analogtrain.cli.common import config_option, device_options, execute, field_options, load_layers, output_options
from analogtrain.config.characterise import CharacteriseConfig
from analogtrain.config.fields import describe
from analogtrain.results.render import dumps, table


@cli.group("device", invoke_without_command=True)
@field_options(CharacteriseConfig, ["devices", "cycles", "pulses", "random_pulses", "seed"])
@config_option
@device_options
@click.option("--list", "list_presets", is_flag=True, help="List the device presets, one line each, and exit.")
@click.option("--describe", is_flag=True, help="List every parameter of the resolved device model "
                                               "(unit, range, default, meaning) and exit.")
@output_options
@click.pass_context
def device(ctx, **params):
    """Characterise a device: pulse response, symmetry point, states, steps, bounds.

    \b
    Examples:
      analogtrain device --list
      analogtrain device --preset reram-sb
      analogtrain device --preset softbounds --set n_states=100 --set up_down=0.2 --json
      analogtrain device --config mydevice.toml --out results/ --plot response.png
      analogtrain device fit measured.csv --out fitted.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    if params["list_presets"]:
        return _list_presets(params["as_json"])
    if params["describe"]:
        return _describe(load_layers(CharacteriseConfig, ctx, params).device_config(), params["as_json"])
    from analogtrain.experiments.characterise import run

    execute(CharacteriseConfig, ctx, params, run)


def _list_presets(as_json: bool) -> None:
    from analogtrain.config.loading import device_from_dict
    from analogtrain.engine.devices.presets import PRESETS, preset_values
    from analogtrain.results.provenance import provenance

    rows = []
    for name, (doc, _) in PRESETS.items():
        cfg = device_from_dict(preset_values(name))
        rows.append({"name": name, "model": cfg.model, "n_states": round(cfg.n_states, 1), "description": doc})
    if as_json:
        click.echo(dumps({**provenance("device --list", {}, None, rerun_args_current()), "presets": rows}))
    else:
        click.echo(table([[r["name"], r["model"], r["n_states"], r["description"]] for r in rows],
                         ["preset", "model", "n_states", "description"]))


def _describe(cfg, as_json: bool) -> None:
    from analogtrain.results.provenance import provenance

    rows = describe(type(cfg))
    for r in rows:
        r["value"] = getattr(cfg, r["name"])
    if as_json:
        click.echo(dumps({**provenance("device --describe", {"model": cfg.model}, None, rerun_args_current()), "model": cfg.model,
                          "parameters": rows}))
    else:
        click.echo(f"model: {cfg.model}\n{type(cfg).__doc__.strip()}\n")
        click.echo(table([[r["name"], r["value"], r["unit"], r["range"], r["doc"]] for r in rows],
                         ["parameter", "value", "unit", "range", "meaning"]))
        click.echo("\nvirtual keys: n_states (sets dw_min), sigma_b (w_max_dtod and w_min_dtod), "
                   "gamma (gamma_up and gamma_down); paper aliases: delta, sigma_r, sigma_dtod, sigma_ctoc, sigma_pm")
