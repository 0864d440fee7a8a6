"""``train``: the settings of a network training run.

Defaults that depend on the model and on the algorithm family live in the model
registry (:mod:`analogtrain.engine.nn.models`): the data set, batch size, learning rate,
gradient clipping and per-family algorithm settings (e.g. LeNet's transfer threshold).
Fields left unset (``None``) take them when the config is built, so the object holds the
values the run uses and ``TrainConfig(model="lenet", algorithm="agad")`` is the same run
as ``analogtrain train --model lenet --algorithm agad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import param
from analogtrain.config.io import IO_PRESETS
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError

DTYPES = ("float32", "float64")


def model_choices() -> tuple[str, ...]:
    from analogtrain.engine.nn.models import MODELS

    return tuple(MODELS)


def dataset_choices() -> tuple[str, ...]:
    from analogtrain.datasets import DATASETS

    return tuple(DATASETS)


def algorithm_choices() -> tuple[str, ...]:
    from analogtrain.engine.algorithms.registry import algorithm_names

    return algorithm_names()


def style_choices() -> tuple[str, ...]:
    from analogtrain.engine.algorithms.registry import STYLES

    return STYLES


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Train a network (fc3, LeNet, the 2-layer LSTM) with one training algorithm."""

    kind: ClassVar[str] = "train"
    section: ClassVar[str] = "train"
    tables: ClassVar[dict] = {"device": "device", "algorithm": "algo_sets"}
    paths: ClassVar[tuple] = ("data_dir",)

    model: str = param("fc3", "network", choices=model_choices)
    dataset: str | None = param(None, "data set (default: the model's, mnist for fc3/lenet, warpeace for lstm)",
                                choices=dataset_choices, nullable=True, default_doc="per model")
    algorithm: str = param("agad", "training algorithm", choices=algorithm_choices)
    epochs: int = param(10, "epochs", unit="epochs", ge=1, le=100000)
    batch_size: int | None = param(None, "mini-batch size (default: fc3 10, lenet 8, lstm 32)", unit="samples",
                                   ge=1, le=100000, nullable=True, default_doc="per model")
    lr: float | None = param(None, "learning rate (default per model and algorithm family: fc3 0.5, 0.1 for "
                                   "the transfer family; lenet 0.1, 0.05; lstm 0.1)", unit="1", gt=0.0, le=1e6,
                             nullable=True, default_doc="per model")
    lr_step: int = param(0, "multiply the learning rate by lr_gamma every lr_step epochs (0 = constant)",
                         unit="epochs", ge=0, le=100000)
    lr_gamma: float = param(0.5, "learning-rate decay factor", unit="1", gt=0.0, le=1.0)
    limit_train: int = param(0, "use only the first N training samples (LSTM: characters); 0 = all",
                             unit="samples", ge=0, le=10**9)
    limit_test: int = param(0, "use only the first N test samples (LSTM: characters); 0 = all", unit="samples",
                            ge=0, le=10**9)
    seed: int = param(0, "master seed (device draw, pulses, noise, data order, initialisation)", ge=0)
    io: str = param("preset", "forward/backward I/O of the analog arrays", choices=tuple(sorted(IO_PRESETS)))
    dtype: str = param("float32", "floating-point type of the arrays", choices=DTYPES)
    count_pulses: bool = param(False, "keep exact per-device up/down pulse counters")
    pulse_mode: str | None = param(None, "how the pulses of one update act on every analog array (docs/pulses.md "
                                         "§2.5-2.6): exact, aggregated (closed form per device), expected (mean "
                                         "field); unset: exact", choices=("exact", "aggregated", "expected"),
                                   nullable=True, default_doc="exact")
    grad_clip: float | None = param(None, "clip the global gradient norm to this value, 0 = off (default: lstm "
                                          "1.0, others 0)", unit="1", ge=0.0, le=1e9, nullable=True,
                                    default_doc="per model")
    dropout: float = param(0.2, "LSTM dropout between the layers", unit="1", ge=0.0, lt=1.0)
    seq_len: int = param(100, "LSTM sequence length", unit="characters", ge=1, le=100000)
    hidden: int = param(64, "LSTM hidden size", unit="units", ge=1, le=100000)
    algo_style: str = param("build-config", "default settings of the transfer algorithms: build-config "
                                            "(aihwkit build_config: fast_lr 0.1, A-update BL 5, chopper 0.1) or "
                                            "reramsb (the ReRamSB presets: fast_lr 0.5, BL 31, auto_granularity "
                                            "1000, chopper 0.01/0.02)", choices=style_choices)
    weight_scaling_omega: float = param(0.1, "map the largest initial weight of each layer to this device weight "
                                             "and scale the output digitally (aihwkit mapping); 0 = off",
                                        unit="weight", ge=0.0, le=1e3)
    data_dir: str | None = param(None, "data directory (one folder per data set); default: $ANALOGTRAIN_DATA, "
                                       "then the user cache", nullable=True, default_doc="$ANALOGTRAIN_DATA")
    verify_data: bool = param(True, "require the published SHA-256 of the data files")
    device: DeviceSpec = DeviceSpec()
    algo_sets: tuple = ()

    # ------------------------------------------------------------------ defaults
    def resolve_defaults(self) -> None:
        from analogtrain.engine.algorithms.registry import algorithm_spec
        from analogtrain.engine.nn.models import model_spec

        if not isinstance(self.model, str) or not isinstance(self.algorithm, str):
            return  # the type check names the field
        spec = model_spec(self.model)
        alg = algorithm_spec(self.algorithm, "train.algorithm")
        self._set("algorithm", alg.name)
        fam = spec.family_defaults.get(alg.family, {})
        if self.dataset is None:
            self._set("dataset", spec.datasets[0])
        if self.batch_size is None:
            self._set("batch_size", spec.batch_size)
        if self.grad_clip is None:
            self._set("grad_clip", spec.grad_clip)
        if self.lr is None:
            self._set("lr", fam.get("lr", spec.lr))
        sets = dict((str(k), v) for k, v in self.algo_sets)
        for k, v in fam.get("algo_sets", {}).items():
            sets.setdefault(k, v)
        self._set("algo_sets", tuple(sets.items()))

    def check(self) -> None:
        from analogtrain.datasets import dataset_spec
        from analogtrain.engine.nn.models import model_spec

        spec = model_spec(self.model)
        try:
            data = dataset_spec(self.dataset)
        except ConfigError as e:
            raise ConfigError(f"train.{e}", field="train.dataset") from None
        if data.name not in spec.datasets:
            shape = f" ({_shape(data.image_shape)} images)" if data.image_shape else ""
            raise ConfigError(f"train.dataset: model {self.model} does not train on dataset {self.dataset}{shape}; "
                              f"{self.model} trains on {' or '.join(spec.datasets)}", field="train.dataset")
        if spec.image_shape is not None and tuple(data.image_shape or ()) != spec.image_shape:
            raise ConfigError(f"train.dataset: model {self.model} needs {_shape(spec.image_shape)} images "
                              f"(dataset {self.dataset} has {_shape(data.image_shape)})", field="train.dataset")
        if not isinstance(self.device, DeviceSpec):
            raise ConfigError("train.device: expected a DeviceSpec", field="train.device")
        alg = self.algorithm_spec()
        for sc in self.device.scopes():
            if sc not in alg.arrays:
                raise ConfigError(f"device.{sc}.*: array scopes ({sc}.KEY) need an algorithm with an array {sc} "
                                  f"({self.algorithm} has {', '.join(alg.arrays) or 'no device arrays'})",
                                  field=f"device.{sc}")
        self.algorithm_config()
        self.devices()

    # ------------------------------------------------------------------ resolved parts
    def algorithm_spec(self):
        from analogtrain.engine.algorithms.registry import algorithm_spec

        return algorithm_spec(self.algorithm)

    def algorithm_config(self):
        """The algorithm's config: its style defaults with ``algo_sets`` applied."""
        return self.algorithm_spec().configure(self.algo_style, dict(self.algo_sets))

    def devices(self) -> dict[str, Any]:
        """The device config of each array of the algorithm (``{"W": ..., "A": ...}``)."""
        return {a: self.device.resolve(a) for a in self.algorithm_spec().arrays}

    def hash_fields(self) -> dict[str, Any]:
        """Everything that defines the numbers of the run: all but ``epochs`` and the data location."""
        d = self.to_dict()
        for k in ("epochs", "data_dir"):
            d["train"].pop(k, None)
        return d


def _shape(s) -> str:
    return "x".join(str(v) for v in s[-2:]) if s else "no"
