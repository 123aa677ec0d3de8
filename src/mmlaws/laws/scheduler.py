"""The slot scheduler of the multi-start solvers: many starts through a few slots, in one loop.

``k`` slots step together (one vmapped solver step per loop iteration). A slot whose start has
ended writes its result to that start's row and takes the next pending start; once no start is
pending, the live slots are compacted into the next, smaller pool (``pools``, e.g. ``k → k/8 →
k/64``), so that the few slow starts at the end do not carry a full pool's cost. Each slot's
start runs exactly as it would alone: the scheduler only decides which start a slot holds.

A solver plugs in three functions of a pool of ``k`` slots (every leaf has a leading slot axis):

* ``init(x0 [k, P], args) -> state``: slots about to run from the start points ``x0``;
* ``step(state, args) -> (state, status [k])``: one step; ``status`` ≥ 0 ends a slot's start;
* ``report(state) -> {name: [k, ...]}``: what an ended start writes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Init = Callable[..., object]
Step = Callable[..., tuple[object, jax.Array]]
Report = Callable[[object], dict]
NOT_ENDED = -1


class Pool(NamedTuple):
    """The loop's carry: the slots, the starts they hold, and the results written so far."""

    state: object  # the solver's slot state, leaves [k, ...]
    args: tuple  # the slots' arguments ([k, ...] leaves when batched, else shared)
    start: jax.Array  # [k] index of the start each slot holds; S once the slot is idle
    pending: jax.Array  # [] index of the next start not yet given to a slot
    results: dict  # name -> [S, ...] results of the starts that have ended


def select(mask, new, old):
    """Per-slot choice between two pytrees whose leaves have a leading slot axis."""
    return jax.tree.map(lambda n, o: jnp.where(column(mask, o), n, o), new, old)


def column(mask, like):
    """``mask`` [k] shaped to broadcast against ``like`` [k, ...]."""
    return mask.reshape((-1,) + (1,) * (like.ndim - 1))


def run(starts, args, *, init: Init, step: Step, report: Report, pools: tuple[int, ...],
        batched_args: bool) -> dict:
    """Runs every row of ``starts`` [S, P] to its end; returns ``report``'s fields for all
    starts as [S, ...] arrays, plus ``status`` [S]. With ``batched_args`` every leaf of
    ``args`` has a leading axis S and a slot carries the rows of the start it holds."""
    num_starts = starts.shape[0]
    first = jnp.arange(pools[0])
    slot_args = _rows(args, first) if batched_args else args
    state = init(starts[:pools[0]], slot_args)
    fields = jax.eval_shape(report, state)
    results = {name: jnp.zeros((num_starts,) + f.shape[1:], f.dtype) for name, f in fields.items()}
    results["status"] = jnp.full((num_starts,), NOT_ENDED, jnp.int32)  # every start ends
    pool = Pool(state, slot_args, first, jnp.asarray(pools[0]), results)
    for i, size in enumerate(pools):
        if i:
            pool = _compact(pool, size, num_starts, batched_args)
        live_after = pools[i + 1] if i + 1 < len(pools) else 0
        pool = _drain(pool, starts, args, live_after, init, step, report, batched_args)
    return pool.results


def _rows(args, idx):
    return jax.tree.map(lambda a: a[idx], args)


def _compact(pool: Pool, size: int, num_starts: int, batched_args: bool) -> Pool:
    """The live slots (at most ``size``; no start is pending) moved into a pool of ``size``."""
    order = jnp.argsort(pool.start >= num_starts, stable=True)[:size]
    return pool._replace(state=_rows(pool.state, order),
                         args=_rows(pool.args, order) if batched_args else pool.args,
                         start=pool.start[order])


def _drain(pool: Pool, starts, args, live_after: int, init, step, report, batched_args) -> Pool:
    """Steps the pool until no start is pending and at most ``live_after`` slots are live."""
    num_starts = starts.shape[0]

    def body(pool: Pool) -> Pool:
        state, status = step(pool.state, pool.args)
        ended = (pool.start < num_starts) & (status >= 0)
        row = jnp.where(ended, pool.start, num_starts)  # rows out of range are dropped
        out = {**report(state), "status": status}
        results = {k: pool.results[k].at[row].set(v, mode="drop") for k, v in out.items()}
        start = jnp.where(ended, pool.pending + jnp.cumsum(ended) - 1, pool.start)
        start = jnp.where(ended & (start >= num_starts), num_starts, start)
        refill = ended & (start < num_starts)
        take = jnp.minimum(start, num_starts - 1)
        state = select(refill, init(starts[take], _rows(args, take) if batched_args else args),
                       state)
        slot_args = (select(refill, _rows(args, take), pool.args) if batched_args
                     else pool.args)
        return Pool(state, slot_args, start, pool.pending + jnp.sum(ended), results)

    def cond(pool: Pool):
        return (pool.pending < num_starts) | (jnp.sum(pool.start < num_starts) > live_after)

    return jax.lax.while_loop(cond, body, pool)
