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
import math
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

    def __post_init__(self):
        name = type(self).__name__
        _integer(name, "total_steps", self.total_steps, 1)
        _integer(name, "warmup_steps", self.warmup_steps, 0)
        _integer(name, "micro_batches", self.micro_batches, 1)
        _integer(name, "seed", self.seed, 0)
        if self.peak_lr is not None:
            _positive(name, "peak_lr", self.peak_lr)
        if not isinstance(self.model, str):
            raise ConfigError(f"{name}.model={self.model!r}: expected a preset name")
        if self.model_overrides is not None and not isinstance(self.model_overrides, Mapping):
            raise ConfigError(f"{name}.model_overrides={self.model_overrides!r}: expected a dict "
                              f"of ModelConfig fields")
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(self.model_overrides or {}) - fields)
        if unknown:
            raise ConfigError(f"{name}.model_overrides: unknown ModelConfig field(s) {unknown}")
        if self.mesh_shape is not None and not (
                isinstance(self.mesh_shape, Mapping)
                and all(_is_int(v) and (v >= 1 or v == -1) for v in self.mesh_shape.values())):
            raise ConfigError(f"{name}.mesh_shape={self.mesh_shape!r}: expected a dict of axis "
                              f"sizes (integers ≥ 1, one may be -1)")
        if not isinstance(self.restart, RestartPolicy):
            raise ConfigError(f"{name}.restart={self.restart!r}: expected a RestartPolicy")


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
      restart_fresh: start over in a fresh run log although the output folder holds a run
        (``RESTART=True`` in the shipped configs): its log, checkpoints and mirrors are kept
        aside, renamed ``<name>.replaced-<time>``. Without it, a folder holding a run of another
        configuration is refused (:mod:`mmlaws.train.runfolder`).

    ``checkpoint_every=0`` saves only at the start and the end.
    """

    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    eval_every: int = 0
    eval_batches: int = 2
    spike_factor: float = SPIKE_FACTOR
    tracking: Tracking = Tracking()
    progress: bool = True
    restart_fresh: bool = False

    def __post_init__(self):
        name = type(self).__name__
        _integer(name, "checkpoint_every", self.checkpoint_every, 0)
        _integer(name, "keep_checkpoints", self.keep_checkpoints, 1)
        _integer(name, "eval_every", self.eval_every, 0)
        _integer(name, "eval_batches", self.eval_batches, 1)
        _positive(name, "spike_factor", self.spike_factor)
        for field in ("progress", "restart_fresh"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(f"{name}.{field}={getattr(self, field)!r}: expected True or "
                                  f"False")
        if not isinstance(self.tracking, Tracking):
            raise ConfigError(f"{name}.tracking={self.tracking!r}: expected a runlog.Tracking")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(owner: str, field: str, value, minimum: int) -> None:
    """:class:`ConfigError` naming ``owner.field`` unless ``value`` is an integer ≥ minimum."""
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"{owner}.{field}={value!r}: expected an integer ≥ {minimum}")


def _positive(owner: str, field: str, value) -> None:
    """:class:`ConfigError` naming ``owner.field`` unless ``value`` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ConfigError(f"{owner}.{field}={value!r}: expected a positive number")


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
