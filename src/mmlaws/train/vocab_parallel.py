"""Vocabulary-parallel cross-entropy with ``shard_map`` (Megatron-LM style).

When the vocabulary is split over the ``tensor`` mesh axis, each device holds logits
``[b, T, V/tp]`` for its rows of the batch and its slice of the vocabulary. The loss needs only
three numbers per token, each a reduction over the vocabulary, so the devices exchange those
(``[b, T]`` arrays) and never the logits:

1. ``m = max_v logits`` — local max, then ``pmax`` over ``tensor`` (a constant for the
   gradient: the result does not depend on it);
2. ``z = Σ_v exp(logits − m)`` — local sum, then ``psum``;
3. ``logits[target]`` — the one device whose slice holds the target contributes it (the others
   contribute 0), then ``psum``.

``xent = m + log z − logits[target]``. Gradients flow through ``psum`` (its transpose is a
broadcast), so the backward pass also stays sharded.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from mmlaws.model import batch_sharding

TENSOR = "tensor"


def _local_xent(logits, targets):
    """Per-device body: logits [b, T, V/tp] float32, targets [b, T] int → xent [b, T]."""
    local_vocab = logits.shape[-1]
    offset = jax.lax.axis_index(TENSOR) * local_vocab
    m = jax.lax.pmax(jax.lax.stop_gradient(logits.max(-1)), TENSOR)  # [b, T]
    z = jax.lax.psum(jnp.exp(logits - m[..., None]).sum(-1), TENSOR)  # [b, T]
    local = targets - offset
    mine = (local >= 0) & (local < local_vocab)
    picked = jnp.take_along_axis(logits, jnp.clip(local, 0, local_vocab - 1)[..., None],
                                 axis=-1)[..., 0]
    target_logit = jax.lax.psum(jnp.where(mine, picked, 0.0), TENSOR)  # [b, T]
    return m + jnp.log(z) - target_logit


def vocab_parallel_xent(logits: jax.Array, targets: jax.Array, mesh: Mesh) -> jax.Array:
    """Cross-entropy ``[B, T]`` of ``logits [B, T, V]`` (vocab sharded over ``tensor``) at
    ``targets [B, T]``; equal to ``optax.softmax_cross_entropy_with_integer_labels``."""
    batch_axes = batch_sharding(mesh).spec[0]
    run = jax.shard_map(
        _local_xent, mesh=mesh,
        in_specs=(PartitionSpec(batch_axes, None, TENSOR), PartitionSpec(batch_axes, None)),
        out_specs=PartitionSpec(batch_axes, None))
    return run(logits.astype(jnp.float32), targets)


@functools.cache
def uses_tensor_axis(mesh: Mesh) -> bool:
    """True when ``mesh`` splits the vocabulary (its ``tensor`` axis is larger than 1)."""
    return dict(mesh.shape).get(TENSOR, 1) > 1
