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


@pytest.mark.parametrize(("gap", "member"), [(1.5, True), (2.19, True), (2.21, False),
                                             (3.0, False)])
def test_sigma_membership_reads_eq1_on_perplexities(gap, member):
    """Eq. 1 on perplexities: member while the cross loss is within 2 ln 3 = 2.197 nats of the
    in-domain loss. A gap of 1.5 nats separates this from the prose's σ× perplexity (ln 3 = 1.10
    nats: distinct); a gap of 3 nats at in-domain loss 1 separates it from Eq. 1 applied to
    losses (4 ≤ 9 × 1: member)."""
    from mmlaws.laws import membership

    cross = np.array([[1.0, 1.0 + gap], [1.0, 1.0]])
    assert bool(membership(cross, sigma=3.0)[0, 1]) is member


def test_stratified_bootstrap_keeps_every_model_size():
    from mmlaws.laws.uncertainty import _replicates

    N = np.repeat([1e4, 1e5, 1e6, 1e7], 2)  # four sizes x two budgets
    rng = np.random.default_rng(0)
    w, _ = _replicates(rng, 500, np.zeros(8), np.zeros(8), "stratified", N)
    per_size = w.reshape(500, 4, 2).sum(-1)
    assert np.all(per_size == 2)  # every size keeps its two runs' worth of weight
    w, _ = _replicates(rng, 500, np.zeros(8), np.zeros(8), "runs", N)
    lost = np.any(w.reshape(500, 4, 2).sum(-1) == 0, axis=1).mean()
    assert 0.25 < lost < 0.5  # whole-run resampling drops a size about 38% of the time


def test_holdout_by_budget_and_reducible_error():
    law, N, D, L = _runs(1e-3, 3)
    grid = {k: v[::2] for k, v in __import__("mmlaws.laws").laws.HOFFMANN_GRID.items()}
    res = holdout_unimodal(N, D, L, axis="D", grid=grid)
    assert set(D[res.held_out]) == {100e9} and res.axis == "D"
    E = res.fit.E
    expected = (res.fit.predict(N[res.held_out], D[res.held_out]) - L[res.held_out]) / (
        L[res.held_out] - E)
    np.testing.assert_allclose(res.reducible_error, expected)
    assert abs(res.mean_abs_reducible_error) >= res.mean_abs_relative_error
    with pytest.raises(ValueError, match="hold-out axis"):
        holdout_unimodal(N, D, L, axis="C")


def test_reducible_error_is_undefined_where_the_refit_E_reaches_the_loss():
    from mmlaws.laws.uncertainty import MIN_REDUCIBLE, _result

    observed = np.array([2.0, 3.0])
    pred = np.array([2.1, 2.7])
    ok = _result(None, np.arange(2), pred, observed, 1.0, "D")
    np.testing.assert_allclose(ok.reducible_error, [0.1 / 1.0, -0.3 / 2.0])
    # E within 1% of the first loss: (2.1 - 2.0) / 0.001 = 100x would be reported; it is NaN
    near = _result(None, np.arange(2), pred, observed, 2.0 * (1 - MIN_REDUCIBLE / 2), "D")
    assert np.isnan(near.reducible_error[0]) and np.isfinite(near.reducible_error[1])
    assert np.isnan(near.mean_abs_reducible_error)
    np.testing.assert_allclose(near.relative_error, (pred - observed) / observed)


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
