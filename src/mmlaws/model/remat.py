"""Rematerialisation policies of the decoder block, chosen per model size by name.

The block names the activations a policy may keep (:mod:`mmlaws.model.layers`, with
``jax.ad_checkpoint.checkpoint_name``); a policy keeps some of them for the backward pass and
recomputes the rest from the block's input. In MaxText's vocabulary, from most memory and least
recomputation to least memory and most recomputation (:data:`ORDER`):

=======================  ============================================================  ========
policy                   keeps (per layer; ``BTD`` = one ``[B, T, D]`` activation)      ≈ BTD
=======================  ============================================================  ========
``none``                 everything (no remat)                                           —
``minimal``              q/k/v projections, attention output, out projection, MLP        10
                         hidden (after ReLU) and MLP output: every matmul output
``save_dot_except_mlp``  q/k/v projections, attention output, out projection             5
``save_qkv_proj``        q/k/v projections                                               3
``save_out_proj``        the out projection                                              1
``full``                 nothing but the block's input                                   0
=======================  ============================================================  ========

``dots_saveable`` (jax's policy: keep every matmul output, attention scores included when the
``xla`` kernel builds them) is kept for older configs. The paper configs take the first policy of
:data:`ORDER` whose train step fits in the device's memory
(:func:`mmlaws.train.memory.cheapest_remat`).
"""

from __future__ import annotations

import jax

from mmlaws.errors import ConfigError

PROJECTIONS = ("query_proj", "key_proj", "value_proj")
ATTENTION = ("attention", "attention_lse")  # the kernel's output and (splash) its log-sum-exp
SAVED_NAMES = {
    "minimal": (*PROJECTIONS, *ATTENTION, "out_proj", "mlp_hidden", "mlp_out"),
    "save_dot_except_mlp": (*PROJECTIONS, *ATTENTION, "out_proj"),
    "save_qkv_proj": PROJECTIONS,
    "save_out_proj": ("out_proj",),
}
ORDER = ("none", "minimal", "save_dot_except_mlp", "save_qkv_proj", "save_out_proj", "full")
POLICIES = (*ORDER, "dots_saveable")


def checkpoint_policy(name: str):
    """The ``jax.checkpoint`` policy of ``name`` (None for ``full``: save nothing); ``none``
    has no policy because it does not remat at all."""
    if name not in POLICIES or name == "none":
        raise ConfigError(f"remat policy must be one of {POLICIES[1:]}, got {name!r}")
    if name == "full":
        return None
    if name == "dots_saveable":
        return jax.checkpoint_policies.dots_saveable
    return jax.checkpoint_policies.save_only_these_names(*SAVED_NAMES[name])
