"""Profile-likelihood intervals against the Wald interval of the linearised model."""

import numpy as np
import pytest
from scipy import stats

from mmlaws.laws import PAPER_DESIGN_D, PAPER_DESIGN_N, TABLE1, fit_unimodal, profile_unimodal
from mmlaws.laws.fit import HOFFMANN_GRID
from mmlaws.laws.profile import _crossings

GRID = {k: v[::2] for k, v in HOFFMANN_GRID.items()}


def _wald(N, D, loss, fit, k):
    """θ̂ ± t(n-p) · se from a finite-difference Jacobian of the log-residuals (least squares)."""
    p = np.array([np.log(fit.A), np.log(fit.B), np.log(fit.E), fit.alpha, fit.beta])

    def resid(q):
        return np.log(np.exp(q[2]) + np.exp(q[0]) / N ** q[3] + np.exp(q[1]) / D ** q[4]) - np.log(
            loss)

    J = np.stack([(resid(p + h) - resid(p - h)) / (2 * 1e-6) for h in np.eye(5) * 1e-6], 1)
    n = len(N)
    s2 = np.sum(resid(p) ** 2) / (n - 5)
    se = np.sqrt(s2 * np.linalg.inv(J.T @ J)[k, k])
    t = stats.t.ppf(0.975, n - 5)
    return p[k] - t * se, p[k] + t * se


def test_profile_matches_wald_where_the_model_is_nearly_linear():
    true = TABLE1["code"]
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    loss = true.predict(N, D) * np.exp(np.random.default_rng(4).normal(0, 1e-3, N.shape))
    # delta 1: every residual in the quadratic zone, so the fit is least squares
    fit = fit_unimodal(N, D, loss, grid=GRID, huber_delta=1.0)
    pr = profile_unimodal(N, D, loss, fit, params=("alpha",), huber_delta=1.0)["alpha"]
    lo, hi = _wald(N, D, loss, fit, 3)
    assert pr.bounded and pr.lower < fit.alpha < pr.upper
    assert pr.lower == pytest.approx(lo, abs=0.1 * (hi - lo))
    assert pr.upper == pytest.approx(hi, abs=0.1 * (hi - lo))
    assert pr.covers(true.alpha)


def test_crossings_interpolate_and_report_unbounded_ends():
    values = np.linspace(-2.0, 2.0, 9)
    stat = values**2  # threshold 1 -> interval [-1, 1]
    assert _crossings(values, stat, 1.0, 0.0) == (-1.0, 1.0, True)
    lo, hi, bounded = _crossings(values, np.minimum(stat, 0.5), 1.0, 0.0)
    assert (lo, hi, bounded) == (-2.0, 2.0, False)
