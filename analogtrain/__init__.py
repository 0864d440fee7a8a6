"""analogtrain: a NumPy reference simulator of analog in-memory DNN training.

The public API (see README, "Python API")::

    import analogtrain as at
    cfg = at.load_config("run.toml")      # any config that --print-config writes
    res = at.run(cfg)                     # res.to_dict() is exactly the --json object
    print(res.table())

Names are imported on first use, so that ``import analogtrain`` stays cheap and the
command line can pin BLAS threads before NumPy loads.

Layers (each importable on its own, none imports the CLI)::

    config -> engine (devices -> pulses -> tile -> algorithms -> nn) -> experiments, tools -> results -> cli
"""

from __future__ import annotations

import importlib
from typing import Any

from analogtrain._version import __version__

#: public name -> "module:attribute"
_API: dict[str, str] = {
    "load_config": "analogtrain.config.loader:load_config",
    "run": "analogtrain.api:run",
    "ConfigError": "analogtrain.errors:ConfigError",
    "InputError": "analogtrain.errors:InputError",
    "RunError": "analogtrain.errors:RunError",
    "NumericalError": "analogtrain.errors:NumericalError",
    "AnalogTrainError": "analogtrain.errors:AnalogTrainError",
    "ProgramConfig": "analogtrain.config.program:ProgramConfig",
    "TrainConfig": "analogtrain.config.train:TrainConfig",
    "CharacteriseConfig": "analogtrain.config.characterise:CharacteriseConfig",
    "FitConfig": "analogtrain.config.fit:FitConfig",
    "ToyConfig": "analogtrain.config.toy:ToyConfig",
    "EstimateConfig": "analogtrain.config.estimate:EstimateConfig",
    "EnduranceConfig": "analogtrain.config.endurance:EnduranceConfig",
    "DeviceSpec": "analogtrain.config.device_spec:DeviceSpec",
    "Result": "analogtrain.results.base:Result",
    "ALGORITHMS": "analogtrain.engine.algorithms.registry:ALGORITHMS",
    "MODELS": "analogtrain.engine.nn.models:MODELS",
    "DATASETS": "analogtrain.datasets.registry:DATASETS",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    try:
        mod, attr = _API[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'analogtrain' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(mod), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
