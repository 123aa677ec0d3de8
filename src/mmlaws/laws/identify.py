"""Which parameters a fit's data do not determine, said as warnings (every fitter calls this).

Three kinds of evidence, each turned into one plain sentence per parameter:

- **design**: an exponent cannot be told from its coefficient and the floor with two values of
  its variable: with two model sizes α (and A) of ``A/N^α`` are not determined, whatever the
  objective says; the same for β with two token budgets (:func:`design_warnings`).
- **bounds**: an estimate at the edge of the start grid (Eq. 2, Eq. 4) or at a bound of its
  stated range (the mixture laws' exponents) is where the optimiser stopped, not what the data
  chose; a negative exponent makes a term grow with size or data (:func:`value_warnings`).
- **flat profile**: the local quadratic approximation of each parameter's profile objective. With
  H the Hessian of the fit's objective at the optimum, the profile of parameter k has curvature
  1/(H⁻¹)_kk, so the robust likelihood-ratio interval of :mod:`mmlaws.laws.profile` is about

      θ̂_k ± sqrt(F_0.95(1, n − p) · s² · (H⁻¹)_kk / mean ψ'(r)),   s² = Σ ψ(r)² / (n − p)

  (ψ the Huber score of the log-residuals r, n observations, p free parameters). A parameter is
  flagged when that interval is wider than :data:`FLAT` allows, or when it loads on a direction
  in which the objective is flat to machine precision (a singular Hessian). The check costs one
  Hessian, not a profile; :func:`mmlaws.laws.profile_unimodal` gives the exact interval.

Before training, :func:`mmlaws.laws.design_power` answers the same question for a planned design.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

# When a local 95% interval counts as "not determined" (half-width):
# exponents, E and C: more than half the estimate; A and B (fitted as logs): a factor 10 either way.
FLAT = {"exp": 0.5, "E": 0.5, "C": 0.5, "log": float(np.log(10.0))}
# Below this fraction of the largest Hessian eigenvalue a direction counts as flat.
SINGULAR = 1e-10
LEVEL = 0.95

SYMBOL = {"alpha": "α", "beta": "β", "a": "A", "b": "B", "e": "E"}


def _label(name: str) -> str:
    base, _, rest = name.partition("[")
    return SYMBOL.get(base, base) + (f"[{rest}" if rest else "")


def design_warnings(variables: Mapping[str, np.ndarray], exponents: Mapping[str, str]) -> list[str]:
    """One warning per exponent whose variable takes fewer than three distinct values.

    ``variables``: name → values over the fitted observations (e.g. ``{"N": N, "D": D}``);
    ``exponents``: exponent name → the variable it scales (``{"alpha": "N", "beta": "D"}``).
    """
    out = []
    what = {"N": "model sizes", "D": "token budgets"}
    for exp, var in exponents.items():
        k = np.unique(np.asarray(variables[var], np.float64)).size
        if k < 3:
            kind = what.get(var[0], f"values of {var}")
            out.append(f"{_label(exp)}: only {k} {kind} ({var}); with the floor free, an exponent "
                       "and its coefficient are not determined by fewer than three")
    return out


def value_warnings(values: Mapping[str, float], on_boundary: Sequence[str],
                   ranges: Mapping[str, tuple[float, float]],
                   what: str = "start grid") -> list[str]:
    """Warnings for estimates at the edge of ``ranges`` (the start grid or the stated bounds)
    and for negative exponents (names starting ``alpha``/``beta``)."""
    out = []
    for name in on_boundary:
        lo, hi = ranges[name]
        out.append(f"{_label(name)} ended at the edge of its {what} [{lo:g}, {hi:g}]: the data "
                   "do not pin it")
    for name, v in values.items():
        if name.split("[")[0] in ("alpha", "beta") and v < 0:
            out.append(f"{_label(name)} = {v:.3g} is negative: the term grows with "
                       f"{'size' if name.startswith('alpha') else 'data'}; not a scaling law")
    return out


@functools.lru_cache(maxsize=64)
def _hessian(objective):
    return jax.jit(jax.hessian(objective))


def flat_warnings(
    objective, p_hat, args: tuple, residuals, *, names: Sequence[str], kinds: Sequence[str],
    huber_delta: float, free: Sequence[int] | None = None, shown=None, scale=None,
    c_scale: float = 1.0,
) -> list[str]:
    """Warnings for parameters with a flat profile (module docstring).

    Args:
      objective: ``objective(p, *args)``, the fit's objective; p_hat: its optimum [P].
      residuals: the log-residuals at the optimum [n] (the observations actually fitted).
      names, kinds: for each free parameter its name and kind: ``"log"`` (a log-coefficient,
        A or B), ``"E"`` (log E), ``"exp"`` (an exponent), ``"C"`` (an interaction constant).
      free: the indices of p that the fit moves (default: all); the others are held fixed.
      shown, scale: for exponents fitted through a transform, the reported value and
        d(reported)/d(p) per free parameter (default: p itself, 1).
      c_scale: the loss level a C is judged against (flagged when its half-width exceeds both
        half of |C| and 1% of this level).
    """
    p_hat = np.asarray(p_hat, np.float64)
    free = np.arange(len(p_hat)) if free is None else np.asarray(free, int)
    r = np.asarray(residuals, np.float64)
    n, p = r.size, free.size
    if n <= p:
        return [f"{n} observations for {p} free parameters: the data alone determine none of them"]
    with jax.enable_x64(True):
        H = np.asarray(_hessian(objective)(jnp.asarray(p_hat), *args), np.float64)
    H = H[np.ix_(free, free)]
    if not np.all(np.isfinite(H)):
        return ["the objective's curvature is not finite at the optimum; identification unchecked"]
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    null = vals <= SINGULAR * max(float(np.max(np.abs(vals))), 1e-300)
    flat_dir = (np.max(np.abs(vecs[:, null]), axis=1) > 0.3) if null.any() else np.zeros(p, bool)
    inv = (vecs[:, ~null] / vals[~null]) @ vecs[:, ~null].T
    psi = np.clip(r, -huber_delta, huber_delta)
    s2 = float(np.sum(psi**2) / (n - p))
    slope = max(float(np.mean(np.abs(r) <= huber_delta)), 1.0 / n)
    f = float(stats.f.ppf(LEVEL, 1, n - p))
    shown = p_hat[free] if shown is None else np.asarray(shown, np.float64)
    scale = np.ones(p) if scale is None else np.asarray(scale, np.float64)
    half = np.sqrt(np.maximum(f * s2 * np.diag(inv) / slope, 0.0)) * np.abs(scale)
    out = []
    for k, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if flat_dir[k]:
            out.append(f"{_label(name)}: the objective is flat along it (singular curvature); "
                       "not determined")
            continue
        v, h = shown[k], half[k]
        if kind == "log":
            bad, text = h > FLAT["log"], f"×/÷{np.exp(h):.3g}"
        elif kind == "E":
            bad, text = h > np.log1p(FLAT["E"]), f"×/÷{np.exp(h):.3g}"
        elif kind == "C":
            bad, text = h > max(FLAT["C"] * abs(v), 0.01 * c_scale), f"±{h:.3g} around {v:.3g}"
        else:
            bad, text = h > FLAT["exp"] * abs(v), f"±{h:.3g} around {v:.3g}"
        if bad:
            out.append(f"{_label(name)}: flat profile, local {LEVEL:.0%} interval {text}; "
                       "not determined")
    return out


def residual_scale(loss) -> float:
    """The loss level a C is judged against: the median observed loss."""
    return float(np.median(np.asarray(loss, np.float64)))
