import numpy as np
import pytest

from mmlaws.laws import (
    PAPER_DESIGN_D,
    PAPER_DESIGN_N,
    TABLE1,
    bootstrap_unimodal,
    holdout_unimodal,
    same_modality,
)
from mmlaws.laws.fit import unimodal_from_params


def _runs(noise, seed):
    law = TABLE1["code"]
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    eps = np.random.default_rng(seed).normal(0, noise, N.shape)
    return law, N, D, law.predict(N, D) * np.exp(eps)


@pytest.mark.parametrize("method", ["runs", "residuals"])
def test_bootstrap_intervals_cover_truth_and_count_refits(method):
    law, N, D, L = _runs(0.01, 0)
    start = unimodal_from_params(np.log([law.A, law.B, law.E]).tolist() + [law.alpha, law.beta])
    bs = bootstrap_unimodal(N, D, L, start, num_samples=64, method=method, seed=1)
    assert bs.num_samples == 64 and 0 < bs.num_converged <= 64
    ci = bs.interval(0.95)
    assert ci["alpha"][0] < law.alpha < ci["alpha"][1]
    lo, hi = ci["alpha"]
    assert hi - lo < 0.2  # informative, not a blanket interval
    bs = bs.derive("ratio", lambda alpha, beta, **_: alpha / beta)
    assert bs.samples["ratio"].shape == (64,)


def test_bootstrap_rejects_unknown_method():
    law, N, D, L = _runs(0.01, 0)
    with pytest.raises(ValueError, match="unknown bootstrap method"):
        bootstrap_unimodal(N, D, L, law, num_samples=4, method="jackknife")


def test_holdout_reports_error_on_the_largest_models():
    law, N, D, L = _runs(1e-3, 2)
    res = holdout_unimodal(N, D, L, grid={k: v[::2] for k, v in
                                          __import__("mmlaws.laws").laws.HOFFMANN_GRID.items()})
    assert set(N[res.held_out]) == {6.7e9}
    assert res.mean_abs_relative_error < 0.01


def test_sigma_membership_eq1():
    # datasets 0 and 1 are close; dataset 2 is far from both (losses in nats)
    cross = np.array([[2.0, 2.5, 30.0], [2.4, 2.1, 25.0], [30.0, 28.0, 1.5]])
    same = same_modality(cross, sigma=3.0)
    assert same[0, 1] and same[1, 0]
    assert not same[0, 2] and not same[2, 1]
    with pytest.raises(ValueError, match="square"):
        same_modality(np.ones((2, 3)))


def test_intervals_keep_infinite_replicates():
    """Replicates without a finite value (a pair that never turns synergistic) give an infinite
    upper bound, not NaN."""
    from mmlaws.laws.uncertainty import BootstrapResult

    v = np.r_[np.linspace(1.0, 2.0, 90), np.full(10, np.inf)]
    bs = BootstrapResult(samples={"N*": v, "x": np.linspace(0, 1, 101)[:100]},
                         num_converged=100, method="runs")
    lo, hi = bs.interval(0.95)["N*"]
    assert hi == np.inf and 1.0 <= lo < 1.1
    x = np.linspace(0, 1, 101)[:100]
    assert bs.interval(0.9)["x"] == pytest.approx(tuple(np.percentile(x, [5, 95])))
