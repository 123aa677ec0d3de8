"""Attention, MLP and LayerNorm of the OPT-style decoder.

Einsum letters, used at every call site:

    B batch · T query length · S key length · D model width · N heads · H head dim
    F feed-forward width · V vocabulary · L layers

Activations that remat policies may keep are named with ``checkpoint_name``
(:mod:`mmlaws.model.remat`): ``query_proj``, ``key_proj``, ``value_proj``, ``attention`` (the
kernel's output), ``out_proj``, ``mlp_hidden`` (after the ReLU) and ``mlp_out``.

Each parameter carries logical axes (see :mod:`mmlaws.model.sharding`) through
``nn.with_logical_partitioning``; each module takes only the fields it uses.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from mmlaws.model.attention import attend, causal_segment_mask  # noqa: F401  (re-exported)
from mmlaws.model.config import MAX_SEGMENTS

Dtype = jnp.dtype


def truncated_normal(std: float):
    """Normal(0, std²) truncated at ±2 std (Appendix A.1: std 0.006, cut at two std)."""

    def init(key, shape, dtype=jnp.float32):
        return (std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)).astype(dtype)

    return init


def _fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


class HashDropout(nn.Module):
    """Dropout whose mask hashes each element's flat index with a per-call seed.

    The seed (two uint32 words) comes from the ``dropout`` RNG stream as for ``nn.Dropout``;
    each element is kept when ``fmix32((index ^ s0) · φ + s1) ≥ rate · 2³²`` (φ = 0x9E3779B9).
    It is a counter-based generator like jax's, but a few integer operations per element: on
    CPU, ``jax.random`` draws cost about 15 ns per number, which made dropout 40% of a tiny
    model's train step. The mask is a pure function of (seed, index), so it is the same however
    the activations are sharded.
    """

    rate: float

    @nn.compact
    def __call__(self, x, deterministic: bool):
        if deterministic or self.rate == 0.0:
            return x
        if x.size >= 2**32:
            raise ValueError(f"HashDropout indexes elements with uint32; got {x.size} elements")
        s0, s1 = jax.random.bits(self.make_rng("dropout"), (2,), jnp.uint32)
        index = jax.lax.iota(jnp.uint32, x.size).reshape(x.shape)
        bits = _fmix32((index ^ s0) * jnp.uint32(0x9E3779B9) + s1)
        keep = bits >= jnp.uint32(min(round(self.rate * 2.0**32), 2**32 - 1))
        return jnp.where(keep, x / (1.0 - self.rate), 0.0).astype(x.dtype)


def dropout_layer(rate: float, impl: str) -> nn.Module:
    """``nn.Dropout`` (``impl="jax"``) or :class:`HashDropout` (``"hash"``)."""
    return HashDropout(rate) if impl == "hash" else nn.Dropout(rate)


def attention(q, k, v, segment_ids: jax.Array | None, implementation: str = "auto",
              max_segments: int = MAX_SEGMENTS):
    """Causal softmax attention that never crosses segment boundaries.

    q, k, v: [B, T, N, H]; segment_ids: [B, T] or None (one document per row). Returns
    [B, T, N, H]. ``implementation``: a kernel of :data:`mmlaws.model.attention.IMPLS`
    (:func:`mmlaws.model.attention.attend`); a kernel that cannot run raises.
    """
    return attend(q, k, v, segment_ids, implementation, max_segments=max_segments)


def _param(module: nn.Module, name: str, init, shape, axes, dtype):
    return module.param(name, nn.with_logical_partitioning(init, axes), shape, dtype)


class LayerNorm(nn.Module):
    """LayerNorm over D with learned scale and bias; statistics in float32."""

    eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):  # [B, T, D] -> [B, T, D]
        d = x.shape[-1]
        scale = _param(self, "scale", nn.initializers.ones, (d,), ("embed",), self.param_dtype)
        bias = _param(self, "bias", nn.initializers.zeros, (d,), ("embed",), self.param_dtype)
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias
        return y.astype(self.dtype)


class SelfAttention(nn.Module):
    """Multi-head causal self-attention with biased q/k/v/out projections (as OPT)."""

    num_heads: int
    d_head: int
    init_std: float
    implementation: str = "auto"
    max_segments: int = MAX_SEGMENTS
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def _proj(self, name, d):
        n, h = self.num_heads, self.d_head
        kernel = _param(self, f"{name}_kernel", truncated_normal(self.init_std), (d, n, h),
                        ("embed", "heads", "kv"), self.param_dtype)
        bias = _param(self, f"{name}_bias", nn.initializers.zeros, (n, h), ("heads", "kv"),
                      self.param_dtype)
        return kernel.astype(self.dtype), bias.astype(self.dtype)

    @nn.compact
    def __call__(self, x, segment_ids):  # x [B, T, D], segment_ids [B, T] | None
        d = x.shape[-1]
        qkv = []
        for name in ("query", "key", "value"):
            w, b = self._proj(name, d)
            y = jnp.einsum("BTD,DNH->BTNH", x, w) + b  # [B, T, N, H]
            y = nn.with_logical_constraint(y, ("batch", "length", "heads", "kv"))
            qkv.append(checkpoint_name(y, f"{name}_proj"))
        out = attention(*qkv, segment_ids, self.implementation, self.max_segments)  # [B,T,N,H]
        out = checkpoint_name(out, "attention")
        w_out = _param(self, "out_kernel", truncated_normal(self.init_std),
                       (self.num_heads, self.d_head, d), ("heads", "kv", "embed"), self.param_dtype)
        b_out = _param(self, "out_bias", nn.initializers.zeros, (d,), ("embed",), self.param_dtype)
        y = jnp.einsum("BTNH,NHD->BTD", out, w_out.astype(self.dtype))  # [B, T, D]
        return checkpoint_name(y + b_out.astype(self.dtype), "out_proj")


class Mlp(nn.Module):
    """Two-layer ReLU MLP D → F → D with biases."""

    d_ff: int
    init_std: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):  # [B, T, D] -> [B, T, D]
        d = x.shape[-1]
        init, zeros = truncated_normal(self.init_std), nn.initializers.zeros
        f, pd = self.d_ff, self.param_dtype
        w_in = _param(self, "wi_kernel", init, (d, f), ("embed", "mlp"), pd)
        b_in = _param(self, "wi_bias", zeros, (f,), ("mlp",), pd)
        w_out = _param(self, "wo_kernel", init, (f, d), ("mlp", "embed"), pd)
        b_out = _param(self, "wo_bias", zeros, (d,), ("embed",), pd)
        h = jnp.einsum("BTD,DF->BTF", x, w_in.astype(self.dtype)) + b_in.astype(self.dtype)
        h = nn.with_logical_constraint(jax.nn.relu(h), ("batch", "length", "mlp"))  # [B, T, F]
        h = checkpoint_name(h, "mlp_hidden")
        y = jnp.einsum("BTF,FD->BTD", h, w_out.astype(self.dtype)) + b_out.astype(self.dtype)
        return checkpoint_name(y, "mlp_out")
