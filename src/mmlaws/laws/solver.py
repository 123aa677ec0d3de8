"""Multi-start minimisation behind one function, :func:`minimize_multistart`.

Backends, all returning a :class:`MultiStartResult` that accounts for every start:

* ``"lbfgs"`` (default): the batched L-BFGS engine of :mod:`mmlaws.laws.lbfgs`, one jitted
  computation in which every step evaluates one trial point per slot, so that no start waits for
  another's line search (on the Chinchilla data it runs the 4,500-start grid in about 1.4 s on
  two CPU cores; ``benchmarks/laws_bench.py``).
* ``"jaxopt"``: ``jaxopt.LBFGS`` vmapped over a pool of slots that are refilled as starts end
  (the same scheduler, :mod:`mmlaws.laws.scheduler`); each step pays for the slowest slot's line
  search (about 10× slower here).
* ``"optax"``: ``optax.lbfgs`` in the same slot scheme.
* ``"scipy"``: L-BFGS-B in a Python loop, the reference.

Stopping rules are scipy L-BFGS-B's, so that the backends compare like for like: a start has
converged when ``max|g_i| ≤ tol`` (``pgtol``) or one iteration lowers the objective by at most
``ftol · max(|f_k|, |f_k+1|, 1)`` (``factr · eps``). A start whose line search fails or that hits
``maxiter`` is counted as not converged, never dropped. The ``polish`` best starts are then
continued with both tests off until no step lowers the objective further, so that the reported
optimum is accurate to the precision of float64 rather than to ``ftol``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mmlaws.laws import lbfgs, scheduler

Objective = Callable[..., jax.Array]  # fun(params [P], *args) -> scalar
STATUS = lbfgs.STATUS
CONVERGED = (lbfgs.GTOL, lbfgs.FTOL)


@dataclasses.dataclass(frozen=True)
class MultiStartResult:
    """Per-start outcome of a multi-start minimisation (S starts, P parameters)."""

    params: np.ndarray  # [S, P] final points
    values: np.ndarray  # [S] objective at the final points (inf where non-finite)
    status: np.ndarray  # [S] int, a key of STATUS
    iterations: np.ndarray  # [S] iterations used
    evaluations: np.ndarray  # [S] objective-and-gradient evaluations used

    @property
    def converged(self) -> np.ndarray:
        return np.isin(self.status, CONVERGED) & np.isfinite(self.values)

    @property
    def best(self) -> int:
        return int(np.argmin(self.values))

    @property
    def num_converged(self) -> int:
        return int(self.converged.sum())

    def outcomes(self) -> dict[str, int]:
        """How many starts ended in each way (``STATUS`` names), zero counts left out."""
        codes, counts = np.unique(self.status, return_counts=True)
        return {STATUS[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}


def minimize_multistart(
    fun: Objective,
    starts,
    args: tuple = (),
    *,
    batched_args: bool = False,
    method: str = "lbfgs",
    maxiter: int = 500,
    tol: float = 1e-5,
    ftol: float = 2.2e-9,
    history: int = 10,
    maxls: int = 20,
    slots: int = 512,
    polish: int = 4,
) -> MultiStartResult:
    """Minimises ``fun(params, *args)`` from every row of ``starts`` ([S, P], float64).

    With ``batched_args`` every array in ``args`` has a leading axis S (one set of arguments per
    start, as bootstrap refits need); otherwise ``args`` are shared by all starts. ``tol`` and
    ``ftol`` are scipy's ``gtol`` and ``ftol`` (see the module docstring); ``history`` is the
    number of correction pairs kept and ``maxls`` the trial points per line search.
    """
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[0] == 0:
        raise ValueError(f"starts must be a non-empty [S, P] array, got shape {starts.shape}")
    if method not in ("lbfgs", "jaxopt", "optax", "scipy"):
        raise ValueError(f"unknown method {method!r}; expected 'lbfgs', 'jaxopt', 'optax' or "
                         "'scipy'")
    with jax.enable_x64(True):
        args = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tuple(args))
        if method == "scipy":
            out = _scipy(fun, starts, args, batched_args, maxiter, tol, ftol, history)
        elif method == "lbfgs":
            run = lbfgs.runner(fun, lbfgs.pool_sizes(len(starts), slots), history, maxiter,
                               maxls, float(tol), float(ftol), batched_args)
            out = jax.device_get(run(jnp.asarray(starts), args))
        else:
            k = int(min(slots, starts.shape[0]))
            run = _slot_runner(fun, method, k, maxiter, tol, ftol, batched_args)
            out = jax.device_get(run(jnp.asarray(starts), args))
    params, values, status, iters, nfev = (np.array(o) for o in out)
    values = np.where(np.isfinite(values), values, np.inf)
    if polish and not batched_args:
        top = np.argsort(values)[:polish]
        top = top[np.isfinite(values[top])]
        if top.size:
            p = minimize_multistart(fun, params[top], args, method=method, maxiter=4 * maxiter,
                                    tol=0.0, ftol=0.0, history=history, maxls=maxls,
                                    slots=slots, polish=0)
            better = p.values < values[top]
            params[top[better]], values[top[better]] = p.params[better], p.values[better]
            iters[top] += p.iterations
            nfev[top] += p.evaluations
    return MultiStartResult(params, values, status, iters, nfev)


# ----------------------------------------------------------------------------- slot engine
def _stepper(fun: Objective, method: str, maxiter: int, tol: float):
    """(init(x, args) -> state, update(x, state, args) -> (x, state), error(state),
    value(state), failed(state)): ``error`` is the largest absolute gradient entry."""
    if method == "jaxopt":
        import jaxopt

        solver = jaxopt.LBFGS(
            fun=fun, tol=tol, maxiter=maxiter, linesearch="zoom", maxls=30, history_size=10,
            jit=True,
        )
        return (
            lambda x, a: solver.init_state(x, *a),
            lambda x, s, a: tuple(solver.update(x, s, *a)),
            lambda s: jnp.max(jnp.abs(s.grad)),
            lambda s: s.value,
            lambda s: s.failed_linesearch,
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

    return (init, step, lambda s: jnp.max(jnp.abs(s[2])), lambda s: s[1],
            lambda s: jnp.zeros((), bool))


@functools.lru_cache(maxsize=64)
def _slot_runner(fun, method, k, maxiter, tol, ftol, batched_args):
    """jaxopt's or optax's L-BFGS vmapped over the slots of :mod:`mmlaws.laws.scheduler`; a slot's
    state is (x, the solver's state, iterations, the previous objective)."""
    init, update, error, value, failed = _stepper(fun, method, maxiter, tol)
    ax = 0 if batched_args else None
    v_init = jax.vmap(init, in_axes=(0, ax))
    v_update = jax.vmap(update, in_axes=(0, 0, ax))

    def start(x0, args):
        return x0, v_init(x0, args), jnp.zeros((k,), jnp.int32), jnp.full((k,), jnp.inf)

    def step(slot, args):
        x, state, it, prev = slot
        x, state = v_update(x, state, args)
        it = it + 1
        val, err, failed_ls = value(state), error(state), failed(state)
        scale = jnp.maximum(jnp.maximum(jnp.abs(prev), jnp.abs(val)), 1.0)
        status = jnp.full((k,), scheduler.NOT_ENDED, jnp.int32)
        status = jnp.where(it >= maxiter, lbfgs.MAXITER, status)
        status = jnp.where(failed_ls, lbfgs.LINESEARCH_FAILED, status)
        status = jnp.where(~failed_ls & (prev - val <= ftol * scale), lbfgs.FTOL, status)
        status = jnp.where(~failed_ls & (err <= tol), lbfgs.GTOL, status)
        bad = ~jnp.isfinite(val) | ~jnp.all(jnp.isfinite(x), axis=1)
        return (x, state, it, val), jnp.where(bad, lbfgs.NONFINITE, status)

    def report(slot):
        x, state, it, _ = slot
        return {"x": x, "f": value(state), "it": it}

    @jax.jit
    def run(starts, args):
        out = scheduler.run(starts, args, init=start, step=step, report=report, pools=(k,),
                        batched_args=batched_args)
        # one evaluation per iteration is a lower bound
        return out["x"], out["f"], out["status"], out["it"], out["it"] + 1

    return run


# ----------------------------------------------------------------------------- scipy reference
def _scipy(fun, starts, args, batched_args, maxiter, tol, ftol, history):
    from scipy.optimize import minimize

    vg = jax.jit(jax.value_and_grad(fun))
    out = []
    for s, x0 in enumerate(starts):
        a = jax.tree.map(lambda v, s=s: v[s], args) if batched_args else args

        def f(p, a=a):
            v, g = vg(jnp.asarray(p), *a)
            return float(v), np.asarray(g, dtype=np.float64)

        r = minimize(f, x0, jac=True, method="L-BFGS-B",
                     options={"maxiter": maxiter, "gtol": tol, "ftol": ftol, "maxcor": history})
        status = (lbfgs.GTOL if "GRADIENT" in r.message else lbfgs.FTOL) if r.success else (
            lbfgs.MAXITER if r.nit >= maxiter else lbfgs.LINESEARCH_FAILED)
        out.append((r.x, r.fun, status, r.nit, r.nfev))
    return tuple(np.array(col) for col in zip(*out, strict=True))
