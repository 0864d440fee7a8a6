"""Shared test fixtures.

The real data sets (MNIST, War and Peace, 8x8 digits) are never part of the project;
tests that need them look in ``$ANALOGTRAIN_SHARED_DATA`` (default: ``../shared/data``
next to the repository) and skip with a reason when the files are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("ANALOGTRAIN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    d = shared_data_dir()
    if not (d / "mnist").is_dir() and not (d / "warpeace").is_dir():
        pytest.skip(f"real data sets not found in {d} (set ANALOGTRAIN_SHARED_DATA)")
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
