"""Unit tests of the update-time model (analogtrain.tools.estimate)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from analogtrain.tools import estimate as est
from analogtrain.config.estimate import EstimateConfig
from analogtrain.config.loader import load_config
from analogtrain.errors import ConfigError

D = est.DEFAULTS
VEC_NS = 512 / 175.0  # one elementwise op over a 512-vector at 0.7 TFLOPS / 4 arrays


# ----------------------------------------------------------------------------- the paper's figures
@pytest.mark.parametrize("alg, changes, paper", [
    ("ttv2", {}, 56.3),
    ("c-ttv2", {}, 62.1),
    ("mp", {}, 3024.5),
    ("agad", {"n_s": 10, "l_max": 1}, 17.1),
])
def test_reproduces_published_figures_within_half_percent(alg, changes, paper):
    a = D.replace(**changes)
    t = est.update_time_ns(alg, a)
    assert abs(t / paper - 1) < 0.005, (alg, t, paper)
    assert est.published_ns(alg, a) == paper
    assert est.estimate(alg, a).note is None


def test_exact_values_of_the_model():
    assert est.update_time_ns("sgd") == pytest.approx(25.0)
    assert est.update_time_ns("ttv2") == pytest.approx(25 + (40 + 5 + 6 * VEC_NS) / 2)
    assert est.update_time_ns("c-ttv2") == pytest.approx(25 + (40 + 5 + 10 * VEC_NS) / 2)
    assert est.update_time_ns("agad") == pytest.approx(25 + (40 + 5 + 26 * VEC_NS) / 2)
    assert est.update_time_ns("mp") == pytest.approx(2 * 512**2 / 175 + (11 * VEC_NS + 25) / 2)


def test_defaults_are_the_papers_assumptions():
    assert D.to_dict() == {"n": 512, "n_s": 2, "l_max": 5, "l_w": 1, "t_mvm": 40.0, "t_pulse": 5.0,
                           "tflops": 0.7, "arrays_per_core": 4}
    assert D.flop_per_ns == pytest.approx(175.0)
    assert D.vector_op_ns == pytest.approx(VEC_NS)


def test_agad_default_is_not_forced_to_the_paper_and_the_note_says_why():
    e = est.estimate("agad")
    assert e.published_ns == 30.9
    assert e.time_ns == pytest.approx(85.534, abs=1e-3)
    assert abs(e.time_ns / 30.9 - 1) > 0.5
    assert e.note is not None and "30.9" in e.note and "n_s = 20.5" in e.note
    ns = est.n_s_for_time("agad", D, 30.9)
    assert ns == pytest.approx((40 + 5 + 26 * VEC_NS) / (30.9 - 25))
    assert est.update_time_ns("agad", D.replace(n_s=1)) - 25 == pytest.approx(40 + 5 + 26 * VEC_NS)
    # the n_s it reports really gives 30.9 ns under the model (terms are linear in 1/n_s)
    t = 25 + (40 + 5 + 26 * VEC_NS) / ns
    assert t == pytest.approx(30.9)
    assert est.n_s_for_time("agad", D, 20.0) is None  # below the per-sample floor


# ----------------------------------------------------------------------------- operation counts
def test_operation_counts_sum_to_k():
    assert est.k_ops("ttv2") == 6
    assert est.k_ops("c-ttv2") == 10
    assert est.k_ops("agad") == 26
    assert est.k_ops("mp") == 11
    assert est.k_ops("sgd") == 0
    for alg in est.ALGORITHMS:
        ops = est.ops_breakdown(alg)
        assert sum(ops.values()) == est.k_ops(alg)
        assert all(isinstance(v, int) and v > 0 for v in ops.values())
    # c-TTv2 = TTv2 + chopper; AGAD = c-TTv2 + dynamic reference
    assert set(est.ops_breakdown("ttv2")) < set(est.ops_breakdown("c-ttv2")) < set(est.ops_breakdown("agad"))


def test_terms_sum_to_total_and_have_the_expected_names():
    for alg in est.ALGORITHMS:
        t = est.terms(alg)
        assert math.fsum(t.values()) == pytest.approx(est.update_time_ns(alg))
    assert set(est.terms("sgd")) == {"w_update"}
    assert set(est.terms("mp")) == {"outer_product", "transfer_ops", "w_write"}
    for alg in est.IN_MEMORY:
        assert set(est.terms(alg)) == {"a_update", "column_read", "w_write", "vector_ops"}


# ----------------------------------------------------------------------------- each term vs its flag
def _diff(alg, change):
    t0, t1 = est.terms(alg, D), est.terms(alg, D.replace(**change))
    return {k: t1[k] - t0[k] for k in t0}


@pytest.mark.parametrize("alg", est.IN_MEMORY)
def test_doubling_t_pulse(alg):
    d = _diff(alg, {"t_pulse": 10.0})
    assert d["a_update"] == pytest.approx(5 * 5)          # l_max * 5 ns
    assert d["w_write"] == pytest.approx(1 * 5 / 2)       # l_w * 5 / n_s
    assert d["column_read"] == 0 and d["vector_ops"] == 0
    assert est.update_time_ns(alg, D.replace(t_pulse=10.0)) - est.update_time_ns(alg) == pytest.approx(27.5)


def test_doubling_t_pulse_sgd_and_mp():
    assert _diff("sgd", {"t_pulse": 10.0})["w_update"] == pytest.approx(25.0)
    d = _diff("mp", {"t_pulse": 10.0})
    assert d["w_write"] == pytest.approx(5 * 5 / 2)
    assert d["outer_product"] == 0 and d["transfer_ops"] == 0


@pytest.mark.parametrize("alg", est.IN_MEMORY)
def test_doubling_t_mvm_adds_40_over_n_s(alg):
    d = _diff(alg, {"t_mvm": 80.0})
    assert d == pytest.approx({"a_update": 0, "column_read": 20.0, "w_write": 0, "vector_ops": 0})
    assert _diff(alg, {"t_mvm": 80.0, "n_s": 4})["column_read"] == pytest.approx(80 / 4 - 40 / 2)


def test_t_mvm_does_not_touch_sgd_or_mp():
    assert est.update_time_ns("sgd", D.replace(t_mvm=1000.0)) == est.update_time_ns("sgd")
    assert est.update_time_ns("mp", D.replace(t_mvm=1000.0)) == est.update_time_ns("mp")


@pytest.mark.parametrize("alg", est.IN_MEMORY)
def test_doubling_n_doubles_vector_ops_only(alg):
    t0, t1 = est.terms(alg, D), est.terms(alg, D.replace(n=1024))
    assert t1["vector_ops"] == pytest.approx(2 * t0["vector_ops"])
    for k in ("a_update", "column_read", "w_write"):
        assert t1[k] == t0[k]


def test_doubling_n_quadruples_mp_outer_product():
    t0, t1 = est.terms("mp", D), est.terms("mp", D.replace(n=1024))
    assert t0["outer_product"] == pytest.approx(2 * 512**2 / 175)
    assert t1["outer_product"] == pytest.approx(4 * t0["outer_product"])
    assert t1["transfer_ops"] == pytest.approx(2 * t0["transfer_ops"])
    assert t1["w_write"] == t0["w_write"]


@pytest.mark.parametrize("alg", est.IN_MEMORY + ("mp",))
def test_n_s_scales_amortised_terms_by_one_over_n_s(alg):
    t2 = est.terms(alg, D)
    t8 = est.terms(alg, D.replace(n_s=8))
    for k in t2:
        if k in ("a_update", "outer_product"):
            assert t8[k] == t2[k]                         # every sample
        else:
            assert t8[k] == pytest.approx(t2[k] / 4)      # n_s 2 -> 8


def test_l_max_and_l_w_and_throughput():
    assert _diff("ttv2", {"l_max": 6})["a_update"] == pytest.approx(5.0)
    assert _diff("ttv2", {"l_w": 3})["w_write"] == pytest.approx(2 * 5 / 2)
    assert _diff("mp", {"l_max": 6})["w_write"] == pytest.approx(5 / 2)
    # throughput: F = tflops * 1000 / arrays; halving F doubles every digital term
    half = D.replace(arrays_per_core=8)
    assert est.terms("agad", half)["vector_ops"] == pytest.approx(2 * est.terms("agad")["vector_ops"])
    assert est.terms("mp", D.replace(tflops=1.4))["outer_product"] == pytest.approx(
        est.terms("mp")["outer_product"] / 2)


def test_speedup_vs_mp_is_at_the_same_settings():
    fast = D.replace(n_s=10, l_max=1)
    e = est.estimate("agad", fast)
    assert e.speedup_vs_mp == pytest.approx(est.update_time_ns("mp", fast) / e.time_ns)
    assert 170 < e.speedup_vs_mp < 180                   # the paper: "about 175x"
    assert est.estimate("mp").speedup_vs_mp == pytest.approx(1.0)
    assert 48 < est.estimate("c-ttv2").speedup_vs_mp < 55  # "about 50x"


# ----------------------------------------------------------------------------- published figures
def test_published_only_at_the_papers_configurations():
    assert est.published_ns("sgd", D) is None
    assert est.published_ns("agad", D) == 30.9
    assert est.published_ns("agad", D.replace(n_s=10, l_max=1)) == 17.1
    assert est.published_ns("ttv2", D.replace(n_s=10, l_max=1)) is None
    assert est.published_ns("mp", D.replace(n_s=10, l_max=1)) is None
    for change in ({"t_pulse": 10.0}, {"t_mvm": 20.0}, {"n": 256}, {"l_w": 2}, {"tflops": 1.4},
                   {"arrays_per_core": 2}, {"n_s": 3}, {"l_max": 1}):
        for alg in est.ALGORITHMS:
            assert est.published_ns(alg, D.replace(**change)) is None, (alg, change)


def test_plan_default_and_selection():
    res = est.plan()
    assert [(r.algorithm, r.assumptions.n_s, r.assumptions.l_max) for r in res] == [
        ("sgd", 2, 5), ("mp", 2, 5), ("ttv2", 2, 5), ("c-ttv2", 2, 5), ("agad", 2, 5), ("agad", 10, 1)]
    assert [r.algorithm for r in est.plan(["TTv2", "chopped-ttv2"])] == ["ttv2", "c-ttv2"]
    only = est.plan(["agad"], D.replace(n_s=10, l_max=1), add_agad_fast_point=False)
    assert len(only) == 1 and only[0].published_ns == 17.1
    sweep = est.plan(["mp", "ttv2"], D, sweep_n=[64, 512])
    assert [(r.algorithm, r.assumptions.n) for r in sweep] == [("mp", 64), ("mp", 512), ("ttv2", 64),
                                                               ("ttv2", 512)]


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("change, flag", [
    ({"n": 0}, "--n"), ({"n": -5}, "--n"), ({"n_s": 0}, "--n-s"), ({"l_max": 0}, "--l-max"),
    ({"l_w": -1}, "--l-w"), ({"t_mvm": -1.0}, "--t-mvm"), ({"t_pulse": -0.1}, "--t-pulse"),
    ({"tflops": 0.0}, "--tflops"), ({"tflops": -1.0}, "--tflops"), ({"arrays_per_core": 0}, "--arrays-per-core"),
    ({"n": 2.5}, "--n"), ({"n_s": True}, "--n-s"), ({"t_pulse": "5"}, "--t-pulse"),
    ({"t_mvm": float("nan")}, "--t-mvm"), ({"tflops": float("inf")}, "--tflops"),
])
def test_invalid_assumptions_raise_config_error_naming_the_field(change, flag):
    field = next(iter(change))
    with pytest.raises(ConfigError) as ei:
        D.replace(**change)
    assert str(ei.value).startswith(f"estimate.{field}:")
    with pytest.raises(ConfigError) as ei:             # the run config has the same fields and checks
        EstimateConfig(**change)
    assert str(ei.value).startswith(f"estimate.{field}:")


def test_zero_times_are_allowed_and_frozen():
    a = D.replace(t_mvm=0.0, t_pulse=0.0, l_w=0)
    assert est.update_time_ns("ttv2", a) == pytest.approx(6 * VEC_NS / 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        D.n = 3  # type: ignore[misc]


def test_a_config_file_value_is_labelled_with_the_file(tmp_path):
    f = tmp_path / "cfg.toml"
    f.write_text("[estimate]\nn_s = 0\n")
    with pytest.raises(ConfigError, match=r"^config file .*cfg.toml: estimate.n_s: must be >= 1 \(got 0\)$"):
        load_config(f)
    f.write_text("[estimate]\nt_pulse = 3\n")
    assert load_config(f).t_pulse == 3.0 and isinstance(load_config(f).t_pulse, float)


def test_unknown_algorithm():
    with pytest.raises(ConfigError, match="estimate.algorithm"):
        est.canonical("adam")
    with pytest.raises(ConfigError, match="does not cover 'fp'"):
        est.canonical("fp")
