"""Compute-optimal exponents by Hoffmann et al.'s three approaches, on planted laws and on the
Chinchilla data."""

import numpy as np
import pytest

import mmlaws.laws as laws
from mmlaws.laws import records

LAW = laws.UnimodalLaw(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
TRUE_A = LAW.beta / (LAW.alpha + LAW.beta)


def _table(N, D, curves=None) -> laws.RunTable:
    N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
    recs = ()
    if curves is not None:
        recs = tuple(records.RunRecord(path="", header={"run_id": f"r{k}"}, steps=[
            {"tokens": float(t), "loss": float(LAW.predict(N[k], t))} for t in curves[k]])
            for k in range(len(N)))
    loss = LAW.predict(N, D)
    return laws.RunTable(np.array([f"r{k}" for k in range(len(N))]), N, D, loss,
                         (("x",),) * len(N), tuple({"x": d} for d in D),
                         tuple({"x": v} for v in loss), recs)


def _isoflop_design():
    N, D = [], []
    for c in (1e15, 1e16, 1e17, 1e18):
        n_opt = float(laws.chinchilla_optimal(LAW, c).N)
        for n in n_opt * np.geomspace(1 / 30, 30, 9):
            N.append(n), D.append(c / (6 * n))
    return _table(N, D)


def test_isoflop_design_gives_the_three_approaches_near_the_truth():
    res = laws.compute_optimal_exponents(_isoflop_design(), LAW)
    assert res["approach 3 (parametric)"]["a"] == pytest.approx(TRUE_A, rel=1e-12)
    assert res["approach 2 (IsoFLOP)"]["a"] == pytest.approx(TRUE_A, abs=0.02)
    assert res["approach 1 (envelope)"]["a"] == pytest.approx(TRUE_A, abs=0.06)
    for r in res.values():
        assert r["a"] + r["b"] == pytest.approx(1.0, abs=1e-9)  # under 6ND, D = C / 6N
    table = laws.exponents_table(res)
    assert table[0].startswith("| approach | a (N_opt ∝ C^a)") and len(table) == 5


def test_curves_feed_the_envelope_and_isoflop_profiles():
    sizes = np.geomspace(1e6, 1e9, 10)
    tokens = [np.geomspace(1e7, 1e11, 60)] * len(sizes)
    t = _table(sizes, [1e11] * len(sizes), curves=tokens)
    env = laws.envelope_exponents(t)
    iso = laws.isoflop_exponents(t)
    assert env["a"] == pytest.approx(TRUE_A, abs=0.06) and env["sizes_on_frontier"] >= 3
    assert iso["a"] == pytest.approx(TRUE_A, abs=0.03) and len(iso["minima"]) >= 2


def test_designs_that_do_not_allow_an_approach_say_why():
    t = _table([1e7, 1e8] * 3, [1e9, 1e9, 3e9, 3e9, 1e10, 1e10])
    res = laws.compute_optimal_exponents(t)
    assert "Approach 1 needs 3" in res["approach 1 (envelope)"]["error"]
    assert "Approach 2 needs 2" in res["approach 2 (IsoFLOP)"]["error"]
    assert res["approach 3 (parametric)"] == {"error": "no fitted Eq. 2 law"}
    assert "n/a" in laws.exponents_table(res)[2]


def test_chinchilla_data_three_approaches_side_by_side(shared_data):
    t = laws.read_runs(shared_data / "chinchilla_fig4_epoch.csv", n_column="Model Size",
                       d_column=None, flops_column="Training FLOP")
    res = laws.compute_optimal_exponents(t, laws.published.CHINCHILLA_EPOCH_GRID)
    a = {k: v["a"] for k, v in res.items()}
    # Hoffmann et al. report a = 0.50 (Approach 1), 0.49 (2), 0.46 (3); Epoch's refit of the
    # same data gives 0.514 for Approach 3.
    assert a["approach 3 (parametric)"] == pytest.approx(0.3672 / (0.3473 + 0.3672), rel=1e-12)
    for v in a.values():
        assert 0.45 < v < 0.56, a
