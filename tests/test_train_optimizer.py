"""The optimizer recipe of §4.5 against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.errors import ConfigError
from mmlaws.train.optimizer import (
    Recipe,
    decay_mask,
    learning_rate_schedule,
    make_optimizer,
    peak_learning_rate,
)


def test_schedule_values_at_known_steps():
    # peak 6e-4 (125M), warm-up 500, 2500 updates, end 6e-5, linear decay over 2000 updates.
    lr = learning_rate_schedule(6e-4, 2500)
    expected = {0: 6e-4 / 500, 99: 6e-4 * 100 / 500, 499: 6e-4, 500: 6e-4,
                1500: 6e-5 + (6e-4 - 6e-5) * 0.5, 2000: 6e-5 + (6e-4 - 6e-5) * 0.25,
                2500: 6e-5, 9999: 6e-5}
    for step, value in expected.items():
        assert float(lr(step)) == pytest.approx(value, rel=1e-6), step


def test_peak_learning_rate_comes_from_table_2():
    assert peak_learning_rate("125M") == 6e-4
    assert peak_learning_rate("30B") == 1e-4
    assert peak_learning_rate("tiny", 3e-3) == 3e-3
    with pytest.raises(ConfigError, match="Table 2"):
        peak_learning_rate("tiny")


def test_decay_exempts_biases_layer_norms_and_embeddings():
    params = {"token_embed": 0, "pos_embed": 0, "unembed": 0, "ln_final": {"scale": 0, "bias": 0},
              "layers": {"attn": {"query_kernel": 0, "query_bias": 0},
                         "mlp": {"wi_kernel": 0, "wi_bias": 0}}}
    mask = decay_mask(params)
    decayed = sorted(jax.tree_util.keystr(p) for p, m in
                     jax.tree_util.tree_leaves_with_path(mask) if m)
    assert decayed == ["['layers']['attn']['query_kernel']", "['layers']['mlp']['wi_kernel']",
                       "['unembed']"]


def _reference_first_update(params, grads, lr, wd=0.1, clip=1.0, b1=0.9, b2=0.98, eps=1e-8):
    """One AdamW step by hand (numpy): clip, bias-corrected moments, decoupled decay."""
    norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    scale = min(1.0, clip / norm)
    out = {}
    for k, p in params.items():
        g = grads[k] * scale
        m, v = (1 - b1) * g / (1 - b1), (1 - b2) * g ** 2 / (1 - b2)
        u = m / (np.sqrt(v) + eps) + (wd * p if k.endswith("kernel") else 0.0)
        out[k] = p - lr * u
    return out


@pytest.mark.parametrize("grad_scale", [0.01, 10.0])  # clipping inactive / active
def test_first_update_matches_hand_computed_adamw(grad_scale):
    rng = np.random.default_rng(0)
    params = {"wi_kernel": rng.normal(size=(2, 3)), "wi_bias": rng.normal(size=3),
              "token_embed": rng.normal(size=(5, 2))}
    grads = {k: grad_scale * rng.normal(size=v.shape) for k, v in params.items()}
    recipe = Recipe(peak_lr=1e-2, total_steps=100, warmup_steps=4)
    opt = make_optimizer(recipe)
    as32 = lambda t: {k: jnp.asarray(v, jnp.float32) for k, v in t.items()}
    p32, g32 = as32(params), as32(grads)
    updates, _ = opt.update(g32, opt.init(p32), p32)
    got = {k: p32[k] + updates[k] for k in p32}
    want = _reference_first_update(params, grads, lr=1e-2 / 4)
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7)
