"""Stochastic pulse trains (docs/pulses.md §2): probabilities, bit length, trains, coincidences, dense
pulse types. That the expected pulsed update through a tile is the SGD step -lr d x^T:
tests/engine/algorithms/test_pulsed_update.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.engine import pulses as P
from analogtrain.config import UpdateConfig
from analogtrain.seeding import generator

DW = 0.01
X = np.array([0.9, -0.5, 0.3, -0.05])
D = np.array([0.6, -0.2, 0.1])


def test_pulse_probabilities_without_management():
    cfg = UpdateConfig(update_management=False, update_bl_management=False, desired_bl=31)
    x, d = X[None], D[None]
    lr = 0.1
    plan = P.pulse_probabilities(x, d, lr, DW, cfg)
    a = math.sqrt(lr / (DW * 31))
    assert plan.bl[0] == 31
    np.testing.assert_allclose(plan.p_x[0], np.abs(X) * a, rtol=1e-12)
    np.testing.assert_allclose(plan.p_d[0], np.abs(D) * a, rtol=1e-12)


@pytest.mark.parametrize("lr", [0.001, 0.01, 0.05, 0.2, 0.5])
def test_update_bl_management(lr):
    """UBLM: BL = min(ceil(k), desired_bl), k = lr max|x| max|d| / dw_min; UM: the largest p_x and p_d
    are equal to sqrt(k / BL); when k > desired_bl the x side peaks at exactly 1."""
    cfg = UpdateConfig(desired_bl=31)
    x, d = X[None], D[None]
    plan = P.pulse_probabilities(x, d, lr, DW, cfg)
    k = lr * 0.9 * 0.6 / DW
    assert plan.k[0] == pytest.approx(k)
    bl = min(math.ceil(k), 31)
    assert plan.bl[0] == max(bl, 1) == P.bit_length(np.array([k]), np.array([lr]), np.array([DW]), cfg)[0]
    if k <= 31:
        assert plan.p_x.max() == pytest.approx(math.sqrt(k / bl), rel=1e-6)
        assert plan.p_d.max() == pytest.approx(math.sqrt(k / bl), rel=1e-6)
    else:
        assert plan.p_x.max() == pytest.approx(1.0, rel=1e-9)
        assert plan.p_d.max() == 1.0  # k / BL > 1, clipped
        # the x side is not clipped: probabilities keep the ratios of |x|
        np.testing.assert_allclose(plan.p_x[0], np.abs(X) / 0.9, rtol=1e-9)


def test_um_balances_scales():
    """UM with x and d of very different magnitude: both peaks equal sqrt(k/BL)."""
    cfg = UpdateConfig(update_management=True, update_bl_management=False, desired_bl=31)
    x = np.array([[50.0, -20.0, 5.0]])
    d = np.array([[1e-3, -4e-4]])
    lr = 0.1
    plan = P.pulse_probabilities(x, d, lr, DW, cfg)
    k = lr * 50 * 1e-3 / DW
    assert plan.p_x.max() == pytest.approx(math.sqrt(k / 31)) and plan.p_d.max() == pytest.approx(math.sqrt(k / 31))
    # without UM the x side would be clipped at 1
    plan0 = P.pulse_probabilities(x, d, lr, DW, UpdateConfig(update_management=False, update_bl_management=False))
    assert plan0.p_x.max() == 1.0


def test_bit_length_vectorised_and_inactive_replicas():
    cfg = UpdateConfig(desired_bl=31)
    x = np.array([[1.0, 0.5], [0.0, 0.0], [1.0, -1.0], [1e-4, 0.0]])
    d = np.array([[1.0], [1.0], [1.0], [1.0]])
    lr = np.array([0.1, 0.1, 1.0, 0.1])
    plan = P.pulse_probabilities(x, d, lr, DW, cfg)
    k = lr * np.abs(x).max(1) * 1.0 / DW
    np.testing.assert_array_equal(plan.bl, [10, 0, 31, 1])  # replica 1 has x = 0: no update
    assert not plan.p_x[1].any() and not plan.p_d[1].any()
    np.testing.assert_allclose(plan.k, k)


def test_fixed_bl_false_lengthens_bl():
    cfg = UpdateConfig(update_management=False, update_bl_management=False, fixed_bl=False, desired_bl=5)
    x, d = np.array([[0.5, -1.0]]), np.array([[0.25]])
    plan = P.pulse_probabilities(x, d, 0.2, DW, cfg)  # dw * 5 = 0.05 < 0.2: BL = ceil(0.2 / 0.01) = 20
    assert plan.bl[0] == 20
    np.testing.assert_allclose(plan.p_x[0], [0.5, 1.0])
    np.testing.assert_allclose(plan.p_d[0], [0.25])
    plan = P.pulse_probabilities(x, d, 0.01, DW, cfg)  # 0.05 >= 0.01: the fixed-BL formula
    assert plan.bl[0] == 5
    np.testing.assert_allclose(plan.p_x[0], np.array([0.5, 1.0]) * np.sqrt(0.01 / (DW * 5)))


def test_probability_resolution():
    cfg = UpdateConfig(update_management=False, update_bl_management=False, res=0.1)
    plan = P.pulse_probabilities(X[None], D[None], 0.1, DW, cfg)
    q = plan.p_x / 0.1
    np.testing.assert_allclose(q, np.round(q), atol=1e-6)


# --------------------------------------------------------------------------- dense pulse types
# Hand example: BL = 10, lr / (dw BL) = 1 so A = B = 1 and p_x = |x|, p_d = |d| (no management).
HX = np.array([[0.5, -0.24, 1.0]])
HD = np.array([[0.4, -0.77]])
HDW = 1 / 64
HLR = 10 / 64
HCFG = dict(update_management=False, update_bl_management=False, desired_bl=10)


def test_mean_count_hand_example():
    plan = P.pulse_probabilities(HX, HD, HLR, HDW, UpdateConfig(**HCFG, pulse_type="mean_count"))
    np.testing.assert_allclose(plan.p_x[0], np.abs(HX[0]))
    # c_x = round(10 |x|) = [5, 2, 10]; c_d = round(10 |d|) = [4, 8]; n = round(c_d c_x / 10)
    # = round([[2.0, 0.8, 4.0], [4.0, 1.6, 8.0]])
    expected = np.array([[2, 1, 4], [4, 2, 8]])
    np.testing.assert_array_equal(P.mean_count(plan)[0], expected)


def test_deterministic_implicit_hand_example():
    cfg = UpdateConfig(**HCFG, pulse_type="deterministic_implicit")
    plan = P.pulse_probabilities(HX, HD, HLR, HDW, cfg)
    # n = round(10 p_d p_x) = round([[2.0, 0.96, 4.0], [3.85, 1.848, 7.7]])
    np.testing.assert_array_equal(P.deterministic_implicit(plan, cfg)[0], [[2, 1, 4], [4, 2, 8]])
    # with x quantised to bins of 0.3: p_x / 0.3 = [1.67, 0.8, 3.33] -> [2, 1, 3] -> p_x = [0.6, 0.3, 0.9];
    # n = round(10 * [0.4, 0.77] x [0.6, 0.3, 0.9]) = round([[2.4, 1.2, 3.6], [4.62, 2.31, 6.93]])
    cfg_q = UpdateConfig(**HCFG, pulse_type="deterministic_implicit", x_res_implicit=0.3)
    np.testing.assert_array_equal(P.deterministic_implicit(plan, cfg_q)[0], [[2, 1, 4], [5, 2, 7]])


# --------------------------------------------------------------------------- trains and coincidences
def _unpack(trains, nbits):
    t = trains.astype(np.uint64)
    return ((t[..., None] >> np.arange(nbits, dtype=np.uint64)) & np.uint64(1)).astype(bool)


def test_coincidences_equal_brute_force_popcount():
    rng = generator(3, "pulses")
    R, m, n, bl = 3, 4, 5, 31
    p = np.random.default_rng(1).random((R, m + n))
    trains = P.stochastic_trains(p, np.array([bl, 20, 7]), rng)
    td, tx = trains[:, :m], trains[:, m:]
    counts = P.coincidences(td, tx)
    bits_d, bits_x = _unpack(td, 32), _unpack(tx, 32)
    brute = np.zeros((R, m, n), dtype=int)
    for r in range(R):
        for i in range(m):
            for j in range(n):
                for t in range(32):
                    brute[r, i, j] += int(bits_d[r, i, t] and bits_x[r, j, t])
    np.testing.assert_array_equal(counts, brute)
    assert counts.max() > 0


@pytest.mark.parametrize("bl, dtype", [([5, 31, 0, 1], np.uint32), ([32, 3], np.uint32), ([64, 40, 33], np.uint64)])
def test_stochastic_trains_mask_slots_beyond_bl(bl, dtype):
    bl = np.array(bl)
    p = np.ones((bl.size, 6))
    trains = P.stochastic_trains(p, bl, generator(0, "pulses"))
    assert trains.dtype == dtype
    for r, b in enumerate(bl):
        expected = (1 << int(b)) - 1
        assert all(int(v) == expected for v in trains[r]), (r, b, trains[r])


def test_stochastic_trains_bit_frequency():
    """Each slot pulses with probability p, independently: over n lines x BL slots the fraction
    of set bits has SE sqrt(p (1-p) / (n BL)); tolerance 5 SE. No bit beyond BL is ever set."""
    bl, n = 13, 3000
    p = np.full((2, n), 0.3)
    p[1] = 0.8
    p[1, :10] = 0.0
    trains = P.stochastic_trains(p, np.array([bl, bl]), generator(1, "pulses"))
    bits = _unpack(trains, 32)
    assert not bits[..., bl:].any()
    assert not bits[1, :10].any()
    for r, q in ((0, 0.3), (1, 0.8)):
        frac = bits[r, 10:, :bl].mean()
        assert abs(frac - q) < 5 * np.sqrt(q * (1 - q) / ((n - 10) * bl))
    # slots of one line are independent: per-line counts are Binomial(bl, p), variance bl p (1-p)
    cnt = bits[0, :, :bl].sum(1)
    var = bl * 0.3 * 0.7
    # SE of a sample variance ~ var sqrt(2/n) (normal approximation), 5 SE
    assert abs(cnt.var() - var) < 5 * var * np.sqrt(2 / n)


def test_paired_trains_and_train_dtype():
    assert P.train_dtype(32) is np.uint32 and P.train_dtype(33) is np.uint64
    px, pd = np.ones((1, 3)), np.zeros((1, 2))
    tx, td = P.paired_trains(px, pd, np.array([4]), generator(0, "pulses"))
    assert tx.shape == (1, 3) and td.shape == (1, 2)
    assert np.all(tx == 15) and not td.any()
    assert not P.stochastic_trains(px, np.array([0]), generator(0, "pulses")).any()
