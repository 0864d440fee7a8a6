"""Seeding: one seed -> named, independent, reproducible streams (analogtrain.seeding)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analogtrain import seeding
from analogtrain.seeding import (STREAM_NAMES, generator, generator_state, restore_generator, seed_entropy,
                                 seed_sequence, standard_normal, stream_index)


def _same_sequence(a: np.random.SeedSequence, b: np.random.SeedSequence) -> bool:
    return np.array_equal(a.generate_state(8), b.generate_state(8))


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**40 + 7])
def test_seed_sequence_path_equals_spawn_children(seed):
    root = np.random.SeedSequence(seed)
    children = root.spawn(len(STREAM_NAMES))
    for name in STREAM_NAMES:
        assert _same_sequence(seed_sequence(seed, name), children[stream_index(name)])
    # the docstring's example: seed_sequence(s, "device", 2) == SeedSequence(s).spawn(7)[0].spawn(3)[2]
    dev = np.random.SeedSequence(seed).spawn(7)[0]
    grandchildren = dev.spawn(3)
    assert _same_sequence(seed_sequence(seed, "device", 2), grandchildren[2])
    assert _same_sequence(seed_sequence(seed, "device", 0), np.random.SeedSequence(seed).spawn(7)[0].spawn(1)[0])
    # an int path element at the top level is a child index
    assert _same_sequence(seed_sequence(seed, 3), children[3])
    # the root itself
    assert _same_sequence(seed_sequence(seed), np.random.SeedSequence(seed))


def test_generator_is_pcg64_on_that_sequence():
    g = generator(7, "noise")
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(7).spawn(7)[stream_index("noise")]))
    assert isinstance(g.bit_generator, np.random.PCG64)
    assert np.array_equal(g.random(100), ref.random(100))


def test_stream_names_are_stable():
    # append-only table: reordering would silently change every stored result
    assert STREAM_NAMES[:7] == ("device", "pulses", "noise", "chopper", "data", "init", "dropout")
    assert stream_index("pulses") == 1
    with pytest.raises(KeyError, match="unknown random stream"):
        stream_index("nosuch")
    with pytest.raises(ValueError):
        seed_sequence(0, "device", -1)


def test_same_seed_same_draws_different_seed_different():
    a = generator(3, "device", 0).standard_normal(1000)
    b = generator(3, "device", 0).standard_normal(1000)
    c = generator(4, "device", 0).standard_normal(1000)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_different_streams_are_uncorrelated():
    n = 40_000
    streams_ = [generator(5, "device", 0), generator(5, "noise"), generator(5, "device", 1), generator(5, "pulses")]
    draws = [g.standard_normal(n) for g in streams_]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not np.array_equal(draws[i], draws[j])
            r = np.corrcoef(draws[i], draws[j])[0, 1]
            # the sample correlation of independent normals has SE 1/sqrt(n) = 0.005; 5 SE = 0.025
            assert abs(r) < 5 / np.sqrt(n), (i, j, r)


def test_generator_state_round_trip_through_json():
    g = generator(9, "pulses")
    g.random(17)
    state = json.loads(json.dumps(generator_state(g)))
    expected = g.random(50)
    h = restore_generator(state)
    assert np.array_equal(h.random(50), expected)
    with pytest.raises(ValueError):
        restore_generator({"bit_generator": "MT19937"})


def test_seed_entropy():
    assert seed_entropy(42) == np.random.SeedSequence(42).entropy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standard_normal_is_standard_normal(dtype):
    n = 200_001  # odd: exercises the half-pair at the end
    z = standard_normal(generator(1, "noise"), n, dtype=dtype)
    assert z.shape == (n,) and z.dtype == dtype
    assert np.all(np.isfinite(z))
    # mean: SE = 1/sqrt(n) = 0.0022; std: SE = 1/sqrt(2n) = 0.0016; kurtosis 3: SE = sqrt(24/n) = 0.011.
    # tolerances are 5 SE (seeded, so the outcome is fixed; 5 SE leaves room for any seed)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * n)
    kurt = np.mean((z - z.mean()) ** 4) / z.var() ** 2
    assert abs(kurt - 3) < 5 * np.sqrt(24 / n)
    # P(|z| > 2) = 0.0455; binomial SE sqrt(p(1-p)/n) = 0.00047
    frac = np.mean(np.abs(z) > 2)
    assert abs(frac - 0.0455) < 5 * np.sqrt(0.0455 * 0.9545 / n)
    assert standard_normal(generator(1, "noise"), 0).size == 0
    assert np.array_equal(standard_normal(generator(2, "noise"), 7, dtype),
                          standard_normal(generator(2, "noise"), 7, dtype))


def test_module_exports():
    assert callable(seeding.generator)
