"""The result of ``device fit``: every model's fit, the chosen one, and its device config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analogtrain.results import files
from analogtrain.results.base import Result
from analogtrain.results.render import table
from analogtrain.tools import fit as F


@dataclass
class FitResult(Result):
    """``fit``: the dict of :func:`analogtrain.tools.fit.fit`; ``data`` the parsed devices;
    ``written``: where :meth:`write_device` wrote the device file, if it did."""

    kind: ClassVar[str] = "fit"
    command: ClassVar[str] = "device fit"

    config: Any
    fit: dict
    data: list
    written: str | None = None
    argv: list | None = None
    created: str | None = None

    def body(self) -> dict[str, Any]:
        out = {"source": self.config.data, **self.fit}
        if self.written:
            out["written"] = self.written
        return out

    def table(self) -> str:
        return _tables(self.body())

    def device_toml(self) -> str:
        """The fitted device as a TOML ``[device]`` table (what ``device --device-config`` reads)."""
        return F.device_toml(self.fit["result"], source=str(self.config.data))

    def write_device(self, path: str | Path) -> None:
        files.write_text(path, self.device_toml())
        self.written = str(path)

    def extra_files(self):
        return {"device.toml": lambda p: files.write_text(p, self.device_toml())}

    def plot(self, path: str | Path) -> None:
        _plot(Path(path), self.data, self.fit)


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
    lines.append(table(rows, ["model", "params", "RMS resid", "RMS/|step|", "dw_min", "up_down", "w_min",
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
    lines.append(table(prow, ["quantity", "value"]))
    if out.get("written"):
        lines.append(f"\nwrote {out['written']} (use: analogtrain device --device-config {out['written']})")
    return "\n".join(lines)


def _plot(path: Path, data, res: dict) -> None:
    plt = files.require_matplotlib()
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
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
