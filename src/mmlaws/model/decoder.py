"""The OPT-style decoder as the paper trains it (§4.3, Appendix A.1).

Pre-norm blocks, ReLU MLP of width ``d_ff``, learned position embeddings (restarting per
packed document), dropout on each residual branch but not on embeddings, truncated-normal
initialisation (std 0.006, cut at ±2 std), a final LayerNorm, and input/output embeddings
tied by default. Layers are stacked with ``nn.scan`` so compile time does not grow with depth.

Parameter tree (scanned layers carry a leading ``[L]`` axis named ``layers``)::

    token_embed [V, D]   pos_embed [max_len, D]   ln_final/{scale,bias} [D]
    layers/ln_attn, layers/attn/{query,key,value}_{kernel [D,N,H], bias [N,H]},
    layers/attn/out_{kernel [N,H,D], bias [D]}, layers/ln_mlp,
    layers/mlp/wi_{kernel [D,F], bias [F]}, layers/mlp/wo_{kernel [F,D], bias [D]}
    unembed [D, V]       (only when tie_embeddings is False)

With ``scan_layers=False`` the blocks are ``layers_0 … layers_{L-1}`` without the leading axis.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmlaws.errors import ConfigError
from mmlaws.model.config import ModelConfig
from mmlaws.model.layers import LayerNorm, Mlp, SelfAttention, dropout_layer, truncated_normal
from mmlaws.model.remat import checkpoint_policy

ACTIVATION_AXES = ("batch", "length", "embed")


class Block(nn.Module):
    """One pre-norm block: x + Drop(Attn(LN(x))), then x + Drop(MLP(LN(x)))."""

    num_heads: int
    d_head: int
    d_ff: int
    init_std: float
    dropout: float
    dropout_impl: str
    eps: float
    attention: str
    max_segments: int
    deterministic: bool
    dtype: jnp.dtype
    param_dtype: jnp.dtype

    @nn.compact
    def __call__(self, x, segment_ids):  # x [B, T, D], segment_ids [B, T] | None
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = LayerNorm(self.eps, name="ln_attn", **kw)(x)
        attn = SelfAttention(self.num_heads, self.d_head, self.init_std, self.attention,
                             self.max_segments, name="attn", **kw)
        h = attn(h, segment_ids)
        x = x + dropout_layer(self.dropout, self.dropout_impl)(h, deterministic=self.deterministic)
        x = nn.with_logical_constraint(x, ACTIVATION_AXES)
        h = LayerNorm(self.eps, name="ln_mlp", **kw)(x)
        h = Mlp(self.d_ff, self.init_std, name="mlp", **kw)(h)
        x = x + dropout_layer(self.dropout, self.dropout_impl)(h, deterministic=self.deterministic)
        return nn.with_logical_constraint(x, ACTIVATION_AXES), None


def _block_class(remat: str, scanned: bool):
    """The block, rematerialised by the policy ``remat`` (:mod:`mmlaws.model.remat`)."""
    if remat == "none":
        return Block
    return nn.remat(Block, policy=checkpoint_policy(remat), prevent_cse=not scanned)


def positions_from_segments(segment_ids: jax.Array) -> jax.Array:
    """[B, T] segment ids → [B, T] positions that restart at 0 where the segment id changes."""
    idx = jnp.arange(segment_ids.shape[-1])[None]  # [1, T]
    changes = segment_ids[:, 1:] != segment_ids[:, :-1]  # [B, T-1]
    starts = jnp.pad(changes, ((0, 0), (1, 0)), constant_values=True)  # [B, T]
    return idx - jax.lax.cummax(jnp.where(starts, idx, 0), axis=1)


class Decoder(nn.Module):
    """tokens [B, T] → logits [B, T, V] (float32)."""

    config: ModelConfig

    def _blocks(self, x, segment_ids, deterministic):
        c = self.config
        kw = dict(num_heads=c.num_heads, d_head=c.d_head, d_ff=c.d_ff, init_std=c.init_std,
                  dropout=c.dropout, dropout_impl=c.dropout_impl, eps=c.layer_norm_eps,
                  attention=c.attention, max_segments=c.max_segments,
                  deterministic=deterministic,
                  dtype=c.compute_dtype, param_dtype=c.weight_dtype)
        block = _block_class(c.remat, c.scan_layers)
        if not c.scan_layers:
            for i in range(c.num_layers):
                x, _ = block(name=f"layers_{i}", **kw)(x, segment_ids)
            return x
        stack = nn.scan(
            block,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(nn.broadcast,),
            length=c.num_layers,
            unroll=c.scan_unroll,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        x, _ = stack(name="layers", **kw)(x, segment_ids)
        return x

    @nn.compact
    def __call__(self, tokens, segment_ids=None, positions=None, deterministic=True):
        c = self.config
        if positions is None and tokens.shape[-1] > c.max_len:
            raise ConfigError(f"sequence length {tokens.shape[-1]} exceeds max_len {c.max_len}")
        if positions is None:
            positions = (jnp.broadcast_to(jnp.arange(tokens.shape[-1]), tokens.shape)
                         if segment_ids is None else positions_from_segments(segment_ids))
        init = truncated_normal(c.init_std)
        table = self.param("token_embed", nn.with_logical_partitioning(init, ("vocab", "embed")),
                           (c.vocab_size, c.d_model), c.weight_dtype)
        pos_table = self.param("pos_embed", nn.with_logical_partitioning(init, (None, "embed")),
                               (c.max_len, c.d_model), c.weight_dtype)
        # Gather rows from whole (all-gathered, as FSDP does for every weight) tables: a gather
        # from a vocab-sharded table into batch-sharded activations has no efficient partition.
        whole = lambda t: nn.with_logical_constraint(t.astype(c.compute_dtype), (None, None))  # noqa: E731
        x = jnp.take(whole(table), tokens, axis=0) + jnp.take(whole(pos_table), positions, axis=0)
        x = nn.with_logical_constraint(x, ACTIVATION_AXES)  # [B, T, D]
        x = self._blocks(x, segment_ids, deterministic)
        x = LayerNorm(c.layer_norm_eps, c.compute_dtype, c.weight_dtype, name="ln_final")(x)
        if c.tie_embeddings:
            out = jnp.einsum("BTD,VD->BTV", x, table.astype(c.compute_dtype),
                             preferred_element_type=jnp.float32)
        else:
            unembed = self.param("unembed", nn.with_logical_partitioning(init, ("embed", "vocab")),
                                 (c.d_model, c.vocab_size), c.weight_dtype)
            out = jnp.einsum("BTD,DV->BTV", x, unembed.astype(c.compute_dtype),
                             preferred_element_type=jnp.float32)
        return nn.with_logical_constraint(out.astype(jnp.float32), ("batch", "length", "vocab"))


def logits(config: ModelConfig, params, tokens, *, segment_ids=None, positions=None,
           dropout_rng=None):
    """Next-token logits ``[B, T, V]`` in float32 for ``tokens [B, T]``.

    ``segment_ids [B, T]`` keep packed documents from attending to each other; ``positions
    [B, T]`` default to restarting at every segment boundary (or 0…T-1 without segments).
    Dropout is applied only when ``dropout_rng`` is given.
    """
    rngs = None if dropout_rng is None else {"dropout": dropout_rng}
    return Decoder(config).apply({"params": params}, tokens, segment_ids, positions,
                                 deterministic=dropout_rng is None, rngs=rngs)
