"""AnalogTile: the apply-pulses entry (distinct devices and time-ordered sequences, counters,
write noise), programming and direct weight changes, decay, diffusion, state round trip,
reproducibility, dtypes. The pulsed update that drives the tile is tested in
tests/engine/algorithms/test_pulsed_update.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from analogtrain.config import (ConstantStepDevice, IOConfig, SoftBoundsDevice, resolve_device)
from analogtrain.engine.algorithms.pulsed_update import sample_update
from analogtrain.seeding import generator, restore_generator, generator_state, standard_normal
from analogtrain.engine.tile import AnalogTile
from analogtrain.results.arrays import tile_arrays


def make_tile(cfg, out=4, inp=5, R=2, seed=0, dtype=np.float32, **kw):
    return AnalogTile(cfg, out, inp, n_replicas=R, rng_device=[generator(seed, "device", r) for r in range(R)],
                      rng_pulses=generator(seed, "pulses"), rng_noise=generator(seed, "noise"), dtype=dtype, **kw)


def random_steps(n, R=2, out=4, inp=5, seed=9):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(R, inp)), rng.normal(size=(R, out)) * 0.3) for _ in range(n)]


EXACT = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=100.0,
                           w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)


def test_pulse_counters_equal_applied_pulses():
    cfg = resolve_device(preset="softbounds")
    t = make_tile(cfg, count_pulses=True)
    total = 0
    for x, d in random_steps(20):
        before = t.up_count.sum() + t.down_count.sum()
        n = sample_update(t, x, d, 0.05)
        assert n == t.up_count.sum() + t.down_count.sum() - before
        total += n
    assert total > 0
    assert t.up_count.min() >= 0 and t.down_count.min() >= 0
    arrs = tile_arrays(t)
    assert arrs["up_pulses"] is t.up_count and arrs["down_pulses"] is t.down_count


def test_apply_pulses_counters_distinct_and_sequences():
    """Counters per device and direction; a sequence may name a device several times."""
    t = make_tile(EXACT, count_pulses=True, dtype=np.float64)     # (2, 4, 5): flat = (r 4 + i) 5 + j
    assert t.apply_pulses(np.array([0, 27, 13]), np.array([2, 1, 4]), np.array([True, False, True]),
                          distinct=True) == 7
    assert t.up_count[0, 0, 0] == 2 and t.down_count[1, 1, 2] == 1 and t.up_count[0, 2, 3] == 4
    assert t.up_count.sum() + t.down_count.sum() == 7
    n = t.apply_pulses(np.array([5, 5, 7, 5]), np.array([1, 2, 3, 4]), np.array([True, False, True, True]))
    assert n == 10
    assert t.up_count[0, 1, 0] == 5 and t.down_count[0, 1, 0] == 2 and t.up_count[0, 1, 2] == 3
    assert t.up_count.sum() + t.down_count.sum() == 17
    np.testing.assert_allclose(t.w, (t.up_count - t.down_count) * 0.01, atol=1e-12)
    empty = np.zeros(0, dtype=np.int64)
    assert t.apply_pulses(empty, empty, empty.astype(bool)) == 0


@pytest.mark.parametrize("preset", ["softbounds", "reram-es"])
def test_apply_pulses_sequence_equals_successive_calls(preset):
    """One sequence call (devices repeated, directions changing) equals one call per sample in
    time order (no cycle-to-cycle noise: the noise order is the only difference; reram-es has
    no signed rule and runs both rules per round)."""
    cfg = resolve_device(preset=preset, sets=[("dw_min_std", "0"), ("write_noise_std", "0")])
    rng = np.random.default_rng(4)
    w0 = rng.uniform(-0.3, 0.3, (2, 4, 5))
    samples = []
    for _ in range(6):
        flat = rng.choice(40, size=15, replace=False)
        samples.append((flat, rng.integers(1, 4, size=15), rng.random(15) < 0.5))
    a, b = make_tile(cfg, dtype=np.float64, count_pulses=True), make_tile(cfg, dtype=np.float64, count_pulses=True)
    a.set_weights(w0)
    b.set_weights(w0)
    for flat, cnt, up in samples:
        a.apply_pulses(flat, cnt, up, distinct=True)
    b.apply_pulses(*(np.concatenate(v) for v in zip(*samples)))
    np.testing.assert_allclose(a.w, b.w, rtol=0, atol=1e-12)
    assert np.array_equal(a.up_count, b.up_count) and np.array_equal(a.down_count, b.down_count)


@pytest.mark.parametrize("distinct", [True, False])
def test_write_noise_of_touched_devices(distinct):
    """Every touched device gets one fresh write-noise draw after its pulses: in entry order for
    distinct devices, by flat index for sequences (without c2c noise these are the only draws)."""
    cfg = SoftBoundsDevice(dw_min=0.01, write_noise_std=3.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    t = make_tile(cfg, R=1, dtype=np.float64)
    flat = np.array([7, 2, 11]) if distinct else np.array([7, 2, 7, 11, 2])
    cnt = np.ones(flat.size, dtype=np.int64)
    noise_before = t.w - t.w_persistent
    rng = restore_generator(generator_state(t.rng_noise))
    t.apply_pulses(flat, cnt, np.ones(flat.size, dtype=bool), distinct=distinct)
    touched = flat if distinct else np.unique(flat)
    draws = standard_normal(rng, touched.size, np.float64)
    noise = (t.w - t.w_persistent).reshape(-1)
    np.testing.assert_allclose(noise[touched], 0.03 * draws, rtol=1e-12, atol=1e-15)
    others = np.setdiff1d(np.arange(t.w.size), touched)
    assert np.array_equal(noise[others], noise_before.reshape(-1)[others])


def test_add_weights_is_exact_and_clipped():
    """W <- clip(W + delta) on the noise-free weights, no pulses, fresh write noise everywhere."""
    cfg = SoftBoundsDevice(dw_min=0.01, write_noise_std=3.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                           w_max=1.0, w_min=-1.0)
    t = make_tile(cfg, R=1, dtype=np.float64, count_pulses=True)
    t.set_weights(0.5)
    noise_before = t.w - t.w_persistent
    delta = np.zeros(t.shape)
    delta[0, 0, :] = [0.25, -0.125, 0.75, -2.0, 0.0]
    t.add_weights(delta)
    np.testing.assert_array_equal(t.w_persistent[0, 0], [0.75, 0.375, 1.0, -1.0, 0.5])
    np.testing.assert_array_equal(t.w_persistent[0, 1:], 0.5)
    assert not np.any((t.w - t.w_persistent) == noise_before)
    assert not t.up_count.any() and not t.down_count.any()


def test_set_weights_clips_to_physical_bounds():
    cfg = resolve_device(preset="softbounds", sets=[("reference_std", "0.2")])
    t = make_tile(cfg, dtype=np.float64)
    p = t.device.p
    t.set_weights(10.0)
    np.testing.assert_allclose(t.w, p["w_max"] - p["ref"], atol=1e-12)
    np.testing.assert_allclose(t.physical(), p["w_max"], atol=1e-12)
    t.set_weights(-10.0)
    np.testing.assert_allclose(t.physical(), p["w_min"], atol=1e-12)
    w = np.random.default_rng(0).uniform(-0.3, 0.3, size=t.shape)
    t.set_weights(w)
    inside = (w + p["ref"] <= p["w_max"]) & (w + p["ref"] >= p["w_min"])
    np.testing.assert_allclose(t.w[inside], w[inside], atol=1e-12)
    assert t.get_weights() is not t.w


def test_write_noise_std():
    """visible = persistent + N(0, (write_noise_std dw_min)^2), redrawn on every write.
    200x200 devices: SE of the std is std/283, of the mean std/200; tolerance 5 SE."""
    cfg = SoftBoundsDevice(dw_min=0.01, write_noise_std=3.0, dw_min_std=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    t = make_tile(cfg, out=200, inp=200, R=1, dtype=np.float64)
    sd = 3.0 * 0.01
    assert t.w_persistent is not None
    t.set_weights(0.1)
    np.testing.assert_allclose(t.w_persistent, 0.1, atol=1e-12)
    noise1 = t.w - t.w_persistent
    n = noise1.size
    assert abs(noise1.mean()) < 5 * sd / np.sqrt(n)
    assert abs(noise1.std() - sd) < 5 * sd / np.sqrt(2 * n)
    # a down pulse on every device of columns < 100: they get fresh noise, the others keep theirs
    flat = np.flatnonzero(np.arange(t.w.size) % 200 < 100)
    t.apply_pulses(flat, np.ones(flat.size, dtype=np.int64), np.zeros(flat.size, dtype=bool), distinct=True)
    noise2 = t.w - t.w_persistent
    touched = t.w_persistent != 0.1
    assert touched[:, :, :100].mean() > 0.5 and not touched[:, :, 100:].any()
    assert np.array_equal(noise2[~touched], noise1[~touched])
    fresh = noise2[touched]
    assert abs(np.corrcoef(fresh, noise1[touched])[0, 1]) < 5 / np.sqrt(fresh.size)
    assert abs(fresh.std() - sd) < 5 * sd / np.sqrt(2 * fresh.size)
    # pulses act on the persistent weight: the noise-free physical state moved down from 0.1
    assert np.all(t.w_persistent[touched] < 0.1)


def test_decay_towards_reset():
    """lifetime L: g <- (g - reset_bias)(1 - 1/L) + reset_bias per decay call."""
    cfg = ConstantStepDevice(lifetime=10.0, reset=0.2, w_max_dtod=0.0, w_min_dtod=0.0)
    t = make_tile(cfg, dtype=np.float64)
    w0 = np.random.default_rng(1).uniform(-0.5, 0.5, size=t.shape)
    t.set_weights(w0)
    for k in range(1, 4):
        t.decay()
        np.testing.assert_allclose(t.w, (w0 - 0.2) * 0.9 ** k + 0.2, atol=1e-12)
    for _ in range(300):
        t.decay()
    np.testing.assert_allclose(t.w, 0.2, atol=1e-9)
    # no lifetime: no decay
    t2 = make_tile(ConstantStepDevice(), dtype=np.float64)
    t2.set_weights(w0)
    t2.decay()
    assert np.array_equal(t2.w, np.clip(w0, t2.device.p["w_min"], t2.device.p["w_max"]))


def test_decay_with_subtracted_symmetry_point_goes_to_read_zero():
    """With subtract_symmetry_point the reset bias is the SP: the physical state decays to the SP,
    i.e. the read weight w = g - ref (ref = SP) decays to 0: w <- 0.9 w."""
    cfg = resolve_device(preset="softbounds", sets=[("up_down", "0.2"), ("lifetime", "10")])
    t = make_tile(cfg, dtype=np.float64)
    assert np.abs(t.device.p["sp"]).mean() > 0.05
    w0 = np.random.default_rng(2).uniform(-0.3, 0.3, size=t.shape)
    t.set_weights(w0)
    w0 = t.get_weights()
    t.decay()
    np.testing.assert_allclose(t.w, 0.9 * w0, atol=1e-12)


def test_diffusion():
    """g += diffusion xi: std of one step = diffusion (200x200: SE std/283, tolerance 5 SE)."""
    cfg = ConstantStepDevice(diffusion=0.01, w_max_dtod=0.0, w_min_dtod=0.0)
    t = make_tile(cfg, out=200, inp=200, R=1, dtype=np.float64)
    t.diffuse()
    assert abs(t.w.std() - 0.01) < 5 * 0.01 / np.sqrt(2 * t.w.size)


def _trajectory(t, steps, lr=0.05):
    out = []
    for x, d in steps:
        sample_update(t, x, d, lr)
        out.append(t.get_weights())
        out.append(t.forward(x))
    return out


@pytest.mark.parametrize("preset", ["softbounds", "reram-sb"])
def test_state_round_trip_reproduces_trajectory(preset):
    """state() -> load_state() continues bit for bit (also into a fresh tile of the same config).
    reram-sb has write noise (persistent weights) and c2c noise."""
    cfg = resolve_device(preset=preset)
    io = IOConfig()
    t = make_tile(cfg, count_pulses=True, io=io)
    steps = random_steps(15)
    _trajectory(t, steps[:5])
    saved = copy.deepcopy(t.state())
    ref = _trajectory(t, steps[5:])
    t.load_state(*copy.deepcopy(saved))
    again = _trajectory(t, steps[5:])
    for a, b in zip(ref, again):
        assert np.array_equal(a, b)
    fresh = make_tile(cfg, count_pulses=True, io=io, seed=0)
    fresh.load_state(*copy.deepcopy(saved))
    for a, b in zip(ref, _trajectory(fresh, steps[5:])):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        make_tile(cfg, out=3, count_pulses=True).load_state(*saved)


def test_state_is_a_snapshot():
    cfg = resolve_device(preset="softbounds")
    t = make_tile(cfg, count_pulses=True)
    steps = random_steps(10)
    _trajectory(t, steps[:5])
    arrays, rng_states = t.state()
    w_at_save = t.get_weights()
    ref = _trajectory(t, steps[5:])
    t.load_state(arrays, rng_states)
    assert np.array_equal(t.w, w_at_save)
    for a, b in zip(ref, _trajectory(t, steps[5:])):
        assert np.array_equal(a, b)


def test_same_seed_same_weights_after_50_updates():
    cfg = resolve_device(preset="softbounds", sets=[("reference_std", "0.1")])
    steps = random_steps(50)
    a = make_tile(cfg, seed=3)
    b = make_tile(cfg, seed=3)
    c = make_tile(cfg, seed=4)
    for t in (a, b, c):
        _trajectory(t, steps)
    assert np.array_equal(a.w, b.w)
    assert not np.array_equal(a.w, c.w)


def test_float64_tile():
    cfg = resolve_device(preset="reram-sb")
    t = make_tile(cfg, dtype=np.float64)
    assert t.w.dtype == np.float64 and t.w_persistent.dtype == np.float64
    assert t.device.p["scale_up"].dtype == np.float64
    for x, d in random_steps(5):
        sample_update(t, x, d, 0.05)
    y = t.forward(np.ones((2, 5)))
    z = t.backward(np.ones((2, 4)))
    assert y.dtype == np.float64 and z.dtype == np.float64 and t.w.dtype == np.float64
    assert t.read_column(0).dtype == np.float64
    assert np.all(np.isfinite(t.w)) and np.any(t.w != 0)
