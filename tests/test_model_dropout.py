"""HashDropout: rate, scaling, determinism and independence of its mask."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.errors import ConfigError
from mmlaws.model import ModelConfig
from mmlaws.model.layers import HashDropout


def _apply(rate, key, shape=(64, 128, 32)):
    x = jnp.ones(shape, jnp.float32)
    return np.asarray(HashDropout(rate).apply({}, x, deterministic=False, rngs={"dropout": key}))


def test_keeps_the_right_fraction_and_rescales():
    y = _apply(0.1, jax.random.key(0))
    kept = y != 0
    n = kept.size
    # binomial standard error of the kept fraction: sqrt(0.09 / n) ≈ 0.0005 for n = 262,144
    assert abs(kept.mean() - 0.9) < 5 * np.sqrt(0.09 / n)
    np.testing.assert_allclose(y[kept], 1 / 0.9, rtol=1e-6)


def test_mask_is_a_function_of_the_key_and_looks_independent():
    a, b = _apply(0.5, jax.random.key(1)), _apply(0.5, jax.random.key(1))
    c = _apply(0.5, jax.random.key(2))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() == pytest.approx(0.5, abs=0.01)
    m = (a != 0).astype(np.float64).ravel()
    for lag in (1, 32, 128 * 32):  # neighbours along each axis of the flat index
        r = np.corrcoef(m[:-lag], m[lag:])[0, 1]
        assert abs(r) < 0.01, (lag, r)


def test_deterministic_and_zero_rate_are_identity():
    x = jnp.arange(12.0).reshape(3, 4)
    assert HashDropout(0.3).apply({}, x, deterministic=True) is x
    assert HashDropout(0.0).apply({}, x, deterministic=False) is x


def test_config_names_the_choice():
    with pytest.raises(ConfigError, match="dropout_impl"):
        ModelConfig(vocab_size=8, num_layers=1, d_model=8, num_heads=1, d_head=8,
                    dropout_impl="philox")
