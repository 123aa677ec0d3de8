"""The study engine: a whole design of small models trained in one process on one host.

Training each run of a CPU-scale design in its own process spends nearly all its time on
start-up, compilation and data loading, not on the model. Here the design's runs are trained
in one process:

- runs of the same shape (model config, vocabulary, batch, sequence length, objective,
  optimizer direction) are grouped, and each group is cut into **stacks** of at most
  ``max_stack`` rows trained together as one vmapped program (:mod:`mmlaws.study.stack`):
  compiled once, whatever the runs' budgets, peak rates, seeds and data;
- data is built once per stream definition and shared (:mod:`mmlaws.study.streams`), and every
  run is evaluated on the same fixed held-out set of each of its datasets;
- a run that reached its budget is evaluated and its record finalised; the stack goes on
  with the others. A warm-up–stable–decay branch (Hägele et al. 2024) forks from its trunk's
  row at its fork step, so one trunk yields several token budgets.

Records are the JSONL run records the fitter reads (:mod:`mmlaws.laws.records`), one folder
per run under ``<output_dir>/runs`` as the process-per-run sweep writes them. Stacks
checkpoint under ``<output_dir>/stacks``; running the engine again skips finished runs and
resumes a stack from its last checkpoint, bit for bit. The engine holds the study folder's
lock (:mod:`mmlaws.train.lock`) while it trains: a second engine on the same folder fails at
once, naming the folder and the PID that holds it.

One progress bar covers the whole design (tokens/s, model GFLOP/s from the counting functions,
ETA) and a line is printed as each stack starts and ends.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping, Sequence

import tqdm

from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError
from mmlaws.laws.spikes import SPIKE_FACTOR
from mmlaws.model import PRESETS, ModelConfig
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.study.stack import Programs, StackTrainer, stack_dir_name
from mmlaws.study.streams import StreamKey, Streams
from mmlaws.train.lock import FolderLock
from mmlaws.train.optimizer import Recipe, peak_learning_rate
from mmlaws.train.runlog import Tracking


@dataclasses.dataclass(frozen=True)
class EngineRun:
    """One run as the engine trains it.

    ``recipe`` holds its schedule: peak rate, warm-up, total steps (its budget) and, for a
    warm-up–stable–decay branch, the step where its decay starts. A branch names its ``trunk``
    (another run of the design, trained at constant rate) and starts at ``start_step``, the
    fork, from the trunk's state there. ``role`` goes into the record's header (``law``,
    ``batch``, ``trunk`` …).
    """

    run_id: str
    model: str
    config: ModelConfig
    layout: VocabLayout
    shares: tuple[tuple[str, float], ...]
    recipe: Recipe
    batch_size: int
    sequence_length: int
    seed: int = 0
    objective: str = "cm3"
    rng_impl: str = "threefry2x32"
    role: str = "law"
    trunk: str | None = None
    start_step: int = 0
    modalities: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def total_steps(self) -> int:
        return self.recipe.total_steps

    @property
    def tokens(self) -> int:
        """Token positions this run trains beyond its fork."""
        return (self.total_steps - self.start_step) * self.batch_size * self.sequence_length

    @property
    def stream_key(self) -> StreamKey:
        return StreamKey(self.shares, self.seed, self.batch_size, self.sequence_length,
                         self.objective)

    @property
    def direction_recipe(self) -> Recipe:
        """The recipe with a neutral schedule: runs that share it share one compiled step."""
        r = self.recipe
        return Recipe(1.0, 1, warmup_steps=0, b1=r.b1, b2=r.b2, eps=r.eps,
                      weight_decay=r.weight_decay, clip_norm=r.clip_norm)

    @property
    def stack_key(self) -> tuple:
        return (self.config, self.layout, self.batch_size, self.sequence_length, self.objective,
                self.rng_impl, self.recipe.direction_key)


DEFAULT_EVAL_TOKENS = 100_000


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """How the engine trains a design.

    - ``max_stack``: rows (runs training at once) per stack; 1 trains runs one at a time;
    - ``sync_every``: steps between reading the device's outputs and writing step lines;
    - ``checkpoint_every``: steps between a stack's checkpoints (it also saves whenever a run
      finishes or a branch forks);
    - ``eval_tokens``: loss-bearing held-out tokens per dataset (None: 100,000, or in a study
      ``RunSettings.eval_batches`` training batches' worth); ``eval_batch_size``: rows per
      evaluation batch;
    - ``spike_factor``: a ``grad_spike`` event above this × the running median gradient norm;
    - ``max_nonfinite``: consecutive non-finite losses after which a run is marked failed (the
      others go on);
    - ``progress``: one bar for the whole design;
    - ``tracking``: the run logs' mirrors (:class:`mmlaws.train.runlog.Tracking`): TensorBoard
      event files beside each record by default; wandb, one wandb run per study run, when
      asked (a study sets its group).
    """

    max_stack: int = 16
    sync_every: int = 16
    checkpoint_every: int = 500
    eval_tokens: float | None = None
    eval_batch_size: int = 16
    spike_factor: float = SPIKE_FACTOR
    max_nonfinite: int = 10
    progress: bool = True
    tracking: Tracking = Tracking(wandb=False)


def from_design(runs: Mapping[str, Mapping], *, layout: VocabLayout, warmup_steps: int,
                peak_lr: float | None, objective: str = "cm3") -> list[EngineRun]:
    """The engine's runs of a study design (:func:`mmlaws.study.design.plan`'s dict)."""
    out = []
    for rid, d in runs.items():
        b = d["bindings"]
        if b.get("MICRO_BATCHES", 1) > 1:
            raise ConfigError(f"run {rid}: micro-batches ({b['MICRO_BATCHES']}) need the process "
                              "path (SweepSettings.engine='process'); the stacked engine "
                              "trains whole batches")
        config = PRESETS[b["MODEL"]].replace(**{"vocab_size": layout.size,
                                                 **b["MODEL_OVERRIDES"]})
        lr = peak_learning_rate(b["MODEL"], b.get("PEAK_LR", peak_lr))
        steps = d["steps"]
        decay = steps if d.get("constant") else d.get("decay_start")
        recipe = Recipe(lr, steps, warmup_steps=min(warmup_steps, steps), decay_start=decay)
        out.append(EngineRun(rid, d["model"], config, layout, tuple(b["SHARES"].items()),
                             recipe, b["BATCH"], b["SEQ_LEN"], seed=d.get("seed", 0),
                             objective=objective, role=d["role"], trunk=d.get("trunk"),
                             start_step=d.get("fork_step", 0)))
    return out


def _status(runs_dir, run: EngineRun) -> str:
    """``finished`` (a final line), ``failed`` (a failed event), else ``todo``."""
    path = runs_dir / run.run_id / f"{run.run_id}.jsonl"
    if not path.exists():
        return "todo"
    status = "todo"
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            break
        if obj.get("kind") == "final":
            return "finished"
        if obj.get("kind") == "event" and obj.get("type") == "failed":
            status = "failed"
    return status


def _families(runs: Sequence[EngineRun]) -> list[list[EngineRun]]:
    """Runs grouped with their trunk (a trunk and its branches train in one stack)."""
    by_trunk: dict[str, list[EngineRun]] = {}
    for r in runs:
        by_trunk.setdefault(r.trunk or r.run_id, []).append(r)
    return list(by_trunk.values())


def _width(family: Sequence[EngineRun]) -> int:
    """Most rows of a family active at once."""
    events = sorted({r.start_step for r in family})
    return max(sum(r.start_step <= s < r.total_steps for r in family) for s in events)


def plan_stacks(runs: Sequence[EngineRun], max_stack: int) -> list[list[EngineRun]]:
    """Runs of one shape together, cut into stacks of at most ``max_stack`` concurrent rows."""
    groups: dict[tuple, list[list[EngineRun]]] = {}
    for family in _families(runs):
        groups.setdefault(family[0].stack_key, []).append(family)
    stacks = []
    for families in groups.values():
        current, width = [], 0
        for family in families:
            w = _width(family)
            if current and width + w > max_stack:
                stacks.append(current)
                current, width = [], 0
            current, width = current + family, width + w
        stacks.append(current)
    return stacks


def _to_train(stack: list[EngineRun], stacks_dir, runs_dir) -> list[EngineRun]:
    """The stack as designed when it has a checkpoint (a resume needs every row); otherwise its
    unfinished runs and the trunks they fork from."""
    todo = [r for r in stack if _status(runs_dir, r) == "todo"]
    if not todo:
        return []
    if (stacks_dir / stack_dir_name(stack) / "checkpoints").exists():
        return stack
    trunks = {r.trunk for r in todo if r.trunk}
    return [r for r in stack if r in todo or r.run_id in trunks]


def train_design(runs: Sequence[EngineRun], *, output_dir: str, data_dir: str,
                 settings: EngineSettings = EngineSettings()) -> dict[str, dict | str | None]:
    """Trains every run not yet finished; returns run id → final line (or the failure reason).

    Records go to ``<output_dir>/runs/<run_id>/<run_id>.jsonl``, stack checkpoints to
    ``<output_dir>/stacks/``.
    """
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ConfigError(f"duplicate run ids in the design: {dup}")
    with FolderLock(output_dir):
        return _train_design(runs, pathlib.Path(output_dir), data_dir, settings)


def _train_design(runs, out, data_dir: str, settings: EngineSettings) -> dict:
    runs_dir, stacks_dir = out / "runs", out / "stacks"
    streams = Streams(data_dir, eval_tokens=settings.eval_tokens or DEFAULT_EVAL_TOKENS,
                      eval_batch_size=settings.eval_batch_size)
    stacks = [s for s in (_to_train(s, stacks_dir, runs_dir)
                          for s in plan_stacks(runs, settings.max_stack)) if s]
    streams.prepare_eval({(n, r.sequence_length, r.objective)
                          for s in stacks for r in s for n, _ in r.shares})
    programs = {}
    total = sum(r.tokens for s in stacks for r in s)
    done = len(runs) - sum(len(s) for s in stacks)
    print(f"mmlaws engine: {len(runs)} runs, {done} already finished; {len(stacks)} stack(s) "
          f"to train, {total / 1e6:.3g}M tokens", flush=True)
    bar = tqdm.tqdm(total=total, unit="tok", unit_scale=True, dynamic_ncols=True,
                    mininterval=1.0, disable=not settings.progress)
    meter = _Meter(bar)
    start = time.perf_counter()
    for k, stack in enumerate(stacks, 1):
        first = stack[0]
        fpt = flops_per_token(first.config, first.sequence_length)
        bar.write(f"mmlaws engine: stack {k}/{len(stacks)}: {len(stack)} runs of model "
                  f"{first.model} ({first.config.d_model} wide, {first.config.num_layers} layers)")
        t0, tokens0, flops0 = time.perf_counter(), meter.tokens, meter.flops
        key = (stack[0].stack_key, max(len(r.shares) for r in stack))
        if key not in programs:  # one set of compiled programs per shape, kept for later stacks
            programs[key] = Programs(first, key[1])
        trainer = StackTrainer(stack, streams, programs[key], runs_dir=str(runs_dir),
                               stack_dir=str(stacks_dir / stack_dir_name(stack)),
                               settings=settings, progress=lambda tok, s, f=fpt: meter(tok, f))
        trainer.train()
        later = {r.stream_key for s in stacks[k:] for r in s}
        streams.release(later)
        took = time.perf_counter() - t0
        tokens, flops = meter.tokens - tokens0, meter.flops - flops0
        bar.write(f"mmlaws engine: stack {k}/{len(stacks)} done in {took:.0f} s "
                  f"({len(trainer.failed)} failed; {tokens / 1e6:.3g}M tokens, "
                  f"{flops / max(took, 1e-9) / 1e9:.1f} model GFLOP/s)")
    bar.close()
    seconds = time.perf_counter() - start
    print(f"mmlaws engine: {total / 1e6:.3g}M tokens in {seconds:.0f} s, "
          f"{meter.flops / max(seconds, 1e-9) / 1e9:.1f} model GFLOP/s", flush=True)
    return {r.run_id: _result(runs_dir, r) for r in runs}


class _Meter:
    """Feeds the bar: tokens done, and the model GFLOP/s since the start."""

    def __init__(self, bar):
        self.bar, self.tokens, self.flops, self.start = bar, 0, 0.0, time.perf_counter()

    def __call__(self, tokens: int, flops_per_token: float) -> None:
        self.tokens += tokens
        self.flops += tokens * flops_per_token
        self.bar.update(tokens)
        rate = self.flops / max(time.perf_counter() - self.start, 1e-9) / 1e9
        self.bar.set_postfix(gflops=f"{rate:.1f}", refresh=False)


def _result(runs_dir, run: EngineRun):
    path = runs_dir / run.run_id / f"{run.run_id}.jsonl"
    if not path.exists():
        return None
    reason = None
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("kind") == "final":
            return obj
        if obj.get("kind") == "event" and obj.get("type") == "failed":
            reason = obj.get("reason")
    return reason
