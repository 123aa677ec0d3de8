"""The training loop: ``train(...)``, a keyword-only function that gin configures::

    train(output_dir="outputs/run", data=SyntheticBatches(...),
          run=RunSettings(total_steps=100, peak_lr=3e-3), loop=LoopSettings(eval_every=20))

Outputs under ``output_dir``: ``<run_id>.jsonl`` (the run record, see
:mod:`mmlaws.laws.records`), ``checkpoints/`` (orbax), and the mirrors ``tracking`` asks for
(``wandb/``, ``tensorboard/``; see :mod:`mmlaws.train.runlog`).
Running the same command again resumes from the newest loadable checkpoint, the log cut back
to it, so that a run killed at any point and resumed writes the log an uninterrupted run
writes (timings aside). The folder is locked while a run trains, and holds one run: see
:mod:`mmlaws.train.runfolder` for what is refused and how ``restart_fresh`` starts over.

``data`` and ``eval_data`` are batch sources (:class:`mmlaws.data.batch.Batches`:
:func:`mmlaws.data.mixture` or :class:`mmlaws.data.synthetic.SyntheticBatches`). ``shares``
(name → token share, in the order of ``dataset_ids``) defaults to ``data.shares``. With
``process_local_batches`` each process's iterator yields only its own rows; otherwise every
process yields the whole batch and keeps its rows.

A run is put together in explicit steps: :func:`~mmlaws.train.settings.plan_run` resolves
the settings (nothing compiled), :func:`start_run` builds the optimizer and the state's
shardings once (:func:`~mmlaws.train.state.state_setup`), jits the steps and allocates the
sharded state, and :meth:`Run.loop` trains.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import jax
import numpy as np
import tqdm

from mmlaws.data.batch import Batches, check_batches
from mmlaws.errors import ConfigError
from mmlaws.laws.spikes import SpikeDetector
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.model import use_mesh
from mmlaws.train import metrics, runfolder
from mmlaws.train.checkpoint import Checkpointer, CheckpointError
from mmlaws.train.distributed import host, initialize_distributed, place_batch
from mmlaws.train.header import run_header
from mmlaws.train.restart import NonFiniteLossError, PlateauWatch
from mmlaws.train.runlog import RunLog
from mmlaws.train.settings import LoopSettings, Plan, RunSettings, plan_run
from mmlaws.train.state import StateSetup, TrainState, state_setup
from mmlaws.train.step import jit_steps


def train(*, output_dir: str, data: Batches, run: RunSettings, eval_data: Batches | None = None,
          loop: LoopSettings = LoopSettings(), run_id: str | None = None,
          shares: dict | None = None, process_local_batches: bool = False) -> dict:
    """Train as ``run`` says, keeping house as ``loop`` says; returns the final evaluation
    record (losses on ``eval_data``, NaN without it)."""
    initialize_distributed()
    check_batches(data, "data")
    if eval_data is not None:
        check_batches(eval_data, "eval_data")
    shares = dict(shares or data.shares)
    plan = plan_run(run, shares)
    if getattr(data, "layout", plan.layout) != plan.layout:  # data that names its layout
        raise ConfigError(f"data uses vocabulary layout {data.layout}, the model {plan.layout}")
    check_fits(plan, data, process_local_batches)
    with runfolder.locked(output_dir):
        runner = start_run(plan, data, eval_data, spike_factor=loop.spike_factor,
                           process_local=process_local_batches)
        run_id = run_id or os.path.basename(os.path.abspath(output_dir))
        header = runner.header(run_id, shares)
        runner.fingerprint = header["fingerprint"]
        runfolder.claim(output_dir, header, restart_fresh=loop.restart_fresh)
        ckpt = Checkpointer(os.path.join(output_dir, runfolder.CHECKPOINTS),
                            every=loop.checkpoint_every, keep=loop.keep_checkpoints)
        log = None
        try:
            runner.resume(ckpt, runfolder.log_path(output_dir, header))
            log = RunLog(output_dir, header, tracking=loop.tracking)
            return runner.loop(log, ckpt, loop)
        finally:
            ckpt.close()
            if log is not None:
                log.close()


def check_fits(plan: Plan, data: Batches, process_local: bool) -> None:
    """``ConfigError`` unless the batch splits over the mesh's batch axes (and into the
    micro-batches) and the sequence fits the model."""
    rows = data.batch_size * (jax.process_count() if process_local else 1)
    shards = plan.mesh.shape["data"] * plan.mesh.shape["fsdp"]
    micro = plan.settings.micro_batches
    if rows % micro or (rows // micro) % shards:
        raise ConfigError(f"a batch of {rows} rows in {micro} micro-batch(es) cannot be split "
                          f"over the mesh's {shards} data×fsdp shards "
                          f"({dict(plan.mesh.shape)}): use a batch that is a multiple of "
                          f"{micro * shards} rows, or another MESH")
    if data.sequence_length > plan.config.max_len:
        raise ConfigError(f"sequence length {data.sequence_length} exceeds the model's max_len "
                          f"{plan.config.max_len}")


@dataclasses.dataclass
class HostState:
    """What the host keeps beside the device state, saved with every checkpoint: tokens seen
    per dataset (``[K]`` float64), the run's key, the restart policy's tracker, the spike
    detector and the count of consecutive non-finite losses."""

    tokens: np.ndarray
    rng: jax.Array
    plateau: PlateauWatch
    spikes: SpikeDetector
    nonfinite_run: int = 0

    def get_state(self) -> dict:
        return {"tokens": self.tokens.tolist(),
                "rng": np.asarray(jax.random.key_data(self.rng)).tolist(),
                "plateau": self.plateau.get_state(), "spike_history": list(self.spikes.history),
                "spike_count": self.spikes.count, "nonfinite_run": self.nonfinite_run}

    def set_state(self, state: dict, *, rng_impl: str) -> None:
        self.tokens = np.asarray(state["tokens"], np.float64)
        self.rng = jax.random.wrap_key_data(np.asarray(state["rng"], np.uint32), impl=rng_impl)
        self.plateau.set_state(state["plateau"])
        self.spikes.history.clear()
        self.spikes.history.extend(state["spike_history"])
        self.spikes.count = int(state["spike_count"])
        self.nonfinite_run = int(state["nonfinite_run"])


def start_run(plan: Plan, data: Batches, eval_data: Batches | None = None, *,
              spike_factor: float, process_local: bool = False) -> Run:
    """Build the run's optimizer and state layout (once), jit its steps, allocate its sharded
    state (from the seed's first key; the second drives dropout) and its host state."""
    settings = plan.settings
    setup = state_setup(plan.config, plan.recipe, plan.mesh)
    train_step, eval_step = jit_steps(setup, vocab=plan.layout, num_datasets=len(plan.names),
                                      micro_batches=settings.micro_batches)
    init_rng, rng = jax.random.split(jax.random.key(settings.seed, impl=settings.rng_impl))
    host_state = HostState(tokens=np.zeros(len(plan.names), np.float64), rng=rng,
                           plateau=PlateauWatch(settings.restart.window_tokens),
                           spikes=SpikeDetector(spike_factor))
    return Run(plan=plan, setup=setup, train_step=train_step, eval_step=eval_step,
               state=setup.init(init_rng), host=host_state, data=data, eval_data=eval_data,
               eval_start=None if eval_data is None else eval_data.get_state(),
               process_local=process_local)


@dataclasses.dataclass
class Run:
    """A started run (:func:`start_run`): its plan, compiled steps, sharded state, data and
    host state. The constructor only stores them."""

    plan: Plan
    setup: StateSetup
    train_step: Callable
    eval_step: Callable
    state: TrainState
    host: HostState
    data: Batches
    eval_data: Batches | None = None
    eval_start: dict | None = None  # the evaluation data's state at its start
    process_local: bool = False
    fingerprint: str | None = None  # the run header's; saved with every checkpoint

    @property
    def schedule(self):
        """The learning rate's numbers, the train step's last argument."""
        return self.plan.recipe.schedule_values()

    def header(self, run_id: str, shares: dict) -> dict:
        settings = self.plan.settings
        return run_header(run_id=run_id, shares=shares, config=self.plan.config,
                          recipe=self.plan.recipe, model=settings.model,
                          objective=self.data.objective, batch_tokens=self.batch_tokens(),
                          sequence_length=self.data.sequence_length,
                          modalities=getattr(self.data, "modalities", {}),
                          micro_batches=settings.micro_batches, seed=settings.seed,
                          rng_impl=settings.rng_impl, mesh=dict(self.plan.mesh.shape),
                          vocab=dataclasses.asdict(self.plan.layout),
                          restart={"window_tokens": settings.restart.window_tokens,
                                   "lr_factor": settings.restart.lr_factor})

    def batch_tokens(self) -> int:
        """Token positions per optimizer step (all processes)."""
        rows = self.data.batch_size * (jax.process_count() if self.process_local else 1)
        return rows * self.data.sequence_length

    def place(self, batch: dict) -> dict:
        return place_batch(batch, self.plan.mesh, process_local=self.process_local)

    # -- checkpoints ---------------------------------------------------------------------------
    def extra(self) -> dict:
        return {"data": self.data.get_state(), "fingerprint": self.fingerprint,
                **self.host.get_state()}

    def load_extra(self, extra: dict, *, data: bool = True) -> None:
        if data:
            self.data.set_state(extra["data"])
        self.host.set_state(extra, rng_impl=self.plan.settings.rng_impl)

    def resume(self, ckpt: Checkpointer, log_path: str) -> None:
        """Continue from the newest loadable checkpoint (its data position, the non-finite
        count reset), the log cut back to it; or, with no checkpoint at all, save the fresh
        state as step 0 before anything is logged. Refuses checkpoints that all fail to load
        and checkpoints of another run (:mod:`mmlaws.train.runfolder`)."""
        where = ckpt.manager.directory
        found = ckpt.restore_latest(self.setup.shapes)
        if found is None and ckpt.steps():
            raise CheckpointError(f"{where}: none of the checkpoints (steps {ckpt.steps()}) "
                                  f"loads; stopped rather than train again into the same run "
                                  f"log: {runfolder.RESTART_HINT}")
        if found is None:
            runfolder.fresh_log(log_path)
            ckpt.save(0, self.state, self.extra(), force=True)
            ckpt.wait()  # no step is logged before a checkpoint to resume from exists
            return
        step, self.state, extra = found
        if extra.get("fingerprint", self.fingerprint) != self.fingerprint:
            raise ConfigError(f"{where}: the checkpoint at step {step} belongs to a run of "
                              f"another configuration (fingerprint {extra['fingerprint']}, this "
                              f"run's {self.fingerprint}): {runfolder.RESTART_HINT}")
        self.load_extra(extra)
        self.host.nonfinite_run = 0
        dropped = runfolder.cut_log(log_path, step)
        if jax.process_index() == 0:
            print(f"mmlaws: resuming from the checkpoint at step {step} in {where} ({dropped} "
                  f"later line(s) of the run log dropped)", flush=True)

    # -- the loop ------------------------------------------------------------------------------
    def loop(self, log: RunLog, ckpt: Checkpointer, settings: LoopSettings) -> dict:
        total = self.plan.recipe.total_steps
        bar = tqdm.tqdm(total=total, initial=int(host(self.state.step)), unit="step",
                        disable=not settings.progress or jax.process_index() != 0,
                        dynamic_ncols=True)
        with use_mesh(self.plan.mesh):
            while int(host(self.state.step)) < total:
                start = time.perf_counter()
                self.state, out = self.train_step(
                    self.state, self.place(next(self.data)), self.host.rng, self.schedule)
                out = host(out)
                step = int(host(self.state.step))
                record = self.step_record(out, step, time.perf_counter() - start)
                log.write(record)
                bar.update(step - bar.n)
                bar.set_postfix(loss=f"{record['loss']:.3f}",
                                tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                if settings.eval_every and step % settings.eval_every == 0 and step < total:
                    summary = self.evaluate(settings.eval_batches)  # logged before a save
                    log.write({"kind": "eval", "step": step, **summary})
                    bar.write(self.eval_line(step, summary))
                self.after_step(out, record, log, ckpt)
            bar.close()
            final = {"kind": "final", "step": int(host(self.state.step)),
                     **self.token_counts(), **self.evaluate(settings.eval_batches)}
        ckpt.save(int(host(self.state.step)), self.state, self.extra(), force=True)
        log.write(final)
        if jax.process_index() == 0:
            print(self.eval_line(final["step"], final, "final"))
            print(f"run log: {log.path}\ncheckpoints: {ckpt.manager.directory}")
        return final

    def token_counts(self) -> dict:
        tokens = self.host.tokens
        return {"tokens": float(tokens.sum()),
                "tokens_per_dataset": dict(zip(self.plan.names, tokens.tolist(), strict=True))}

    def step_record(self, out: dict, step: int, seconds: float) -> dict:
        finite = bool(out["finite"])
        if finite:
            self.host.tokens += out["dataset_tokens"]
        rate = metrics.throughput(float(out["dataset_tokens"].sum()), seconds,
                                  flops_per_token=flops_per_token(
                                      self.plan.config, self.data.sequence_length),
                                  num_devices=self.plan.mesh.size,
                                  device_kind=jax.devices()[0].device_kind)
        summary = metrics.summarize(out, self.plan.names)
        return {"kind": "step", "step": step, **self.token_counts(), **summary,
                "grad_norm": float(out["grad_norm"]), "lr": float(out["lr"]), **rate,
                "skipped": not finite}

    def after_step(self, out: dict, record: dict, log: RunLog, ckpt: Checkpointer) -> None:
        """Non-finite bookkeeping, spike events, the restart policy and periodic saves."""
        step, restart = record["step"], self.plan.settings.restart
        if not bool(out["finite"]):
            self.host.nonfinite_run += 1
            log.write({"kind": "event", "step": step, "type": "nonfinite_loss",
                       "consecutive": self.host.nonfinite_run})
            if self.host.nonfinite_run >= restart.max_nonfinite:
                self.stop_nonfinite(ckpt, step)
            return
        self.host.nonfinite_run = 0
        median = self.host.spikes.update(record["grad_norm"])
        if median is not None:
            log.write({"kind": "event", "step": step, "type": "grad_spike",
                       "grad_norm": record["grad_norm"], "median": median,
                       "count": self.host.spikes.count})
        if self.host.plateau.update(record["loss"], record["tokens"]):
            self.restart_from_checkpoint(ckpt, log, step)
            return
        ckpt.save(step, self.state, self.extra())

    def stop_nonfinite(self, ckpt: Checkpointer, step: int) -> None:
        """Stops without saving: a rerun resumes from the last checkpoint, saved after a finite
        step, with its data position, so it meets the same losses and stops at the same step."""
        ckpt.wait()
        raise NonFiniteLossError(
            f"{self.host.nonfinite_run} consecutive non-finite losses at step {step}; stopped. "
            f"The last checkpoint (step {max(ckpt.steps())}) holds the last finite state")

    def restart_from_checkpoint(self, ckpt: Checkpointer, log: RunLog, step: int) -> None:
        """§4.5: restore the last checkpoint, learning rate × lr_factor; the data moves on."""
        scale = float(host(self.state.lr_scale)) * self.plan.settings.restart.lr_factor
        found = ckpt.restore_latest(self.setup.shapes)
        if found is None:
            raise CheckpointError(f"restart policy at step {step}: no checkpoint in "
                                  f"{ckpt.manager.directory} loads")
        from_step, state, extra = found
        self.load_extra(extra, data=False)
        self.state = state.replace(lr_scale=jax.device_put(
            np.float32(scale), self.setup.shardings.lr_scale))
        self.host.plateau.reset(float(self.host.tokens.sum()))
        log.write({"kind": "event", "step": step, "type": "restart", "from_step": from_step,
                   "lr_scale": scale, "tokens": float(self.host.tokens.sum())})

    def evaluate(self, batches: int) -> dict:
        """Held-out losses over ``batches`` batches of ``eval_data`` (from its start)."""
        if self.eval_data is None or batches <= 0:
            return {"loss": float("nan"), "loss_per_dataset": {}, "loss_per_modality": {}}
        self.eval_data.set_state(self.eval_start)
        sums = None
        for _ in range(batches):
            batch = self.place(next(self.eval_data))
            sums = metrics.add_sums(sums, host(self.eval_step(self.state.params, batch)))
        summary = metrics.summarize(sums, self.plan.names)
        return {k: summary[k] for k in ("loss", "loss_per_dataset", "loss_per_modality")}

    @staticmethod
    def eval_line(step: int, summary: dict, what: str = "eval") -> str:
        parts = " ".join(f"{k}={v:.3f}" for k, v in summary["loss_per_dataset"].items())
        mods = " ".join(f"{k}={v:.3f}" for k, v in summary["loss_per_modality"].items())
        return f"{what} step {step}: loss={summary['loss']:.3f} | {parts} | {mods}"
