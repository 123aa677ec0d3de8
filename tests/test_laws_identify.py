"""Every fit says which parameters its runs do not determine, in words, in its FitInfo and in the
study report."""

import numpy as np
import pytest

import mmlaws.laws as laws
from mmlaws.laws import identify
from mmlaws.study.report import _warnings as report_warnings

LAW = laws.UnimodalLaw(E=1.5, A=40.0, B=300.0, alpha=0.35, beta=0.3)


def _runs(sizes, budgets, noise=0.005, seed=0):
    N, D = (a.ravel() for a in np.meshgrid(sizes, budgets))
    rng = np.random.default_rng(seed)
    return N, D, LAW.predict(N, D) * np.exp(rng.normal(0, noise, N.shape))


# Every design below has 20 runs, so that the fits share one compilation.
SIZES, BUDGETS = [1e4, 3e4, 1e5, 3e5, 1e6], [1e6, 3e6, 1e7, 3e7]
MANY_SIZES, MANY_BUDGETS = list(np.geomspace(1e4, 1e6, 10)), list(np.geomspace(1e6, 3e7, 10))


def test_a_good_design_warns_of_nothing():
    fit = laws.fit_unimodal(*_runs(SIZES, BUDGETS, noise=0.002))
    assert fit.info.warnings == ()


def test_two_sizes_leave_alpha_undetermined_and_say_so():
    fit = laws.fit_unimodal(*_runs([1e4, 1e6], MANY_BUDGETS))
    text = " ".join(fit.info.warnings)
    assert "α: only 2 model sizes" in text
    assert not any(w.startswith("β") for w in fit.info.warnings)


def test_two_budgets_leave_beta_undetermined_and_say_so():
    fit = laws.fit_unimodal(*_runs(MANY_SIZES, [1e6, 3e7]))
    assert any(w.startswith("β: only 2 token budgets") for w in fit.info.warnings)


def test_degenerate_interaction_is_named_not_only_listed_on_the_boundary():
    # Pair runs with no interaction at all and two sizes: the Eq. 4 terms are not determined.
    a = laws.UnimodalLaw(E=1.6, A=40.0, B=900.0, alpha=0.32, beta=0.36)
    b = laws.UnimodalLaw(E=1.2, A=25.0, B=600.0, alpha=0.28, beta=0.33)
    N, D = (x.ravel() for x in np.meshgrid([1e5, 1e7], MANY_BUDGETS))
    rng = np.random.default_rng(1)
    loss = 0.5 * (a.predict(N, D / 2) + b.predict(N, D / 2)) * np.exp(rng.normal(0, 0.003, N.size))
    fit = laws.fit_bimodal(N, D / 2, D / 2, loss, a, b, names=("a", "b"))
    text = "\n".join(fit.info.warnings)
    assert "α: only 2 model sizes" in text
    assert "not determined" in text


def test_value_warnings_name_negative_exponents_and_grid_edges():
    w = identify.value_warnings({"beta": -15.0, "alpha": 0.3}, ["alpha"], {"alpha": (0.0, 2.0)})
    assert any("β = -15 is negative" in x and "grows with data" in x for x in w)
    assert any("α ended at the edge of its start grid [0, 2]" in x for x in w)


@pytest.mark.slow
def test_flat_profile_matches_the_exact_profile_interval_where_it_is_quadratic():
    # The local interval of identify is the quadratic approximation of the profile interval.
    N, D, loss = _runs(SIZES, BUDGETS, noise=0.01, seed=3)
    fit = laws.fit_unimodal(N, D, loss)
    prof = laws.profile_unimodal(N, D, loss, fit, params=("alpha",))["alpha"]
    p = np.array([np.log(fit.A), np.log(fit.B), np.log(fit.E), fit.alpha, fit.beta])
    args = (np.log(N), np.log(D), np.log(loss), np.ones_like(N), np.float64(0.03))
    r = np.log(fit.predict(N, D)) - np.log(loss)
    # Ask for warnings with a threshold of 0: every parameter is "flat", and the text carries
    # its local half-width.
    old = dict(identify.FLAT)
    try:
        identify.FLAT.update({"exp": 0.0})
        w = identify.flat_warnings(laws.fit.unimodal_objective, p, args, r,
                                   names=laws.fit.UNI_PARAMS, kinds=("log", "log", "E", "exp",
                                                                     "exp"), huber_delta=0.03)
    finally:
        identify.FLAT.clear()
        identify.FLAT.update(old)
    line = next(x for x in w if x.startswith("α:"))
    half = float(line.split("±")[1].split()[0])
    exact = 0.5 * (prof.upper - prof.lower)
    assert half == pytest.approx(exact, rel=0.35), (half, exact)


def test_nmodal_fit_takes_weights():
    a = laws.UnimodalLaw(E=1.6, A=40.0, B=900.0, alpha=0.32, beta=0.36)
    b = laws.UnimodalLaw(E=1.2, A=25.0, B=600.0, alpha=0.28, beta=0.33)
    t = laws.Interaction(C=0.3, A=10.0, B=50.0, alpha=0.3, beta=0.35)
    pair = laws.BimodalLaw(a, b, t, names=("a", "b"))
    N, D = (x.ravel() for x in np.meshgrid([1e5, 4e5, 1.6e6, 6.4e6], [1e6, 3e6, 1e7]))
    loss = pair.predict(N, D / 2, D / 2)
    bad = loss.copy()
    bad[0] *= 1.5  # one corrupted run, weighted out
    shares = [{"a": 0.5, "b": 0.5}] * len(N)
    w = np.ones_like(N)
    w[0] = 0.0
    clean = laws.fit_nmodal(N, D, shares, loss, {"a": a, "b": b})
    weighted = laws.fit_nmodal(N, D, shares, bad, {"a": a, "b": b}, weights=w)
    got, want = weighted.interactions[("a", "b")], clean.interactions[("a", "b")]
    assert got.C == pytest.approx(want.C, abs=1e-3)
    assert got.alpha == pytest.approx(want.alpha, abs=1e-2)
    with pytest.raises(ValueError, match="weights"):
        laws.fit_nmodal(N, D, shares, loss, {"a": a, "b": b}, weights=w[:3])


def test_table_entries_and_report_carry_the_warnings():
    N, D, loss = _runs([1e4, 1e6], MANY_BUDGETS)
    table = laws.RunTable(run_id=np.array([f"r{k}" for k in range(len(N))]), N=N, D=D,
                          loss=loss, datasets=(("x",),) * len(N),
                          tokens=tuple({"x": d} for d in D), losses=tuple({"x": v} for v in loss))
    fits = laws.fit_table(table, laws.FitSettings(bootstrap_samples=0, holdout_sizes=0))
    entry = fits.results["x"]
    assert entry["quantity"] == "nats"
    assert any(w.startswith("α: only 2 model sizes") for w in entry["warnings"])
    lines = report_warnings(fits.results)
    assert "## What the runs do not determine" in lines
    assert any(x.startswith("- **x**: α: only 2 model sizes") for x in lines)
    assert report_warnings({"y": {"warnings": []}})[-1] == \
        "- every fitted parameter is determined by its runs"
