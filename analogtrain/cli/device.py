"""``analogtrain device``: characterise a device preset or a TOML device config."""

from __future__ import annotations

from pathlib import Path

import click

from analogtrain import report
from analogtrain.config.fields import describe
from analogtrain.config.loading import resolve_device
from analogtrain.engine.devices.presets import PRESETS
from analogtrain.experiments.characterise import characterise
from analogtrain.cli import cli
from analogtrain.cli.options import device_options, load_device_sources, output_options, seed_option


def resolve_from_options(preset, config_file, device_config_file, sets, allow_scopes=False, extra_layers=()):
    p, values, pairs = load_device_sources(preset, config_file, device_config_file, sets)
    return resolve_device(preset=p, file_values=values, sets=pairs, allow_scopes=allow_scopes,
                          extra_layers=extra_layers), p


@cli.group("device", invoke_without_command=True)
@device_options
@seed_option
@click.option("--devices", "n_devices", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Number of sampled devices R (device-to-device variation).")
@click.option("--cycles", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Pulse-response cycles K (each: n up pulses, then n down pulses).")
@click.option("--pulses", type=click.IntRange(1, 10**6), default=None,
              help="Pulses per direction n in a cycle [default: about n_states].")
@click.option("--random-pulses", type=click.IntRange(100, 10**7), default=None,
              help="Length of the random +-1 sequence for the simulated symmetry point "
                   "[default: 40 n_states, 4000..100000].")
@click.option("--list", "list_presets", is_flag=True, help="List the device presets, one line each, and exit.")
@click.option("--describe", is_flag=True, help="List every parameter of the resolved device model "
                                               "(unit, range, default, meaning) and exit.")
@output_options
@click.pass_context
def device(ctx, preset, config_file, device_config_file, sets, seed, n_devices, cycles, pulses, random_pulses,
           list_presets, describe, as_json, out_dir, plot_file, print_config):
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
    if list_presets:
        _list_presets(as_json)
        return
    cfg, used_preset = resolve_from_options(preset, config_file, device_config_file, sets)
    if describe:
        _describe(cfg, as_json)
        return
    resolved = {"device": {"model": cfg.model, **report.to_jsonable(_fields(cfg))},
                "characterise": {"devices": n_devices, "cycles": cycles, "pulses": pulses,
                                 "random_pulses": random_pulses, "seed": seed}}
    if print_config:
        click.echo(report.to_toml(resolved, header="analogtrain device: resolved config"))
        return
    report.prepare_outputs(out_dir, plot_file)
    res = characterise(cfg, n_devices=n_devices, cycles=cycles, pulses=pulses, random_pulses=random_pulses,
                       seed=seed)
    resolved["characterise"].update(pulses=res.pulses_per_direction, random_pulses=res.random_pulses)
    out = report.provenance("device", resolved, seed)
    out.update({"preset": used_preset, "device": resolved["device"], "n_devices": res.n_devices,
                "cycles": res.cycles, "pulses_per_direction": res.pulses_per_direction,
                "random_pulses": res.random_pulses})
    out.update(res.summary)
    if out_dir is not None:
        _write_outputs(out_dir, out, res, resolved)
    if plot_file is not None:
        _plot(plot_file, res)
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_table(out))


def _fields(cfg) -> dict:
    from analogtrain.config.fields import to_dict

    return to_dict(cfg)


def _list_presets(as_json: bool) -> None:
    from analogtrain.config.loading import device_from_dict
    from analogtrain.engine.devices.presets import preset_values

    rows = []
    for name, (doc, _) in PRESETS.items():
        cfg = device_from_dict(preset_values(name))
        rows.append({"name": name, "model": cfg.model, "n_states": round(cfg.n_states, 1), "description": doc})
    if as_json:
        click.echo(report.dumps({**report.provenance("device --list", {}, None), "presets": rows}))
    else:
        click.echo(report.table([[r["name"], r["model"], r["n_states"], r["description"]] for r in rows],
                                ["preset", "model", "n_states", "description"]))


def _describe(cfg, as_json: bool) -> None:
    rows = describe(type(cfg))
    for r in rows:
        r["value"] = getattr(cfg, r["name"])
    if as_json:
        click.echo(report.dumps({**report.provenance("device --describe", {"model": cfg.model}, None),
                                 "model": cfg.model, "parameters": rows}))
    else:
        click.echo(f"model: {cfg.model}\n{type(cfg).__doc__.strip()}\n")
        click.echo(report.table([[r["name"], r["value"], r["unit"], r["range"], r["doc"]] for r in rows],
                                ["parameter", "value", "unit", "range", "meaning"]))
        click.echo("\nvirtual keys: n_states (sets dw_min), sigma_b (w_max_dtod and w_min_dtod), "
                   "gamma (gamma_up and gamma_down); paper aliases: delta, sigma_r, sigma_dtod, sigma_ctoc, sigma_pm")


def _table(out: dict) -> str:
    def ms(key, fmt="{:.4g}"):
        v = out.get(key)
        if not v:
            return ""
        return (fmt.format(v["mean"]) + " +- " + fmt.format(v["std"])) if v.get("std") is not None else ""

    rows = [
        ["model", out["device"]["model"] + (f" (preset {out['preset']})" if out.get("preset") else "")],
        ["devices sampled", out["n_devices"]],
        ["n_states (w_max - w_min) / dw", f"{out['n_states']:.4g}"],
        ["n_states per device", ms("n_states_devices")],
        ["dw_min", f"{out['dw_min']:.4g}"],
        ["step up (scale_up)", ms("step_up")],
        ["step down (scale_down)", ms("step_down")],
        ["measured step up / pulse", ms("measured_step_up")],
        ["measured step down / pulse", ms("measured_step_down")],
        ["asymmetry (up-down)/(up+down)", ms("asymmetry")],
        ["w_min (physical)", ms("w_min")],
        ["w_max (physical)", ms("w_max")],
        ["reference offset", ms("reference")],
        ["symmetry point (formula)", ms("symmetry_point")],
        ["symmetry point (random pulses)", ms("symmetry_point_simulated")],
        ["|SP simulated - formula| mean / max",
         f"{out['symmetry_point_abs_diff']['mean']:.3g} / {out['symmetry_point_abs_diff']['max']:.3g}"],
        ["symmetry point, read weight", ms("symmetry_point_read")],
        ["write noise std", f"{out['write_noise']:.4g}"],
        ["response curve", f"{out['cycles']} cycles x {out['pulses_per_direction']} up/down pulses"],
        ["random sequence", f"{out['random_pulses']} pulses"],
    ]
    return report.table(rows, ["quantity", "value (mean +- std over devices)"])


def _write_outputs(out_dir: Path, out: dict, res, resolved: dict) -> None:
    R = res.n_devices
    cycle = np.concatenate([[0], np.repeat(np.arange(res.cycles), 2 * res.pulses_per_direction)])
    rows = []
    for t in range(res.curves.shape[0]):
        c = res.curves[t]
        rows.append([t, int(cycle[t]), {1: "up", -1: "down", 0: "start"}[int(res.directions[t])],
                     float(c.mean()), float(c.std()), *[float(v) for v in c]])
    report.write_csv(out_dir / "curves.csv", ["pulse", "cycle", "direction", "w_mean", "w_std",
                                              *[f"w_{i}" for i in range(R)]], rows)
    report.write_csv(out_dir / "symmetry_points.csv", ["device", "formula", "simulated"],
                     [[i, float(a), float(b)] for i, (a, b) in enumerate(zip(res.sp_formula, res.sp_simulated))])
    report.write_text(out_dir / "config.toml", report.to_toml(resolved, header="analogtrain device: resolved config"))
    report.write_json(out_dir / "summary.json", out)


def _plot(path: Path, res) -> None:
    plt = report.require_matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    x = np.arange(res.curves.shape[0])
    m, s = res.curves.mean(1), res.curves.std(1)
    for i in range(min(5, res.n_devices)):
        ax.plot(x, res.curves[:, i], lw=0.6, alpha=0.6)
    ax.plot(x, m, "k", lw=1.5, label="mean")
    ax.fill_between(x, m - s, m + s, color="k", alpha=0.15, label="+-1 std")
    ax.set_xlabel("pulse")
    ax.set_ylabel("read weight")
    ax.set_title("pulse response")
    ax.legend()
    ax = axes[1]
    ax.hist(res.sp_formula, bins=30, alpha=0.6, label="formula")
    ax.hist(res.sp_simulated, bins=30, alpha=0.6, label="random pulses")
    ax.set_xlabel("symmetry point (physical weight)")
    ax.set_title("symmetry point over devices")
    ax.legend()
    fig.tight_layout()
    with report.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


import numpy as np  # noqa: E402  (kept at the end: only the output helpers need it)
from analogtrain.cli import device_fit as _device_fit  # noqa: F401
