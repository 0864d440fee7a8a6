"""The kinds of run: one entry per kind, the only place that lists them.

Each kind has one config class (what ``load_config`` builds, what ``--print-config``
writes with ``kind = "..."``) and one runner (``run(config, ...) -> Result``). Both are
named as ``"module:attribute"`` and imported on use. Adding a kind of run: its config
module, its runner, its result class, one entry here and one CLI command.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple


class Kind(NamedTuple):
    config: str      # "module:ConfigClass"
    runner: str      # "module:function"
    doc: str


KINDS: dict[str, Kind] = {
    "device": Kind("analogtrain.config.characterise:CharacteriseConfig", "analogtrain.experiments.characterise:run",
                   "characterise a device: pulse response, symmetry point, states"),
    "fit": Kind("analogtrain.config.fit:FitConfig", "analogtrain.tools.fit:run",
                "fit device models to a measured pulse response"),
    "program": Kind("analogtrain.config.program:ProgramConfig", "analogtrain.experiments.program:run",
                    "program a linear layer to a target (paper Fig. 4), a grid of cells"),
    "toy": Kind("analogtrain.config.toy:ToyConfig", "analogtrain.experiments.toy:run",
                "the constant-gradient toy (paper Fig. 3)"),
    "train": Kind("analogtrain.config.train:TrainConfig", "analogtrain.experiments.train:run",
                  "train a network on a data set"),
    "estimate": Kind("analogtrain.config.estimate:EstimateConfig", "analogtrain.tools.estimate:run",
                     "the update-time model"),
    "endurance": Kind("analogtrain.config.endurance:EnduranceConfig", "analogtrain.tools.endurance:run",
                      "pulses per device, endurance and retention"),
}


def _load(ref: str) -> Any:
    mod, name = ref.split(":")
    return getattr(importlib.import_module(mod), name)


def kind_entry(kind: str) -> Kind:
    from analogtrain.errors import ConfigError

    if kind not in KINDS:
        raise ConfigError(f"kind: unknown run kind {kind!r}; must be one of {', '.join(KINDS)}", field="kind")
    return KINDS[kind]


def config_class(kind: str) -> type:
    """The config class of a run kind; ConfigError naming ``kind`` otherwise."""
    return _load(kind_entry(kind).config)


def runner(kind: str):
    """The run function of a run kind."""
    return _load(kind_entry(kind).runner)
