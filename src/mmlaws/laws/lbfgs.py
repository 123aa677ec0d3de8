"""Batched multi-start L-BFGS as a flat state machine: one gradient evaluation per slot per step.

Why not vmap a textbook L-BFGS: under ``vmap`` its nested line-search loop runs until the slowest
of all starts has finished, so every start pays for the worst start's trials, and starts that
finish early sit idle until the slowest one is done. Here every *trial point* is one step of a
single loop. Each slot is at some point of its own line search; a step evaluates the objective
and gradient at every slot's trial point at once, then each slot either accepts the point (an
L-BFGS iteration ends and a new direction is formed) or picks its next trial step. A slot whose
start has ended is written out and refilled with the next pending start, and when the queue is
empty the live slots are compacted into a smaller pool (``k → k/8 → k/64``) so that the few
slow starts at the end do not carry a full pool's cost.

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

import jax
import jax.numpy as jnp

GTOL, FTOL, MAXITER, LINESEARCH_FAILED, NONFINITE = 0, 1, 2, 3, 4
STATUS = {GTOL: "converged (gradient)", FTOL: "converged (relative reduction)",
          MAXITER: "iteration limit", LINESEARCH_FAILED: "line search failed",
          NONFINITE: "non-finite objective at the start"}
C1, C2 = 1e-4, 0.9
EXTRAPOLATE, TMAX = 4.0, 1e10
EPS = 2.2e-16


def _two_loop(g, S, Y, rho, gamma):
    """−H·g for gradients g [k, P] with memory S, Y [k, m, P] (oldest first), rho [k, m]."""
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


def _select(mask, new, old):
    """Per-slot choice between two pytrees whose leaves have a leading slot axis."""
    return jax.tree.map(lambda n, o: jnp.where(_col(mask, o), n, o), new, old)


def _col(mask, like):
    """``mask`` [k] shaped to broadcast against ``like`` [k, ...]."""
    return mask.reshape((-1,) + (1,) * (like.ndim - 1))


@functools.lru_cache(maxsize=64)
def runner(fun: Callable, num_params: int, pools: tuple[int, ...], history: int, maxiter: int,
           maxls: int, tol: float, ftol: float, batched_args: bool):
    """Jitted ``run(starts [S, P], args) -> (x [S, P], f [S], status [S], iters [S], nfev [S])``.

    ``pools`` are the slot counts of the successive pools (largest first).
    """
    P, m = num_params, history
    _vg = jax.vmap(jax.value_and_grad(lambda x, a: fun(x, *a)),
                   in_axes=(0, 0 if batched_args else None))
    vg = lambda x, a: _vg(x, tuple(a))
    dot = lambda u, v: jnp.sum(u * v, -1)

    def fresh(x0):
        """State of slots about to evaluate their start points ``x0`` [k, P]."""
        k = x0.shape[0]
        z = jnp.zeros((k,), x0.dtype)
        return dict(
            x=x0, f=jnp.full((k,), jnp.inf, x0.dtype), g=jnp.zeros_like(x0),
            d=jnp.zeros_like(x0), dg0=z, t=z, t_lo=z, f_lo=z, dg_lo=z, g_lo=jnp.zeros_like(x0),
            t_hi=jnp.full((k,), jnp.inf, x0.dtype), ls=jnp.zeros((k,), jnp.int32),
            it=jnp.zeros((k,), jnp.int32), nfev=jnp.zeros((k,), jnp.int32),
            S=jnp.zeros((k, m, P), x0.dtype), Y=jnp.zeros((k, m, P), x0.dtype),
            rho=jnp.zeros((k, m), x0.dtype), gamma=jnp.ones((k,), x0.dtype),
            new=jnp.ones((k,), bool),
        )

    def direction(S, Y, rho, gamma, g, keep_memory):
        """New search direction and first trial step from gradient ``g``."""
        S, Y = jnp.where(_col(keep_memory, S), S, 0.0), jnp.where(_col(keep_memory, Y), Y, 0.0)
        rho = jnp.where(keep_memory[:, None], rho, 0.0)
        gamma = jnp.where(keep_memory, gamma, 1.0)
        d = _two_loop(g, S, Y, rho, gamma)
        dg = dot(d, g)
        ok = (dg < 0) & jnp.isfinite(dg)
        empty = ~jnp.any(rho > 0, axis=1) | ~ok  # steepest descent from an empty memory
        d = jnp.where(ok[:, None], d, -g)
        dg = jnp.where(ok, dg, -dot(g, g))
        S, Y = jnp.where(_col(ok, S), S, 0.0), jnp.where(_col(ok, Y), Y, 0.0)
        rho, gamma = jnp.where(ok[:, None], rho, 0.0), jnp.where(ok, gamma, 1.0)
        gnorm = jnp.sqrt(dot(g, g))
        t = jnp.where(empty, jnp.minimum(1.0, 1.0 / jnp.maximum(gnorm, 1e-300)), 1.0)
        return dict(d=d, dg0=dg, t=t, S=S, Y=Y, rho=rho, gamma=gamma)

    def step(st, args):
        xt = st["x"] + st["t"][:, None] * st["d"]
        ft, gt = vg(xt, args)
        finite = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt), -1)
        ft = jnp.where(finite, ft, jnp.inf)
        dgt = jnp.where(finite, dot(gt, st["d"]), 0.0)
        new = st["new"]

        # --- line-search bookkeeping for slots that are searching
        t, t_lo, t_hi = st["t"], st["t_lo"], st["t_hi"]
        armijo = finite & (ft <= st["f"] + C1 * t * st["dg0"])
        curv = dgt >= C2 * st["dg0"]
        accept_t = ~new & armijo & curv
        lo_up = ~new & armijo & ~curv  # sufficient decrease, still descending: raise t_lo
        t_lo2 = jnp.where(lo_up, t, t_lo)
        f_lo2 = jnp.where(lo_up, ft, st["f_lo"])
        dg_lo2 = jnp.where(lo_up, dgt, st["dg_lo"])
        g_lo2 = jnp.where(lo_up[:, None], gt, st["g_lo"])
        t_hi2 = jnp.where(~new & ~armijo, t, t_hi)
        width = t_hi2 - t_lo2
        curvq = ft - (f_lo2 + dg_lo2 * width)  # interpolate on the Armijo failure [t_lo, t_hi]
        tq = t_lo2 - dg_lo2 * width * width / (2.0 * jnp.where(curvq > 0, curvq, 1.0))
        tq = jnp.where(finite & (curvq > 0) & jnp.isfinite(tq), tq, t_lo2 + 0.1 * width)
        tq = jnp.clip(tq, t_lo2 + 0.1 * width, t_lo2 + 0.5 * width)
        t_next = jnp.where(
            ~armijo, tq,
            jnp.where(jnp.isinf(t_hi2), jnp.minimum(EXTRAPOLATE * t, TMAX), 0.5 * (t_lo2 + t_hi2)))
        ls = st["ls"] + 1
        out_of_trials = ~new & ~accept_t & ((ls >= maxls) | (t_next <= 0) | (width <= 0))
        accept_lo = out_of_trials & (t_lo2 > 0)
        ls_failed = out_of_trials & ~(t_lo2 > 0)
        accept = accept_t | accept_lo

        t_acc = jnp.where(accept_t, t, t_lo2)
        f_new = jnp.where(accept_t, ft, f_lo2)
        g_new = jnp.where(accept_t[:, None], gt, g_lo2)

        # --- memory update on accepted iterations (only pairs with positive curvature)
        s = t_acc[:, None] * st["d"]
        y = g_new - st["g"]
        sy, yy = dot(s, y), dot(y, y)
        push = accept & (sy > EPS * yy) & (yy > 0)
        roll = lambda a, v: jnp.where(_col(push, a), jnp.concatenate([a[:, 1:], v[:, None]], 1), a)
        S, Y = roll(st["S"], s), roll(st["Y"], y)
        rho = roll(st["rho"], 1.0 / jnp.where(push, sy, 1.0))
        gamma = jnp.where(push, sy / jnp.where(push, yy, 1.0), st["gamma"])

        # --- the base point after this step, and what ends
        c = lambda v: v[:, None]
        x = jnp.where(c(new), xt, jnp.where(c(accept), st["x"] + s, st["x"]))
        f = jnp.where(new, ft, jnp.where(accept, f_new, st["f"]))
        g = jnp.where(c(new), gt, jnp.where(c(accept), g_new, st["g"]))
        it = st["it"] + accept.astype(jnp.int32)
        gmax = jnp.max(jnp.abs(g), -1)
        scale = jnp.maximum(jnp.maximum(jnp.abs(st["f"]), jnp.abs(f)), 1.0)
        stalled = accept & (st["f"] - f <= ftol * scale)
        had_memory = jnp.any(st["rho"] > 0, axis=1)
        status = jnp.full(t.shape, -1, jnp.int32)
        status = jnp.where(it >= maxiter, MAXITER, status)
        status = jnp.where(ls_failed & ~had_memory, LINESEARCH_FAILED, status)
        status = jnp.where(stalled, FTOL, status)
        status = jnp.where((accept | new) & (gmax <= tol), GTOL, status)
        status = jnp.where(new & ~finite, NONFINITE, status)

        # --- next trial: a new direction after an accepted point, a fresh start or a failed
        # search (memory cleared); otherwise the next step of the current search
        renew = accept | new | ls_failed
        dirn = direction(S, Y, rho, gamma, g, keep_memory=~ls_failed)
        z = jnp.zeros_like(t)
        restart = dict(dirn, t_lo=z, f_lo=f, dg_lo=dirn["dg0"], g_lo=g,
                       t_hi=jnp.full_like(t, jnp.inf), ls=jnp.zeros_like(ls))
        cont = dict(d=st["d"], dg0=st["dg0"], t=t_next, S=S, Y=Y, rho=rho, gamma=gamma,
                    t_lo=t_lo2, f_lo=f_lo2, dg_lo=dg_lo2, g_lo=g_lo2, t_hi=t_hi2, ls=ls)
        st = dict(st, **_select(renew, restart, cont), x=x, f=f, g=g, it=it,
                  nfev=st["nfev"] + 1, new=jnp.zeros_like(new))
        return st, status

    def pool_loop(carry, starts, all_args, until):
        S_ = starts.shape[0]

        def body(c):
            st, slot_args, idx, nxt, out = c
            st, status = step(st, slot_args)
            done = (idx < S_) & (status >= 0)
            sink = jnp.where(done, idx, S_)
            put = lambda o, v: o.at[sink].set(v, mode="drop")
            out = dict(x=put(out["x"], st["x"]), f=put(out["f"], st["f"]),
                       status=put(out["status"], status), it=put(out["it"], st["it"]),
                       nfev=put(out["nfev"], st["nfev"]))
            new_idx = jnp.where(done, nxt + jnp.cumsum(done) - 1, idx)
            new_idx = jnp.where(done & (new_idx >= S_), S_, new_idx)
            refill = done & (new_idx < S_)
            take = jnp.minimum(new_idx, S_ - 1)
            st = _select(refill, fresh(starts[take]), st)
            if batched_args:
                slot_args = jax.tree.map(
                    lambda a, o: jnp.where(_col(refill, o), a[take], o),
                    all_args, slot_args)
            return st, slot_args, new_idx, nxt + jnp.sum(done), out

        def cond(c):
            _, _, idx, nxt, _ = c
            return (nxt < S_) | (jnp.sum(idx < S_) > until)

        return jax.lax.while_loop(cond, body, carry)

    @jax.jit
    def run(starts, args):
        S_ = starts.shape[0]
        k = pools[0]
        idx = jnp.arange(k)
        slot_args = jax.tree.map(lambda a: a[:k], args) if batched_args else args
        st = fresh(starts[:k])
        out = dict(x=starts, f=jnp.full((S_,), jnp.inf, starts.dtype),
                   status=jnp.full((S_,), MAXITER, jnp.int32),
                   it=jnp.zeros((S_,), jnp.int32), nfev=jnp.zeros((S_,), jnp.int32))
        carry = (st, slot_args, idx, jnp.asarray(k), out)
        for i, size in enumerate(pools):
            if i:  # compact the live slots (queue empty, at most `size` live) into a smaller pool
                st, slot_args, idx, nxt, out = carry
                order = jnp.argsort(idx >= S_, stable=True)[:size]
                st = jax.tree.map(lambda a, o=order: a[o], st)
                if batched_args:
                    slot_args = jax.tree.map(lambda a, o=order: a[o], slot_args)
                carry = (st, slot_args, idx[order], nxt, out)
            until = pools[i + 1] if i + 1 < len(pools) else 0
            carry = pool_loop(carry, starts, args, until)
        out = carry[4]
        return out["x"], out["f"], out["status"], out["it"], out["nfev"]

    return run


def pool_sizes(num_starts: int, slots: int) -> tuple[int, ...]:
    """Slot counts of the successive pools: ``slots``, then ÷8 while above 8."""
    k = max(1, min(slots, num_starts))
    sizes = [k]
    while sizes[-1] > 8:
        sizes.append(max(1, sizes[-1] // 8))
    return tuple(sizes)
