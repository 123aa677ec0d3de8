"""The train state (float32 master weights, optimizer state, counters) and its layout on a mesh.

:func:`state_setup` is the one place a run builds its optimizer and the state's shapes and
shardings: the state is initialised with its parameters and their optimizer moments boxed with
the parameters' logical axes, so the model's sharded initialiser
(:func:`mmlaws.model.sharded_initializer`: :func:`jax.eval_shape` → shardings → one jitted
initialiser whose outputs are born sharded) lays out all of it — moments mirror their
parameters, counters are replicated.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from mmlaws.model import ModelConfig, ShardedInit, init_boxed, sharded_initializer
from mmlaws.train.optimizer import Recipe, update_direction


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


def _boxed_state(config: ModelConfig, optimizer: optax.GradientTransformation, rng) -> TrainState:
    """A fresh state whose parameters and parameter-shaped optimizer leaves keep their logical
    axes (``nn.Partitioned``)."""
    boxed = init_boxed(config, rng)
    opt_state = optax.tree_map_params(optimizer, lambda value, box: box.replace_boxed(value),
                                      optimizer.init(nn.meta.unbox(boxed)), boxed)
    return TrainState(step=jnp.zeros((), jnp.int32), params=boxed, opt_state=opt_state,
                      lr_scale=jnp.ones((), jnp.float32), skipped=jnp.zeros((), jnp.int32))


@dataclasses.dataclass(frozen=True, eq=False)
class StateSetup:
    """One run's model config, recipe, mesh, optimizer and state layout (:func:`state_setup`).

    ``shapes``: the state as ShapeDtypeStructs carrying their shardings (for restores,
    lowering and memory plans); ``shardings``: the state's tree of ``NamedSharding``.
    """

    config: ModelConfig
    recipe: Recipe
    mesh: Mesh
    optimizer: optax.GradientTransformation
    initializer: ShardedInit

    @property
    def shapes(self) -> TrainState:
        return self.initializer.shapes

    @property
    def shardings(self) -> TrainState:
        return self.initializer.shardings

    def init(self, rng) -> TrainState:
        """A fresh state, every array created directly with its sharding on the mesh."""
        return self.initializer(rng)


@functools.lru_cache(maxsize=8)
def state_setup(config: ModelConfig, recipe: Recipe, mesh: Mesh) -> StateSetup:
    """The update direction of ``recipe`` (:func:`~mmlaws.train.optimizer.update_direction`;
    the step applies the learning rate from the recipe's schedule) and the state's layout on
    ``mesh`` (cached: the same arguments give the same setup, and the steps compiled for it are
    reused)."""
    optimizer = update_direction(recipe)
    init = sharded_initializer(functools.partial(_boxed_state, config, optimizer), mesh)
    return StateSetup(config, recipe, mesh, optimizer, init)
