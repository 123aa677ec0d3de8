"""Speed of the Eq. 3 multi-start fit on the Chinchilla data, side by side with scipy.

Prints: mmlaws' full-grid fit (batched L-BFGS, 4,500 starts, one jitted computation) as the median
of several runs after compilation; scipy L-BFGS-B with analytic gradients looping over the same
grid (once: it is slow); their ratio; and the time of 1,000 bootstrap refits.

    python benchmarks/laws_bench.py [--csv ../shared/data/chinchilla_fig4_epoch.csv] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import statistics
import time

import numpy as np
from scipy.optimize import minimize

from mmlaws.laws import HOFFMANN_GRID, bootstrap_unimodal, fit_unimodal
from mmlaws.laws.fit import UNI_PARAMS, grid_starts
from mmlaws.laws.reference import unimodal_objective as scipy_objective

DEFAULT_CSV = pathlib.Path(__file__).resolve().parents[2] / "shared/data/chinchilla_fig4_epoch.csv"


def load(path):
    rows = list(csv.DictReader(open(path)))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    L = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(L, kind="stable")[:-5])
    return N[keep], C[keep] / (6 * N[keep]), L[keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(DEFAULT_CSV))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--skip-scipy", action="store_true")
    args = ap.parse_args()
    N, D, L = load(args.csv)

    t0 = time.perf_counter()
    fit = fit_unimodal(N, D, L, huber_delta=1e-3)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit = fit_unimodal(N, D, L, huber_delta=1e-3)
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times)
    print(f"mmlaws fit: {fit.info.num_starts} starts, {fit.info.num_converged} converged "
          f"{dict(fit.info.outcomes)}, objective {fit.objective:.12g}")
    print(f"  A={fit.A:.2f} B={fit.B:.2f} E={fit.E:.4f} alpha={fit.alpha:.4f} beta={fit.beta:.4f}")
    print(f"mmlaws fit time: first call {first:.2f} s (with compilation); "
          f"median of {args.repeats} after compilation {ours:.2f} s {[round(t, 2) for t in times]}")

    if not args.skip_scipy:
        data = (np.log(N), np.log(D), np.log(L), 1e-3)
        t0 = time.perf_counter()
        best = min(minimize(scipy_objective, x0, args=data, jac=True, method="L-BFGS-B").fun
                   for x0 in grid_starts(HOFFMANN_GRID, UNI_PARAMS))
        ref = time.perf_counter() - t0
        print(f"scipy L-BFGS-B loop (analytic gradients): {ref:.1f} s, best objective {best:.12g}")
        print(f"speed-up mmlaws / scipy: {ref / ours:.1f}x   "
              f"objective ratio mmlaws/scipy - 1: {fit.objective / best - 1:.2e}")

    if args.bootstrap:
        t0 = time.perf_counter()
        bootstrap_unimodal(N, D, L, fit, num_samples=args.bootstrap, huber_delta=1e-3, seed=1)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        bs = bootstrap_unimodal(N, D, L, fit, num_samples=args.bootstrap, huber_delta=1e-3)
        t = time.perf_counter() - t0
        print(f"bootstrap first call (with compilation): {t_first:.1f} s")
        ci = bs.interval(0.95)
        print(f"{args.bootstrap} bootstrap refits: {t:.1f} s ({bs.num_converged} converged); "
              f"alpha 95% [{ci['alpha'][0]:.4f}, {ci['alpha'][1]:.4f}], "
              f"beta 95% [{ci['beta'][0]:.4f}, {ci['beta'][1]:.4f}]")


if __name__ == "__main__":
    main()
