"""Fitting scaling laws on runs: Eq. 3 for Eq. 2, and the same procedure for Eq. 4.

Eq. 3 fits in log space on the log of the loss, over a grid of starts (Hoffmann et al. 2022):

    min Σ_runs w_r · Huber_δ( LSE(a - α log N, b - β log D, e) - log L )

with A = e^a, B = e^b, E = e^e. δ = 0.03 is the paper's choice (``published.HUBER_DELTA``, the
default here); Chinchilla and Epoch's replication use 1e-3. The bi-modal fit keeps the uni-modal
laws fixed and fits (C, a, α, b, β) of Eq. 4 with the same Huber-on-log-loss residuals.

Every fit says which of its parameters the data do not determine (too few sizes or budgets, an
estimate at the grid's edge, a negative exponent, a flat profile) as sentences in
``info.warnings`` (:mod:`mmlaws.laws.identify`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from mmlaws.errors import DataError
from mmlaws.laws import identify
from mmlaws.laws.forms import (
    BimodalLaw,
    Interaction,
    NModalLaw,
    UnimodalLaw,
    _weighted,
    check_quantity,
    normalise_shares,
    pairs_of,
)
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.solver import MultiStartResult, minimize_multistart

UNI_PARAMS = ("a", "b", "e", "alpha", "beta")
BI_PARAMS = ("C", "a", "b", "alpha", "beta")

# Hoffmann et al. (2022) initialisation grid, as Epoch's replication ran it (4,500 starts).
HOFFMANN_GRID: dict[str, tuple[float, ...]] = {
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}
# The same grid for Eq. 4, with C spanning competition (C < 0) to synergy (C > 0).
BIMODAL_GRID: dict[str, tuple[float, ...]] = {
    "C": (-0.5, -0.1, 0.0, 0.1, 0.5),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}
# Start grids by name (``FitSettings.grid``): Hoffmann et al.'s, the one the paper followed
# (§5.1), and a quicker look with exponents of at most 1 only (1,620 starts), which is not the
# paper's procedure.
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "hoffmann": HOFFMANN_GRID,
    "coarse": {k: (v[:3] if k in ("alpha", "beta") else v) for k, v in HOFFMANN_GRID.items()},
}


def huber(r, delta):
    """Huber loss, quadratic within ``delta`` and linear outside."""
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def unimodal_objective(p, log_n, log_d, log_l, w, delta):
    """Eq. 3 for one parameter vector ``p = (a, b, e, alpha, beta)``; data arrays are [R].

    LSE(a − α log N, b − β log D, e) is computed as
    ``e + log1p(exp(a − e − α log N) + exp(b − e − β log D))``: two exponentials per run, not
    three. Where a term would overflow (a prediction above e^709 times E) the objective is +inf,
    which the solvers treat as outside the domain.
    """
    a, b, e, alpha, beta = p[0], p[1], p[2], p[3], p[4]
    lse = e + jnp.log1p(jnp.exp(a - e - alpha * log_n) + jnp.exp(b - e - beta * log_d))
    return jnp.sum(w * huber(lse - log_l, delta))


def bimodal_objective(p, log_n, log_dsum, base, log_l, w, delta):
    """Eq. 4 residuals for ``p = (C, a, b, alpha, beta)``; ``base`` = ½(L_i + L_j) per run."""
    c, a, b, alpha, beta = p[0], p[1], p[2], p[3], p[4]
    pred = base - c + jnp.exp(a - alpha * log_n) + jnp.exp(b - beta * log_dsum)
    log_pred = jnp.log(jnp.maximum(pred, 1e-12))  # a non-positive prediction is a huge residual
    return jnp.sum(w * huber(log_pred - log_l, delta))


def grid_starts(grid: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """All combinations of the grid's values, as [S, P] rows ordered like ``names``."""
    missing = [n for n in names if n not in grid]
    if missing:
        raise ValueError(f"grid lacks values for {missing}; it needs {list(names)}")
    return np.array(list(itertools.product(*(grid[n] for n in names))), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class FitInfo:
    """How a fit was obtained: objective, start accounting, the boundary check, and what the
    data leave undetermined (``warnings``: one sentence per parameter, :mod:`~.identify`)."""

    objective: float
    num_starts: int
    num_converged: int
    on_boundary: tuple[str, ...]  # parameters whose optimum lies at or beyond the grid's edge
    huber_delta: float
    num_runs: int
    outcomes: Mapping[str, int] = dataclasses.field(default_factory=dict)  # how starts ended
    warnings: tuple[str, ...] = ()  # parameters the data do not determine, and why


@dataclasses.dataclass(frozen=True)
class UnimodalFit(UnimodalLaw):
    """A fitted Eq. 2 law (``predict`` as :class:`UnimodalLaw`) with its :class:`FitInfo`."""

    info: FitInfo | None = None

    @property
    def objective(self) -> float:
        return self.info.objective

    def law(self) -> UnimodalLaw:
        return UnimodalLaw(**self.as_dict(), source=self.source, quantity=self.quantity)


@dataclasses.dataclass(frozen=True)
class BimodalFit(BimodalLaw):
    """A fitted Eq. 4 law with its :class:`FitInfo`."""

    info: FitInfo | None = None

    @property
    def objective(self) -> float:
        return self.info.objective


@dataclasses.dataclass(frozen=True)
class NModalFit(NModalLaw):
    """A fitted n-modal law (pairwise interactions fitted jointly) with its :class:`FitInfo`."""

    info: FitInfo | None = None


def check_runs(columns: Mapping[str, np.ndarray], *, min_runs: int) -> None:
    """Raises :class:`~mmlaws.errors.DataError` (a ``ValueError``) naming the runs, counted
    from 1, with non-positive or non-finite values, or too few runs."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        sizes = {k: len(v) for k, v in columns.items()}
        raise DataError(f"columns have different lengths: {sizes}")
    for name, v in columns.items():
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise DataError(
                f"{name} must be positive and finite; bad runs (counted from 1) "
                f"{(bad[:10] + 1).tolist()}"
                + (f" (+{bad.size - 10} more)" if bad.size > 10 else "")
                + f", values {v[bad[:5]].tolist()}"
            )
    n = lengths.pop()
    if n < min_runs:
        raise DataError(
            f"{n} runs cannot determine {min_runs - 1} free parameters; need ≥ {min_runs}"
        )


def _check_design(N: np.ndarray, D: np.ndarray) -> None:
    if np.unique(N).size < 2:
        raise DataError(f"all runs share one model size N = {N[0]:.6g}; alpha and A are not "
                        f"identifiable")
    if np.unique(D).size < 2:
        raise DataError(f"all runs share one token count D = {D[0]:.6g}; beta and B are not "
                        f"identifiable")


def _boundary(x: np.ndarray, grid: Mapping[str, Sequence[float]], names) -> tuple[str, ...]:
    out = []
    for v, n in zip(x, names, strict=True):
        lo, hi = min(grid[n]), max(grid[n])
        if lo < hi and (v <= lo + 1e-6 * (hi - lo) or v >= hi - 1e-6 * (hi - lo)):
            out.append(n)
    return tuple(out)


def _as_f64(*arrays) -> list[np.ndarray]:
    return [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in arrays]


def fit_unimodal(
    N, D, loss, *, huber_delta: float = HUBER_DELTA, grid: Mapping | None = None,
    weights=None, method: str = "lbfgs", source: str = "", quantity: str = "nats",
) -> UnimodalFit:
    """Fits Eq. 2 to runs (N parameters, D tokens, final loss) as Eq. 3 does.

    Returns the best of all grid starts; ``info`` counts the starts that converged, names
    parameters whose optimum sits on the grid's boundary and warns of those the runs do not
    determine. ``quantity`` says what ``loss`` is (``"nats"`` or ``"perplexity"``); the law
    predicts the same quantity.
    """
    N, D, loss = _as_f64(N, D, loss)
    check_runs({"N": N, "D": D, "loss": loss}, min_runs=6)
    _check_design(N, D)
    check_quantity(quantity)
    grid = HOFFMANN_GRID if grid is None else grid
    w = np.ones_like(N) if weights is None else _as_f64(weights)[0]
    args = (np.log(N), np.log(D), np.log(loss), w, np.float64(huber_delta))
    starts = grid_starts(grid, UNI_PARAMS)
    res = minimize_multistart(unimodal_objective, starts, args, method=method)
    p = res.params[res.best]
    law = unimodal_from_params(p)
    warn = _warnings(res, grid, UNI_PARAMS, {"N": N, "D": D}, {"alpha": "N", "beta": "D"})
    warn += identify.flat_warnings(
        unimodal_objective, p, args, np.log(law.predict(N, D)) - np.log(loss),
        names=UNI_PARAMS, kinds=("log", "log", "E", "exp", "exp"), huber_delta=huber_delta)
    return unimodal_from_params(p, _info(res, grid, UNI_PARAMS, huber_delta, N, warn), source,
                                quantity)


def unimodal_from_params(p, info: FitInfo | None = None, source: str = "",
                         quantity: str = "nats") -> UnimodalFit:
    a, b, e, alpha, beta = (float(v) for v in p)
    return UnimodalFit(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta,
                       source=source, quantity=quantity, info=info)


def _warnings(res: MultiStartResult, grid, names, variables, exponents) -> list[str]:
    """Design and boundary warnings of a grid-started fit (:mod:`~mmlaws.laws.identify`)."""
    p = res.params[res.best]
    values = dict(zip(names, (float(v) for v in p), strict=True))
    ranges = {n: (min(grid[n]), max(grid[n])) for n in names}
    return (identify.design_warnings(variables, exponents)
            + identify.value_warnings(values, _boundary(p, grid, names), ranges))


def _info(res: MultiStartResult, grid, names, delta, N, warnings=()) -> FitInfo:
    return FitInfo(
        objective=float(res.values[res.best]), num_starts=len(res.values),
        num_converged=res.num_converged, on_boundary=_boundary(res.params[res.best], grid, names),
        huber_delta=float(delta), num_runs=len(N), outcomes=res.outcomes(),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def fit_bimodal(
    N, D_i, D_j, loss, law_i: UnimodalLaw, law_j: UnimodalLaw, *, huber_delta: float = HUBER_DELTA,
    grid: Mapping | None = None, weights=None, method: str = "lbfgs",
    names: tuple[str, str] = ("i", "j"), base=None,
) -> BimodalFit:
    """Fits (C, A, alpha, B, beta) of Eq. 4 on a pair's runs, the uni-modal laws given.

    ``base`` [R]: ½(L_i + L_j) per pair run. By default it comes from the uni-modal laws; give
    the *observed* losses of uni-modal runs at the pair run's per-modality tokens to fit only
    what the pair adds, so that the uni-modal laws' misfit is not absorbed into C_ij.
    """
    N, D_i, D_j, loss = _as_f64(N, D_i, D_j, loss)
    check_runs({"N": N, "D_i": D_i, "D_j": D_j, "loss": loss}, min_runs=6)
    _check_design(N, D_i + D_j)
    grid = BIMODAL_GRID if grid is None else grid
    w = np.ones_like(N) if weights is None else _as_f64(weights)[0]
    if base is None:
        base = 0.5 * (law_i.predict(N, D_i) + law_j.predict(N, D_j))
    else:
        (base,) = _as_f64(base)
        check_runs({"N": N, "base": base}, min_runs=6)
    args = (np.log(N), np.log(D_i + D_j), base, np.log(loss), w, np.float64(huber_delta))
    res = minimize_multistart(bimodal_objective, grid_starts(grid, BI_PARAMS), args, method=method)
    p = res.params[res.best]
    law = bimodal_from_params(p, law_i, law_j, names)
    pred = base + law.interaction.value(N, D_i + D_j)
    warn = _warnings(res, grid, BI_PARAMS, {"N": N, "D_i + D_j": D_i + D_j},
                     {"alpha": "N", "beta": "D_i + D_j"})
    warn += identify.flat_warnings(
        bimodal_objective, p, args, np.log(np.maximum(pred, 1e-12)) - np.log(loss),
        names=BI_PARAMS, kinds=("C", "log", "log", "exp", "exp"), huber_delta=huber_delta,
        c_scale=identify.residual_scale(loss))
    info = _info(res, grid, BI_PARAMS, huber_delta, N, warn)
    return bimodal_from_params(p, law_i, law_j, names, info)


def bimodal_from_params(p, law_i, law_j, names, info=None) -> BimodalFit:
    c, a, b, alpha, beta = (float(v) for v in p)
    inter = Interaction(C=c, A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)
    return BimodalFit(law_i=law_i, law_j=law_j, interaction=inter, names=tuple(names), info=info)


def nmodal_objective(p, log_n, log_dpair, scale, base, log_l, w, delta):
    """n-modal residuals; ``p`` [5·P] holds (C, a, b, alpha, beta) per pair.

    ``log_dpair``, ``scale`` are [R, P]: log(D_k + D_l) and 4 w_k w_l per run and pair;
    ``base`` [R] is the share-weighted sum of the uni-modal laws.
    """
    q = p.reshape(-1, 5)
    c, a, b, alpha, beta = (q[:, i] for i in range(5))
    inter = (-c + jnp.exp(a - alpha * log_n[:, None]) + jnp.exp(b - beta * log_dpair))
    pred = base + jnp.sum(scale * inter, axis=1)
    log_pred = jnp.log(jnp.maximum(pred, 1e-12))
    return jnp.sum(w * huber(log_pred - log_l, delta))


def fit_nmodal(
    N, D, shares: Sequence[Mapping[str, float]], loss, laws: Mapping[str, UnimodalLaw], *,
    huber_delta: float = HUBER_DELTA, grid: Mapping | None = None, method: str = "lbfgs",
    weights=None,
) -> NModalFit:
    """Fits the pairwise interactions of the n-modal law (``forms`` module) jointly.

    Runs are (N, D total tokens, token shares per modality, loss); the uni-modal ``laws`` are
    given. Every pair that occurs together in some run gets (C, A, alpha, B, beta); each grid row
    starts all pairs at the same values. ``weights`` [R] weigh the runs' residuals, as in the
    other fitters. Per-modality losses in a mixture are :func:`mmlaws.laws.fit_mixture`'s.
    """
    N, D, loss = _as_f64(N, D, loss)
    check_runs({"N": N, "D": D, "loss": loss}, min_runs=6)
    if len(shares) != len(N):
        raise ValueError(f"{len(shares)} share dicts for {len(N)} runs")
    shares = [normalise_shares(s) for s in shares]
    missing = sorted({k for s in shares for k in s} - set(laws))
    if missing:
        raise ValueError(f"no uni-modal law given for {missing}")
    pairs = sorted({p for s in shares for p in pairs_of(list(s))})
    if not pairs:
        raise ValueError("no run mixes two modalities; nothing to fit")
    W = np.array([[s.get(k, 0.0) for k in sorted(laws)] for s in shares])  # [R, M]
    col = {k: i for i, k in enumerate(sorted(laws))}
    base = sum(_weighted(W[:, col[k]], laws[k], N, D) for k in laws)
    wk = np.stack([W[:, col[k]] for k, _ in pairs], 1)
    wl = np.stack([W[:, col[m]] for _, m in pairs], 1)
    scale, dpair = 4 * wk * wl, np.maximum((wk + wl) * D[:, None], 1.0)
    grid = BIMODAL_GRID if grid is None else grid
    starts = np.tile(grid_starts(grid, BI_PARAMS), (1, len(pairs)))
    w = np.ones_like(N) if weights is None else _as_f64(weights)[0]
    if w.shape != N.shape:
        raise ValueError(f"weights has {w.size} entries for {N.size} runs")
    args = (np.log(N), np.log(dpair), scale, base, np.log(loss), w, np.float64(huber_delta))
    res = minimize_multistart(nmodal_objective, starts, args, method=method)
    best = res.params[res.best].reshape(-1, 5)
    inter = {p: Interaction(C=q[0], A=np.exp(q[1]), B=np.exp(q[2]), alpha=q[3], beta=q[4])
             for p, q in zip(pairs, best.tolist(), strict=True)}
    tag = [f"[{k}|{m}]" for k, m in pairs]
    edge = tuple(f"{n}{t}" for t, q in zip(tag, best, strict=True)
                 for n in _boundary(q, grid, BI_PARAMS))
    law = NModalFit(laws=dict(laws), interactions=inter)
    warn = _nmodal_warnings(law, N, D, shares, loss, res, args, tag, edge, grid, huber_delta)
    info = FitInfo(objective=float(res.values[res.best]), num_starts=len(res.values),
                   num_converged=res.num_converged, on_boundary=edge,
                   huber_delta=float(huber_delta), num_runs=len(N), outcomes=res.outcomes(),
                   warnings=tuple(dict.fromkeys(warn)))
    return NModalFit(laws=dict(laws), interactions=inter, info=info)


def _nmodal_warnings(law, N, D, shares, loss, res, args, tag, edge, grid, delta) -> list[str]:
    names = [f"{n}{t}" for t in tag for n in BI_PARAMS]
    values = dict(zip(names, res.params[res.best].tolist(), strict=True))
    ranges = {f"{n}{t}": (min(grid[n]), max(grid[n])) for t in tag for n in BI_PARAMS}
    dpair = np.exp(args[1])
    warn = identify.design_warnings(
        {"N": N, **{f"D{t}": dpair[:, k] for k, t in enumerate(tag)}},
        {"alpha": "N", **{f"beta{t}": f"D{t}" for t in tag}})
    warn += identify.value_warnings(values, edge, ranges)
    pred = law.predict(N, D, shares)
    warn += identify.flat_warnings(
        nmodal_objective, res.params[res.best], args,
        np.log(np.maximum(pred, 1e-12)) - np.log(loss), names=names,
        kinds=("C", "log", "log", "exp", "exp") * len(tag), huber_delta=delta,
        c_scale=identify.residual_scale(loss))
    return warn
