"""A run's settings as two frozen dataclasses (bound by gin), and the plan they resolve to.

- :class:`RunSettings` — what is trained and how: the model preset and its changes, the
  vocabulary layout, the optimisation, the randomness, the mesh and the restart policy. The
  run header records them.
- :class:`LoopSettings` — the loop's housekeeping: checkpoints, evaluations, spike events,
  logging.

:func:`plan_run` resolves a :class:`RunSettings` into a :class:`Plan` (model config, optimizer
recipe, layout, mesh); nothing is compiled or allocated yet. In gin::

    loop.train.run = @settings.RunSettings()
    settings.RunSettings.total_steps = 100
    settings.RunSettings.model = 'tiny'
    loop.train.loop = @settings.LoopSettings()
    settings.LoopSettings.checkpoint_every = 10
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jax.sharding import Mesh

from mmlaws.data.vocab import VocabLayout, resolve_layout
from mmlaws.errors import ConfigError
from mmlaws.laws.spikes import SPIKE_FACTOR
from mmlaws.model import PRESETS, ModelConfig, make_mesh
from mmlaws.train.optimizer import WARMUP_STEPS, Recipe, peak_learning_rate
from mmlaws.train.restart import RestartPolicy
from mmlaws.train.runlog import Tracking

RNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What is trained and how.

    Attributes:
      total_steps: optimizer updates.
      model: a :data:`mmlaws.model.PRESETS` name; ``model_overrides`` changes its fields.
      vocab: the vocabulary layout (a layout, or a name of :data:`mmlaws.data.vocab.LAYOUTS`,
        any case); its size replaces the preset's vocabulary size.
      peak_lr: default: the preset's Table 2 value; ``warmup_steps``: linear warm-up (§4.5).
      micro_batches: gradient accumulation steps per update.
      mesh_shape: sizes of the mesh axes ``data``/``fsdp``/``tensor``, one may be −1
        (default ``{"data": -1}``).
      seed: initialisation and dropout.
      rng_impl: the PRNG behind dropout: ``threefry2x32`` (the same bits however the arrays
        are sharded) or ``rbg`` (XLA's RngBitGenerator, much cheaper on CPU/GPU, but its bits
        may change with the sharding).
      restart: the §4.5 restart policy and the non-finite-loss stop.
    """

    total_steps: int
    model: str = "tiny"
    model_overrides: Mapping | None = None
    vocab: str | VocabLayout = "tiny"
    peak_lr: float | None = None
    warmup_steps: int = WARMUP_STEPS
    micro_batches: int = 1
    mesh_shape: Mapping[str, int] | None = None
    seed: int = 0
    rng_impl: str = "threefry2x32"
    restart: RestartPolicy = RestartPolicy()


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """The loop's housekeeping.

    Attributes:
      checkpoint_every, keep_checkpoints: save every that many steps, keeping the newest
        ``keep_checkpoints`` (the restart policy restores the newest).
      eval_every, eval_batches: evaluate on ``eval_batches`` held-out batches every
        ``eval_every`` steps (0: only the final evaluation).
      spike_factor: a ``grad_spike`` event when a gradient norm exceeds this × the running
        median (:class:`mmlaws.laws.spikes.SpikeDetector`).
      tracking: where the run log is mirrored (wandb, TensorBoard) and under which names
        (:class:`mmlaws.train.runlog.Tracking`); progress: show a bar.
    """

    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    eval_every: int = 0
    eval_batches: int = 2
    spike_factor: float = SPIKE_FACTOR
    tracking: Tracking = Tracking()
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run's settings resolved (:func:`plan_run`): nothing compiled, nothing allocated.

    ``names``: the datasets, in the order of the batches' ``dataset_ids``.
    """

    settings: RunSettings
    config: ModelConfig
    recipe: Recipe
    layout: VocabLayout
    mesh: Mesh
    names: tuple[str, ...]


def plan_run(settings: RunSettings, names) -> Plan:
    """The model config (the layout's vocabulary size, then the overrides), the optimizer
    recipe, the layout and the mesh of a run over the datasets ``names``."""
    if settings.model not in PRESETS:
        raise ConfigError(f"RunSettings.model must be one of {sorted(PRESETS)}, "
                          f"got {settings.model!r}")
    if settings.rng_impl not in RNG_IMPLS:
        raise ConfigError(f"RunSettings.rng_impl must be one of {RNG_IMPLS}, "
                          f"got {settings.rng_impl!r}")
    layout = resolve_layout(settings.vocab)
    config = PRESETS[settings.model].replace(
        **{"vocab_size": layout.size, **(settings.model_overrides or {})})
    recipe = Recipe(peak_learning_rate(settings.model, settings.peak_lr), settings.total_steps,
                    warmup_steps=settings.warmup_steps)
    mesh = make_mesh(dict(settings.mesh_shape or {"data": -1}))
    return Plan(settings, config, recipe, layout, mesh, tuple(names))
