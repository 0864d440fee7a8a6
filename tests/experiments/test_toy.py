"""The constant-gradient toy of the paper's Fig. 3 (``experiments.toy.run``).

A constant positive mean gradient (plus noise) means the correct W moves *down*. With a
reference offset (A's reference 0.8 below its symmetry point, so A reads ~+0.8 too high at
rest) TTv2 integrates the offset as a fake gradient and W moves *up*; AGAD's dynamic
reference cancels the offset and W keeps moving down.

Thresholds, for 1500 updates (W starts at 0, W's range is [-1, 1]): observed final mean W
over seeds 0-3 is about -0.66..-0.73 for TTv2, +0.90..+0.96 for TTv2 with offset and
-0.25..-0.37 for AGAD with or without offset; the assertions use margins of at least 0.1
to those values (a wrong sign fails by more than 0.3).
"""

from __future__ import annotations

import numpy as np
import pytest

from analogtrain.config.toy import ToyConfig
from analogtrain.experiments.toy import run


def run_toy(**kw):
    return run(ToyConfig(**kw))

LABELS = ["ttv2", "ttv2+offset", "c-ttv2", "c-ttv2+offset", "agad", "agad+offset"]


@pytest.fixture(scope="module", params=[0, 1])
def toy(request):
    return run_toy(steps=1500, seed=request.param)


def final(res, label):
    return res.final_w[res.labels.index(label)]


def test_shapes_and_labels(toy):
    assert toy.labels == LABELS
    np.testing.assert_array_equal(toy.steps, np.arange(1, 61) * 25)
    assert toy.w_mean.shape == toy.a_mean.shape == (6, 60)
    np.testing.assert_array_equal(toy.final_w, toy.w_mean[:, -1])
    assert toy.body()["expected_direction"] == "W decreases"


def test_ttv2_without_offset_moves_down(toy):
    assert final(toy, "ttv2") < -0.4
    w = toy.w_mean[0]
    assert w[29] < 0 and w[-1] < w[29]                  # already down halfway, and still going


def test_ttv2_with_offset_moves_up(toy):
    assert final(toy, "ttv2+offset") > 0.6
    # A reads the offset: its mean read sits well above the offset-free replica's
    a = toy.a_mean[:, -20:].mean(axis=1)
    assert a[1] - a[0] > 0.4


def test_agad_moves_down_with_and_without_offset(toy):
    assert final(toy, "agad") < -0.15
    assert final(toy, "agad+offset") < -0.15
    # AGAD is insensitive to the offset although its A reads it too
    a = toy.a_mean[:, -20:].mean(axis=1)
    assert a[5] - a[4] > 0.4
    assert abs(final(toy, "agad") - final(toy, "agad+offset")) < 0.25


def test_cttv2_slows_down_instead_of_breaking(toy):
    assert final(toy, "c-ttv2") < -0.1
    assert final(toy, "c-ttv2+offset") < final(toy, "ttv2+offset") - 0.5


def test_same_seed_same_result():
    a = run_toy(steps=200, seed=3, algorithm=("ttv2",))
    b = run_toy(steps=200, seed=3, algorithm=("ttv2",))
    assert a.labels == ["ttv2", "ttv2+offset"]
    np.testing.assert_array_equal(a.w_mean, b.w_mean)
    np.testing.assert_array_equal(a.a_mean, b.a_mean)
