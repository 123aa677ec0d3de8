"""Figures of fitted laws against their runs (matplotlib, written to PNG): Eq. 2 fits, frontiers."""

from __future__ import annotations

import pathlib

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.optimal import chinchilla_optimal
from mmlaws.laws.records import RunTable
from mmlaws.laws.table import TableFits


def readable_log_axes(fig: Figure) -> None:
    """Log axes with labels that do not overlap: at most about seven labelled ticks, short
    numbers (``0.3``, ``2``, ``1e+05``), no labels on minor ticks, and slanted x labels. An axis
    spanning under 1.5 decades is labelled at 1, 2, 5 × 10^k (every digit under 0.6 decades)."""
    for ax in fig.axes:
        ax.autoscale_view()
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale != "log":
                continue
            lo, hi = sorted(axis.get_view_interval())
            decades = np.log10(hi / lo) if lo > 0 else np.inf
            if decades < 1.5:
                subs = tuple(range(1, 10)) if decades < 0.6 else (1.0, 2.0, 5.0)
                axis.set_major_locator(ticker.LogLocator(subs=subs, numticks=12))
                axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
            else:
                axis.set_major_locator(ticker.LogLocator(numticks=7))
                axis.set_major_formatter(ticker.LogFormatterSciNotation())
            axis.set_minor_formatter(ticker.NullFormatter())
        if ax.get_xscale() == "log":
            ax.tick_params(axis="x", labelrotation=30)


def plot_unimodal_fits(table: RunTable, fits: TableFits, out: pathlib.Path) -> list:
    """``<out>/fit_<dataset>.png`` for every uni-modal law of ``fits``, against the runs of
    ``table`` it was fitted on; returns the paths."""
    paths = []
    for name, law in fits.unimodal.items():
        runs = table.select((name,))
        paths.append(pathlib.Path(out) / f"fit_{name}.png")
        plot_unimodal_fit(runs.N, runs.D, runs.loss, law, paths[-1], name)
    return paths


def plot_unimodal_fit(N, D, loss, law: UnimodalLaw, path: str | pathlib.Path, title: str) -> None:
    """Three panels: loss against N (one curve per D), loss against D, log-residuals."""
    N, D, loss = (np.asarray(a, np.float64) for a in (N, D, loss))
    fig = Figure(figsize=(15, 4.2))
    ax = fig.subplots(1, 3)
    n_grid = np.geomspace(N.min() / 2, N.max() * 4, 200)
    d_grid = np.geomspace(D.min() / 2, D.max() * 4, 200)
    cmap = matplotlib.colormaps.get_cmap("viridis")
    for k, d in enumerate(np.unique(D)[:12]):
        c = cmap(k / max(1, min(12, np.unique(D).size) - 1))
        sel = D == d
        ax[0].scatter(N[sel], loss[sel], color=c, s=18)
        ax[0].plot(n_grid, law.predict(n_grid, d), color=c, lw=1, label=f"D={d:.3g}")
    for k, n in enumerate(np.unique(N)[:12]):
        c = cmap(k / max(1, min(12, np.unique(N).size) - 1))
        sel = N == n
        ax[1].scatter(D[sel], loss[sel], color=c, s=18)
        ax[1].plot(d_grid, law.predict(n, d_grid), color=c, lw=1, label=f"N={n:.3g}")
    resid = np.log(loss) - np.log(law.predict(N, D))
    ax[2].scatter(N, resid, c=np.log(D), s=14, cmap="viridis")
    ax[2].axhline(0, color="k", lw=0.8)
    for a, xl in zip(ax, ("parameters N", "tokens D", "parameters N"), strict=True):
        a.set_xscale("log")
        a.set_xlabel(xl)
    ax[0].set_yscale("log"), ax[1].set_yscale("log")
    ax[0].set_ylabel("loss (nats/token)"), ax[2].set_ylabel("log L − log L̂")
    ax[0].legend(fontsize=7), ax[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{title}: E={law.E:.3g} A={law.A:.4g} α={law.alpha:.3f} "
                 f"B={law.B:.4g} β={law.beta:.3f}")
    readable_log_axes(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_frontiers(laws: dict[str, UnimodalLaw], path: str | pathlib.Path,
                   compute=np.geomspace(1e18, 1e25, 50)) -> None:
    """Compute-optimal N and D against compute for each law (Chinchilla allocation)."""
    fig = Figure(figsize=(11, 4.2))
    ax = fig.subplots(1, 2)
    for name, law in laws.items():
        opt = chinchilla_optimal(law, compute)
        ax[0].plot(compute, opt.N, label=name)
        ax[1].plot(compute, opt.D, label=name)
    for a, yl in zip(ax, ("optimal parameters N", "optimal tokens D"), strict=True):
        a.set_xscale("log"), a.set_yscale("log")
        a.set_xlabel("training compute C = 6ND (FLOPs)"), a.set_ylabel(yl)
    ax[0].legend(fontsize=8)
    readable_log_axes(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
