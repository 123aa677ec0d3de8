"""What a study is made of, as frozen settings that gin binds (``configs/quickstart.gin``).

- :class:`Design`: which runs: datasets, model sizes, token budgets, pairs, a batch scan;
- :class:`DataBuild`: where and how the datasets are built;
- :class:`RunSettings`: every run's training settings (the macros of ``study/run.gin``);
- :class:`SweepSettings`: how the runs are run: local processes or a SLURM job array;
- :class:`PowerSettings`: the design-power check printed before training and reported;
- and :class:`mmlaws.laws.FitSettings`: how the laws are fitted.

Each default is stated here once. As a library call::

    study.run_study(output_dir="outputs/s", design=study.Design(
        datasets=["code", "text"], models={"s": {"d_model": 32}}, budgets=[61440, 184320]))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mmlaws.errors import ConfigError
from mmlaws.laws.power import PowerCriteria


@dataclasses.dataclass(frozen=True)
class Design:
    """The runs of a study (:func:`mmlaws.study.design.plan` checks and expands them).

    - ``datasets``: names of :data:`mmlaws.study.design.BUILDERS` to build and train on.
    - ``models``: name -> overrides of ``base_model`` (``preset``, ``d_model``, ``num_layers``,
      ``num_heads``, ``d_head``, ``d_ff``, ``remat``, ``dtype``, ``dropout``, ``dropout_impl``,
      ``init_std``, ``attention``, ``max_segments``) and optionally its own ``peak_lr`` and
      ``micro_batch_rows`` (rows per micro-batch: a run of ``B`` rows accumulates gradients
      over ``B / micro_batch_rows`` micro-batches); ``model_defaults``: such keys for every
      model that does not set its own.
    - ``budgets``: training tokens per run (steps = ⌈budget / (batch × sequence length)⌉).
    - ``pairs``: True: also every pair of datasets at 50/50 token shares; or a list of the
      pairs to train (``[["speech", "text"], ...]``); False: none. ``nmodal``: with three
      datasets or more, also all of them at equal shares.
    - ``batch_scan``: runs of some sizes at one budget over several batch sizes (Phenomenon 3),
      on every dataset and pair, or None: ``{"models": [names] (or "model": name), "budget":
      tokens, "batch_sizes": [rows, ...], "extra_batch_sizes": {dataset: [rows, ...]}}``, the
      extra sizes only for the sets that contain that dataset (§6: 0.5M where Text is in).
    - ``seeds``: model name -> number of seeds its law runs are trained with (default 1, seed
      0); extra seeds measure the seed noise of the final loss (run ids end ``_s1``, ``_s2`` …).
    - ``schedule``: ``"decay"`` (every run warms up, then decays to 10% of its peak rate at its
      own budget, §4.5) or ``"wsd"`` (warm-up–stable–decay branches, Hägele et al. 2024: per
      model, dataset set and seed one trunk at constant rate, and at each budget a branch that
      forks from it and decays over the last ``cooldown`` fraction of its tokens; the branches
      are the law runs and share their trunk, which the records say).
    - ``tokens_per_parameter``: ``(low, high)``: law runs whose budget per parameter (total
      parameters, embeddings included, at the study's layout) falls outside the band are not
      trained, so that every size sees budgets it can use (Hoffmann et al. 2022 train within
      such a band; far outside it Eq. 2's additive form does not hold). None: every size ×
      budget.
    - ``mixture_shares``: a mixture design (Ye et al. 2024; :mod:`mmlaws.laws.mixture`): every
      pair is also trained at these shares of its first dataset (alphabetical order; e.g.
      ``[0.25, 0.75]``), with the same budgets, seeds and schedule, on ``mixture_models``
      (default every model). Their runs (role ``mixture``, ids ``code.25+text.75_w8_D205k``)
      stay out of the Eq. 2 and Eq. 4 fits; the study fits the per-modality mixture laws on the
      pair's pure, 50/50 and mixture runs and checks them on each interior share, held out in
      turn, against linear interpolation in the share (:func:`mmlaws.laws.mixture_entry`).
    """

    datasets: Sequence[str]
    models: Mapping[str, Mapping]
    budgets: Sequence[float]
    pairs: bool | Sequence[Sequence[str]] = True
    nmodal: bool = False
    batch_scan: Mapping | None = None
    base_model: str = "tiny"
    model_defaults: Mapping = dataclasses.field(default_factory=dict)
    seeds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    schedule: str = "decay"
    cooldown: float = 0.2
    tokens_per_parameter: Sequence[float] | None = None
    mixture_shares: Sequence[float] = ()
    mixture_models: Sequence[str] | None = None

    def __post_init__(self):
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "budgets", tuple(self.budgets))
        object.__setattr__(self, "mixture_shares", tuple(self.mixture_shares))
        if self.mixture_models is not None:
            object.__setattr__(self, "mixture_models", tuple(self.mixture_models))
        if self.tokens_per_parameter is not None:
            object.__setattr__(self, "tokens_per_parameter", tuple(self.tokens_per_parameter))


@dataclasses.dataclass(frozen=True)
class DataBuild:
    """Where and how the datasets are built (cached: a built dataset is found, not rebuilt).

    ``layout``: a vocabulary layout of :data:`mmlaws.data.shards.PRESETS` (``micro``: bytes);
    ``tokens``: tokens kept per dataset; ``offline``: the builders download nothing.
    ``image`` and ``speech``: fields of the image and speech builders' options
    (:class:`mmlaws.corpora.images.ImageOptions`, :class:`mmlaws.corpora.speech.SpeechOptions`),
    e.g. ``{"size": 256, "tokenizer": "vqvae"}``. ``max_epochs``: the most passes over a
    dataset's training tokens that a run may make (§4.5 trains a single epoch: 1.0); a design
    that needs more is refused. None: allowed, but announced and recorded in ``design.json``.
    ``sources``: dataset -> the names of the sources it is built from (default: every source
    available on this machine, which can differ between machines; name them to build the same
    dataset everywhere). ``validation_fraction``: the share of documents held out;
    ``max_document_tokens``: documents cut into pieces of at most this many tokens
    (:class:`mmlaws.corpora.build.BuildOptions`).
    """

    data_dir: str = "outputs/data"
    layout: str = "small"
    tokens: float = 2e6
    offline: bool = False
    image: Mapping[str, Any] | None = None
    speech: Mapping[str, Any] | None = None
    max_epochs: float | None = None
    sources: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    validation_fraction: float = 0.01
    max_document_tokens: int | None = None

    def build_options(self) -> dict[str, Any]:
        """The fields of :class:`~mmlaws.corpora.build.BuildOptions` this sets for every
        dataset (:func:`mmlaws.study.design.build_data`)."""
        return {"offline": self.offline, "validation_fraction": self.validation_fraction,
                "max_document_tokens": self.max_document_tokens}


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
    run in a SLURM array with ``slurm_options`` as ``#SBATCH`` lines.

    ``dry_run``: build and train nothing; print the plan (:mod:`mmlaws.study.preview`: the
    runs, tokens needed per dataset and the epochs they imply, and with ``plan_memory`` the
    memory of each model's step on ``devices`` devices of ``device_gb``) and write the job
    arrays without submitting them. ``time_limit``: SLURM time limits from each run's planned
    FLOPs at a stated utilisation, ``{"mfu": 0.4, "device": "h100", "devices": 8, "margin":
    1.25, "max_hours": 48}`` (:func:`mmlaws.study.preview.run_seconds`); runs longer than
    ``max_hours`` continue in requeued jobs from their checkpoints. ``launcher``: a prefix of
    every run's command in the job (``"srun"`` for runs over several nodes).
    """

    parallel: int = 1
    backend: str = "local"
    engine: str = "stacked"
    slurm_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    dry_run: bool = False
    time_limit: Mapping[str, Any] | None = None
    launcher: str = ""
    plan_memory: bool = True
    devices: int = 8
    device_gb: float = 80.0


@dataclasses.dataclass(frozen=True)
class PowerSettings:
    """The design-power check (:func:`mmlaws.study.check_design`) that the study prints before
    training and writes into its report.

    ``replicates``: noisy copies of the planted law refitted per dataset (0: no check); 32
    take a few seconds per dataset on two cores for a 30-run design (the first call also
    compiles the batched solve, about 7 s). ``noise``: σ of the multiplicative noise on each
    run's loss (0.01: a 1% seed spread). ``coverage``: replicates whose 95% profile intervals
    for α and β are formed to measure their coverage (about 1.5 s each; 0: not measured).
    ``seed``: the noise's seed; ``criteria``: when a parameter counts as identified.
    """

    replicates: int = 32
    noise: float = 0.01
    coverage: int = 0
    seed: int = 0
    criteria: PowerCriteria = PowerCriteria()

    def __post_init__(self):
        for name, least in (("replicates", 2), ("coverage", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or (v != 0 and v < least):
                raise ConfigError(f"PowerSettings.{name}={v!r}: 0 or an integer >= {least}")
        if not 0 < self.noise < 0.5:
            raise ConfigError(f"PowerSettings.noise={self.noise!r}: must be in (0, 0.5)")
        if self.coverage > self.replicates:
            raise ConfigError(f"PowerSettings.coverage={self.coverage} exceeds replicates="
                              f"{self.replicates}")
