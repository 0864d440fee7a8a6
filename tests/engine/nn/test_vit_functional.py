"""Tests of the vision-transformer math of analogtrain.engine.nn.functional (docs/nn.md §9.5).

As in ``test_functional.py``: forward passes against independent oracles (loops over
batch, heads and patches; ``math.erf``), every backward against central finite
differences in float64 with ``eps = 1e-6`` and the norm-wise relative error
``||g - g_fd|| / max(||g||, ||g_fd||) < RTOL = 1e-6``. The bound is the one argued in
``test_functional.py``: truncation ~ eps^2 |f'''| / 6 ~ 1e-13 and rounding ~ u |L| / eps
~ 1e-9 for the O(1-10) losses used here, so ~1e-8 is expected; a real bug (a missing
term, a wrong scale such as 1/d_head instead of 1/sqrt(d_head), a transposed head split)
gives 1e-2..1. Measured: at most 4e-9 for every check here, the whole tiny ViT included
(its loss is O(1); the smallest gradient norm of a parameter block is 0.05, and
``assert_grad`` refuses blocks whose gradient norm is below 1e-3, where the rounding term
would no longer be small against the gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analogtrain.engine.nn import functional as F
from analogtrain.errors import ConfigError
from tests.engine.nn.test_functional import assert_grad


def seeds(n: int = 3):
    return pytest.mark.parametrize("seed", range(n))


# --------------------------------------------------------------------------- validators


@pytest.mark.parametrize("width,heads", [(12, 5), (64, 3), (8, 16)])
def test_heads_that_do_not_divide_the_width_raise_naming_heads(width, heads):
    with pytest.raises(ConfigError) as exc:
        F.check_heads(width, heads)
    msg = str(exc.value)
    assert msg.startswith("heads: ") and str(width) in msg and str(heads) in msg and "\n" not in msg
    assert exc.value.field == "heads"


@pytest.mark.parametrize("heads", [0, -2, 1.5, True, "4"])
def test_heads_must_be_a_positive_integer(heads):
    with pytest.raises(ConfigError, match="^heads: must be an integer >= 1"):
        F.check_heads(12, heads)


def test_heads_error_reaches_the_attention_functions():
    x = np.zeros((1, 3, 10))
    with pytest.raises(ConfigError, match="^heads: 4 heads do not divide the width 10"):
        F.attention_forward(x, x, x, 4)
    with pytest.raises(ConfigError, match="^heads: 3 heads do not divide the width 10"):
        F.self_attention_forward(x, np.zeros((30, 10)), np.zeros((10, 10)), 3)
    with pytest.raises(ConfigError, match="^heads: "):
        F.split_heads(x, 7)
    assert F.check_heads(64, 4) == 16 and F.check_heads(10, 10) == 1


@pytest.mark.parametrize("shape,p", [((28, 28), 5), ((32, 32), 3), ((28, 32), 8), ((32, 28), 8)])
def test_patch_size_that_does_not_divide_the_image_raises_naming_patch_size(shape, p):
    x = np.zeros((1, 1, *shape))
    for call in (lambda: F.patchify(x, p), lambda: F.unpatchify(np.zeros((1, 1, p * p)), (1, *shape), p),
                 lambda: F.check_patch_size(*shape, p)):
        with pytest.raises(ConfigError) as exc:
            call()
        msg = str(exc.value)
        assert msg.startswith(f"patch_size: {p} does not divide the image size {shape[0]}x{shape[1]}")
        assert "\n" not in msg and exc.value.field == "patch_size"


@pytest.mark.parametrize("p", [0, -7, 2.0, True])
def test_patch_size_must_be_a_positive_integer(p):
    with pytest.raises(ConfigError, match="^patch_size: must be an integer >= 1"):
        F.check_patch_size(28, 28, p)


# --------------------------------------------------------------------------- erf, GELU


def test_erf_and_erfc_match_math_to_a_few_ulp():
    # all three ranges of the approximation, their borders, and the far tail
    x = np.concatenate([np.linspace(-30, 30, 20001), [0.0, 1e-300, -1e-300, 0.46875, -0.46875,
                                                      np.nextafter(0.46875, 1), 4.0, -4.0, 26.5, -26.5]])
    erf_ref = np.array([math.erf(v) for v in x])
    erfc_ref = np.array([math.erfc(v) for v in x])
    got, gotc = F.erf(x), F.erfc(x)
    # Cody's approximations are accurate to ~1e-18 before rounding; a handful of roundings
    # in the Horner scheme and the exp give a few ulp: 4e-15 leaves an order of margin.
    rel = np.abs(got - erf_ref) / np.maximum(np.abs(erf_ref), 1e-300)
    assert rel.max() < 4e-15
    tail = erfc_ref > 1e-300                                  # beyond, subnormal numbers and 0
    relc = np.abs(gotc - erfc_ref)[tail] / erfc_ref[tail]
    assert relc.max() < 4e-15                                 # full relative precision in the tail
    assert np.abs(gotc - erfc_ref)[~tail].max() < 1e-300
    assert F.erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]
    assert F.erfc(np.array([np.inf, -np.inf])).tolist() == [0.0, 2.0]
    assert np.isnan(F.erf(np.array([np.nan]))[0]) and np.isnan(F.erfc(np.array([np.nan]))[0])
    ints = F.erf(np.array([0, 1, -2]))                                                 # integers: float64
    assert ints.dtype == np.float64
    np.testing.assert_allclose(ints, [0.0, math.erf(1), math.erf(-2)], rtol=4e-15)
    assert F.erfc(2.0) == pytest.approx(math.erfc(2.0), rel=4e-15)                      # a 0-d input


def _gelu_oracle(x):
    """``x/2 (1 + erf(x/sqrt 2))``, written with ``math.erfc`` (``1 + erf(u) = erfc(-u)``) so that
    the oracle itself does not lose digits to cancellation for negative ``x``.

    Tolerance against it: ``x -> erfc(-x/sqrt 2)`` has a relative condition number ~ ``x^2``
    for ``x << 0`` (up to ~80 at ``|x| = 9``), so one ulp of difference in the argument
    (``x * 2**-0.5`` here, ``x / sqrt(2)`` there) shows as up to ~1e-14 relative: ``rtol = 1e-13``.
    """
    return np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x.ravel()]).reshape(x.shape)


@seeds()
def test_gelu_forward_is_the_exact_erf_form_and_backward(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5)) * 3
    np.testing.assert_allclose(F.gelu(x), _gelu_oracle(x), rtol=1e-13, atol=1e-300)
    r = rng.standard_normal(x.shape)
    assert_grad(F.gelu_backward(x, r), lambda: np.sum(r * F.gelu(x)), x)


def test_gelu_is_not_the_tanh_approximation():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    exact = _gelu_oracle(x)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(F.gelu(x), exact, rtol=1e-13)
    assert np.max(np.abs(tanh_form - exact)) > 1e-4            # the two forms really differ
    assert F.gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, rel=1e-15)
    big = F.gelu(np.array([-40.0, 40.0]))
    assert big[0] == 0.0 and big[1] == 40.0
    assert F.gelu(np.array([-10.0]))[0] == pytest.approx(-10 * 0.5 * math.erfc(10 / math.sqrt(2)), rel=1e-13)


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("axis", [0, 1, -1])
@seeds(2)
def test_softmax_forward_and_backward_along_an_axis(axis, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((3, 4, 5)) * 2
    p = F.softmax(z, axis=axis)
    e = np.exp(z)
    np.testing.assert_allclose(p, e / e.sum(axis=axis, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-14)
    r = rng.standard_normal(z.shape)
    assert_grad(F.softmax_backward(p, r, axis=axis), lambda: np.sum(r * F.softmax(z, axis=axis)), z)


def test_softmax_is_stable_and_agrees_with_log_softmax():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 6))
    for shift in (1e4, -1e4):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            p = F.softmax(z + shift)
        np.testing.assert_allclose(p, np.exp(F.log_softmax(z)), rtol=1e-9)


# --------------------------------------------------------------------------- LayerNorm


@seeds()
def test_layernorm_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    B, T, D = 2, 3, int(rng.integers(2, 9))
    x = rng.standard_normal((B, T, D)) * 2 + 1
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    y, cache = F.layernorm_forward(x, gamma, beta)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * gamma + beta
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cache.xhat.mean(-1), 0.0, atol=1e-14)
    r = rng.standard_normal(y.shape)
    gx, gg, gb = F.layernorm_backward(r, cache)
    assert gx.shape == x.shape and gg.shape == gb.shape == (D,)
    loss = lambda: np.sum(r * F.layernorm_forward(x, gamma, beta)[0])  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gg, loss, gamma)
    assert_grad(gb, loss, beta)


def test_layernorm_eps_and_2d_input():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4)) * 1e-3                     # var ~ 1e-6: eps matters
    g, b = np.ones(4), np.zeros(4)
    y, _ = F.layernorm_forward(x, g, b, eps=0.1)
    np.testing.assert_allclose(y, (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 0.1),
                               rtol=1e-12)
    r = rng.standard_normal(x.shape)
    gx, _, _ = F.layernorm_backward(r, F.layernorm_forward(x, g, b, eps=0.1)[1])
    assert_grad(gx, lambda: np.sum(r * F.layernorm_forward(x, g, b, eps=0.1)[0]), x)


# --------------------------------------------------------------------------- patches


def _patchify_oracle(x, p):
    B, _, H, W = x.shape
    rows = []
    for b in range(B):
        seq = []
        for gh in range(H // p):
            for gw in range(W // p):
                seq.append(x[b, :, gh * p:(gh + 1) * p, gw * p:(gw + 1) * p].reshape(-1))
        rows.append(seq)
    return np.array(rows)


@pytest.mark.parametrize("shape,p", [((2, 1, 28, 28), 7), ((2, 3, 32, 32), 4), ((1, 3, 8, 12), 2),
                                     ((2, 2, 6, 6), 6), ((1, 1, 3, 3), 1)])
def test_patchify_matches_loops_and_round_trips(shape, p):
    rng = np.random.default_rng(sum(shape) + p)
    x = rng.standard_normal(shape)
    patches = F.patchify(x, p)
    B, C, H, W = shape
    assert patches.shape == (B, (H // p) * (W // p), C * p * p)
    np.testing.assert_array_equal(patches, _patchify_oracle(x, p))
    # the rows of im2col with stride p: the patch embedding is a p x p convolution with stride p
    np.testing.assert_array_equal(patches.reshape(-1, C * p * p), F.im2col(x, p, p, stride=p))
    np.testing.assert_array_equal(F.unpatchify(patches, (C, H, W), p), x)   # exact round trip
    a = rng.standard_normal(patches.shape)
    assert np.sum(F.unpatchify(a, (C, H, W), p) * x) == pytest.approx(np.sum(a * patches), rel=1e-12)


def test_patch_embedding_equals_a_strided_convolution_and_its_gradient():
    rng = np.random.default_rng(5)
    B, C, H, W, p, D = 2, 3, 8, 8, 4, 5
    x = rng.standard_normal((B, C, H, W))
    w = rng.standard_normal((D, C, p, p))
    b = rng.standard_normal(D)
    emb = F.linear_forward(F.patchify(x, p), w.reshape(D, -1), b)                  # (B, N, D)
    conv = F.conv2d_forward(x, w, b, stride=p)                                      # (B, D, H/p, W/p)
    np.testing.assert_allclose(emb, conv.reshape(B, D, -1).transpose(0, 2, 1), rtol=1e-12, atol=1e-13)
    r = rng.standard_normal(emb.shape)
    gp, gw, gb = F.linear_backward(F.patchify(x, p), w.reshape(D, -1), r)
    gx = F.unpatchify(gp, (C, H, W), p)                                              # backward of patchify
    loss = lambda: np.sum(r * F.linear_forward(F.patchify(x, p), w.reshape(D, -1), b))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gw.reshape(w.shape), loss, w)
    assert_grad(gb, loss, b)


# --------------------------------------------------------------------------- embeddings, pooling, residual


@seeds(2)
def test_class_token_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5))
    cls = rng.standard_normal(5)
    y = F.prepend_class_token(x, cls)
    assert y.shape == (3, 5, 5)
    np.testing.assert_array_equal(y[:, 0], np.tile(cls, (3, 1)))
    np.testing.assert_array_equal(y[:, 1:], x)
    r = rng.standard_normal(y.shape)
    gx, gcls = F.prepend_class_token_backward(r)
    loss = lambda: np.sum(r * F.prepend_class_token(x, cls))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gcls, loss, cls)


@seeds(2)
def test_position_embedding_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5))
    pos = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(F.add_position_embedding(x, pos), x + pos[None])
    r = rng.standard_normal(x.shape)
    gx, gpos = F.add_position_embedding_backward(r)
    loss = lambda: np.sum(r * F.add_position_embedding(x, pos))  # noqa: E731
    assert_grad(gx, loss, x)
    assert_grad(gpos, loss, pos)
    with pytest.raises(ConfigError, match=r"^position embedding: shape \(5, 5\) does not match the tokens \(4, 5\)"):
        F.add_position_embedding(x, np.zeros((5, 5)))


@pytest.mark.parametrize("pool", F.POOLS)
def test_pool_tokens_forward_and_backward(pool):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5))
    y = F.pool_tokens(x, pool)
    np.testing.assert_allclose(y, x[:, 0] if pool == "class" else x.mean(axis=1), rtol=1e-14)
    r = rng.standard_normal(y.shape)
    assert_grad(F.pool_tokens_backward(r, 4, pool), lambda: np.sum(r * F.pool_tokens(x, pool)), x)


def test_pool_tokens_rejects_unknown_mode():
    for call in (lambda: F.pool_tokens(np.zeros((1, 2, 3)), "max"),
                 lambda: F.pool_tokens_backward(np.zeros((1, 3)), 2, "max")):
        with pytest.raises(ConfigError, match="^pool: must be one of class, mean") as exc:
            call()
        assert exc.value.field == "pool"


def test_residual_forward_and_backward():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((4, 4))
    r = rng.standard_normal(x.shape)
    # y = x + f(x) with f linear: the gradient is the identity path plus the branch's
    loss = lambda: np.sum(r * F.residual_forward(x, F.linear_forward(x, w)))  # noqa: E731
    g_skip, g_branch = F.residual_backward(r)
    assert_grad(g_skip + F.linear_backward(x, w, g_branch)[0], loss, x)


# --------------------------------------------------------------------------- attention


def _attention_oracle(q, k, v, heads):
    """Loops over the batch and the heads, softmax written out."""
    B, _, D = q.shape
    dh = D // heads
    out = np.zeros_like(q)
    for b in range(B):
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            s = q[b][:, cols] @ k[b][:, cols].T / math.sqrt(dh)
            e = np.exp(s - s.max(axis=1, keepdims=True))
            out[b][:, cols] = (e / e.sum(axis=1, keepdims=True)) @ v[b][:, cols]
    return out


def test_split_and_merge_heads():
    x = np.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    xh = F.split_heads(x, 4)
    assert xh.shape == (2, 4, 3, 2)
    np.testing.assert_array_equal(xh[1, 2, 0], x[1, 0, 4:6])          # head 2 = features 4, 5
    np.testing.assert_array_equal(F.merge_heads(xh), x)


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 6])
def test_attention_forward_and_backward_with_several_heads(heads):
    rng = np.random.default_rng(heads)
    B, T, D = 2, 5, 12
    q, k, v = (rng.standard_normal((B, T, D)) for _ in range(3))
    o, cache = F.attention_forward(q, k, v, heads)
    np.testing.assert_allclose(o, _attention_oracle(q, k, v, heads), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cache.p.sum(-1), 1.0, rtol=1e-14)
    assert cache.p.shape == (B, heads, T, T) and cache.scale == pytest.approx(1 / math.sqrt(D // heads))
    r = rng.standard_normal(o.shape)
    gq, gk, gv = F.attention_backward(r, cache)
    loss = lambda: np.sum(r * F.attention_forward(q, k, v, heads)[0])  # noqa: E731
    assert_grad(gq, loss, q)
    assert_grad(gk, loss, k)
    assert_grad(gv, loss, v)


def test_attention_heads_are_independent():
    """Changing the keys of head 0 leaves the output features of head 1 unchanged."""
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal((1, 4, 6)) for _ in range(3))
    o1, _ = F.attention_forward(q, k, v, 2)
    k2 = k.copy()
    k2[..., :3] += rng.standard_normal((1, 4, 3))
    o2, _ = F.attention_forward(q, k2, v, 2)
    np.testing.assert_array_equal(o1[..., 3:], o2[..., 3:])
    assert not np.allclose(o1[..., :3], o2[..., :3])


def _mhsa_params(rng, D, Da, D_out):
    return (rng.standard_normal((3 * Da, D)) / math.sqrt(D), rng.standard_normal((D_out, Da)) / math.sqrt(Da),
            rng.standard_normal(3 * Da) * 0.1, rng.standard_normal(D_out) * 0.1)


@pytest.mark.parametrize("heads,D,Da", [(1, 6, 6), (2, 6, 6), (3, 6, 6), (4, 8, 8), (2, 5, 4)])
def test_self_attention_forward_and_backward(heads, D, Da):
    rng = np.random.default_rng(10 * heads + D)
    B, T, D_out = 2, 4, D
    x = rng.standard_normal((B, T, D))
    w_qkv, w_o, b_qkv, b_o = _mhsa_params(rng, D, Da, D_out)
    dqkv = np.zeros((B * T, 3 * Da))           # offsets at the two tile outputs/inputs, to check the
    do = np.zeros((B * T, Da))                 # intermediate gradients an analog layer updates with

    def forward():
        return F.self_attention_forward(x, w_qkv, w_o, heads, b_qkv, b_o,
                                        matvec_qkv=lambda u: u @ w_qkv.T + dqkv,
                                        matvec_o=lambda u: (u + do) @ w_o.T)[0]

    y, cache = F.self_attention_forward(x, w_qkv, w_o, heads, b_qkv, b_o)
    q, k, v = np.split(x @ w_qkv.T + b_qkv, 3, axis=-1)
    np.testing.assert_allclose(y, _attention_oracle(q, k, v, heads) @ w_o.T + b_o, rtol=1e-12, atol=1e-13)
    r = rng.standard_normal(y.shape)
    g = F.self_attention_backward(r, cache)
    loss = lambda: np.sum(r * forward())  # noqa: E731
    assert_grad(g.x, loss, x)
    assert_grad(g.w_qkv, loss, w_qkv)
    assert_grad(g.b_qkv, loss, b_qkv)
    assert_grad(g.w_o, loss, w_o)
    assert_grad(g.b_o, loss, b_o)
    assert_grad(g.qkv.reshape(dqkv.shape), loss, dqkv)
    assert_grad(g.o.reshape(do.shape), loss, do)
    # the weight gradients are the outer products of the tile inputs and output gradients
    np.testing.assert_allclose(g.w_qkv, g.qkv.reshape(-1, 3 * Da).T @ x.reshape(-1, D), rtol=1e-12)
    np.testing.assert_allclose(g.w_o, r.reshape(-1, D_out).T @ cache.o.reshape(-1, Da), rtol=1e-12)


def test_self_attention_seams_carry_every_weight_product():
    """Q, K, V on three "tiles" and the output projection on a fourth, all through the seams:
    the same numbers as the fused digital version with the weights the tiles implement."""
    rng = np.random.default_rng(9)
    B, T, D, heads = 2, 3, 6, 2
    x = rng.standard_normal((B, T, D))
    w_qkv, w_o, _, _ = _mhsa_params(rng, D, D, D)
    wq, wk, wv = 2 * w_qkv[:D], 2 * w_qkv[D:2 * D], 2 * w_qkv[2 * D:]     # tiles that hold 2 W
    mv = lambda u: np.concatenate([u @ wq.T, u @ wk.T, u @ wv.T], axis=1)  # noqa: E731
    rmv = lambda g: g[:, :D] @ wq + g[:, D:2 * D] @ wk + g[:, 2 * D:] @ wv  # noqa: E731
    y, cache = F.self_attention_forward(x, None, None, heads, matvec_qkv=mv, matvec_o=lambda u: u @ (2 * w_o).T)
    y_ref, cache_ref = F.self_attention_forward(x, 2 * w_qkv, 2 * w_o, heads)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12)
    r = rng.standard_normal(y.shape)
    g = F.self_attention_backward(r, cache, rmatvec_qkv=rmv, rmatvec_o=lambda d: d @ (2 * w_o))
    g_ref = F.self_attention_backward(r, cache_ref)
    for name in g._fields:
        np.testing.assert_allclose(getattr(g, name), getattr(g_ref, name), rtol=1e-11, atol=1e-14, err_msg=name)
    assert not np.allclose(y, F.self_attention_forward(x, w_qkv, w_o, heads)[0])     # the seam is on the path


# --------------------------------------------------------------------------- a whole tiny ViT


IMG = (2, 4, 4)            # C, H, W
PATCH, WIDTH, HEADS, MLP, CLASSES = 2, 6, 2, 8, 3


def _vit_params(rng):
    C, H, W = IMG
    n_tok = (H // PATCH) * (W // PATCH) + 1
    pd = C * PATCH * PATCH
    s = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    return {
        "w_emb": s(WIDTH, pd) / math.sqrt(pd), "b_emb": s(WIDTH) * 0.1,
        "cls": s(WIDTH) * 0.5, "pos": s(n_tok, WIDTH) * 0.5,
        "g1": 1 + 0.2 * s(WIDTH), "be1": 0.1 * s(WIDTH),
        "w_qkv": s(3 * WIDTH, WIDTH) / math.sqrt(WIDTH), "b_qkv": 0.1 * s(3 * WIDTH),
        "w_o": s(WIDTH, WIDTH) / math.sqrt(WIDTH), "b_o": 0.1 * s(WIDTH),
        "g2": 1 + 0.2 * s(WIDTH), "be2": 0.1 * s(WIDTH),
        "w1": s(MLP, WIDTH) / math.sqrt(WIDTH), "b1": 0.1 * s(MLP),
        "w2": s(WIDTH, MLP) / math.sqrt(MLP), "b2": 0.1 * s(WIDTH),
        "g3": 1 + 0.2 * s(WIDTH), "be3": 0.1 * s(WIDTH),
        "w_head": s(CLASSES, WIDTH) / math.sqrt(WIDTH), "b_head": 0.1 * s(CLASSES),
    }


def _vit_loss_and_grads(x, t, P, pool):
    """Forward and hand-written backward of a one-block ViT, composed from the pure functions:
    patches -> linear embedding -> class token -> + position -> [LN -> attention -> residual
    -> LN -> MLP(GELU) -> residual] -> LN -> pool -> linear head -> cross-entropy.
    Returns (loss, {name: gradient}, grad_x)."""
    C, H, W = IMG
    # forward
    pt = F.patchify(x, PATCH)
    e = F.linear_forward(pt, P["w_emb"], P["b_emb"])
    z0 = F.add_position_embedding(F.prepend_class_token(e, P["cls"]), P["pos"])
    a, ln1 = F.layernorm_forward(z0, P["g1"], P["be1"])
    att, sa = F.self_attention_forward(a, P["w_qkv"], P["w_o"], HEADS, P["b_qkv"], P["b_o"])
    z1 = F.residual_forward(z0, att)
    m, ln2 = F.layernorm_forward(z1, P["g2"], P["be2"])
    h = F.linear_forward(m, P["w1"], P["b1"])
    hg = F.gelu(h)
    z2 = F.residual_forward(z1, F.linear_forward(hg, P["w2"], P["b2"]))
    f, ln3 = F.layernorm_forward(z2, P["g3"], P["be3"])
    pooled = F.pool_tokens(f, pool)
    logits = F.linear_forward(pooled, P["w_head"], P["b_head"])
    loss, g_logits = F.cross_entropy(logits, t)
    # backward
    G = {}
    g_pooled, G["w_head"], G["b_head"] = F.linear_backward(pooled, P["w_head"], g_logits)
    g_f = F.pool_tokens_backward(g_pooled, f.shape[1], pool)
    g_z2, G["g3"], G["be3"] = F.layernorm_backward(g_f, ln3)
    g_z1, g_mlp = F.residual_backward(g_z2)
    g_hg, G["w2"], G["b2"] = F.linear_backward(hg, P["w2"], g_mlp)
    g_m, G["w1"], G["b1"] = F.linear_backward(m, P["w1"], F.gelu_backward(h, g_hg))
    g_ln2, G["g2"], G["be2"] = F.layernorm_backward(g_m, ln2)
    g_z1 = g_z1 + g_ln2
    g_z0, g_att = F.residual_backward(g_z1)
    sg = F.self_attention_backward(g_att, sa)
    G["w_qkv"], G["b_qkv"], G["w_o"], G["b_o"] = sg.w_qkv, sg.b_qkv, sg.w_o, sg.b_o
    g_ln1, G["g1"], G["be1"] = F.layernorm_backward(sg.x, ln1)
    g_z0 = g_z0 + g_ln1
    g_tok, G["pos"] = F.add_position_embedding_backward(g_z0)
    g_e, G["cls"] = F.prepend_class_token_backward(g_tok)
    g_pt, G["w_emb"], G["b_emb"] = F.linear_backward(pt, P["w_emb"], g_e)
    return loss, G, F.unpatchify(g_pt, (C, H, W), PATCH)


@pytest.mark.parametrize("pool", F.POOLS)
def test_whole_vit_block_gradient_by_finite_differences(pool):
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 1, (3, *IMG))
    t = np.array([0, 2, 1])
    P = _vit_params(rng)
    loss, G, gx = _vit_loss_and_grads(x, t, P, pool)
    assert np.isfinite(loss) and set(G) == set(P)
    f = lambda: _vit_loss_and_grads(x, t, P, pool)[0]  # noqa: E731
    assert_grad(gx, f, x)
    for name in P:
        assert G[name].shape == P[name].shape, name
        assert_grad(G[name], f, P[name])


def test_whole_vit_pools_differ():
    """The two poolings give different heads' inputs (the class token is not the mean)."""
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 1, (2, *IMG))
    P = _vit_params(rng)
    la = _vit_loss_and_grads(x, np.array([0, 1]), P, "class")[0]
    lb = _vit_loss_and_grads(x, np.array([0, 1]), P, "mean")[0]
    assert abs(la - lb) > 1e-6


# ------------------------------------------------------------------ float32 in, float32 out


def _vit_float32_outputs():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, r = f32(2, 3, 4), f32(2, 3, 4)
    out = {"erf": [F.erf(x), F.erfc(x)], "gelu": [F.gelu(x), F.gelu_backward(x, r)]}
    p = F.softmax(x, axis=1)
    out["softmax"] = [p, F.softmax_backward(p, r, axis=1)]
    y, cache = F.layernorm_forward(x, f32(4), f32(4))
    out["layernorm"] = [y, *F.layernorm_backward(r, cache)]
    img = f32(2, 3, 4, 4)
    pt = F.patchify(img, 2)
    out["patches"] = [pt, F.unpatchify(pt, (3, 4, 4), 2)]
    y = F.prepend_class_token(x, f32(4))
    out["class_token"] = [y, *F.prepend_class_token_backward(y)]
    out["position"] = [F.add_position_embedding(x, f32(3, 4)), *F.add_position_embedding_backward(r)]
    out["pool"] = [F.pool_tokens(x, m) for m in F.POOLS] + [F.pool_tokens_backward(x[:, 0], 3, m) for m in F.POOLS]
    o, ac = F.attention_forward(x, x, x, 2)
    out["attention"] = [o, *F.attention_backward(r, ac)]
    y, sc = F.self_attention_forward(x, f32(12, 4), f32(4, 4), 2, f32(12), f32(4))
    out["self_attention"] = [y, *F.self_attention_backward(r, sc)]
    return out


@pytest.mark.parametrize("name,arrays", list(_vit_float32_outputs().items()))
def test_float32_inputs_give_float32_outputs(name, arrays):
    for k, a in enumerate(arrays):
        assert a.dtype == np.float32, f"{name} output {k}: {a.dtype}"
