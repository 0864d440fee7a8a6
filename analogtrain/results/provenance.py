"""Provenance: what every JSON output records about how it was made."""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Sequence

import numpy as np

from analogtrain._version import __version__
from analogtrain.results.render import config_hash

#: version of the output schema; 2: the ``config`` block is the loadable run config
#: (``kind`` + tables), program/train arrays are named by ``results.arrays``
SCHEMA_VERSION = 2


def provenance(command: str, config: dict, seed: int | None, argv: Sequence[str] | None = None,
               created: str | None = None) -> dict[str, Any]:
    """The provenance block of every JSON output: schema version, versions of analogtrain,
    NumPy and Python, the platform, the command (run kind), ``rerun_args`` (the command
    line without display options, when run from the CLI; None from Python), the BLAS
    thread setting, the seed and its SeedSequence entropy, the hash of the resolved config
    and the creation time (UTC)."""
    from analogtrain.seeding import seed_entropy

    return {
        "schema_version": SCHEMA_VERSION,
        "analogtrain_version": __version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(terse=True),
        "command": command,
        "rerun_args": list(argv) if argv is not None else None,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "seed": seed,
        "seed_entropy": seed_entropy(seed) if seed is not None else None,
        "config_hash": config_hash(config),
        "created": created or now(),
    }


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
