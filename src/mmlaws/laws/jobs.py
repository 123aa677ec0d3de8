"""Jobs the entry point runs for the law engine (bound in ``configs/fit/*.gin`` and
``configs/quickstart.gin``).

- :func:`fit_runs` fits uni-modal laws per dataset and bi-modal laws per 50/50 pair on a CSV or a
  folder of run logs, and writes ``fits.json`` and plots.
- :func:`reproduce_paper` samples the paper's design (§5.1) from each published Table 1 law with
  multiplicative noise, fits it back as the paper does, and reports recovery with bootstrap
  intervals, compute-optimal frontiers, and the CM3-vs-causal comparison of Table 3.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
import time

import numpy as np
from tqdm import tqdm

from mmlaws.errors import ConfigError
from mmlaws.laws import fit as fitting
from mmlaws.laws import plots, published
from mmlaws.laws.forms import Interaction, NModalLaw
from mmlaws.laws.optimal import chinchilla_optimal, compute_optimal
from mmlaws.laws.records import RunTable, read_runs
from mmlaws.laws.uncertainty import (
    bootstrap_bimodal,
    bootstrap_unimodal,
    holdout_bimodal,
    holdout_unimodal,
)

GRIDS = {
    "hoffmann": fitting.HOFFMANN_GRID,
    # exponents of at most 1 only (1,620 starts): a quicker look, not the paper's procedure
    "coarse": {
        k: (v[:3] if k in ("alpha", "beta") else v) for k, v in fitting.HOFFMANN_GRID.items()
    },
}


def _grid(name: str) -> dict:
    if name not in GRIDS:
        raise ConfigError(f"grid={name!r}: expected one of {sorted(GRIDS)}")
    return GRIDS[name]


def _check_delta(huber_delta) -> float:
    if not isinstance(huber_delta, int | float) or not huber_delta > 0:
        raise ConfigError(f"huber_delta={huber_delta!r}: must be a positive number")
    return float(huber_delta)


def _out(output_dir: str) -> pathlib.Path:
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def fit_runs(
    path: str, output_dir: str, *, huber_delta: float = 0.03, grid: str = "hoffmann",
    bootstrap_samples: int = 0, csv_columns: dict | None = None, drop_highest_losses: int = 0,
    holdout_sizes: int = 0,
) -> dict:
    """Fits every dataset's uni-modal law (runs on one dataset) and every pair's Eq. 4 found at
    ``path``; writes ``fits.json`` and a plot per uni-modal law.

    ``drop_highest_losses`` leaves out that many runs with the highest loss (Epoch's replication
    drops 5 of the Chinchilla points this way). ``holdout_sizes`` > 0 also refits each law
    without the runs at that many largest model sizes and reports its error on them.
    """
    table = read_runs(path, **(csv_columns or {}))
    out = _out(output_dir)
    if drop_highest_losses:
        table = table.take(np.sort(np.argsort(table.loss, kind="stable")[:-drop_highest_losses]))
    fits = fit_table(table, huber_delta=huber_delta, grid=grid,
                     bootstrap_samples=bootstrap_samples, holdout_sizes=holdout_sizes,
                     plots_dir=out)
    (out / "fits.json").write_text(json.dumps(fits.results, indent=2))
    print(f"mmlaws: fitted {len(fits.unimodal)} uni-modal and {len(fits.bimodal)} bi-modal "
          f"law(s) on {len(table)} runs; wrote {out}/fits.json and {len(fits.unimodal)} plot(s) "
          f"under {out}/")
    return fits.results


@dataclasses.dataclass(frozen=True)
class TableFits:
    """The laws fitted on a table of runs: JSON-ready entries and the law objects."""

    results: dict  # name ("text", or "code|text" for a pair) -> fits.json entry
    unimodal: dict  # dataset -> UnimodalFit
    bimodal: dict  # (i, j) -> BimodalFit


def fit_table(
    table: RunTable, *, huber_delta: float = 0.03, grid: str = "hoffmann",
    bootstrap_samples: int = 0, holdout_sizes: int = 0, plots_dir=None,
) -> TableFits:
    """Eq. 2 on every single-dataset set of runs, then Eq. 4 on every pair whose two datasets
    have laws. Each entry holds the parameters, the solver's outcome, and with
    ``bootstrap_samples`` 95% percentile intervals; with ``holdout_sizes`` the relative error of
    a refit without the largest sizes on the held-out runs (or why it could not be made)."""
    delta, grid = _check_delta(huber_delta), _grid(grid)
    if not isinstance(holdout_sizes, int) or holdout_sizes < 0:
        raise ConfigError(f"holdout_sizes={holdout_sizes!r}: expected an integer >= 0")
    results, laws, held_laws, pairs_fit = {}, {}, {}, {}
    singles = [d for d in table.dataset_sets() if len(d) == 1]
    for ds in tqdm(singles, desc="fitting laws", unit="law"):
        name = ds[0]
        results[name], laws[name], held_laws[name] = _fit_one(
            table.select(ds), name, delta, grid, bootstrap_samples, plots_dir, holdout_sizes)
    pairs = [d for d in table.dataset_sets() if len(d) == 2 and all(k in laws for k in d)]
    for ds in tqdm(pairs, desc="fitting pairs", unit="pair", disable=not pairs):
        results["|".join(ds)], pairs_fit[ds] = _fit_pair(
            table.select(ds), ds, laws, held_laws, delta, bootstrap_samples, holdout_sizes)
    multi = [d for d in table.dataset_sets() if len(d) > 2 and all(k in laws for k in d)]
    if multi:
        results["nmodal"] = _fit_multi(table, multi, laws, pairs_fit, delta)
    return TableFits(results, laws, pairs_fit)


def _fit_multi(table: RunTable, multi, laws, pairs_fit, delta) -> dict:
    """The n-modal law on every run that mixes datasets, and how well the separately fitted
    pairs alone predict the runs of three or more datasets (which the pair fits never saw)."""
    idx = [k for k, d in enumerate(table.datasets) if len(d) > 1 and all(x in laws for x in d)]
    runs = table.take(idx)
    shares = [{k: v / sum(t.values()) for k, v in t.items()} for t in runs.tokens]
    used = sorted({k for d in runs.datasets for k in d})
    fit = fitting.fit_nmodal(runs.N, runs.D, shares, runs.loss, {k: laws[k] for k in used},
                             huber_delta=delta)
    entry = {"interactions": {"|".join(p): dataclasses.asdict(t)
                              for p, t in fit.interactions.items()},
             "objective": fit.info.objective, "num_runs": len(runs),
             "num_converged": fit.info.num_converged, "num_starts": fit.info.num_starts}
    from_pairs = NModalLaw.from_bimodal(list(pairs_fit.values()))
    rows = [k for k, d in enumerate(runs.datasets) if d in multi]
    if all(p in pairs_fit for d in multi for p in itertools.combinations(d, 2)):
        err = [float(from_pairs.predict(runs.N[k], runs.D[k], shares[k]) / runs.loss[k] - 1)
               for k in rows]
        entry["pairs_predict_nmodal"] = {
            "runs": [str(runs.run_id[k]) for k in rows], "relative_error": err,
            "mean_abs_relative_error": float(np.mean(np.abs(err)))}
    return entry


def _pair_tokens(runs: RunTable, pair):
    return tuple(np.array([t.get(k, 0.0) for t in runs.tokens]) for k in pair)


def _fit_pair(runs: RunTable, pair: tuple[str, str], laws, held_laws, delta, bootstrap_samples,
              holdout_sizes):
    """Eq. 4 on a pair's runs (tokens per dataset from the run records), with Eq. 6's optimum."""
    t0 = time.perf_counter()
    i, j = pair
    D_i, D_j = _pair_tokens(runs, pair)
    fit = fitting.fit_bimodal(runs.N, D_i, D_j, runs.loss, laws[i], laws[j], huber_delta=delta,
                              names=pair)
    best = _optimum(fit.interaction)
    entry = {**dataclasses.asdict(fit.interaction), "objective": fit.objective,
             "num_runs": len(runs), "num_starts": fit.info.num_starts,
             "num_converged": fit.info.num_converged,
             "on_grid_boundary": list(fit.info.on_boundary), "huber_delta": delta,
             "compute_optimal": dataclasses.asdict(best) if best else None}
    if bootstrap_samples:
        bs = bootstrap_bimodal(runs.N, D_i, D_j, runs.loss, fit, num_samples=bootstrap_samples,
                               huber_delta=delta)
        for q in ("N", "D", "compute"):
            bs = bs.derive(f"{q}*", lambda q=q, **p: np.array(
                [getattr(_optimum(Interaction(**{k: p[k][r] for k in _INTER})), q, np.inf)
                 for r in range(len(p["C"]))]))
        entry["interval95"] = bs.interval(0.95)
        entry["bootstrap_converged"] = f"{bs.num_converged}/{bs.num_samples}"
    if holdout_sizes:
        if held_laws[i] is None or held_laws[j] is None:
            entry["holdout"] = {"error": "the uni-modal laws have no held-out fit"}
        else:
            entry["holdout"], _ = _holdout(lambda: holdout_bimodal(
                runs.N, D_i, D_j, runs.loss, held_laws[i], held_laws[j],
                num_sizes=holdout_sizes, huber_delta=delta, names=pair), runs)
    entry["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return entry, fit


def _holdout(make, runs: RunTable) -> tuple[dict, object]:
    """(the held-out entry: error per held-out run and its mean, or why the refit failed;
    the refitted law or None). ``make`` does the refit."""
    try:
        h = make()
    except ValueError as err:
        return {"error": str(err)}, None
    return {"held_out_runs": [str(runs.run_id[k]) for k in h.held_out],
            "relative_error": [float(e) for e in h.relative_error],
            "mean_abs_relative_error": h.mean_abs_relative_error}, h.fit


_INTER = ("C", "A", "B", "alpha", "beta")


def _optimum(term: Interaction):
    """Eq. 6's optimum, or None where the pair never turns synergistic (C ≤ 0); a bootstrap
    replicate without one counts as N* = D* = ∞."""
    return compute_optimal(term) if term.C > 0 and term.alpha > 0 and term.beta > 0 else None


def _fit_one(runs: RunTable, name: str, delta, grid, bootstrap_samples, out, holdout_sizes=0):
    """Eq. 2 on one dataset's runs: (its fits.json entry, the fitted law, the law fitted without
    the held-out sizes or None); writes its plot when ``out`` is a folder."""
    t0 = time.perf_counter()
    fit = fitting.fit_unimodal(runs.N, runs.D, runs.loss, huber_delta=delta, grid=grid)
    entry = {**fit.as_dict(), "objective": fit.objective, "num_runs": len(runs),
             "num_starts": fit.info.num_starts, "num_converged": fit.info.num_converged,
             "on_grid_boundary": list(fit.info.on_boundary), "huber_delta": delta}
    if bootstrap_samples:
        bs = bootstrap_unimodal(runs.N, runs.D, runs.loss, fit, num_samples=bootstrap_samples,
                                huber_delta=delta)
        entry["interval95"] = bs.interval(0.95)
        entry["bootstrap_converged"] = f"{bs.num_converged}/{bs.num_samples}"
    held = None
    if holdout_sizes:
        entry["holdout"], held = _holdout(lambda: holdout_unimodal(
            runs.N, runs.D, runs.loss, num_sizes=holdout_sizes, huber_delta=delta, grid=grid),
            runs)
    entry["fit_seconds"] = round(time.perf_counter() - t0, 2)
    if out is not None:
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plots.plot_unimodal_fit(runs.N, runs.D, runs.loss, fit, out / f"fit_{name}.png", name)
    return entry, fit, held


def reproduce_paper(
    output_dir: str, *, modalities: tuple[str, ...] | None = None, noise: float = 0.001,
    seed: int = 0, grid: str = "hoffmann", huber_delta: float = 0.03,
    bootstrap_samples: int = 200,
) -> dict:
    """Samples Table 1 laws on the paper's design, refits them, and reports the recovery."""
    delta, grid = _check_delta(huber_delta), _grid(grid)
    names = tuple(modalities or published.TABLE1)
    unknown = [m for m in names if m not in published.TABLE1]
    if unknown:
        raise ConfigError(f"modalities: unknown {unknown}; Table 1 has {list(published.TABLE1)}")
    if not 0 <= noise < 0.5:
        raise ConfigError(f"noise={noise!r}: expected a fraction in [0, 0.5)")
    out = _out(output_dir)
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(published.PAPER_DESIGN_N, published.PAPER_DESIGN_D))
    rows, report = [], {}
    for name in tqdm(names, desc="Table 1 laws", unit="law"):
        true = published.TABLE1[name]
        loss = true.predict(N, D) * np.exp(rng.normal(0.0, noise, N.shape))
        rows += [(name, n, d, x) for n, d, x in zip(N, D, loss, strict=True)]
        report[name] = {"published": true.as_dict(),
                        **_fit_one(_runs(N, D, loss, name), name, delta, grid,
                                   bootstrap_samples, out)[0]}
    _write_csv(out / "synthetic_runs.csv", rows)
    plots.plot_frontiers({k: published.TABLE1[k] for k in names}, out / "frontiers.png")
    report["table3_cm3_vs_causal"] = _table3()
    (out / "reproduction.json").write_text(json.dumps(report, indent=2))
    (out / "README.md").write_text(_markdown(report, names, noise))
    print(f"mmlaws: reproduced {len(names)} Table 1 law(s); report in {out}/README.md, "
          f"fits in {out}/reproduction.json, plots {out}/fit_*.png and {out}/frontiers.png")
    return report


def _runs(N, D, loss, name) -> RunTable:
    R = len(N)
    return RunTable(np.array([f"{name}-{i}" for i in range(R)]), N, D, loss, ((name,),) * R,
                    tuple({name: d} for d in D), tuple({name: x} for x in loss))


def _write_csv(path, rows) -> None:
    lines = ["modality,N,D,loss"] + [f"{m},{n:.6g},{d:.6g},{x:.8g}" for m, n, d, x in rows]
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
