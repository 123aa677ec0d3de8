"""The fit job on a folder of run logs: uni-modal laws per dataset and Eq. 4 per 50/50 pair;
and the old import paths of the jobs, kept one release with a deprecation warning."""

import importlib
import json
import sys

import numpy as np
import pytest

from mmlaws.laws import (
    PAPER_DESIGN_D,
    PAPER_DESIGN_N,
    TABLE1,
    FitSettings,
    Interaction,
    RunLogWriter,
)
from mmlaws.study.fit_jobs import fit_runs


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
    res = fit_runs(str(tmp_path), str(out),
                   fit=FitSettings(grid="coarse", bootstrap_samples=32, holdout_sizes=1))
    assert set(res) == {"speech", "text", "speech|text"}
    assert res["speech"]["alpha"] == pytest.approx(li.alpha, abs=0.01)
    got = res["speech|text"]
    assert got["C"] == pytest.approx(true.C, rel=0.2)
    assert got["compute_optimal"]["N"] > 0 and np.isfinite(got["compute_optimal"]["compute"])
    lo, hi = got["interval95"]["N*"]
    assert lo <= hi
    assert res["speech"]["holdout"]["mean_abs_relative_error"] < 1e-3  # 6.7B from the rest
    written = json.loads((out / "fits.json").read_text())
    assert written["speech|text"]["num_runs"] == 21
    assert (out / "fit_speech.png").stat().st_size > 10_000


@pytest.mark.parametrize("old, new, names", [
    ("mmlaws.laws.jobs", "mmlaws.study.fit_jobs", ("fit_runs", "reproduce_paper")),
    ("mmlaws.laws.jobs", "mmlaws.laws.table", ("fit_table", "FitSettings", "TableFits")),
    ("mmlaws.laws.plots", "mmlaws.study.law_plots", ("plot_unimodal_fit", "plot_frontiers")),
])
def test_old_paths_re_export_with_a_deprecation_warning(old, new, names):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=old):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    assert all(getattr(module, n) is getattr(target, n) for n in names)
