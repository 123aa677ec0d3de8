"""Logical axes → mesh axes, mesh construction and sharded initialisation.

Every parameter and block-boundary activation of the decoder is named with logical axes
(``batch, length, embed, mlp, heads, kv, vocab, layers``). One rules table maps them onto
the mesh axes ``data, fsdp, tensor``; the mesh's shape alone then decides the parallelism:

- ``data``: the batch is split, parameters are replicated (data parallelism);
- ``fsdp``: the batch is split *and* parameters are split along ``embed`` (ZeRO-3 style);
- ``tensor``: heads, MLP width and vocabulary are split (Megatron-style tensor parallelism).

A mesh axis of size 1 does nothing, so every mesh carries all three axes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from mmlaws.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")

# Logical axis → mesh axes. Rules are applied in order, and a mesh axis is used at most once
# per array: an activation [batch, length, embed] takes fsdp for batch, so embed stays whole.
RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("layers", None),
)


def make_mesh(shape: dict[str, int], devices=None) -> Mesh:
    """A mesh over ``devices`` (default: all) with axes ``data, fsdp, tensor``.

    ``shape`` names some of the axes, e.g. ``{"fsdp": 4, "tensor": 2}``; absent axes have
    size 1 and one axis may be ``-1`` to take the remaining devices.
    """
    devices = jax.devices() if devices is None else list(devices)
    unknown = set(shape) - set(MESH_AXES)
    if unknown:
        raise ConfigError(f"mesh axes must be among {MESH_AXES}, got {sorted(unknown)}")
    sizes = [shape.get(axis, 1) for axis in MESH_AXES]
    if sizes.count(-1) > 1:
        raise ConfigError(f"at most one mesh axis may be -1, got {shape}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ConfigError(f"{len(devices)} devices cannot fill mesh {shape}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        named = dict(zip(MESH_AXES, sizes, strict=True))
        raise ConfigError(f"mesh {named} needs {math.prod(sizes)} devices, have {len(devices)}")
    # Auto axes: shardings are propagated by the compiler from the constraints we place.
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                         devices=devices)


def logical_specs(boxed_tree):
    """Pytree of logical PartitionSpecs (``PartitionSpec('embed', 'mlp')``) of boxed params."""
    return nn.get_partition_spec(boxed_tree)


def mesh_shardings(boxed_tree, mesh: Mesh, rules=RULES):
    """Pytree of :class:`NamedSharding` for the (boxed, possibly abstract) parameter tree."""
    return nn.logical_to_mesh_sharding(logical_specs(boxed_tree), mesh, rules)


def batch_sharding(mesh: Mesh, rules=RULES) -> NamedSharding:
    """Sharding of a ``[batch, length]`` input (tokens, segment ids, positions)."""
    spec = nn.logical_to_mesh_axes(("batch", "length"), rules)
    return NamedSharding(mesh, PartitionSpec(*spec))


@dataclasses.dataclass(frozen=True, eq=False)
class ShardedInit:
    """An initialiser whose outputs are born sharded (:func:`sharded_initializer`).

    ``shapes``: the outputs as :class:`jax.ShapeDtypeStruct`s, each carrying its sharding (for
    restores, lowering and planning); ``shardings``: the same tree of :class:`NamedSharding`.
    Calling it with a key runs the jitted initialiser under the mesh and its rules.
    """

    shapes: Any
    shardings: Any
    mesh: Mesh
    rules: tuple
    jitted: Callable

    def __call__(self, rng):
        with use_mesh(self.mesh, self.rules):
            return self.jitted(rng)


def sharded_initializer(init_fn, mesh: Mesh, rules=RULES) -> ShardedInit:
    """Shapes, shardings and a jitted initialiser for ``init_fn(rng) -> boxed tree``.

    The boxed tree's ``nn.Partitioned`` leaves carry logical axes (mapped onto ``mesh`` by
    ``rules``); its other array leaves are replicated. The shapes come from
    :func:`jax.eval_shape`, so no device ever holds the full tree, and the initialiser's
    outputs are plain (unboxed) arrays created directly with their shardings.
    """
    boxed = jax.eval_shape(init_fn, jax.random.key(0))
    shardings = mesh_shardings(boxed, mesh, rules)
    shapes = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          nn.meta.unbox(boxed), shardings)
    jitted = jax.jit(lambda r: nn.meta.unbox(init_fn(r)), out_shardings=shardings)
    return ShardedInit(shapes, shardings, mesh, tuple(rules), jitted)


def sharded_init(init_fn, rng, mesh: Mesh, rules=RULES):
    """Run ``init_fn(rng) -> boxed tree`` with its outputs born sharded on ``mesh``
    (see :func:`sharded_initializer`). Returns plain (unboxed) arrays."""
    return sharded_initializer(init_fn, mesh, rules)(rng)


@contextlib.contextmanager
def use_mesh(mesh: Mesh, rules=RULES):
    """Make ``mesh`` and the logical rules current, so the model's constraints take effect."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield mesh
