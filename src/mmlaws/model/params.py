"""Parameter creation: plain, abstract (no allocation) and sharded over a mesh."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmlaws.model.config import ModelConfig
from mmlaws.model.decoder import Decoder
from mmlaws.model.sharding import RULES, mesh_shardings, sharded_init


def init_boxed(config: ModelConfig, rng: jax.Array):
    """Fresh parameters whose leaves keep their logical axes (``nn.Partitioned``)."""
    tokens = jnp.zeros((1, 1), jnp.int32)  # [B, T]; parameter shapes do not depend on it
    return Decoder(config).init({"params": rng}, tokens)["params"]


@functools.lru_cache(maxsize=8)
def _jitted_init(config: ModelConfig):
    """One compiled initialiser per config (compiling it costs seconds even for tiny models)."""
    return jax.jit(lambda rng: nn.meta.unbox(init_boxed(config, rng)))


def init_params(config: ModelConfig, rng: jax.Array, *, mesh=None, rules=RULES):
    """Fresh parameters (plain arrays). With ``mesh``, each array is born sharded on it."""
    if mesh is None:
        return _jitted_init(config)(rng)
    return sharded_init(functools.partial(init_boxed, config), rng, mesh, rules)


def abstract_params(config: ModelConfig, *, boxed: bool = False):
    """Shapes and dtypes of the parameters as :class:`jax.ShapeDtypeStruct`s; nothing is allocated.

    With ``boxed=True`` the leaves keep their logical axes (``nn.Partitioned``).
    """
    tree = jax.eval_shape(functools.partial(init_boxed, config), jax.random.key(0))
    return tree if boxed else nn.meta.unbox(tree)


def param_shardings(config: ModelConfig, mesh, rules=RULES):
    """Pytree of :class:`jax.sharding.NamedSharding` matching :func:`init_params`'s output."""
    return mesh_shardings(abstract_params(config, boxed=True), mesh, rules)


def param_logical_axes(config: ModelConfig):
    """Pytree of logical PartitionSpecs, e.g. ``PartitionSpec('layers', 'embed', 'mlp')``."""
    return nn.get_partition_spec(abstract_params(config, boxed=True))
