"""What a study is made of, as frozen settings that gin binds (``configs/quickstart.gin``).

- :class:`Design`: which runs: datasets, model sizes, token budgets, pairs, a batch scan;
- :class:`DataBuild`: where and how the datasets are built;
- :class:`RunSettings`: every run's training settings (the macros of ``study/run.gin``);
- :class:`SweepSettings`: how the runs are run: local processes or a SLURM job array;
- and :class:`mmlaws.laws.FitSettings`: how the laws are fitted.

Each default is stated here once. As a library call::

    study.run_study(output_dir="outputs/s", design=study.Design(
        datasets=["code", "text"], models={"s": {"d_model": 32}}, budgets=[61440, 184320]))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Design:
    """The runs of a study (:func:`mmlaws.study.design.plan` checks and expands them).

    - ``datasets``: names of :data:`mmlaws.study.design.BUILDERS` to build and train on.
    - ``models``: name -> overrides of ``base_model`` (``preset``, ``d_model``, ``num_layers``,
      ``num_heads``, ``d_head``, ``d_ff``, ``remat``, ``dtype``, ``dropout``, ``init_std``) and
      optionally its own ``peak_lr``; ``model_defaults``: such keys for every model that does
      not set its own.
    - ``budgets``: training tokens per run (steps = ⌈budget / (batch × sequence length)⌉).
    - ``pairs``: also every pair of datasets at 50/50 token shares; ``nmodal``: with three
      datasets or more, also all of them at equal shares.
    - ``batch_scan``: ``{"model": name, "budget": tokens, "batch_sizes": [rows, ...]}``, runs
      of one size at one budget over several batch sizes (Phenomenon 3), or None.
    - ``seeds``: model name -> number of seeds its law runs are trained with (default 1, seed
      0); extra seeds measure the seed noise of the final loss (run ids end ``_s1``, ``_s2`` …).
    - ``schedule``: ``"decay"`` (every run warms up, then decays to 10% of its peak rate at its
      own budget, §4.5) or ``"wsd"`` (warm-up–stable–decay branches, Hägele et al. 2024: per
      model, dataset set and seed one trunk at constant rate, and at each budget a branch that
      forks from it and decays over the last ``cooldown`` fraction of its tokens; the branches
      are the law runs and share their trunk, which the records say).
    """

    datasets: Sequence[str]
    models: Mapping[str, Mapping]
    budgets: Sequence[float]
    pairs: bool = True
    nmodal: bool = False
    batch_scan: Mapping | None = None
    base_model: str = "tiny"
    model_defaults: Mapping = dataclasses.field(default_factory=dict)
    seeds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    schedule: str = "decay"
    cooldown: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "budgets", tuple(self.budgets))


@dataclasses.dataclass(frozen=True)
class DataBuild:
    """Where and how the datasets are built (cached: a built dataset is found, not rebuilt).

    ``layout``: a vocabulary layout of :data:`mmlaws.data.shards.PRESETS` (``micro``: bytes);
    ``tokens``: tokens kept per dataset; ``offline``: the builders download nothing.
    """

    data_dir: str = "outputs/data"
    layout: str = "small"
    tokens: float = 2e6
    offline: bool = False


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Every run's training settings.

    ``peak_lr=None``: each preset's Table 2 rate (a model's own ``peak_lr`` wins over both);
    ``extra_bindings``: more gin bindings for every run, as values (``{"MICRO_BATCHES": 8,
    "MESH": {"fsdp": -1}}``); they win over the study's own.
    """

    batch_size: int = 8
    sequence_length: int = 128
    peak_lr: float | None = 3e-3
    warmup_steps: int = 20
    eval_batches: int = 8
    checkpoint_every: int = 200
    extra_bindings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def warmup_tokens(self) -> int:
        return self.warmup_steps * self.batch_size * self.sequence_length

    def bindings(self) -> dict[str, Any]:
        """The macros of ``study/run.gin`` that every run shares."""
        lr = None if self.peak_lr is None else float(self.peak_lr)
        return {"PEAK_LR": lr, "WARMUP": self.warmup_steps, "EVAL_BATCHES": self.eval_batches,
                "CHECKPOINT_EVERY": self.checkpoint_every}


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """How the runs are run. ``backend="local"`` with ``engine="stacked"`` (the default): every
    run in this process, runs of one shape stacked (:mod:`mmlaws.study.engine`, settings in
    :class:`~mmlaws.study.engine.EngineSettings`); ``engine="process"``: one process per run
    (:func:`mmlaws.sweep.run_sweep`), ``parallel`` at a time. ``backend="slurm"``: one job per
    run in a SLURM array with ``slurm_options`` as ``#SBATCH`` lines; ``dry_run`` writes the job
    array without submitting it."""

    parallel: int = 1
    backend: str = "local"
    engine: str = "stacked"
    slurm_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    dry_run: bool = False
