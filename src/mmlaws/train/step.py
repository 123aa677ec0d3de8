"""The pure train step ``(state, batch, rng, schedule) -> (state, sums)`` and the eval step.

The loss is the weighted mean next-token cross-entropy over the whole batch,
``Σ w·xent / Σ w``. A batch of ``B`` rows is split into ``micro_batches`` micro-batches that a
``lax.scan`` visits one at a time, summing the gradients of ``Σ w·xent``; dividing by the
batch's ``Σ w`` at the end gives exactly the full batch's gradient. Micro-batch ``i`` takes
rows ``i, i+M, i+2M, …`` so that no row leaves its device.

Besides the loss the step returns *sums* (``Σ w·xent`` and ``Σ w``) per source modality —
by the target token's vocabulary range — and per dataset — by ``dataset_ids`` — from which
:mod:`mmlaws.train.metrics` forms losses and perplexities, plus tokens per dataset, the
pre-clipping gradient norm and the learning rate.

A non-finite loss or gradient norm skips the update: parameters and optimizer state stay as
they were, ``step`` advances and ``skipped`` counts it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from mmlaws.data.batch import FIELDS, MODALITIES
from mmlaws.data.vocab import VocabLayout
from mmlaws.model import ModelConfig, batch_sharding, logits, use_mesh
from mmlaws.train.optimizer import Schedule, applied_updates, learning_rate
from mmlaws.train.state import StateSetup, TrainState
from mmlaws.train.vocab_parallel import uses_tensor_axis, vocab_parallel_xent


def token_xent(config: ModelConfig, params, batch, dropout_rng=None, mesh=None) -> jax.Array:
    """Cross-entropy of each target, ``[B, T]`` float32 (unweighted).

    With a ``mesh`` whose ``tensor`` axis splits the vocabulary, the loss is computed by
    :func:`~mmlaws.train.vocab_parallel.vocab_parallel_xent` without gathering the logits.
    """
    out = logits(config, params, batch["inputs"], segment_ids=batch["segment_ids"],
                 positions=batch["positions"], dropout_rng=dropout_rng)  # [B, T, V]
    if mesh is not None and uses_tensor_axis(mesh):
        return vocab_parallel_xent(out, batch["targets"], mesh)
    return optax.softmax_cross_entropy_with_integer_labels(out, batch["targets"])


def loss_sums(xent, batch, vocab: VocabLayout, num_datasets: int) -> dict[str, jax.Array]:
    """Weighted sums of ``xent [B, T]``: overall, per modality ``[4]``, per dataset ``[K]``."""
    w = batch["weights"].astype(jnp.float32)  # [B, T]
    wx = w * xent
    modality = vocab.modality_of(batch["targets"])  # [B, T] int8
    by_mod = (modality[..., None] == jnp.arange(len(MODALITIES))).astype(jnp.float32)  # [B,T,4]
    by_ds = (batch["dataset_ids"][..., None] == jnp.arange(num_datasets)).astype(jnp.float32)
    return {
        "loss_sum": wx.sum(),
        "weight_sum": w.sum(),
        "modality_loss_sum": jnp.einsum("BT,BTM->M", wx, by_mod),
        "modality_weight_sum": jnp.einsum("BT,BTM->M", w, by_mod),
        "dataset_loss_sum": jnp.einsum("BT,BTK->K", wx, by_ds),
        "dataset_weight_sum": jnp.einsum("BT,BTK->K", w, by_ds),
        "dataset_tokens": by_ds.sum((0, 1)),  # non-padding input tokens per dataset
    }


def _split_micro(batch, micro_batches: int):
    """[B, T] → [M, B/M, T], micro-batch i holding rows i, i+M, … (device-local)."""

    def split(x):
        rows = x.shape[0]
        return x.reshape(rows // micro_batches, micro_batches, *x.shape[1:]).swapaxes(0, 1)

    return jax.tree.map(split, batch)


def accumulate_gradients(config, params, batch, rng, *, vocab, num_datasets, micro_batches=1,
                         constrain=lambda mb: mb, mesh=None):
    """Σ over micro-batches of (∇ Σ w·xent, sums) → (grads of the batch mean loss, sums)."""
    use_dropout = config.dropout > 0

    def micro_step(carry, inputs):
        index, mb = inputs
        mb = constrain(mb)
        dropout_rng = jax.random.fold_in(rng, index) if use_dropout else None

        def objective(p):
            sums = loss_sums(token_xent(config, p, mb, dropout_rng, mesh), mb, vocab, num_datasets)
            return sums["loss_sum"], sums

        grads, sums = jax.grad(objective, has_aux=True)(params)
        return jax.tree.map(jnp.add, carry, (grads, sums)), None

    micro = _split_micro(batch, micro_batches)
    zero_sums = jax.eval_shape(lambda: loss_sums(
        jnp.zeros(batch["targets"].shape[1:], jnp.float32)[None],
        jax.tree.map(lambda x: x[:1], batch), vocab, num_datasets))
    init = (jax.tree.map(jnp.zeros_like, params),
            jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero_sums))
    if micro_batches == 1:  # no loop: lets XLA fuse across the whole step
        (grads, sums), _ = micro_step(init, (jnp.asarray(0), jax.tree.map(lambda x: x[0], micro)))
    else:
        (grads, sums), _ = jax.lax.scan(micro_step, init, (jnp.arange(micro_batches), micro))
    denom = jnp.maximum(sums["weight_sum"], 1.0)
    return jax.tree.map(lambda g: g / denom, grads), sums


def train_step(state: TrainState, batch, rng, schedule: Schedule, *, config: ModelConfig,
               optimizer: optax.GradientTransformation, vocab, num_datasets: int,
               micro_batches: int = 1, constrain=lambda mb: mb, mesh=None):
    """One update → (new state, metrics: the sums plus loss, grad_norm, lr, finite).

    ``batch``: the ``[B, T]`` arrays of :data:`mmlaws.data.batch.FIELDS`; ``rng``: the run's
    key, folded with ``state.step`` (and the micro-batch index) for dropout; ``schedule``: the
    learning rate's numbers (:meth:`~mmlaws.train.optimizer.Recipe.schedule_values`).
    ``optimizer`` is the update direction of the run's
    :class:`~mmlaws.train.state.StateSetup`; the update is ``−lr(count) × lr_scale`` times it.
    The step has no batch axis of runs: a stack of runs vmaps it over all four arguments.
    """
    step_rng = jax.random.fold_in(rng, state.step)
    grads, sums = accumulate_gradients(config, state.params, batch, step_rng, vocab=vocab,
                                       num_datasets=num_datasets, micro_batches=micro_batches,
                                       constrain=constrain, mesh=mesh)
    loss = sums["loss_sum"] / jnp.maximum(sums["weight_sum"], 1.0)
    grad_norm = optax.tree.norm(grads)
    direction, opt_state = optimizer.update(grads, state.opt_state, state.params)
    lr = learning_rate(applied_updates(state.opt_state), schedule) * state.lr_scale
    updates = jax.tree.map(lambda u: -lr.astype(u.dtype) * u, direction)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state),
                              skipped=state.skipped + (~finite).astype(jnp.int32))
    return new_state, {**sums, "loss": loss, "grad_norm": grad_norm, "lr": lr,
                       "finite": finite}


def eval_sums(params, batch, *, config: ModelConfig, vocab, num_datasets: int, mesh=None):
    """Held-out sums of one batch (no dropout)."""
    return loss_sums(token_xent(config, params, batch, mesh=mesh), batch, vocab, num_datasets)


@functools.lru_cache(maxsize=8)
def jit_steps(setup: StateSetup, *, vocab: VocabLayout, num_datasets: int,
              micro_batches: int = 1):
    """(train_step, eval_step) jitted with in/out shardings on the setup's mesh; state donated.
    ``train_step(state, batch, rng, schedule)``, ``eval_step(params, batch)``.

    Call them inside ``use_mesh(setup.mesh)`` so the model's logical constraints apply.
    Cached: the same setup and arguments give the same (already compiled) functions.
    """
    config, mesh = setup.config, setup.mesh
    b_sh = batch_sharding(mesh)
    batch_sh = {k: b_sh for k in FIELDS}
    replicated = NamedSharding(mesh, PartitionSpec())
    constrain = lambda mb: jax.lax.with_sharding_constraint(mb, batch_sh)
    step = functools.partial(train_step, config=config, optimizer=setup.optimizer, vocab=vocab,
                             num_datasets=num_datasets, micro_batches=micro_batches,
                             constrain=constrain, mesh=mesh)
    evaluate = functools.partial(eval_sums, config=config, vocab=vocab, num_datasets=num_datasets,
                                 mesh=mesh)
    with use_mesh(mesh):
        train = jax.jit(step, in_shardings=(setup.shardings, batch_sh, replicated, replicated),
                        out_shardings=(setup.shardings, replicated), donate_argnums=0)
        ev = jax.jit(evaluate, in_shardings=(setup.shardings.params, batch_sh),
                     out_shardings=replicated)
    return train, ev
