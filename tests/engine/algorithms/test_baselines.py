"""The baselines: the exact floating-point algorithm and plain analog SGD (docs/algorithms.md §4.1)."""

from __future__ import annotations

import math

import numpy as np

from analogtrain.engine.algorithms import AnalogSGD, FloatingPoint, build_stack
from analogtrain.config import ConstantStepDevice, IOConfig
from analogtrain.config.algorithm import FloatingPointConfig, SGDConfig
from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.program import ProgramConfig
from analogtrain.experiments.program import run as run_program


# --------------------------------------------------------------------------- floating point
def test_fp_update_and_mvms_are_exact():
    rng = np.random.default_rng(0)
    R, B, m, n = 3, 4, 2, 5
    alg = build_stack(["fp"] * R, [FloatingPointConfig()] * R, [None] * R, None, m, n, io=IOConfig(), seed=0,
                      replica_seeds=[0] * R, dtype=np.float64)
    assert isinstance(alg, FloatingPoint)
    w0 = rng.normal(size=(R, m, n))
    alg.set_weights(w0)
    x, d = rng.normal(size=(R, B, n)), rng.normal(size=(R, B, m))
    lr = np.array([0.1, 0.0, 0.5])
    alg.update(x, d, lr)
    want = w0 - lr[:, None, None] * np.einsum("rbi,rbj->rij", d, x)
    np.testing.assert_allclose(alg.weights(), want, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(alg.weights()[1], w0[1])                  # lr 0: unchanged
    np.testing.assert_allclose(alg.forward(x), np.einsum("rij,rbj->rbi", want, x), rtol=1e-13)
    np.testing.assert_allclose(alg.forward(x[:, 0]), np.einsum("rij,rj->ri", want, x[:, 0]), rtol=1e-13)
    np.testing.assert_allclose(alg.backward(d), np.einsum("rij,rbi->rbj", want, d), rtol=1e-13)
    # a single sample (R, n) is the same as a batch of one
    alg2 = FloatingPoint(R, m, n, dtype=np.float64)
    alg2.set_weights(w0)
    for b in range(B):
        alg2.update(x[:, b], d[:, b], lr)
    np.testing.assert_allclose(alg2.weights(), want, rtol=1e-12, atol=1e-13)


def test_fp_converges_exactly_in_the_program_task():
    """FP on the default 20x20 linear task: W -> W* to float32 precision (error < 1e-4 %),
    from about 10 % at the start (std of U(-0.5, 0.5) / range 2 = 14.4 %)."""
    cfg = ProgramConfig(algorithm=("fp",), n_states=(), sigma_r=(0.0,), seeds=1, lr=(0.1,), steps=3000,
                        io="perfect")
    res = run_program(cfg)
    assert res.traces[0, 0] > 1.0
    assert res.final_error[0] < 1e-4
    assert res.arrays()["W.weights"].shape == (1, 20, 20)          # digital weights, named as a tile's


# ------------------------------------------------------------------------------- analog SGD
def ideal_device(dw):
    return ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                              w_max=10.0, w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)


def test_sgd_update_is_sgd_in_expectation():
    """Over R = 400 replicas, one pulsed update with k = lr max|x| max|d| / dw = 16 <= desired_bl
    (31): each device's count is Binomial(BL = 16, p_x p_d) with mean lr |x_j d_i| / dw and
    variance <= the mean (<= 16), so the replica mean of the W change has sd <= dw sqrt(16/400) =
    0.2 dw; tolerance 5 sd. The sign of every device's change is that of -d_i x_j (always)."""
    R, dw, lr = 400, 0.001, 0.02
    alg = build_stack(["sgd"] * R, [SGDConfig()] * R, [ideal_device(dw)] * R, None, 2, 3,
                      io=IOConfig(is_perfect=True), seed=4, replica_seeds=list(range(R)), dtype=np.float64)
    assert isinstance(alg, AnalogSGD)
    x = np.array([1.0, -0.5, 0.25])
    d = np.array([0.8, -0.4])
    alg.update(np.broadcast_to(x, (R, 3)), np.broadcast_to(d, (R, 2)), lr)
    dW = alg.weights()
    want = -lr * np.outer(d, x)
    assert np.all(dW * np.sign(want) >= 0)
    np.testing.assert_allclose(dW.mean(axis=0), want, atol=5 * 0.2 * dw)
    # pulses are whole steps
    np.testing.assert_allclose(dW / dw, np.round(dW / dw), atol=1e-9)


def test_sgd_symmetric_device_converges_in_the_program_task():
    """Analog SGD with the ideal symmetric device (constant step, no variation), 10000 states
    (dw = 2e-4 = 0.01 % of the range) and perfect I/O on a 5x5 task: the weight error drops from
    ~10 % to below 0.05 % (5 device steps; the stochastic pulse updates leave W jittering about
    one step around W*)."""
    cfg = ProgramConfig(algorithm=("sgd",), n_states=(10000,), sigma_r=(0.0,), seeds=2, lr=(0.1,), steps=2000,
                        out_size=5, in_size=5, io="perfect", device=DeviceSpec("symmetric"))
    res = run_program(cfg)
    dw = res.replicas[0].dev_w.dw_min
    assert math.isclose(dw, 2e-4)
    assert np.all(res.traces[:, 0] > 2.0)
    assert np.all(res.final_error < 0.05), res.final_error
