"""The base of every run config: one frozen dataclass per kind of run, validated when built.

A run config declares its fields with :func:`~analogtrain.config.fields.param` (doc, unit,
range, aliases, default). Building one (from Python, a TOML file or command-line flags,
see :mod:`analogtrain.config.loader`) runs, in this order:

1. :meth:`RunConfig.resolve_defaults` - fields left at ``None`` that have a derived
   default (the model's batch size, the device's number of pulses, ...) get it from the
   registries, so the object always holds the values the run will use;
2. type and range checks of every declared field (:func:`~analogtrain.config.fields.validate`);
3. :meth:`RunConfig.check` - the checks that involve several fields or the registries.

So an invalid run config cannot exist, and a library user gets exactly the run the
command line gives for the same settings.

The TOML form (what ``--print-config`` prints and ``--out`` saves as ``config.toml``) is
``kind = "..."``, the run's own table (``[program]``, ``[train]``, ...) and the tables
listed in :attr:`RunConfig.tables` (``[device]``, ``[algorithm]``, ``[sweep]``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Mapping

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import check_types, validate


class RunConfig:
    """Mixin base of the frozen run-config dataclasses (see the module docstring).

    Class attributes:

    * ``kind`` - the run kind (``"program"``, ``"train"``, ...), the ``kind`` key of its TOML;
    * ``section`` - the TOML table holding its own fields;
    * ``tables`` - other TOML tables -> the field they fill: ``{"device": "device",
      "algorithm": "algo_sets", "sweep": "sweep"}``; a ``device`` field is a
      :class:`DeviceSpec`, the others are tuples of ``(key, value)`` pairs;
    * ``virtual`` - keys that are not fields but set fields: name -> function
      ``(value, where) -> {field: value}`` (e.g. ``size = "20x30"``);
    * ``paths`` - fields holding file or directory paths (made absolute when loaded).
    """

    kind: ClassVar[str] = ""
    section: ClassVar[str] = ""
    tables: ClassVar[Mapping[str, str]] = {}
    virtual: ClassVar[Mapping[str, Callable[[Any, str], dict]]] = {}
    paths: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.resolve_defaults()
        check_types(self, self.section)
        validate(self, self.section)
        self.check()

    # ---------------------------------------------------------------- hooks
    def resolve_defaults(self) -> None:
        """Fill derived defaults (``self._set(name, value)``); the default does nothing."""

    def check(self) -> None:
        """Checks across fields and registries (raise ConfigError); the default does nothing."""

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- conversion
    def replace(self, **changes: Any):
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The TOML/JSON form: ``{"kind": ..., section: {...}, "device": {...}, ...}``.

        Tuples become lists, ``None`` values are left out (TOML has no null; a missing key
        means "the default"), so ``load_config(cfg.to_dict()) == cfg``.
        """
        own: dict[str, Any] = {}
        out: dict[str, Any] = {"kind": self.kind}
        table_of = {f: t for t, f in self.tables.items()}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in table_of:
                t = table_of[f.name]
                if isinstance(v, DeviceSpec):
                    out[t] = v.to_table()
                elif v:
                    out[t] = {k: (list(x) if isinstance(x, tuple) else x) for k, x in v}
                continue
            if v is None:
                continue
            own[f.name] = list(v) if isinstance(v, tuple) else v
        out[self.section] = own
        order = ["kind", self.section, *[t for t in self.tables if t in out]]
        return {k: out[k] for k in order if k in out}

    def hash_fields(self) -> dict[str, Any]:
        """The fields that define the numbers of a run (for resume checks); all by default."""
        return self.to_dict()
