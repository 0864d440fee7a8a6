"""The algorithm-side pulsed update (analogtrain.engine.algorithms.pulsed_update): the expected
update is the SGD step, counts -> pulses (indices, directions) by hand, the cost model, the
transfer schedule (read groups, phases, reads between the pulses of a mini-batch), the MP
row writes, the transfer column writes and the floating-point update.

Batched vs sample-by-sample equivalence of whole algorithms: test_batched_exact.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config import ConstantStepDevice, UpdateConfig, resolve_device
from analogtrain.engine import pulses as P
from analogtrain.engine.algorithms import pulsed_update as U
from analogtrain.engine.tile import AnalogTile
from analogtrain.seeding import generator

# constant step, no noise, no d2d, huge bounds: each coincidence moves the weight by exactly dw
DW = 0.01
EXACT = ConstantStepDevice(dw_min=DW, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=1000.0,
                           w_min=-1000.0, w_max_dtod=0.0, w_min_dtod=0.0)
X = np.array([0.9, -0.5, 0.3, -0.05])
D = np.array([0.6, -0.2, 0.1])
M = 4000  # replicas = independent updates averaged


def make_tile(cfg, out=4, inp=5, R=2, seed=0, dtype=np.float64, **kw):
    return AnalogTile(cfg, out, inp, n_replicas=R, rng_device=[generator(seed, "device", r) for r in range(R)],
                      rng_pulses=generator(seed, "pulses"), rng_noise=generator(seed, "noise"), dtype=dtype, **kw)


# ------------------------------------------------------------------ the expected update
@pytest.fixture(scope="module")
def big_tile():
    g = generator(0, "device", 0)
    return AnalogTile(EXACT, 3, 4, n_replicas=M, rng_device=[g] * M, rng_pulses=generator(5, "pulses"),
                      rng_noise=generator(5, "noise"), dtype=np.float64)


UPDATE_CASES = {
    # (update config, lr)
    "no management, fixed BL 31": (UpdateConfig(update_management=False, update_bl_management=False), 0.1),
    "UM, fixed BL 31": (UpdateConfig(update_management=True, update_bl_management=False), 0.1),
    "UM + UBLM": (UpdateConfig(update_management=True, update_bl_management=True), 0.1),
    "UM + UBLM, short BL 7": (UpdateConfig(desired_bl=7), 0.1),
    "no management, BL 64": (UpdateConfig(update_management=False, update_bl_management=False, desired_bl=64), 0.2),
}


@pytest.mark.parametrize("case", sorted(UPDATE_CASES))
def test_expected_pulsed_update_is_sgd_step(big_tile, case):
    """E[dW_ij] = -lr d_i x_j when no probability is clipped.

    The count n_ij ~ Binomial(BL, p_ij), p_ij = p_x[j] p_d[i]; averaged over M independent
    updates (replicas) the mean change has std dw sqrt(BL p (1-p) / M). Tolerance 5 of those
    standard errors per element (12 elements: a false failure needs a >5-sigma event, p ~ 1e-5;
    the run is seeded anyway).
    """
    cfg, lr = UPDATE_CASES[case]
    tile = big_tile
    tile.set_weights(0.0)
    xs, ds = np.tile(X, (M, 1)), np.tile(D, (M, 1))
    plan = P.pulse_probabilities(xs[:1], ds[:1], lr, DW, cfg)
    assert plan.p_x.max() < 1 and plan.p_d.max() < 1  # no clipping in these cases
    total = U.sample_update(tile, xs, ds, lr, cfg)
    dW = tile.get_weights()
    # every change is a whole number of steps, of the sign -sign(d_i x_j) (or zero)
    steps = dW / DW
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    sign = -np.sign(np.outer(D, X))
    assert np.all(steps * sign >= -1e-9)
    assert total == int(round(np.abs(steps).sum()))
    bl = int(plan.bl[0])
    p = plan.p_d[0][:, None] * plan.p_x[0][None, :]
    se = DW * np.sqrt(bl * p * (1 - p) / M)
    expected = -lr * np.outer(D, X)
    err = np.abs(dW.mean(axis=0) - expected)
    assert np.all(err < 5 * se + 1e-12), (err / se)
    # and the probabilities reproduce lr |d x| / dw exactly in expectation
    np.testing.assert_allclose(bl * p * DW, lr * np.abs(np.outer(D, X)), rtol=1e-6)


# Hand example: BL = 10, lr / (dw BL) = 1 so A = B = 1 and p_x = |x|, p_d = |d| (no management);
# both dense pulse types give n = [[2, 1, 4], [4, 2, 8]] (see tests/engine/test_pulses.py)
HX = np.array([[0.5, -0.24, 1.0]])
HD = np.array([[0.4, -0.77]])
HDW = 1 / 64
HLR = 10 / 64
HCFG = dict(update_management=False, update_bl_management=False, desired_bl=10)


@pytest.mark.parametrize("pulse_type", ["mean_count", "deterministic_implicit"])
def test_dense_pulse_types_through_the_tile(pulse_type):
    cfg = ConstantStepDevice(dw_min=HDW, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=10.0,
                             w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)
    tile = AnalogTile(cfg, 2, 3, dtype=np.float64)
    n = U.sample_update(tile, HX, HD, HLR, UpdateConfig(**HCFG, pulse_type=pulse_type))
    counts = np.array([[2, 1, 4], [4, 2, 8]])
    assert n == counts.sum()
    np.testing.assert_allclose(tile.w[0], -np.sign(np.outer(HD[0], HX[0])) * counts * HDW, atol=1e-15)


def test_pulse_type_none_is_the_float_update():
    tile = AnalogTile(EXACT, 3, 4, dtype=np.float64)
    assert U.sample_update(tile, X[None], D[None], 0.1, UpdateConfig(pulse_type="none")) == 0
    np.testing.assert_allclose(tile.w[0], -0.1 * np.outer(D, X), atol=1e-15)
    # a mini-batch of float updates: sample by sample, each read right after its sample
    tile.set_weights(0.0)
    x, d = np.stack([X, -X, 2 * X])[None], np.stack([D, D, D])[None]
    seen = []
    on_read = lambda group: seen.append((group, tile.get_weights()[0, :, group[0][1]]))  # noqa: E731
    assert U.batch_update(tile, x, d, 0.1, UpdateConfig(pulse_type="none"), reads=[(0, 1), (2, 3)],
                          on_read=on_read) == 0
    assert [g for g, _ in seen] == [[(0, 1)], [(2, 3)]]
    np.testing.assert_allclose(seen[0][1], -0.1 * D * X[1], atol=1e-15)
    np.testing.assert_allclose(tile.w[0], -0.1 * 2 * np.outer(D, X), atol=1e-15)


def test_counters_match_exact_weight_change():
    """Constant step without noise or bounds in reach: net change = (up - down) * dw exactly, and
    up pulses happen where sign(x_j) sign(d_i) < 0."""
    t = make_tile(EXACT, count_pulses=True)
    x = np.array([[1.0, -1.0, 0.5, -0.5, 0.0]] * 2)
    d = np.array([[1.0, -1.0, 0.3, -0.2]] * 2)
    for _ in range(10):
        U.sample_update(t, x, d, 0.05)
    np.testing.assert_allclose(t.w, (t.up_count - t.down_count) * DW, atol=1e-12)
    s = np.sign(d[0][:, None] * x[0][None, :])
    assert np.all(t.up_count[:, s > 0] == 0) and np.all(t.down_count[:, s < 0] == 0)
    assert np.all(t.up_count[:, :, 4] == 0) and np.all(t.down_count[:, :, 4] == 0)  # x_j = 0
    assert t.up_count[:, s < 0].sum() > 0 and t.down_count[:, s > 0].sum() > 0


def test_update_sign_and_lr_per_replica():
    """Per-replica learning rates; x d > 0 moves the weight down (SGD subtracts lr d x^T)."""
    t = make_tile(resolve_device(preset="symmetric"), out=1, inp=1, R=3)
    x = np.ones((3, 1))
    d = np.ones((3, 1))
    for _ in range(50):
        U.sample_update(t, x, d, np.array([0.0, 0.01, 0.02]))
    w = t.w[:, 0, 0]
    assert w[0] == 0 and w[1] < 0 and w[2] < w[1]
    # expected -50 * lr * 1 = -0.5 / -1.0 (BL = 1 with UBLM, k = lr / dw = 5 or 10 -> p = 1)
    np.testing.assert_allclose(w[1:], [-0.5, -1.0], atol=0.01 * 0.5 + 1e-9)


# --------------------------------------------------------------- counts -> pulses by hand
def test_device_pulses_by_hand():
    """counts on rows [1, 3] x cols [0, 2] of a (4, 3) array; up where sign(x_j) sign(d_i) < 0."""
    x = np.array([[1.0, -1.0, -2.0]])
    d = np.array([[0.0, 0.5, 0.0, -0.5]])
    counts = np.array([[[2, 0], [1, 3]]], dtype=np.uint8)
    flat, cnt, up = U.device_pulses(counts, np.array([1, 3]), np.array([0, 2]), x, d, 4, 3)
    np.testing.assert_array_equal(flat, [1 * 3 + 0, 3 * 3 + 0, 3 * 3 + 2])
    np.testing.assert_array_equal(cnt, [2, 1, 3])
    np.testing.assert_array_equal(up, [False, True, False])
    # two replicas (general index arithmetic) and the full block (flat = position)
    flat, cnt, up = U.device_pulses(np.concatenate([counts, counts[:, ::-1]]), np.array([1, 3]), np.array([0, 2]),
                                    np.concatenate([x, -x]), np.concatenate([d, d]), 4, 3)
    np.testing.assert_array_equal(flat, [3, 9, 11, 12 + 3, 12 + 5, 12 + 9])
    np.testing.assert_array_equal(up, [False, True, False, True, False, False])
    full = np.zeros((1, 4, 3), dtype=np.uint8)
    full[0, 3, 2] = 4
    flat, cnt, up = U.device_pulses(full, np.arange(4), np.arange(3), x, d, 4, 3)
    assert flat.tolist() == [11] and cnt.tolist() == [4] and up.tolist() == [False]
    flat, cnt, up = U.device_pulses(np.zeros((1, 2, 2), dtype=np.uint8), np.array([1, 3]), np.array([0, 2]),
                                    x, d, 4, 3)
    assert flat.size == cnt.size == up.size == 0


def test_batch_pulses_are_in_time_order_per_device():
    """Entries in (r, b, i, j) order: a device's entries come in sample order."""
    counts = np.zeros((2, 3, 2, 2), dtype=np.uint8)        # R = 2, B = 3, rows [0, 2], cols [1, 3]
    counts[0, 2, 0, 1] = 1
    counts[0, 0, 0, 1] = 2
    counts[1, 1, 1, 0] = 3
    flat, cnt, r, b, i, j = U.batch_pulses(counts, np.array([0, 2]), np.array([1, 3]), 3, 4)
    np.testing.assert_array_equal(flat, [3, 3, 12 + 2 * 4 + 1])
    np.testing.assert_array_equal(cnt, [2, 1, 3])
    np.testing.assert_array_equal(b, [0, 2, 1])
    np.testing.assert_array_equal(i, [0, 0, 2])
    np.testing.assert_array_equal(j, [3, 3, 1])
    np.testing.assert_array_equal(r, [0, 0, 1])


def test_pulse_directions_with_choppers():
    x = np.array([[[1.0, -1.0], [1.0, 1.0]]])              # (R=1, B=2, in=2)
    d = np.array([[[1.0], [-1.0]]])                        # (R=1, B=2, out=1)
    r, b, i, j = np.zeros(4, int), np.array([0, 0, 1, 1]), np.zeros(4, int), np.array([0, 1, 0, 1])
    # sign(x d): + - - -  ->  up where negative
    np.testing.assert_array_equal(U.pulse_directions(x, d, r, b, i, j), [False, True, True, True])
    x_sign = np.array([[1.0, -1.0]])
    d_sign = np.array([[-1.0]])
    np.testing.assert_array_equal(U.pulse_directions(x, d, r, b, i, j, x_sign), [False, False, True, False])
    np.testing.assert_array_equal(U.pulse_directions(x, d, r, b, i, j, x_sign, d_sign), [True, True, False, True])


def test_row_and_column_pulses_by_hand():
    counts = np.array([[[0, 2, 1], [3, 0, 0]]], dtype=np.uint8)       # R = 1, rows [2, 0], in = 3
    x_rows = np.array([[[0.0, -1.0, 2.0], [-3.0, 0.0, 0.0]]])
    flat, cnt, up = U.row_pulses(counts, np.array([2, 0]), x_rows, 4, 3)
    np.testing.assert_array_equal(flat, [2 * 3 + 1, 2 * 3 + 2, 0])
    np.testing.assert_array_equal(cnt, [2, 1, 3])
    np.testing.assert_array_equal(up, [True, False, True])           # d = +1: up where x < 0
    n = np.zeros((2, 3, 2))                                           # R = 2, out = 3, cols [3, 1]
    n[0, 1, 0], n[1, 2, 1], n[1, 0, 0] = -2.0, 1.0, 3.0
    flat, cnt, up = U.column_pulses(n, [3, 1], 3, 4)
    np.testing.assert_array_equal(flat, [1 * 4 + 3, 12 + 0 * 4 + 3, 12 + 2 * 4 + 1])
    assert cnt.dtype == np.int64 and cnt.tolist() == [2, 3, 1] and up.tolist() == [False, True, True]


def test_row_and_column_writes_through_the_tile():
    t = make_tile(EXACT, out=3, inp=4, R=2, count_pulses=True)
    n = np.zeros((2, 3, 1))
    n[:, :, 0] = [[1, -2, 0], [0, 0, 3]]
    assert U.column_writes(t, [2], n) == 6
    np.testing.assert_allclose(t.w[:, :, 2], n[:, :, 0] * DW, atol=1e-15)
    assert t.up_count.sum() == 4 and t.down_count.sum() == 2
    t.set_weights(0.0)
    x_rows = np.zeros((2, 1, 4))
    x_rows[:, 0] = [[1.0, -0.5, 0.0, 0.25], [0.0, 0.0, -1.0, 0.0]]
    total = U.row_writes(t, np.array([1]), x_rows, np.array([0.1, 0.05]), UpdateConfig())
    steps = t.w / DW
    assert total == int(round(np.abs(steps).sum())) > 0
    assert not np.any(t.w[:, [0, 2]])                                 # only row 1 is written
    assert np.all(steps[:, 1] * np.sign(x_rows[:, 0]) <= 1e-9)        # W -= lr x: against the sign of x
    assert not np.any(t.w[:, 1][x_rows[:, 0] == 0])


# ------------------------------------------------------------------------ active lines, cost
def test_active_lines():
    td = np.array([[0, 3, 0, 0], [0, 0, 0, 0]], dtype=np.uint32)   # (N, out = 4)
    tx = np.array([[1, 0, 0], [0, 0, 2]], dtype=np.uint32)         # (N, in = 3)
    rows, cols = U.active_lines(td, tx, 4, 3)
    assert rows.tolist() == [1] and cols.tolist() == [0, 2]
    td[1] = [1, 0, 1, 0]                                           # 3 x 2 = 6 of 12: not more than half
    assert U.active_lines(td, tx, 4, 3)[0].tolist() == [0, 1, 2]
    td[1, 3] = 1                                                   # 4 x 2 = 8 > 6: all lines
    rows, cols = U.active_lines(td, tx, 4, 3)
    assert rows.tolist() == [0, 1, 2, 3] and cols.tolist() == [0, 1, 2]


def test_samplewise_cheaper():
    """per-sample cost sum_b |rows_b| |cols_b| + B SAMPLE_OVERHEAD against batched
    BATCH_ELEMENT B |rows| |cols| + BATCH_OVERHEAD over the union block."""
    B, m, n = 10, 200, 2000
    td = np.zeros((1, B, m), dtype=np.uint32)
    tx = np.zeros((1, B, n), dtype=np.uint32)
    for b in range(B):                      # sparse: each sample 20 rows x 200 cols, disjoint
        td[0, b, 20 * b:20 * b + 20] = 1
        tx[0, b, 200 * b:200 * b + 200] = 1
    # 40 000 + 600 000 < 2.5 * 10 * 200 * 2000 + 60 000
    assert U.samplewise_cheaper(tx, td, m, n)
    # small dense arrays: 2 * 16 + 120 000 > 2.5 * 2 * 16 + 60 000
    assert not U.samplewise_cheaper(np.ones((1, 2, 4), np.uint32), np.ones((1, 2, 4), np.uint32), 4, 4)
    # several replicas always batch
    assert not U.samplewise_cheaper(np.repeat(tx, 2, 0), np.repeat(td, 2, 0), m, n)


# --------------------------------------------------------------------- the transfer schedule
READS = [(0, 1), (2, 2), (4, 0), (6, 1), (8, 2)]      # 3 columns, a read every second sample from column 1


def test_read_groups_by_hand():
    assert U.read_groups(READS) == [[(0, 1), (2, 2), (4, 0)], [(6, 1), (8, 2)]]
    assert U.read_groups([]) == []
    assert U.read_groups([(3, 0), (4, 0), (5, 0)]) == [[(3, 0)], [(4, 0)], [(5, 0)]]


def test_read_phases_by_hand():
    """read times per group and column: group 0 [col 0: 4, col 1: 0, col 2: 2], group 1 [-, 6, 8].
    A pulse of sample b on column j has phase = #reads of j after samples < b."""
    groups = U.read_groups(READS)
    b = np.array([0, 1, 6, 7, 4, 5, 9, 2, 3])
    j = np.array([1, 1, 1, 1, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(U.read_phases(groups, b, j, 3), [0, 1, 1, 2, 0, 1, 2, 0, 1])


@pytest.mark.parametrize("R", [1, 2])
def test_batch_update_reads_see_exactly_the_pulses_before_them(R):
    """Deterministic counts on an exact device: at each read, the column holds the pulses of
    the samples up to the read; the read flips the column's chopper (x_sign), which reverses
    its later pulses. Reference: a sample-by-sample loop in floating point."""
    out, inp, B = 3, 3, 10
    cfg = UpdateConfig(desired_bl=5, pulse_type="deterministic_implicit")
    rng = np.random.default_rng(2)
    x, d = rng.uniform(-1, 1, (R, B, inp)), rng.normal(0, 0.5, (R, B, out))
    lr = 0.3
    tile = make_tile(EXACT, out=out, inp=inp, R=R, count_pulses=True)
    x_sign = np.ones((R, inp))
    seen = []

    def on_read(group):
        seen.append((group, tile.get_weights()))
        for _, jj in group:
            x_sign[:, jj] *= -1

    total = U.batch_update(tile, x, d, lr, cfg, x_sign=x_sign, reads=READS, on_read=on_read)
    assert [g for g, _ in seen] == U.read_groups(READS)
    # reference: per sample, counts of the plan of that sample, with the chopper at that time
    w = np.zeros((R, out, inp))
    sign = np.ones((R, inp))
    at_read = {}
    expected_total = 0
    for s in range(B):
        xs = x[:, s] * sign
        plan = P.pulse_probabilities(xs, d[:, s], lr, DW, cfg)
        n = P.deterministic_implicit(plan, cfg)
        w -= np.sign(d[:, s][:, :, None] * xs[:, None, :]) * n * DW
        expected_total += int(n.sum())
        for rb, jj in READS:
            if rb == s:
                at_read[(rb, jj)] = w[:, :, jj].copy()
                sign[:, jj] *= -1
    assert total == expected_total
    np.testing.assert_allclose(tile.w, w, rtol=0, atol=1e-12)
    for group, w_then in seen:
        for rb, jj in group:
            np.testing.assert_allclose(w_then[:, :, jj], at_read[(rb, jj)], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(x_sign, sign)


def test_batch_update_blocks_equal_one_block():
    """Splitting a mini-batch into blocks (max_block) changes no result: the reads are passed on
    to the block of their sample."""
    cfg = UpdateConfig(desired_bl=5, pulse_type="deterministic_implicit")
    rng = np.random.default_rng(3)
    x, d = rng.uniform(-1, 1, (1, 10, 3)), rng.normal(0, 0.5, (1, 10, 3))
    results = []
    for max_block in (U.MAX_BLOCK, 2 * 9):                      # 2 samples of 3 x 3 per block
        tile = make_tile(EXACT, out=3, inp=3, R=1)
        groups = []
        n = U.batch_update(tile, x, d, 0.3, cfg, reads=READS, on_read=groups.append, max_block=max_block)
        results.append((n, tile.get_weights(), [r for g in groups for r in g]))
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0, atol=1e-12)
    assert results[0][2] == results[1][2] == READS
