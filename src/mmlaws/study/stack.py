"""A stack: runs of one shape trained together as one program, with a leading run axis.

The train step of :mod:`mmlaws.train.step` is vmapped over the runs of a stack: parameters,
optimizer state, batch, dropout key and learning-rate schedule each carry a leading axis R,
so every run keeps its own data stream, budget, schedule, peak rate and seed, and a run trained
in a stack computes what it computes alone (up to the reassociation of floating-point sums
that batching may change).

**Who is in the stack at step s** is a pure function of the design: run r is active while
``start_r ≤ s < end_r`` (``start`` is 0, or the fork step of a warm-up–stable–decay branch;
``end`` its total steps) and it has not failed. When that set changes the state is re-packed:
rows of continuing runs are kept, a new branch starts as a copy of its trunk's row. The stack
then runs a program compiled for the new R (one compilation per distinct R, cached).

**Records.** Each run writes the JSONL run record of :mod:`mmlaws.laws.records` (step lines,
events, a final line with its held-out losses); a branch's record opens with its trunk's step
lines up to the fork and says which trunk it shares. Step outputs stay on the device and are
written every ``sync_every`` steps, so the host prepares the next batches while the device
computes.

**Checkpoints** (orbax, one folder per stack) hold the stacked state and, as JSON, the step,
the host counters of every run, the failed runs and the final lines not yet written. A stack
saves when its composition changes and every ``checkpoint_every`` steps; on resume, every run
log is cut back to the checkpoint's step (:func:`mmlaws.laws.records.truncate_run_log`), so
a killed and resumed stack writes the same lines as an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mmlaws.laws.records import RunLogWriter, truncate_run_log
from mmlaws.laws.spikes import SpikeDetector
from mmlaws.model import make_mesh
from mmlaws.train import metrics
from mmlaws.train.checkpoint import Checkpointer
from mmlaws.train.header import run_header
from mmlaws.train.state import state_setup
from mmlaws.train.step import eval_sums, train_step

from mmlaws.study.streams import Streams


@functools.lru_cache(maxsize=16)
def _programs(config, direction_recipe, layout, num_datasets: int):
    """(vmapped jitted train step, jitted scan of eval sums, state setup) of one shape."""
    setup = state_setup(config, direction_recipe, make_mesh({"data": 1}, jax.devices()[:1]))
    step = functools.partial(train_step, config=config, optimizer=setup.optimizer, vocab=layout,
                             num_datasets=num_datasets)
    vstep = jax.jit(jax.vmap(step), donate_argnums=0)

    def evaluate(params, batches):  # batches: [E, B, T] per field -> summed eval sums
        one = functools.partial(eval_sums, config=config, vocab=layout, num_datasets=1)
        first = jax.tree.map(lambda x: x[0], batches)
        zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(one, params, first))
        add = lambda acc, b: (jax.tree.map(jnp.add, acc, one(params, b)), None)
        return jax.lax.scan(add, zero, batches)[0]

    return vstep, jax.jit(evaluate), setup


class RunHost:
    """A run's host-side counters: tokens per dataset, spikes, consecutive non-finite losses."""

    def __init__(self, num_datasets: int, spike_factor: float):
        self.tokens = np.zeros(num_datasets, np.float64)
        self.spikes = SpikeDetector(spike_factor)
        self.nonfinite = 0

    def get_state(self) -> dict:
        return {"tokens": self.tokens.tolist(), "spike_history": list(self.spikes.history),
                "spike_count": self.spikes.count, "nonfinite": self.nonfinite}

    def set_state(self, s: dict) -> None:
        self.tokens = np.asarray(s["tokens"], np.float64)
        self.spikes.history.clear()
        self.spikes.history.extend(s["spike_history"])
        self.spikes.count, self.nonfinite = int(s["spike_count"]), int(s["nonfinite"])


class StackTrainer:
    """Trains the runs of one stack (see the module docstring); ``train()`` returns the runs'
    final lines (or failure reasons) by run id."""

    def __init__(self, runs: Sequence, streams: Streams, *, runs_dir: str, stack_dir: str,
                 settings, progress: Callable[[int, float], None] = lambda tokens, flops: None):
        self.runs = list(runs)
        self.by_id = {r.run_id: r for r in self.runs}
        self.streams, self.settings, self.progress = streams, settings, progress
        self.runs_dir, self.stack_dir = pathlib.Path(runs_dir), pathlib.Path(stack_dir)
        first = self.runs[0]
        self.K = max(len(r.shares) for r in self.runs)
        self.vstep, self.evaluate, self.setup = _programs(
            first.config, first.direction_recipe, first.layout, self.K)
        self.hosts = {r.run_id: RunHost(len(r.shares), settings.spike_factor) for r in self.runs}
        self.failed: dict[str, str] = {}
        self.pending_finals: dict[str, dict] = {}
        self.logs: dict[str, RunLogWriter] = {}
        self.outputs: list = []  # (step, run ids, device outputs) not yet written
        self.ckpt = Checkpointer(self.stack_dir / "checkpoints", every=0, keep=2)

    # -- composition ---------------------------------------------------------------------------
    def active(self, step: int) -> list[str]:
        return [r.run_id for r in self.runs
                if r.start_step <= step < r.total_steps and r.run_id not in self.failed]

    @property
    def last_step(self) -> int:
        return max(r.total_steps for r in self.runs)

    def fresh_rows(self, ids: Sequence[str]):
        """Initial states of runs starting at step 0 (as the single-run loop initialises)."""
        rows = []
        for rid in ids:
            r = self.by_id[rid]
            init_rng, _ = jax.random.split(jax.random.key(r.seed, impl=r.rng_impl))
            rows.append(self.setup.init(init_rng))
        return rows

    def repack(self, state, old: list[str], new: list[str]):
        """The stacked state for ``new`` from the state of ``old``: rows kept, branches copied
        from their trunks, runs starting at 0 initialised."""
        if old == new and state is not None:
            return state
        rows = {}
        fresh = [rid for rid in new if self.by_id[rid].start_step == 0 and rid not in old]
        rows.update(zip(fresh, self.fresh_rows(fresh), strict=True))
        for rid in new:
            if rid in rows:
                continue
            src = rid if rid in old else self.by_id[rid].trunk
            i = old.index(src)
            rows[rid] = jax.tree.map(lambda x, i=i: x[i], state)
        return jax.tree.map(lambda *xs: jnp.stack(xs), *(rows[rid] for rid in new))

    def shapes(self, extra: dict):
        ids = self.active(int(extra["step"]))
        one = self.setup.shapes
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct((len(ids), *s.shape), s.dtype), one)

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, dict]:
        step, state = self.resume()
        ids = self.active(step)
        try:
            while step < self.last_step:
                new = self.active(step)
                if new != ids or state is None:
                    self.flush()
                    self.open_logs(new, step)
                    state, ids = self.repack(state, ids, new), new
                if not ids:
                    step += 1
                    continue
                state, out = self.vstep(state, self.batch(ids, step), self.rngs(ids),
                                        self.schedules(ids))
                step += 1
                self.outputs.append((step, ids, out, time.perf_counter()))
                ending = [rid for rid in ids if self.by_id[rid].total_steps == step]
                if ending or len(self.outputs) >= self.settings.sync_every:
                    self.flush()
                if ending:
                    self.finish(state, ids, ending, step)
                elif self.settings.checkpoint_every and step % self.settings.checkpoint_every == 0:
                    self.save(step, state)
        finally:
            self.flush()
            self.ckpt.close()
            for log in self.logs.values():
                log.close()
        return {rid: self.failed.get(rid) or self.final(rid) for rid in self.by_id}

    def batch(self, ids, step: int) -> dict:
        rows = [self.streams.stream(self.by_id[rid].stream_key).batch(step) for rid in ids]
        return {k: np.stack([b[k] for b in rows]) for k in rows[0]}

    def rngs(self, ids):
        keys = [jax.random.split(jax.random.key(self.by_id[rid].seed, impl=self.by_id[rid].rng_impl))[1]
                for rid in ids]
        return jnp.stack(keys)

    def schedules(self, ids):
        values = [self.by_id[rid].recipe.schedule_values() for rid in ids]
        return jax.tree.map(lambda *xs: np.stack(xs), *values)

    # -- records -------------------------------------------------------------------------------
    def header(self, rid: str) -> dict:
        r = self.by_id[rid]
        extra = {"seed": r.seed, "rng_impl": r.rng_impl, "engine": "stacked"}
        if r.trunk:
            extra.update(trunk=r.trunk, fork_step=r.start_step)
        return {**run_header(run_id=rid, shares=dict(r.shares), config=r.config, recipe=r.recipe,
                             model=r.model, objective=r.objective,
                             batch_tokens=r.batch_size * r.sequence_length,
                             sequence_length=r.sequence_length, modalities=r.modalities,
                             **extra), "role": r.role}

    def log_dir(self, rid: str) -> pathlib.Path:
        return self.runs_dir / rid

    def open_logs(self, ids, step: int) -> None:
        for rid in ids:
            if rid in self.logs:
                continue
            r, folder = self.by_id[rid], self.log_dir(rid)
            path = folder / f"{rid}.jsonl"
            if r.trunk and r.start_step == step and not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                self.logs[r.trunk].close()  # flushed: copy the trunk's lines up to the fork
                self.logs[r.trunk] = RunLogWriter(self.log_dir(r.trunk), self.header(r.trunk))
                self.logs[rid] = RunLogWriter(folder, self.header(rid))
                for line in (self.log_dir(r.trunk) / f"{r.trunk}.jsonl").read_text().splitlines():
                    obj = json.loads(line)
                    if obj["kind"] in ("step", "event") and obj["step"] <= step:
                        self.logs[rid].write(obj)
                continue
            self.logs[rid] = RunLogWriter(folder, self.header(rid))

    def flush(self) -> None:
        """Writes the step lines of the outputs computed so far."""
        if not self.outputs:
            return
        host = jax.device_get([o[2] for o in self.outputs])
        t_prev = getattr(self, "_t_prev", None) or self.outputs[0][3]
        seconds = max(self.outputs[-1][3] - t_prev, 1e-9) / len(self.outputs)
        for (step, ids, _, _), out in zip(self.outputs, host, strict=True):
            for i, rid in enumerate(ids):
                if rid in self.failed:
                    continue
                self.step_record(rid, step, jax.tree.map(lambda x, i=i: x[i], out), seconds,
                                 len(ids))
            self.progress(len(ids) * self.runs[0].batch_size * self.runs[0].sequence_length,
                          seconds)
        self._t_prev = self.outputs[-1][3]
        self.outputs = []

    def step_record(self, rid: str, step: int, out: dict, seconds: float, width: int) -> None:
        r, host, log = self.by_id[rid], self.hosts[rid], self.logs[rid]
        k = len(r.shares)
        names = [n for n, _ in r.shares]
        sums = {key: (v[:k] if key.startswith("dataset_") else v) for key, v in out.items()}
        finite = bool(out["finite"])
        if finite:
            host.tokens += sums["dataset_tokens"]
        tokens = float(sums["dataset_tokens"].sum())
        log.write({"kind": "step", "step": step, "tokens": float(host.tokens.sum()),
                   "tokens_per_dataset": dict(zip(names, host.tokens.tolist(), strict=True)),
                   **metrics.summarize(sums, names), "grad_norm": float(out["grad_norm"]),
                   "lr": float(out["lr"]), "tokens_per_s": tokens / seconds,
                   "stack_size": width, "skipped": not finite})
        if not finite:
            host.nonfinite += 1
            log.write({"kind": "event", "step": step, "type": "nonfinite_loss",
                       "consecutive": host.nonfinite})
            if host.nonfinite >= self.settings.max_nonfinite:
                reason = f"{host.nonfinite} consecutive non-finite losses at step {step}"
                self.failed[rid] = reason
                log.write({"kind": "event", "step": step, "type": "failed", "reason": reason})
            return
        host.nonfinite = 0
        median = host.spikes.update(float(out["grad_norm"]))
        if median is not None:
            log.write({"kind": "event", "step": step, "type": "grad_spike",
                       "grad_norm": float(out["grad_norm"]), "median": median,
                       "count": host.spikes.count})

    def finish(self, state, ids, ending, step: int) -> None:
        """Evaluates the runs that reached their budget, saves, then writes their final lines."""
        for rid in ending:
            if rid in self.failed:
                continue
            params = jax.tree.map(lambda x, i=ids.index(rid): x[i], state.params)
            self.pending_finals[rid] = {"kind": "final", "step": step,
                                        **self.token_counts(rid), **self.held_out(rid, params)}
        self.save(step, state if self.active(step) else None)
        self.write_finals()

    def token_counts(self, rid: str) -> dict:
        names = [n for n, _ in self.by_id[rid].shares]
        tokens = self.hosts[rid].tokens
        return {"tokens": float(tokens.sum()),
                "tokens_per_dataset": dict(zip(names, tokens.tolist(), strict=True))}

    def held_out(self, rid: str, params) -> dict:
        """Losses on the evaluation sets of the run's datasets, overall token-weighted."""
        r, total, per_ds, tokens = self.by_id[rid], None, {}, {}
        for name, _ in r.shares:
            ev = self.streams.eval_set(name, r.sequence_length, r.objective)
            sums = jax.device_get(self.evaluate(params, ev.batches))
            per_ds[name] = float(sums["loss_sum"] / sums["weight_sum"])
            tokens[name] = float(sums["weight_sum"])
            total = metrics.add_sums(total, {k: v for k, v in sums.items()
                                             if not k.startswith("dataset_")})
        mods = metrics.summarize({**total, "dataset_loss_sum": np.zeros(0),
                                  "dataset_weight_sum": np.zeros(0)}, [])
        return {"loss": mods["loss"], "loss_per_dataset": per_ds,
                "loss_per_modality": mods["loss_per_modality"], "eval_tokens": tokens}

    def final(self, rid: str) -> dict | None:
        path = self.log_dir(rid) / f"{rid}.jsonl"
        if not path.exists():
            return None
        for line in reversed(path.read_text().splitlines()):
            obj = json.loads(line)
            if obj.get("kind") == "final":
                return obj
        return None

    def write_finals(self) -> None:
        for rid, line in list(self.pending_finals.items()):
            if self.final(rid) is None:
                log = self.logs.pop(rid, None) or RunLogWriter(self.log_dir(rid), self.header(rid))
                log.write(line)
                log.close()
            del self.pending_finals[rid]

    # -- checkpoints ---------------------------------------------------------------------------
    def extra(self, step: int) -> dict:
        return {"step": step, "failed": self.failed, "pending_finals": self.pending_finals,
                "hosts": {rid: h.get_state() for rid, h in self.hosts.items()}}

    def save(self, step: int, state) -> None:
        if state is None:  # nothing left to train: an empty marker state
            state = {"done": np.zeros(())}
        self.ckpt.save(step, state, self.extra(step), force=True)
        self.ckpt.wait()

    def resume(self) -> tuple[int, object]:
        """(step, stacked state or None) from the newest loadable checkpoint; every log of a run
        still to train is cut back to that step (a branch not yet forked loses its log)."""
        found = self.ckpt.restore_latest(self.restore_shapes)
        step, state = 0, None
        if found is not None:
            step, state, extra = found
            self.failed = dict(extra["failed"])
            self.pending_finals = dict(extra["pending_finals"])
            for rid, s in extra["hosts"].items():
                self.hosts[rid].set_state(s)
            if not self.active(step):
                state = None
        self.write_finals()
        for r in self.runs:
            path = self.log_dir(r.run_id) / f"{r.run_id}.jsonl"
            if r.total_steps <= step or r.run_id in self.failed or not path.exists():
                continue
            if r.start_step > step or (found is None and r.start_step > 0):
                path.unlink()
            elif found is None:
                path.unlink()  # no checkpoint: the run starts again from scratch
            else:
                truncate_run_log(path, step)
        return step, state

    def restore_shapes(self, extra: dict):
        if not self.active(int(extra["step"])):
            return {"done": jax.ShapeDtypeStruct((), np.float64)}
        self.failed = dict(extra["failed"])
        return self.shapes(extra)


def stack_dir_name(runs) -> str:
    """A folder name for a stack from its runs (stable across reruns of the same design)."""
    import hashlib

    digest = hashlib.blake2b(",".join(sorted(r.run_id for r in runs)).encode(), digest_size=6)
    return f"{runs[0].model}-{digest.hexdigest()}"


def ensure_dir(path: str | os.PathLike) -> pathlib.Path:
    p = pathlib.Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
