"""Tests of analogtrain.tools.endurance: exact pulse counts, per-sample statistics, projection, retention."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analogtrain.tools import endurance as E
from analogtrain.engine.algorithms import build_stack
from analogtrain.config.io import IO_PRESETS
from analogtrain.errors import ConfigError, InputError
from analogtrain.config.program import ProgramConfig
from analogtrain.results.arrays import algorithm_arrays
from analogtrain.experiments.program import run as run_program
from analogtrain.seeding import generator
from analogtrain.engine.algorithms.pulsed_update import sample_update
from analogtrain.engine.tile import AnalogTile


# ----------------------------------------------------------------------------- exactness
def test_counts_equal_tile_counters_of_a_stack():
    """Run a TTv2 / c-TTv2 / AGAD stack with counters on and compare every total and max exactly."""
    cfg = ProgramConfig(out_size=4, in_size=6, steps=150, algorithm=("ttv2", "c-ttv2", "agad"), n_states=(20,),
                        sigma_r=(0.0,), seeds=1, count_pulses=True)
    reps = cfg.replicas
    alg = build_stack([r.algorithm for r in reps], [r.alg_cfg for r in reps], [r.dev_w for r in reps],
                      [r.dev_a for r in reps], 4, 6, io=IO_PRESETS["perfect"], seed=0,
                      replica_seeds=[0, 0, 0], count_pulses=True)
    rng = np.random.default_rng(0)
    w_star = rng.uniform(-0.5, 0.5, (4, 6))
    for _ in range(cfg.steps):
        x = np.broadcast_to(rng.uniform(-1, 1, 6).astype(np.float32), (3, 6))
        d = alg.forward(x) - (w_star @ x[0])[None, :]
        alg.update(x, d, 0.1)
    run = E.from_program({k: np.array(v) for k, v in algorithm_arrays(alg).items()}, cfg)
    res = E.analyse(run)
    rows = {(r["group"], r["array"]): r for r in res["arrays"]}
    assert {a for _, a in rows} == {"A", "W", "R"}
    for i in range(3):
        for name, tile in (("A", alg.A), ("W", alg.W)):
            row = rows[(f"replica {i}", name)]
            up, down = tile.up_count[i], tile.down_count[i]
            assert row["pulses"] == {"up": int(up.sum()), "down": int(down.sum()), "total": int((up + down).sum())}
            assert row["max_device_pulses"]["total"] == int((up + down).max())
            assert row["per_sample"]["total"]["max"] == (up + down).max() / cfg.steps
            assert row["projected"]["max_per_device"] == int((up + down).max())    # N == run length: exact
    assert rows[("replica 0", "A")]["pulses"]["total"] > 0
    assert ("replica 2", "R") not in rows                                          # AGAD: no reference array
    assert rows[("replica 0", "R")]["pulses"]["total"] == 0


def test_counts_equal_counters_of_run_program():
    cfg = ProgramConfig(out_size=5, in_size=5, steps=120, algorithm=("ttv2", "sgd", "mp", "fp"), n_states=(20,),
                        sigma_r=(0.0,), seeds=2, count_pulses=True)
    res = run_program(cfg)
    run = E.from_program_result(res)
    out = E.analyse(run)
    by = {(r["group"], r["array"]): r for r in out["arrays"]}
    for name, totals in res.pulses.items():          # res.pulses: sums of the tiles' up + down counters
        for i, t in enumerate(totals):
            if t < 0:                                 # the replica has no such array
                assert (f"replica {i}", name) not in by
                continue
            row = by[(f"replica {i}", name)]
            assert row["pulses"]["total"] == t and row["matches_summary"] is True
            up, down = res.arrays()[f"{name}.up_pulses"][i], res.arrays()[f"{name}.down_pulses"][i]
            assert row["pulses"]["up"] == int(up.sum()) and row["pulses"]["down"] == int(down.sum())
    assert not any(k[0] in ("replica 6", "replica 7") for k in by)   # fp has no devices
    assert by[("replica 2", "W")]["algorithm"] == "sgd"


def test_single_tile_counters():
    tile = AnalogTile(_device(), 3, 4, n_replicas=2, count_pulses=True, rng_pulses=generator(1, "pulses"))
    rng = np.random.default_rng(1)
    for _ in range(40):
        sample_update(tile, rng.uniform(-1, 1, (2, 4)), rng.uniform(-1, 1, (2, 3)), 0.05)
    st = E.per_sample_stats(tile.up_count[1], tile.down_count[1], 40)
    assert st["pulses"]["total"] == int(tile.up_count[1].sum() + tile.down_count[1].sum()) > 0
    assert st["max_device_pulses"]["up"] == int(tile.up_count[1].max())


def _device():
    from analogtrain.config.loading import resolve_device

    return resolve_device(preset="softbounds")


# ----------------------------------------------------------------------------- formulas
def test_per_sample_statistics_formulas():
    up = np.array([[0, 1], [2, 3]])
    down = np.array([[4, 0], [0, 0]])
    st = E.per_sample_stats(up, down, 2)
    tot = np.array([4, 1, 2, 3]) / 2
    assert st["per_sample"]["total"] == {"mean": 1.25, "median": 1.25, "p99": float(np.percentile(tot, 99)),
                                         "max": 2.0}
    assert st["per_sample"]["up"]["mean"] == 6 / 4 / 2 and st["per_sample"]["up"]["max"] == 1.5
    assert st["per_sample"]["down"]["median"] == 0.0 and st["per_sample"]["down"]["max"] == 2.0
    assert st["pulses"] == {"up": 6, "down": 4, "total": 10}
    assert st["max_device_pulses"] == {"up": 3, "down": 4, "total": 4}
    with pytest.raises(ConfigError):
        E.per_sample_stats(up, down, 0)


def test_projection_and_pass_fail():
    p = E.projection(max_device_pulses=10, total_pulses=40, n_devices=4, run_samples=100, target_samples=1000,
                     endurance=100)
    assert p["max_per_device"] == 100 and p["mean_per_device"] == 100 and p["total"] == 400
    assert p["pass"] is True and p["fraction_of_endurance"] == 1.0
    assert E.projection(10, 40, 4, 100, 1000, 99.9)["pass"] is False
    assert E.projection(7, 7, 1, 3, 3, 1e9)["max_per_device"] == 7.0
    with pytest.raises(ConfigError):
        E.projection(1, 1, 1, 100, 0, 1e9)
    with pytest.raises(ConfigError):
        E.projection(1, 1, 1, 100, 10, 0)


def test_analyse_projects_and_fails():
    up = np.array([[5, 0]], dtype=np.int64)
    run = E.RunCounts(kind="program", samples=10, groups=[
        E.Group(key="replica 0", algorithm="sgd", labels={}, counts={"W": (up, np.zeros_like(up))})])
    res = E.analyse(run, target_samples=1000, endurance=400)
    (row,) = res["arrays"]
    assert row["per_sample"]["total"]["max"] == 0.5 and row["projected"]["max_per_device"] == 500
    assert res["pass"] is False and res["worst"]["array"] == "W"
    assert E.analyse(run, target_samples=1000, endurance=500)["pass"] is True
    for bad in (0, -3):
        with pytest.raises(ConfigError, match="--samples"):
            E.analyse(run, target_samples=bad)
    with pytest.raises(ConfigError, match="--endurance"):
        E.analyse(run, endurance=-1)
    with pytest.raises(ConfigError, match="--samples-per-second"):
        E.analyse(run, samples_per_second=0)


def test_retention_formulas():
    ttv2 = {"transfer_every": 2, "in_chop_prob": 0.0}
    cttv2 = {"transfer_every": 2, "in_chop_prob": 0.1, "in_chop_random": True}
    agad = {"transfer_every": 2, "in_chop_prob": 0.02, "in_chop_random": False, "dynamic_reference": True}
    assert E.retention("ttv2", "A", 20, ttv2, 10**6)["samples"] == 40
    assert E.retention("c-ttv2", "A", 20, cttv2, 10**6)["samples"] == pytest.approx(400)
    assert E.retention("agad", "A", 20, agad, 10**6)["samples"] == 50 * 20 * 2     # N_c = ceil(1/0.02) = 50
    assert E.retention("agad", "A", 20, {**agad, "in_chop_prob": 0.9}, 1)["samples"] == 2 * 20 * 2   # N_c >= 2
    assert E.retention("agad", "A", 20, agad, 10**6, updates_per_sample=4)["samples"] == 500
    for arr in ("W", "R"):
        assert E.retention("ttv2", arr, 20, ttv2, 12345)["samples"] == 12345
    assert "5 %" in E.retention("ttv2", "R", 20, ttv2, 1)["note"]
    assert E.arrays_of("ttv2", ttv2) == ("A", "W", "R") and E.arrays_of("agad", agad) == ("A", "W")
    assert E.arrays_of("sgd", None) == ("W",) and E.arrays_of("fp", None) == ()


def test_retention_seconds_in_analysis():
    z = np.zeros((2, 8), dtype=np.int64)
    run = E.RunCounts(kind="program", samples=100, groups=[
        E.Group(key="replica 0", algorithm="c-ttv2", labels={}, counts={"A": (z, z), "W": (z, z)},
                alg_cfg={"transfer_every": 1, "in_chop_prob": 0.01, "in_chop_random": True})])
    res = E.analyse(run, target_samples=10**6, samples_per_second=1e4)
    ret = {r["array"]: r["retention"] for r in res["arrays"]}
    assert ret["A"]["samples"] == pytest.approx(800) and ret["A"]["seconds"] == pytest.approx(0.08)
    assert ret["W"]["seconds"] == ret["R"]["seconds"] == pytest.approx(100.0)
    assert E.analyse(run)["arrays"][0]["retention"]["seconds"] is None


def test_histogram_log_bins():
    rates = [np.array([0.0, 0.002, 0.02, 0.5, 3.0]), np.array([0.0, 0.0, 9.99])]
    edges = E.log_bin_edges(rates, 1)
    assert np.allclose(edges, [1e-3, 1e-2, 1e-1, 1, 10])
    h = E.histogram(rates[0], edges)
    assert h["zero"] == 1 and h["counts"] == [1, 1, 1, 1]
    assert E.histogram(rates[1], edges) == {"edges": edges.tolist(), "counts": [0, 0, 0, 1], "zero": 2}
    e2 = E.log_bin_edges(rates, 2)
    assert len(e2) == 9 and sum(E.histogram(rates[0], e2)["counts"]) == 4
    assert E.log_bin_edges([np.zeros(3)]).size == 0
    assert E.histogram(np.zeros(3), np.zeros(0)) == {"edges": [], "counts": [], "zero": 3}


# ----------------------------------------------------------------------------- reading run directories
def test_load_run_errors(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        E.load_run(tmp_path / "nope")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        E.load_run(f)
    d = tmp_path / "run"
    d.mkdir()
    with pytest.raises(InputError, match="no summary.json"):
        E.load_run(d)
    (d / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        E.load_run(d)
    cfg = ProgramConfig(algorithm=("sgd",), n_states=(20.0,), sigma_r=(0.0,), seeds=1, steps=10, out_size=2,
                        in_size=2)
    (d / "summary.json").write_text(json.dumps({"schema_version": 2, "config": cfg.to_dict()}))
    with pytest.raises(InputError, match="no arrays.npz"):
        E.load_run(d)
    (d / "arrays.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="not a readable npz"):
        E.load_run(d)
    np.savez(d / "arrays.npz", **{"W.weights": np.zeros((1, 2, 2))})
    with pytest.raises(InputError, match="rerun it with --count-pulses"):
        E.load_run(d)
    np.savez(d / "arrays.npz", **{"W.up_pulses": np.ones((1, 2, 2), dtype=np.int64),
                                 "W.down_pulses": np.full((1, 2, 2), 0.5)})
    with pytest.raises(InputError, match="must be integers"):
        E.load_run(d)
    np.savez(d / "arrays.npz", **{"W.up_pulses": np.ones((1, 2, 2), dtype=np.int64),
                                 "W.down_pulses": np.array([[[-3, 1], [0, 0]]])})
    with pytest.raises(InputError, match="not non-negative integers"):
        E.load_run(d)
    (d / "summary.json").write_text(json.dumps({"command": "program", "steps": 10, "replicas": []}))
    with pytest.raises(InputError, match="not the summary of a program or train run"):
        E.load_run(d)
    (d / "summary.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="not the summary of a program or train run"):
        E.load_run(d)
