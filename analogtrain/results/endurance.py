"""The result of ``endurance``: pulse statistics, projection, pass/fail and retention per array."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analogtrain.results import files
from analogtrain.results.base import Result
from analogtrain.results.render import table


@dataclass
class EnduranceResult(Result):
    """``analysis``: the dict of :func:`analogtrain.tools.endurance.analyse` (source, arrays with
    their statistics, histogram, projection and retention, pass, worst, notes)."""

    kind: ClassVar[str] = "endurance"

    config: Any
    analysis: dict
    argv: list | None = None
    created: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.config.run_dir is None:
            out["simulation"] = self.config.simulation().to_dict()["program"]
        out.update(self.analysis)
        return out

    def table(self) -> str:
        return _tables(self.analysis)

    def extra_files(self):
        return {"histogram.csv": lambda p: files.write_csv(
            p, ["group", "algorithm", "array", "bin_lo", "bin_hi", "devices"], _histogram_rows(self.analysis))}

    def plot(self, path: str | Path) -> None:
        _plot(Path(path), self.analysis)


def _histogram_rows(res: dict):
    edges = res["histogram_edges"]
    for r in res["arrays"]:
        h = r["histogram"]
        yield [r["group"], r["algorithm"], r["array"], 0.0, 0.0, h["zero"]]
        for k, c in enumerate(h["counts"]):
            yield [r["group"], r["algorithm"], r["array"], float(edges[k]), float(edges[k + 1]), c]


def _g(v) -> str:
    return f"{v:.3g}"


def _label(r: dict) -> str:
    lab = r["labels"]
    extra = {k: v for k, v in lab.items() if k not in ("algorithm", "layer", "seed_index", "lr")}
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()]
    return r["group"] + (f" ({', '.join(parts)})" if parts else "")


def _tables(res: dict) -> str:
    src = res["source"]
    N = res["samples_projected"]
    head = (f"pulses per device per input sample ({src['kind']} run"
            + (f" {src['path']}" if src.get("path") else "") + f", {src['samples']} samples); "
            f"projected to N = {N:g} samples; endurance {res['endurance']:.3g} pulses")
    rows = []
    for r in res["arrays"]:
        t, u, d = r["per_sample"]["total"], r["per_sample"]["up"], r["per_sample"]["down"]
        p = r["projected"]
        rows.append([_label(r), r["algorithm"], r["array"], _g(t["mean"]), _g(t["median"]), _g(t["p99"]),
                     _g(t["max"]), _g(u["max"]), _g(d["max"]), r["pulses"]["total"], _g(p["max_per_device"]),
                     "PASS" if p["pass"] else "FAIL"])
    t1 = table(rows, ["replica/layer", "alg", "array", "mean", "median", "p99", "max", "up max",
                             "down max", "run total", "proj. max/device", "endurance"])
    rrows = []
    for r in res["arrays"]:
        ret = r["retention"]
        sec = f"{ret['seconds']:.3g}" if ret.get("seconds") is not None else "(give --samples-per-second)"
        rrows.append([_label(r), r["algorithm"], r["array"], _g(ret["samples"]), sec, ret["formula"]])
    t2 = table(rrows, ["replica/layer", "alg", "array", "retention [samples]", "[s]", "formula"])
    edges = res["histogram_edges"]
    cols = ["0"] + [f"[{edges[k]:.2g},{edges[k + 1]:.2g})" for k in range(len(edges) - 1)]
    hrows = [[_label(r), r["array"], r["histogram"]["zero"], *r["histogram"]["counts"]] for r in res["arrays"]]
    t3 = table(hrows, ["replica/layer", "array", *cols])
    verdict = "PASS" if res["pass"] else "FAIL"
    w = res["worst"]
    line = (f"{verdict}: projected max pulses per device {w['projected_max_per_device']:.3g} "
            f"({w['group']}, {w['array']}) vs endurance {res['endurance']:.3g} over N = {N:g} samples"
            if w else f"{verdict}: no pulsed arrays")
    notes = ["R: the reference of TTv2/c-TTv2, programmed once (not counted), 0 training pulses, "
             "must hold its value the whole run"] if any(r["array"] == "R" for r in res["arrays"]) else []
    notes += res.get("notes", [])
    mism = [r for r in res["arrays"] if r.get("matches_summary") is False]
    if mism:
        notes.append("WARNING: totals differ from the run's summary.json for "
                     + ", ".join(f"{r['group']}/{r['array']}" for r in mism))
    return "\n\n".join([head + "\n" + t1,
                        "retention (how long each array must hold its state)\n" + t2,
                        "histogram: devices per bin of total pulses per device per sample\n" + t3,
                        "\n".join([line, *notes])])


def _plot(path: Path, res: dict) -> None:
    plt = files.require_matplotlib()
    rows = res["arrays"]
    edges = np.asarray(res["histogram_edges"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        c = np.asarray(r["histogram"]["counts"])
        if edges.size >= 2 and c.sum() > 0:
            ax.stairs(c, edges, label=f"{r['group']} {r['algorithm']} {r['array']}")
    ax.set_xscale("log")
    ax.set_xlabel("pulses per device per input sample")
    ax.set_ylabel("devices")
    ax.set_title(f"pulse distribution (endurance {res['endurance']:.2g} over {res['samples_projected']:g} samples)")
    if rows:
        ax.legend(fontsize=6)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
