"""Each remat policy compiles and gives the loss and gradients of no remat, and keeps less."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.ad_checkpoint import saved_residuals

from mmlaws import model as M
from mmlaws.errors import ConfigError
from mmlaws.model import remat
from mmlaws.model.config import REMAT_POLICIES

CONFIG = M.PRESETS["tiny"].replace(dropout=0.1, dropout_impl="hash")


def _loss(config, params, tokens, seg, rng):
    out = M.logits(config, params, tokens[:, :-1], segment_ids=seg, dropout_rng=rng)
    logp = jax.nn.log_softmax(out)
    return -jnp.take_along_axis(logp, tokens[:, 1:, None], -1).mean()


@pytest.fixture(scope="module")
def reference():
    params = M.init_params(CONFIG, jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (3, 14), 0, CONFIG.vocab_size)
    seg = jnp.array([[1] * 5 + [2] * 8, [1] * 13, [1] * 9 + [0] * 4])
    run = jax.jit(jax.value_and_grad(functools.partial(_loss, CONFIG)))
    return params, tokens, seg, run(params, tokens, seg, jax.random.key(2))


@pytest.mark.parametrize("policy", [p for p in remat.POLICIES if p != "none"])
def test_policy_gives_the_loss_and_gradients_of_no_remat(reference, policy):
    params, tokens, seg, (loss, grads) = reference
    config = CONFIG.replace(remat=policy)
    run = jax.jit(jax.value_and_grad(functools.partial(_loss, config)))
    got_loss, got_grads = run(params, tokens, seg, jax.random.key(2))
    np.testing.assert_allclose(got_loss, loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_policies_keep_less_in_their_order():
    config = CONFIG.replace(dropout=0.0, num_layers=1, scan_unroll=1)
    params = M.abstract_params(config)
    tokens = jnp.zeros((2, 16), jnp.int32)

    def kept(policy):
        c = config.replace(remat=policy)
        return sum(a.size * a.dtype.itemsize
                   for a, _ in saved_residuals(lambda p: M.logits(c, p, tokens).sum(), params))

    sizes = [kept(p) for p in remat.ORDER]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes


def test_policy_names_are_checked():
    with pytest.raises(ConfigError):
        remat.checkpoint_policy("offload")
    assert remat.checkpoint_policy("full") is None
    assert set(remat.POLICIES) == set(REMAT_POLICIES)  # the config checks the same names
