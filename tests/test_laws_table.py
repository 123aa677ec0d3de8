"""fit_table: every law a table of runs supports, as data (nothing printed or written), under
one FitSettings whose defaults are stated once."""

import dataclasses

import numpy as np
import pytest

from mmlaws.errors import ConfigError
from mmlaws.laws import (
    HUBER_DELTA,
    PAPER_DESIGN_D,
    PAPER_DESIGN_N,
    TABLE1,
    FitSettings,
    Interaction,
    NModalLaw,
    RunTable,
    fit_table,
)


def _table(rows) -> RunTable:
    """rows: (run id, N, D, loss, datasets, tokens per dataset)."""
    return RunTable(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                    np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
                    tuple(r[4] for r in rows), tuple(r[5] for r in rows),
                    tuple({k: r[3] for k in r[4]} for r in rows))


def test_fit_settings_state_the_defaults_once_and_name_bad_values():
    s = FitSettings()
    assert (s.huber_delta, s.grid, s.bootstrap_samples, s.holdout_sizes) == (
        HUBER_DELTA, "hoffmann", 200, 1)
    assert HUBER_DELTA == 0.03  # the paper's δ (§5.1, Eq. 3)
    assert FitSettings(huber_delta=1).huber_delta == 1.0
    for kw, needle in (({"huber_delta": 0}, "huber_delta=0"),
                       ({"huber_delta": "big"}, "huber_delta='big'"),
                       ({"grid": "fine"}, "grid='fine'"),
                       ({"bootstrap_samples": -1}, "bootstrap_samples=-1"),
                       ({"holdout_sizes": 1.5}, "holdout_sizes=1.5")):
        with pytest.raises(ConfigError, match=needle):
            FitSettings(**kw)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.grid = "coarse"


def test_fit_table_returns_data_and_reports_progress_through_its_hook(tmp_path, monkeypatch,
                                                                       capsys):
    """Two datasets of 2 sizes x 3 budgets: a law each, no files, no output; a held-out refit
    that cannot be made (2 sizes) is recorded as such, not raised."""
    monkeypatch.chdir(tmp_path)
    rows = [(f"{m}-{n:g}-{d:g}", n, d, float(TABLE1[m].predict(n, d)), (m,), {m: d})
            for m in ("code", "text") for n in (1e8, 1e9) for d in (1e9, 1e10, 1e11)]
    seen = []
    progress = lambda items, what: seen.append((what, list(items))) or items
    fits = fit_table(_table(rows), FitSettings(grid="coarse", bootstrap_samples=0),
                     progress=progress)
    assert seen == [("laws", ["code", "text"]), ("pairs", [])]
    assert set(fits.results) == set(fits.unimodal) == {"code", "text"} and not fits.bimodal
    assert fits.results["text"]["num_runs"] == 6 and fits.results["text"]["huber_delta"] == 0.03
    assert "leave too few" in fits.results["text"]["holdout"]["error"]
    assert "interval95" not in fits.results["text"]
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_fit_table_fits_the_nmodal_law_and_checks_the_pairs_on_the_triple():
    """Three datasets, their pairs and the triple at equal shares, all from one n-modal law:
    the pair laws alone predict the triple's runs (Eq. 4 terms add up pairwise)."""
    uni = {"a": TABLE1["speech"], "b": TABLE1["text"], "c": TABLE1["code"]}
    terms = {("a", "b"): Interaction(C=0.4, A=30.0, B=2000.0, alpha=0.25, beta=0.3),
             ("a", "c"): Interaction(C=0.2, A=20.0, B=900.0, alpha=0.3, beta=0.28),
             ("b", "c"): Interaction(C=0.3, A=25.0, B=1500.0, alpha=0.27, beta=0.32)}
    true = NModalLaw(laws=uni, interactions=terms)
    rows = []
    for ds in (("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")):
        for N in PAPER_DESIGN_N:
            for D in PAPER_DESIGN_D:
                shares = {k: 1 / len(ds) for k in ds}
                loss = float(true.predict(N, D, shares))
                rows.append((f"{'+'.join(ds)}-{N:.0e}-{D:.0e}", N, D, loss, ds,
                             {k: D * w for k, w in shares.items()}))
    fits = fit_table(_table(rows), FitSettings(grid="coarse", bootstrap_samples=0, holdout_sizes=0))
    n = fits.results["nmodal"]
    assert n["num_runs"] == 4 * len(PAPER_DESIGN_N) * len(PAPER_DESIGN_D)
    assert set(n["interactions"]) == {"a|b", "a|c", "b|c"}
    joint = NModalLaw(laws=uni, interactions={tuple(k.split("|")): Interaction(**v)
                                              for k, v in n["interactions"].items()})
    for N, D in ((PAPER_DESIGN_N[-1], PAPER_DESIGN_D[-1]), (PAPER_DESIGN_N[0], PAPER_DESIGN_D[0])):
        third = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
        assert joint.predict(N, D, third) == pytest.approx(true.predict(N, D, third), rel=5e-3)
    check = n["pairs_predict_nmodal"]
    assert len(check["runs"]) == len(PAPER_DESIGN_N) * len(PAPER_DESIGN_D)
    assert check["mean_abs_relative_error"] < 5e-3
