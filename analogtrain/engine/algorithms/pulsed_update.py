"""The pulsed outer-product update of an analog tile (docs/pulses.md §2), on the algorithm side.

An update ``W <- W - lr d x^T`` is realised as pulse coincidences; the tile only applies
pulses (:meth:`AnalogTile.apply_pulses`). This module decides which pulses, and when:

1. counts: :func:`active_lines` and :func:`~analogtrain.engine.pulses.coincidences` on the
   stochastic trains, :func:`dense_counts` for the noise-free pulse types;
2. pulses: :func:`device_pulses` (one update), :func:`batch_pulses` (a mini-batch, with
   :func:`pulse_directions`), :func:`row_pulses` (MP writes), :func:`column_pulses`
   (transfer writes) turn counts into (flat device index, count, direction), an up
   pulse where ``sign(x_j) sign(d_i) < 0`` (SGD subtracts ``lr d x^T``);
3. the per-sample vs batched choice: :func:`samplewise_cheaper`, a cost model;
4. the transfer schedule: :func:`read_groups` and :func:`read_phases` place the reads
   of a mini-batch between its pulses;
5. drivers that run one tile: :func:`sample_update`, :func:`batch_update`,
   :func:`row_writes`, :func:`column_writes`, and :func:`float_update` for
   ``pulse_type = "none"`` (a direct, exact weight update, no pulses);
6. the fast modes of ``UpdateConfig.pulse_mode``: ``aggregated`` (the same counts, applied in
   closed form by the tile, docs/pulses.md §2.5; mini-batches then run sample by sample) and
   ``expected`` (no trains: :func:`expected_counts`, :func:`expected_update`, §2.6).

Shapes: x (R, in), d (R, out) for one update per replica, (R, B, in) / (R, B, out) for
a mini-batch; ``lr`` a scalar or (R,). The pulse-train settings and stream are the
tile's own (``tile.update_cfg``, ``tile.rng_pulses``); every count is an exact integer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from analogtrain.config.update import UpdateConfig
from analogtrain.engine import pulses as P
from analogtrain.engine.pulses import PulsePlan
from analogtrain.engine.tile import AnalogTile

#: pulse types whose counts come from stochastic trains (the others: "mean_count" and
#: "deterministic_implicit" from the probabilities directly, "none" no pulses at all)
STOCHASTIC = ("stochastic_compressed", "stochastic")

#: cost model of the two exact update paths of a mini-batch, in array elements (measured on
#: fc3/MNIST and LeNet: a batched element costs about 2.5x a per-sample one; a per-sample
#: step has a fixed cost of about 60k elements, some 50 NumPy calls)
SAMPLE_OVERHEAD = 60_000
BATCH_ELEMENT = 2.5
BATCH_OVERHEAD = 60_000

#: largest (R, S, m, n) count array of one batched block, in elements
MAX_BLOCK = 1 << 24

Reads = Sequence[tuple[int, int]]


# ------------------------------------------------------------------------ counts
def active_lines(td: np.ndarray, tx: np.ndarray, out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns that pulse in some train: td (N, out), tx (N, in) packed trains ->
    (row indices, column indices). All lines when the active block covers more than half
    the array (the full block needs no index arithmetic)."""
    if td.shape[0] == 1:
        rows, cols = np.flatnonzero(td[0]), np.flatnonzero(tx[0])
    else:
        rows, cols = np.flatnonzero(td.any(axis=0)), np.flatnonzero(tx.any(axis=0))
    if rows.size * cols.size > 0.5 * out_size * in_size:
        return np.arange(out_size), np.arange(in_size)
    return rows, cols


def dense_counts(plan: PulsePlan, cfg: UpdateConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, out, in) counts of a dense pulse type: MeanCount or DeterministicImplicit."""
    if cfg.pulse_type == "mean_count":
        return P.mean_count(plan)
    return P.deterministic_implicit(plan, cfg, rng)


# ------------------------------------------------------------------------ pulses
def device_pulses(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, x: np.ndarray, d: np.ndarray,
                  out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pulses of one update per replica, for :meth:`AnalogTile.apply_pulses`.

    counts : (R, |rows|, |cols|) coincidences on the lines rows x cols; x (R, in), d (R, out).
    Returns (flat, cnt, up) of the nonzero counts in flat-index order (distinct devices):
    ``flat = (r out + rows[i]) in + cols[j]``, ``up = sign(x_j) sign(d_i) < 0``.
    """
    R, m, n = counts.shape
    full = m == out_size and n == in_size
    pos = np.flatnonzero(counts)
    if pos.size == 0:
        return pos, pos, np.zeros(0, dtype=bool)
    cnt = counts.reshape(-1)[pos]
    xneg = x < 0 if full else (x < 0)[:, cols]
    dneg = d < 0 if full else (d < 0)[:, rows]
    up = (xneg[:, None, :] != dneg[:, :, None]).reshape(-1)[pos]
    if full:
        flat = pos
    elif R == 1:
        i, j = np.divmod(pos, n)
        flat = rows[i] * in_size + cols[j]
    else:
        r, rem = np.divmod(pos, m * n)
        i, j = np.divmod(rem, n)
        flat = (r * out_size + rows[i]) * in_size + cols[j]
    return flat, cnt, up


def batch_pulses(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, out_size: int, in_size: int):
    """The nonzero counts of a mini-batch, counts (R, B, |rows|, |cols|), as pulse entries.

    Returns (flat, cnt, r, b, i, j): device flat index ``(r out + i) in + j``, count,
    replica, sample, row, column, in (r, b, i, j) order, so that each device's entries
    are in time order (as :meth:`AnalogTile.apply_pulses` needs them).
    """
    R, B, mm, nn = counts.shape
    pos = np.flatnonzero(counts != 0)
    cnt = counts.reshape(-1)[pos]
    r, rem = np.divmod(pos, B * mm * nn)
    b, rem = np.divmod(rem, mm * nn)
    i, j = np.divmod(rem, nn)
    i, j = rows[i], cols[j]
    return (r * out_size + i) * in_size + j, cnt, r, b, i, j


def pulse_directions(x: np.ndarray, d: np.ndarray, r, b, i, j, x_sign: np.ndarray | None = None,
                     d_sign: np.ndarray | None = None) -> np.ndarray:
    """up (True) where ``sign(x[r, b, j] x_sign[r, j]) sign(d[r, b, i] d_sign[r, i]) < 0``.

    x (R, B, in), d (R, B, out); r, b, i, j index the pulse entries; x_sign (R, in) and
    d_sign (R, out) are the chopper signs (+-1) valid when the pulses are applied.
    """
    xneg = x[r, b, j] < 0
    dneg = d[r, b, i] < 0
    if x_sign is not None:
        xneg = xneg != (x_sign[r, j] < 0)
    if d_sign is not None:
        dneg = dneg != (d_sign[r, i] < 0)
    return xneg != dneg


def row_pulses(counts: np.ndarray, rows: np.ndarray, x_rows: np.ndarray, out_size: int, in_size: int):
    """Row writes (d = e_row, value +1): counts (R, K, in) on rows (K,) -> (flat, cnt, up),
    ``flat = (r out + rows[k]) in + j``, ``up = x_rows[r, k, j] < 0``."""
    R, K, n = counts.shape
    pos = np.flatnonzero(counts != 0)
    cnt = counts.reshape(-1)[pos]
    r, rem = np.divmod(pos, K * n)
    k, j = np.divmod(rem, n)
    flat = (r * out_size + np.asarray(rows)[k]) * in_size + j
    return flat, cnt, x_rows.reshape(-1)[pos] < 0


def column_pulses(n: np.ndarray, cols, out_size: int, in_size: int):
    """Signed pulse numbers n (R, out, K) on the columns cols (K distinct) -> (flat, cnt, up):
    ``|n[r, i, k]|`` pulses to device (r, i, cols[k]), up where n > 0."""
    r, i, k = np.nonzero(n)
    vals = n[r, i, k]
    flat = (r * out_size + i) * in_size + np.asarray(cols)[k]
    return flat, np.abs(vals).astype(np.int64), vals > 0


# ---------------------------------------------------------------- cost model
def samplewise_cheaper(tx: np.ndarray, td: np.ndarray, n_rows: int, n_cols: int) -> bool:
    """Whether applying a mini-batch sample by sample costs less than one batched block.

    tx (R, B, in), td (R, B, out) trains; n_rows x n_cols the active block of the batch.
    Per sample the cost is its own active block (rows x columns that pulse in it) plus a
    fixed overhead; batched, the union block of all samples at a higher cost per element.
    Sparse inputs (e.g. MNIST pixels) pulse few lines per sample, much fewer than the
    union over the batch. Only for one replica (R > 1 always batches).
    """
    if tx.shape[0] != 1:
        return False
    B = tx.shape[1]
    per = int(np.dot(np.count_nonzero(td[0], axis=1), np.count_nonzero(tx[0], axis=1)))
    return per + B * SAMPLE_OVERHEAD < BATCH_ELEMENT * B * n_rows * n_cols + BATCH_OVERHEAD


# ---------------------------------------------------------- transfer schedule
def read_groups(reads: Reads) -> list[list[tuple[int, int]]]:
    """The reads of a mini-batch in groups: group q holds the q-th read of every column.

    reads : (b, j) in time order, column j read right after sample b. The columns are
    read in a cyclic order, so every read of group q comes after every read of group q - 1.
    """
    groups: list[list[tuple[int, int]]] = []
    seen: dict[int, int] = {}
    for rb, rj in reads:
        q = seen.get(rj, 0)
        seen[rj] = q + 1
        if q == len(groups):
            groups.append([])
        groups[q].append((rb, rj))
    return groups


def read_phases(groups: list[list[tuple[int, int]]], b: np.ndarray, j: np.ndarray, n_cols: int) -> np.ndarray:
    """Phase of each pulse: the number of reads of its column j that precede it.

    A read after sample rb precedes the pulses of samples b > rb. The pulses of phase q
    come after the reads of groups 0..q-1 of their column and before its read in group q.
    b, j : (K,) sample and column of each pulse entry -> (K,) phases in 0..len(groups).
    """
    read_time = np.full((len(groups), n_cols), np.iinfo(np.int64).max, dtype=np.int64)
    for q, grp in enumerate(groups):
        for rb, rj in grp:
            read_time[q, rj] = rb
    return (read_time[:, j] < b).sum(axis=0)


# ------------------------------------------------------------------- drivers
def float_update(tile: AnalogTile, x: np.ndarray, d: np.ndarray, lr) -> int:
    """``pulse_type = "none"``: the exact update ``W <- clip(W - lr d x^T)`` written directly
    (:meth:`AnalogTile.add_weights`), no pulses. x (R, in), d (R, out) in the tile's dtype.
    Returns 0 (pulses)."""
    lr = np.broadcast_to(np.asarray(lr, dtype=tile.dtype), (tile.n_replicas,))
    step = lr[:, None, None] * (d[:, :, None] * x[:, None, :])
    tile.add_weights(np.negative(step, out=step))
    return 0


def expected_counts(x: np.ndarray, d: np.ndarray, lr, dw: np.ndarray) -> np.ndarray:
    """``pulse_mode = "expected"`` (docs/pulses.md §2.6): the expected pulse number of every device
    for ``-lr d x^T``, no trains and no bit-length limit: ``n_ij = lr |d_i x_j| / dw`` (R, out, in),
    x (R, in), d (R, out), lr and dw (R,) (dw the mean step of the array, as in §2.2)."""
    f = (P.per_replica(lr, x.shape[0]) / dw).astype(x.dtype)[:, None, None]
    return np.abs(d[:, :, None] * x[:, None, :]) * f


def expected_update(tile: AnalogTile, x: np.ndarray, d: np.ndarray, lr) -> int:
    """The mean-field update of one sample per replica: every device takes the expected step of
    its :func:`expected_counts` through its response function (:meth:`AnalogTile.apply_pulses`,
    mode ``expected``), up where ``sign(x_j) sign(d_i) < 0``. Returns 0 (no pulses)."""
    m, k = tile.out_size, tile.in_size
    rows = np.flatnonzero(d.any(axis=0)) if d.shape[0] > 1 else np.flatnonzero(d[0])
    cols = np.flatnonzero(x.any(axis=0)) if x.shape[0] > 1 else np.flatnonzero(x[0])
    if rows.size * cols.size > m * k // 4:     # dense: every device in one pass, no gathers
        n = expected_counts(x, d, lr, tile.device.dw_min()).reshape(-1)
        up = ((x < 0)[:, None, :] != (d < 0)[:, :, None]).reshape(-1)
        return tile.apply_pulses(None, n, up, distinct=True, mode="expected")
    # sparse inputs (e.g. image pixels): only the block of nonzero lines
    n = expected_counts(x[:, cols], d[:, rows], lr, tile.device.dw_min())
    return tile.apply_pulses(*device_pulses(n, rows, cols, x, d, m, k), distinct=True, mode="expected")


def sample_update(tile: AnalogTile, x: np.ndarray, d: np.ndarray, lr, cfg: UpdateConfig | None = None) -> int:
    """One pulsed update ``W <- W - lr d x^T`` per replica (docs/pulses.md §2): x (R, in), d (R, out),
    lr scalar or (R,) (> 0); ``cfg`` defaults to the tile's (its ``pulse_mode`` says how the
    coincidences act, §2.5, §2.6). Returns the number of pulses."""
    cfg = cfg or tile.update_cfg
    x = np.asarray(x, dtype=tile.dtype)
    d = np.asarray(d, dtype=tile.dtype)
    if cfg.pulse_type == "none":
        return float_update(tile, x, d, lr)
    if cfg.pulse_mode == "expected":
        return expected_update(tile, x, d, lr)
    plan = P.pulse_probabilities(x, d, lr, tile.device.dw_min(), cfg)
    if cfg.pulse_type in STOCHASTIC:
        tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, tile.rng_pulses)
        return _apply_trains(tile, tx, td, x, d, cfg.pulse_mode)
    rows, cols = np.arange(tile.out_size), np.arange(tile.in_size)
    counts = dense_counts(plan, cfg, tile.rng_pulses)
    return tile.apply_pulses(*device_pulses(counts, rows, cols, x, d, tile.out_size, tile.in_size), distinct=True,
                             mode=cfg.pulse_mode)


def _apply_trains(tile: AnalogTile, tx: np.ndarray, td: np.ndarray, x: np.ndarray, d: np.ndarray,
                  mode: str = "exact") -> int:
    """The coincidences of one update's trains tx (R, in), td (R, out), signs from x and d."""
    rows, cols = active_lines(td, tx, tile.out_size, tile.in_size)
    if rows.size == 0 or cols.size == 0:
        return 0
    counts = P.coincidences(td[:, rows], tx[:, cols])
    return tile.apply_pulses(*device_pulses(counts, rows, cols, x, d, tile.out_size, tile.in_size), distinct=True,
                             mode=mode)


def batch_update(tile: AnalogTile, x: np.ndarray, d: np.ndarray, lr, cfg: UpdateConfig | None = None, *,
                 x_sign: np.ndarray | None = None, d_sign: np.ndarray | None = None, reads: Reads | None = None,
                 on_read: Callable[[list[tuple[int, int]]], None] | None = None, max_block: int = MAX_BLOCK) -> int:
    """The per-sample pulsed updates of a mini-batch, with exact sequential semantics.

    Sample b applies ``W <- W - lr (d_b * d_sign)(x_b * x_sign)^T`` in order b = 0..B-1;
    x (R, B, in), d (R, B, out), lr scalar or (R,), x_sign (R, in) / d_sign (R, out) the
    choppers. ``reads`` lists (b, j) in time order: column j is read right after sample
    b. ``on_read(group)`` is called once per read group (:func:`read_groups`), when every
    column in it holds exactly the pulses of the samples up to its read; it may flip
    ``x_sign[:, j]`` in place (a chopper), which then applies to the later pulses of j.

    Probabilities, trains and coincidences of all samples are drawn at once (they do not
    depend on the weights). Then either each sample's pulses are applied in turn with
    its read (:func:`samplewise_cheaper`, always for B = 1), or all at once: every
    device receives its pulses in time order, in phases (:func:`read_phases`) between
    the read groups, with the signs valid at that time. Blocks of samples keep the count
    array within ``max_block`` elements. Returns the number of device pulses.
    """
    cfg = cfg or tile.update_cfg
    x = np.asarray(x, dtype=tile.dtype)
    d = np.asarray(d, dtype=tile.dtype)
    R, B, n = x.shape
    m = d.shape[2]
    reads = list(reads or ())
    if cfg.pulse_type == "none":
        return _samplewise(x, d, x_sign, d_sign, reads, on_read, lambda b, xb, db: float_update(tile, xb, db, lr))
    if cfg.pulse_mode == "expected":
        return _samplewise(x, d, x_sign, d_sign, reads, on_read, lambda b, xb, db: expected_update(tile, xb, db, lr))
    if cfg.pulse_mode == "aggregated" and cfg.pulse_type not in STOCHASTIC and B > 1:
        return _samplewise(x, d, x_sign, d_sign, reads, on_read,
                           lambda b, xb, db: sample_update(tile, xb, db, lr, cfg))
    step = max(1, min(B, max_block // max(1, R * m * n)))
    if step < B:
        total = 0
        for s0 in range(0, B, step):
            sub = [(b - s0, j) for b, j in reads if s0 <= b < s0 + step]
            total += batch_update(tile, x[:, s0:s0 + step], d[:, s0:s0 + step], lr, cfg, x_sign=x_sign,
                                  d_sign=d_sign, reads=sub, on_read=_shifted(on_read, s0), max_block=max_block)
        return total
    if B == 1:
        lr_r, dw_r = P.per_replica(lr, R), tile.device.dw_min()
    else:
        lr_r, dw_r = np.repeat(P.per_replica(lr, R), B), np.repeat(tile.device.dw_min(), B)
    plan = P.pulse_probabilities(x.reshape(R * B, n), d.reshape(R * B, m), lr_r, dw_r, cfg)
    if cfg.pulse_type in STOCHASTIC:
        tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, tile.rng_pulses)
        rows, cols = active_lines(td, tx, m, n) if B > 1 else (None, None)   # lines that pulse in some sample
        # aggregated: the closed form acts on the pulses of one update, so always sample by sample
        if B == 1 or cfg.pulse_mode == "aggregated" or \
                samplewise_cheaper(tx.reshape(R, B, n), td.reshape(R, B, m), rows.size, cols.size):
            tx, td = tx.reshape(R, B, n), td.reshape(R, B, m)
            return _samplewise(x, d, x_sign, d_sign, reads, on_read,
                               lambda b, xb, db: _apply_trains(tile, tx[:, b], td[:, b], xb, db, cfg.pulse_mode))
        counts = P.coincidences(td[:, rows], tx[:, cols])           # (R B, |rows|, |cols|)
    else:
        rows, cols = np.arange(m), np.arange(n)
        counts = dense_counts(plan, cfg, tile.rng_pulses)
    flat, cnt, r, b, i, j = batch_pulses(counts.reshape(R, B, rows.size, cols.size), rows, cols, m, n)
    groups = read_groups(reads)
    if not groups:
        tile.apply_pulses(flat, cnt, pulse_directions(x, d, r, b, i, j, x_sign, d_sign))
        return int(cnt.sum())
    phase = read_phases(groups, b, j, n)
    for q in range(len(groups) + 1):                                 # pulses of phase q, then group q
        sel = np.flatnonzero(phase == q)
        if sel.size:
            tile.apply_pulses(flat[sel], cnt[sel],
                              pulse_directions(x, d, r[sel], b[sel], i[sel], j[sel], x_sign, d_sign))
        if q < len(groups) and on_read is not None:
            on_read(groups[q])
    return int(cnt.sum())


def _shifted(on_read, s0: int):
    """on_read of a block of samples starting at s0: its groups with batch sample indices."""
    if on_read is None:
        return None
    return lambda group: on_read([(b + s0, j) for b, j in group])


def _samplewise(x, d, x_sign, d_sign, reads: Reads, on_read, apply_sample) -> int:
    """Sample by sample: ``apply_sample(b, x_b x_sign, d_b d_sign)`` with the signs valid at
    that time, then the read after sample b (if any)."""
    read_at = dict(reads)
    total = 0
    for b in range(x.shape[1]):
        xb = x[:, b] * x_sign if x_sign is not None else x[:, b]
        db = d[:, b] * d_sign if d_sign is not None else d[:, b]
        total += apply_sample(b, xb, db)
        if on_read is not None and b in read_at:
            on_read([(b, read_at[b])])
    return total


def row_writes(tile: AnalogTile, rows, x_rows: np.ndarray, lr, cfg: UpdateConfig | None = None) -> int:
    """Independent single-row pulsed updates ``W[r, rows[k], :] -= lr[r] x_rows[r, k, :]``.

    Each (replica, row) pair is one outer-product update with d = e_row (value +1) and
    x = x_rows[r, k], with its own update/bit-length management (stochastic trains): the
    write step of mixed precision (docs/algorithms.md §4.2). x_rows (R, K, in), rows (K,) distinct row
    indices, lr scalar or (R,). Returns the number of pulses.
    """
    cfg = cfg or tile.update_cfg
    x_rows = np.asarray(x_rows, dtype=tile.dtype)
    R, K, n = x_rows.shape
    if cfg.pulse_mode == "expected":   # the expected step of lr |x| / dw pulses (docs/pulses.md §2.6)
        f = (P.per_replica(lr, R) / tile.device.dw_min())[:, None, None]
        counts = np.abs(x_rows) * f
        return tile.apply_pulses(*row_pulses(counts, rows, x_rows, tile.out_size, tile.in_size), distinct=True,
                                 mode="expected")
    lr_r = np.repeat(np.broadcast_to(np.asarray(lr, dtype=np.float64), (R,)), K)
    plan = P.pulse_probabilities(x_rows.reshape(R * K, n), np.ones((R * K, 1), dtype=tile.dtype), lr_r,
                                 np.repeat(tile.device.dw_min(), K), cfg)
    tx, td = P.paired_trains(plan.p_x, plan.p_d, plan.bl, tile.rng_pulses)
    counts = P.coincidences(td, tx).reshape(R, K, n)
    return tile.apply_pulses(*row_pulses(counts, rows, x_rows, tile.out_size, tile.in_size), distinct=True,
                             mode=cfg.pulse_mode)


def column_writes(tile: AnalogTile, cols, n: np.ndarray) -> int:
    """The transfer writes of several columns: ``|n[r, i, k]|`` pulses to W[r, i, cols[k]], up
    where n > 0 (a step towards sign(n)); n (R, out, K) signed integers. Returns the pulses."""
    return tile.apply_pulses(*column_pulses(n, cols, tile.out_size, tile.in_size), distinct=True)
