import numpy as np
import pytest

from mmlaws.laws import (
    TABLE1,
    BimodalLaw,
    Interaction,
    NModalLaw,
    UnimodalLaw,
    normalise_shares,
)


def test_unimodal_matches_formula():
    law = UnimodalLaw(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    N, D = np.array([1e8, 3e9]), np.array([2e10, 7e11])
    np.testing.assert_allclose(law.predict(N, D), 1.7 + 400 / N**0.34 + 410 / D**0.28, rtol=1e-14)


def _pair():
    t = Interaction(C=0.3, A=50.0, B=900.0, alpha=0.2, beta=0.25)
    return BimodalLaw(TABLE1["speech"], TABLE1["text"], t, names=("speech", "text"))


def test_bimodal_is_eq4():
    law, N, Di, Dj = _pair(), 1.3e9, 5e9, 5e9
    li, lj = TABLE1["speech"].predict(N, Di), TABLE1["text"].predict(N, Dj)
    expect = 0.5 * (li + lj) - 0.3 + 50 / N**0.2 + 900 / (Di + Dj) ** 0.25
    np.testing.assert_allclose(law.predict(N, Di, Dj), expect, rtol=1e-14)


def test_nmodal_reduces_to_eq4_at_50_50():
    pair = _pair()
    nm = NModalLaw.from_bimodal([pair])
    N, D = np.array([8e6, 6.7e9]), np.array([10e9, 100e9])
    np.testing.assert_allclose(nm.predict(N, D, {"speech": 1, "text": 1}),
                               pair.predict(N, D / 2, D / 2), rtol=1e-14)


def test_nmodal_single_modality_is_unimodal_and_absent_pairs_vanish():
    nm = NModalLaw.from_bimodal([_pair()])
    np.testing.assert_allclose(nm.predict(1e9, 1e10, {"text": 1.0}),
                               TABLE1["text"].predict(1e9, 1e10), rtol=1e-14)
    w = {"speech": 0.7, "text": 0.3}
    got = nm.predict(1e9, 1e10, w)
    base = 0.7 * TABLE1["speech"].predict(1e9, 7e9) + 0.3 * TABLE1["text"].predict(1e9, 3e9)
    np.testing.assert_allclose(got, base + 4 * 0.21 * _pair().interaction.value(1e9, 1e10))


def test_shares_validation():
    assert normalise_shares({"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}
    with pytest.raises(ValueError, match="non-negative"):
        normalise_shares({"a": -1, "b": 2})
    with pytest.raises(ValueError, match="sum"):
        normalise_shares({"a": 0})
