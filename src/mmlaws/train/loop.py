"""The training loop: ``train(...)``, a keyword-only function that gin configures.

Outputs under ``output_dir``: ``<run_id>.jsonl`` (the run record, see
:mod:`mmlaws.laws.records`), ``checkpoints/`` (orbax) and ``wandb/`` (offline mirror).
Running the same command again resumes from the newest loadable checkpoint.

The ``data`` and ``eval_data`` iterators yield the batch dicts of
:mod:`mmlaws.train.synthetic` (or ``mmlaws.data.mixture``) and expose ``get_state()`` and
``set_state()``. ``shares`` (name → token share, in the order of ``dataset_ids``) defaults to
``data.shares``. With ``process_local_batches`` each process's iterator yields only its own
rows; otherwise every process yields the whole batch and keeps its rows.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np
import tqdm

from mmlaws.data import vocab as vocab_lib
from mmlaws.errors import ConfigError
from mmlaws.model import PRESETS, make_mesh, non_embedding_params, use_mesh
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.train import metrics
from mmlaws.train.checkpoint import Checkpointer, CheckpointError
from mmlaws.train.distributed import host, initialize_distributed, place_batch
from mmlaws.train.optimizer import Recipe, peak_learning_rate
from mmlaws.train.restart import NonFiniteLossError, PlateauWatch, RestartPolicy
from mmlaws.train.runlog import RunLog
from mmlaws.train.state import abstract_state, init_state, state_shardings
from mmlaws.train.step import jit_steps
from mmlaws.train.synthetic import resolve_vocab


def train(*, output_dir: str, data, total_steps: int, eval_data=None, model: str = "tiny",
          model_overrides: dict | None = None, vocab="tiny", micro_batches: int = 1,
          peak_lr: float | None = None, warmup_steps: int = 500, mesh_shape: dict | None = None,
          seed: int = 0, run_id: str | None = None, checkpoint_every: int = 100,
          keep_checkpoints: int = 3, eval_every: int = 0, eval_batches: int = 2,
          restart: RestartPolicy = RestartPolicy(), spike_factor: float = 5.0,
          use_wandb: bool = True, progress: bool = True,
          rng_impl: str = "threefry2x32", shares: dict | None = None,
          process_local_batches: bool = False) -> dict:
    """Train ``model`` (a :data:`PRESETS` name) for ``total_steps`` updates; returns the final
    evaluation record. ``mesh_shape`` maps ``data``/``fsdp``/``tensor`` to sizes, one may be
    −1 (default ``{"data": -1}``). ``peak_lr`` defaults to the preset's Table 2 value.
    ``rng_impl`` picks the PRNG behind dropout: ``threefry2x32`` (default; the same bits
    however the arrays are sharded) or ``rbg`` (XLA's RngBitGenerator, much cheaper on CPU/GPU,
    but its bits may change with the sharding)."""
    initialize_distributed()
    if model not in PRESETS:
        raise ConfigError(f"model must be one of {sorted(PRESETS)}, got {model!r}")
    layout = resolve_vocab(vocab)
    if getattr(data, "layout", layout) != layout:  # data that names its layout must match
        raise ConfigError(f"data uses vocabulary layout {data.layout}, the model {layout}")
    config = PRESETS[model].replace(**{"vocab_size": layout.size, **(model_overrides or {})})
    recipe = Recipe(peak_learning_rate(model, peak_lr), total_steps, warmup_steps=warmup_steps)
    run = Run(config=config, recipe=recipe, vocab=layout, data=data, eval_data=eval_data,
              mesh=make_mesh(mesh_shape or {"data": -1}), micro_batches=micro_batches,
              output_dir=output_dir, run_id=run_id or os.path.basename(os.path.abspath(output_dir)),
              seed=seed, restart=restart, spike_factor=spike_factor, rng_impl=rng_impl,
              shares=dict(shares or data.shares), process_local=process_local_batches)
    header = run.header(model)
    log = RunLog(output_dir, header, use_wandb=use_wandb)
    ckpt = Checkpointer(os.path.join(output_dir, "checkpoints"), every=checkpoint_every,
                        keep=keep_checkpoints)
    try:
        return run.loop(log, ckpt, eval_every=eval_every, eval_batches=eval_batches,
                        progress=progress)
    finally:
        ckpt.close()
        log.close()


@dataclasses.dataclass
class Run:
    """One run's pieces and host-side counters (saved with every checkpoint)."""

    config: object
    recipe: Recipe
    vocab: vocab_lib.VocabLayout
    data: object
    eval_data: object
    mesh: object
    micro_batches: int
    output_dir: str
    run_id: str
    seed: int
    restart: RestartPolicy
    spike_factor: float
    rng_impl: str
    shares: dict
    process_local: bool

    def __post_init__(self):
        self.names = list(self.shares)
        self.eval_start = None if self.eval_data is None else self.eval_data.get_state()
        self.tokens = np.zeros(len(self.names), np.float64)
        self.plateau = PlateauWatch(self.restart.window_tokens)
        self.spikes = metrics.SpikeDetector(self.spike_factor)
        self.nonfinite_run = 0
        init_rng, self.rng = jax.random.split(jax.random.key(self.seed, impl=self.rng_impl))
        self.state_sh = state_shardings(self.config, self.recipe, self.mesh)
        self.abstract = abstract_state(self.config, self.recipe, self.mesh)
        self.train_step, self.eval_step = jit_steps(
            self.config, self.recipe, self.mesh, vocab=self.vocab,
            num_datasets=len(self.names), micro_batches=self.micro_batches)
        self.state = init_state(self.config, self.recipe, init_rng, self.mesh)
        self.flops = flops_per_token(self.config)

    def header(self, model: str) -> dict:
        return {"run_id": self.run_id, "datasets": self.shares,
                "modalities": dict(getattr(self.data, "modalities", {})),
                "N": non_embedding_params(self.config), "N_convention": "non_embedding",
                "objective": getattr(self.data, "objective", "cm3"),
                "config": {"model": model, **dataclasses.asdict(self.recipe),
                           "micro_batches": self.micro_batches, "seed": self.seed,
                           "rng_impl": self.rng_impl,
                           "mesh": dict(self.mesh.shape), "vocab_size": self.config.vocab_size,
                           "batch_tokens": self.batch_tokens()}}

    def batch_tokens(self) -> int | None:
        """Token positions per optimizer step (all processes), when the data source says its
        rows and length (``batch_size`` and ``seq_len`` or ``sequence_length``)."""
        rows = getattr(self.data, "batch_size", None)
        length = getattr(self.data, "seq_len", None) or getattr(self.data, "sequence_length", None)
        if not (isinstance(rows, int) and isinstance(length, int)):
            return None
        return rows * length * (jax.process_count() if self.process_local else 1)

    def place(self, batch: dict) -> dict:
        return place_batch(batch, self.mesh, process_local=self.process_local)

    # -- host state ---------------------------------------------------------------------------
    def extra(self) -> dict:
        return {"data": self.data.get_state(), "tokens": self.tokens.tolist(),
                "rng": np.asarray(jax.random.key_data(self.rng)).tolist(),
                "plateau": self.plateau.get_state(), "spike_history": list(self.spikes.history),
                "spike_count": self.spikes.count, "nonfinite_run": self.nonfinite_run}

    def load_extra(self, extra: dict, *, data: bool = True) -> None:
        if data:
            self.data.set_state(extra["data"])
        self.tokens = np.asarray(extra["tokens"], np.float64)
        self.rng = jax.random.wrap_key_data(np.asarray(extra["rng"], np.uint32),
                                            impl=self.rng_impl)
        self.plateau.set_state(extra["plateau"])
        self.spikes.history.clear()
        self.spikes.history.extend(extra["spike_history"])
        self.spikes.count = int(extra["spike_count"])
        self.nonfinite_run = int(extra["nonfinite_run"])

    def resume(self, ckpt: Checkpointer, log: RunLog) -> None:
        """Continue from the newest loadable checkpoint, or save the fresh state as step 0."""
        found = ckpt.restore_latest(self.abstract)
        if found is None:
            ckpt.save(0, self.state, self.extra(), force=True)
            return
        step, self.state, extra = found
        self.load_extra(extra)
        log.write({"kind": "event", "step": step, "type": "resume",
                   "tokens": float(self.tokens.sum())})

    # -- the loop -----------------------------------------------------------------------------
    def loop(self, log: RunLog, ckpt: Checkpointer, *, eval_every: int, eval_batches: int,
             progress: bool) -> dict:
        self.resume(ckpt, log)
        total = self.recipe.total_steps
        bar = tqdm.tqdm(total=total, initial=int(host(self.state.step)), unit="step",
                        disable=not progress or jax.process_index() != 0, dynamic_ncols=True)
        with use_mesh(self.mesh):
            while int(host(self.state.step)) < total:
                start = time.perf_counter()
                self.state, out = self.train_step(
                    self.state, self.place(next(self.data)), self.rng)
                out = host(out)
                step = int(host(self.state.step))
                record = self.step_record(out, step, time.perf_counter() - start)
                log.write(record)
                bar.update(step - bar.n)
                bar.set_postfix(loss=f"{record['loss']:.3f}",
                                tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                self.after_step(out, record, log, ckpt)
                if eval_every and step % eval_every == 0 and step < total:
                    summary = self.evaluate(eval_batches)
                    log.write({"kind": "eval", "step": step, **summary})
                    bar.write(self.eval_line(step, summary))
            bar.close()
            final = {"kind": "final", "step": int(host(self.state.step)),
                     "tokens": float(self.tokens.sum()),
                     "tokens_per_dataset": dict(zip(self.names, self.tokens.tolist(),
                                                    strict=True)),
                     **self.evaluate(eval_batches)}
        ckpt.save(int(host(self.state.step)), self.state, self.extra(), force=True)
        log.write(final)
        if jax.process_index() == 0:
            print(self.eval_line(final["step"], final, "final"))
            print(f"run log: {log.path}\ncheckpoints: {ckpt.manager.directory}")
        return final

    def step_record(self, out: dict, step: int, seconds: float) -> dict:
        finite = bool(out["finite"])
        if finite:
            self.tokens += out["dataset_tokens"]
        rate = metrics.throughput(float(out["dataset_tokens"].sum()), seconds,
                                  flops_per_token=self.flops, num_devices=self.mesh.size,
                                  device_kind=jax.devices()[0].device_kind)
        summary = metrics.summarize(out, self.names)
        return {"kind": "step", "step": step, "tokens": float(self.tokens.sum()),
                "tokens_per_dataset": dict(zip(self.names, self.tokens.tolist(), strict=True)),
                **summary, "grad_norm": float(out["grad_norm"]), "lr": float(out["lr"]),
                **rate, "skipped": not finite}

    def after_step(self, out: dict, record: dict, log: RunLog, ckpt: Checkpointer) -> None:
        """Non-finite bookkeeping, spike events, the restart policy and periodic saves."""
        step = record["step"]
        if not bool(out["finite"]):
            self.nonfinite_run += 1
            log.write({"kind": "event", "step": step, "type": "nonfinite_loss",
                       "consecutive": self.nonfinite_run})
            if self.nonfinite_run >= self.restart.max_nonfinite:
                self.stop_nonfinite(ckpt, step)
            return
        self.nonfinite_run = 0
        median = self.spikes.update(record["grad_norm"])
        if median is not None:
            log.write({"kind": "event", "step": step, "type": "grad_spike",
                       "grad_norm": record["grad_norm"], "median": median,
                       "count": self.spikes.count})
        if self.plateau.update(record["loss"], record["tokens"]):
            self.restart_from_checkpoint(ckpt, log, step)
            return
        ckpt.save(step, self.state, self.extra())

    def stop_nonfinite(self, ckpt: Checkpointer, step: int) -> None:
        ckpt.save(step, self.state, self.extra(), force=True)  # skipped updates: state is good
        ckpt.wait()
        raise NonFiniteLossError(
            f"{self.nonfinite_run} consecutive non-finite losses at step {step}; stopped. The "
            f"last checkpoint (step {max(ckpt.steps())}) holds the last finite state")

    def restart_from_checkpoint(self, ckpt: Checkpointer, log: RunLog, step: int) -> None:
        """§4.5: restore the last checkpoint, learning rate × lr_factor; the data moves on."""
        scale = float(host(self.state.lr_scale)) * self.restart.lr_factor
        found = ckpt.restore_latest(self.abstract)
        if found is None:
            raise CheckpointError(f"restart policy at step {step}: no checkpoint in "
                                  f"{ckpt.manager.directory} loads")
        from_step, state, extra = found
        self.load_extra(extra, data=False)
        self.state = state.replace(lr_scale=jax.device_put(
            np.float32(scale), self.state_sh.lr_scale))
        self.plateau.reset(float(self.tokens.sum()))
        log.write({"kind": "event", "step": step, "type": "restart", "from_step": from_step,
                   "lr_scale": scale, "tokens": float(self.tokens.sum())})

    def evaluate(self, batches: int) -> dict:
        """Held-out losses over ``batches`` batches of ``eval_data`` (from its start)."""
        if self.eval_data is None or batches <= 0:
            return {"loss": float("nan"), "loss_per_dataset": {}, "loss_per_modality": {}}
        self.eval_data.set_state(self.eval_start)
        sums = None
        for _ in range(batches):
            batch = self.place(next(self.eval_data))
            sums = metrics.add_sums(sums, host(self.eval_step(self.state.params, batch)))
        summary = metrics.summarize(sums, self.names)
        return {k: summary[k] for k in ("loss", "loss_per_dataset", "loss_per_modality")}

    @staticmethod
    def eval_line(step: int, summary: dict, what: str = "eval") -> str:
        parts = " ".join(f"{k}={v:.3f}" for k, v in summary["loss_per_dataset"].items())
        mods = " ".join(f"{k}={v:.3f}" for k, v in summary["loss_per_modality"].items())
        return f"{what} step {step}: loss={summary['loss']:.3f} | {parts} | {mods}"
