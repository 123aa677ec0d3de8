"""Vocabulary-parallel cross-entropy (shard_map) equals the unsharded loss and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from mmlaws.model import make_mesh, use_mesh
from mmlaws.train.vocab_parallel import vocab_parallel_xent


@pytest.mark.parametrize("shape", [{"tensor": 4, "fsdp": 2}, {"tensor": 8}])
def test_loss_and_gradients_equal_the_unsharded_computation(shape):
    mesh = make_mesh(shape)
    rng = np.random.default_rng(0)
    b, t, v = 4, 3, 40  # 40 = 8 × 5 or 4 × 10 vocabulary entries per device
    logits = jnp.asarray(rng.normal(size=(b, t, v)) * 3, jnp.float32)
    targets = jnp.asarray(rng.integers(0, v, size=(b, t)), jnp.int32)
    weights = jnp.asarray(rng.uniform(size=(b, t)), jnp.float32)

    def reference(x):
        return (weights * optax.softmax_cross_entropy_with_integer_labels(x, targets)).sum()

    def parallel(x):
        return (weights * vocab_parallel_xent(x, targets, mesh)).sum()

    batch_axes = ("data", "fsdp")
    with use_mesh(mesh):
        x = jax.device_put(logits, NamedSharding(mesh, PartitionSpec(batch_axes, None, "tensor")))
        fn = jax.jit(jax.value_and_grad(parallel))
        loss, grad = fn(x)
        hlo = fn.lower(x).compile().as_text()
    want_loss, want_grad = jax.value_and_grad(reference)(logits)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)
    assert grad.sharding.spec == PartitionSpec(batch_axes, None, "tensor")
    assert "all-gather" not in hlo  # only [b, T] reductions cross devices, never the logits
    assert "all-reduce" in hlo


def test_per_token_losses_match():
    mesh = make_mesh({"tensor": 2, "data": -1})
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(8, 5, 6)), jnp.float32)
    targets = jnp.asarray(rng.integers(0, 6, size=(8, 5)), jnp.int32)
    with use_mesh(mesh):
        got = jax.jit(lambda x, y: vocab_parallel_xent(x, y, mesh))(logits, targets)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    np.testing.assert_allclose(got, want, rtol=1e-6)
