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
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
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


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimizer settings; the defaults are the paper's (see the module docstring)."""

    peak_lr: float
    total_steps: int
    warmup_steps: int = WARMUP_STEPS
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

    def schedule(self):
        """update count → learning rate (see :func:`learning_rate_schedule`)."""
        return learning_rate_schedule(self.peak_lr, self.total_steps,
                                      warmup_steps=self.warmup_steps,
                                      end_lr_fraction=self.end_lr_fraction, power=self.power)


def peak_learning_rate(preset: str, override: float | None = None) -> float:
    """The Table 2 peak LR of a paper preset ("125M" …); ``override`` wins when given."""
    if override is not None:
        return float(override)
    if preset not in PAPER_ROWS:
        raise ConfigError(f"preset {preset!r} is not a Table 2 row {sorted(PAPER_ROWS)}; "
                          "give the peak learning rate explicitly")
    return PAPER_ROWS[preset].peak_lr


def learning_rate_schedule(peak_lr: float, total_steps: int, *, warmup_steps: int = WARMUP_STEPS,
                           end_lr_fraction: float = END_LR_FRACTION, power: float = 1.0):
    """step → learning rate: ``peak·(step+1)/warmup`` during warm-up, then polynomial decay.

    ``step`` counts updates from 0, so the first update already moves the weights and update
    ``warmup − 1`` uses the peak.
    After warm-up ``lr = end + (peak − end)·(1 − (step − warmup)/(total − warmup))^power``,
    held at ``end = end_lr_fraction·peak`` from ``total_steps`` on (metaseq's polynomial_decay).
    """
    end = peak_lr * end_lr_fraction
    decay_steps = max(total_steps - warmup_steps, 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm = peak_lr * (step + 1.0) / max(warmup_steps, 1)
        frac = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
        decay = end + (peak_lr - end) * (1.0 - frac) ** power
        return jnp.where(step < warmup_steps, warm, decay)

    return schedule


def decay_mask(params):
    """True on the leaves that get weight decay: ``*kernel`` matrices and ``unembed``."""

    def decayed(path, _):
        name = getattr(path[-1], "key", str(path[-1]))
        return name.endswith("kernel") or name == "unembed"

    return jax.tree_util.tree_map_with_path(decayed, params)


def make_optimizer(recipe: Recipe) -> optax.GradientTransformation:
    """clip(1.0) → Adam(0.9, 0.98, 1e-8) → decoupled weight decay 0.1 (masked) → −lr(step)."""
    return optax.chain(
        optax.clip_by_global_norm(recipe.clip_norm),
        optax.scale_by_adam(b1=recipe.b1, b2=recipe.b2, eps=recipe.eps),
        optax.add_decayed_weights(recipe.weight_decay, mask=decay_mask),
        optax.scale_by_learning_rate(recipe.schedule()),
    )


def applied_updates(opt_state) -> jax.Array:
    """Updates applied so far (the schedule's step), from :func:`make_optimizer`'s state."""
    return opt_state[-1].count
