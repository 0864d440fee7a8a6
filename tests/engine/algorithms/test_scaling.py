"""Learning-rate plumbing of the transfer family (docs/algorithms.md §5.1-5.3, §4.4.3): the pure functions of
``analogtrain.engine.algorithms.scaling`` against values computed by hand from those equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.engine.algorithms.scaling import buffer_step, chopper_flips, ema_max, pulse_count_lr, transfer_lr_scale
from analogtrain.config.algorithm import TransferConfig

A = np.asarray


# ----------------------------------------------------------------------------- 5.1 ema_max
def test_ema_max_first_value_initialises():
    # m <= 0: the new value is taken as is, whatever the momentum and batch size
    out = ema_max(A([0.0, 0.0, -1.0]), A([3.0, 0.5, 2.0]), A([0.99, 0.5, 0.9]), 4)
    np.testing.assert_array_equal(out, [3.0, 0.5, 2.0])


def test_ema_max_ignores_zero_inputs():
    out = ema_max(A([2.0, 1.5]), A([0.0, 0.0]), A([0.99, 0.1]), 1)
    np.testing.assert_array_equal(out, [2.0, 1.5])
    # both zero stays zero (still "uninitialised")
    assert ema_max(A([0.0]), A([0.0]), A([0.99]), 1)[0] == 0.0


def test_ema_max_tau_is_one_minus_momentum_over_batch():
    # tau = (1 - 0.9) / 2 = 0.05: 0.95 * 2 + 0.05 * 4 = 2.1
    np.testing.assert_allclose(ema_max(A([2.0]), A([4.0]), A([0.9]), 2), [2.1], rtol=1e-15)
    # tau = (1 - 0.5) / 1 = 0.5: 0.5 * 1 + 0.5 * 3 = 2
    np.testing.assert_allclose(ema_max(A([1.0]), A([3.0]), A([0.5]), 1), [2.0], rtol=1e-15)
    # per replica momentum and a decrease: tau = 0.01 / 4 = 0.0025
    out = ema_max(A([2.0, 2.0]), A([1.0, 1.0]), A([0.99, 0.5]), 4)
    np.testing.assert_allclose(out, [2.0 * 0.9975 + 0.0025, 2.0 * 0.875 + 0.125], rtol=1e-15)


def test_ema_max_sequence_matches_scalar_recursion():
    rng = np.random.default_rng(0)
    vals = np.abs(rng.normal(size=50))
    vals[[3, 17, 30]] = 0.0
    m_vec = A([0.0])
    m = 0.0
    for v in vals:
        m_vec = ema_max(m_vec, A([v]), A([0.8]), 3)
        if m <= 0:
            m = v
        elif v > 0:
            tau = 0.2 / 3
            m = (1 - tau) * m + tau * v
        assert m_vec[0] == pytest.approx(m, rel=1e-14)


# ------------------------------------------------------------------------ 5.2 pulse_count_lr
def test_pulse_count_lr_auto_scale_formula():
    # lambda_A = fast_lr desired_bl dw_A / (m_x m_d) = 0.5 * 31 * 0.01 / (2 * 0.5) = 0.155
    lam = pulse_count_lr(A([0.3]), A([0.5]), 31, A([0.01]), A([2.0]), A([0.5]), True, A([False]))
    np.testing.assert_allclose(lam, [0.155], rtol=1e-14)


def test_pulse_count_lr_division_skipped_while_maxima_are_zero():
    lam = pulse_count_lr(A([0.3, 0.3, 0.3]), A([0.5, 0.5, 0.5]), 5, A([0.1, 0.1, 0.1]), A([0.0, 2.0, 0.0]),
                         A([4.0, 0.0, 0.0]), True, A([False, False, False]))
    np.testing.assert_allclose(lam, [0.25, 0.25, 0.25], rtol=1e-14)   # 0.5 * 5 * 0.1


def test_pulse_count_lr_without_auto_scale_and_scale_fast_lr():
    lr = A([0.3, 0.3])
    fl = A([0.5, 0.5])
    dw = A([0.01, 0.01])
    mx, md = A([2.0, 2.0]), A([0.5, 0.5])
    np.testing.assert_allclose(pulse_count_lr(lr, fl, 31, dw, mx, md, False, A([False, True])), [0.5, 0.15])
    np.testing.assert_allclose(pulse_count_lr(lr, fl, 31, dw, mx, md, True, A([False, True])),
                               [0.155, 0.155 * 0.3], rtol=1e-14)


def test_pulse_count_lr_update_strength_independent_of_gradient_scale():
    """k = lambda_A max|x| max|d| / dw_A = fast_lr desired_bl when the maxima equal the running maxima."""
    for xm, dm in ((1.0, 1.0), (0.01, 30.0), (7.0, 1e-3)):
        lam = pulse_count_lr(A([0.2]), A([0.1]), 5, A([0.05]), A([xm]), A([dm]), True, A([False]))
        assert lam[0] * xm * dm / 0.05 == pytest.approx(0.1 * 5, rel=1e-12)


# --------------------------------------------------------------------- 5.3 transfer_lr_scale
def _tls(lr=0.2, lam_a=0.4, transfer_lr=1.0, scale_transfer_lr=True, bg=1.0, ag=0.0, dw_a=0.05, dw_w=0.1,
         x_size=4, n_s=1, cgm=False):
    return transfer_lr_scale(A([lr]), A([lam_a]), A([transfer_lr]), A([scale_transfer_lr]), A([bg]), A([ag]),
                             A([dw_a]), A([dw_w]), x_size, n_s, A([cgm]))[0]


def test_transfer_lr_scale_basic():
    # lr_tr = 1 * 0.2; bg = 1 * 0.05 -> 4
    assert _tls() == pytest.approx(4.0, rel=1e-14)
    # transfer_lr 0.5, buffer_granularity 2: 0.1 / 0.1 = 1
    assert _tls(transfer_lr=0.5, bg=2.0) == pytest.approx(1.0, rel=1e-14)
    # without scale_transfer_lr: lr_tr = transfer_lr = 1 -> 1 / 0.05 = 20
    assert _tls(scale_transfer_lr=False) == pytest.approx(20.0, rel=1e-14)


def test_transfer_lr_scale_auto_granularity():
    # bg = 0.05 * 1000 / (4 * 1) = 12.5; 0.2 / 12.5 = 0.016
    assert _tls(ag=1000.0) == pytest.approx(0.016, rel=1e-14)
    # the period is x_size * n_s: bg = 0.05 * 1000 / (4 * 5) = 2.5 -> 0.08
    assert _tls(ag=1000.0, n_s=5) == pytest.approx(0.08, rel=1e-14)


def test_transfer_lr_scale_correct_gradient_magnitudes():
    # bg = 0.05 * (0.1 / 0.05) = 0.1; lambda_H = 0.2 / 0.4 / 0.1 = 5
    assert _tls(cgm=True) == pytest.approx(5.0, rel=1e-14)
    # together with auto granularity: bg = 0.05 * 250 * 2 = 25 -> 0.2 / 0.4 / 25 = 0.02
    assert _tls(cgm=True, ag=1000.0) == pytest.approx(0.02, rel=1e-14)


def test_transfer_lr_scale_per_replica_flags():
    out = transfer_lr_scale(A([0.2, 0.2, 0.2]), A([0.4, 0.4, 0.4]), A([1.0, 1.0, 1.0]), A([True, False, True]),
                            A([1.0, 1.0, 1.0]), A([0.0, 0.0, 1000.0]), A([0.05, 0.05, 0.05]), A([0.1, 0.1, 0.1]),
                            4, 1, A([False, False, True]))
    np.testing.assert_allclose(out, [4.0, 20.0, 0.02], rtol=1e-14)


def test_transfer_lr_scale_threshold_meaning():
    """|H| >= 1 is reached after the reads sum to bg / lr_tr (docs/algorithms.md §5.3)."""
    lam = _tls(lr=0.3, transfer_lr=2.0, bg=3.0, dw_a=0.01)
    assert 1.0 / lam == pytest.approx(3.0 * 0.01 / (0.3 * 2.0), rel=1e-14)


# --------------------------------------------------------------------------- buffer_step
def _bs(h, delta, lam=1.0, max_steps=1.0, momentum=0.0, forget=True):
    h, n = buffer_step(A([h], dtype=float), A([delta], dtype=float), A([lam]), A([max_steps]), A([momentum]),
                       forget)
    return h[0], n[0]


def test_buffer_step_below_threshold_accumulates():
    h, n = _bs([0.25, -0.5, 0.0], [0.5, -0.25, 0.75], lam=1.0)
    np.testing.assert_array_equal(h, [0.75, -0.75, 0.75])
    np.testing.assert_array_equal(n, [0, 0, 0])
    h, n = _bs([0.25], [0.25], lam=2.0)     # 0.25 + 2 * 0.25 = 0.75
    assert h[0] == 0.75 and n[0] == 0


def test_buffer_step_threshold_is_inclusive_and_forget_resets():
    h, n = _bs([0.5, -0.5, 0.5], [0.5, -0.5, 0.25])     # omega = 1, -1, 0.75
    np.testing.assert_array_equal(n, [1, -1, 0])
    np.testing.assert_array_equal(h, [0.0, 0.0, 0.75])
    assert n.dtype == np.int64


def test_buffer_step_forget_buffer_with_momentum():
    h, n = _bs([0.5, 0.0], [1.0, -2.5], momentum=0.5)    # omega = 1.5, -2.5 -> H = 0.75, -1.25
    np.testing.assert_array_equal(n, [1, -1])
    np.testing.assert_allclose(h, [0.75, -1.25])


def test_buffer_step_without_forget_subtracts_the_written_steps():
    h, n = _bs([0.5, 0.0, 0.25], [1.0, -2.5, 0.5], forget=False)   # omega 1.5, -2.5, 0.75
    np.testing.assert_array_equal(n, [1, -1, 0])
    np.testing.assert_allclose(h, [0.5, -1.5, 0.75])
    h, n = _bs([0.5, 0.0], [1.0, -2.5], forget=False, momentum=0.25)  # omega - 0.75 n
    np.testing.assert_allclose(h, [0.75, -1.75])


def test_buffer_step_clips_to_max_steps_and_truncates():
    h, n = _bs([0.0, 0.0, 0.0, 0.0], [3.7, -2.5, 1.99, -7.0], max_steps=2.0, forget=False)
    np.testing.assert_array_equal(n, [2, -2, 1, -2])
    np.testing.assert_allclose(h, [1.7, -0.5, 0.99, -5.0])
    h, n = _bs([0.0, 0.0], [3.7, -2.5], max_steps=5.0)
    np.testing.assert_array_equal(n, [3, -2])


def test_buffer_step_per_replica_parameters():
    h, n = buffer_step(A([[0.0, 0.5], [0.0, 0.5]]), A([[3.0, 0.25], [3.0, 0.25]]), A([1.0, 2.0]), A([1.0, 3.0]),
                       A([0.0, 0.5]), True)
    # replica 0: omega = (3, 0.75); replica 1: omega = (6, 1.0)
    np.testing.assert_array_equal(n, [[1, 0], [3, 1]])
    np.testing.assert_allclose(h, [[0.0, 0.75], [3.0, 0.5]])


# ---------------------------------------------------------------------------- choppers
def _flips(T, n_c, p, random, dynamic, u):
    return chopper_flips(T, A(n_c), A(p), A(random), A(dynamic), A(u))


def test_chopper_flips_none_without_chopper():
    for T in range(6):
        assert not _flips(T, [0, 0], [0.0, 0.0], [True, False], [False, False], [0.0, 0.0]).any()


def test_chopper_flips_regular_period():
    # N_c = 3: flip when (T mod 3) + 1 == 3, i.e. T = 2, 5, 8, ...
    got = [bool(_flips(T, [3], [0.34], [False], [False], [0.0])[0]) for T in range(10)]
    assert got == [T % 3 == 2 for T in range(10)]


def test_chopper_flips_random_uses_u():
    out = _flips(0, [10, 10, 10], [0.1, 0.1, 0.5], [True, True, True], [False, False, False], [0.05, 0.2, 0.2])
    np.testing.assert_array_equal(out, [True, False, True])
    # c-TTv2 (random, not dynamic) never flips on the regular schedule alone
    assert not _flips(9, [10], [0.1], [True], [False], [0.99])[0]


def test_chopper_flips_agad_regular_plus_optional_random():
    # dynamic and regular: u is irrelevant
    assert _flips(1, [2], [0.5], [False], [True], [0.0])[0]
    assert not _flips(0, [2], [0.5], [False], [True], [0.0])[0]
    # dynamic and random: the regular flip or a random one
    np.testing.assert_array_equal(_flips(0, [2, 2], [0.5, 0.5], [True, True], [True, True], [0.4, 0.6]),
                                  [True, False])
    assert _flips(1, [2], [0.5], [True], [True], [0.9])[0]


@pytest.mark.parametrize("p, n_c", [(0.1, 10), (0.5, 2), (1.0, 2), (0.3, 4), (0.25, 4), (0.02, 50), (0.0, 0)])
def test_n_c_is_max_ceil_inverse_p_and_two(p, n_c):
    kw = {"dynamic_reference": True, "in_chop_random": False} if p > 0 else {}
    cfg = TransferConfig(in_chop_prob=p, **kw)
    assert cfg.n_c == n_c
    if p > 0:
        assert cfg.n_c == max(math.ceil(1 / p - 1e-12), 2)
