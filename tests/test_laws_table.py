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


def test_the_pair_is_fitted_on_its_observed_uni_modal_base_with_profile_intervals():
    """Uni-modal runs carry a misfit no Eq. 2 law can follow (±2% by N); the pair runs sit
    on the *observed* ½(L_i + L_j) at their per-dataset tokens. Fitted against
    that observed base, the entry says which base it used, gives profile intervals
    that cover the planted value, and held-out errors by N and by D. (Exact data has no
    residual scale for a likelihood ratio: the pair runs carry 0.1% noise.)"""
    uni = {"code": TABLE1["code"], "text": TABLE1["text"]}
    term = Interaction(C=0.3, A=400.0, B=2500.0, alpha=0.3, beta=0.3)
    Ns = (1e8, 3e8, 1e9, 3e9)
    wobble = {n: 1 + 0.02 * (-1) ** k for k, n in enumerate(Ns)}
    rows, observed, differences = [], {}, []
    noise = iter(1 + 0.001 * np.random.default_rng(0).standard_normal(16))
    for m, law in uni.items():
        for n in Ns:
            for d in (1e9, 2e9, 4e9, 8e9, 16e9):
                loss = float(law.predict(n, d)) * wobble[n]
                observed[m, n, d] = loss
                rows.append((f"{m}-{n:g}-{d:g}", n, d, loss, (m,), {m: d}))
    for n in Ns:
        for d in (2e9, 4e9, 8e9, 16e9):
            base = 0.5 * (observed["code", n, d / 2] + observed["text", n, d / 2])
            loss = (base + float(term.value(n, d))) * next(noise)
            differences.append(loss - base)
            rows.append((f"pair-{n:g}-{d:g}", n, d, loss, ("code", "text"),
                         {"code": d / 2, "text": d / 2}))
    fits = fit_table(_table(rows), FitSettings(grid="coarse", bootstrap_samples=0))
    pair = fits.results["code|text"]
    assert pair["base"].startswith("observed") and pair["num_runs"] == 16
    assert np.allclose(pair["observed_difference"]["value"], differences, atol=1e-12)
    for name in ("C", "alpha", "beta"):
        lo, hi, _ = pair["profile95"][name]
        assert lo <= 0.3 <= hi, name
    code = fits.results["code"]
    assert set(code["profile95"]) == {"alpha", "beta", "E"}
    assert code["holdout"]["axis"] == "N" and code["holdout_D"]["axis"] == "D"
    assert len(code["holdout_D"]["reducible_error"]) == len(Ns)


def test_without_matched_uni_modal_runs_the_pair_falls_back_to_the_laws():
    uni = {"code": TABLE1["code"], "text": TABLE1["text"]}
    rows = [(f"{m}-{n:g}-{d:g}", n, d, float(law.predict(n, d)), (m,), {m: d})
            for m, law in uni.items() for n in (1e8, 1e9, 1e10) for d in (1e9, 1e10, 1e11)]
    rows += [(f"pair-{n:g}-{d:g}", n, d, 0.5 * float(uni["code"].predict(n, d / 2)
                                                      + uni["text"].predict(n, d / 2)),
              ("code", "text"), {"code": d / 2, "text": d / 2})
             for n in (1e8, 1e9, 1e10) for d in (3e9, 3e10, 3e11)]
    pair = fit_table(_table(rows), FitSettings(grid="coarse", bootstrap_samples=0,
                                               holdout_sizes=0, profile=False)).results
    assert pair["code|text"]["base"].startswith("the uni-modal laws")
    assert "observed_difference" not in pair["code|text"] and "profile95" not in pair["code"]


def test_the_barrier_is_costed_with_the_runs_own_flops_per_token(tmp_path):
    """Records carry each model's real training FLOPs per token (embeddings and attention
    included); the table's FLOP count follows them between sizes, and 6N without them."""
    from mmlaws.laws import RunLogWriter, read_runs
    from mmlaws.laws.table import flops_per_token

    real = {2e3: 9e4, 2e4: 3e5}  # at small N embeddings and attention dominate 6N
    for n, f in real.items():
        with RunLogWriter(tmp_path, {"run_id": f"r{n:g}", "datasets": {"code": 1.0}, "N": n,
                                     "N_convention": "total", "flops_per_token": f}) as w:
            w.write({"kind": "final", "step": 1, "tokens": 1e6, "loss": 3.0,
                     "tokens_per_dataset": {"code": 1e6}, "loss_per_dataset": {"code": 3.0}})
    f = flops_per_token(read_runs(tmp_path))
    assert f(np.array([2e3, 2e4])) == pytest.approx([9e4, 3e5])
    assert f.name == "the runs' training FLOPs"
    assert flops_per_token(_table([("a", 1e3, 1e6, 3.0, ("code",), {"code": 1e6})])).name == "6N"
