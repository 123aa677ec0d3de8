"""The multi-start engine (mmlaws.laws.lbfgs behind minimize_multistart) against scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from mmlaws.laws import lbfgs
from mmlaws.laws.solver import minimize_multistart


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def weighted_quadratic(x, centre, w):
    return jnp.sum(w * (x - centre) ** 2)


@jax.custom_jvp
def uphill(x):
    return jnp.sum(x * x)


@uphill.defjvp
def _uphill_jvp(primals, tangents):  # a wrong gradient: no step along -g lowers the value
    (x,), (dx,) = primals, tangents
    return uphill(x), jnp.sum(-2.0 * x * dx)


@pytest.fixture(scope="module")
def rosen_starts():
    return np.random.default_rng(0).uniform(-2.0, 2.0, size=(40, 4))


def test_every_start_reaches_scipys_minimum_on_rosenbrock(rosen_starts):
    res = minimize_multistart(rosenbrock, rosen_starts, tol=1e-8, ftol=0.0, polish=0)
    ref = np.array([minimize(rosen, x0, jac=rosen_der, method="L-BFGS-B",
                             options={"gtol": 1e-8, "ftol": 0.0}).x for x0 in rosen_starts])
    # 4-d Rosenbrock has a second local minimum near (-1, 1, 1, 1); the ones scipy reaches
    # from a start, the engine reaches too
    assert res.num_converged == len(rosen_starts)
    np.testing.assert_allclose(np.sort(res.params, axis=0), np.sort(ref, axis=0), atol=1e-5)
    at_global = np.all(np.abs(res.params - 1.0) < 1e-5, axis=1)
    assert at_global.sum() == np.all(np.abs(ref - 1.0) < 1e-5, axis=1).sum()


def test_pool_size_does_not_change_any_start(rosen_starts):
    big = minimize_multistart(rosenbrock, rosen_starts, polish=0)  # pools 40 -> 5
    small = minimize_multistart(rosenbrock, rosen_starts, polish=0, slots=3)  # one pool of 3
    # the same start in another slot of another pool shape: equal up to rounding (XLA may
    # vectorise the two shapes differently), so no state leaks between slots or pools
    np.testing.assert_allclose(big.params, small.params, atol=1e-5)
    np.testing.assert_allclose(big.values, small.values, atol=5e-9)  # ftol: 2.2e-9
    np.testing.assert_array_equal(big.status, small.status)
    assert np.abs(big.iterations - small.iterations).max() <= 3


def test_batched_args_give_each_start_its_own_problem():
    rng = np.random.default_rng(1)
    centre, w = rng.normal(size=(64, 3)), rng.uniform(0.5, 2.0, size=(64, 3))
    res = minimize_multistart(weighted_quadratic, np.zeros((64, 3)), (centre, w),
                              batched_args=True, tol=1e-10, ftol=0.0)
    np.testing.assert_allclose(res.params, centre, atol=1e-9)
    assert res.num_converged == 64


def test_every_start_is_accounted_for():
    starts = np.array([[0.5, 0.5, 0.5, 0.5], [np.inf, 0.0, 0.0, 0.0], [-1.2, 1.0, -1.2, 1.0]])
    res = minimize_multistart(rosenbrock, starts, maxiter=3, polish=0)
    assert res.status.tolist() == [lbfgs.MAXITER, lbfgs.NONFINITE, lbfgs.MAXITER]
    assert res.num_converged == 0 and np.isinf(res.values[1])
    assert res.iterations.tolist() == [3, 0, 3]
    assert res.outcomes() == {"iteration limit": 2, "non-finite objective at the start": 1}


def test_a_failed_line_search_is_not_convergence():
    res = minimize_multistart(uphill, np.ones((2, 3)), polish=0)
    assert res.status.tolist() == [lbfgs.LINESEARCH_FAILED] * 2
    assert res.num_converged == 0
    np.testing.assert_array_equal(res.params, np.ones((2, 3)))  # no uphill step was taken


@pytest.mark.parametrize("method", ["jaxopt", "optax", "scipy"])
def test_backends_stand_in_through_one_call(method, rosen_starts):
    ref = minimize_multistart(rosenbrock, rosen_starts[:6], tol=1e-8)
    got = minimize_multistart(rosenbrock, rosen_starts[:6], method=method, tol=1e-8,
                              maxiter=2000)
    assert got.values.min() == pytest.approx(ref.values.min(), abs=1e-12)
    assert got.params.shape == ref.params.shape and len(got.status) == 6


def test_unknown_method_and_bad_starts_are_errors():
    with pytest.raises(ValueError, match="unknown method 'bfgs'"):
        minimize_multistart(rosenbrock, np.zeros((2, 2)), method="bfgs")
    with pytest.raises(ValueError, match="non-empty"):
        minimize_multistart(rosenbrock, np.zeros((0, 2)))


@pytest.mark.parametrize("pools", [(3, 1), (7,), (2,)])
def test_the_scheduler_runs_every_start_to_its_own_end(pools):
    """A counting "solver": start s ends after x_s + offset_s steps. Through few slots, refills
    and compacted pools, every start's row gets its own count, its own start and its own
    (batched) arguments."""
    from mmlaws.laws import scheduler

    starts = jnp.array([[3.0], [1.0], [7.0], [2.0], [5.0], [1.0], [4.0]])
    offset = jnp.array([0, 2, 1, 0, 3, 0, 1])

    def init(x0, args):
        return x0, jnp.zeros(x0.shape[0], jnp.int32)

    def step(state, args):
        x, n = state[0], state[1] + 1
        return (x, n), jnp.where(n >= x[:, 0].astype(jnp.int32) + args[0], 5, scheduler.NOT_ENDED)

    out = scheduler.run(starts, (offset,), init=init, step=step, pools=pools, batched_args=True,
                        report=lambda st: {"x": st[0], "steps": st[1]})
    assert out["steps"].tolist() == [3, 3, 8, 2, 8, 1, 5]
    assert out["x"].tolist() == starts.tolist()
    assert out["status"].tolist() == [5] * 7
