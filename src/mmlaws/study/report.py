"""A study's report folder: ``README.md`` with tables, and PNG figures after the paper's.

- ``fig1_loss_curves.png`` — training loss per dataset set against tokens, a line per run (Fig. 1).
- ``fit_<dataset>.png`` — each uni-modal law against its runs (Fig. 2).
- ``fig3_pair_<i>_<j>.png`` — Eq. 4 against the pair's runs, and its residuals (Fig. 3).
- ``fig4_barrier_<i>_<j>.png`` — the competition barrier D(N), Eq. 6's optimum, the runs (Fig. 4).
- ``fig5_ratio_<i>_<j>.png`` — ½(L_i + L_j)/L_pair over training with the predicted final ratio
  (above 1: synergy, by Eq. 5; the paper's Figure 5 caption says the reverse).

The README opens with the result (:mod:`mmlaws.study.summary`): what was trained, each law with
its profile intervals and whether it is identified, the held-out errors, each pair's verdict;
then the design power, the tables and the runs.
- ``fig7_flatness.png`` and ``fig9_spikes.png`` — flatness per dataset, spikes against log(N)/α.
- ``fig8_batch.png`` — loss against batch size per dataset set (when the study scanned batches).
"""

from __future__ import annotations

import pathlib

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from mmlaws.analysis import running_median
from mmlaws.laws.optimal import competition_barrier
from mmlaws.study.analyse import Analysis
from mmlaws.study.law_plots import plot_unimodal_fits, readable_log_axes
from mmlaws.study.summary import power_section, summary_lines


def write_report(a: Analysis, out: str | pathlib.Path, *, title: str = "mmlaws study") -> list:
    """Writes the figures and ``README.md`` under ``out``; returns the files written."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [_loss_curves(a, out / "fig1_loss_curves.png")]
    files += plot_unimodal_fits(a.table, a.fits, out)
    for (i, j), fit in a.fits.bimodal.items():
        files.append(_pair_fit(a, (i, j), fit, out / f"fig3_pair_{i}_{j}.png"))
        files.append(_barrier(a, (i, j), fit, out / f"fig4_barrier_{i}_{j}.png"))
        if a.ratios.get((i, j)):
            files.append(_ratio(a.ratios[(i, j)], (i, j), out / f"fig5_ratio_{i}_{j}.png"))
    if a.results["flatness"]["runs"]:
        files.append(_flatness(a.results["flatness"]["runs"], out / "fig7_flatness.png"))
    files.append(_spikes(a, out / "fig9_spikes.png"))
    if a.results["batch"].get("optimum"):
        files.append(_batch(a.results["batch"], out / "fig8_batch.png"))
    (out / "README.md").write_text(markdown(a, [f.name for f in files], title))
    return [out / "README.md", *files]


def _save(fig, path) -> pathlib.Path:
    readable_log_axes(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return pathlib.Path(path)


def _sets(a: Analysis) -> list[tuple[str, ...]]:
    return a.all_runs.dataset_sets()


def _loss_curves(a: Analysis, path):
    sets = _sets(a)
    fig = Figure(figsize=(4.6 * len(sets), 3.8))
    axes = fig.subplots(1, len(sets), squeeze=False)
    Ns = np.unique(a.all_runs.N)
    cmap = matplotlib.colormaps.get_cmap("viridis")
    for ax, ds in zip(axes[0], sets, strict=True):
        sub = a.all_runs.select(ds)
        budgets = sorted(set(np.round(sub.D, -3)))
        for k, rec in enumerate(sub.records):
            t, L = rec.curve("loss")
            if t.size == 0:
                continue
            c = cmap(np.searchsorted(Ns, sub.N[k]) / max(len(Ns) - 1, 1))
            style = ["-", "--", ":", "-."][budgets.index(round(sub.D[k], -3)) % 4]
            ax.plot(t, running_median(L, 9), style, color=c, lw=1.2,
                    label=f"N={sub.N[k]:.3g}, D={sub.D[k]:.3g}")
        ax.set(xscale="log", xlabel="tokens seen", ylabel="training loss (nats/token)",
               title=" + ".join(ds))
        ax.legend(fontsize=6)
    return _save(fig, path)


def _pair_fit(a: Analysis, pair, fit, path):
    sub = a.table.select(pair)
    D_i = np.array([t.get(pair[0], 0.0) for t in sub.tokens])
    D_j = np.array([t.get(pair[1], 0.0) for t in sub.tokens])
    pred = fit.predict(sub.N, D_i, D_j)
    indep = fit.independent(sub.N, D_i, D_j)
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots(1, 2)
    n_grid = np.geomspace(sub.N.min() / 2, sub.N.max() * 2, 100)
    cmap = matplotlib.colormaps.get_cmap("plasma")
    budgets = np.unique(np.round(sub.D, -3))
    for b, D in enumerate(budgets):
        m = np.round(sub.D, -3) == D
        c = cmap(b / max(len(budgets) - 1, 1))
        w_i = float(np.mean(D_i[m] / sub.D[m]))
        ax[0].scatter(sub.N[m], sub.loss[m], color=c, label=f"runs, D={D:.3g}")
        ax[0].plot(n_grid, fit.predict(n_grid, w_i * D, (1 - w_i) * D), color=c)
        ax[0].plot(n_grid, fit.independent(n_grid, w_i * D, (1 - w_i) * D), ":", color=c)
    ax[0].set(xscale="log", xlabel="N (parameters)", ylabel="loss (nats/token)",
              title=f"{pair[0]} | {pair[1]}: Eq. 4 (solid), ½(L_i+L_j) (dotted)")
    ax[0].legend(fontsize=7)
    ax[1].scatter(sub.N, np.log(sub.loss) - np.log(pred), label="Eq. 4")
    ax[1].scatter(sub.N, np.log(sub.loss) - np.log(indep), marker="x", label="½(L_i+L_j)")
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].set(xscale="log", xlabel="N", ylabel="log(observed / predicted)", title="residuals")
    ax[1].legend(fontsize=7)
    return _save(fig, path)


def _barrier(a: Analysis, pair, fit, path):
    sub = a.table.select(pair)
    n_grid = np.geomspace(sub.N.min() / 10, max(sub.N.max() * 1e4, 1e10), 300)
    d = competition_barrier(fit, n_grid)
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    ax.plot(n_grid, np.where(np.isfinite(d), d, np.nan), label="barrier: Eq. 5 holds with =")
    syn = fit.interaction.C - fit.interaction.A / sub.N ** fit.interaction.alpha \
        - fit.interaction.B / sub.D ** fit.interaction.beta > 0
    ax.scatter(sub.N[~syn], sub.D[~syn], marker="o", label="runs, competing")
    ax.scatter(sub.N[syn], sub.D[syn], marker="*", s=80, label="runs, synergistic")
    opt = a.results["laws"]["|".join(pair)].get("compute_optimal")
    if opt:
        ax.scatter([opt["N"]], [opt["D"]], marker="X", s=90, color="k",
                   label=f"Eq. 6 optimum ({opt['compute']:.2g} FLOPs)")
    # Tokens from 1e-3x the runs' to 1e6x (or the optimum's): a barrier with a tiny or negative
    # beta_ij spans hundreds of decades, which would flatten the runs into one line.
    d_seen = [*sub.D, *([opt["D"]] if opt else [])]
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="D (tokens)",
           ylim=(min(d_seen) / 1e3, max(d_seen) * 1e6),
           title=f"competition barrier {pair[0]} | {pair[1]} (C={fit.interaction.C:.3g})")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _ratio(curves: dict, pair, path):
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    cmap = matplotlib.colormaps.get_cmap("viridis")
    for k, (rid, c) in enumerate(sorted(curves.items(), key=lambda kv: (kv[1].N, kv[0]))):
        col = cmap(k / max(len(curves) - 1, 1))
        ax.plot(c.tokens, running_median(c.ratio, 9), color=col, lw=1.2, label=rid)
        if c.predicted_final is not None:
            ax.scatter([c.tokens[-1]], [c.predicted_final], color=col, marker="D", s=30)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="tokens seen by the pair run",
           ylabel="½(L_i + L_j) / L_pair  (above 1: synergy)",
           title=f"Fig. 5 ratio {pair[0]} | {pair[1]} (diamonds: the law's final ratio)")
    ax.legend(fontsize=6)
    return _save(fig, path)


def _flatness(per_run: dict, path):
    ids = sorted(per_run)
    names = sorted({m for v in per_run.values() for m in v})
    fig = Figure(figsize=(max(6, 0.45 * len(ids) + 2), 4))
    ax = fig.subplots()
    w = 0.8 / max(len(names), 1)
    for k, m in enumerate(names):
        ax.bar(np.arange(len(ids)) + k * w, [per_run[i].get(m, np.nan) for i in ids], w, label=m)
    ax.set_xticks(np.arange(len(ids)) + 0.4 - w / 2, ids, rotation=75, fontsize=6)
    ax.set(ylabel="flat windows (%)", title="flatness per dataset after warm-up (Fig. 7)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _spikes(a: Analysis, path):
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    corr = a.results["spikes"]["correlation"]
    for name, c in corr.items():
        if "x" in c:
            ax.scatter(c["x"], c["y"], label=f"{name}: r={c['pearson']:.2f}")
    if not any("x" in c for c in corr.values()):
        counts = a.results["spikes"]["counts"]
        ax.scatter(np.log(a.all_runs.N), [counts[str(r)] for r in a.all_runs.run_id],
                   label="all runs (no α_ij)")
        ax.set_xlabel("log N")
    else:
        ax.set_xlabel("log(N) / α_ij")
    ax.set(ylabel="gradient-norm spikes", title="spikes (Fig. 9)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _batch(batch: dict, path):
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name, o in batch["optimum"].items():
        line, = ax.plot(o["batch_tokens"], o["loss"], "o-", label=name)
        ax.axvline(o["optimum"], color=line.get_color(), ls=":")
    ax.set(xscale="log", xlabel="batch (tokens per step)", ylabel="final loss (nats/token)",
           title=f"batch scan at {batch['tokens']:.3g} tokens (Fig. 8)")
    ax.legend(fontsize=7)
    return _save(fig, path)


# ------------------------------------------------------------------------------ markdown
def _ci(entry: dict, key: str, fmt: str = "{:.3g}") -> str:
    v = entry.get(key)
    if v is None:
        return "—"
    ci = (entry.get("interval95") or {}).get(key)
    s = fmt.format(v)
    return s + (f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "")


def _edge(entry: dict) -> str:
    return ", ".join(entry.get("on_grid_boundary") or []) or "—"


def _star_ci(ci) -> str:
    if not ci or not np.all(np.isfinite(ci)):
        return f" [{ci[0]:.3g}, ∞]" if ci and np.isfinite(ci[0]) else ""
    return f" [{ci[0]:.3g}, {ci[1]:.3g}]"


def _holdout(entry: dict) -> str:
    h = entry.get("holdout")
    if not h:
        return "—"
    if "error" in h:
        return f"n/a ({h['error']})"
    return f"{100 * h['mean_abs_relative_error']:.2f}% on {len(h['held_out_runs'])} runs"


def mixture_section(laws: dict) -> list[str]:
    """The report's section on each pair's per-modality mixture laws (a mixture design)."""
    entries = {k.removesuffix(" mixture"): e for k, e in laws.items() if k.endswith(" mixture")}
    if not entries:
        return []
    lines = ["", "## Per-modality mixture laws, held-out shares", "",
             "Each modality's loss inside the pair's mixtures, L_k(N, D, w) "
             "(`mmlaws.laws.mixture`), fitted on the pair's pure, 50/50 and other-share runs "
             "without those at one share, then predicted there beside linear interpolation in "
             "the share between the runs of the same N and D at the nearest trained shares "
             "(mean |relative error| over the runs both predict); each interior share in turn. "
             "The law earns its place only where it beats the interpolation.", "",
             "| pair | runs | held-out share | held-out runs | law, per modality | "
             "interpolation, per modality | law, mixture loss | interpolation, mixture loss | "
             "exponents at a bound |", "|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "—" if v is None or v != v else f"{100 * v:.2f}%"
    for pair, e in entries.items():
        name = pair.replace("|", " \\| ")
        if "error" in e:
            lines.append(f"| {name} | — | — | — | n/a ({e['error']}) | | | | |")
            continue
        for h in e.get("holdouts", []):
            pm, mx = h["per_modality"], h["mixture"]
            bound = ", ".join(w.split(" ")[0] for w in h["warnings"] if "edge" in w) or "—"
            lines.append(f"| {name} | {e['num_runs']} | {h['held_share']:g} | {len(h['runs'])} "
                         f"| {pct(pm['law'])} | {pct(pm['interpolation'])} | {pct(mx['law'])} | "
                         f"{pct(mx['interpolation'])} | {bound} |")
        if not e.get("holdouts"):
            lines.append(f"| {name} | {e['num_runs']} | none (no interior share is bracketed) "
                         "| | | | | | |")
    return lines


def _warnings(laws: dict) -> list[str]:
    """What each fit's runs leave undetermined (its ``warnings``), or that nothing is."""
    rows = [f"- **{name}**: {w}" for name, e in laws.items() for w in e.get("warnings") or []]
    head = ["", "## What the runs do not determine", "",
            "From each fit's design (sizes and budgets), its estimates at a grid edge or bound, "
            "and its local profile (a parameter whose 95% interval is wider than half its "
            "value, or a factor 10 for A and B, is flagged). A flagged parameter is not a "
            "finding; more model sizes or budgets would pin it.", ""]
    return head + (rows or ["- every fitted parameter is determined by its runs"])


def markdown(a: Analysis, figures: list[str], title: str) -> str:
    r = a.results
    laws = r["laws"]
    lines = [f"# {title}", "", *summary_lines(r, a.all_runs, a.fits.unimodal, a.fits.bimodal),
             f"{len(r['runs'])} finished runs; figures: "
             + ", ".join(f"[{f}]({f})" for f in figures), "",
             *power_section(r.get("design_power") or {}), "",
             "## Uni-modal laws (Eq. 2), 95% bootstrap intervals", "",
             "A parameter listed under *at grid edge* ended at or beyond the edge of the "
             "multi-start grid: the runs do not pin it down (more model sizes, longer runs).", "",
             "| dataset | runs | E | A | α | B | β | held-out error | converged | at grid edge |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in a.fits.unimodal:
        e = laws[n]
        lines.append(f"| {n} | {e['num_runs']} | {_ci(e, 'E')} | {_ci(e, 'A')} | "
                     f"{_ci(e, 'alpha')} | {_ci(e, 'B')} | {_ci(e, 'beta')} | {_holdout(e)} | "
                     f"{e['num_converged']}/{e['num_starts']} | {_edge(e)} |")
    if a.fits.bimodal:
        lines += ["", "## Bi-modal laws (Eq. 4) and the barrier (Eq. 5–6)", "",
                  "| pair | runs | C | α_ij | β_ij | N* | D* | 6N*D* (FLOPs) | held-out error "
                  "| at grid edge |", "|---|---|---|---|---|---|---|---|---|---|"]
        for p in a.fits.bimodal:
            e = laws["|".join(p)]
            opt = e.get("compute_optimal") or {}
            ci = e.get("interval95") or {}
            star = {q: (f"{opt[q]:.3g}" + _star_ci(ci.get(q + "*")) if q in opt
                        else "none (C, α_ij or β_ij ≤ 0)") for q in ("N", "D", "compute")}
            pname = " \\| ".join(p)
            lines.append(f"| {pname} | {e['num_runs']} | {_ci(e, 'C')} | "
                         f"{_ci(e, 'alpha')} | {_ci(e, 'beta')} | {star['N']} | {star['D']} | "
                         f"{star['compute']} | {_holdout(e)} | {_edge(e)} |")
    lines += mixture_section(laws)
    lines += _warnings(laws)
    if r["ratio"]:
        lines += ["", "## Fig. 5 ratio ½(L_i + L_j) / L_pair (above 1: synergy, below 1: "
                  "competition)", "",
                  "By Eq. 5 the pair is synergistic when L_pair < ½(L_i + L_j), a ratio above 1; "
                  "the caption of the paper's Figure 5 says the reverse, which contradicts its "
                  "equations. Each uni-modal run finished at the pair run's tokens of its "
                  "dataset (never read mid-schedule).", "",
                  "| pair | model | tokens | observed final | verdict | law's prediction |",
                  "|---|---|---|---|---|---|"]
        for row in r["ratio"]:
            obs = f"{row['final_ratio']:.4f}" if "final_ratio" in row else row.get("error")
            pred = row.get("predicted_final_ratio")
            lines.append(f"| {row['pair']} | {row['model']} | {row['tokens']:.3g} | {obs} | "
                         f"{row.get('verdict', '—')} | {'—' if pred is None else f'{pred:.4f}'} |")
    fl = r["flatness"]
    if fl["runs"]:
        crit = fl["criterion"]
        lines += ["", f"## Flatness (% of post-warm-up windows of {crit['window_fraction']:.0%} "
                  f"of the run's tokens whose loss fell by less than {crit['eps']:g})", "",
                  "| run | " + " | ".join(sorted({m for v in fl["runs"].values() for m in v}))
                  + " |"]
        names = sorted({m for v in fl["runs"].values() for m in v})
        lines.append("|---|" + "---|" * len(names))
        for rid, v in sorted(fl["runs"].items()):
            lines.append(f"| {rid} | " + " | ".join(
                f"{v[m]:.0f}" if m in v else "—" for m in names) + " |")
    lines += ["", "## Gradient-norm spikes (Fig. 9)", ""]
    for name, c in r["spikes"]["correlation"].items():
        lines.append(f"- {name}: " + (f"Pearson r = {c['pearson']:.3f} (p {c['pearson_p']:.2g}), "
                                      f"Spearman ρ = {c['spearman']:.3f} against log(N)/α_ij "
                                      f"(α_ij = {c['alpha']:.3g})" if "pearson" in c
                                      else f"no correlation: {c['error']}"))
    total = sum(r["spikes"]["counts"].values())
    lines.append(f"- {total} spikes over {len(r['spikes']['counts'])} runs")
    b = r["batch"]
    if b.get("optimum"):
        lines += ["", f"## Optimal batch size (Fig. 8), model {b['model']}, "
                  f"{b['tokens']:.3g} tokens", "",
                  "| datasets | optimum (tokens/step) | interpolated |", "|---|---|---|"]
        lines += [f"| {n} | {o['optimum']:.4g} | {o['interpolated']} |"
                  for n, o in b["optimum"].items()]
        lines += [f"- log(b_ij / (b_i + b_j)) for {p}: {v:.3f}" for p, v in b["ratio"].items()]
        if "beta_correlation" in b:
            c = b["beta_correlation"]
            lines.append("- against β_ij: " + (f"Pearson r = {c['pearson']:.3f}" if "pearson" in c
                                               else c["error"]))
    lines += ["", "## Runs", "", "| run | N | tokens | final loss | tokens/s |",
              "|---|---|---|---|---|"]
    for row in r["runs"]:
        rate = row["tokens_per_s"]
        lines.append(f"| {row['run_id']} | {row['N']:.4g} | {row['tokens']:.4g} | "
                     f"{row['loss']:.4f} | {'—' if rate is None else f'{rate:,.0f}'} |")
    return "\n".join(lines) + "\n"
