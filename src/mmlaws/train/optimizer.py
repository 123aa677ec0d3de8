"""The paper's optimizer recipe (§4.5, Appendix A.1) as one optax chain.

- Adam with β1 = 0.9, β2 = 0.98 (§4.5), ε = 1e-8 (metaseq's default; the paper does not say);
- decoupled weight decay 0.1 (Appendix A.1), applied only to matmul kernels — every leaf named
  ``*kernel`` and the untied ``unembed``. **Exempt**: biases, LayerNorm scales and biases, and
  the token and position embeddings (the tied token embedding is exempt although it also serves
  as the output projection);
- global-norm gradient clipping at 1.0 (§4.5);
- metaseq's ``polynomial_decay`` schedule: linear warm-up over 500 updates to the peak
  learning rate, then linear (power 1) decay to an end learning rate of 10% of the peak (§4.5);
- the peak learning rate of each Table 2 row (Appendix A.1), e.g. 6e-4 for 125M.

The schedule is a plain function of the update count::

    >>> lr = learning_rate_schedule(1e-3, total_steps=1500)
    >>> [round(float(lr(s)), 6) for s in (0, 249, 499, 500, 1000, 1500, 2000)]
    [2e-06, 0.0005, 0.001, 0.001, 0.00055, 0.0001, 0.0001]

Its numbers travel as a :class:`Schedule` of arrays (:meth:`Recipe.schedule_values`), an
argument of the train step rather than a constant compiled into it: runs with different
budgets and peak rates share one compiled step, and a stack of runs trained together
(:mod:`mmlaws.study.engine`) carries one schedule per run. The step applies
``−lr(count) × lr_scale`` to the direction of :func:`update_direction` (clip → Adam → decay).
A warm-up–stable–decay schedule (Hägele et al. 2024) holds the peak until ``decay_start``::

    >>> wsd = Recipe(1e-3, total_steps=1000, warmup_steps=100, decay_start=800).schedule()
    >>> [round(float(wsd(s)), 6) for s in (99, 500, 799, 900, 1000)]
    [0.001, 0.001, 0.001, 0.00055, 0.0001]
"""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmlaws.errors import ConfigError
from mmlaws.model import PAPER_ROWS

# §4.5 and Appendix A.1.
ADAM_B1 = 0.9
ADAM_B2 = 0.98
ADAM_EPS = 1e-8  # metaseq's default Adam epsilon
WEIGHT_DECAY = 0.1
CLIP_NORM = 1.0
WARMUP_STEPS = 500
END_LR_FRACTION = 0.1


@flax.struct.dataclass
class Schedule:
    """A learning-rate schedule's numbers as float32 arrays (scalars, or ``[R]`` for a stack of
    R runs): see :func:`learning_rate`."""

    peak_lr: jax.Array
    warmup_steps: jax.Array
    decay_start: jax.Array
    total_steps: jax.Array
    end_lr_fraction: jax.Array
    power: jax.Array


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimizer settings; the defaults are the paper's (see the module docstring).

    ``decay_start``: the update at which the decay to ``end_lr_fraction × peak`` begins; None
    (the paper's schedule) means right after the warm-up. A later start holds the peak in
    between (a warm-up–stable–decay schedule, or a constant-rate trunk with ``decay_start ≥
    total_steps``).
    """

    peak_lr: float
    total_steps: int
    warmup_steps: int = WARMUP_STEPS
    decay_start: int | None = None
    end_lr_fraction: float = END_LR_FRACTION
    power: float = 1.0
    b1: float = ADAM_B1
    b2: float = ADAM_B2
    eps: float = ADAM_EPS
    weight_decay: float = WEIGHT_DECAY
    clip_norm: float = CLIP_NORM

    def __post_init__(self):
        if self.peak_lr <= 0 or self.total_steps <= 0:
            raise ConfigError(f"peak_lr and total_steps must be positive, got {self.peak_lr}, "
                              f"{self.total_steps}")

        if self.decay_start is not None and self.decay_start < self.warmup_steps:
            raise ConfigError(f"decay_start={self.decay_start} comes before the end of the "
                              f"warm-up ({self.warmup_steps} updates)")

    def schedule_values(self) -> Schedule:
        """The schedule's numbers (float32 scalars), the train step's ``schedule`` argument."""
        start = self.warmup_steps if self.decay_start is None else self.decay_start
        f32 = np.float32
        return Schedule(peak_lr=f32(self.peak_lr), warmup_steps=f32(self.warmup_steps),
                        decay_start=f32(start), total_steps=f32(self.total_steps),
                        end_lr_fraction=f32(self.end_lr_fraction), power=f32(self.power))

    def schedule(self):
        """update count → learning rate (see :func:`learning_rate`)."""
        values = self.schedule_values()
        return lambda step: learning_rate(step, values)

    @property
    def direction_key(self) -> tuple:
        """The settings the update direction depends on (:func:`update_direction`): runs that
        share them share a compiled step whatever their schedules."""
        return (self.b1, self.b2, self.eps, self.weight_decay, self.clip_norm)


def peak_learning_rate(preset: str, override: float | None = None) -> float:
    """The Table 2 peak LR of a paper preset ("125M" …); ``override`` wins when given."""
    if override is not None:
        return float(override)
    if preset not in PAPER_ROWS:
        raise ConfigError(f"preset {preset!r} is not a Table 2 row {sorted(PAPER_ROWS)}; "
                          "give the peak learning rate explicitly")
    return PAPER_ROWS[preset].peak_lr


def learning_rate(step, s: Schedule) -> jax.Array:
    """Learning rate at update ``step`` (counted from 0) of schedule ``s``.

    ``peak·(step+1)/warmup`` during the warm-up, so the first update already moves the weights
    and update ``warmup − 1`` uses the peak; then the peak until ``decay_start``; then
    ``end + (peak − end)·(1 − (step − decay_start)/(total − decay_start))^power``, held at
    ``end = end_lr_fraction·peak`` from ``total_steps`` on (metaseq's polynomial_decay when
    ``decay_start`` is the end of the warm-up).
    """
    step = jnp.asarray(step, jnp.float32)
    end = s.peak_lr * s.end_lr_fraction
    warm = s.peak_lr * (step + 1.0) / jnp.maximum(s.warmup_steps, 1.0)
    frac = jnp.clip((step - s.decay_start) / jnp.maximum(s.total_steps - s.decay_start, 1.0),
                    0.0, 1.0)
    decay = end + (s.peak_lr - end) * (1.0 - frac) ** s.power
    return jnp.where(step < s.warmup_steps, warm, decay)


def learning_rate_schedule(peak_lr: float, total_steps: int, *, warmup_steps: int = WARMUP_STEPS,
                           end_lr_fraction: float = END_LR_FRACTION, power: float = 1.0):
    """step → learning rate of the paper's schedule (:func:`learning_rate`, decay right after
    the warm-up)."""
    return Recipe(peak_lr, total_steps, warmup_steps=warmup_steps,
                  end_lr_fraction=end_lr_fraction, power=power).schedule()


def decay_mask(params):
    """True on the leaves that get weight decay: ``*kernel`` matrices and ``unembed``."""

    def decayed(path, _):
        name = getattr(path[-1], "key", str(path[-1]))
        return name.endswith("kernel") or name == "unembed"

    return jax.tree_util.tree_map_with_path(decayed, params)


def update_direction(recipe: Recipe) -> optax.GradientTransformation:
    """clip(1.0) → Adam(0.9, 0.98, 1e-8) → decoupled weight decay 0.1 (masked): the update
    before the learning rate, which the train step applies from its :class:`Schedule`."""
    return optax.chain(
        optax.clip_by_global_norm(recipe.clip_norm),
        optax.scale_by_adam(b1=recipe.b1, b2=recipe.b2, eps=recipe.eps),
        optax.add_decayed_weights(recipe.weight_decay, mask=decay_mask),
    )


def make_optimizer(recipe: Recipe) -> optax.GradientTransformation:
    """The whole recipe as one optax transformation: :func:`update_direction` → −lr(step)."""
    return optax.chain(update_direction(recipe), optax.scale_by_learning_rate(recipe.schedule()))


def applied_updates(direction_state) -> jax.Array:
    """Updates applied so far (the schedule's step), from :func:`update_direction`'s state
    (Adam's count: a skipped update leaves it unchanged)."""
    return direction_state[1].count
