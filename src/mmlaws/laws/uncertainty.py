"""Uncertainty and honesty: bootstrap intervals and held-out prediction error.

Bootstrap refits are vectorised: every replicate is one start of the same multi-start solver,
with its own per-run weights or its own synthetic losses:

- ``method="stratified"`` (the default): runs resampled with replacement *within each model
  size*, so that no replicate loses a size (on a grid of four sizes × two budgets, resampling
  whole runs drops at least one size in about 38% of replicates, and α then wanders freely);
- ``method="runs"``: runs resampled with replacement over the whole table (multinomial counts);
- ``method="residuals"``: the fitted law times resampled log-residuals, a semi-parametric
  bootstrap that keeps the design fixed.

Each replicate starts at the full-data optimum. Intervals are percentile intervals.

At the paper's design the percentile intervals undercover the weakly identified exponents (β of
Eq. 2 about 81% at 1% noise, the Eq. 4 exponents 62–75%; ``benchmarks/laws_coverage.py``); the
profile-likelihood intervals of :mod:`mmlaws.laws.profile` reach 90–95% there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from mmlaws.laws import fit as fitting
from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.solver import minimize_multistart

# Replicates start at the full-data optimum and need accurate optima rather than the multi-start
# screening tolerances: stop on a gradient entry below 1e-9 or a reduction below 1e-13.
REFIT_TOLERANCES = {"tol": 1e-9, "ftol": 1e-13}


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """Replicate estimates of each parameter (name → [B]) and how many refits converged."""

    samples: Mapping[str, np.ndarray]
    num_converged: int
    method: str

    @property
    def num_samples(self) -> int:
        return len(next(iter(self.samples.values())))

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile interval of every sampled quantity."""
        q = (0.5 * (1 - level), 0.5 * (1 + level))
        def bounds(v):  # linear interpolation, or order statistics where some are ±∞
            method = "linear" if np.all(np.isfinite(v)) else "inverted_cdf"
            return tuple(float(x) for x in np.quantile(v, q, method=method))
        return {k: bounds(np.asarray(v, np.float64)) for k, v in self.samples.items()}

    def derive(self, name: str, fn: Callable[..., np.ndarray]) -> BootstrapResult:
        """Adds a derived quantity computed from each replicate's parameters (keyword args)."""
        values = np.asarray(fn(**self.samples), dtype=np.float64)
        return dataclasses.replace(self, samples={**self.samples, name: values})


def bootstrap_unimodal(
    N, D, loss, fit: UnimodalLaw, *, num_samples: int = 1000, method: str = "stratified",
    huber_delta: float = HUBER_DELTA, seed: int = 0,
) -> BootstrapResult:
    """Bootstrap of an Eq. 2 fit: refits on resampled runs (or residuals), all at once."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    fitting.check_runs({"N": N, "D": D, "loss": loss}, min_runs=6)
    rng = np.random.default_rng(seed)
    w, log_l = _replicates(rng, num_samples, np.log(loss), np.log(fit.predict(N, D)), method, N)
    B = num_samples
    args = (np.broadcast_to(np.log(N), (B, len(N))), np.broadcast_to(np.log(D), (B, len(N))),
            log_l, w, np.full((B,), huber_delta))
    p0 = np.log([fit.A, fit.B, fit.E]).tolist() + [fit.alpha, fit.beta]
    res = minimize_multistart(fitting.unimodal_objective, np.tile(p0, (B, 1)), args,
                              batched_args=True, **REFIT_TOLERANCES)
    a, b, e, alpha, beta = res.params.T
    samples = {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
    return BootstrapResult(samples, res.num_converged, method)


def bootstrap_bimodal(
    N, D_i, D_j, loss, fit: fitting.BimodalFit, *, num_samples: int = 1000,
    method: str = "stratified", huber_delta: float = HUBER_DELTA, seed: int = 0, base=None,
) -> BootstrapResult:
    """Bootstrap of the interaction terms of an Eq. 4 fit (uni-modal laws held fixed).

    ``base``: the observed ½(L_i + L_j) the fit used (:func:`~mmlaws.laws.fit.fit_bimodal`);
    default, the uni-modal laws' prediction."""
    N, D_i, D_j, loss = (np.asarray(a, np.float64) for a in (N, D_i, D_j, loss))
    fitting.check_runs({"N": N, "D_i": D_i, "D_j": D_j, "loss": loss}, min_runs=6)
    rng = np.random.default_rng(seed)
    base = fit.independent(N, D_i, D_j) if base is None else np.asarray(base, np.float64)
    pred = base + fit.interaction.value(N, D_i + D_j)
    w, log_l = _replicates(rng, num_samples, np.log(loss), np.log(pred), method, N)
    B, R = num_samples, len(N)
    args = (np.broadcast_to(np.log(N), (B, R)), np.broadcast_to(np.log(D_i + D_j), (B, R)),
            np.broadcast_to(base, (B, R)), log_l, w, np.full((B,), huber_delta))
    t = fit.interaction
    p0 = [t.C, np.log(t.A), np.log(t.B), t.alpha, t.beta]
    res = minimize_multistart(fitting.bimodal_objective, np.tile(p0, (B, 1)), args,
                              batched_args=True, **REFIT_TOLERANCES)
    c, a, b, alpha, beta = res.params.T
    samples = {"C": c, "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
    return BootstrapResult(samples, res.num_converged, method)


def _replicates(rng, B, log_loss, log_pred, method, N):
    """Per-replicate run weights [B, R] and log-losses [B, R]."""
    R = len(log_loss)
    if method == "stratified":
        w = np.zeros((B, R))
        for size in np.unique(N):
            idx = np.flatnonzero(N == size)
            w[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=B)
        return w, np.broadcast_to(log_loss, (B, R))
    if method == "runs":
        w = rng.multinomial(R, np.full(R, 1.0 / R), size=B).astype(np.float64)
        return w, np.broadcast_to(log_loss, (B, R))
    if method == "residuals":
        resid = log_loss - log_pred
        resid = (resid - resid.mean()) * np.sqrt(R / max(R - 5, 1))  # centred, df-corrected
        return np.ones((B, R)), log_pred + resid[rng.integers(0, R, size=(B, R))]
    raise ValueError(f"unknown bootstrap method {method!r}; expected 'stratified', 'runs' or "
                     "'residuals'")


@dataclasses.dataclass(frozen=True)
class HoldoutResult:
    """A law fitted without the held-out runs, and its error on them.

    ``relative_error`` is (predicted − observed) / observed per held-out run; ``reducible_error``
    the same error as a fraction of the observed reducible loss, (predicted − observed) /
    (observed − E), E from the refitted law (the part of the loss a law has to explain). Where
    the refit's E reaches within ``MIN_REDUCIBLE`` (1%) of a held-out loss the fraction has no
    meaning (it grows without bound as E nears the loss): it is NaN there, and so is the mean.
    """

    fit: UnimodalLaw | fitting.BimodalFit
    held_out: np.ndarray  # indices of the held-out runs
    relative_error: np.ndarray  # [H]
    reducible_error: np.ndarray  # [H]
    axis: str = "N"  # what was held out: the largest model sizes ("N") or budgets ("D")

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.relative_error)))

    @property
    def mean_abs_reducible_error(self) -> float:
        """NaN when any held-out run's reducible loss is undefined (see the class)."""
        return float(np.mean(np.abs(self.reducible_error)))


def holdout_unimodal(N, D, loss, *, num_sizes: int = 1, axis: str = "N",
                     **fit_kwargs) -> HoldoutResult:
    """Fits without the runs at the ``num_sizes`` largest values of ``axis`` (``"N"``: model
    sizes, ``"D"``: token budgets); predicts those runs."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    held, train = _held({"N": N, "D": D}, axis, num_sizes, 6)
    f = fitting.fit_unimodal(N[train], D[train], loss[train], **fit_kwargs)
    pred = f.predict(N[held], D[held])
    return _result(f, held, pred, loss[held], f.E, axis)


MIN_REDUCIBLE = 0.01  # reducible loss below this fraction of the loss: no % of it is reported


def _result(f, held, pred, observed, E, axis) -> HoldoutResult:
    err = pred - observed
    reducible = observed - E
    defined = reducible >= MIN_REDUCIBLE * observed
    return HoldoutResult(fit=f, held_out=held, relative_error=err / observed,
                         reducible_error=np.where(defined, err / np.where(defined, reducible, 1.0),
                                                  np.nan), axis=axis)


def _held(columns: dict, axis: str, num_sizes: int, min_fit: int):
    if axis not in columns:
        raise ValueError(f"hold-out axis {axis!r}: expected one of {sorted(columns)}")
    x = columns[axis]
    values = np.unique(x)
    what = "model sizes" if axis == "N" else "token budgets"
    if values.size <= num_sizes + 1:
        raise ValueError(f"{values.size} {what} leave too few to fit after holding out "
                         f"{num_sizes}")
    held = np.flatnonzero(x >= values[-num_sizes])
    train = np.setdiff1d(np.arange(len(x)), held)
    if train.size < min_fit:
        raise ValueError(f"holding out the {num_sizes} largest {what} leaves {train.size} runs; "
                         f"the fit needs {min_fit}")
    return held, train


def holdout_bimodal(N, D_i, D_j, loss, law_i: UnimodalLaw, law_j: UnimodalLaw, *,
                    num_sizes: int = 1, axis: str = "N", base=None,
                    **fit_kwargs) -> HoldoutResult:
    """Eq. 4 fitted without the pair's runs at the ``num_sizes`` largest model sizes (``axis``
    ``"N"``) or total budgets (``"D"``); predicts those runs. ``law_i``, ``law_j`` should be
    fitted without those runs too (a true extrapolation); ``base`` (observed ½(L_i + L_j)) as in
    :func:`~mmlaws.laws.fit.fit_bimodal` for the fitted runs — the held-out runs are predicted
    from the laws alone. ``fit_kwargs`` go to :func:`~mmlaws.laws.fit.fit_bimodal`."""
    N, D_i, D_j, loss = (np.asarray(a, np.float64) for a in (N, D_i, D_j, loss))
    held, train = _held({"N": N, "D": D_i + D_j}, axis, num_sizes, 6)
    kw = dict(fit_kwargs)
    if base is not None:
        kw["base"] = np.asarray(base, np.float64)[train]
    f = fitting.fit_bimodal(N[train], D_i[train], D_j[train], loss[train], law_i, law_j, **kw)
    pred = f.predict(N[held], D_i[held], D_j[held])
    E = 0.5 * (law_i.E + law_j.E)
    return _result(f, held, pred, loss[held], E, axis)
