"""The Tiki-Taka family (TTv2, c-TTv2, AGAD) of ``analogtrain.engine.algorithms.transfer``.

The transfer steps are checked against hand-computed cases on a 2x3 tile (out=2, in=3)
with noise-free, variation-free constant-step devices and perfect I/O, so every read
of A is exactly the value the test wrote into A (``tile.w[...] =``) and every W pulse
is exactly one step ``dw_W``. The updates are driven through ``update`` with x = d = 0
(A receives no pulses; each sample still triggers one transfer with n_s = 1), so the
column schedule, lambda_H and the transfer read/threshold/write/chopper code are the
real ones. Expected values come from

* literal numbers worked out by hand in the comments (docs/algorithms.md §4.4.3 and §4.6.2), and
* ``reference()``, a scalar transcription of the pseudocode of docs/algorithms.md §4.4.3 / §4.6.2,
  run for many steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.results.arrays import algorithm_arrays
from analogtrain.engine.algorithms import build_stack
from analogtrain.engine.algorithms.transfer import TransferFamily, chunk_reads
from analogtrain.config import ConstantStepDevice, IOConfig, UpdateConfig
from analogtrain.config.algorithm import TransferConfig
from analogtrain.errors import ConfigError
from analogtrain.seeding import generator
from analogtrain.engine.tile import AnalogTile

OUT, IN = 2, 3
DW_A = 0.125      # lambda_H = lr / DW_A (transfer_lr 1, buffer_granularity 1, auto_granularity 0)
DW_W = 0.0625
PERFECT = IOConfig(is_perfect=True)


def ideal_device(dw):
    return ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                              w_max=100.0, w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)


def cfg(kind="ttv2", **kw):
    base = dict(auto_granularity=0.0, fast_lr=0.1, desired_bl=5)
    if kind == "ttv2":
        base.update(in_chop_prob=0.0)
    elif kind == "c-ttv2":
        base.update(in_chop_prob=0.1, in_chop_random=True)
    elif kind == "agad":
        base.update(in_chop_prob=0.5, in_chop_random=False, dynamic_reference=True, tail_weightening=1.0)
    base.update(kw)
    return TransferConfig(**base)


def family(cfgs, out=OUT, inp=IN, seed=0, dw_a=DW_A, dw_w=DW_W, a_update=None):
    R = len(cfgs)
    tile = lambda dw, upd, idx: AnalogTile(  # noqa: E731
        ideal_device(dw), out, inp, n_replicas=R, io=PERFECT, update=upd,
        rng_device=[generator(seed, "device", r, idx) for r in range(R)],
        rng_pulses=generator(seed, "pulses", idx), rng_noise=generator(seed, "noise", idx), dtype=np.float64)
    a = tile(dw_a, a_update or UpdateConfig(desired_bl=cfgs[0].desired_bl), 1)
    w = tile(dw_w, UpdateConfig(desired_bl=1, update_management=False, update_bl_management=False), 0)
    return TransferFamily(a, w, cfgs, generator(seed, "chopper", 0))


def zero_step(fam, lr):
    """One sample with x = d = 0: no A pulses, one transfer (n_s = 1)."""
    R = fam.n_replicas
    fam.update(np.zeros((R, 1, fam.in_size)), np.zeros((R, 1, fam.out_size)), lr)


# --------------------------------------------------------------------- scalar reference
def reference(reads, lam, *, dynamic=False, n_c=0, mu=1.0, warm_up=True, max_steps=1, momentum=0.0,
              forget=True, flips=None):
    """docs/algorithms.md §4.4.3 / §4.6.2 for one replica, element by element.

    reads : (S, out, in) the value of A at each of S transfers (transfer t reads column t mod in)
    flips : optional (S,) bools, the random chopper flips after each read (c-TTv2); AGAD
            flips on its regular schedule. Returns a list of per-step snapshots.
    """
    S, m, n = reads.shape
    H = np.zeros((m, n))
    Wn = np.zeros((m, n))           # net W pulses
    P = np.zeros((m, n))
    P_ref = np.zeros((m, n))
    c_in = np.ones(n)
    switched = [False] * n
    T = 0
    snaps = []
    for t in range(S):
        j = t % n
        v = reads[t][:, j]
        cur = (T % n_c) + 1 if n_c else 0
        was = switched[j]
        switched[j] = False
        for i in range(m):
            if dynamic:
                if was:
                    P_ref[i, j] = P[i, j]
                delta = v[i] - P_ref[i, j]
            else:
                delta = v[i]
            if c_in[j] != 1.0:             # c_out stays +1
                delta = -delta
            omega = H[i, j] + lam * delta
            if abs(omega) >= 1:
                k = max(-max_steps, min(max_steps, math.trunc(omega)))
                omega = momentum * omega if forget else omega - (1 - momentum) * k
                if not (dynamic and warm_up and T <= n_c):
                    Wn[i, j] += k
            H[i, j] = omega
            if dynamic:
                P[i, j] = (1 - mu) * P[i, j] + mu * v[i]
        flip = (dynamic and cur == n_c) or (flips is not None and flips[t])
        if flip:
            c_in[j] = -c_in[j]
            switched[j] = True
        if j == n - 1:
            T += 1
        snaps.append(dict(H=H.copy(), W=Wn.copy(), P=P.copy(), P_ref=P_ref.copy(), c_in=c_in.copy(), T=T))
    return snaps


def run_with_reads(fam, reads, lr):
    """Write reads[t] into A before transfer t; returns per-step snapshots of the family
    (H, W in pulses of DW_W, P, P_ref, c_in, T) and the observed flips."""
    snaps = []
    for t in range(reads.shape[0]):
        fam.A.w[...] = reads[t]
        before = fam.c_in.copy()
        zero_step(fam, lr)
        np.testing.assert_array_equal(fam.A.w, reads[t])       # x = 0: A untouched
        snaps.append(dict(H=fam.H.copy(), W=fam.W.w / DW_W, c_in=fam.c_in.copy(), T=fam.T,
                          flips=fam.c_in[:, t % fam.in_size] != before[:, t % fam.in_size],
                          P=None if fam.P is None else fam.P.copy(),
                          P_ref=None if fam.P_ref is None else fam.P_ref.copy()))
    return snaps


def assert_matches(snaps, ref, r, keys=("H", "W", "c_in"), atol=1e-12):
    for t, (s, e) in enumerate(zip(snaps, ref)):
        for k in keys:
            np.testing.assert_allclose(s[k][r], e[k], atol=atol, rtol=0, err_msg=f"step {t}, {k}")
        assert s["T"] == e["T"], f"step {t}: T"


A_STATIC = np.array([[0.375, -0.5, 0.0625],
                     [-0.25, 0.75, 0.0]])


# ----------------------------------------------------------------------------- TTv2
def test_ttv2_hand_computed_transfers():
    """lambda_H = lr / dw_A = 0.25 / 0.125 = 2; reads of the columns add 2 A[:, j] to H[:, j]:
    column 0: (0.75, -0.5), column 1: (-1.0, 1.5), column 2: (0.125, 0)."""
    fam = family([cfg("ttv2")])
    fam.A.w[...] = A_STATIC
    expected = [
        # after read 1 (j=0): H0 = (0.75, -0.5)
        ([[0.75, 0, 0], [-0.5, 0, 0]], [[0, 0, 0], [0, 0, 0]]),
        # read 2 (j=1): omega = (-1, 1.5) -> n = (-1, +1), H1 = 0; W[0,1] -= dw, W[1,1] += dw
        ([[0.75, 0, 0], [-0.5, 0, 0]], [[0, -1, 0], [0, 1, 0]]),
        # read 3 (j=2): H2 = (0.125, 0)
        ([[0.75, 0, 0.125], [-0.5, 0, 0]], [[0, -1, 0], [0, 1, 0]]),
        # read 4 (j=0): omega = (1.5, -1.0) -> n = (+1, -1), H0 = 0
        ([[0, 0, 0.125], [0, 0, 0]], [[1, -1, 0], [-1, 1, 0]]),
        # read 5 (j=1): again n = (-1, +1)
        ([[0, 0, 0.125], [0, 0, 0]], [[1, -2, 0], [-1, 2, 0]]),
        # read 6 (j=2): H2 = (0.25, 0)
        ([[0, 0, 0.25], [0, 0, 0]], [[1, -2, 0], [-1, 2, 0]]),
        # read 7 (j=0): H0 = (0.75, -0.5), no pulse
        ([[0.75, 0, 0.25], [-0.5, 0, 0]], [[1, -2, 0], [-1, 2, 0]]),
    ]
    for t, (H, Wp) in enumerate(expected):
        zero_step(fam, 0.25)
        np.testing.assert_allclose(fam.H[0], H, atol=1e-15, err_msg=f"H after read {t + 1}")
        np.testing.assert_allclose(fam.W.w[0], np.array(Wp) * DW_W, atol=1e-15, err_msg=f"W after read {t + 1}")
        assert fam.k == (t + 1) % IN
        assert fam.T == (t + 1) // IN
        np.testing.assert_array_equal(fam.c_in, 1.0)
        np.testing.assert_array_equal(fam.c_out, 1.0)
    np.testing.assert_array_equal(fam.A.w[0], A_STATIC)
    assert fam.n_transfers == 7
    assert fam.w_writes == 6          # |n| summed over the reads 2, 4, 5 (2 pulses each)


def test_ttv2_many_steps_match_reference_and_lambda_h_scales_with_lr():
    """Two replicas with lr 0.25 and 0.1 (lambda_H = 2 and 0.8), A changing at every read."""
    rng = np.random.default_rng(3)
    reads = np.round(rng.uniform(-0.6, 0.6, size=(60, OUT, IN)) * 64) / 64
    fam = family([cfg("ttv2"), cfg("ttv2")])
    snaps = run_with_reads(fam, np.repeat(reads[:, None], 2, axis=1), np.array([0.25, 0.1]))
    assert_matches(snaps, reference(reads, 2.0), 0)
    assert_matches(snaps, reference(reads, 0.8), 1, atol=1e-9)
    assert np.abs(snaps[-1]["W"][0]).sum() > np.abs(snaps[-1]["W"][1]).sum() > 0


def test_ttv2_max_steps_momentum_and_no_forget():
    """max_steps 2 lets one write carry 2 pulses; forget_buffer False keeps the remainder
    (H <- omega - (1 - momentum) n); forget_buffer True with momentum keeps momentum * omega."""
    # column 1 reads (-1.0, 1.5) * 2.5 / 2 per read with lambda_H = 2.5 (lr = 0.3125)
    reads = np.repeat(A_STATIC[None], 12, axis=0)
    fam = family([cfg("ttv2", max_steps=2, forget_buffer=False, momentum=0.25)] * 2)
    snaps = run_with_reads(fam, np.repeat(reads[:, None], 2, axis=1), 0.3125)
    ref = reference(reads, 2.5, max_steps=2, forget=False, momentum=0.25)
    assert_matches(snaps, ref, 0)
    # by hand, read 2 (j=1): omega = 2.5 * (-0.5, 0.75) = (-1.25, 1.875) -> n = (-1, 1),
    # H1 = omega - 0.75 n = (-0.5, 1.125)
    np.testing.assert_allclose(snaps[1]["H"][0][:, 1], [-0.5, 1.125], atol=1e-15)
    np.testing.assert_allclose(snaps[1]["W"][0][:, 1], [-1, 1], atol=1e-12)
    # read 5 (j=1): omega = (-1.75, 3.0) -> n = (-1, 2) (clipped at 2 only for 3.0 -> 2)
    np.testing.assert_allclose(snaps[4]["W"][0][:, 1], [-2, 3], atol=1e-12)
    np.testing.assert_allclose(snaps[4]["H"][0][:, 1], [-1.0, 1.5], atol=1e-15)

    fam = family([cfg("ttv2", momentum=0.5)])
    snaps = run_with_reads(fam, reads[:, None], 0.3125)
    assert_matches(snaps, reference(reads, 2.5, momentum=0.5), 0)
    # read 2: omega = (-1.25, 1.875) fire -> H = 0.5 omega
    np.testing.assert_allclose(snaps[1]["H"][0][:, 1], [-0.625, 0.9375], atol=1e-15)


def test_transfer_every_batches_and_column_schedule():
    """n_s = 2: one transfer per 2 samples, across mini-batch boundaries; columns 0, 1, 2, 0, ..."""
    fam = family([cfg("ttv2", transfer_every=2)])
    fam.A.w[...] = np.array([[0.001, 0.01, 0.1], [0.0, 0.0, 0.0]])
    lam = 0.25 / DW_A
    for B in (5, 3, 4):                    # 12 samples -> 6 transfers
        fam.update(np.zeros((1, B, IN)), np.zeros((1, B, OUT)), 0.25)
    assert fam.t == 12 and fam.n_transfers == 6 and fam.k == 0 and fam.T == 2
    np.testing.assert_allclose(fam.H[0, 0], lam * 2 * np.array([0.001, 0.01, 0.1]), rtol=1e-12)
    fam.update(np.zeros((1, 3, IN)), np.zeros((1, 3, OUT)), 0.25)    # sample 14 -> column 0 once more
    assert fam.n_transfers == 7 and fam.k == 1
    np.testing.assert_allclose(fam.H[0, 0], lam * np.array([0.003, 0.02, 0.2]), rtol=1e-12)


def test_chunk_reads_by_hand():
    """n_s = 2, 3 columns, 1 sample seen, next column 2: samples 2..11 of the run are read
    after the even ones, columns 2, 0, 1, 2, 0; with output choppers the chunk ends after the
    read of the last column (2), at once."""
    assert chunk_reads(10, 1, 2, 2, 3, False) == (10, [(0, 2), (2, 0), (4, 1), (6, 2), (8, 0)], 11, 1)
    assert chunk_reads(10, 1, 2, 2, 3, True) == (1, [(0, 2)], 2, 0)
    assert chunk_reads(10, 2, 0, 2, 3, True) == (6, [(1, 0), (3, 1), (5, 2)], 8, 0)
    assert chunk_reads(3, 2, 0, 2, 3, True) == (3, [(1, 0)], 5, 1)      # the batch ends first
    assert chunk_reads(4, 0, 1, 1, 3, False) == (4, [(0, 1), (1, 2), (2, 0), (3, 1)], 4, 2)


def test_running_maxima_over_the_batch():
    fam = family([cfg("c-ttv2", auto_momentum=0.99, transfer_every=1000)])
    x = np.zeros((1, 4, IN))
    d = np.zeros((1, 4, OUT))
    x[0, 1, 2], d[0, 3, 0] = -0.5, 0.25
    fam.update(x, d, 0.1)
    assert fam.m_x[0] == 0.5 and fam.m_d[0] == 0.25            # first value initialises
    x[0, 1, 2], d[0, 3, 0] = 1.0, -1.0
    fam.update(x, d, 0.1)
    tau = 0.01 / 4
    assert fam.m_x[0] == pytest.approx(0.5 * (1 - tau) + tau * 1.0, rel=1e-14)
    assert fam.m_d[0] == pytest.approx(0.25 * (1 - tau) + tau * 1.0, rel=1e-14)
    fam.update(np.zeros((1, 2, IN)), np.zeros((1, 2, OUT)), 0.1)  # zeros are ignored
    assert fam.m_x[0] == pytest.approx(0.5 * (1 - tau) + tau * 1.0, rel=1e-14)


# --------------------------------------------------------------------------- c-TTv2
def test_cttv2_hand_computed_chopper_every_read():
    """in_chop_prob 1 (random): the chopper of column j flips right after each read of j, so the
    reads of a column alternate sign and a static A cancels: H and W return to zero."""
    fam = family([cfg("c-ttv2", in_chop_prob=1.0)])
    fam.A.w[...] = A_STATIC
    expected = [
        # (H, W pulses, c_in) after each read; lambda_H = 2
        ([[0.75, 0, 0], [-0.5, 0, 0]], [[0, 0, 0], [0, 0, 0]], [-1, 1, 1]),
        ([[0.75, 0, 0], [-0.5, 0, 0]], [[0, -1, 0], [0, 1, 0]], [-1, -1, 1]),
        ([[0.75, 0, 0.125], [-0.5, 0, 0]], [[0, -1, 0], [0, 1, 0]], [-1, -1, -1]),
        # read 4 (j=0) demodulated with c = -1: H0 = (0.75 - 0.75, -0.5 + 0.5)
        ([[0, 0, 0.125], [0, 0, 0]], [[0, -1, 0], [0, 1, 0]], [1, -1, -1]),
        # read 5 (j=1): omega = (+1, -1.5) -> n = (+1, -1): W back to 0
        ([[0, 0, 0.125], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], [1, 1, -1]),
        ([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], [1, 1, 1]),
    ]
    for t, (H, Wp, c) in enumerate(expected):
        zero_step(fam, 0.25)
        np.testing.assert_allclose(fam.H[0], H, atol=1e-15, err_msg=f"H after read {t + 1}")
        np.testing.assert_allclose(fam.W.w[0], np.array(Wp) * DW_W, atol=1e-15, err_msg=f"W after read {t + 1}")
        np.testing.assert_array_equal(fam.c_in[0], c, err_msg=f"c_in after read {t + 1}")


def test_cttv2_random_flips_demodulate_with_the_sign_of_the_period_read():
    """Random flips (p = 0.3); given the observed flips, H and W follow docs/algorithms.md §4.4.3 exactly."""
    rng = np.random.default_rng(11)
    reads = np.round(rng.uniform(-0.6, 0.6, size=(150, OUT, IN)) * 64) / 64
    fam = family([cfg("c-ttv2", in_chop_prob=0.3)])
    snaps = run_with_reads(fam, reads[:, None], 0.25)
    flips = np.array([s["flips"][0] for s in snaps])
    assert 20 < flips.sum() < 80
    assert_matches(snaps, reference(reads, 2.0, flips=flips), 0)


def test_cttv2_update_of_A_is_modulated_by_the_choppers():
    """A <- A - lambda_A (c_out d)(c_in x)^T: a column with c_in = -1 moves the other way."""
    fam = family([cfg("c-ttv2", transfer_every=1000)])
    fam.c_in[0, 1] = -1.0
    fam.c_out[0, 1] = -1.0
    for _ in range(20):
        fam.update(np.ones((1, 1, IN)), np.ones((1, 1, OUT)), 0.1)
    A = fam.A.w[0]
    sign = np.outer([1, -1], [1, -1, 1])              # c_out c_in
    assert np.all(A * sign <= 0)                      # moves along -sign
    assert np.all(np.abs(A) > 0)


def test_output_chopper_flips_after_full_passes():
    """out_chop_prob 1: every c_out[i] flips after the last column; reads are demodulated by c_out[i]."""
    fam = family([cfg("ttv2", out_chop_prob=1.0)])
    fam.A.w[...] = 0.0625
    lam = 2.0
    zero_step(fam, 0.25)
    zero_step(fam, 0.25)
    np.testing.assert_array_equal(fam.c_out[0], [1, 1])
    zero_step(fam, 0.25)                                  # last column -> flip
    np.testing.assert_array_equal(fam.c_out[0], [-1, -1])
    np.testing.assert_allclose(fam.H[0], lam * 0.0625)
    for _ in range(3):
        zero_step(fam, 0.25)
    np.testing.assert_array_equal(fam.c_out[0], [1, 1])
    np.testing.assert_allclose(fam.H[0], 0.0, atol=1e-15)    # +0.125 then -0.125


def test_cttv2_flip_rate_per_read_is_in_chop_prob():
    """Random chopper: each read of a column flips its chopper with probability p, independently.

    2000 passes x 3 columns = 6000 reads per replica. Flip counts are Binomial(6000, p):
    p = 0.1 -> 600 +- 23, p = 0.3 -> 1800 +- 35.5; tolerance 4.5 standard deviations
    (a correct implementation fails with probability < 1e-5; the run is seeded). Per column
    (2000 reads) the same with 4.5 sd. A TTv2 replica (p = 0) in the same stack never flips,
    and a read only ever flips the chopper of the column just read.
    """
    ps = [0.1, 0.3, 0.0]
    fam = family([cfg("c-ttv2", in_chop_prob=ps[0]), cfg("c-ttv2", in_chop_prob=ps[1]), cfg("ttv2")], seed=5)
    lam = np.zeros(3)
    counts = np.zeros((3, IN))
    n_pass = 2000
    for _ in range(n_pass):
        for j in range(IN):
            before = fam.c_in.copy()
            fam.transfer_many([j], lam)
            changed = fam.c_in != before
            others = np.delete(changed, j, axis=1)
            assert not others.any()
            counts[:, j] += changed[:, j]
    n = n_pass * IN
    for r, p in enumerate(ps):
        total = counts[r].sum()
        sd = math.sqrt(n * p * (1 - p))
        assert abs(total - n * p) <= 4.5 * sd + 1e-9, (p, total)
        sd_col = math.sqrt(n_pass * p * (1 - p))
        assert np.all(np.abs(counts[r] - n_pass * p) <= 4.5 * sd_col + 1e-9), (p, counts[r])
    assert counts[2].sum() == 0


# ----------------------------------------------------------------------------- AGAD
def agad_reads(n_pass):
    """Per pass T (all three columns read within the pass), the value of A:

    (0,0): 0.5 + 0.125 T              (offset plus drift)
    (1,1): accumulates +0.25 c_T       (a chopper-modulated gradient, c = + + - - + + ...)
    (0,1): -0.25                       (pure static offset)
    (0,2): 0.125 (-1)^T
    (1,0): 0
    (1,2): -0.5 - 0.25 * accumulated c (an offset plus the opposite gradient)
    """
    reads = np.zeros((n_pass * IN, OUT, IN))
    acc = 0.0
    for T in range(n_pass):
        c = 1.0 if (T // 2) % 2 == 0 else -1.0        # N_c = 2
        acc += 0.25 * c
        A = np.array([[0.5 + 0.125 * T, -0.25, 0.125 * (-1) ** T],
                      [0.0, acc, -0.5 - acc]])
        reads[T * IN:(T + 1) * IN] = A
    return reads


def test_agad_hand_computed():
    """in_chop_prob 0.5 (regular) -> N_c = 2; tail_weightening 1 -> mu = min(1/2, 1) = 0.5;
    lambda_H = lr / dw_A = 0.125 / 0.125 = 1; warm-up: no W writes while T <= 2."""
    n_pass = 6
    reads = agad_reads(n_pass)
    fam = family([cfg("agad")])
    assert fam.n_c[0] == 2 and fam.mu[0] == 0.5
    snaps = run_with_reads(fam, reads[:, None], 0.125)
    at = lambda T, j: snaps[T * IN + j]   # noqa: E731  snapshot after the read of column j in pass T

    # element (0, 0): v_T = 0.5, 0.625, 0.75, 0.875, 1.0, 1.125
    # pass 0: c = +1, P_ref = 0: delta = 0.5 -> H = 0.5; P = 0.25
    assert at(0, 0)["H"][0][0, 0] == 0.5 and at(0, 0)["P"][0][0, 0] == 0.25
    assert at(0, 0)["P_ref"][0][0, 0] == 0.0
    # pass 1: delta = 0.625 -> omega = 1.125 fires, H = 0 but no W write (warm-up, T = 1);
    # P = 0.125 + 0.3125 = 0.4375; the regular flip ((1 mod 2) + 1 == 2) -> c = -1
    assert at(1, 0)["H"][0][0, 0] == 0.0 and at(1, 0)["W"][0][0, 0] == 0.0
    assert at(1, 0)["P"][0][0, 0] == 0.4375
    np.testing.assert_array_equal(at(1, 0)["c_in"][0], [-1, 1, 1])
    np.testing.assert_array_equal(at(1, 2)["c_in"][0], [-1, -1, -1])
    # pass 2: first read after the flip: P_ref = P (before this read) = 0.4375;
    # delta = -(0.75 - 0.4375) = -0.3125 -> H = -0.3125; P = 0.21875 + 0.375 = 0.59375
    assert at(2, 0)["P_ref"][0][0, 0] == 0.4375
    assert at(2, 0)["H"][0][0, 0] == -0.3125 and at(2, 0)["P"][0][0, 0] == 0.59375
    # pass 3: delta = -(0.875 - 0.4375) -> H = -0.75; P = 0.296875 + 0.4375 = 0.734375; flip -> +1
    assert at(3, 0)["H"][0][0, 0] == -0.75 and at(3, 0)["P"][0][0, 0] == 0.734375
    assert at(3, 0)["P_ref"][0][0, 0] == 0.4375
    np.testing.assert_array_equal(at(3, 2)["c_in"][0], [1, 1, 1])
    # pass 4: P_ref = 0.734375; delta = +(1.0 - 0.734375) = 0.265625 -> H = -0.484375
    assert at(4, 0)["P_ref"][0][0, 0] == 0.734375 and at(4, 0)["H"][0][0, 0] == -0.484375

    # element (1, 1): v = 0.25, 0.5, 0.25, 0, 0.25, 0.5
    # pass 0: H = 0.25, P = 0.125; pass 1: H = 0.75, P = 0.3125 (flip)
    assert at(1, 1)["H"][0][1, 1] == 0.75 and at(1, 1)["P"][0][1, 1] == 0.3125
    # pass 2: P_ref = 0.3125, delta = -(0.25 - 0.3125) = 0.0625 -> H = 0.8125; no W (T = 2 <= N_c)
    assert at(2, 1)["H"][0][1, 1] == 0.8125 and at(2, 1)["W"][0][1, 1] == 0.0
    # pass 3: delta = -(0 - 0.3125) -> omega = 1.125: the first W write (T = 3 > N_c), H = 0
    assert at(3, 1)["H"][0][1, 1] == 0.0 and at(3, 1)["W"][0][1, 1] == 1.0
    assert at(3, 1)["P"][0][1, 1] == 0.140625
    # pass 4: P_ref = 0.140625; delta = 0.25 - 0.140625 -> H = 0.109375
    assert at(4, 1)["P_ref"][0][1, 1] == 0.140625 and at(4, 1)["H"][0][1, 1] == 0.109375

    # and everything against the scalar transcription of docs/algorithms.md §4.6.2
    assert_matches(snaps, reference(reads, 1.0, dynamic=True, n_c=2, mu=0.5), 0, keys=("H", "W", "c_in", "P",
                                                                                       "P_ref"))


def test_agad_many_passes_warm_up_off_and_tail_weightening():
    """Against the reference: warm_up off (W writes from the first pass), beta = 5 with N_c = 4
    (mu = min(5/4, 1) = 1: P is the last read), beta = 1 with N_c = 4 (mu = 0.25)."""
    n_pass = 24
    rng = np.random.default_rng(8)
    reads = agad_reads(n_pass) + np.round(rng.normal(0, 0.1, size=(n_pass * IN, OUT, IN)) * 64) / 64
    cfgs = [cfg("agad", warm_up=False), cfg("agad", in_chop_prob=0.25, tail_weightening=5.0),
            cfg("agad", in_chop_prob=0.25, tail_weightening=1.0)]
    fam = family(cfgs)
    np.testing.assert_array_equal(fam.n_c, [2, 4, 4])
    np.testing.assert_allclose(fam.mu, [0.5, 1.0, 0.25])
    snaps = run_with_reads(fam, np.repeat(reads[:, None], 3, axis=1), np.array([0.125, 0.25, 0.25]))
    keys = ("H", "W", "c_in", "P", "P_ref")
    assert_matches(snaps, reference(reads, 1.0, dynamic=True, n_c=2, mu=0.5, warm_up=False), 0, keys=keys)
    assert_matches(snaps, reference(reads, 2.0, dynamic=True, n_c=4, mu=1.0), 1, keys=keys)
    assert_matches(snaps, reference(reads, 2.0, dynamic=True, n_c=4, mu=0.25), 2, keys=keys)
    # warm-up off writes during the first N_c passes, warm-up on does not
    assert np.abs(snaps[2 * IN - 1]["W"][0]).sum() > 0
    assert np.abs(snaps[4 * IN]["W"][1]).sum() == 0 and np.abs(snaps[4 * IN]["W"][2]).sum() == 0


def test_agad_regular_chopper_period():
    """Each column's chopper flips exactly once every N_c full passes (after the read in the
    passes T with (T mod N_c) + 1 == N_c), all columns in the same pass, and P_ref is refreshed
    only at the first read after each flip."""
    fam = family([cfg("agad", in_chop_prob=0.5), cfg("agad", in_chop_prob=0.25), cfg("agad", in_chop_prob=0.1)])
    n_cs = [2, 4, 10]
    np.testing.assert_array_equal(fam.n_c, n_cs)
    lam = np.zeros(3)
    n_pass = 40
    flip_passes = [[[] for _ in range(IN)] for _ in range(3)]
    rng = np.random.default_rng(2)
    for T in range(n_pass):
        for j in range(IN):
            fam.A.w[...] = rng.normal(size=(3, OUT, IN))
            before = fam.c_in.copy()
            pref_before = fam.P_ref.copy()
            p_before = fam.P.copy()
            was = fam.switched[:, j].copy()
            fam.transfer_many([j], lam)
            for r in range(3):
                if fam.c_in[r, j] != before[r, j]:
                    flip_passes[r][j].append(T)
                if was[r]:
                    np.testing.assert_array_equal(fam.P_ref[r, :, j], p_before[r, :, j])
                else:
                    np.testing.assert_array_equal(fam.P_ref[r], pref_before[r])
    for r, nc in enumerate(n_cs):
        expected = [T for T in range(n_pass) if (T % nc) + 1 == nc]
        for j in range(IN):
            assert flip_passes[r][j] == expected, (nc, j)
            assert np.all(np.diff(flip_passes[r][j]) == nc)


# ------------------------------------------------------------------------ mixed stacks
def test_mixed_stack_each_replica_follows_its_own_algorithm():
    """TTv2, c-TTv2 (flip every read) and AGAD replicas in ONE stack, each equal to its reference."""
    n_pass = 10
    rng = np.random.default_rng(21)
    reads = np.round(rng.uniform(-0.7, 0.7, size=(n_pass * IN, OUT, IN)) * 64) / 64
    fam = family([cfg("ttv2"), cfg("c-ttv2", in_chop_prob=1.0), cfg("agad")])
    snaps = run_with_reads(fam, np.repeat(reads[:, None], 3, axis=1), 0.25)
    assert_matches(snaps, reference(reads, 2.0), 0)
    assert_matches(snaps, reference(reads, 2.0, flips=np.ones(len(reads), bool)), 1)
    assert_matches(snaps, reference(reads, 2.0, dynamic=True, n_c=2, mu=0.5), 2, keys=("H", "W", "c_in", "P",
                                                                                       "P_ref"))


def test_structural_fields_must_agree_in_a_stack():
    with pytest.raises(ConfigError, match="transfer_every"):
        family([cfg("ttv2"), cfg("ttv2", transfer_every=2)])
    with pytest.raises(ConfigError, match="forget_buffer"):
        family([cfg("ttv2"), cfg("agad", forget_buffer=False)])


def test_agad_requires_a_chopper():
    with pytest.raises(ConfigError, match="in_chop_prob"):
        TransferConfig(dynamic_reference=True, in_chop_prob=0.0)


def test_build_stack_transfer_family_state_and_arrays():
    """build_stack wiring: A starts at 0, W set/get, arrays() names, state round trip."""
    dev = ideal_device(0.01)
    cfgs = [cfg("ttv2"), cfg("c-ttv2"), cfg("agad")]
    alg = build_stack(["ttv2", "c-ttv2", "agad"], cfgs, [dev] * 3, [dev] * 3, OUT, IN, io=PERFECT, seed=1,
                      replica_seeds=[1, 2, 3], dtype=np.float64)
    assert isinstance(alg, TransferFamily)
    np.testing.assert_array_equal(alg.A.w, 0.0)
    w0 = np.arange(3 * OUT * IN, dtype=float).reshape(3, OUT, IN) / 100
    alg.set_weights(w0)
    np.testing.assert_allclose(alg.weights(), w0)
    np.testing.assert_allclose(alg.forward(np.ones((3, IN))), w0.sum(axis=2))
    names = set(algorithm_arrays(alg))
    assert {"W.weights", "A.weights", "H", "c_in", "c_out", "P", "P_ref"} <= names
    rng = np.random.default_rng(0)
    for _ in range(10):
        alg.update(rng.normal(size=(3, 2, IN)), rng.normal(size=(3, 2, OUT)), 0.5)
    arrs, info = alg.state()
    rest = [(rng.normal(size=(3, 2, IN)), rng.normal(size=(3, 2, OUT))) for _ in range(5)]
    for x, d in rest:
        alg.update(x, d, 0.5)
    w_end, h_end = alg.weights(), alg.H.copy()
    alg.load_state(arrs, info)
    for x, d in rest:
        alg.update(x, d, 0.5)
    np.testing.assert_array_equal(alg.weights(), w_end)
    np.testing.assert_array_equal(alg.H, h_end)
