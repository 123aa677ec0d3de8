"""The train state: parameters (float32 master weights), optimizer state and counters.

Sharded creation follows the model's recipe: shapes from :func:`jax.eval_shape`, shardings
from the logical rules (optimizer moments mirror their parameters, counters are replicated),
then one jitted initialiser whose outputs are born sharded.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from mmlaws.model import Decoder, ModelConfig, param_shardings, use_mesh
from mmlaws.train.optimizer import Recipe, make_optimizer


@flax.struct.dataclass
class TrainState:
    """``step``: batches consumed (int32); ``lr_scale``: the restart policy's LR factor
    (float32, 1 at the start, × 0.8 per restart); ``skipped``: updates skipped for a
    non-finite loss or gradient (int32)."""

    step: jax.Array
    params: dict
    opt_state: optax.OptState
    lr_scale: jax.Array
    skipped: jax.Array


def _new_state(config: ModelConfig, optimizer: optax.GradientTransformation, rng):
    tokens = jnp.zeros((1, 1), jnp.int32)  # [B, T]; parameter shapes do not depend on it
    params = nn.meta.unbox(Decoder(config).init({"params": rng}, tokens)["params"])
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=optimizer.init(params), lr_scale=jnp.ones((), jnp.float32),
                      skipped=jnp.zeros((), jnp.int32))


def state_shardings(config: ModelConfig, recipe: Recipe, mesh):
    """Pytree of :class:`NamedSharding` matching :func:`init_state`'s output."""
    optimizer = make_optimizer(recipe)
    p_sh = param_shardings(config, mesh)
    replicated = NamedSharding(mesh, PartitionSpec())
    abstract = jax.eval_shape(lambda: _new_state(config, optimizer, jax.random.key(0)))
    opt_sh = optax.tree_map_params(optimizer, lambda _, s: s, abstract.opt_state, p_sh,
                                   transform_non_params=lambda _: replicated)
    return TrainState(step=replicated, params=p_sh, opt_state=opt_sh, lr_scale=replicated,
                      skipped=replicated)


def abstract_state(config: ModelConfig, recipe: Recipe, mesh):
    """ShapeDtypeStructs of the state, each carrying its sharding (for restores and planning)."""
    shapes = jax.eval_shape(lambda: _new_state(config, make_optimizer(recipe), jax.random.key(0)))
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, state_shardings(config, recipe, mesh))


@functools.lru_cache(maxsize=8)
def _jitted_init(config: ModelConfig, recipe: Recipe, mesh):
    optimizer = make_optimizer(recipe)
    return jax.jit(lambda r: _new_state(config, optimizer, r),
                   out_shardings=state_shardings(config, recipe, mesh))


def init_state(config: ModelConfig, recipe: Recipe, rng, mesh):
    """A fresh state, every array created directly with its sharding on ``mesh``."""
    with use_mesh(mesh):
        return _jitted_init(config, recipe, mesh)(rng)
