"""The public Python API: load a run config, run it, get a result.

::

    import analogtrain as at
    cfg = at.load_config("run.toml")          # the TOML that --print-config writes
    res = at.run(cfg)                         # a Result: .to_dict(), .table(), .write(dir)
    cfg = at.ProgramConfig(algorithm=("agad",), steps=2000, seeds=1)   # or build one in Python

Every kind of run has one config class (``at.ProgramConfig``, ``at.TrainConfig``,
``at.CharacteriseConfig``, ``at.FitConfig``, ``at.ToyConfig``, ``at.EstimateConfig``,
``at.EnduranceConfig``) and one runner (see :mod:`analogtrain.kinds`); ``run`` picks the
runner by the config's ``kind``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analogtrain.kinds import runner


def run(config, out_dir: str | Path | None = None, **options: Any):
    """Run ``config`` and return its result.

    ``out_dir`` writes every output file there (``result.write(out_dir)``; a training run
    also writes its metrics and checkpoints while it runs). ``options`` go to the runner
    (``progress`` for program and train, ``resume`` for train).
    """
    kind = getattr(config, "kind", None)
    fn = runner(kind)
    if kind == "train":
        res = fn(config, out_dir=out_dir, **options)
    else:
        res = fn(config, **options)
    if out_dir is not None:
        res.write(out_dir)
    return res
