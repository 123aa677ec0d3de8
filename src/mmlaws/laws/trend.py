"""What a pair adds, read from its runs without a law: the trend of L_pair − ½(L_i + L_j).

Eq. 4 writes the pair's loss as ½(L_i + L_j) plus an interaction −C + A/N^α + B/D^β that falls
with N and D (α, β > 0). Where its fit is degenerate (a constant absorbed by C and B with β
near 0, α at the grid's edge), the observed differences of matched finished runs still say
what the pair adds and how that moves with size and data: :func:`interaction_trend` fits
Δ = c + s_N·log10(N/N̄) + s_D·log10(D/D̄) by least squares, with t intervals. A slope in D whose
interval lies above 0 says the pair falls behind with data, which Eq. 4 cannot represent.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class InteractionTrend:
    """What a pair adds, read from the runs without a law: Δ = L_pair − ½(L_i + L_j) (nats;
    positive: competition, negative: synergy, Eq. 5) of matched finished runs, fitted by least
    squares as ``Δ = c + s_N·log10(N / N̄) + s_D·log10(D / D̄)`` (D the pair's total tokens, N̄ and
    D̄ their geometric means), with 95% t intervals."""

    num_runs: int
    mean: float  # c: Δ at the geometric-mean N and D
    mean_ci: tuple[float, float]
    per_decade_N: float
    per_decade_N_ci: tuple[float, float]
    per_decade_D: float
    per_decade_D_ci: tuple[float, float]
    residual_sd: float
    above: int  # runs with Δ > 0 (competition)

    @property
    def grows_with_data(self) -> bool:
        """Δ rises with D beyond doubt: the pair falls behind with data, which Eq. 4's
        interaction (decreasing in D for B_ij, β_ij > 0) cannot represent."""
        return self.per_decade_D_ci[0] > 0

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "grows_with_data": self.grows_with_data}


def interaction_trend(N, D, delta) -> InteractionTrend:
    """:class:`InteractionTrend` of runs at parameters ``N`` [R], pair tokens ``D`` [R] and
    observed Δ = L_pair − ½(L_i + L_j) [R]. Needs 5 runs over at least two N and two D."""
    from scipy import stats

    N, D, delta = (np.asarray(a, np.float64).ravel() for a in (N, D, delta))
    if len(N) < 5 or len(set(N)) < 2 or len(set(D)) < 2:
        raise ValueError(f"a trend needs 5 matched runs over 2 sizes and 2 budgets; got {len(N)} "
                         f"runs, {len(set(N))} sizes, {len(set(D))} budgets")
    x_n, x_d = np.log10(N) - np.log10(N).mean(), np.log10(D) - np.log10(D).mean()
    X = np.stack([np.ones_like(x_n), x_n, x_d], axis=1)
    coef, *_ = np.linalg.lstsq(X, delta, rcond=None)
    dof = len(delta) - 3
    resid = delta - X @ coef
    s2 = float(resid @ resid) / dof
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    t = float(stats.t.ppf(0.975, dof))
    ci = lambda k: (float(coef[k] - t * se[k]), float(coef[k] + t * se[k]))
    return InteractionTrend(len(delta), float(coef[0]), ci(0), float(coef[1]), ci(1),
                            float(coef[2]), ci(2), float(np.sqrt(s2)), int(np.sum(delta > 0)))
