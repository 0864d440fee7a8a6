"""Golden-reference comparison: recompute a recorded result and compare it with tolerances.

:func:`recompute` runs a recorded result again from the run config it carries (its
``config`` block names the kind and holds every setting, paths absolute, so this works
from any directory). :func:`compare_json` and :func:`compare_arrays` walk two JSON trees
and two sets of arrays. Integers and
booleans (pulse counts, sample counts, flags) must be equal; floats must satisfy
``|a - b| <= atol + rtol |b|``; strings must be equal; NaN matches NaN. Keys that
describe the run rather than its result (timestamps, wall times, versions, platform)
are skipped. Returns the list of differences, worst first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: keys that are not results: times, versions, the machine, the run's own arguments
VOLATILE_KEYS = frozenset({"created", "wall_s", "seconds", "seconds_per_step", "seconds_per_epoch",
                           "platform", "python_version", "numpy_version", "analogtrain_version", "rerun_args",
                           "blas_threads", "data_dir", "samples_per_s", "ms_per_sample", "resumed_from_epoch"})


@dataclass
class Difference:
    path: str
    golden: Any
    new: Any
    abs_diff: float
    rel_diff: float
    kind: str            # 'value', 'type', 'missing', 'extra', 'shape'

    @property
    def score(self) -> float:
        return math.inf if self.kind != "value" else self.rel_diff


def recompute(golden: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON object, the arrays) of a fresh run of the config recorded in ``golden``."""
    from analogtrain.api import run
    from analogtrain.config.loader import load_config
    from analogtrain.results.render import to_jsonable

    res = run(load_config(golden["config"]))
    return to_jsonable(res.to_dict()), {k: np.asarray(v) for k, v in res.arrays().items()}


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare_json(golden: Any, new: Any, rtol: float, atol: float, path: str = "") -> list[Difference]:
    diffs: list[Difference] = []
    if isinstance(golden, dict) and isinstance(new, dict):
        for k in golden:
            if k in VOLATILE_KEYS or k.endswith("_s"):
                continue
            p = f"{path}.{k}" if path else str(k)
            if k not in new:
                diffs.append(Difference(p, golden[k], None, math.inf, math.inf, "missing"))
            else:
                diffs += compare_json(golden[k], new[k], rtol, atol, p)
        for k in new:
            if k not in golden and k not in VOLATILE_KEYS and not k.endswith("_s"):
                diffs.append(Difference(f"{path}.{k}" if path else str(k), None, new[k], math.inf, math.inf, "extra"))
        return diffs
    if isinstance(golden, list) and isinstance(new, list):
        if len(golden) != len(new):
            return [Difference(path, f"list of {len(golden)}", f"list of {len(new)}", math.inf, math.inf, "shape")]
        for i, (a, b) in enumerate(zip(golden, new)):
            diffs += compare_json(a, b, rtol, atol, f"{path}[{i}]")
        return diffs
    if isinstance(golden, bool) or isinstance(new, bool) or (isinstance(golden, int) and isinstance(new, int)):
        if golden != new:
            d = abs(golden - new) if _num(golden) and _num(new) else math.inf
            diffs.append(Difference(path, golden, new, d, math.inf, "value"))
        return diffs
    if _num(golden) and _num(new):
        if not _close(float(golden), float(new), rtol, atol):
            ad = abs(golden - new)
            diffs.append(Difference(path, golden, new, ad, ad / max(abs(golden), 1e-300), "value"))
        return diffs
    if golden is None and new is None:
        return diffs
    if type(golden) is not type(new):
        return [Difference(path, golden, new, math.inf, math.inf, "type")]
    if golden != new:
        diffs.append(Difference(path, golden, new, math.inf, math.inf, "value"))
    return diffs


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= atol + rtol * abs(a)


def compare_arrays(golden: dict[str, np.ndarray], new: dict[str, np.ndarray], rtol: float,
                   atol: float) -> list[Difference]:
    diffs: list[Difference] = []
    for name, a in golden.items():
        if name not in new:
            diffs.append(Difference(f"arrays.{name}", list(a.shape), None, math.inf, math.inf, "missing"))
            continue
        b = new[name]
        if a.shape != b.shape:
            diffs.append(Difference(f"arrays.{name}", list(a.shape), list(b.shape), math.inf, math.inf, "shape"))
            continue
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            bad = a != b
            if bad.any():
                k = int(np.flatnonzero(bad.ravel())[0])
                diffs.append(Difference(f"arrays.{name}[{k}] ({int(bad.sum())} differ)", a.ravel()[k].item(),
                                        b.ravel()[k].item(), float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()),
                                        math.inf, "value"))
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        nan_a, nan_b = np.isnan(a64), np.isnan(b64)
        ok = (np.abs(a64 - b64) <= atol + rtol * np.abs(a64)) | (nan_a & nan_b)
        if not ok.all():
            err = np.where(ok, 0.0, np.abs(a64 - b64))
            err = np.where(np.isnan(err), np.inf, err)
            k = int(np.argmax(err.ravel()))
            rel = float(err.ravel()[k] / max(abs(a64.ravel()[k]), 1e-300)) if np.isfinite(err.ravel()[k]) else math.inf
            diffs.append(Difference(f"arrays.{name}[{k}] ({int((~ok).sum())} differ)", float(a64.ravel()[k]),
                                    float(b64.ravel()[k]), float(err.ravel()[k]), rel, "value"))
    for name in new:
        if name not in golden:
            diffs.append(Difference(f"arrays.{name}", None, list(new[name].shape), math.inf, math.inf, "extra"))
    return diffs


def worst_first(diffs: list[Difference]) -> list[Difference]:
    return sorted(diffs, key=lambda d: (-(d.score if d.score == d.score else math.inf), d.path))
