"""Lower and compile one training step of a preset from abstract inputs, allocating nothing.

The step is value-and-grad of the mean next-token cross-entropy followed by plain SGD — enough
to check that a configuration (and a mesh) compiles and to time compilation. The real optimizer
lives with the training loop.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import optax

from mmlaws.model.config import ModelConfig
from mmlaws.model.decoder import logits
from mmlaws.model.params import abstract_params, param_shardings
from mmlaws.model.sharding import batch_sharding, use_mesh


def mean_cross_entropy(config: ModelConfig, params, inputs, targets, segment_ids=None):
    """Mean over tokens of −log p(target); inputs, targets, segment_ids: [B, T]."""
    out = logits(config, params, inputs, segment_ids=segment_ids)  # [B, T, V] float32
    return optax.softmax_cross_entropy_with_integer_labels(out, targets).mean()


def sgd_step(config: ModelConfig, params, inputs, targets, learning_rate: float = 1e-4):
    """One SGD step → (new params, loss)."""
    loss, grads = jax.value_and_grad(functools.partial(mean_cross_entropy, config))(
        params, inputs, targets)
    new = jax.tree.map(lambda p, g: p - learning_rate * g.astype(p.dtype), params, grads)
    return new, loss


def compile_train_step(config: ModelConfig, batch: int, length: int, mesh=None):
    """Lower + compile :func:`sgd_step` from ShapeDtypeStructs → (compiled, seconds).

    With ``mesh`` the parameters and batch carry their mesh shardings (the mesh's batch
    axes must divide ``batch``).
    """
    tokens = jax.ShapeDtypeStruct((batch, length), jnp.int32)  # [B, T]
    params = abstract_params(config)
    step = functools.partial(sgd_step, config)
    start = time.perf_counter()
    if mesh is None:
        compiled = jax.jit(step, donate_argnums=0).lower(params, tokens, tokens).compile()
    else:
        p_sh, b_sh = param_shardings(config, mesh), batch_sharding(mesh)
        with use_mesh(mesh):
            jitted = jax.jit(step, in_shardings=(p_sh, b_sh, b_sh), out_shardings=(p_sh, None),
                             donate_argnums=0)
            compiled = jitted.lower(params, tokens, tokens).compile()
    return compiled, time.perf_counter() - start
