"""Profile-likelihood intervals for fitted laws: the better interval when bootstraps undercover.

With the paper's design (seven sizes × three data sizes) the data exponent β is weakly
identified: (B, β, E) ride a long curved ridge, and percentile bootstrap intervals refitted from
the full-data optimum cover the true β only about 80% of the time at 1% noise
(``benchmarks/laws_coverage.py``). A profile interval follows the ridge instead. For a parameter
θ_k, every value on a grid is held fixed while the other parameters are refitted (multi-start,
all grid values in one batched solve), and the interval is the set of values where the
robust likelihood-ratio statistic (Huber 1981, §7.10)

    T(θ_k) = 2 [H(θ_k) − H_min] · mean ψ'(r) / s²,   s² = Σ ψ(r)² / (n − p)

stays below the F(1, n − p) quantile (as for nonlinear least squares, where T reduces to the
usual ΔRSS / s²; ψ = clip(r, ±δ) is the Huber score of the log-residuals r at the optimum and p
the number of fitted parameters). Crossings are linearly interpolated between grid points; the
window widens until both are found (``bounded`` says whether they were).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from mmlaws.laws import fit as fitting
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.solver import minimize_multistart
from mmlaws.laws.uncertainty import REFIT_TOLERANCES

# Extra starts for the refits at each fixed value (besides the optimum itself): log-coefficients
# over Hoffmann's range, exponents within [0, 1].
_LOG_COEF = (0.0, 10.0, 20.0)
_EXPONENT = (0.0, 0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class ProfileInterval:
    """A profile-likelihood interval of one parameter, with the profile it came from."""

    name: str
    estimate: float
    lower: float
    upper: float
    level: float
    values: np.ndarray  # [G] the fixed values tried
    statistic: np.ndarray  # [G] T at each value
    threshold: float  # the F(1, n - p) quantile T is compared with
    bounded: bool  # both ends found inside the widest window

    def covers(self, value: float) -> bool:
        return self.lower <= value <= self.upper


@functools.lru_cache(maxsize=32)
def _fixed(objective, which: int):
    """``objective`` with parameter ``which`` taken from an argument instead of the vector."""
    def fun(q, value, *args):
        return objective(jnp.concatenate([q[:which], value[None], q[which:]]), *args)
    return fun



def _extra_starts(kinds: tuple[str, ...]) -> np.ndarray:
    """A grid over the free parameters: 'log' parameters on Hoffmann's range, exponents on
    [0, 1], 'C' on a few values either side of 0."""
    axes = {"log": _LOG_COEF, "exp": _EXPONENT, "C": (-0.5, 0.0, 0.5)}
    return np.array(list(itertools.product(*(axes[k] for k in kinds))), dtype=np.float64)


def profile_interval(
    objective, p_hat, data_args: tuple, residuals, *, names: tuple[str, ...],
    kinds: tuple[str, ...], which: str, huber_delta: float, level: float = 0.95,
    num_points: int = 25, width: float = 0.25, max_passes: int = 6,
) -> ProfileInterval:
    """Profile interval of parameter ``which`` (one of ``names``) of a fitted objective.

    ``data_args`` are the objective's arguments after the parameter vector (shared by all
    refits); ``residuals`` [n] are the log-residuals at ``p_hat``; ``kinds`` says for each
    parameter whether it is a log-coefficient (``"log"``), an exponent (``"exp"``) or ``"C"``,
    which sets the extra starts of the refits.
    """
    p_hat = np.asarray(p_hat, np.float64)
    k = names.index(which)
    n, p = len(residuals), len(p_hat)
    if n <= p:
        raise ValueError(f"{n} runs leave no degrees of freedom for {p} parameters")
    psi = np.clip(residuals, -huber_delta, huber_delta)
    slope = np.mean(np.abs(residuals) <= huber_delta)
    s2 = float(np.sum(psi**2) / (n - p))
    if slope == 0 or s2 == 0:
        raise ValueError("every residual is outside the Huber threshold or all are zero; "
                         "no likelihood-ratio scale can be formed")
    threshold = float(stats.f.ppf(level, 1, n - p))
    with jax.enable_x64(True):
        h_min = float(objective(jnp.asarray(p_hat), *data_args))
    rest = np.delete(p_hat, k)
    starts = np.concatenate([rest[None], _extra_starts(kinds[:k] + kinds[k + 1:])])
    fun = _fixed(objective, k)
    for _ in range(max_passes):
        values = p_hat[k] + np.linspace(-width, width, num_points)  # same shape: one compilation
        h = _refit(fun, starts, values, data_args)
        stat = 2.0 * (h - min(h_min, h.min())) * slope / s2
        lower, upper, bounded = _crossings(values, stat, threshold, p_hat[k])
        if not bounded:  # an end lies outside the window: widen it
            width *= 2.0
            continue
        if np.sum(stat <= threshold) >= num_points // 3:
            break
        # the interval spans few grid points: zoom in on it for accurate crossings
        spacing = values[1] - values[0]
        width = 1.25 * (max(p_hat[k] - lower, upper - p_hat[k]) + spacing)
    return ProfileInterval(which, float(p_hat[k]), lower, upper, level, values, stat, threshold,
                           bounded)


def _refit(fun, starts, grid, data_args) -> np.ndarray:
    """Best objective over ``starts`` at each fixed value of ``grid`` (one batched solve)."""
    K, G = len(starts), len(grid)
    S = K * G
    args = (np.repeat(grid, K),) + tuple(np.broadcast_to(a, (S,) + np.shape(a)) for a in data_args)
    res = minimize_multistart(fun, np.tile(starts, (G, 1)), args, batched_args=True,
                              **REFIT_TOLERANCES)
    return res.values.reshape(G, K).min(axis=1)


def _crossings(values, stat, threshold, estimate):
    """Interpolated ends of {stat ≤ threshold} around the estimate; (lower, upper, bounded)."""
    inside = stat <= threshold
    centre = int(np.argmin(np.abs(values - estimate)))
    if not inside[centre]:
        centre = int(np.argmin(stat))
    lo = centre
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    hi = centre
    while hi < len(values) - 1 and inside[hi + 1]:
        hi += 1

    def cross(a, b):  # a inside, b outside
        t = (threshold - stat[a]) / (stat[b] - stat[a])
        return float(values[a] + t * (values[b] - values[a]))

    lower = cross(lo, lo - 1) if lo > 0 else float(values[0])
    upper = cross(hi, hi + 1) if hi < len(values) - 1 else float(values[-1])
    return lower, upper, bool(lo > 0 and hi < len(values) - 1)


# ----------------------------------------------------------------------------- public helpers
def profile_unimodal(
    N, D, loss, fit, *, params: tuple[str, ...] = ("alpha", "beta"), level: float = 0.95,
    huber_delta: float = HUBER_DELTA, num_points: int = 25,
) -> dict[str, ProfileInterval]:
    """Profile intervals of an Eq. 2 fit's parameters (``alpha``, ``beta``; or ``a``, ``b``,
    ``e`` for log A, log B, log E)."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    fitting.check_runs({"N": N, "D": D, "loss": loss}, min_runs=6)
    p_hat = np.array([np.log(fit.A), np.log(fit.B), np.log(fit.E), fit.alpha, fit.beta])
    data = (np.log(N), np.log(D), np.log(loss), np.ones_like(N), np.float64(huber_delta))
    r = np.log(fit.predict(N, D)) - np.log(loss)
    kinds = ("log", "log", "log", "exp", "exp")
    return {q: profile_interval(fitting.unimodal_objective, p_hat, data, r,
                                names=fitting.UNI_PARAMS, kinds=kinds, which=q,
                                huber_delta=huber_delta, level=level, num_points=num_points)
            for q in params}


def profile_bimodal(
    N, D_i, D_j, loss, fit, *, params: tuple[str, ...] = ("alpha", "beta"), level: float = 0.95,
    huber_delta: float = HUBER_DELTA, num_points: int = 25, base=None,
) -> dict[str, ProfileInterval]:
    """Profile intervals of an Eq. 4 fit's interaction parameters (``C``, ``a``, ``b``,
    ``alpha``, ``beta``), the uni-modal part held fixed as in the fit: the laws' ½(L_i + L_j),
    or the observed ``base`` the fit used (:func:`~mmlaws.laws.fit.fit_bimodal`)."""
    N, D_i, D_j, loss = (np.asarray(a, np.float64) for a in (N, D_i, D_j, loss))
    fitting.check_runs({"N": N, "D_i": D_i, "D_j": D_j, "loss": loss}, min_runs=6)
    t = fit.interaction
    p_hat = np.array([t.C, np.log(t.A), np.log(t.B), t.alpha, t.beta])
    base = fit.independent(N, D_i, D_j) if base is None else np.asarray(base, np.float64)
    data = (np.log(N), np.log(D_i + D_j), base, np.log(loss), np.ones_like(N),
            np.float64(huber_delta))
    r = np.log(base + t.value(N, D_i + D_j)) - np.log(loss)
    kinds = ("C", "log", "log", "exp", "exp")
    return {q: profile_interval(fitting.bimodal_objective, p_hat, data, r,
                                names=fitting.BI_PARAMS, kinds=kinds, which=q,
                                huber_delta=huber_delta, level=level, num_points=num_points)
            for q in params}
