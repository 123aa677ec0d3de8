import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from mmlaws.laws import (
    TABLE1,
    Interaction,
    chinchilla_optimal,
    competition_barrier,
    compute_optimal,
    is_synergistic,
)

T = Interaction(C=0.35, A=120.0, B=3000.0, alpha=0.31, beta=0.29)


def test_barrier_curve_is_the_equality_of_eq5():
    N = np.geomspace(1e8, 1e12, 7)
    D = competition_barrier(T, N)
    finite = np.isfinite(D)
    assert finite.any() and (~finite).any()  # small N cannot break the barrier at all
    np.testing.assert_allclose(T.cost(N[finite], D[finite]), T.C, rtol=1e-12)
    assert np.all(is_synergistic(T, N[finite], D[finite] * 1.01))
    assert not np.any(is_synergistic(T, N[finite], D[finite] * 0.99))


def test_compute_optimal_matches_constrained_numeric_minimum():
    opt = compute_optimal(T)
    # minimise log N + log D on the barrier, parametrised by log N
    def f(logn):
        d = competition_barrier(T, np.exp(logn))
        return logn + np.log(d) if np.isfinite(d) else 1e9
    lo = np.log((T.A / T.C) ** (1 / T.alpha)) + 1e-9
    num = minimize_scalar(f, bounds=(lo, lo + 30), method="bounded", options={"xatol": 1e-10})
    np.testing.assert_allclose(np.log(opt.N), num.x, atol=1e-5)
    np.testing.assert_allclose(opt.compute, 6 * opt.N * opt.D, rtol=1e-12)
    np.testing.assert_allclose(T.cost(opt.N, opt.D), T.C, rtol=1e-12)


def test_compute_optimal_rejects_pairs_that_never_synergise():
    with pytest.raises(ValueError, match="never becomes synergistic"):
        compute_optimal(Interaction(C=-0.1, A=1, B=1, alpha=0.3, beta=0.3))


@pytest.mark.parametrize("name", ["text", "code", "speech"])
def test_chinchilla_allocation_matches_numeric(name):
    law = TABLE1[name]
    for C in (1e20, 1e23):
        opt = chinchilla_optimal(law, C)
        res = minimize(lambda x, C=C: law.predict(np.exp(x[0]), C / (6 * np.exp(x[0]))),
                       x0=[np.log(1e9)], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-14})
        np.testing.assert_allclose(np.log(opt.N), res.x[0], atol=1e-4)
        np.testing.assert_allclose(6 * opt.N * opt.D, C, rtol=1e-12)
