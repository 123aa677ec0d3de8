"""Uncertainty and honesty: bootstrap intervals and held-out prediction error.

Bootstrap refits are vectorised: every replicate is one start of the same multi-start solver,
with its own per-run weights (``method="runs"``: multinomial counts, i.e. resampling runs with
replacement) or its own synthetic losses (``method="residuals"``: the fitted law times resampled
log-residuals, a semi-parametric bootstrap that keeps the design fixed). Each replicate starts at
the full-data optimum. Intervals are percentile intervals over the replicates.

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
    N, D, loss, fit: UnimodalLaw, *, num_samples: int = 1000, method: str = "runs",
    huber_delta: float = HUBER_DELTA, seed: int = 0,
) -> BootstrapResult:
    """Bootstrap of an Eq. 2 fit: refits on resampled runs (or residuals), all at once."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    fitting.check_runs({"N": N, "D": D, "loss": loss}, min_runs=6)
    rng = np.random.default_rng(seed)
    w, log_l = _replicates(rng, num_samples, np.log(loss), np.log(fit.predict(N, D)), method)
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
    method: str = "runs", huber_delta: float = HUBER_DELTA, seed: int = 0,
) -> BootstrapResult:
    """Bootstrap of the interaction terms of an Eq. 4 fit (uni-modal laws held fixed)."""
    N, D_i, D_j, loss = (np.asarray(a, np.float64) for a in (N, D_i, D_j, loss))
    fitting.check_runs({"N": N, "D_i": D_i, "D_j": D_j, "loss": loss}, min_runs=6)
    rng = np.random.default_rng(seed)
    pred = fit.predict(N, D_i, D_j)
    w, log_l = _replicates(rng, num_samples, np.log(loss), np.log(pred), method)
    base = fit.independent(N, D_i, D_j)
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


def _replicates(rng, B, log_loss, log_pred, method):
    """Per-replicate run weights [B, R] and log-losses [B, R]."""
    R = len(log_loss)
    if method == "runs":
        w = rng.multinomial(R, np.full(R, 1.0 / R), size=B).astype(np.float64)
        return w, np.broadcast_to(log_loss, (B, R))
    if method == "residuals":
        resid = log_loss - log_pred
        resid = (resid - resid.mean()) * np.sqrt(R / max(R - 5, 1))  # centred, df-corrected
        return np.ones((B, R)), log_pred + resid[rng.integers(0, R, size=(B, R))]
    raise ValueError(f"unknown bootstrap method {method!r}; expected 'runs' or 'residuals'")


@dataclasses.dataclass(frozen=True)
class HoldoutResult:
    """A law fitted without the held-out runs, and its relative error on them."""

    fit: UnimodalLaw | fitting.BimodalFit
    held_out: np.ndarray  # indices of the held-out runs
    relative_error: np.ndarray  # (predicted - observed) / observed, per held-out run

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.relative_error)))


def holdout_unimodal(N, D, loss, *, num_sizes: int = 1, **fit_kwargs) -> HoldoutResult:
    """Fits without the runs at the ``num_sizes`` largest model sizes; predicts those runs."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    held, train = _held(N, num_sizes, 6)
    f = fitting.fit_unimodal(N[train], D[train], loss[train], **fit_kwargs)
    err = (f.predict(N[held], D[held]) - loss[held]) / loss[held]
    return HoldoutResult(fit=f, held_out=held, relative_error=err)


def _held(N, num_sizes: int, min_fit: int):
    sizes = np.unique(N)
    if sizes.size <= num_sizes + 1:
        raise ValueError(f"{sizes.size} model sizes leave too few to fit after holding out "
                         f"{num_sizes}")
    held = np.flatnonzero(N >= sizes[-num_sizes])
    train = np.setdiff1d(np.arange(len(N)), held)
    if train.size < min_fit:
        raise ValueError(f"holding out the {num_sizes} largest size(s) leaves {train.size} runs; "
                         f"the fit needs {min_fit}")
    return held, train


def holdout_bimodal(N, D_i, D_j, loss, law_i: UnimodalLaw, law_j: UnimodalLaw, *,
                    num_sizes: int = 1, **fit_kwargs) -> HoldoutResult:
    """Eq. 4 fitted without the pair's runs at the ``num_sizes`` largest model sizes; predicts
    those runs. ``law_i``, ``law_j`` should be fitted without those sizes too (a true
    extrapolation); ``fit_kwargs`` go to :func:`~mmlaws.laws.fit.fit_bimodal`."""
    N, D_i, D_j, loss = (np.asarray(a, np.float64) for a in (N, D_i, D_j, loss))
    held, train = _held(N, num_sizes, 6)
    f = fitting.fit_bimodal(N[train], D_i[train], D_j[train], loss[train], law_i, law_j,
                            **fit_kwargs)
    err = (f.predict(N[held], D_i[held], D_j[held]) - loss[held]) / loss[held]
    return HoldoutResult(fit=f, held_out=held, relative_error=err)
