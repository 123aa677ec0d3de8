"""A stack: runs of one shape trained together as one program, with a leading run axis.

The train step of :mod:`mmlaws.train.step` is vmapped over the runs of a stack: parameters,
optimizer state, batch, dropout key and learning-rate schedule each carry a leading axis R,
so every run keeps its own data stream, budget, schedule, peak rate and seed, and a run trained
in a stack computes what it computes alone (up to the reassociation of floating-point sums
that batching may change).

**Who is in the stack at step s** is a pure function of the design: run r is active while
``start_r ≤ s < end_r`` (``start`` is 0, or the fork step of a warm-up–stable–decay branch;
``end`` its total steps) and it has not failed. The stack holds one slot per active run and no
more: when the composition changes the state is re-packed on the host (rows copied as host
arrays, so no program is compiled for it), continuing runs first in their order, then new
ones, a new branch as a copy of its trunk's row. A stack compiles one train step per number
of active runs it meets (two or three for warm-up–stable–decay designs: the trunks alone, and
the trunks with one cooldown branch each). A free slot would compute a dropped copy of an
active row: on two cores a step's time grows in proportion to its rows from width 16 up
(``benchmarks/stack_rows.py``: width 48, 18 ms a step for one row, 142 ms for eight), so
padding 6 runs to 8 slots costs a quarter of the compute, far more than a compile (3 s).

**Records.** Each run writes the JSONL run record of :mod:`mmlaws.laws.records` (step lines,
events, a final line with its held-out losses); a branch's record opens with its trunk's step
lines up to the fork and says which trunk it shares. Step outputs stay on the device and are
written every ``sync_every`` steps, so the host prepares the next batches while the device
computes.

**Checkpoints** (:mod:`mmlaws.study.stack_checkpoint`, one folder per stack) hold the stacked
state and, as JSON, the step, the slots, the host counters of every run and the failed runs. A
stack saves at step 0 and every ``checkpoint_every`` steps. On resume every run still active at
the checkpoint's step has its log cut back to that step
(:func:`mmlaws.laws.records.truncate_run_log`; a final line written after it goes too, and the
run is trained to its end again), and the log of a branch forked later is removed: the stack
then computes exactly what it computed before the kill, so a killed and resumed stack writes the
same lines as an uninterrupted one. Step lines are written every ``sync_every`` steps (counted
from step 0) and at every run's end.
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

from mmlaws.data.batch import DTYPES, FIELDS
from mmlaws.laws.records import truncate_run_log
from mmlaws.laws.spikes import SpikeDetector
from mmlaws.model import make_mesh
from mmlaws.study.stack_checkpoint import StackCheckpoints
from mmlaws.study.streams import Streams
from mmlaws.train import metrics
from mmlaws.train.header import run_header
from mmlaws.train.runlog import RunLog
from mmlaws.train.state import state_setup
from mmlaws.train.step import eval_sums, train_step


class Programs:
    """The compiled programs of one stack shape: the train step vmapped over ``capacity``
    slots (one per capacity) and the evaluation of one run on ``[E, B, T]`` batches.

    Each is compiled (:func:`jax.jit` ``.lower(...).compile()`` from abstract shapes) the first
    time it is needed and kept for every later stack of the same shape. Compilation stays on
    the calling thread: in CI the process aborted, rarely and under load, with a compile on a
    second thread beside the training thread's eager operations (and, later, with orbax's
    writer threads beside a stack's first save; see :mod:`mmlaws.study.stack_checkpoint`).
    """

    def __init__(self, run, num_datasets: int):
        self.run, self.K = run, num_datasets
        self.setup = state_setup(run.config, run.direction_recipe,
                                 make_mesh({"data": 1}, jax.devices()[:1]))
        step = functools.partial(train_step, config=run.config, optimizer=self.setup.optimizer,
                                 vocab=run.layout, num_datasets=num_datasets)
        self._vstep = jax.jit(jax.vmap(step), donate_argnums=0)
        self._eval = jax.jit(functools.partial(_evaluate, config=run.config, vocab=run.layout))
        self._compiled: dict = {}

    def step(self, capacity: int):
        if ("step", capacity) not in self._compiled:
            self._compiled["step", capacity] = self._compile_step(capacity)
        return self._compiled["step", capacity]

    def evaluate(self, params, batches):
        key = ("eval", *batches["inputs"].shape[:2])
        if key not in self._compiled:
            self._compiled[key] = self._compile_eval(*key[1:])
        return self._compiled[key](params, batches)

    def _compile_step(self, capacity: int):
        r = self.run
        lead = lambda s: jax.ShapeDtypeStruct((capacity, *s.shape), s.dtype)
        state = jax.tree.map(lead, self.setup.shapes)
        batch = {k: jax.ShapeDtypeStruct((capacity, r.batch_size, r.sequence_length), DTYPES[k])
                 for k in FIELDS}
        keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0, impl=r.rng_impl),
                                                       capacity))
        schedule = jax.tree.map(lambda v: jax.ShapeDtypeStruct((capacity,), np.float32),
                                r.recipe.schedule_values())
        return self._vstep.lower(state, batch, keys, schedule).compile()

    def _compile_eval(self, batches: int, rows: int):
        r = self.run
        params = self.setup.shapes.params
        data = {k: jax.ShapeDtypeStruct((batches, rows, r.sequence_length), DTYPES[k])
                for k in FIELDS}
        return self._eval.lower(params, data).compile()


def _evaluate(params, batches, *, config, vocab):
    """Summed eval sums of one run over ``[E, B, T]`` batches (a scan over E)."""
    one = functools.partial(eval_sums, config=config, vocab=vocab, num_datasets=1)
    first = jax.tree.map(lambda x: x[0], batches)
    zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(one, params, first))
    add = lambda acc, b: (jax.tree.map(jnp.add, acc, one(params, b)), None)
    return jax.lax.scan(add, zero, batches)[0]


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
    """Trains the runs of one stack (see the module docstring); ``train()`` returns their
    final lines (or failure reasons) by run id."""

    def __init__(self, runs: Sequence, streams: Streams, programs: Programs, *, runs_dir: str,
                 stack_dir: str, settings,
                 progress: Callable[[int, float], None] = lambda tokens, s: None):
        self.runs = list(runs)
        self.by_id = {r.run_id: r for r in self.runs}
        self.streams, self.settings, self.progress = streams, settings, progress
        self.runs_dir, self.stack_dir = pathlib.Path(runs_dir), pathlib.Path(stack_dir)
        self.programs, self.setup = programs, programs.setup
        self.hosts = {r.run_id: RunHost(len(r.shares), settings.spike_factor) for r in self.runs}
        self.failed: dict[str, str] = {}
        self.slots: list[str | None] = []
        self.logs: dict[str, RunLog] = {}
        self.outputs: list = []  # (step, slots, device outputs) not yet written
        self.clock = time.perf_counter()
        self._rngs, self._schedules = {}, {}
        self.ckpt = StackCheckpoints(self.stack_dir / "checkpoints", keep=2)

    # -- composition ---------------------------------------------------------------------------
    def active(self, step: int) -> list[str]:
        return [r.run_id for r in self.runs
                if r.start_step <= step < r.total_steps and r.run_id not in self.failed]

    @property
    def last_step(self) -> int:
        return max(r.total_steps for r in self.runs)

    def fresh_row(self, rid: str):
        """A run's initial state, as the single-run loop initialises it."""
        r = self.by_id[rid]
        init_rng, _ = jax.random.split(jax.random.key(r.seed, impl=r.rng_impl))
        return self.setup.init(init_rng)

    def place(self, state, active: list[str]):
        """The state with one slot per run of ``active``: continuing runs keep their rows (in
        their order), then a branch copies its trunk's row and host counters (so its record
        counts the trunk's tokens too) and a run starting at 0 is initialised. Rows move as
        host arrays (the state of a CPU-scale stack is a few MB)."""
        old = self.slots
        slots = [rid for rid in old if rid in active] + [rid for rid in active if rid not in old]
        host = jax.device_get(state) if state is not None else None
        rows = []
        for rid in slots:
            src = rid if rid in old else self.by_id[rid].trunk
            if src is not None and src in old:
                rows.append(jax.tree.map(lambda x, i=old.index(src): x[i], host))
                if src != rid:  # a branch carries on its trunk's counters (tokens, spikes)
                    self.hosts[rid].set_state(self.hosts[src].get_state())
            else:
                rows.append(jax.device_get(self.fresh_row(rid)))
        self.slots = slots
        return jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *rows))

    def filled(self) -> list[str]:
        """The run id computed in each slot (a free slot, found only in a checkpoint written
        when stacks were padded, repeats the first active run)."""
        fill = next(rid for rid in self.slots if rid is not None)
        return [rid or fill for rid in self.slots]

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, dict | str | None]:
        step, state = self.resume()
        current = [rid for rid in self.slots if rid]  # the composition the state holds
        self.open_logs(current, step)
        try:
            while step < self.last_step:
                active = self.active(step)
                if active != current:
                    self.flush()
                    if active:
                        self.open_logs(active, step)
                        state = self.place(state, active)
                    current = active
                if not active:
                    step += 1
                    continue
                ids = self.filled()
                state, out = self.programs.step(len(ids))(
                    state, self.batch(ids, step), self.rngs(ids), self.schedules(ids))
                step += 1
                self.outputs.append((step, list(self.slots), out))
                ending = [rid for rid in active if self.by_id[rid].total_steps == step]
                if ending or step % self.settings.sync_every == 0:
                    self.flush()
                if ending:
                    self.finish(state, ending, step)
                if self.settings.checkpoint_every and step % self.settings.checkpoint_every == 0:
                    self.save(step, state)
        finally:
            self.flush()
            for log in self.logs.values():
                log.close()
        return {rid: self.failed.get(rid) or self.final(rid) for rid in self.by_id}

    def batch(self, ids, step: int) -> dict:
        rows = [self.streams.stream(self.by_id[rid].stream_key).batch(step) for rid in ids]
        return {k: np.stack([b[k] for b in rows]) for k in rows[0]}

    def rngs(self, ids):
        """The runs' dropout keys, ``[R]`` (the second key of each seed, as the loop's)."""
        key = tuple(ids)
        if key not in self._rngs:
            keys = [jax.random.split(jax.random.key(r.seed, impl=r.rng_impl))[1]
                    for r in map(self.by_id.get, ids)]
            self._rngs = {key: jnp.stack(keys)}
        return self._rngs[key]

    def schedules(self, ids):
        """The runs' learning-rate schedules, stacked."""
        key = tuple(ids)
        if key not in self._schedules:
            values = [self.by_id[rid].recipe.schedule_values() for rid in ids]
            self._schedules = {key: jax.tree.map(lambda *xs: np.stack(xs), *values)}
        return self._schedules[key]

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

    def log_path(self, rid: str) -> pathlib.Path:
        return self.runs_dir / rid / f"{rid}.jsonl"

    def open_logs(self, ids, step: int) -> None:
        """Opens (or reopens) the logs of the active runs; a branch at its fork starts with its
        trunk's step lines."""
        for rid in ids:
            if rid in self.logs:
                continue
            r, path = self.by_id[rid], self.log_path(rid)
            copy = r.trunk and r.start_step == step and not path.exists()
            self.logs[rid] = RunLog(str(path.parent), self.header(rid),
                                    tracking=self.settings.tracking)
            if copy:
                for line in self.log_path(r.trunk).read_text().splitlines():
                    obj = json.loads(line)
                    if obj["kind"] in ("step", "event") and obj["step"] <= step:
                        self.logs[rid].write(obj)

    def flush(self) -> None:
        """Writes the step lines of the outputs computed so far."""
        if not self.outputs:
            return
        host = jax.device_get([o[2] for o in self.outputs])
        now = time.perf_counter()
        seconds = max(now - self.clock, 1e-9) / len(self.outputs)
        self.clock = now
        per_row = self.runs[0].batch_size * self.runs[0].sequence_length
        for (step, slots, _), out in zip(self.outputs, host, strict=True):
            live = [(i, rid) for i, rid in enumerate(slots) if rid and rid not in self.failed]
            for i, rid in live:
                self.step_record(rid, step, jax.tree.map(lambda x, i=i: x[i], out), seconds,
                                 len(live))
            self.progress(len(live) * per_row, seconds)
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

    def finish(self, state, ending, step: int) -> None:
        """Evaluates the runs that reached their budget and writes their final lines."""
        for rid in ending:
            if rid in self.failed:
                continue
            params = jax.tree.map(lambda x, i=self.slots.index(rid): x[i], state.params)
            log = self.logs.pop(rid)
            log.write({"kind": "final", "step": step, **self.token_counts(rid),
                       **self.held_out(rid, params)})
            log.close()

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
            sums = jax.device_get(self.programs.evaluate(params, ev.batches))
            per_ds[name] = float(sums["loss_sum"] / sums["weight_sum"])
            tokens[name] = float(sums["weight_sum"])
            total = metrics.add_sums(total, {k: v for k, v in sums.items()
                                             if not k.startswith("dataset_")})
        mods = metrics.summarize({**total, "dataset_loss_sum": np.zeros(0),
                                  "dataset_weight_sum": np.zeros(0)}, [])
        return {"loss": mods["loss"], "loss_per_dataset": per_ds,
                "loss_per_modality": mods["loss_per_modality"], "eval_tokens": tokens}

    def final(self, rid: str) -> dict | None:
        path = self.log_path(rid)
        if not path.exists():
            return None
        for line in reversed(path.read_text().splitlines()):
            obj = json.loads(line)
            if obj.get("kind") == "final":
                return obj
        return None

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, step: int, state) -> None:
        self.flush()  # the host counters must account for every step up to this one
        extra = {"step": step, "slots": self.slots, "failed": self.failed,
                 "hosts": {rid: h.get_state() for rid, h in self.hosts.items()}}
        self.ckpt.save(step, state, extra)

    def resume(self) -> tuple[int, object]:
        """(step, stacked state or None) from the newest loadable checkpoint, the logs of the
        runs still to train cut back to that step; without one, a fresh start at step 0 (saved
        at once, so that any later resume finds the design's composition)."""
        found = self.ckpt.restore_latest(self.shapes)
        step, state = 0, None
        if found is not None:
            step, state, extra = found
            self.slots, self.failed = list(extra["slots"]), dict(extra["failed"])
            for rid, s in extra["hosts"].items():
                self.hosts[rid].set_state(s)
        for r in self.runs:
            path = self.log_path(r.run_id)
            if r.total_steps <= step or r.run_id in self.failed or not path.exists():
                continue
            if found is None or r.start_step > step:
                path.unlink()  # trained again from its start (or forked again later)
            else:
                truncate_run_log(path, step)
        if found is None:
            state = self.place(None, self.active(0))
            self.save(0, state)
        return step, state

    def shapes(self, extra: dict):
        one = self.setup.shapes
        rows = len(extra["slots"])
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct((rows, *s.shape), s.dtype), one)


def stack_dir_name(runs) -> str:
    """A folder name for a stack from its runs (stable across reruns of the same design)."""
    import hashlib

    digest = hashlib.blake2b(",".join(sorted(r.run_id for r in runs)).encode(), digest_size=6)
    return f"{runs[0].model}-{digest.hexdigest()}"


def ensure_dir(path: str | os.PathLike) -> pathlib.Path:
    p = pathlib.Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
