"""Multi-start minimisation behind one function, :func:`minimize_multistart`.

The default backend runs jaxopt's L-BFGS on every start at once, as one jitted computation: a
fixed number of *slots* hold starts being optimised; every step advances all slots by one
vmapped L-BFGS iteration, and slots whose start has converged (gradient norm ≤ ``tol``), hit
``maxiter`` or left the finite domain are written out and refilled with the next pending start.
The cost is therefore the sum of the iterations the starts need, not the number of starts times
the slowest one. ``"scipy"`` (L-BFGS-B in a Python loop, the reference) and ``"optax"``
(``optax.lbfgs`` in the same slot scheme) stand in through the same call.

Every start is accounted for: the result holds each start's final point, objective, iteration
count and whether it converged; none is dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Objective = Callable[..., jax.Array]  # fun(params [P], *args) -> scalar


@dataclasses.dataclass(frozen=True)
class MultiStartResult:
    """Per-start outcome of a multi-start minimisation (S starts, P parameters)."""

    params: np.ndarray  # [S, P] final points
    values: np.ndarray  # [S] objective at the final points (inf where non-finite)
    converged: np.ndarray  # [S] bool: gradient norm <= tol before maxiter
    iterations: np.ndarray  # [S] iterations used

    @property
    def best(self) -> int:
        return int(np.argmin(self.values))

    @property
    def num_converged(self) -> int:
        return int(self.converged.sum())


def minimize_multistart(
    fun: Objective,
    starts,
    args: tuple = (),
    *,
    batched_args: bool = False,
    method: str = "jaxopt",
    maxiter: int = 500,
    tol: float = 1e-9,
    ftol: float = 1e-11,
    slots: int = 512,
    polish: int = 4,
    linesearch: str = "backtracking",
) -> MultiStartResult:
    """Minimises ``fun(params, *args)`` from every row of ``starts`` ([S, P], float64).

    With ``batched_args`` every array in ``args`` has a leading axis S (one set of arguments per
    start, as bootstrap refits need); otherwise ``args`` are shared by all starts.

    A start has converged when its gradient norm is ≤ ``tol`` or one iteration lowers the
    objective by no more than ``ftol`` relative to it (scipy's L-BFGS-B criteria, with ``ftol``
    relative to |f| rather than max(|f|, 1)). The multi-start phase uses a backtracking
    (Armijo) line search, cheap under ``vmap``; the ``polish`` best starts are then continued
    with a strong-Wolfe (zoom) line search for four times ``maxiter`` iterations with both
    tests off, so the reported optimum is not cut short by them (their convergence flags keep
    the first run's verdict).
    """
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[0] == 0:
        raise ValueError(f"starts must be a non-empty [S, P] array, got shape {starts.shape}")
    with jax.enable_x64(True):
        args = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), args)
        if method == "scipy":
            out = _scipy(fun, starts, args, batched_args, maxiter, tol, ftol)
        elif method in ("jaxopt", "optax"):
            k = int(min(slots, starts.shape[0]))
            run = _slot_runner(fun, method, k, maxiter, tol, ftol, batched_args, linesearch)
            out = jax.device_get(run(jnp.asarray(starts), args))
        else:
            raise ValueError(f"unknown method {method!r}; expected 'jaxopt', 'optax' or 'scipy'")
    params, values, err, iters = (np.array(o) for o in out)
    values = np.where(np.isfinite(values), values, np.inf)
    if polish and method != "scipy" and not batched_args:
        top = np.argsort(values)[:polish]
        top = top[np.isfinite(values[top])]
        if top.size:
            p = minimize_multistart(fun, params[top], args, method=method, maxiter=4 * maxiter,
                                    tol=0.0, ftol=0.0, slots=slots, polish=0,
                                    linesearch="zoom")
            better = p.values < values[top]
            params[top[better]], values[top[better]] = p.params[better], p.values[better]
            iters[top[better]] += p.iterations[better]
    return MultiStartResult(params, values, (err <= tol) & np.isfinite(values), iters)


# ----------------------------------------------------------------------------- slot engine
def _stepper(fun: Objective, method: str, maxiter: int, tol: float, linesearch: str):
    """(init(x, args) -> state, step(x, state, args) -> (x, state), error(state), value(state))."""
    if method == "jaxopt":
        import jaxopt

        solver = jaxopt.LBFGS(
            fun=fun, tol=tol, maxiter=maxiter, linesearch=linesearch, maxls=30,
            history_size=10, jit=True,
        )
        return (
            lambda x, a: solver.init_state(x, *a),
            lambda x, s, a: tuple(solver.update(x, s, *a)),
            lambda s: s.error,
            lambda s: s.value,
        )
    import optax

    opt = optax.lbfgs()

    def init(x, a):
        v, g = jax.value_and_grad(fun)(x, *a)
        return (opt.init(x), v, g)

    def step(x, s, a):
        st, v, g = s
        f = lambda p: fun(p, *a)
        upd, st = opt.update(g, st, x, value=v, grad=g, value_fn=f)
        x = optax.apply_updates(x, upd)
        v, g = jax.value_and_grad(f)(x)
        return x, (st, v, g)

    return init, step, lambda s: jnp.linalg.norm(s[2]), lambda s: s[1]


@functools.lru_cache(maxsize=64)
def _slot_runner(fun, method, k, maxiter, tol, ftol, batched_args, linesearch):
    init, step, error, value = _stepper(fun, method, maxiter, tol, linesearch)
    ax = 0 if batched_args else None
    v_init = jax.vmap(init, in_axes=(0, ax))
    v_step = jax.vmap(step, in_axes=(0, 0, ax))

    def take(args, idx):
        return jax.tree.map(lambda a: a[idx], args) if batched_args else args

    @jax.jit
    def run(starts, args):
        S = starts.shape[0]
        idx = jnp.arange(k)
        x = starts[idx]
        state = v_init(x, take(args, idx))
        out = (jnp.zeros_like(starts), jnp.full((S,), jnp.inf), jnp.full((S,), jnp.inf),
               jnp.zeros((S,), jnp.int32))

        def body(carry):
            x, state, idx, nxt, it, prev, out = carry
            x, state = v_step(x, state, take(args, jnp.minimum(idx, S - 1)))
            it = it + 1
            val, err = value(state), error(state)
            stalled = (prev - val) <= ftol * jnp.abs(val)
            err = jnp.where(stalled & jnp.isfinite(val), 0.0, err)  # converged by ftol
            bad = ~jnp.isfinite(val) | ~jnp.all(jnp.isfinite(x), axis=1)
            done = ((err <= tol) | (it >= maxiter) | bad) & (idx < S)
            sink = jnp.where(done, idx, S)  # out-of-range rows are dropped by the scatter
            out = (out[0].at[sink].set(x, mode="drop"), out[1].at[sink].set(val, mode="drop"),
                   out[2].at[sink].set(err, mode="drop"), out[3].at[sink].set(it, mode="drop"))
            new = jnp.where(done, nxt + jnp.cumsum(done) - 1, idx)
            new = jnp.where(done & (new >= S), S, new)
            nxt = nxt + jnp.sum(done)
            refill = done & (new < S)

            def load(xs):  # start the next pending starts in the freed slots
                x, state = xs
                fresh_x = starts[jnp.minimum(new, S - 1)]
                fresh = v_init(fresh_x, take(args, jnp.minimum(new, S - 1)))
                shape = lambda a: refill.reshape((-1,) + (1,) * (a.ndim - 1))
                pick = lambda old, nw: jnp.where(shape(old), nw, old)
                return pick(x, fresh_x), jax.tree.map(pick, state, fresh)

            x, state = jax.lax.cond(jnp.any(refill), load, lambda xs: xs, (x, state))
            it = jnp.where(done, 0, it)
            prev = jnp.where(done, jnp.inf, val)
            return x, state, jnp.where(done, new, idx), nxt, it, prev, out

        inf = jnp.full((k,), jnp.inf)
        carry = (x, state, idx, jnp.asarray(k), jnp.zeros((k,), jnp.int32), inf, out)
        carry = jax.lax.while_loop(lambda c: jnp.any(c[2] < S), body, carry)
        return carry[6]

    return run


# ----------------------------------------------------------------------------- scipy reference
def _scipy(fun, starts, args, batched_args, maxiter, tol, ftol):
    from scipy.optimize import minimize

    vg = jax.jit(jax.value_and_grad(fun))
    P, V, E, its = [], [], [], []
    for s, x0 in enumerate(starts):
        a = jax.tree.map(lambda v, s=s: v[s], args) if batched_args else args

        def f(p, a=a):
            v, g = vg(jnp.asarray(p), *a)
            return float(v), np.asarray(g, dtype=np.float64)

        r = minimize(f, x0, jac=True, method="L-BFGS-B",
                     options={"maxiter": maxiter, "gtol": tol, "ftol": ftol})
        # scipy's own verdict: converged when it stopped on its gtol/ftol criteria.
        P.append(r.x), V.append(r.fun), E.append(0.0 if r.success else np.inf), its.append(r.nit)
    return np.array(P), np.array(V), np.array(E), np.array(its)
