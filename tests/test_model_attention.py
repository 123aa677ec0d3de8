"""The attention kernels against a naive numpy softmax and against the XLA reference.

cuDNN and splash cannot run on a CPU: splash runs here in Pallas' interpret mode; the cuDNN
path's packed (THD) description of the rows is checked by an emulator of the kernel's contract
(attention within each described run, causal), including the fallback for over-full rows.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.errors import ConfigError
from mmlaws.model import attention as A


def naive_attention(q, k, v, segment_ids):
    """Numpy softmax attention, one (batch, head) at a time. q, k, v: [B, T, N, H]."""
    b, t, n, h = q.shape
    out = np.zeros_like(q)
    for bi in range(b):
        seg = np.zeros(t, int) if segment_ids is None else segment_ids[bi]
        allowed = np.tril(np.ones((t, t), bool)) & (seg[:, None] == seg[None, :])
        for ni in range(n):
            scores = np.where(allowed, q[bi, :, ni] @ k[bi, :, ni].T / np.sqrt(h), -np.inf)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            out[bi, :, ni] = (p / p.sum(-1, keepdims=True)) @ v[bi, :, ni]
    return out


def _qkv(b, t, n, h, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, t, n, h)).astype(np.float32) for _ in range(3)]


def random_segments(rng, b, t, max_docs):
    """Packed rows: 1, 2, … per document, padding (0) at the end of some rows."""
    rows = []
    for _ in range(b):
        cuts = np.sort(rng.choice(np.arange(1, t), size=rng.integers(0, max_docs), replace=False))
        row = np.searchsorted(cuts, np.arange(t), side="right") + 1
        pad = rng.integers(0, t // 3)
        if pad:
            row[t - pad:] = 0
        rows.append(row)
    return np.stack(rows).astype(np.int32)


SEGMENTS = np.array([[1, 1, 2, 2, 2, 3, 0], [1, 2, 2, 2, 2, 2, 2]], np.int32)  # [2, 7]


@pytest.mark.parametrize("with_segments", [False, True])
@pytest.mark.parametrize("kernel", ["xla", "chunked"])
def test_kernel_matches_naive_softmax(kernel, with_segments):
    q, k, v = _qkv(2, 7, 3, 4)
    seg = SEGMENTS if with_segments else None
    fn = A.xla_attention if kernel == "xla" else A.chunked_attention
    got = fn(*map(jnp.asarray, (q, k, v)), None if seg is None else jnp.asarray(seg))
    np.testing.assert_allclose(np.asarray(got), naive_attention(q, k, v, seg), atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 2, 3, 6])
def test_chunked_values_and_gradients_equal_xla(chunk):
    q, k, v = map(jnp.asarray, _qkv(2, 6, 3, 5, seed=1))
    seg = jnp.asarray(random_segments(np.random.default_rng(2), 2, 6, 3))
    ref = lambda q, k, v: (A.xla_attention(q, k, v, seg) ** 2).sum()  # noqa: E731
    got = lambda q, k, v: (A.chunked_attention(q, k, v, seg, chunk) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(got(q, k, v), ref(q, k, v), rtol=1e-5)
    for a, b in zip(jax.grad(got, (0, 1, 2))(q, k, v), jax.grad(ref, (0, 1, 2))(q, k, v),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_chunked_keeps_no_full_score_tensor():
    t = 64
    q, k, v = map(jnp.asarray, _qkv(1, t, 2, 8))
    seg = jnp.ones((1, t), jnp.int32)
    loss = lambda q, k, v: A.chunked_attention(q, k, v, seg, 16).sum()  # noqa: E731
    text = jax.jit(jax.grad(loss, (0, 1, 2))).lower(q, k, v).as_text()
    assert f"{t}x{t}x" not in text and f"x{t}x{t}x" not in text
    assert "16x64x" in text  # the [B, N, C, S] block scores


def test_segment_runs_example():
    seqlen, offsets, runs = A.segment_runs(jnp.array([[1, 1, 2, 2, 2, 0]]), 4)
    np.testing.assert_array_equal(seqlen, [[2, 3, 1, -1]])
    np.testing.assert_array_equal(offsets, [[0, 2, 5, -1, -1]])
    np.testing.assert_array_equal(runs, [3])


def _runs_mask(seqlen, offsets, t):
    """The mask a packed-layout kernel applies: causal inside each described run."""
    seqlen, offsets = np.asarray(seqlen), np.asarray(offsets)
    masks = np.zeros((len(seqlen), t, t), bool)
    for b, (lens, offs) in enumerate(zip(seqlen, offsets, strict=True)):
        for n, o in zip(lens, offs[:-1], strict=True):
            if n >= 0:
                masks[b, o:o + n, o:o + n] = np.tril(np.ones((n, n), bool))
    return masks


def test_segment_runs_describe_the_causal_segment_mask():
    rng = np.random.default_rng(0)
    for t in (5, 9, 16):
        seg = random_segments(rng, 6, t, 5)
        seqlen, offsets, runs = A.segment_runs(jnp.asarray(seg), t)
        expected = np.asarray(A.causal_segment_mask(jnp.asarray(seg)))[:, 0]
        np.testing.assert_array_equal(_runs_mask(seqlen, offsets, t), expected)
        assert (np.asarray(runs) <= t).all()


def _emulated_cudnn(query, key, value, *, q_seqlen, kv_seqlen, q_offsets, kv_offsets, scale,
                    mask_type, qkv_layout):
    """cuDNN's packed causal attention, emulated from its arguments alone."""
    t = query.shape[1]
    pos = jnp.arange(t)
    inside = ((pos[None, None, :] >= q_offsets[:, :-1, None])
              & (pos[None, None, :] < q_offsets[:, :-1, None] + q_seqlen[:, :, None])
              & (q_seqlen[:, :, None] >= 0))  # [B, M, T]
    same = jnp.einsum("BMT,BMS->BTS", inside.astype(jnp.int32), inside.astype(jnp.int32)) > 0
    mask = (same & (pos[:, None] >= pos[None, :]))[:, None]
    assert qkv_layout == "BTNH" and abs(scale - 1 / np.sqrt(query.shape[-1])) < 1e-7
    return jax.nn.dot_product_attention(query, key, value, mask=mask, implementation="xla")


def test_cudnn_packed_description_and_overfull_rows(monkeypatch):
    from jax._src.cudnn import fused_attention_stablehlo as cudnn

    monkeypatch.setattr(cudnn, "dot_product_attention", _emulated_cudnn)
    q, k, v = map(jnp.asarray, _qkv(3, 9, 2, 4, seed=3))
    seg = random_segments(np.random.default_rng(4), 3, 9, 4)
    seg[0] = [1, 2, 3, 4, 5, 5, 6, 0, 0]  # 7 runs
    expected = naive_attention(*map(np.asarray, (q, k, v)), seg)
    for max_segments in (7, 9, 3):  # the last does not fit row 0: the chunked kernel takes it
        got = jax.jit(A.cudnn_attention, static_argnums=4)(q, k, v, jnp.asarray(seg),
                                                           max_segments)
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_splash_in_interpret_mode_equals_xla():
    t = 256
    q, k, v = map(jnp.asarray, _qkv(2, t, 2, 16, seed=5))
    seg = jnp.asarray(random_segments(np.random.default_rng(6), 2, t, 6))
    splash = lambda q, k, v: A.splash_attention(q, k, v, seg, interpret=True)  # noqa: E731
    ref = lambda q, k, v: A.xla_attention(q, k, v, seg)  # noqa: E731
    np.testing.assert_allclose(np.asarray(jax.jit(splash)(q, k, v)), np.asarray(ref(q, k, v)),
                               atol=1e-5)
    dq = jax.grad(lambda q: (splash(q, k, v) ** 2).sum())(q)
    dq_ref = jax.grad(lambda q: (ref(q, k, v) ** 2).sum())(q)
    np.testing.assert_allclose(np.asarray(dq), np.asarray(dq_ref), atol=1e-4)


def test_splash_refuses_lengths_off_its_blocks():
    q = jnp.zeros((1, 100, 2, 16))
    with pytest.raises(ConfigError, match="multiple of 128"):
        A.splash_attention(q, q, q, None, interpret=True)


@pytest.mark.parametrize("impl,platform,dtype,chosen", [
    ("auto", "gpu", jnp.bfloat16, "cudnn"), ("auto", "gpu", jnp.float32, "xla"),
    ("auto", "tpu", jnp.bfloat16, "splash"), ("auto", "cpu", jnp.bfloat16, "chunked"),
    ("auto", "cpu", jnp.float32, "chunked"),
    ("chunked", "gpu", jnp.bfloat16, "chunked"), ("splash", "cpu", jnp.float32, "splash")])
def test_resolve(impl, platform, dtype, chosen):
    assert A.resolve(impl, platform, dtype) == chosen


def test_unknown_kernel_is_refused():
    with pytest.raises(ConfigError, match="attention must be one of"):
        A.resolve("flash", "gpu", jnp.bfloat16)


def test_a_kernel_that_cannot_run_raises_instead_of_falling_back():
    q = jnp.zeros((1, 8, 2, 8), jnp.bfloat16)
    with pytest.raises(Exception) as info:  # no cuDNN on this host
        A.attend(q, q, q, None, "cudnn", max_segments=4)
    assert not isinstance(info.value, AssertionError)


def test_the_choice_is_printed_once(capsys):
    A.announce.cache_clear()
    q = jnp.zeros((1, 4, 1, 4))
    for _ in range(3):
        A.attend(q, q, q, None, "chunked", max_segments=4)
    out = capsys.readouterr().out
    assert out.count("mmlaws attention: chunked (config 'chunked', platform cpu)") == 1
