"""One seed -> named, independent random streams.

A run has one integer ``seed``. ``numpy.random.SeedSequence(seed).spawn(n)`` gives
independent children; each purpose (device draw, pulse trains, noise, ...) owns one
child, picked by a fixed name -> index table, so adding a stream at the end never
changes the others. Sub-streams (one per layer, per array, per replica) spawn again
from their parent, by index.

Every stream is a ``numpy.random.Generator`` on PCG64; its state is a plain dict of
ints and can be written to JSON for checkpoints (:func:`generator_state`).
"""

from __future__ import annotations


import numpy as np

#: The named top-level streams, in spawn order. Append only: never reorder.
STREAM_NAMES: tuple[str, ...] = (
    "device",   # device-to-device parameter draw (construction)
    "pulses",   # stochastic pulse trains of the outer-product update
    "noise",    # cycle-to-cycle step noise, write noise, read/output noise
    "chopper",  # random chopper flips (c-TTv2)
    "data",     # data order, random inputs
    "init",     # weight initialisation, random targets
    "dropout",  # dropout masks
)


def stream_index(name: str) -> int:
    """Index of a named stream in :data:`STREAM_NAMES`."""
    try:
        return STREAM_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown random stream {name!r}; known: {', '.join(STREAM_NAMES)}") from None


def seed_sequence(seed: int, *path: str | int) -> np.random.SeedSequence:
    """The SeedSequence at ``path`` below the root ``SeedSequence(seed)``.

    ``seed_sequence(s, "device", 2)`` equals ``SeedSequence(s).spawn(7)[0].spawn(3)[2]``:
    a path element that is a string is a stream name, an int is a child index.
    Building the spawn key directly avoids spawning (and discarding) the siblings.
    """
    key: list[int] = []
    for part in path:
        if isinstance(part, str):
            key.append(stream_index(part))
        else:
            if int(part) < 0:
                raise ValueError("stream path indices must be >= 0")
            key.append(int(part))
    root = np.random.SeedSequence(int(seed))
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(key))


def generator(seed: int, *path: str | int) -> np.random.Generator:
    """A PCG64 ``Generator`` for the stream at ``path`` (see :func:`seed_sequence`)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *path)))


def seed_entropy(seed: int) -> int:
    """The root SeedSequence entropy (recorded in outputs for provenance)."""
    return int(np.random.SeedSequence(int(seed)).entropy)


def generator_state(gen: np.random.Generator) -> dict:
    """The JSON-serialisable state of a Generator (bit generator name + integers)."""
    return gen.bit_generator.state


def restore_generator(state: dict) -> np.random.Generator:
    """A Generator restored from :func:`generator_state` output."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError("not a PCG64 generator state")
    bg = np.random.PCG64()
    bg.state = state
    return np.random.Generator(bg)


def standard_normal(gen: np.random.Generator, n: int, dtype=np.float32) -> np.ndarray:
    """``n`` standard normal draws by the Box-Muller transform of ``dtype`` uniforms.

    Exactly N(0, 1) in distribution (up to the floating-point resolution of the
    uniforms: with float32 the tails are cut at sqrt(-2 ln 2^-24) = 5.8 sigma). About 3x
    faster than ``Generator.standard_normal`` for large n, which matters because every
    device pulse draws one number for its cycle-to-cycle noise. For n <= 32 the
    generator's own ziggurat sampler is used (fewer calls).
    """
    if n <= 0:
        return np.empty(0, dtype=dtype)
    if n <= 32:  # a handful of draws: one call of the library's own sampler is cheaper
        return gen.standard_normal(n, dtype=dtype)
    m = (n + 1) // 2
    u = gen.random(2 * m, dtype=dtype)
    # r = sqrt(-2 ln(1 - u1)), theta = 2 pi u2, in place in u (the same float operations)
    r, theta = u[:m], u[m:]
    np.negative(r, out=r)
    np.log1p(r, out=r)
    np.multiply(r, -2.0, out=r)
    np.sqrt(r, out=r)
    np.multiply(theta, 2.0 * np.pi, out=theta)
    out = np.empty(2 * m, dtype=dtype)
    np.cos(theta, out=out[:m])
    np.sin(theta, out=out[m:])
    np.multiply(out[:m], r, out=out[:m])
    np.multiply(out[m:], r, out=out[m:])
    return out[:n]
