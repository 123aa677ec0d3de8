"""Per-modality mixture laws: the form against Eq. 4 and by hand, vectorised prediction, the joint
fit from mixed runs only, and held-out shares against linear interpolation on planted laws."""

import numpy as np
import pytest

from mmlaws.laws import (
    TABLE1,
    BimodalLaw,
    Interaction,
    MixtureLaw,
    MixtureRuns,
    NModalLaw,
    PairMixing,
    Transfer,
    UnimodalLaw,
    allocate,
    fit_mixture,
    holdout_share,
    interpolate_share,
)

LAW_A = UnimodalLaw(E=1.6, A=40.0, B=900.0, alpha=0.32, beta=0.36)
LAW_B = UnimodalLaw(E=1.2, A=25.0, B=600.0, alpha=0.28, beta=0.33)
TRUTH = MixtureLaw(
    laws={"a": LAW_A, "b": LAW_B},
    pairs={("a", "b"): PairMixing(("a", "b"), alpha=0.3, beta=0.4,
                                  on_first=Transfer(C=0.15, A=8.0, B=60.0),
                                  on_second=Transfer(C=0.05, A=4.0, B=150.0))})
SIZES, BUDGETS, SHARES = (1e5, 4e5, 1.6e6, 6.4e6), (1e6, 4e6, 1.6e7), (0.0, 0.25, 0.5, 0.75, 1.0)


def _by_hand(law, k, other, N, D, wk):
    """Modality k's loss in a two-modality mix, written out from the module docstring."""
    p = law.pairs[("a", "b")]
    t = p.on_first if k == "a" else p.on_second
    wl = 1 - wk
    transfer = -t.C + t.A / N**p.alpha + t.B / (wl * D) ** p.beta
    return law.laws[k].predict(N, wk * D) + 2 * wl * transfer


def test_per_modality_losses_follow_the_stated_form_and_sum_to_the_mixture():
    N, D = np.array([1e5, 3e7]), np.array([2e6, 5e8])
    for wa in (0.1, 0.375, 0.625):
        per = TRUTH.predict_modalities(N, D, {"a": wa, "b": 1 - wa})
        np.testing.assert_allclose(per["a"], _by_hand(TRUTH, "a", "b", N, D, wa), rtol=1e-13)
        np.testing.assert_allclose(per["b"], _by_hand(TRUTH, "b", "a", N, D, 1 - wa),
                                   rtol=1e-13)
        np.testing.assert_allclose(TRUTH.predict(N, D, {"a": wa, "b": 1 - wa}),
                                   wa * per["a"] + (1 - wa) * per["b"], rtol=1e-13)


def test_reduces_to_eq4_at_50_50_and_to_eq2_for_one_modality():
    p = TRUTH.pairs[("a", "b")]
    eq4 = BimodalLaw(LAW_A, LAW_B, Interaction(
        C=0.5 * (0.15 + 0.05), A=0.5 * (8.0 + 4.0), B=2**p.beta * 0.5 * (60.0 + 150.0),
        alpha=p.alpha, beta=p.beta), names=("a", "b"))
    N, D = np.geomspace(1e5, 1e9, 5), np.geomspace(1e6, 1e11, 5)
    np.testing.assert_allclose(TRUTH.predict(N, D, {"a": 1, "b": 1}), eq4.predict(N, D / 2, D / 2),
                               rtol=1e-13)
    np.testing.assert_allclose(TRUTH.pair_interaction(("a", "b"), {"a": .5, "b": .5}).value(N, D),
                               eq4.interaction.value(N, D), rtol=1e-12)
    np.testing.assert_allclose(TRUTH.predict(N, D, {"a": 1.0}), LAW_A.predict(N, D), rtol=1e-14)
    # A published Eq. 4 law read as a mixture law is exact at 50/50.
    t = Interaction(C=0.3, A=50.0, B=900.0, alpha=0.2, beta=0.25)
    pair = BimodalLaw(TABLE1["speech"], TABLE1["text"], t, names=("speech", "text"))
    mix = MixtureLaw.from_bimodal([pair])
    assert mix.quantity == "perplexity"
    np.testing.assert_allclose(mix.predict(N, D, {"speech": .5, "text": .5}),
                               pair.predict(N, D / 2, D / 2), rtol=1e-13)
    nm = MixtureLaw.from_nmodal(NModalLaw.from_bimodal([pair]))
    np.testing.assert_allclose(nm.predict(N, D, {"speech": .5, "text": .5}),
                               pair.predict(N, D / 2, D / 2), rtol=1e-13)


def test_shares_are_not_forced_symmetric():
    # The n-modal law's interaction is 4 w (1 - w) (D_i + D_j): equal at 0.375 and 0.625.
    N, D = 1e6, 1e7
    inter = lambda w: (TRUTH.predict(N, D, {"a": w, "b": 1 - w})
                       - TRUTH.independent(N, D, {"a": w, "b": 1 - w}))
    assert abs(inter(0.375) - inter(0.625)) > 1e-3 * abs(inter(0.375))
    lo = TRUTH.predict_modalities(N, D, {"a": 0.375, "b": 0.625})
    hi = TRUTH.predict_modalities(N, D, {"a": 0.625, "b": 0.375})
    assert not np.isclose(lo["a"], hi["a"]) and not np.isclose(lo["b"], hi["b"])
    # The pair's effective Eq. 4 term carries the whole interaction at any share.
    for w in (0.2, 0.375, 0.9):
        t = TRUTH.pair_interaction(("a", "b"), {"a": w, "b": 1 - w})
        np.testing.assert_allclose(inter(w), 4 * w * (1 - w) * t.value(N, D), rtol=1e-12)


def test_prediction_is_vectorised_over_runs_and_shares():
    rng = np.random.default_rng(0)
    N, D, w = 10 ** rng.uniform(5, 8, 7), 10 ** rng.uniform(6, 9, 7), rng.uniform(0, 1, 7)
    w[0], w[1] = 0.0, 1.0
    per = TRUTH.predict_modalities(N, D, {"a": w, "b": 1 - w})
    mix = TRUTH.predict(N, D, [{"a": x, "b": 1 - x} for x in w])
    for r in range(7):
        one = TRUTH.predict_modalities(N[r], D[r], {"a": w[r], "b": 1 - w[r]})
        for k in "ab":
            np.testing.assert_allclose(per[k][r], one[k], rtol=1e-14, equal_nan=True)
        np.testing.assert_allclose(mix[r], TRUTH.predict(N[r], D[r], {"a": w[r], "b": 1 - w[r]}))
    assert np.isnan(per["a"][0]) and np.isnan(per["b"][1])  # no loss for an absent modality
    nm = NModalLaw.from_bimodal([BimodalLaw(LAW_A, LAW_B, Interaction(0.1, 5.0, 50.0, 0.3, 0.3),
                                            names=("a", "b"))])
    got = nm.predict(N, D, {"a": w, "b": 1 - w})
    np.testing.assert_allclose(got, [nm.predict(n, d, {"a": x, "b": 1 - x})
                                     for n, d, x in zip(N, D, w, strict=True)], rtol=1e-14)


def test_power_sum_at_fixed_shares_and_round_trip():
    N, D = np.geomspace(1e5, 1e10, 6), np.geomspace(1e6, 1e12, 6)
    shares = {"a": 0.3, "b": 0.7}
    np.testing.assert_allclose(TRUTH.at_shares(shares).value(N, D), TRUTH.predict(N, D, shares),
                               rtol=1e-12)
    np.testing.assert_allclose(TRUTH.at_shares(shares, "b").value(N, D),
                               TRUTH.predict_modalities(N, D, shares)["b"], rtol=1e-12)
    back = MixtureLaw.from_dict(TRUTH.as_dict())
    np.testing.assert_allclose(back.predict(N, D, shares), TRUTH.predict(N, D, shares))
    best = allocate(TRUTH.at_shares(shares), 1e18)
    scan = TRUTH.predict(best.N * np.geomspace(0.5, 2, 201), 1e18 / (6 * best.N
                                                                     * np.geomspace(0.5, 2, 201)),
                         shares)
    assert best.loss <= scan.min() + 1e-12


def _design(truth, shares=SHARES, noise=0.002, seed=0) -> MixtureRuns:
    grid = [(N, D, w) for N in SIZES for D in BUDGETS for w in shares]
    N, D, wa = (np.array(v, np.float64) for v in zip(*grid, strict=True))
    W = np.stack([wa, 1 - wa], 1)
    L = truth(N, D, wa) * np.exp(np.random.default_rng(seed).normal(0, noise, (len(N), 2)))
    L = np.where(W > 0, L, np.nan)
    return MixtureRuns(("a", "b"), np.array([f"r{k}" for k in range(len(N))]), N, D, W, L,
                       np.nansum(W * np.nan_to_num(L), axis=1))


def _planted(N, D, wa):
    per = TRUTH.predict_modalities(N, D, {"a": wa, "b": 1 - wa})
    return np.stack([per["a"], per["b"]], 1)


def _linear_in_share(N, D, wa):
    """A truth whose per-modality losses are linear in the share at every N and D."""
    return np.stack([LAW_A.predict(N, D) * (1 + 0.05 * (1 - wa)),
                     LAW_B.predict(N, D) * (1 + 0.08 * wa)], 1)


def test_joint_fit_from_mixed_runs_only_recovers_the_unimodal_laws():
    runs = _design(_planted, shares=(0.25, 0.5, 0.75))  # no pure run
    fit = fit_mixture(runs)
    for k, law in (("a", LAW_A), ("b", LAW_B)):
        got = fit.laws[k]
        assert got.alpha == pytest.approx(law.alpha, abs=0.03), k
        assert got.beta == pytest.approx(law.beta, abs=0.03), k
        assert got.E == pytest.approx(law.E, rel=0.05), k
    assert not fit.info.on_boundary
    p = fit.pairs[("a", "b")]
    lo, hi = 0.02, 0.98  # the stated range of the interaction's exponents
    assert lo < p.alpha < hi and lo < p.beta < hi
    # Per-modality losses of held-in runs are reproduced to about the noise.
    pred = fit.predict_modalities(runs.N, runs.D, {"a": runs.shares[:, 0], "b": runs.shares[:, 1]})
    err = np.abs(np.stack([pred["a"], pred["b"]], 1) / runs.losses - 1)
    assert np.nanmax(err) < 0.01


def test_law_beats_interpolation_where_the_truth_bends_in_the_share():
    runs = _design(_planted)
    h = holdout_share(runs, 0.5)
    law, interp = h.per_modality
    assert law < 0.5 * interp, (law, interp)
    assert h.law_wins and not h.fit.info.on_boundary
    law_mix, interp_mix = h.mixture
    assert law_mix < interp_mix
    d = h.as_dict()
    assert d["law_beats_interpolation"] and d["exponents_interior"]


def test_interpolation_wins_where_the_truth_is_linear_in_the_share():
    # Honest about the other case: per-modality losses linear in the share are what the chord
    # reproduces; the law, whose own term bends in the share, is worse, and says what it cannot
    # determine.
    h = holdout_share(_design(_linear_in_share), 0.5)
    law, interp = h.per_modality
    assert interp < law
    assert h.fit.info.warnings


def test_interpolation_is_linear_in_the_share_at_matched_points():
    runs = _design(_planted, noise=1e-9)
    at = np.abs(runs.shares[:, 0] - 0.5) < 1e-9
    train, test = runs.take(np.flatnonzero(~at)), runs.take(np.flatnonzero(at))
    per, mix = interpolate_share(train, test)
    for t in range(len(test)):
        same = (train.N == test.N[t]) & (train.D == test.D[t])
        lo = np.flatnonzero(same & np.isclose(train.shares[:, 0], 0.25))[0]
        hi = np.flatnonzero(same & np.isclose(train.shares[:, 0], 0.75))[0]
        np.testing.assert_allclose(per[t], 0.5 * (train.losses[lo] + train.losses[hi]))
        np.testing.assert_allclose(mix[t], 0.5 * (train.loss[lo] + train.loss[hi]))


def test_fit_refuses_too_few_observations():
    runs = _design(_planted, shares=(0.5,)).take(range(6))
    with pytest.raises(ValueError, match="cannot determine"):
        fit_mixture(runs)
