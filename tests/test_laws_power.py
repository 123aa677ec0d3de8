"""Design power: planted laws come back where the design identifies them, and not otherwise."""

import pytest

from mmlaws.laws import TABLE1, Interaction, fit_bimodal
from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.power import design_points, design_power, interaction_power, rescale_law

LAW = UnimodalLaw(E=1.5, A=40.0, B=300.0, alpha=0.35, beta=0.3)


def test_a_wide_design_identifies_the_exponents_and_E():
    N, D = design_points([1e4, 3e4, 1e5, 3e5, 1e6], [1e6, 3e6, 1e7, 3e7])
    p = design_power(N, D, LAW, noise=0.005, replicates=32, seed=1)
    for k in ("E", "alpha", "beta"):
        assert p.params[k].identified, p.params[k].line()
        assert abs(p.params[k].bias) < 0.05
    assert p.unidentified == [k for k in p.params if not p.params[k].identified]
    assert len(p.lines()) == 6 and "identified" in p.lines()[1]


def test_two_budgets_do_not_pin_beta():
    """Four sizes x two budgets with 1% noise (the old quickstart grid): beta and E wander."""
    N, D = design_points([2.5e3, 1e4, 4e4, 1.3e5], [3.07e5, 1.23e6])
    law = rescale_law(TABLE1["code"], N, D, reference_N=[8e6, 6.7e9], reference_D=[5e9, 1e11])
    p = design_power(N, D, law, noise=0.01, replicates=48, seed=2)
    assert not p.params["beta"].identified
    assert not p.params["E"].identified
    assert p.params["E"].at_edge > 0.2  # the symptom: E pinned at the grid's edge


def test_rescale_keeps_exponents_and_centre_terms():
    N, D = design_points([1e4, 1e6], [1e6, 1e8])
    ref_N, ref_D = [1e8, 1e10], [1e9, 1e11]
    law = rescale_law(LAW, N, D, reference_N=ref_N, reference_D=ref_D)
    assert (law.alpha, law.beta, law.E) == (LAW.alpha, LAW.beta, LAW.E)
    assert law.A / 1e5**law.alpha == pytest.approx(LAW.A / 1e9**LAW.alpha)
    assert law.B / 1e7**law.beta == pytest.approx(LAW.B / 1e10**LAW.beta)


def test_interaction_power_on_observed_base():
    """A strong interaction at 0.2% noise: its exponents come back; a weak one at 1% noise on
    the same 5 x 4 design does not, and the power check says so."""
    N, Dp = design_points([1e4, 3e4, 1e5, 3e5, 1e6], [2e6, 4e6, 8e6, 1.6e7])
    base = LAW.predict(N, Dp / 2)
    strong = Interaction(C=0.1, A=30.0, B=3000.0, alpha=0.6, beta=0.6)
    p = interaction_power(N, Dp, base, strong, noise=0.002, replicates=24, seed=3)
    assert p.params["alpha"].identified and p.params["beta"].identified, p.lines()
    weak = Interaction(C=0.05, A=2.0, B=30.0, alpha=0.5, beta=0.4)
    p = interaction_power(N, Dp, base, weak, noise=0.01, replicates=24, seed=3)
    assert {"C", "alpha", "beta"} <= set(p.unidentified)


def test_fit_bimodal_on_observed_base_ignores_unimodal_misfit():
    """With the observed base, a uni-modal law that is 5% off does not leak into C_ij."""
    term = Interaction(C=0.05, A=2.0, B=30.0, alpha=0.5, beta=0.4)
    N, Dp = design_points([1e4, 3e4, 1e5, 3e5, 1e6], [2e6, 4e6, 8e6, 1.6e7])
    base = LAW.predict(N, Dp / 2)
    pair = base + term.value(N, Dp)
    wrong = UnimodalLaw(E=LAW.E * 1.05, A=LAW.A, B=LAW.B, alpha=LAW.alpha, beta=LAW.beta)
    fit = fit_bimodal(N, Dp / 2, Dp / 2, pair, wrong, wrong, base=base)
    assert fit.interaction.C == pytest.approx(term.C, abs=2e-3)
    biased = fit_bimodal(N, Dp / 2, Dp / 2, pair, wrong, wrong)
    assert abs(biased.interaction.C - term.C) > 0.05  # the misfit is absorbed into C


def test_bad_noise_is_refused():
    N, D = design_points([1e4, 1e5, 1e6], [1e6, 1e7])
    with pytest.raises(ValueError, match="noise"):
        design_power(N, D, LAW, noise=0.0)


def test_profile_coverage_and_widths_follow_the_noise():
    """The 95% profile intervals of the refits cover the planted exponents, and their median
    width grows with the noise (about in proportion: 4x the noise, well over twice the width)."""
    N, D = design_points([1e4, 3e4, 1e5, 3e5, 1e6], [1e6, 3e6, 1e7, 3e7])
    quiet = design_power(N, D, LAW, noise=0.005, replicates=8, coverage=8, seed=4)
    loud = design_power(N, D, LAW, noise=0.02, replicates=4, coverage=4, seed=4)
    for k in ("alpha", "beta"):
        assert quiet.params[k].coverage >= 0.75, quiet.params[k].line()
        assert 0 < quiet.params[k].width < 0.1, quiet.params[k].line()
        assert loud.params[k].width > 2 * quiet.params[k].width, loud.params[k].line()
        assert "median width" in quiet.params[k].line()
    assert quiet.params["E"].width is None  # profiles are formed for the exponents only
