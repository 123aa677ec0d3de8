"""The train step: micro-batch accumulation, metric sums vs numpy, non-finite skips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.data.batch import MODALITIES
from mmlaws.data.synthetic import SyntheticBatches
from mmlaws.data.vocab import TINY
from mmlaws.laws.spikes import SpikeDetector
from mmlaws.model import PRESETS, init_params, make_mesh, use_mesh
from mmlaws.train import metrics
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import accumulate_gradients, jit_steps, loss_sums, token_xent

CONFIG = PRESETS["tiny"].replace(vocab_size=TINY.size, num_layers=1, d_model=32, num_heads=2,
                                 d_head=16, dropout=0.0)
DATASETS = {"prose": ("text", 0.5), "photos": ("image", 0.25), "voice": ("speech", 0.25)}


@pytest.fixture(scope="module")
def batch():
    b = next(SyntheticBatches(DATASETS, TINY, batch_size=8, sequence_length=24, seed=3))
    b["weights"][1, -5:] = 0.0  # a padded tail: no weight, no segment, no dataset
    b["segment_ids"][1, -5:] = 0
    b["dataset_ids"][1, -5:] = -1
    return b


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.key(0))


def test_accumulated_gradients_equal_the_full_batch(params, batch):
    kw = dict(vocab=TINY, num_datasets=3)
    jb = jax.tree.map(jnp.asarray, batch)
    full, full_sums = jax.jit(lambda p, b: accumulate_gradients(
        CONFIG, p, b, jax.random.key(0), micro_batches=1, **kw))(params, jb)
    micro, micro_sums = jax.jit(lambda p, b: accumulate_gradients(
        CONFIG, p, b, jax.random.key(0), micro_batches=4, **kw))(params, jb)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(micro), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(full_sums["dataset_loss_sum"], micro_sums["dataset_loss_sum"],
                               rtol=1e-5)


def test_loss_sums_per_modality_and_dataset_match_numpy(params, batch):
    xent = np.asarray(token_xent(CONFIG, params, jax.tree.map(jnp.asarray, batch)))
    got = metrics.summarize(jax.device_get(loss_sums(jnp.asarray(xent), batch, TINY, 3)),
                            list(DATASETS))
    w, mod, ds = batch["weights"], TINY.modality_of(batch["targets"]), batch["dataset_ids"]
    want_total = (w * xent).sum() / w.sum()
    assert got["loss"] == pytest.approx(want_total, rel=1e-5)
    assert got["ppl"] == pytest.approx(np.exp(want_total), rel=1e-5)
    for code, name in enumerate(MODALITIES):
        sel = w * (mod == code)
        assert got["loss_per_modality"][name] == pytest.approx(
            (sel * xent).sum() / sel.sum(), rel=1e-5)
    for k, name in enumerate(DATASETS):
        sel = w * (ds == k)
        assert got["loss_per_dataset"][name] == pytest.approx(
            (sel * xent).sum() / sel.sum(), rel=1e-5)
    # images are drawn from the image range only: no text targets in the photos rows
    assert set(got["loss_per_modality"]) == set(MODALITIES)


def test_sharded_step_trains_and_skips_non_finite_updates(params, batch):
    xent = np.asarray(token_xent(CONFIG, params, jax.tree.map(jnp.asarray, batch)))
    unsharded_loss = (batch["weights"] * xent).sum() / batch["weights"].sum()
    mesh = make_mesh({"fsdp": 2, "tensor": 2, "data": -1})
    recipe = Recipe(1e-2, 50, warmup_steps=2)
    setup = state_setup(CONFIG, recipe, mesh)
    state = setup.init(jax.random.key(0))
    train, _ = jit_steps(setup, vocab=TINY, num_datasets=3, micro_batches=2)
    with use_mesh(mesh):
        state, m = train(state, batch, jax.random.key(1), recipe.schedule_values())
        assert bool(m["finite"]) and int(state.step) == 1
        assert float(m["loss"]) == pytest.approx(unsharded_loss, rel=1e-5)  # same init, same loss
        assert m["dataset_tokens"].tolist() == [(batch["dataset_ids"] == k).sum()
                                                for k in range(3)]
        assert float(m["lr"]) == pytest.approx(1e-2 / 2)
        before = jax.device_get(state)
        bad = dict(batch, weights=np.where(batch["weights"] > 0, np.nan, 0).astype(np.float32))
        state, m = train(state, bad, jax.random.key(1), recipe.schedule_values())
        after = jax.device_get(state)
    assert not bool(m["finite"])
    assert int(after.step) == 2 and int(after.skipped) == 1
    for a, b in zip(jax.tree.leaves((before.params, before.opt_state)),
                    jax.tree.leaves((after.params, after.opt_state)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_spike_detector_flags_norms_above_k_times_the_median():
    spikes = SpikeDetector(factor=3.0, window=50, min_history=5)
    norms = [1.0, 1.1, 0.9, 1.0, 1.2, 5.0, 1.0, 2.9, 3.5]
    flagged = [spikes.update(n) is not None for n in norms]
    assert flagged == [False] * 5 + [True, False, False, True]
    assert spikes.count == 2
