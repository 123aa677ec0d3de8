"""The fit job on a folder of run logs: uni-modal laws per dataset and Eq. 4 per 50/50 pair."""

import json

import numpy as np
import pytest

from mmlaws.laws import PAPER_DESIGN_D, PAPER_DESIGN_N, TABLE1, Interaction, RunLogWriter
from mmlaws.laws.jobs import fit_runs


def _log(folder, run_id, N, tokens_per_dataset, loss):
    total = sum(tokens_per_dataset.values())
    shares = {k: v / total for k, v in tokens_per_dataset.items()}
    with RunLogWriter(folder, {"run_id": run_id, "datasets": shares, "N": N,
                               "N_convention": "non_embedding", "objective": "cm3"}) as w:
        w.write({"kind": "final", "step": 1, "tokens": total, "loss": loss,
                 "tokens_per_dataset": tokens_per_dataset,
                 "loss_per_dataset": {k: loss for k in tokens_per_dataset}})


@pytest.mark.slow
def test_fit_runs_fits_singles_and_the_pair_with_its_optimum(tmp_path):
    li, lj = TABLE1["speech"], TABLE1["text"]
    true = Interaction(C=0.4, A=30.0, B=2000.0, alpha=0.25, beta=0.3)
    rng = np.random.default_rng(0)
    noise = lambda: np.exp(rng.normal(0, 1e-4))
    for n in PAPER_DESIGN_N:
        for d in PAPER_DESIGN_D:
            _log(tmp_path, f"s-{n:g}-{d:g}", n, {"speech": d}, li.predict(n, d) * noise())
            _log(tmp_path, f"t-{n:g}-{d:g}", n, {"text": d}, lj.predict(n, d) * noise())
            pair = 0.5 * (li.predict(n, d / 2) + lj.predict(n, d / 2)) + true.value(n, d)
            _log(tmp_path, f"p-{n:g}-{d:g}", n, {"speech": d / 2, "text": d / 2}, pair * noise())
    out = tmp_path / "out"
    res = fit_runs(str(tmp_path), str(out), grid="coarse", bootstrap_samples=32)
    assert set(res) == {"speech", "text", "speech|text"}
    assert res["speech"]["alpha"] == pytest.approx(li.alpha, abs=0.01)
    got = res["speech|text"]
    assert got["C"] == pytest.approx(true.C, rel=0.2)
    assert got["compute_optimal"]["N"] > 0 and np.isfinite(got["compute_optimal"]["compute"])
    lo, hi = got["interval95"]["N*"]
    assert lo <= hi
    written = json.loads((out / "fits.json").read_text())
    assert written["speech|text"]["num_runs"] == 21


@pytest.mark.slow
def test_fit_table_fits_the_nmodal_law_and_checks_the_pairs_on_the_triple():
    """Three datasets, their pairs and the triple at equal shares, all from one n-modal law:
    the pair laws alone predict the triple's runs (Eq. 4 terms add up pairwise)."""
    from mmlaws.laws import NModalLaw, RunTable
    from mmlaws.laws.jobs import fit_table

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
    table = RunTable(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                     np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
                     tuple(r[4] for r in rows), tuple(r[5] for r in rows),
                     tuple({k: r[3] for k in r[4]} for r in rows))
    fits = fit_table(table, grid="coarse")
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
