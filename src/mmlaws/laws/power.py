"""Design power: which parameters of a law a set of runs can identify, before training them.

Plant a known law on the design's (N, D) points, add the noise the runs will carry, fit it back
many times as the study will, and look at what comes back:

- **bias**: median estimate relative to the truth, minus 1;
- **spread**: half the 16–84% range of the estimates, relative to the truth (a robust σ);
- **at edge**: the fraction of refits whose estimate ends at or beyond the edge of the
  multi-start grid (``E → 0``, ``α → 2`` …), the symptom a study report would show;
- **coverage** (optional, costly): the fraction of 95% profile-likelihood intervals
  (:mod:`mmlaws.laws.profile`) that contain the truth.

A parameter is *identified* when all three of bias, spread and edge fraction are within
:class:`PowerCriteria`. Refits of all replicates run as one batched solve
(:func:`~mmlaws.laws.solver.minimize_multistart` with per-start data), each replicate from the
planted law and a coarse grid around Hoffmann's, so a few hundred replicates take seconds.

Noise is multiplicative, ``L · exp(ε)``, ``ε ~ N(0, noise²)``: ``noise = 0.01`` is a 1% seed
spread of the final loss. For the pair, :func:`interaction_power` plants Eq. 4 on top of the
observed uni-modal losses (each with its own noise) and refits what the pair adds, as the
study fits it (:func:`mmlaws.laws.fit.fit_bimodal` with an observed ``base``).

>>> from mmlaws.laws.forms import UnimodalLaw
>>> law = UnimodalLaw(E=1.5, A=40.0, B=300.0, alpha=0.35, beta=0.3)
>>> N, D = np.meshgrid([1e4, 3e4, 1e5, 3e5, 1e6], [1e6, 3e6, 1e7, 3e7])
>>> p = design_power(N.ravel(), D.ravel(), law, noise=0.005, replicates=16)
>>> p.params["alpha"].identified
True
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.laws import fit as fitting
from mmlaws.laws.forms import Interaction, UnimodalLaw
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.solver import minimize_multistart
from mmlaws.laws.uncertainty import REFIT_TOLERANCES

# Starts of each replicate's refit besides the planted law: a coarse version of Hoffmann's grid.
POWER_GRID: dict[str, tuple[float, ...]] = {
    "a": (0.0, 10.0, 20.0), "b": (0.0, 10.0, 20.0), "e": (-1.0, 0.0, 1.0),
    "alpha": (0.1, 0.6, 1.5), "beta": (0.1, 0.6, 1.5),
}
POWER_BIMODAL_GRID: dict[str, tuple[float, ...]] = {
    "C": (-0.1, 0.0, 0.1), "a": (-5.0, 0.0, 5.0), "b": (-5.0, 5.0, 15.0),
    "alpha": (0.1, 0.6, 1.5), "beta": (0.1, 0.6, 1.5),
}


@dataclasses.dataclass(frozen=True)
class PowerCriteria:
    """When a parameter counts as identified by a design (all three must hold)."""

    max_abs_bias: float = 0.10  # |median / truth − 1|
    max_spread: float = 0.25  # half the 16–84% range / |truth|, for E, C and the exponents
    max_coefficient_spread: float = 1.0  # the same for A and B, which ride with their exponent
    max_at_edge: float = 0.05  # fraction of refits at the grid's edge


@dataclasses.dataclass(frozen=True)
class ParameterPower:
    """How one parameter comes back over the refits of a planted law."""

    name: str
    truth: float
    median: float
    bias: float
    spread: float
    at_edge: float
    coverage: float | None
    identified: bool
    width: float | None = None  # median width of the 95% profile intervals (with coverage)

    def line(self) -> str:
        verdict = "identified" if self.identified else "NOT identified"
        cov = "" if self.coverage is None else (f", 95% profile coverage {self.coverage:.0%}, "
                                                f"median width {self.width:.3g}")
        return (f"{self.name}: {verdict} (truth {self.truth:.4g}, bias {self.bias:+.1%}, "
                f"spread {self.spread:.1%}, at grid edge {self.at_edge:.0%}{cov})")


@dataclasses.dataclass(frozen=True)
class DesignPower:
    """What a design identifies of a planted law: one :class:`ParameterPower` per parameter."""

    law: str
    params: Mapping[str, ParameterPower]
    noise: float
    replicates: int
    num_runs: int
    num_converged: int

    @property
    def unidentified(self) -> list[str]:
        return [k for k, v in self.params.items() if not v.identified]

    def lines(self) -> list[str]:
        head = (f"design power of {self.law}: {self.num_runs} runs, {self.noise:.1%} noise, "
                f"{self.replicates} planted refits ({self.num_converged} converged)")
        return [head, *(f"  {p.line()}" for p in self.params.values())]

    def as_dict(self) -> dict:
        return {"law": self.law, "noise": self.noise, "replicates": self.replicates,
                "num_runs": self.num_runs, "num_converged": self.num_converged,
                "params": {k: dataclasses.asdict(v) for k, v in self.params.items()}}


def rescale_law(law: UnimodalLaw, N, D, *, reference_N, reference_D) -> UnimodalLaw:
    """``law`` moved from its own design to another: same exponents and E, and A, B chosen so
    that A/N^α and B/D^β at the new design's geometric centre equal their values at the
    reference design's centre (a Table 1 law planted on a CPU-scale design)."""
    gm = lambda x: float(np.exp(np.mean(np.log(np.asarray(x, np.float64)))))
    A = law.A * (gm(N) / gm(reference_N)) ** law.alpha
    B = law.B * (gm(D) / gm(reference_D)) ** law.beta
    return UnimodalLaw(E=law.E, A=A, B=B, alpha=law.alpha, beta=law.beta,
                       source=f"{law.source} rescaled to the design".strip())


def _starts(truth: Sequence[float], grid: Mapping[str, Sequence[float]], names) -> np.ndarray:
    return np.concatenate([np.asarray(truth, np.float64)[None],
                           fitting.grid_starts(grid, names)])


def _best_per_replicate(res, B: int, S: int) -> tuple[np.ndarray, int]:
    """[B, P] best parameters of each replicate's S starts, and how many replicates have a
    converged best start."""
    values = res.values.reshape(B, S)
    best = np.argmin(values, axis=1)
    params = res.params.reshape(B, S, -1)[np.arange(B), best]
    converged = res.converged.reshape(B, S)[np.arange(B), best]
    return params, int(converged.sum())


def _summarise(name, truth, est, edge, covered, criteria: PowerCriteria,
               widths=None) -> ParameterPower:
    est = np.asarray(est, np.float64)
    finite = est[np.isfinite(est)]
    scale = abs(truth) if truth != 0 else 1.0
    med = float(np.median(finite)) if finite.size else float("nan")
    lo, hi = (np.percentile(finite, [16, 84]) if finite.size else (np.nan, np.nan))
    bias, spread = med / truth - 1.0 if truth else med, float(hi - lo) / 2.0 / scale
    at_edge = float(np.mean(edge))
    max_spread = criteria.max_coefficient_spread if name in ("A", "B") else criteria.max_spread
    ok = (abs(bias) <= criteria.max_abs_bias and spread <= max_spread
          and at_edge <= criteria.max_at_edge)
    cov = None if covered is None else float(np.mean(covered))
    width = None if widths is None else float(np.median(widths))  # unbounded ones count as inf
    return ParameterPower(name, float(truth), med, float(bias), spread, at_edge, cov, bool(ok),
                          width)


def _edges(values: np.ndarray, grid: Mapping[str, Sequence[float]], name: str) -> np.ndarray:
    lo, hi = min(grid[name]), max(grid[name])
    tol = 1e-6 * (hi - lo)
    return (values <= lo + tol) | (values >= hi - tol)


def design_power(
    N, D, law: UnimodalLaw, *, noise: float = 0.01, replicates: int = 200,
    huber_delta: float = HUBER_DELTA, edge_grid: Mapping | None = None,
    start_grid: Mapping | None = None, coverage: int = 0, seed: int = 0,
    criteria: PowerCriteria = PowerCriteria(), name: str = "Eq. 2",
) -> DesignPower:
    """Plants ``law`` on the runs at (N, D), refits ``replicates`` noisy copies, reports power.

    Args:
      N, D: the design's runs (parameters, tokens), one entry per run (repeat a point for
        several seeds).
      law: the planted law (see :func:`rescale_law` to move a published one to the design).
      noise: σ of the multiplicative log-normal noise on each run's loss.
      huber_delta: the fit's Huber δ; ``edge_grid``: the grid whose edges count as "at edge"
        (default Hoffmann's, the study's); ``start_grid``: the refits' extra starts.
      coverage: profile-likelihood intervals for α and β on this many replicates (each costs a
        batched solve; 0 skips coverage).
    """
    N, D = (np.asarray(a, np.float64).ravel() for a in (N, D))
    fitting.check_runs({"N": N, "D": D, "loss": law.predict(N, D)}, min_runs=6)
    fitting._check_design(N, D)
    if not 0 < noise < 0.5 or replicates < 2:
        raise ValueError(f"noise={noise} must be in (0, 0.5) and replicates={replicates} >= 2")
    edge_grid = fitting.HOFFMANN_GRID if edge_grid is None else edge_grid
    rng = np.random.default_rng(seed)
    truth = law.predict(N, D)
    log_l = np.log(truth)[None] + rng.normal(0.0, noise, (replicates, len(N)))  # [B, R]
    p_true = [np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta]
    starts = _starts(p_true, start_grid or POWER_GRID, fitting.UNI_PARAMS)
    S, B, R = len(starts), replicates, len(N)
    rep = lambda a: np.repeat(np.asarray(a), S, axis=0)
    args = (np.broadcast_to(np.log(N), (B * S, R)), np.broadcast_to(np.log(D), (B * S, R)),
            rep(log_l), np.ones((B * S, R)), np.full((B * S,), huber_delta))
    res = minimize_multistart(fitting.unimodal_objective, np.tile(starts, (B, 1)), args,
                              batched_args=True, **REFIT_TOLERANCES)
    best, converged = _best_per_replicate(res, B, S)
    a, b, e, alpha, beta = best.T
    with np.errstate(over="ignore"):
        est = {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
    raw = {"E": e, "A": a, "B": b, "alpha": alpha, "beta": beta}
    grid_name = {"E": "e", "A": "a", "B": "b", "alpha": "alpha", "beta": "beta"}
    covered, widths = (_coverage(N, D, log_l[:coverage], best[:coverage], huber_delta, law)
                       if coverage else ({}, {}))
    params = {k: _summarise(k, getattr(law, k), est[k], _edges(raw[k], edge_grid, grid_name[k]),
                            covered.get(k), criteria, widths.get(k))
              for k in ("E", "A", "B", "alpha", "beta")}
    return DesignPower(name, params, noise, replicates, R, converged)


def _coverage(N, D, log_l, best, huber_delta, law):
    """Whether each replicate's 95% profile intervals for α and β cover the truth, and their
    widths (``inf`` where an end is unbounded or the profile failed): two dicts of [B]."""
    from mmlaws.laws.profile import profile_unimodal

    out, widths = {"alpha": [], "beta": []}, {"alpha": [], "beta": []}
    for ll, p in zip(log_l, best, strict=True):
        fit = fitting.unimodal_from_params(p)
        try:
            prof = profile_unimodal(N, D, np.exp(ll), fit, huber_delta=huber_delta)
        except ValueError:
            for k in out:
                out[k].append(False)
                widths[k].append(np.inf)
            continue
        for k in out:
            out[k].append(prof[k].covers(getattr(law, k)))
            widths[k].append(prof[k].upper - prof[k].lower if prof[k].bounded else np.inf)
    return ({k: np.asarray(v) for k, v in out.items()},
            {k: np.asarray(v, np.float64) for k, v in widths.items()})


def interaction_power(
    N, D_pair, base, term: Interaction, *, noise: float = 0.01, replicates: int = 200,
    huber_delta: float = HUBER_DELTA, edge_grid: Mapping | None = None,
    start_grid: Mapping | None = None, seed: int = 0,
    criteria: PowerCriteria = PowerCriteria(), name: str = "Eq. 4 interaction",
) -> DesignPower:
    """Power of a pair design for Eq. 4's interaction terms, fitted on what the pair adds.

    ``base`` [R] is ½(L_i + L_j) of the matched uni-modal runs and ``D_pair`` the pair runs'
    total tokens. Each replicate draws noise on both uni-modal losses and on the pair loss, and
    refits (C, A, α, B, β) against the *observed* base, as the study does.
    """
    N, D_pair, base = (np.asarray(a, np.float64).ravel() for a in (N, D_pair, base))
    if not 0 < noise < 0.5 or replicates < 2:
        raise ValueError(f"noise={noise} must be in (0, 0.5) and replicates={replicates} >= 2")
    edge_grid = fitting.BIMODAL_GRID if edge_grid is None else edge_grid
    rng = np.random.default_rng(seed)
    B, R = replicates, len(N)
    pair = base + term.value(N, D_pair)
    if np.any(pair <= 0):
        raise ValueError("the planted interaction makes some pair losses non-positive")
    # ½(L_i e^ε_i + L_j e^ε_j) ≈ base · e^(ε/√2) to first order: the mean of two noisy losses.
    base_obs = base[None] * np.exp(rng.normal(0.0, noise / np.sqrt(2.0), (B, R)))
    log_l = np.log(pair)[None] + rng.normal(0.0, noise, (B, R))
    p_true = [term.C, np.log(term.A), np.log(term.B), term.alpha, term.beta]
    starts = _starts(p_true, start_grid or POWER_BIMODAL_GRID, fitting.BI_PARAMS)
    S = len(starts)
    rep = lambda a: np.repeat(np.asarray(a), S, axis=0)
    args = (np.broadcast_to(np.log(N), (B * S, R)), np.broadcast_to(np.log(D_pair), (B * S, R)),
            rep(base_obs), rep(log_l), np.ones((B * S, R)), np.full((B * S,), huber_delta))
    res = minimize_multistart(fitting.bimodal_objective, np.tile(starts, (B, 1)), args,
                              batched_args=True, **REFIT_TOLERANCES)
    best, converged = _best_per_replicate(res, B, S)
    c, a, b, alpha, beta = best.T
    with np.errstate(over="ignore"):
        est = {"C": c, "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
    raw = {"C": c, "A": a, "B": b, "alpha": alpha, "beta": beta}
    grid_name = {"C": "C", "A": "a", "B": "b", "alpha": "alpha", "beta": "beta"}
    params = {k: _summarise(k, getattr(term, k), est[k], _edges(raw[k], edge_grid, grid_name[k]),
                            None, criteria)
              for k in ("C", "A", "B", "alpha", "beta")}
    return DesignPower(name, params, noise, replicates, R, converged)


def design_points(sizes: Sequence[float], budgets: Sequence[float], *,
                  seeds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) of a full grid of model sizes × token budgets, each point ``seeds`` times."""
    pts = list(itertools.product(sizes, budgets)) * seeds
    N, D = (np.array(v, np.float64) for v in zip(*pts, strict=True))
    return N, D
