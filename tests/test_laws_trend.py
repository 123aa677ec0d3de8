"""The trend of what a pair adds, L_pair − ½(L_i + L_j), over matched runs: planted trends come
back with intervals that cover."""

import numpy as np
import pytest

from mmlaws.laws import interaction_trend


def test_interaction_trend_recovers_a_planted_trend_and_its_uncertainty():
    rng = np.random.default_rng(0)
    N, D = (np.array(v, np.float64) for v in zip(*[(n, d) for n in (1e4, 3e4, 1e5, 3e5)
                                                   for d in (2e5, 4e5, 8e5, 1.6e6)], strict=True))
    x_n, x_d = np.log10(N) - np.log10(N).mean(), np.log10(D) - np.log10(D).mean()
    truth = 0.02 - 0.01 * x_n + 0.05 * x_d
    t = interaction_trend(N, D, truth + rng.normal(0, 0.005, len(N)))
    assert t.num_runs == 16 and t.residual_sd == pytest.approx(0.005, rel=0.5)
    assert t.per_decade_D == pytest.approx(0.05, abs=0.01)
    covered = np.zeros(3)  # the 95% intervals cover the planted values 95% of the time
    for _ in range(400):
        r = interaction_trend(N, D, truth + rng.normal(0, 0.005, len(N)))
        covered += [r.mean_ci[0] < 0.02 < r.mean_ci[1],
                    r.per_decade_N_ci[0] < -0.01 < r.per_decade_N_ci[1],
                    r.per_decade_D_ci[0] < 0.05 < r.per_decade_D_ci[1]]
    assert np.all(np.abs(covered / 400 - 0.95) < 0.03), covered / 400
    assert t.grows_with_data and t.as_dict()["grows_with_data"]
    flat = interaction_trend(N, D, 0.02 + rng.normal(0, 0.005, len(N)))
    assert not flat.grows_with_data and flat.above == 16  # all above 0: competition throughout
    exact = interaction_trend(N, D, truth + 1e-12 * rng.normal(size=len(N)))
    assert exact.per_decade_D == pytest.approx(0.05, abs=1e-9)
    with pytest.raises(ValueError, match="2 budgets"):
        interaction_trend(N[:4], D[:4], truth[:4])
