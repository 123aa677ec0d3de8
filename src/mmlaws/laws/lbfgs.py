"""Batched multi-start L-BFGS as a flat state machine: one gradient evaluation per slot per step.

Why not vmap a textbook L-BFGS: under ``vmap`` its nested line-search loop runs until the slowest
of all starts has finished, so every start pays for the worst start's trials, and starts that
finish early sit idle until the slowest one is done. Here every *trial point* is one step of a
single loop. Each slot is at some point of its own line search; a step evaluates the objective
and gradient at every slot's trial point at once, then each slot either accepts the point (an
L-BFGS iteration ends and a new direction is formed) or picks its next trial step. Which start
a slot holds is the scheduler's business (:mod:`mmlaws.laws.scheduler`): a slot whose start has
ended is refilled with the next pending start, and the live slots are compacted into smaller
pools (``k → k/8 → k/64``) once the queue is empty.

The algorithm per start is the standard one (Nocedal & Wright 2006, Alg. 7.5 with the two-loop
recursion of Alg. 7.4), with scipy L-BFGS-B's choices where there are several:

* first step (empty memory) of unit length, ``t = min(1, 1/‖g‖)``; afterwards ``t = 1``;
* a weak-Wolfe line search (Armijo ``c1 = 1e-4``, curvature ``c2 = 0.9``): safeguarded
  quadratic interpolation when the Armijo test fails, ×4 extrapolation (or bisection once
  bracketed) when the curvature test fails; after ``maxls`` trials the best Armijo point is taken;
* a correction pair is stored only when ``sᵀy > ε·yᵀy`` (curvature positive), so the inverse
  Hessian stays positive definite on Huber losses that are piecewise nearly linear;
* a direction that is not a descent direction, or a line search without any Armijo point,
  clears the memory and retries along the steepest descent; a failure from empty memory ends
  the start with status ``LINESEARCH_FAILED``.

Status codes (:data:`STATUS`): converged on the gradient (``max_i |g_i| ≤ tol``, scipy's
``pgtol``) or on the reduction of one iteration (``f_k − f_{k+1} ≤ ftol·max(|f_k|, |f_{k+1}|, 1)``,
scipy's ``factr·eps``); iteration limit; line search failed; non-finite objective at the start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mmlaws.laws import scheduler

GTOL, FTOL, MAXITER, LINESEARCH_FAILED, NONFINITE = 0, 1, 2, 3, 4
STATUS = {GTOL: "converged (gradient)", FTOL: "converged (relative reduction)",
          MAXITER: "iteration limit", LINESEARCH_FAILED: "line search failed",
          NONFINITE: "non-finite objective at the start"}
C1, C2 = 1e-4, 0.9
EXTRAPOLATE, TMAX = 4.0, 1e10
EPS = 2.2e-16


class Memory(NamedTuple):
    """Each slot's last ``m`` correction pairs, oldest first (zeros where a pair is empty)."""

    s: jax.Array  # [k, m, P] steps x_{i+1} − x_i
    y: jax.Array  # [k, m, P] gradient changes g_{i+1} − g_i
    rho: jax.Array  # [k, m] 1 / sᵀy, 0 for an empty pair
    gamma: jax.Array  # [k] scale of the initial inverse Hessian, sᵀy / yᵀy of the newest pair


class Search(NamedTuple):
    """Each slot's line search along its direction: the trial step and the bracket around it."""

    direction: jax.Array  # [k, P] d
    slope: jax.Array  # [k] dᵀg at the base point (negative: a descent direction)
    step: jax.Array  # [k] the trial step t: the next point evaluated is x + t·d
    lo_step: jax.Array  # [k] largest step known to pass the Armijo test (0: the base point)
    lo_value: jax.Array  # [k] objective at lo_step
    lo_slope: jax.Array  # [k] dᵀg at lo_step
    lo_grad: jax.Array  # [k, P] gradient at lo_step
    hi_step: jax.Array  # [k] smallest step that failed the Armijo test (inf: none yet)
    trials: jax.Array  # [k] int, trial points of this search so far


class Slots(NamedTuple):
    """The state of a pool of k slots, each running one start."""

    x: jax.Array  # [k, P] base point of the current iteration
    f: jax.Array  # [k] objective at x
    g: jax.Array  # [k, P] gradient at x
    search: Search
    memory: Memory
    iterations: jax.Array  # [k] int, accepted L-BFGS iterations
    evaluations: jax.Array  # [k] int, objective-and-gradient evaluations
    at_start: jax.Array  # [k] bool: the next evaluation is the start point itself


class Trial(NamedTuple):
    """The objective at every slot's trial point x + t·d."""

    x: jax.Array  # [k, P]
    f: jax.Array  # [k], inf where not finite
    g: jax.Array  # [k, P]
    slope: jax.Array  # [k] dᵀg there (0 where not finite)
    finite: jax.Array  # [k] bool


def _dot(u, v):
    return jnp.sum(u * v, -1)


def _two_loop(g, memory: Memory):
    """−H·g for gradients g [k, P] (Nocedal & Wright Alg. 7.4)."""
    S, Y, rho, gamma = memory
    m = S.shape[1]
    q, alphas = g, []
    for i in reversed(range(m)):
        a = rho[:, i] * jnp.sum(S[:, i] * q, -1)
        q = q - a[:, None] * Y[:, i]
        alphas.append(a)
    r = gamma[:, None] * q
    for i in range(m):
        b = rho[:, i] * jnp.sum(Y[:, i] * r, -1)
        r = r + S[:, i] * (alphas[m - 1 - i] - b)[:, None]
    return -r


def _forget(memory: Memory, keep) -> Memory:
    """The memory of the slots where ``keep`` [k]; an empty one elsewhere."""
    S, Y, rho, gamma = memory
    return Memory(jnp.where(scheduler.column(keep, S), S, 0.0),
                  jnp.where(scheduler.column(keep, Y), Y, 0.0),
                  jnp.where(keep[:, None], rho, 0.0), jnp.where(keep, gamma, 1.0))


def fresh(x0, history: int) -> Slots:
    """Slots about to evaluate their start points ``x0`` [k, P]."""
    k, P = x0.shape
    z = jnp.zeros((k,), x0.dtype)
    search = Search(direction=jnp.zeros_like(x0), slope=z, step=z, lo_step=z, lo_value=z,
                    lo_slope=z, lo_grad=jnp.zeros_like(x0),
                    hi_step=jnp.full((k,), jnp.inf, x0.dtype), trials=jnp.zeros((k,), jnp.int32))
    memory = Memory(jnp.zeros((k, history, P), x0.dtype), jnp.zeros((k, history, P), x0.dtype),
                    jnp.zeros((k, history), x0.dtype), jnp.ones((k,), x0.dtype))
    count = jnp.zeros((k,), jnp.int32)
    return Slots(x=x0, f=jnp.full((k,), jnp.inf, x0.dtype), g=jnp.zeros_like(x0), search=search,
                 memory=memory, iterations=count, evaluations=count,
                 at_start=jnp.ones((k,), bool))


def new_search(memory: Memory, f, g, keep_memory) -> tuple[Search, Memory]:
    """The search from a base point (objective ``f``, gradient ``g``) along −H·g, with the
    memory kept where ``keep_memory``; where −H·g does not descend, along −g from an empty
    memory. The first trial step is 1, or min(1, 1/‖g‖) from an empty memory (scipy's)."""
    memory = _forget(memory, keep_memory)
    d = _two_loop(g, memory)
    slope = _dot(d, g)
    descends = (slope < 0) & jnp.isfinite(slope)
    empty = ~jnp.any(memory.rho > 0, axis=1) | ~descends
    d = jnp.where(descends[:, None], d, -g)
    slope = jnp.where(descends, slope, -_dot(g, g))
    memory = _forget(memory, descends)
    gnorm = jnp.sqrt(_dot(g, g))
    step = jnp.where(empty, jnp.minimum(1.0, 1.0 / jnp.maximum(gnorm, 1e-300)), 1.0)
    search = Search(direction=d, slope=slope, step=step, lo_step=jnp.zeros_like(step),
                    lo_value=f, lo_slope=slope, lo_grad=g,
                    hi_step=jnp.full_like(step, jnp.inf), trials=jnp.zeros_like(slope, jnp.int32))
    return search, memory


def _evaluate(value_and_grad, st: Slots, args) -> Trial:
    x = st.x + st.search.step[:, None] * st.search.direction
    f, g = value_and_grad(x, args)
    finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g), -1)
    return Trial(x=x, f=jnp.where(finite, f, jnp.inf), g=g,
                 slope=jnp.where(finite, _dot(g, st.search.direction), 0.0), finite=finite)


def _next_step(t, trial: Trial, armijo, lo_step, lo_value, lo_slope, hi_step):
    """The next trial step: within a bracket that failed the Armijo test, the minimum of the
    quadratic through (lo_step: value, slope) and (t: value), safeguarded to the bracket's
    [10%, 50%]; past a point that passed it, ×4 (unbracketed) or bisection (bracketed)."""
    width = hi_step - lo_step
    curv = trial.f - (lo_value + lo_slope * width)
    tq = lo_step - lo_slope * width * width / (2.0 * jnp.where(curv > 0, curv, 1.0))
    tq = jnp.where(trial.finite & (curv > 0) & jnp.isfinite(tq), tq, lo_step + 0.1 * width)
    tq = jnp.clip(tq, lo_step + 0.1 * width, lo_step + 0.5 * width)
    further = jnp.where(jnp.isinf(hi_step), jnp.minimum(EXTRAPOLATE * t, TMAX),
                        0.5 * (lo_step + hi_step))
    return jnp.where(~armijo, tq, further), width


def _line_search(search: Search, f, trial: Trial, searching, maxls: int):
    """The weak-Wolfe test of each searching slot's trial point: (the search continued,
    the trial point accepted, the best Armijo point accepted after ``maxls`` trials, the
    search failed without any Armijo point)."""
    t = search.step
    armijo = trial.finite & (trial.f <= f + C1 * t * search.slope)
    curvature = trial.slope >= C2 * search.slope
    accept_trial = searching & armijo & curvature
    raise_lo = searching & armijo & ~curvature  # sufficient decrease, still descending
    lo_step = jnp.where(raise_lo, t, search.lo_step)
    lo_value = jnp.where(raise_lo, trial.f, search.lo_value)
    lo_slope = jnp.where(raise_lo, trial.slope, search.lo_slope)
    lo_grad = jnp.where(raise_lo[:, None], trial.g, search.lo_grad)
    hi_step = jnp.where(searching & ~armijo, t, search.hi_step)
    step, width = _next_step(t, trial, armijo, lo_step, lo_value, lo_slope, hi_step)
    trials = search.trials + 1
    exhausted = searching & ~accept_trial & ((trials >= maxls) | (step <= 0) | (width <= 0))
    continued = Search(search.direction, search.slope, step, lo_step, lo_value, lo_slope,
                       lo_grad, hi_step, trials)
    return continued, accept_trial, exhausted & (lo_step > 0), exhausted & ~(lo_step > 0)


def _remember(memory: Memory, s, y, accepted) -> Memory:
    """The pair (s, y) appended where an iteration was accepted with positive curvature."""
    sy, yy = _dot(s, y), _dot(y, y)
    push = accepted & (sy > EPS * yy) & (yy > 0)
    roll = lambda a, v: jnp.where(scheduler.column(push, a),
                                  jnp.concatenate([a[:, 1:], v[:, None]], 1), a)
    return Memory(roll(memory.s, s), roll(memory.y, y),
                  roll(memory.rho, 1.0 / jnp.where(push, sy, 1.0)),
                  jnp.where(push, sy / jnp.where(push, yy, 1.0), memory.gamma))


def _status(st: Slots, f, g, iterations, accepted, failed, trial: Trial, maxiter, tol, ftol):
    """Why each slot's start ends after this step, or -1 (:data:`scheduler.NOT_ENDED`)."""
    scale = jnp.maximum(jnp.maximum(jnp.abs(st.f), jnp.abs(f)), 1.0)
    stalled = accepted & (st.f - f <= ftol * scale)
    had_memory = jnp.any(st.memory.rho > 0, axis=1)
    status = jnp.full(f.shape, scheduler.NOT_ENDED, jnp.int32)
    status = jnp.where(iterations >= maxiter, MAXITER, status)
    status = jnp.where(failed & ~had_memory, LINESEARCH_FAILED, status)
    status = jnp.where(stalled, FTOL, status)
    status = jnp.where((accepted | st.at_start) & (jnp.max(jnp.abs(g), -1) <= tol), GTOL, status)
    return jnp.where(st.at_start & ~trial.finite, NONFINITE, status)


def step(st: Slots, args, *, value_and_grad, maxiter: int, maxls: int, tol: float,
         ftol: float) -> tuple[Slots, jax.Array]:
    """Evaluates every slot's trial point once: a start's first point, a line-search trial,
    or (after the search accepts a point) the first trial along a new direction."""
    trial = _evaluate(value_and_grad, st, args)
    start = st.at_start
    search, accept_trial, accept_lo, failed = _line_search(st.search, st.f, trial, ~start, maxls)
    accepted = accept_trial | accept_lo
    t = jnp.where(accept_trial, st.search.step, search.lo_step)
    f_acc = jnp.where(accept_trial, trial.f, search.lo_value)
    g_acc = jnp.where(accept_trial[:, None], trial.g, search.lo_grad)
    s = t[:, None] * st.search.direction
    memory = _remember(st.memory, s, g_acc - st.g, accepted)

    col = lambda v: v[:, None]
    x = jnp.where(col(start), trial.x, jnp.where(col(accepted), st.x + s, st.x))
    f = jnp.where(start, trial.f, jnp.where(accepted, f_acc, st.f))
    g = jnp.where(col(start), trial.g, jnp.where(col(accepted), g_acc, st.g))
    iterations = st.iterations + accepted.astype(jnp.int32)
    status = _status(st, f, g, iterations, accepted, failed, trial, maxiter, tol, ftol)

    # a new direction after an accepted point, at a start, or after a failed search (from an
    # empty memory); otherwise the next trial of the current search
    renew = accepted | start | failed
    restart = new_search(memory, f, g, keep_memory=~failed)
    search, memory = scheduler.select(renew, restart, (search, memory))
    return Slots(x=x, f=f, g=g, search=search, memory=memory, iterations=iterations,
                 evaluations=st.evaluations + 1, at_start=jnp.zeros_like(start)), status


@functools.lru_cache(maxsize=64)
def runner(fun: Callable, pools: tuple[int, ...], history: int, maxiter: int, maxls: int,
           tol: float, ftol: float, batched_args: bool):
    """Jitted ``run(starts [S, P], args) -> (x [S, P], f [S], status [S], iters [S], nfev [S])``.

    ``pools`` are the slot counts of the successive pools (largest first, :func:`pool_sizes`).
    """
    vg = jax.vmap(jax.value_and_grad(lambda x, a: fun(x, *a)),
                  in_axes=(0, 0 if batched_args else None))
    one_step = functools.partial(step, value_and_grad=lambda x, a: vg(x, tuple(a)),
                                 maxiter=maxiter, maxls=maxls, tol=tol, ftol=ftol)

    @jax.jit
    def run(starts, args):
        out = scheduler.run(starts, args, init=lambda x0, _: fresh(x0, history), step=one_step,
                            report=lambda st: {"x": st.x, "f": st.f, "it": st.iterations,
                                               "nfev": st.evaluations},
                            pools=pools, batched_args=batched_args)
        return out["x"], out["f"], out["status"], out["it"], out["nfev"]

    return run


def pool_sizes(num_starts: int, num_slots: int) -> tuple[int, ...]:
    """Slot counts of the successive pools: ``num_slots``, then ÷8 while above 8."""
    k = max(1, min(num_slots, num_starts))
    sizes = [k]
    while sizes[-1] > 8:
        sizes.append(max(1, sizes[-1] // 8))
    return tuple(sizes)
