"""The ``program`` experiment (paper Fig. 4): grid expansion, stack planning, determinism,
parallel jobs, summaries, NaN detection and the weight-error formula.

Replicas of one stack share the dynamic random streams, so a replica's numbers depend on
the stack it runs in; nothing here compares results across different stack layouts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import analogtrain.experiments.program as prog
from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.program import ProgramConfig, Replica
from analogtrain.engine.algorithms import algorithm_spec
from analogtrain.errors import ConfigError, NumericalError
from analogtrain.experiments.program import plan_stacks, run, run_stack, weight_error_pct
from analogtrain.results.program import ProgramResult


def algorithm_class(name):
    return algorithm_spec(name).family


def build_replicas(cfg):
    return cfg.replicas


run_program = run

SMALL = dict(out_size=3, in_size=4, steps=40, seeds=2, n_states=(20.0,), sigma_r=(0.0,), lr=(0.1,))


def small(**kw):
    return ProgramConfig(**{**SMALL, **kw})


# ------------------------------------------------------------------------------ the grid
def test_build_replicas_expands_cells_times_seeds_in_order():
    cfg = ProgramConfig(algorithm=("ttv2", "agad", "sgd"), n_states=(20, 100), sigma_r=(0.0, 0.3), lr=(0.1, 0.2),
                        seeds=3)
    reps = build_replicas(cfg)
    assert len(reps) == 3 * 2 * 2 * 2 * 3
    cells = [tuple(r.cell.values()) for r in reps[::3]]
    expected = [(a, n, s, lr) for a in ("ttv2", "agad", "sgd") for n in (20, 100) for s in (0.0, 0.3)
                for lr in (0.1, 0.2)]
    assert cells == expected
    assert [r.seed_index for r in reps[:6]] == [0, 1, 2, 0, 1, 2]
    for r in reps:
        assert r.algorithm == r.cell["algorithm"] and r.lr == r.cell["lr"]
        assert set(r.cell) == {"algorithm", "n_states", "sigma_r", "lr"}
        assert (r.dev_a is not None) == (algorithm_class(r.algorithm) == "transfer")


def test_aliases_are_canonicalised():
    reps = build_replicas(small(algorithm=("chopped-ttv2", "ttv4"), seeds=1))
    assert [r.algorithm for r in reps] == ["c-ttv2", "agad"]


def test_n_states_sets_dw_min_of_both_arrays():
    reps = build_replicas(small(algorithm=("ttv2", "sgd"), n_states=(20, 100), seeds=1))
    for r in reps:
        ns = r.cell["n_states"]
        assert r.dev_w.dw_min == pytest.approx(2.0 / ns)           # softbounds: [-1, 1]
        if r.dev_a is not None:
            assert r.dev_a.dw_min == pytest.approx(2.0 / ns)
    # () keeps the device's own dw_min (softbounds preset: 20 states)
    reps = build_replicas(small(algorithm=("ttv2",), n_states=(), seeds=1))
    assert reps[0].cell["n_states"] is None and reps[0].dev_w.dw_min == pytest.approx(0.1)


def test_sigma_r_goes_to_the_gradient_array_by_default():
    """A for the transfer family, the single array W for SGD and MP."""
    reps = build_replicas(small(algorithm=("ttv2", "sgd", "mp"), sigma_r=(0.0, 0.3), seeds=1))
    for r in reps:
        if r.dev_a is not None:
            assert r.dev_a.reference_std == r.cell["sigma_r"] and r.dev_w.reference_std == 0.0
        else:
            assert r.dev_w.reference_std == r.cell["sigma_r"]
    assert {r.dev_a.reference_std for r in reps if r.dev_a is not None} == {0.0, 0.3}
    assert {r.dev_w.reference_std for r in reps if r.algorithm == "sgd"} == {0.0, 0.3}


def test_sigma_r_on_an_array_an_algorithm_lacks_is_an_error():
    with pytest.raises(ConfigError, match="sgd has no array A"):
        small(algorithm=("ttv2", "sgd"), sigma_r=(0.0, 0.3), sigma_r_arrays=("A",))
    with pytest.raises(ConfigError, match="fp"):
        small(algorithm=("fp", "agad"), sigma_r=(0.0, 0.3))
    assert len(small(algorithm=("fp", "agad"), sigma_r=(0.0,)).replicas) == 4     # sigma_r 0: fine


def test_a_device_key_an_axis_overrides_is_an_error():
    with pytest.raises(ConfigError, match="dw_min.*n_states axis"):
        small(device=DeviceSpec("softbounds", (("dw_min", 0.01),)))
    with pytest.raises(ConfigError, match="reference_std.*sigma_r axis"):
        small(device=DeviceSpec("softbounds", (("A.reference_std", 0.3),)))
    with pytest.raises(ConfigError, match="gamma_up.*sweep of gamma"):
        small(device=DeviceSpec("linearstep", (("gamma_up", 0.3),)), sweep=(("gamma", (1.0, 0.0)),))
    # not overridden: kept
    cfg = small(n_states=(), device=DeviceSpec("softbounds", (("dw_min", 0.01),)), seeds=1)
    assert cfg.replicas[0].dev_w.dw_min == 0.01
    cfg = small(sigma_r_arrays=("A",), device=DeviceSpec("softbounds", (("W.reference_std", 0.2),)), seeds=1)
    assert cfg.replicas[0].dev_w.reference_std == 0.2


def test_a_scope_no_algorithm_has_is_an_error():
    with pytest.raises(ConfigError, match="no algorithm of the grid has an array A"):
        small(algorithm=("sgd",), device=DeviceSpec("softbounds", (("A.dw_min_std", 0.1),)))


def test_sigma_r_on_A_and_W():
    reps = build_replicas(small(algorithm=("agad", "c-ttv2"), sigma_r=(0.0, 0.3), sigma_r_arrays=("A", "W"), seeds=1))
    for r in reps:
        assert r.dev_w.reference_std == r.cell["sigma_r"]
        if r.dev_a is not None:
            assert r.dev_a.reference_std == r.cell["sigma_r"]
    reps = build_replicas(small(algorithm=("agad",), sigma_r=(0.5,), sigma_r_arrays=("W",), seeds=1))
    assert reps[0].dev_w.reference_std == 0.5 and reps[0].dev_a.reference_std == 0.0


def test_sweep_keys_go_to_device_or_algorithm():
    cfg = small(algorithm=("c-ttv2",), seeds=1, device=DeviceSpec("linearstep"),
                sweep=(("gamma", (1.0, 0.0)), ("in_chop_prob", (0.1, 0.2)), ("algo.fast_lr", (0.3,)),
                        ("A.dw_min_std", (0.05,))))
    reps = build_replicas(cfg)
    assert len(reps) == 2 * 2
    for r in reps:
        g = r.cell["gamma"]
        assert r.dev_w.gamma_up == g and r.dev_w.gamma_down == g
        assert r.dev_a.gamma_up == g
        assert r.alg_cfg.in_chop_prob == r.cell["in_chop_prob"]
        assert r.alg_cfg.fast_lr == 0.3
        assert r.dev_a.dw_min_std == 0.05 and r.dev_w.dw_min_std == 0.3      # scoped to A only
        assert {"gamma", "in_chop_prob", "algo.fast_lr", "A.dw_min_std"} <= set(r.cell)


def test_zip_pairs_sweeps_and_rejects_mismatched_lengths():
    base = dict(algorithm=("ttv2",), seeds=1, device=DeviceSpec("linearstep"))
    reps = build_replicas(small(**base, sweep=(("gamma", (1.0, 0.5, 0.0)), ("up_down", (0.0, 0.1, 0.2))),
                                zip=True))
    assert [(r.cell["gamma"], r.cell["up_down"]) for r in reps] == [(1.0, 0.0), (0.5, 0.1), (0.0, 0.2)]
    assert len(build_replicas(small(**base, sweep=(("gamma", (1.0, 0.5, 0.0)), ("up_down", (0.0, 0.1, 0.2)))))) == 9
    with pytest.raises(ConfigError, match="zip"):
        build_replicas(small(**base, sweep=(("gamma", (1.0, 0.0)), ("up_down", (0.0, 0.1, 0.2))), zip=True))


def test_unknown_sweep_key_is_a_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        build_replicas(small(algorithm=("ttv2",), sweep=(("bogus", (1, 2)),)))
    with pytest.raises(ConfigError, match="fast_lr"):
        build_replicas(small(algorithm=("agad",), sweep=(("fast_lr", (-1.0,)),)))   # invalid value
    with pytest.raises(ConfigError):
        build_replicas(small(algorithm=("nope",)))


def test_unknown_algorithm_key_is_a_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        build_replicas(small(algorithm=("ttv2",), sweep=(("algo.bogus", (1, 2)),)))


def test_algo_set_key_unknown_to_every_algorithm_is_a_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        build_replicas(small(algorithm=("ttv2", "agad"), algo_sets=(("bogus", 1),)))


def test_algo_sets_apply_where_the_key_exists():
    reps = build_replicas(small(algorithm=("ttv2", "mp"), seeds=1, algo_sets=(("transfer_every", 2),)))
    assert reps[0].alg_cfg.transfer_every == 2 and reps[1].alg_cfg.transfer_every == 2
    reps = build_replicas(small(algorithm=("ttv2", "mp"), seeds=1, algo_sets=(("fast_lr", 0.2),)))
    assert reps[0].alg_cfg.fast_lr == 0.2 and not hasattr(reps[1].alg_cfg, "fast_lr")


# ---------------------------------------------------------------------------- stacks
def test_plan_stacks_groups_the_transfer_family():
    reps = build_replicas(small(algorithm=("ttv2", "c-ttv2", "agad"), sigma_r=(0.0, 0.3)))
    assert plan_stacks(reps, 1) == [list(range(len(reps)))]
    reps = build_replicas(small(algorithm=("ttv2", "sgd", "agad", "mp", "fp", "c-ttv2")))
    stacks = plan_stacks(reps, 1)
    assert len(stacks) == 4
    assert sorted(i for s in stacks for i in s) == list(range(len(reps)))
    for s in stacks:
        assert len({algorithm_class(reps[i].algorithm) for i in s}) == 1
    tt = next(s for s in stacks if reps[s[0]].algorithm == "ttv2")
    assert {reps[i].algorithm for i in tt} == {"ttv2", "c-ttv2", "agad"}


def test_plan_stacks_splits_for_jobs():
    reps = build_replicas(small(algorithm=("ttv2", "c-ttv2", "agad"), seeds=2))    # 6 replicas, one stack
    two = plan_stacks(reps, 2)
    assert len(two) == 2 and sorted(map(len, two)) == [3, 3]
    assert sorted(i for s in two for i in s) == list(range(6))
    assert len(plan_stacks(reps, 4)) == 4
    assert len(plan_stacks(reps, 100)) == 6                   # never below one replica per stack
    # enough stacks already: no split
    reps = build_replicas(small(algorithm=("ttv2", "sgd")))
    assert len(plan_stacks(reps, 2)) == 2


def test_structural_settings_split_stacks():
    reps = build_replicas(small(algorithm=("ttv2",), seeds=1, sweep=(("transfer_every", (1, 2)),)))
    assert len(plan_stacks(reps, 1)) == 2
    reps = build_replicas(small(algorithm=("ttv2",), seeds=1, sweep=(("in_chop_prob", (0.0, 0.2)),)))
    assert len(plan_stacks(reps, 1)) == 1          # a per-replica setting: one stack


# ----------------------------------------------------------------------------- running
def test_same_seed_same_results_and_seed_matters():
    cfg = small(algorithm=("ttv2", "c-ttv2", "agad", "sgd"), sigma_r=(0.0, 0.3), steps=60, lr=(0.5,))
    a, b = run_program(cfg), run_program(cfg)
    np.testing.assert_array_equal(a.final_error, b.final_error)
    np.testing.assert_array_equal(a.traces, b.traces)
    for k in a.arrays():
        np.testing.assert_array_equal(a.arrays()[k], b.arrays()[k])
    c = run_program(dataclasses.replace(cfg, seed=1))
    assert not np.array_equal(a.final_error, c.final_error)


def test_results_and_arrays_are_per_replica_in_grid_order():
    cfg = small(algorithm=("sgd", "agad"), steps=30, trace_every=7)
    res = run_program(cfg)
    R = len(res.replicas)
    assert R == 4
    np.testing.assert_array_equal(res.trace_steps, [7, 14, 21, 28, 30])
    assert res.traces.shape == (R, 5)
    np.testing.assert_array_equal(res.final_error, res.traces[:, -1])
    assert res.arrays()["W.weights"].shape == (R, 3, 4)
    # A only exists for the AGAD replicas (2, 3): NaN-filled for SGD
    assert np.all(np.isnan(res.arrays()["A.weights"][:2])) and np.all(np.isfinite(res.arrays()["A.weights"][2:]))
    # final error recomputed from the returned weights
    w_star, _ = prog.inputs_and_target(cfg)
    ranges = np.array([r.dev_w.w_max - r.dev_w.w_min for r in res.replicas])
    np.testing.assert_allclose(weight_error_pct(res.arrays()["W.weights"].astype(np.float64), w_star, ranges),
                               res.final_error, rtol=1e-5)
    assert {k for k, _, _ in res.stacks} == {"sgd", "transfer"}


def test_jobs_two_runs_the_planned_stacks():
    """jobs = 2 splits the single transfer stack in two and runs the halves in two processes;
    the result equals running those two stacks one after the other in this process."""
    cfg = small(algorithm=("ttv2", "agad"), sigma_r=(0.0, 0.3), steps=40, jobs=2, lr=(0.5,))
    res = run_program(cfg)
    assert len(res.stacks) == 2 and all(np.isfinite(res.final_error))
    reps = build_replicas(cfg)
    stacks = plan_stacks(reps, 2)
    for i, s in enumerate(stacks):
        part = run_stack(cfg, [reps[j] for j in s], i)
        np.testing.assert_array_equal(res.final_error[s], part["final"])
        np.testing.assert_array_equal(res.arrays()["W.weights"][s], part["arrays"]["W.weights"])


def test_config_validates_at_construction():
    for kw, field in ((dict(steps=0), "program.steps"), (dict(lr=(-0.1,)), "program.lr"),
                      (dict(sigma_r=(float("nan"),)), "program.sigma_r"), (dict(io="nope"), "program.io"),
                      (dict(algorithm=()), "program.algorithm"), (dict(seeds=0), "program.seeds")):
        with pytest.raises(ConfigError, match=field):
            small(**kw)


# ---------------------------------------------------------------------------- NaN
def _inject_nan(monkeypatch, at_call, local_replica):
    real = prog.build_stack

    def fake(*a, **kw):
        alg = real(*a, **kw)
        names = a[0]
        if algorithm_class(names[0]) != "transfer":
            return alg
        orig = alg.update
        calls = {"n": 0}

        def update(x, d, lr):
            orig(x, d, lr)
            calls["n"] += 1
            if calls["n"] == at_call:
                alg.W.w[local_replica, 0, 0] = np.nan
        alg.update = update
        return alg

    monkeypatch.setattr(prog, "build_stack", fake)


def test_nan_raises_numerical_error_naming_replica_and_step(monkeypatch):
    _inject_nan(monkeypatch, at_call=15, local_replica=1)
    cfg = small(algorithm=("ttv2",), sigma_r=(0.0, 0.3), seeds=1, steps=30, trace_every=5)
    with pytest.raises(NumericalError) as e:
        run_program(cfg)
    msg = str(e.value)
    assert "replica 1" in msg and "step 15" in msg and "sigma_r=0.3" in msg


def test_nan_error_names_the_global_replica(monkeypatch):
    _inject_nan(monkeypatch, at_call=5, local_replica=0)
    cfg = small(algorithm=("sgd", "ttv2"), seeds=1, steps=10, trace_every=5)   # sgd replica 0, ttv2 replica 1
    with pytest.raises(NumericalError) as e:
        run_program(cfg)
    assert "replica 1" in str(e.value)


# ---------------------------------------------------------------------------- summary
def _fake_result(errors, seeds):
    reps = []
    for cell_i, sr in enumerate((0.0, 0.3)):
        for s in range(seeds):
            reps.append(Replica(cell={"algorithm": "agad", "n_states": 20, "sigma_r": sr, "lr": 0.1}, seed_index=s,
                                algorithm="agad", alg_cfg=None, dev_w=None, dev_a=None, lr=0.1))
    return ProgramResult(config=small(), replicas=reps, final_error=np.array(errors), trace_steps=np.array([1]),
                         traces=np.array(errors)[:, None])


def test_summarise_mean_std_per_seed():
    cells = _fake_result([1.0, 2.0, 3.0, 10.0, 10.0, 13.0], 3).cells()
    assert len(cells) == 2
    c0, c1 = cells
    assert c0["sigma_r"] == 0.0 and c1["sigma_r"] == 0.3
    assert c0["weight_error_pct"]["per_seed"] == [1.0, 2.0, 3.0]
    assert c0["weight_error_pct"]["mean"] == pytest.approx(2.0)
    assert c0["weight_error_pct"]["std"] == pytest.approx(np.sqrt(2 / 3))       # population std
    assert c1["weight_error_pct"]["mean"] == pytest.approx(11.0)
    assert c1["weight_error_pct"]["per_seed"] == [10.0, 10.0, 13.0]
    assert {"algorithm", "n_states", "sigma_r", "lr", "weight_error_pct"} <= set(c0)


def test_summarise_real_run():
    res = run_program(small(algorithm=("ttv2", "agad"), sigma_r=(0.0, 0.3), seeds=3, steps=20))
    cells = res.cells()
    assert len(cells) == 4
    for k, c in enumerate(cells):
        idx = np.arange(3 * k, 3 * k + 3)          # cells in grid order, seeds consecutive
        np.testing.assert_allclose(c["weight_error_pct"]["per_seed"], res.final_error[idx])
        assert c["weight_error_pct"]["mean"] == pytest.approx(res.final_error[idx].mean())


# -------------------------------------------------------------------------- formula
def test_weight_error_pct_formula():
    w_star = np.zeros((2, 2))
    w = np.array([[[1.0, -1.0], [1.0, -1.0]],          # std 1, range 2 -> 50 %
                  [[0.3, 0.3], [0.3, 0.3]],            # a constant offset has std 0
                  [[0.0, 0.0], [0.0, 0.4]]])           # std of (0, 0, 0, 0.4) = 0.4 sqrt(3)/4, range 0.5
    out = weight_error_pct(w, w_star, np.array([2.0, 2.0, 0.5]))
    np.testing.assert_allclose(out, [50.0, 0.0, 100 * 0.4 * np.sqrt(3) / 4 / 0.5], rtol=1e-12)
    rng = np.random.default_rng(0)
    w, ws = rng.normal(size=(3, 4, 5)), rng.normal(size=(4, 5))
    np.testing.assert_allclose(weight_error_pct(w, ws, np.ones(3) * 2),
                               [100 * np.std(w[r] - ws) / 2 for r in range(3)], rtol=1e-12)
