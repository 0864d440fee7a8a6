"""``analogtrain device fit DATA.csv``: fit device models to measured pulse responses, write a TOML device."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from analogtrain.tools import fit as F
from analogtrain import report
from analogtrain.cli.device import device


@device.command("fit")
@click.argument("data_file", type=click.Path(path_type=Path), metavar="DATA.csv")
@click.option("--model", "model", type=click.Choice(("auto",) + F.MODEL_NAMES), default="auto", show_default=True,
              help="Model to fit; auto fits all and keeps the lowest RMS residual (fewer parameters win "
                   "within 1 %).")
@click.option("--normalise", type=click.Choice(("auto", "none", "range")), default="auto", show_default=True,
              help="auto: keep the units if the fitted bounds contain 0 (weights), else (conductances) map the "
                   "fitted range onto [-1, 1]; range: always map; none: never map.")
@click.option("--subtract-sp/--no-subtract-sp", default=False, show_default=True,
              help="Write subtract_symmetry_point = true (the device reads 0 at its symmetry point, the ideal "
                   "TTv2 reference).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.toml", help="Write the fitted device as a TOML [device] table (atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png", help="Plot step vs state with the fitted curves (needs matplotlib).")
def fit_cmd(data_file, model, normalise, subtract_sp, out_file, as_json, plot_file):
    """Fit soft-bounds, linear-step, power-step and constant-step models to pulse-response data.

    \b
    DATA.csv columns (header required, any order): pulse (integer index), direction
    (up/down or +1/-1; start/0 for a read without a pulse), value (conductance or
    normalised weight); optional device (several devices: each is fitted, the device file
    gets their mean and spreads) and cycle. A step is the value change between rows of one
    device (and cycle) whose pulse indices differ by 1. Each model's step-vs-state relation
    is fitted by least squares (scipy.optimize.least_squares); c2c noise comes from the
    residuals. The curves.csv of `analogtrain device --out DIR` (columns w_0, w_1, ...) is
    accepted too. See docs/device_fit.md.

    \b
    Examples:
      analogtrain device fit measured.csv
      analogtrain device fit measured.csv --model soft_bounds --out fitted.toml --json
      analogtrain device --device-config fitted.toml
    """
    data = F.parse_csv(data_file)
    if out_file is not None:
        _check_writable(out_file)
    report.prepare_outputs(None, plot_file)
    res = F.fit(data, model=model, normalise=normalise, subtract_sp=subtract_sp)
    out = {**report.provenance("device fit", {"source": str(data_file), "model": model, "normalise": normalise,
                                               "subtract_sp": subtract_sp}, None),
           "source": str(data_file), **res}
    if out_file is not None:
        report.write_text(out_file, F.device_toml(res["result"], source=str(data_file)))
        out["written"] = str(out_file)
    if plot_file is not None:
        _plot(plot_file, data, res)
    if as_json:
        click.echo(report.dumps(out))
    else:
        click.echo(_tables(out))


def _check_writable(path: Path) -> None:
    from analogtrain.errors import InputError

    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--out {path}: directory {parent} does not exist")
    if path.is_dir():
        raise InputError(f"--out {path}: is a directory, expected a file name")


def _g(v, fmt=".4g") -> str:
    if v is None:
        return ""
    if isinstance(v, dict):
        return f"{v['mean']:{fmt}} +- {v['std']:{fmt}}" if v.get("std") else f"{v['mean']:{fmt}}"
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:{fmt}}" if isinstance(v, (int, float)) else str(v)


def _tables(out: dict) -> str:
    d = out["data"]
    lines = [f"{out['source']}: {d['devices']} device(s), {d['rows']} rows, {d['steps_up']} up / "
             f"{d['steps_down']} down steps, values in [{d['value_min']:.4g}, {d['value_max']:.4g}]"]
    models = out["models"]
    rows = []
    for m in models:
        if not m.get("applicable"):
            rows.append([m["model"], *["-"] * 10, f"not applicable: {m['reason']}"])
            continue
        p = m["parameters"]
        extra = ""
        if "gamma_up" in p:
            extra = f"gamma up/down {_g(p['gamma_up']['mean'], '.3g')}/{_g(p['gamma_down']['mean'], '.3g')}"
        rows.append([m["model"] + (" *" if m["model"] == out["chosen"] else ""), m["n_params"],
                     _g(m["residual_rms"]), _g(m["residual_rms_relative"], ".3g"), _g(p["dw_min"]),
                     _g(p["up_down"], ".3g"), _g(p["w_min"]), _g(p["w_max"]), _g(p["dw_min_std"], ".3g"),
                     "mult" if p["mult_noise"] else "add", _g(m["n_states"], ".4g"),
                     f"SP {m['symmetry_point']:.4g}, asym {m['asymmetry']:.3g}" + (f", {extra}" if extra else "")])
    lines.append(report.table(rows, ["model", "params", "RMS resid", "RMS/|step|", "dw_min", "up_down", "w_min",
                                     "w_max", "c2c std", "noise", "n_states", "notes"]))
    r = out["result"]
    lines.append(f"\nchosen: {r['model']} ({out['selection']}); written as device model {r['config_model']}")
    nrm = r["normalisation"]
    lines.append(f"units: {nrm['how']}; w = (value - {nrm['offset']:.6g}) / {nrm['scale']:.6g}")
    p = r["parameters"]
    prow = [["dw_min (mean step at w = 0)", _g(p["dw_min"])], ["up_down", _g(p["up_down"])],
            ["scale_up / scale_down", f"{_g(p['scale_up'])} / {_g(p['scale_down'])}"],
            ["w_min / w_max", f"{_g(p['w_min'])} / {_g(p['w_max'])}"],
            ["dw_min_std (c2c, " + ("multiplicative" if p["mult_noise"] else "additive") + ")", _g(p["dw_min_std"])],
            ["n_states (w_max - w_min) / granularity", _g(r["n_states"])],
            ["symmetry point (normalised / data units)",
             f"{r['symmetry_point']:.4g} / {r['symmetry_point_native']:.4g}"],
            ["asymmetry (up - down)/(up + down)", _g(r["asymmetry"])],
            ["RMS residual (data units / normalised)", f"{r['residual_rms']:.4g} / {r['residual_rms_normalised']:.4g}"]]
    for k in ("slope_up", "slope_down", "gamma_up", "gamma_down"):
        if k in p:
            prow.append([k, _g(p[k])])
    if "stderr" in r:
        prow.append(["standard errors", ", ".join(f"{k} {v:.2g}" for k, v in r["stderr"].items())])
    if r["devices"] > 1:
        dc = r["device_config"]
        keys = ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod")
        prow.append(["device-to-device spreads", ", ".join(f"{k} {dc[k]:.3g}" for k in keys)])
    lines.append(report.table(prow, ["quantity", "value"]))
    if out.get("written"):
        lines.append(f"\nwrote {out['written']} (use: analogtrain device --device-config {out['written']})")
    return "\n".join(lines)


def _plot(path: Path, data, res: dict) -> None:
    plt = report.require_matplotlib()
    r = res["result"]
    model = F.MODELS[r["model"]]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, d in enumerate(data[:5]):
        ax.plot(d.w[d.up], d.dw[d.up], ".", ms=2, alpha=0.4, color="C0", label="up steps" if k == 0 else None)
        ax.plot(d.w[~d.up], d.dw[~d.up], ".", ms=2, alpha=0.4, color="C1", label="down steps" if k == 0 else None)
        theta = np.array(r["native"]["per_device"][k]["theta"])
        xs = np.linspace(d.values.min(), d.values.max(), 200)
        lo, hi = float(d.values.min()), float(d.values.max())
        ax.plot(xs, model.predict(theta, xs, np.ones_like(xs, bool), lo, hi), "C0", lw=1)
        ax.plot(xs, model.predict(theta, xs, np.zeros_like(xs, bool), lo, hi), "C1", lw=1)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("value before the pulse")
    ax.set_ylabel("change per pulse")
    ax.set_title(f"device fit: {r['model']}")
    ax.legend()
    fig.tight_layout()
    with report.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
