"""Attention, masking, positions and initialisation of the decoder against explicit references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws import model as M
from mmlaws.errors import ConfigError
from mmlaws.model.layers import attention, causal_segment_mask, truncated_normal


def naive_attention(q, k, v, segment_ids):
    """Numpy softmax attention, one (batch, head) at a time. q, k, v: [B, T, N, H]."""
    b, t, n, h = q.shape
    out = np.zeros_like(q)
    for bi in range(b):
        for ni in range(n):
            scores = q[bi, :, ni] @ k[bi, :, ni].T / np.sqrt(h)  # [T, S]
            for ti in range(t):
                for si in range(t):
                    same = segment_ids is None or segment_ids[bi, ti] == segment_ids[bi, si]
                    if si > ti or not same:
                        scores[ti, si] = -np.inf
            p = np.exp(scores - scores.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            out[bi, :, ni] = p @ v[bi, :, ni]
    return out


@pytest.mark.parametrize("with_segments", [False, True])
def test_attention_matches_naive_softmax(with_segments):
    b, t, n, h = 2, 5, 3, 4
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((b, t, n, h)).astype(np.float32) for _ in range(3))
    seg = np.array([[1, 1, 2, 2, 2], [1, 2, 2, 3, 0]], np.int32) if with_segments else None
    got = attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                    None if seg is None else jnp.asarray(seg))
    np.testing.assert_allclose(np.asarray(got), naive_attention(q, k, v, seg), atol=1e-5)


def test_causal_segment_mask_blocks_other_documents_and_the_future():
    mask = np.asarray(causal_segment_mask(jnp.array([[1, 1, 2]])))[0, 0]
    expected = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]], bool)
    np.testing.assert_array_equal(mask, expected)


def test_positions_restart_at_each_segment():
    seg = jnp.array([[1, 1, 1, 2, 2, 3], [4, 4, 4, 4, 4, 4]])
    got = np.asarray(M.positions_from_segments(seg))
    np.testing.assert_array_equal(got, [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])


def test_packed_documents_equal_each_document_alone():
    """Segment masking + restarting positions: packing changes nothing about each document."""
    config = M.PRESETS["tiny"]
    params = M.init_params(config, jax.random.key(1))
    docs = jnp.array([[5, 9, 2, 0], [7, 3, 3, 8]])  # two documents, each alone in a row
    packed = docs.reshape(1, 8)  # [1, 8]
    seg = jnp.array([[1, 1, 1, 1, 2, 2, 2, 2]])

    @jax.jit
    def run(params):
        f = functools.partial(M.logits, config, params)
        return (f(packed, segment_ids=seg), f(docs),
                f(packed, segment_ids=seg, positions=jnp.array([[0, 1, 2, 3] * 2])),
                f(packed, segment_ids=seg, positions=jnp.arange(8)[None]))

    got, alone, explicit, unpacked_positions = run(params)
    np.testing.assert_allclose(got, alone.reshape(got.shape), atol=1e-5)
    # explicit positions equal the derived ones; positions that do not restart change the answer
    np.testing.assert_allclose(explicit, got, atol=1e-6)
    assert np.abs(np.asarray(unpacked_positions - got)).max() > 1e-3


def test_truncated_normal_init_is_cut_at_two_std():
    x = np.asarray(truncated_normal(0.006)(jax.random.key(0), (200_000,)))
    assert np.abs(x).max() <= 0.012 + 1e-7
    assert np.abs(x).max() > 0.0119
    # std of N(0, 1) truncated at ±2 is 0.8796
    assert abs(x.std() - 0.006 * 0.8796) < 5e-5


def test_logits_shape_dtype_and_dropout():
    config = M.PRESETS["tiny"]
    params = M.init_params(config, jax.random.key(0))
    tokens = jnp.arange(12).reshape(2, 6)

    @jax.jit
    def run(params, tokens, rng):
        return (M.logits(config, params, tokens),
                M.logits(config, params, tokens, dropout_rng=rng),
                M.logits(config.replace(dropout=0.0), params, tokens, dropout_rng=rng))

    out, noisy, same = run(params, tokens, jax.random.key(3))
    assert out.shape == (2, 6, config.vocab_size) and out.dtype == jnp.float32
    assert np.abs(np.asarray(noisy - out)).max() > 1e-4
    np.testing.assert_allclose(same, out, atol=1e-6)


def test_untied_embeddings_have_their_own_output_matrix():
    config = M.PRESETS["tiny"].replace(tie_embeddings=False)
    params = M.abstract_params(config)
    assert params["unembed"].shape == (config.d_model, config.vocab_size)
    assert sum(x.size for x in jax.tree.leaves(params)) == M.total_params(config)


@pytest.mark.parametrize("bad", [dict(remat="some"), dict(dtype="int8"), dict(num_heads=0),
                                 dict(dropout=1.0), dict(param_dtype="auto"),
                                 dict(attention="flash")])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        M.PRESETS["tiny"].replace(**bad)


def test_sequences_longer_than_max_len_are_refused():
    config = M.PRESETS["tiny"].replace(max_len=4)
    run = functools.partial(jax.eval_shape, functools.partial(M.logits, config),
                            M.abstract_params(config))
    assert run(jnp.zeros((1, 4), jnp.int32)).shape == (1, 4, config.vocab_size)
    with pytest.raises(ConfigError, match="max_len"):
        run(jnp.zeros((1, 5), jnp.int32))


def test_init_params_first_called_inside_a_trace_stays_usable():
    import jax

    from mmlaws import model as M

    config = M.PRESETS["tiny"].replace(num_layers=1)
    jax.jit(lambda k: M.init_params(config, k))(jax.random.key(0))
    params = M.init_params(config, jax.random.key(1))  # the cached initialiser holds no tracer
    assert jax.tree.leaves(params)
