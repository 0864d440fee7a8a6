"""The batched multi-sample update equals the sample-by-sample update exactly.

With deterministic pulse counts (DeterministicImplicit), no cycle-to-cycle noise and
noise-free reads, the pulses of a mini-batch applied at once (every device's pulses in
time order, reads of A interleaved at the right sample) must give bit-identical arrays
to feeding the samples one at a time. This checks the sequencing logic, including the
chopper flips between the two phases of a chunk, for SGD, TTv2, c-TTv2 and AGAD.

"Identical" up to 1e-12: the sample-by-sample path converts each device between its
stored value w and its physical state g = w + ref once per sample, the batched path
once per batch, so the last bit can differ (float64 rounding of w + ref - ref); every
discrete outcome (pulse counts, W writes, choppers, counters) must be equal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analogtrain.results.arrays import algorithm_arrays
from analogtrain.engine.algorithms import TransferFamily, transfer
from analogtrain.engine.algorithms.pulsed_update import sample_update
from analogtrain.engine.algorithms.sgd import AnalogSGD
from analogtrain.config import IOConfig, UpdateConfig, resolve_device
from analogtrain.engine.algorithms.registry import algorithm_spec
from analogtrain.seeding import generator
from analogtrain.engine.tile import AnalogTile

DET = UpdateConfig(desired_bl=5, pulse_type="deterministic_implicit")
IO = IOConfig(out_noise=0.0, inp_res=0.0, out_res=0.0, out_bound=1e6)


def _device():
    return resolve_device("softbounds", sets=[("dw_min_std", "0"), ("n_states", "50")])


def _tile(out, inp, seed):
    return AnalogTile(_device(), out, inp, io=IO, update=DET, rng_device=[generator(seed, "device", 0)],
                      rng_pulses=generator(seed, "pulses"), rng_noise=generator(seed, "noise"), dtype=np.float64)


def _transfer(name, out, inp):
    a, w = _tile(out, inp, 1), _tile(out, inp, 2)
    w.update_cfg = UpdateConfig(desired_bl=1, update_management=False, update_bl_management=False)
    # fast_lr 2 (k = 10 coincidences at the largest entries): deterministic counts are not all 0
    cfg = dataclasses.replace(algorithm_spec(name).default_config("build-config"), fast_lr=2.0)
    return TransferFamily(a, w, [cfg], generator(3, "chopper"), names=[name])


def _data(B, out, inp, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (1, B, inp)), rng.normal(0, 0.3, (1, B, out))


@pytest.mark.parametrize("name", ["ttv2", "c-ttv2", "agad"])
def test_transfer_batched_equals_samplewise(name, monkeypatch):
    out, inp, B = 4, 3, 40      # B > in: several chunks, columns read many times, choppers flip
    x, d = _data(B, out, inp)
    a1 = _transfer(name, out, inp)
    for start in range(0, B, 10):
        a1.update(x[:, start:start + 10], d[:, start:start + 10], 0.5)
    # the running maxima are per mini-batch, so the reference keeps the batching of lambda_A
    # and only replaces the batched update of A (pulsed_update.batch_update) by a sample loop
    a3 = _transfer(name, out, inp)
    calls = []

    def one_at_a_time(tile, xc, dc, lr, x_sign=None, d_sign=None, reads=None, on_read=None):
        """Independent reference: the single-sample update path, signs applied to x, d."""
        assert tile is a3.A
        calls.append(xc.shape[1])
        read_at = dict(reads or [])
        for bb in range(xc.shape[1]):
            sample_update(tile, xc[:, bb] * x_sign, dc[:, bb] * d_sign, lr)
            if bb in read_at:
                on_read([(bb, read_at[bb])])
        return 0

    monkeypatch.setattr(transfer, "batch_update", one_at_a_time)
    for start in range(0, B, 10):
        a3.update(x[:, start:start + 10], d[:, start:start + 10], 0.5)
    assert sum(calls) == B
    for key in ("W.weights", "A.weights", "H"):
        np.testing.assert_allclose(algorithm_arrays(a1)[key], algorithm_arrays(a3)[key], rtol=0, atol=1e-12,
                                   err_msg=key)
    np.testing.assert_array_equal(a1.c_in, a3.c_in)
    if name == "agad":
        np.testing.assert_allclose(a1.P, a3.P, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a1.P_ref, a3.P_ref, rtol=0, atol=1e-12)
    assert a1.counters() == a3.counters()
    assert a1.w_writes > 0 and a1.A.w.any()
    assert np.any(a1.c_in < 0) or name == "ttv2"


def test_sgd_batched_equals_samplewise():
    out, inp, B = 5, 7, 30
    x, d = _data(B, out, inp, 1)
    s1, s2 = AnalogSGD(_tile(out, inp, 0)), AnalogSGD(_tile(out, inp, 0))
    s1.update(x, d, 0.3)
    for b in range(B):
        sample_update(s2.tile, x[:, b], d[:, b], 0.3)        # the independent single-sample path
    np.testing.assert_allclose(s1.weights(), s2.weights(), rtol=0, atol=1e-12)
    assert np.any(s1.weights() != 0)
