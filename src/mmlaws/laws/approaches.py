"""Compute-optimal exponents three ways, as Hoffmann et al. (2022) report them (their Table 2).

N_opt ∝ C^a and D_opt ∝ C^b, from one dataset's runs:

- **Approach 1, envelope** (:func:`envelope_exponents`): every logged point of every run (its
  loss after c = f(N)·tokens FLOPs; the final points alone when runs have no curves) enters the
  frontier of the lowest loss reached with at most c FLOPs; a point on that frontier says which
  N was best at its c. Power laws fitted to the frontier's (c, N) and (c, D = c/f(N)) give a, b.
  Caveat (Hoffmann et al.): an intermediate checkpoint of a run whose learning rate decays over a
  longer horizon is worse than a run trained to that point, which biases the envelope towards
  larger models; runs without curves avoid the bias but give few frontier points.
- **Approach 2, IsoFLOP profiles** (:func:`isoflop_exponents`): at FLOP levels that at least three
  model sizes reach (exactly, from final points within ``tolerance``, or read off their curves),
  a parabola in log N through the losses gives N_opt(C) where its minimum lies inside the sizes
  tried; power laws through the minima give a, b.
- **Approach 3, parametric fit** (:func:`parametric_exponents`): from Eq. 2's α, β:
  a = β/(α + β), b = α/(α + β) (exact under C = 6ND).

:func:`compute_optimal_exponents` runs all three where the design allows and says why not where
it does not; :func:`exponents_table` lays them side by side in Markdown. FLOPs are 6N per token
unless a :class:`~mmlaws.laws.optimal.FlopsPerToken` is given.
"""

from __future__ import annotations

import numpy as np

from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.optimal import FlopsPerToken
from mmlaws.laws.records import RunTable


def _points(runs: RunTable, flops: FlopsPerToken, use_curves: bool):
    """(compute, N, loss, run index) of every usable point: eval or smoothed step curves when
    present and ``use_curves``, else final points."""
    c, n, loss, run = [], [], [], []
    for k in range(len(runs)):
        t, L = np.array([runs.D[k]]), np.array([runs.loss[k]])
        if use_curves and runs.records:
            rec = runs.records[k]
            te, le = rec.curve("loss", kind="eval")
            ts, ls = rec.curve("loss")
            if te.size >= 3:
                t, L = te, le
            elif ts.size >= 5:
                t, L = ts, _smooth(ls)
        ok = (t > 0) & np.isfinite(L) & (L > 0)
        f = float(flops(runs.N[k]))
        c.append(f * t[ok]), n.append(np.full(ok.sum(), runs.N[k])), loss.append(L[ok])
        run.append(np.full(ok.sum(), k))
    return tuple(np.concatenate(v) for v in (c, n, loss, run))


def _smooth(x, width: int = 5):
    pad = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(pad, np.ones(width) / width, mode="valid")


def _power(c, y) -> float:
    """Slope of log y on log c (least squares)."""
    return float(np.polyfit(np.log(c), np.log(y), 1)[0])


def envelope_exponents(runs: RunTable, *, flops: FlopsPerToken | None = None,
                       use_curves: bool = True) -> dict:
    """Approach 1 (module docstring): {"a", "b", "frontier": [[c, N, loss], ...]}; raises
    ``ValueError`` when fewer than three model sizes reach the frontier."""
    flops = FlopsPerToken.six() if flops is None else flops
    c, n, loss, _ = _points(runs, flops, use_curves)
    order = np.lexsort((loss, c))
    best, keep = np.inf, []
    for k in order:
        if loss[k] < best:
            best = loss[k]
            keep.append(k)
    keep = np.array(keep, int)
    sizes = np.unique(n[keep])
    if sizes.size < 3:
        raise ValueError(f"{sizes.size} model size(s) on the loss frontier; Approach 1 needs 3")
    cf, nf = c[keep], n[keep]
    return {"a": _power(cf, nf), "b": _power(cf, cf / flops(nf)), "sizes_on_frontier":
            int(sizes.size), "frontier": np.stack([cf, nf, loss[keep]], 1).tolist()}


def _levels(c, n, run, tolerance, use_curves, num_levels):
    if use_curves and np.unique(run).size < len(c):
        lo = max(np.min(c[run == r]) for r in np.unique(run))
        hi = np.max(c)
        return np.geomspace(max(lo, np.min(c)), hi, num_levels) if hi > lo else np.array([])
    finals = np.sort(c)
    groups, start = [], 0
    for k in range(1, len(finals) + 1):
        if k == len(finals) or np.log(finals[k] / finals[start]) > np.log1p(tolerance):
            groups.append(np.exp(np.mean(np.log(finals[start:k]))))
            start = k
    return np.array(groups)


def isoflop_exponents(runs: RunTable, *, flops: FlopsPerToken | None = None,
                      use_curves: bool = True, tolerance: float = 0.1,
                      num_levels: int = 12) -> dict:
    """Approach 2 (module docstring): {"a", "b", "minima": [[C, N_opt], ...]}; raises
    ``ValueError`` when fewer than two FLOP levels have an interior minimum."""
    flops = FlopsPerToken.six() if flops is None else flops
    c, n, loss, run = _points(runs, flops, use_curves)
    minima = []
    for level in _levels(c, n, run, tolerance, use_curves, num_levels):
        sizes, losses = [], []
        for r in np.unique(run):
            m = run == r
            cr, lr = c[m], loss[m]
            if m.sum() == 1:
                if abs(np.log(cr[0] / level)) <= np.log1p(tolerance):
                    sizes.append(n[m][0]), losses.append(lr[0])
            elif cr.min() <= level <= cr.max():
                sizes.append(n[m][0])
                losses.append(np.exp(np.interp(np.log(level), np.log(cr), np.log(lr))))
        x, y = np.log(np.asarray(sizes)), np.log(np.asarray(losses))
        if np.unique(x).size < 3:
            continue
        p2, p1, _ = np.polyfit(x, y, 2)
        if p2 <= 0:
            continue
        x_opt = -p1 / (2 * p2)
        if x.min() < x_opt < x.max():
            minima.append((level, float(np.exp(x_opt))))
    if len(minima) < 2:
        raise ValueError(f"{len(minima)} FLOP level(s) with an interior minimum over ≥ 3 model "
                         "sizes; Approach 2 needs 2 (runs on iso-FLOP lines, or longer curves)")
    cm, nm = (np.array(v) for v in zip(*minima, strict=True))
    return {"a": _power(cm, nm), "b": _power(cm, cm / flops(nm)), "minima":
            [[float(x), float(y)] for x, y in minima]}


def parametric_exponents(law: UnimodalLaw) -> dict:
    """Approach 3: a = β/(α + β), b = α/(α + β) of an Eq. 2 law (C = 6ND)."""
    s = law.alpha + law.beta
    if not (law.alpha > 0 and law.beta > 0):
        raise ValueError(f"exponents α={law.alpha:.3g}, β={law.beta:.3g} must be positive")
    return {"a": law.beta / s, "b": law.alpha / s}


def compute_optimal_exponents(runs: RunTable, law: UnimodalLaw | None = None, *,
                              flops: FlopsPerToken | None = None) -> dict:
    """All three approaches on one dataset's runs: name → result, or {"error": why not}."""
    out = {}
    for name, fn in (("approach 1 (envelope)", envelope_exponents),
                     ("approach 2 (IsoFLOP)", isoflop_exponents)):
        try:
            out[name] = fn(runs, flops=flops)
        except ValueError as err:
            out[name] = {"error": str(err)}
    if law is None:
        out["approach 3 (parametric)"] = {"error": "no fitted Eq. 2 law"}
    else:
        try:
            out["approach 3 (parametric)"] = parametric_exponents(law)
        except ValueError as err:
            out["approach 3 (parametric)"] = {"error": str(err)}
    return out


def exponents_table(results: dict) -> list[str]:
    """Markdown rows of :func:`compute_optimal_exponents`'s results, as Hoffmann et al.'s
    Table 2: approach, N_opt ∝ C^a, D_opt ∝ C^b."""
    lines = ["| approach | a (N_opt ∝ C^a) | b (D_opt ∝ C^b) |", "|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | n/a ({r['error']}) | — |")
        else:
            lines.append(f"| {name} | {r['a']:.3f} | {r['b']:.3f} |")
    return lines
