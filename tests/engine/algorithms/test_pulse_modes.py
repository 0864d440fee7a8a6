"""pulse_mode = "expected" (docs/pulses.md §2.6) by hand, and the mode as a setting of the run:
UpdateConfig, build_stack (every tile), program (field and sweep key), train (field)."""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import SoftBoundsDevice, UpdateConfig
from analogtrain.config.program import ProgramConfig
from analogtrain.config.train import TrainConfig
from analogtrain.engine.algorithms import build_stack
from analogtrain.engine.algorithms.pulsed_update import batch_update, sample_update
from analogtrain.engine.tile import AnalogTile
from analogtrain.errors import ConfigError
from analogtrain.config.io import IO_PRESETS

# soft bounds on [-1, 1], dw_min 0.1, no spreads: step_up(g) = 0.1 (1 - g), step_down(g) = 0.1 (1 + g)
DEV = SoftBoundsDevice(dw_min=0.1, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.0,
                       w_min_dtod=0.0, dw_min_std=0.3)


def _tile(mode="expected", **kw):
    return AnalogTile(DEV, 2, 3, update=UpdateConfig(pulse_mode=mode), dtype=np.float64, **kw)


def test_expected_step_by_hand_2x3():
    t = _tile()
    w0 = np.array([[0.0, 0.5, -0.5], [0.2, -0.9, 0.9]])
    t.set_weights(w0)
    x = np.array([[1.0, -0.5, 2.0]])
    d = np.array([[0.4, -2.0]])
    lr = 0.5
    # n_ij = lr |d_i x_j| / dw_min; -lr d x^T > 0 (up) where d_i x_j < 0
    n = lr * np.abs(np.outer(d[0], x[0])) / 0.1
    n_expected = np.array([[2.0, 1.0, 4.0], [10.0, 5.0, 20.0]])
    np.testing.assert_allclose(n, n_expected)
    up = np.outer(d[0], x[0]) < 0
    step = np.where(up, n * 0.1 * (1 - w0), -n * 0.1 * (1 + w0))
    expected = np.clip(w0 + step, -1.0, 1.0)
    # by hand: row 0: 0 - 0.2 (down), 0.5 + 0.05 (up), -0.5 - 0.2 (down);
    #          row 1: 0.2 + 0.8 (up) = 1.0, -0.9 - 0.05 (down), 0.9 + 2 * 0.1 -> clipped at 1
    np.testing.assert_allclose(expected, [[-0.2, 0.55, -0.7], [1.0, -0.95, 1.0]])
    assert sample_update(t, x, d, lr) == 0
    np.testing.assert_allclose(t.get_weights()[0], expected, rtol=0, atol=1e-15)


def test_expected_is_deterministic_and_batch_is_sample_by_sample():
    rng = np.random.default_rng(0)
    x, d = rng.uniform(-1, 1, (1, 4, 3)), rng.uniform(-1, 1, (1, 4, 2))
    a, b = _tile(), _tile()
    a.rng_noise = np.random.default_rng(99)   # the mode draws nothing (no write noise here)
    batch_update(a, x, d, 0.2)
    for k in range(4):
        sample_update(b, x[:, k], d[:, k], 0.2)
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())


def test_expected_counts_nothing():
    t = _tile(count_pulses=True)
    sample_update(t, np.array([[1.0, 1.0, 1.0]]), np.array([[1.0, 1.0]]), 0.3)
    assert t.up_count.sum() == 0 and t.down_count.sum() == 0
    assert np.all(t.get_weights() < 0)


def test_build_stack_applies_the_mode_to_every_tile():
    for mode in ("exact", "aggregated", "expected"):
        alg = build_stack(["agad"], [ProgramConfig().replicas[0].alg_cfg], [DEV], [DEV], 3, 4,
                          io=IO_PRESETS["perfect"], seed=0, replica_seeds=[0], pulse_mode=mode)
        assert {t.update_cfg.pulse_mode for t in alg.tiles().values()} == {mode}


def test_program_field_and_sweep():
    cfg = ProgramConfig(algorithm=("agad",), n_states=(20.0,), sigma_r=(0.0,), seeds=1, steps=10,
                        sweep=(("pulse_mode", ("exact", "expected")),))
    assert [r.pulse_mode for r in cfg.replicas] == ["exact", "expected"]
    assert ProgramConfig(pulse_mode="aggregated", steps=10).replicas[0].pulse_mode == "aggregated"
    assert ProgramConfig(steps=10).replicas[0].pulse_mode == "exact"
    assert "pulse_mode" not in ProgramConfig(steps=10).to_dict()["program"]      # unset: exact, not written
    assert ProgramConfig(pulse_mode="expected").to_dict()["program"]["pulse_mode"] == "expected"
    with pytest.raises(ConfigError, match="sweep.pulse_mode"):
        ProgramConfig(sweep=(("pulse_mode", ("exact", "fast")),))
    with pytest.raises(ConfigError, match="pulse_mode"):
        ProgramConfig(pulse_mode="fast")


def test_program_runs_each_mode_in_its_own_stack():
    from analogtrain.experiments.program import plan_stacks, run

    cfg = ProgramConfig(algorithm=("agad", "sgd"), n_states=(20.0,), sigma_r=(0.0,), seeds=1, steps=30, out_size=4,
                        in_size=4, sweep=(("pulse_mode", ("exact", "aggregated", "expected")),))
    assert len(plan_stacks(cfg.replicas, 1)) == 6
    res = run(cfg)
    assert [c["pulse_mode"] for c in res.to_dict()["cells"]] == ["exact", "aggregated", "expected"] * 2
    assert np.all(np.isfinite(res.final_error))


def test_train_field():
    assert TrainConfig(pulse_mode="aggregated").pulse_mode == "aggregated"
    with pytest.raises(ConfigError, match="pulse_mode"):
        TrainConfig(pulse_mode="fast")


def test_expected_sparse_inputs_take_the_block_path():
    """Mostly-zero inputs (image pixels) run on the block of nonzero lines; the result is the
    same formula as the dense step, and untouched devices keep their weights bit for bit."""
    t = AnalogTile(DEV, 8, 40, update=UpdateConfig(pulse_mode="expected"), dtype=np.float64)
    rng = np.random.default_rng(1)
    w0 = rng.uniform(-0.5, 0.5, (1, 8, 40))
    t.set_weights(w0)
    x = np.zeros((1, 40))
    x[0, [3, 17]] = [0.7, -1.2]
    d = rng.uniform(-1, 1, (1, 8))
    sample_update(t, x, d, 0.3)
    n = 0.3 * np.abs(np.outer(d[0], x[0])) / 0.1
    up = np.outer(d[0], x[0]) < 0
    want = np.clip(w0[0] + np.where(up, n * 0.1 * (1 - w0[0]), -n * 0.1 * (1 + w0[0])), -1, 1)
    np.testing.assert_allclose(t.get_weights()[0], want, rtol=0, atol=1e-15)
    untouched = np.ones(40, dtype=bool)
    untouched[[3, 17]] = False
    np.testing.assert_array_equal(t.get_weights()[0][:, untouched], w0[0][:, untouched])
