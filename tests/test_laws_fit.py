"""The Eq. 3 fitter against published results, scipy, and known laws."""

import csv

import numpy as np
import pytest
from scipy.optimize import minimize

from mmlaws.laws import (
    HOFFMANN_GRID,
    PAPER_DESIGN_D,
    PAPER_DESIGN_N,
    TABLE1,
    Interaction,
    fit_bimodal,
    fit_nmodal,
    fit_unimodal,
)
from mmlaws.laws.fit import UNI_PARAMS, grid_starts, unimodal_objective
from mmlaws.laws.published import CHINCHILLA_EPOCH_GRID
from mmlaws.laws.reference import unimodal_objective as _scipy_objective

COARSE = {k: v[::2] for k, v in HOFFMANN_GRID.items()}  # 243 starts, for quick checks


def _design(law, noise, rng):
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    return N, D, law.predict(N, D) * np.exp(rng.normal(0, noise, N.shape))


@pytest.fixture(scope="module")
def chinchilla(shared_data):
    rows = list(csv.DictReader(open(shared_data / "chinchilla_fig4_epoch.csv")))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    L = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(L, kind="stable")[:-5])  # Epoch: drop the 5 highest losses
    return N[keep], C[keep] / (6 * N[keep]), L[keep]


@pytest.mark.slow
def test_chinchilla_golden_against_epoch_and_scipy(chinchilla):
    N, D, L = chinchilla
    assert len(N) == 240
    fit = fit_unimodal(N, D, L, huber_delta=1e-3)
    ref = CHINCHILLA_EPOCH_GRID
    for k in ("A", "B", "E", "alpha", "beta"):
        assert getattr(fit, k) == pytest.approx(getattr(ref, k), rel=0.01), k
    assert fit.info.num_starts == 4500 and not fit.info.on_boundary
    assert fit.info.num_converged == sum(
        n for k, n in fit.info.outcomes.items() if k.startswith("converged")) >= 4000
    # scipy L-BFGS-B from every 9th start of the same grid (the full loop is in benchmarks/)
    data = (np.log(N), np.log(D), np.log(L), 1e-3)
    best = min(minimize(_scipy_objective, x0, args=data, jac=True, method="L-BFGS-B").fun
               for x0 in grid_starts(HOFFMANN_GRID, UNI_PARAMS)[::9])
    assert fit.objective <= best * (1 + 1e-9)


def test_jax_objective_matches_numpy_reference(chinchilla):
    N, D, L = chinchilla
    p = np.array([6.0, 7.5, 0.6, 0.35, 0.37])
    args = (np.log(N), np.log(D), np.log(L))
    ref, _ = _scipy_objective(p, *args, 1e-3)
    import jax

    with jax.enable_x64(True):
        got = unimodal_objective(p, *args, np.ones_like(N), 1e-3)
    assert float(got) == pytest.approx(ref, rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TABLE1))
def test_parameter_recovery_at_0p1_percent_noise(name):
    true = TABLE1[name]
    N, D, L = _design(true, 1e-3, np.random.default_rng(1))
    fit = fit_unimodal(N, D, L)  # the default (Hoffmann) grid
    assert abs(fit.alpha - true.alpha) <= 0.01
    assert abs(fit.beta - true.beta) <= 0.03
    np.testing.assert_allclose(fit.predict(N, D), L, rtol=5e-3)


def test_default_and_scipy_backends_agree():
    N, D, L = _design(TABLE1["speech"], 1e-3, np.random.default_rng(2))
    small = {k: v[::4] for k, v in HOFFMANN_GRID.items()}  # 32 starts
    a = fit_unimodal(N, D, L, grid=small)
    b = fit_unimodal(N, D, L, grid=small, method="scipy")
    assert a.objective <= b.objective * (1 + 1e-6)
    assert a.alpha == pytest.approx(b.alpha, abs=2e-3)
    assert a.info.num_starts == b.info.num_starts == 32


def _pair_runs():
    """Speech|Text runs at 50/50 from known interaction terms, 0.01% noise."""
    li, lj = TABLE1["speech"], TABLE1["text"]
    true = Interaction(C=0.4, A=30.0, B=2000.0, alpha=0.25, beta=0.3)
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    base = 0.5 * (li.predict(N, D / 2) + lj.predict(N, D / 2))
    loss = (base + true.value(N, D)) * np.exp(np.random.default_rng(3).normal(0, 1e-4, N.shape))
    return li, lj, N, D, loss


def test_bimodal_recovers_known_interaction():
    li, lj, N, D, loss = _pair_runs()
    fit = fit_bimodal(N, D / 2, D / 2, loss, li, lj,
                      grid={"C": (0.0, 0.5), "a": (0.0, 5.0), "b": (5.0, 10.0),
                            "alpha": (0.2, 0.5), "beta": (0.2, 0.5)})
    np.testing.assert_allclose(fit.predict(N, D / 2, D / 2), loss, rtol=1e-3)
    assert fit.interaction.alpha == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda N, D, L: (N, D, np.where(np.arange(len(L)) == 3, np.nan, L)),
         r"loss.*runs \(counted from 1\) \[4\]"),
        (lambda N, D, L: (np.where(np.arange(len(N)) == 0, -1.0, N), D, L),
         r"N.*runs \(counted from 1\) \[1\]"),
        (lambda N, D, L: (N[:4], D[:4], L[:4]), "4 runs cannot determine"),
        (lambda N, D, L: (np.full_like(N, 1e9), D, L), "one model size"),
        (lambda N, D, L: (N, np.full_like(D, 1e10), L), "one token count"),
    ],
)
def test_bad_input_names_rows_or_reason(mutate, match):
    N, D, L = _design(TABLE1["text"], 1e-3, np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        fit_unimodal(*mutate(N, D, L), grid=COARSE)


def test_nmodal_fit_on_two_modalities_at_50_50_matches_bimodal():
    li, lj, N, D, loss = _pair_runs()
    grid = {"C": (0.0, 0.5), "a": (0.0, 5.0), "b": (5.0, 10.0), "alpha": (0.2, 0.5),
            "beta": (0.2, 0.5)}
    bi = fit_bimodal(N, D / 2, D / 2, loss, li, lj, grid=grid, names=("speech", "text"))
    nm = fit_nmodal(N, D, [{"speech": 0.5, "text": 0.5}] * len(N), loss,
                    {"speech": li, "text": lj}, grid=grid)
    assert list(nm.interactions) == [("speech", "text")]
    assert nm.info.objective == pytest.approx(bi.objective, rel=1e-6)
    shares = {"speech": 1, "text": 1}
    np.testing.assert_allclose(nm.predict(N, D, shares), bi.predict(N, D / 2, D / 2), rtol=1e-5)
