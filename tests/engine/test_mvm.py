"""Analog MVM with I/O non-idealities (docs/io.md §3): perfect MVM, DAC/ADC quantisation error
bounds, noise and bound management, column reads."""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import ConstantStepDevice, IOConfig
from analogtrain.engine.mvm import analog_mvm, read_lines
from analogtrain.seeding import generator
from analogtrain.engine.tile import AnalogTile

BIG = ConstantStepDevice(dw_min=0.001, w_max=100.0, w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)


def _tile(io, out=5, inp=8, R=3, dtype=np.float64, seed=0):
    t = AnalogTile(BIG, out, inp, n_replicas=R, io=io, dtype=dtype, rng_noise=generator(seed, "noise"))
    return t


def _weights(shape, scale=0.5, seed=1):
    return np.random.default_rng(seed).uniform(-scale, scale, size=shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_perfect_forward_and_backward_are_exact(dtype):
    io = IOConfig(is_perfect=True)
    t = _tile(io, dtype=dtype)
    t.set_weights(_weights(t.shape))
    x = np.random.default_rng(2).normal(size=(3, 4, 8)).astype(dtype)
    y = t.forward(x)
    assert y.dtype == dtype
    assert np.array_equal(y, np.matmul(x, np.swapaxes(t.w, -1, -2)))
    np.testing.assert_allclose(y, np.einsum("roi,rbi->rbo", t.w.astype(np.float64), x.astype(np.float64)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 0)
    d = np.random.default_rng(3).normal(size=(3, 4, 5)).astype(dtype)
    z = t.backward(d, io)
    assert np.array_equal(z, np.matmul(d, t.w))
    # single vectors (R, in) -> (R, out)
    x1 = x[:, 0]
    assert np.array_equal(t.forward(x1), np.matmul(x1[:, None, :], np.swapaxes(t.w, -1, -2))[:, 0])


def quant_bound(W, x, io, red=1.0):
    """|y - W x| <= s red (inp_step/2 sum_j |W_ij| + out_step/2), s = max|x| (noise management)."""
    s = np.abs(x).max(-1)[..., None]
    row = np.abs(W).sum(-1)[:, None, :]  # (R, 1, out)
    return s * red * (io.inp_step / 2 * row + io.out_step / 2)


@pytest.mark.parametrize("io", [IOConfig(out_noise=0.0, inp_noise=0.0),
                                IOConfig(out_noise=0.0, inp_res=1 / 254, out_res=1 / 254, out_bound=10.0),
                                IOConfig(out_noise=0.0, inp_res=0.05, out_res=0.01, out_bound=20.0)])
def test_quantisation_error_is_bounded(io):
    t = _tile(io)
    W = _weights(t.shape)
    t.set_weights(W)
    x = np.random.default_rng(5).normal(scale=3.0, size=(3, 50, 8))
    y = t.forward(x)
    exact = np.einsum("roi,rbi->rbo", W, x)
    # no saturation here: |W x| / max|x| <= sum |W_ij| <= 4 < out_bound
    assert np.abs(exact / np.abs(x).max(-1, keepdims=True)).max() < io.out_bound
    err = np.abs(y - exact)
    bound = quant_bound(W, x, io)
    assert np.all(err <= bound * (1 + 1e-9) + 1e-12)
    # the bound is not vacuous: quantisation is visible
    assert err.max() > 0.05 * bound.max()
    # ADC grid: y / (s Dout) is an integer
    q = y / (np.abs(x).max(-1, keepdims=True) * io.out_step)
    np.testing.assert_allclose(q, np.round(q), atol=1e-6)


def test_noise_management_scales_input():
    """With NM the output scales with the input exactly (the DAC sees x / max|x|)."""
    io = IOConfig(out_noise=0.0)
    t = _tile(io)
    t.set_weights(_weights(t.shape))
    x = np.random.default_rng(6).normal(size=(3, 10, 8))
    y1 = t.forward(x)
    y2 = t.forward(x * 8.0)
    np.testing.assert_allclose(y2, 8.0 * y1, rtol=1e-12, atol=1e-12)
    # zero input -> exactly zero output, even with output noise
    t2 = _tile(IOConfig(out_noise=0.5))
    assert not t2.forward(np.zeros((3, 8))).any()


def test_bound_management_recovers_saturated_output():
    """W x = 20 > out_bound = 12: halving the input once fits (10 < 12); the digital rescale by
    2 restores ~20, within the quantisation error of the halved pass (times red = 2)."""
    io = IOConfig(out_noise=0.0)
    t = _tile(io, out=2, inp=8, R=1)
    W = np.zeros((1, 2, 8))
    W[0, 0] = 2.5       # row 0: 8 * 2.5 = 20 at x = 1
    W[0, 1] = 0.25      # row 1: 2, never saturates
    t.set_weights(W)
    x = np.ones((1, 8)) * 0.7
    y = t.forward(x)
    exact = W[0] @ x[0]
    assert exact[0] / 0.7 > io.out_bound  # saturates at red = 1
    bound = quant_bound(W, x[:, None, :], io, red=2.0)[0, 0]
    assert np.all(np.abs(y[0] - exact) <= bound + 1e-12)
    assert y[0, 0] > io.out_bound * 0.7 * 1.5  # clearly above the clip level
    # without bound management the output is clipped at +-out_bound * max|x|
    y_none = t.forward(x, IOConfig(out_noise=0.0, bound_management="none"))
    assert y_none[0, 0] == pytest.approx(io.out_bound * 0.7)
    y_neg = t.forward(-x, IOConfig(out_noise=0.0, bound_management="none"))
    assert y_neg[0, 0] == pytest.approx(-io.out_bound * 0.7)
    assert abs(y_none[0, 1] - exact[1]) <= quant_bound(W, x[:, None, :], io)[0, 0, 1] + 1e-12


def test_bound_management_per_sample_and_replica():
    """Only the saturated samples are recomputed, each with its own replica's weights and its
    own reduction factor; the others equal the pass without bound management bit for bit."""
    io = IOConfig(out_noise=0.0)
    t = _tile(io, out=3, inp=8, R=2)
    W = _weights(t.shape, scale=0.2, seed=7)
    W[0, 1] = 2.5    # replica 0, row 1: 20 at x = 1 -> red 2
    W[1, 2] = -5.0   # replica 1, row 2: -40 at x = 1 -> -20 at red 2, -10 at red 4
    t.set_weights(W)
    # noise management divides by max|x|: one large entry and small others keep |W x|/max|x| < 12 ...
    x = np.random.default_rng(8).uniform(-0.05, 0.05, size=(2, 5, 8))
    x[:, :, 0] = 0.5
    x[:, 2] = 1.0    # ... except sample 2, which saturates in both replicas
    y = t.forward(x)
    y_none = t.forward(x, IOConfig(out_noise=0.0, bound_management="none"))
    exact = np.einsum("roi,rbi->rbo", W, x)
    others = [0, 1, 3, 4]
    assert np.array_equal(y[:, others], y_none[:, others])
    for r, red in ((0, 2.0), (1, 4.0)):
        bound = quant_bound(W[r:r + 1], x[r:r + 1, 2:3], io, red=red)[0, 0]
        assert np.all(np.abs(y[r, 2] - exact[r, 2]) <= bound + 1e-12), (r, y[r, 2], exact[r, 2])
    assert np.all(np.abs(y_none[:, 2]) <= io.out_bound + 1e-12)


def test_bound_management_gives_up_at_its_limit():
    """red takes 1, 2, 4, 8, 16 (limit max_bm_res / inp_step = 15.75): an output 40x the bound
    stays clipped at out_bound * 16 * max|x|."""
    io = IOConfig(out_noise=0.0)
    t = _tile(io, out=1, inp=8, R=1)
    t.set_weights(np.full((1, 1, 8), 60.0))  # 480 = 40 * 12
    y = t.forward(np.ones((1, 8)))
    assert y[0, 0] == pytest.approx(12.0 * 16)
    # a larger max_bm_res lets it go on until it fits: 480 / 64 = 7.5 < 12
    y2 = t.forward(np.ones((1, 8)), IOConfig(out_noise=0.0, max_bm_res=10.0))
    assert y2[0, 0] == pytest.approx(480.0, abs=64 * (IOConfig().out_step / 2 + 8 * 60 * IOConfig().inp_step / 2))


def test_backward_never_uses_bound_management():
    io = IOConfig(out_noise=0.0)  # bound_management = iterative
    t = _tile(io, out=8, inp=2, R=1)
    W = np.zeros((1, 8, 2))
    W[0, :, 0] = 2.5  # W^T d = 20 at d = 1
    t.set_weights(W)
    d = np.ones((1, 8))
    assert t.io_backward.bound_management == "none"
    for z in (t.backward(d), t.backward(d, io)):  # even when given an I/O with BM on
        assert z[0, 0] == pytest.approx(io.out_bound)
    # the same MVM forward (transposed weights) with BM recovers 20
    y = analog_mvm(np.swapaxes(t.w, 1, 2).copy(), d[:, None, :], io, generator(0, "noise"))
    assert y[0, 0, 0] == pytest.approx(20.0, abs=0.5)


def test_output_noise_statistics():
    """out_noise sigma per output before the ADC: with an ADC step much smaller than sigma the
    output std is ~ sigma * max|x| (quantisation adds Dout^2/12). 20000 samples: SE of the std
    is std/200; tolerance 5 SE plus the quantisation term."""
    sigma = 0.1
    io = IOConfig(out_noise=sigma, out_res=0.0, inp_res=0.0)
    t = _tile(io, out=1, inp=4, R=1)
    t.set_weights(np.zeros((1, 1, 4)))
    x = np.tile([[0.5, -2.0, 1.0, 0.0]], (20000, 1))[None]
    y = t.forward(x)[0, :, 0]
    assert abs(y.mean()) < 5 * sigma * 2 / np.sqrt(y.size)
    assert abs(y.std() - sigma * 2.0) < 5 * sigma * 2 / np.sqrt(2 * y.size)


def test_read_column_is_quantised_column():
    io = IOConfig(out_noise=0.0)
    t = _tile(io, out=6, inp=4, R=2)
    W = _weights(t.shape, scale=3.0)
    t.set_weights(W)
    step = io.out_step
    for j in range(4):
        col = t.read_column(j)
        assert col.shape == (2, 6)
        np.testing.assert_allclose(col, np.rint(W[:, :, j] / step) * step, rtol=0, atol=1e-12)
        assert np.all(np.abs(col - W[:, :, j]) <= step / 2 + 1e-12)
    for i in range(6):
        np.testing.assert_allclose(t.read_row(i), np.rint(W[:, i, :] / step) * step, atol=1e-12)
    # reads clip at +-out_bound (no bound management)
    t.set_weights(np.full(t.shape, 50.0))
    assert np.all(t.read_column(0) == io.out_bound)
    # a perfect read is exact
    assert np.array_equal(read_lines(t.w, 1, IOConfig(is_perfect=True), generator(0, "noise")), t.w[:, :, 1])


def test_read_column_noise():
    """Read noise: std out_noise per read (ADC step 0.047 << 0.5: quantisation adds ~0.014^2).
    3 replicas x 500 outputs x 20 reads = 30000 samples; SE of the std std/245; tolerance 5 SE + quantisation."""
    io = IOConfig(out_noise=0.5)
    t = _tile(io, out=500, inp=3, R=3)
    t.set_weights(0.1)
    reads = np.stack([t.read_column(1) for _ in range(20)])
    dev = reads - 0.1
    n = dev.size
    expected = np.sqrt(0.5 ** 2 + io.out_step ** 2 / 12)
    assert abs(dev.std() - expected) < 5 * expected / np.sqrt(2 * n)
    assert abs(dev.mean()) < 5 * expected / np.sqrt(n)
