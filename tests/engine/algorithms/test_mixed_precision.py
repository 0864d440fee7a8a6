"""Mixed precision (docs/algorithms.md §4.2): the digital accumulator chi and the thresholded pulsed writes to W.

Devices are ideal constant-step devices (no c2c noise, no d2d spread, bounds +-100 far out of
reach) with perfect I/O, so every W pulse is exactly +-dw_min and W = dw_min (up - down).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.engine.algorithms import build_stack
from analogtrain.engine.algorithms.mixed_precision import MixedPrecision, quantize_bins
from analogtrain.config import ConstantStepDevice, IOConfig
from analogtrain.config.algorithm import MixedPrecisionConfig
from analogtrain.errors import ConfigError

DW = 0.01
OUT, IN = 4, 5


def ideal_device(dw=DW):
    return ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                              w_max=100.0, w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)


def mp_stack(cfgs, seed=0, out=OUT, inp=IN):
    R = len(cfgs)
    return build_stack(["mp"] * R, cfgs, [ideal_device()] * R, None, out, inp, io=IOConfig(is_perfect=True),
                       seed=seed, replica_seeds=list(range(R)), dtype=np.float64, count_pulses=True)


#: (granularity, transfer_lr) per replica -> eps = granularity or dw_min; write lr = eps transfer_lr
REPLICAS = [(0.0, 1.0), (0.0, 0.5), (2 * DW, 1.0)]


def run_mp(alg, steps, lr, seed=1):
    """Drive MP with random x, d of a fixed sign pattern per line (so every device accumulates a
    gradient of constant sign: a systematic error of the write size cannot average out);
    returns the exact accumulated sum of lr d x^T and, per device, the sum over transfers of
    |requested counts| (for the variance bound)."""
    rng = np.random.default_rng(seed)
    R = alg.n_replicas
    sx = np.resize([1.0, 1.0, -1.0, -1.0, 1.0], alg.in_size)
    sd = np.resize([1.0, -1.0], alg.out_size)
    G = np.zeros((R, alg.out_size, alg.in_size))
    abs_req = np.zeros_like(G)
    for _ in range(steps):
        x = sx * rng.uniform(0, 1, size=(R, alg.in_size))
        d = sd * rng.uniform(0, 1, size=(R, alg.out_size))
        before = alg.requested.copy()
        alg.update(x, d, lr)
        G += np.asarray(lr)[:, None, None] * d[:, :, None] * x[:, None, :]
        abs_req += np.abs(alg.requested - before)
    return G, abs_req


def test_accumulator_conservation_is_exact():
    """chi + eps * requested_counts == sum of lr d x^T (float round-off only, rtol 1e-12), after
    every step; with all rows transferred each sample |chi| < eps afterwards."""
    cfgs = [MixedPrecisionConfig(granularity=g, transfer_lr=t) for g, t in REPLICAS]
    alg = mp_stack(cfgs)
    assert isinstance(alg, MixedPrecision)
    eps = np.array([g if g > 0 else DW for g, _ in REPLICAS])
    np.testing.assert_allclose(alg.eps, eps)
    rng = np.random.default_rng(0)
    lr = np.array([0.05, 0.02, 0.08])
    G = np.zeros((3, OUT, IN))
    for _ in range(200):
        x, d = rng.uniform(-1, 1, (3, IN)), rng.uniform(-1, 1, (3, OUT))
        alg.update(x, d, lr)
        G += lr[:, None, None] * d[:, :, None] * x[:, None, :]
        np.testing.assert_allclose(alg.chi + eps[:, None, None] * alg.requested, G, rtol=1e-12, atol=1e-13)
        assert np.all(np.abs(alg.chi) < eps[:, None, None])
    assert np.all(np.abs(alg.requested).sum(axis=(1, 2)) > 100)


def test_transfer_every_and_row_schedule():
    """transfer_every 3, one row per transfer: rows 0, 1, 2, 3, 0, ... every third sample;
    conservation holds with the untransferred rows still in chi."""
    alg = mp_stack([MixedPrecisionConfig(transfer_every=3, n_rows_per_transfer=1)])
    rng = np.random.default_rng(4)
    G = np.zeros((1, OUT, IN))
    changed_rows = []
    for t in range(1, 25):
        x, d = rng.uniform(-1, 1, (1, IN)), rng.uniform(-1, 1, (1, OUT))
        before = alg.requested.copy()
        chi_before = alg.chi.copy()
        alg.update(x, d, 0.2)
        G += 0.2 * d[:, :, None] * x[:, None, :]
        np.testing.assert_allclose(alg.chi + DW * alg.requested, G, rtol=1e-12, atol=1e-13)
        rows = np.flatnonzero(np.abs(alg.requested - before).sum(axis=(0, 2)))
        if t % 3:
            assert rows.size == 0
            np.testing.assert_allclose(alg.chi, chi_before + 0.2 * d[:, :, None] * x[:, None, :], atol=1e-15)
        else:
            changed_rows.append(rows.tolist())
            i = (t // 3 - 1) % OUT
            assert set(rows.tolist()) <= {i}
            assert np.all(np.abs(alg.chi[0, i]) < DW)
    assert sum(bool(r) for r in changed_rows) >= 6          # most transfers do write


def test_w_change_is_minus_eps_transfer_lr_requested_on_average():
    """E[W change] = -eps transfer_lr n per transfer.

    With UM and UBLM, BL = ceil(k) with k = (eps tlr / dw) max|n| <= desired_bl (31; per-step
    counts here are <= 5, so k <= 10: no truncation), p_d = 1 -> the count of device j is
    Binomial(BL, p_x,j) with mean c |n_j|, c = eps tlr / dw, and variance <= its mean. Summed over
    transfers, var(down - up - c n_total) <= V = c sum |n| per device. Tolerance: every device
    within 5 sqrt(V) + 1 pulse, and the total over all devices of a replica within 5 sqrt(sum V)
    (V over-estimates the variance, so these bounds are conservative). W is exactly
    dw (up - down) because the device is noise free and the bounds are out of reach.
    """
    cfgs = [MixedPrecisionConfig(granularity=g, transfer_lr=t) for g, t in REPLICAS]
    alg = mp_stack(cfgs, seed=3)
    lr = np.array([0.05, 0.05, 0.1])
    _, abs_req = run_mp(alg, 400, lr)
    up, down = alg.tile.up_count, alg.tile.down_count
    np.testing.assert_allclose(alg.weights(), DW * (up - down), atol=1e-10)
    for r, (g, tlr) in enumerate(REPLICAS):
        eps = g or DW
        c = eps * tlr / DW
        net = (down - up)[r]
        want = c * alg.requested[r]
        V = c * abs_req[r]
        assert np.all(np.abs(net - want) <= 5 * np.sqrt(V) + 1), r
        z = (net - want).sum() / math.sqrt(V.sum())
        assert abs(z) < 5, (r, z)
        # the W change in weight units: -eps transfer_lr requested, to the same tolerance
        dW = alg.weights()[r]
        assert np.all(np.abs(dW + eps * tlr * alg.requested[r]) <= DW * (5 * np.sqrt(V) + 1))
    # the pulse count per replica is about c sum|n| (mean), i.e. not truncated by desired_bl
    tot = (up + down).sum(axis=(1, 2))
    for r, (g, tlr) in enumerate(REPLICAS):
        c = (g or DW) * tlr / DW
        mean = c * abs_req[r].sum()
        assert abs(tot[r] - mean) <= 5 * math.sqrt(mean), (r, tot[r], mean)


def test_stack_requires_matching_structural_fields():
    with pytest.raises(ConfigError, match="transfer_every"):
        mp_stack([MixedPrecisionConfig(), MixedPrecisionConfig(transfer_every=2)])
    with pytest.raises(ConfigError):
        MixedPrecisionConfig(n_rows_per_transfer=0)


def test_quantize_bins():
    rng = np.random.default_rng(0)
    v = np.array([[1.0, -0.5, 0.26, 0.0], [0.2, -0.4, 0.09, 0.05]])
    np.testing.assert_array_equal(quantize_bins(v, 0, True, rng), v)
    # 4 bins -> 2 levels per sign of width max|v| / 2
    np.testing.assert_allclose(quantize_bins(v, 4, False, rng), [[1.0, -0.5, 0.5, 0.0], [0.2, -0.4, 0.0, 0.0]])
    # stochastic rounding is unbiased: mean over many draws -> v (tolerance 5 sd of the mean;
    # each draw has variance <= width^2 / 4)
    many = np.stack([quantize_bins(v, 4, True, rng) for _ in range(4000)])
    width = np.abs(v).max(axis=1, keepdims=True) / 2
    assert np.all(np.abs(many.mean(0) - v) <= 5 * width / 2 / math.sqrt(4000))
