"""Jobs the entry point runs for the law engine (bound in ``configs/fit/*.gin``).

- :func:`fit_runs` fits uni-modal laws per dataset and bi-modal laws per 50/50 pair on a CSV or a
  folder of run logs, and writes ``fits.json`` and plots.
- :func:`reproduce_paper` samples the paper's design (§5.1) from each published Table 1 law with
  multiplicative noise, fits it back as the paper does, and reports recovery with bootstrap
  intervals, compute-optimal frontiers, and the CM3-vs-causal comparison of Table 3.

The fitting itself is :func:`mmlaws.laws.fit_table` (pure); here the results become files,
figures and a progress bar.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from mmlaws.errors import ConfigError, DataError
from mmlaws.laws import published
from mmlaws.laws.optimal import chinchilla_optimal
from mmlaws.laws.records import RunTable, read_runs
from mmlaws.laws.table import FitSettings, fit_table
from mmlaws.study.law_plots import plot_frontiers, plot_unimodal_fits

_UNITS = {"laws": "law", "pairs": "pair"}


def progress_bar(items: Sequence, what: str):
    """:func:`~mmlaws.laws.table.fit_table`'s progress hook: a tqdm bar over ``items``, shown
    after half a second (a fit refused at once leaves only its one-line error)."""
    return tqdm(items, desc=f"fitting {what}", unit=_UNITS.get(what, "item"), disable=not items,
                delay=0.5)


def _out(output_dir: str) -> pathlib.Path:
    out = pathlib.Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file in the way, no permission ...
        raise ConfigError(f"output_dir={output_dir!r}: cannot create it "
                          f"({err.strerror or err})") from None
    return out


def fit_runs(path: str, output_dir: str, *, fit: FitSettings = FitSettings(),
             csv_columns: dict | None = None, drop_highest_losses: int = 0) -> dict:
    """Fits every dataset's uni-modal law (runs on one dataset) and every pair's Eq. 4 found at
    ``path``; writes ``fits.json`` and a plot per uni-modal law.

    ``drop_highest_losses`` leaves out that many runs with the highest loss (Epoch's replication
    drops 5 of the Chinchilla points this way).
    """
    table = read_runs(path, **(csv_columns or {}))
    out = _out(output_dir)
    if drop_highest_losses:
        table = table.take(np.sort(np.argsort(table.loss, kind="stable")[:-drop_highest_losses]))
    try:
        fits = fit_table(table, fit, progress=progress_bar)
    except DataError as err:  # the fitter's checks: name the file the runs came from
        raise DataError(f"{path}: {err}") from err
    (out / "fits.json").write_text(json.dumps(fits.results, indent=2))
    plots = plot_unimodal_fits(table, fits, out)
    print(f"mmlaws: fitted {len(fits.unimodal)} uni-modal and {len(fits.bimodal)} bi-modal "
          f"law(s) on {len(table)} runs; wrote {out}/fits.json and {len(plots)} plot(s) "
          f"under {out}/")
    return fits.results


def reproduce_paper(
    output_dir: str, *, modalities: tuple[str, ...] | None = None, noise: float = 0.001,
    seed: int = 0, fit: FitSettings = FitSettings(),
) -> dict:
    """Samples Table 1 laws on the paper's design, refits them, and reports the recovery."""
    names = tuple(modalities or published.TABLE1)
    unknown = [m for m in names if m not in published.TABLE1]
    if unknown:
        raise ConfigError(f"modalities: unknown {unknown}; Table 1 has {list(published.TABLE1)}")
    if not 0 <= noise < 0.5:
        raise ConfigError(f"noise={noise!r}: expected a fraction in [0, 0.5)")
    out = _out(output_dir)
    table = _sample_design(names, noise, seed)
    fits = fit_table(table, fit, progress=progress_bar)
    report = {n: {"published": published.TABLE1[n].as_dict(), **fits.results[n]} for n in names}
    _write_csv(out / "synthetic_runs.csv", table)
    plot_unimodal_fits(table, fits, out)
    plot_frontiers({k: published.TABLE1[k] for k in names}, out / "frontiers.png")
    report["table3_cm3_vs_causal"] = _table3()
    (out / "reproduction.json").write_text(json.dumps(report, indent=2))
    (out / "README.md").write_text(_markdown(report, names, noise))
    print(f"mmlaws: reproduced {len(names)} Table 1 law(s); report in {out}/README.md, "
          f"fits in {out}/reproduction.json, plots {out}/fit_*.png and {out}/frontiers.png")
    return report


def _sample_design(names, noise: float, seed: int) -> RunTable:
    """Runs at every (N, D) of the paper's design on each Table 1 law, the loss times
    exp(N(0, noise)); run ids ``<modality>-<k>``."""
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(published.PAPER_DESIGN_N, published.PAPER_DESIGN_D))
    rows = []
    for name in names:
        loss = published.TABLE1[name].predict(N, D) * np.exp(rng.normal(0.0, noise, N.shape))
        rows += [(f"{name}-{k}", name, n, d, x)
                 for k, (n, d, x) in enumerate(zip(N, D, loss, strict=True))]
    ids, mods, n, d, loss = zip(*rows, strict=True)
    return RunTable(np.array(ids), np.array(n), np.array(d), np.array(loss),
                    tuple((m,) for m in mods), tuple({m: x} for m, x in zip(mods, d, strict=True)),
                    tuple({m: x} for m, x in zip(mods, loss, strict=True)))


def _write_csv(path, table: RunTable) -> None:
    lines = ["modality,N,D,loss"] + [
        f"{ds[0]},{n:.6g},{d:.6g},{x:.8g}"
        for ds, n, d, x in zip(table.datasets, table.N, table.D, table.loss, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _table3(compute=(1e21, 1e23, 1e25)) -> dict:
    """Loss and optimal allocation at a few budgets, CM3 against causal (Table 3)."""
    out = {}
    for name, law in published.TABLE3.items():
        opt = chinchilla_optimal(law, np.asarray(compute))
        out[name] = {f"{c:.0e}": {"N_opt": float(n), "D_opt": float(d), "loss": float(x)}
                     for c, n, d, x in zip(compute, opt.N, opt.D, opt.loss, strict=True)}
    return out


def _markdown(report: dict, names, noise) -> str:
    lines = [f"# Table 1 laws refitted from the paper's design ({noise:.1%} noise)", "",
             "| modality | α (pub) | α fit [95%] | β (pub) | β fit [95%] | E fit | converged |",
             "|---|---|---|---|---|---|---|"]

    def fmt(r, k):
        ci = r.get("interval95", {})
        return f"{r[k]:.4f}" + (f" [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else "")

    for n in names:
        r, p = report[n], report[n]["published"]
        lines.append(f"| {n} | {p['alpha']} | {fmt(r, 'alpha')} | {p['beta']} | {fmt(r, 'beta')} | "
                     f"{r['E']:.3f} | {r['num_converged']}/{r['num_starts']} |")
    lines += ["", "Plots: `fit_<modality>.png` (loss against N and D, residuals), "
              "`frontiers.png` (compute-optimal N and D per modality)."]
    return "\n".join(lines) + "\n"
