"""Sharded logits equal single-device logits; scan == unrolled; remat keeps gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws import model as M
from mmlaws.errors import ConfigError

# Every sharded dim divides 8: batch 8, d_model 64, heads 4, mlp 256, vocab 256.
CONFIG = M.PRESETS["tiny"].replace(dropout=0.0)
MESHES = [{"data": 8}, {"fsdp": 8}, {"fsdp": 4, "tensor": 2}, {"data": 2, "fsdp": 2, "tensor": 2}]


@pytest.fixture(scope="module")
def reference():
    params = M.init_params(CONFIG, jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (8, 12), 0, CONFIG.vocab_size)
    seg = jnp.repeat(jnp.array([[1] * 5 + [2] * 7]), 8, axis=0)  # [8, 12]
    out = jax.jit(functools.partial(M.logits, CONFIG))(params, tokens, segment_ids=seg)
    return params, tokens, seg, out


@pytest.mark.parametrize("shape", MESHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_sharded_logits_equal_single_device(reference, shape):
    params, tokens, seg, expected = reference
    mesh = M.make_mesh(shape)
    sharded = jax.device_put(params, M.param_shardings(CONFIG, mesh))
    batch = M.batch_sharding(mesh)
    tokens, seg = jax.device_put(tokens, batch), jax.device_put(seg, batch)
    with M.use_mesh(mesh):
        got = jax.jit(functools.partial(M.logits, CONFIG))(sharded, tokens, segment_ids=seg)
    diff = float(np.abs(np.asarray(got) - np.asarray(expected)).max())
    assert diff <= 1e-5, diff


def test_rules_give_dp_fsdp_and_tensor_parallel_layouts():
    axes = M.param_logical_axes(CONFIG)
    assert tuple(axes["layers"]["mlp"]["wi_kernel"]) == ("layers", "embed", "mlp")
    mesh = M.make_mesh({"fsdp": 4, "tensor": 2})
    shardings = M.param_shardings(CONFIG, mesh)
    assert tuple(shardings["layers"]["mlp"]["wi_kernel"].spec) == (None, "fsdp", "tensor")
    assert tuple(shardings["token_embed"].spec) == ("tensor", "fsdp")
    data_only = M.param_shardings(CONFIG, M.make_mesh({"data": 8}))
    assert data_only["layers"]["mlp"]["wi_kernel"].is_fully_replicated


def test_sharded_init_is_born_sharded_and_equals_plain_init(reference):
    mesh = M.make_mesh({"fsdp": 4, "tensor": 2})
    params = M.init_params(CONFIG, jax.random.key(0), mesh=mesh)
    kernel = params["layers"]["mlp"]["wi_kernel"]  # [L, D, F] = [2, 64, 256]
    assert {s.data.shape for s in kernel.addressable_shards} == {(2, 16, 128)}
    plain = reference[0]  # init_params(CONFIG, key(0)) on one device
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-7)


def test_make_mesh_fills_minus_one_and_rejects_bad_shapes():
    mesh = M.make_mesh({"data": 2, "fsdp": -1})
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
    with pytest.raises(ConfigError):
        M.make_mesh({"data": 3})
    with pytest.raises(ConfigError):
        M.make_mesh({"pipeline": 8})


def _unstack(params, num_layers):
    layers = params.pop("layers")
    return {**params, **{f"layers_{i}": jax.tree.map(lambda x, i=i: x[i], layers)
                         for i in range(num_layers)}}


def test_scan_equals_unrolled(reference):
    params, tokens, seg, expected = reference
    unrolled = CONFIG.replace(scan_layers=False)
    got = M.logits(unrolled, _unstack(dict(params), CONFIG.num_layers), tokens, segment_ids=seg)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _loss(config, params, tokens):
    out = M.logits(config, params, tokens[:, :-1])  # [B, T-1, V]
    logp = jax.nn.log_softmax(out)
    return -jnp.take_along_axis(logp, tokens[:, 1:, None], -1).mean()


def test_remat_gives_the_same_gradients(reference):
    params, tokens, _, _ = reference
    configs = [CONFIG.replace(remat=policy) for policy in ("none", "full", "dots_saveable")]

    @jax.jit
    def grads(params, tokens):
        return [jax.grad(functools.partial(_loss, c))(params, tokens) for c in configs]

    base, *others = grads(params, tokens)
    for other in others:
        for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(other), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
