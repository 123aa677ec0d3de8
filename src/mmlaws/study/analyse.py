"""A study's analysis: laws on the finished runs, then the paper's phenomena (§5, §6).

:func:`analyse` returns one JSON-ready dict (written as ``study.json``) plus the objects the
report plots. Law fits come from :func:`mmlaws.laws.fit_table` on the law runs (batch-scan
runs at other batch sizes are left out); the phenomena from :mod:`mmlaws.analysis`:

- flatness per dataset after warm-up (``loss_per_dataset`` step curves: datasets that share a
  token range, such as text and code, are told apart by dataset, not vocabulary modality);
- the Figure 5 ratio ½(L_i + L_j)/L_pair (above 1: synergy, Eq. 5) for every pair run whose
  uni-modal runs of the same size finished at its per-dataset tokens (the pair's law entry
  carries the trend of L_pair − ½(L_i + L_j) over those runs, :mod:`mmlaws.laws.trend`);
- gradient-norm spike counts, and their correlation with log(N)/α_ij over each pair's runs;
- the optimal batch size per dataset set from the batch scan (final losses at one budget,
  minimum of a parabola in log2 batch), ``log(b_ij / (b_i + b_j))`` per pair, and its
  correlation with β_ij when there are three pairs or more;
- with a mixture design (runs of role ``mixture``: a pair at other shares than 50/50), the
  per-modality mixture laws of each such pair (:func:`mmlaws.laws.mixture_entry`, fitted on the
  pair's pure, 50/50 and mixture runs) under ``laws["<i>|<j> mixture"]``, checked against
  linear interpolation in the share on each interior share in turn, held out of the fit (those
  that trained shares bracket, so that interpolation is defined there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from mmlaws import analysis
from mmlaws.laws.records import RunTable
from mmlaws.laws.share_holdout import mixture_entry
from mmlaws.laws.table import FitSettings, Progress, TableFits, fit_table


@dataclasses.dataclass
class Analysis:
    """What :func:`analyse` found: ``results`` is JSON-ready; the rest feeds the report."""

    results: dict
    table: RunTable  # the law runs
    fits: TableFits
    ratios: dict  # (i, j) -> {run_id of the pair run: RatioCurve}
    all_runs: RunTable


def _corr(c: analysis.Correlation) -> dict:
    return {"pearson": c.pearson, "pearson_p": c.pearson_p, "spearman": c.spearman,
            "spearman_p": c.spearman_p, "x": c.x.tolist(), "y": c.y.tolist(),
            "labels": list(c.labels)}


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw), None
    except ValueError as err:
        return None, str(err)


def analyse(
    all_runs: RunTable, design: Mapping[str, Mapping], *, fit: FitSettings = FitSettings(),
    warmup_tokens: float = 0.0, flatness_window: float = 0.1, flatness_eps: float = 1e-3,
    progress: Progress | None = None,
) -> Analysis:
    """Laws and phenomena of a study's finished runs.

    Args:
      all_runs: the study's finished runs (``read_runs(<study>/runs)``).
      design: :func:`mmlaws.study.design.plan`'s runs (roles, models, budgets); runs not in it
        are ignored.
      fit: how the laws are fitted (:func:`mmlaws.laws.fit_table`); ``progress`` its
        progress hook (none: silent).
      warmup_tokens: tokens before the flatness analysis starts (the runs' warm-up).
      flatness_window: window of the flatness criterion as a fraction of each run's tokens.
      flatness_eps: relative decrease below which a window is flat.
    """
    ids = [str(r) for r in all_runs.run_id]
    keep = [k for k, r in enumerate(ids) if r in design]
    runs = all_runs.take(keep)
    law_idx = [k for k, r in enumerate(runs.run_id) if design[str(r)]["role"] == "law"]
    table = runs.take(law_idx)
    fits = fit_table(table, fit, progress=progress)
    results = {"runs": _run_rows(runs, design), "laws": fits.results}
    results["flatness"] = _flatness(runs, warmup_tokens, flatness_window, flatness_eps)
    ratios, results["ratio"] = _ratios(table, design, fits)
    results["spikes"] = _spikes(runs, table, fits)
    results["batch"] = _batch(runs, design, fits)
    results["laws"].update(_mixtures(runs, design))
    return Analysis(results, table, fits, ratios, runs)


def held_shares(shares) -> list[float]:
    """The shares a mixture design holds out, one at a time: every interior share with trained
    shares on both sides (so that interpolation in the share is defined there)."""
    s = sorted({round(float(x), 6) for x in shares})
    return [x for x in s if 0 < x < 1 and s[0] < x < s[-1]]


def _mixtures(runs: RunTable, design) -> dict:
    """``{"<i>|<j> mixture": entry}`` for each pair trained at other shares than 50/50."""
    out = {}
    pairs = {tuple(d["datasets"]) for d in design.values() if d["role"] == "mixture"}
    for pair in sorted(pairs):
        keep = [k for k, r in enumerate(runs.run_id)
                if design[str(r)]["role"] in ("law", "mixture")
                and set(design[str(r)]["datasets"]) <= set(pair)]
        sub = runs.take(keep)
        nominal = [design[str(r)]["bindings"]["SHARES"].get(pair[0], 0.0) for r in sub.run_id]
        try:
            entry = mixture_entry(sub, pair, held_shares=held_shares(nominal))
        except ValueError as err:
            entry = {"error": str(err)}
        out["|".join(pair) + " mixture"] = entry
    return out


def _run_rows(runs: RunTable, design) -> list[dict]:
    rows = []
    for k, rid in enumerate(runs.run_id):
        d, rec = design[str(rid)], runs.records[k]
        rows.append({"run_id": str(rid), "role": d["role"], "datasets": "+".join(d["datasets"]),
                     "model": d["model"], "N": float(runs.N[k]), "batch": d["batch"],
                     "tokens": float(runs.D[k]), "loss": float(runs.loss[k]),
                     "loss_per_dataset": runs.losses[k],
                     "tokens_per_s": _median_rate(rec)})
    return rows


def _median_rate(rec) -> float | None:
    rates = [s["tokens_per_s"] for s in rec.steps[1:] if s.get("tokens_per_s")]
    return float(np.median(rates)) if rates else None


def _flatness(runs: RunTable, warmup, window, eps) -> dict:
    out = {"criterion": {"series": "loss_per_dataset", "warmup_tokens": warmup,
                         "window_fraction": window, "eps": eps}, "runs": {}, "errors": {}}
    for k, rec in enumerate(runs.records):
        w = window * float(runs.D[k])
        got, err = _try(analysis.flatness, rec, warmup_tokens=warmup, window_tokens=w, eps=eps,
                        smooth=5, series="loss_per_dataset")
        if err:
            out["errors"][rec.run_id] = err
        else:
            out["runs"].update(got)
    return out


def _ratios(table: RunTable, design, fits: TableFits, rtol_tokens: float = 0.05):
    """The Fig. 5 ratio of each pair run whose uni-modal runs of the same model *finished* at
    its per-dataset tokens (a run trained to that budget, or its WSD branch there); a pair run
    without them gets a row saying so, never a ratio read in the middle of a longer schedule."""
    curves, rows = {}, []
    recs = {str(r): table.records[k] for k, r in enumerate(table.run_id)}
    uni: dict[tuple, list] = {}  # (dataset, model) -> [(tokens, record)]
    for rid, rec in recs.items():
        d = design[rid]
        if len(d["datasets"]) == 1:
            uni.setdefault((d["datasets"][0], d["model"]), []).append((d["tokens"], rec))
    for (i, j), law in fits.bimodal.items():
        curves[(i, j)] = {}
        for rid, pair in sorted(recs.items()):
            d = design[rid]
            if tuple(d["datasets"]) != (i, j):
                continue
            row = {"pair": f"{i}|{j}", "model": d["model"], "tokens": d["tokens"], "run_id": rid}
            found, missing = [], []
            for name in (i, j):
                want = d["tokens"] * pair.datasets[name]
                hit = [r for t, r in sorted(uni.get((name, d["model"]), []), key=lambda x: x[0])
                       if abs(t / want - 1) <= rtol_tokens]
                (found.append(hit[0]) if hit else missing.append(f"{name} at {want:.3g}"))
            if missing:
                rows.append({**row, "error": f"no uni-modal run of model {d['model']} finished "
                             f"at the pair's tokens of {', '.join(missing)} (not read "
                             "mid-schedule)"})
                continue
            c, err = _try(analysis.competition_ratio, *found, pair, name_i=i, name_j=j, law=law,
                          rtol_tokens=rtol_tokens)
            if err:
                rows.append({**row, "error": err})
                continue
            curves[(i, j)][rid] = c
            final = float(c.ratio[-1]) if c.final is None else float(c.final)
            rows.append({**row, "N": c.N, "uni_runs": [r.run_id for r in found],
                         "final_ratio": final, "verdict": analysis.ratio_verdict(final),
                         "predicted_final_ratio": c.predicted_final})
    return curves, rows


def _spikes(runs: RunTable, law_runs: RunTable, fits: TableFits) -> dict:
    """Spike counts of every run; the correlation over each pair's law runs (one batch size)."""
    counts = analysis.spike_counts(runs.records)
    out = {"counts": counts, "correlation": {}}
    for (i, j), law in fits.bimodal.items():
        recs = [r for r in law_runs.records if tuple(sorted(r.datasets)) == (i, j)]
        alpha = law.interaction.alpha
        if alpha <= 0:
            out["correlation"][f"{i}|{j}"] = {"error": f"alpha_ij = {alpha:.3g} is not positive"}
            continue
        c, err = _try(analysis.spike_correlation, recs, alpha, counts=counts)
        out["correlation"][f"{i}|{j}"] = {"error": err} if err else {**_corr(c), "alpha": alpha}
    return out


def _batch(runs: RunTable, design, fits: TableFits) -> dict:
    scan = [k for k, r in enumerate(runs.run_id) if design[str(r)]["role"] == "batch"]
    if not scan:
        return {}
    first = design[str(runs.run_id[scan[0]])]
    model, tokens = first["model"], first["tokens"]
    groups: dict[tuple, list] = {}
    for k, rid in enumerate(runs.run_id):
        d = design[str(rid)]
        if d["model"] == model and d["tokens"] == tokens:
            b = float(runs.records[k].header["config"]["batch_tokens"])
            groups.setdefault(tuple(d["datasets"]), []).append((b, float(runs.loss[k])))
    optimum = {}
    for ds, pts in sorted(groups.items()):
        pts.sort()
        b, L = zip(*pts, strict=True)
        if len(b) >= 3:
            opt, interp = analysis.log_parabola_minimum(b, L)
            optimum["+".join(ds)] = {"batch_tokens": list(b), "loss": list(L), "optimum": opt,
                                     "interpolated": interp}
    ratio = {}
    for (i, j) in fits.bimodal:
        names = (i, j, f"{i}+{j}")
        if all(n in optimum for n in names):
            ratio[(i, j)] = analysis.batch_ratio(*(optimum[n]["optimum"] for n in names[::-1]))
    out = {"model": model, "tokens": tokens, "optimum": optimum,
           "ratio": {"|".join(p): v for p, v in ratio.items()}}
    if ratio:
        beta = {p: fits.bimodal[p].interaction.beta for p in ratio}
        c, err = _try(analysis.batch_beta_correlation, ratio, beta)
        out["beta_correlation"] = {"error": err} if err else _corr(c)
    return out
