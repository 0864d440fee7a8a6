"""The result of a run: data that renders itself and writes its own files.

Every ``run(config)`` returns a :class:`Result` subclass. Its contract:

* ``to_dict()`` - the JSON object (exactly what ``--json`` prints and what ``summary.json``
  holds): the provenance block, ``config`` (the resolved run config, loadable by
  ``analogtrain.load_config``), then the run's own results (:meth:`Result.body`);
* ``table()`` - the plain-text report the command prints by default;
* ``arrays()`` - the internal arrays for ``arrays.npz``, named by :mod:`analogtrain.results.arrays`
  (empty for runs without arrays);
* ``write(dir)`` - ``summary.json``, ``config.toml``, ``arrays.npz`` (when there are arrays)
  and the run's own files (:meth:`Result.extra_files`), each written atomically;
* ``plot(path)`` - a figure, where the run has one (needs the optional matplotlib extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from analogtrain.errors import InputError
from analogtrain.results import files
from analogtrain.results.provenance import now, provenance
from analogtrain.results.render import to_toml


class Result:
    """Base class; subclasses set ``kind`` and implement :meth:`body` and :meth:`table`."""

    kind: ClassVar[str] = ""
    #: the command name in provenance (``"device"``, ``"program"``, ...)
    command: ClassVar[str] = ""

    config: Any
    argv: list[str] | None = None
    created: str | None = None

    # ------------------------------------------------------------------ the JSON object
    def provenance(self) -> dict[str, Any]:
        cfg = self.config.to_dict()
        return provenance(self.command or self.kind, cfg, getattr(self.config, "seed", None), self.argv,
                          created=self.created or now())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the run (see the module docstring)."""
        return {**self.provenance(), "config": self.config.to_dict(), **self.body()}

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def table(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ files
    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def extra_files(self) -> dict[str, Callable[[Path], None]]:
        """The run's own files: name -> function writing it (atomically) to the given path."""
        return {}

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write every output file into ``out_dir`` (created if needed); returns the paths."""
        out = files.prepare_out_dir(out_dir)
        written = []
        for name, writer in self.extra_files().items():
            writer(out / name)
            written.append(out / name)
        arrays = self.arrays()
        if arrays:
            files.write_npz(out / "arrays.npz", arrays)
            written.append(out / "arrays.npz")
        files.write_text(out / "config.toml", self.config_toml())
        files.write_json(out / "summary.json", self.to_dict())
        written += [out / "config.toml", out / "summary.json"]
        return written

    def config_toml(self) -> str:
        return to_toml(self.config.to_dict(), header=f"analogtrain {self.command or self.kind}: resolved config")

    def plot(self, path: str | Path) -> None:
        raise InputError(f"--plot: {self.command or self.kind} has no plot")
