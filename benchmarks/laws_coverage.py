"""Coverage of 95% intervals for the exponents at 1% noise (a study, not a test).

For each replication: sample the paper's design (7 sizes × 5B/10B/100B) with 1% multiplicative
noise from a known law, fit it, and check whether each 95% interval covers the true exponents:
percentile bootstraps (resampling runs; resampling residuals) and the profile-likelihood
interval (:mod:`mmlaws.laws.profile`).

- uni-modal: a Table 1 law (``--law``), fitted as Eq. 3;
- bi-modal (``--bimodal``): Speech|Text at 50/50 with known interaction terms
  (C 0.4, A 30, α 0.25, B 2000, β 0.3) on top of the Table 1 laws, fitted as Eq. 4.

    python benchmarks/laws_coverage.py --law speech --replications 100 --samples 200
    python benchmarks/laws_coverage.py --bimodal --replications 100 --samples 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from mmlaws.laws import (
    GRIDS,
    PAPER_DESIGN_D,
    PAPER_DESIGN_N,
    TABLE1,
    Interaction,
    bootstrap_bimodal,
    bootstrap_unimodal,
    fit_bimodal,
    fit_unimodal,
)
from mmlaws.laws.profile import profile_bimodal, profile_unimodal

PAIR_TRUTH = Interaction(C=0.4, A=30.0, B=2000.0, alpha=0.25, beta=0.3)


def _or_none(profile, *args):
    try:
        return profile(*args)
    except ValueError as e:
        print(f"profile skipped: {e}")
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--law", default="speech", choices=sorted(TABLE1))
    ap.add_argument("--bimodal", action="store_true")
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--grid", default="coarse", choices=sorted(GRIDS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    rng = np.random.default_rng(args.seed)
    if args.bimodal:
        li, lj = TABLE1["speech"], TABLE1["text"]
        truth = {"alpha": PAIR_TRUTH.alpha, "beta": PAIR_TRUTH.beta}
        clean = 0.5 * (li.predict(N, D / 2) + lj.predict(N, D / 2)) + PAIR_TRUTH.value(N, D)
        label = "bi-modal speech|text 50/50"
    else:
        true = TABLE1[args.law]
        truth = {"alpha": true.alpha, "beta": true.beta}
        clean = true.predict(N, D)
        label = f"uni-modal {args.law}"
    kinds = ("bootstrap over runs", "bootstrap over residuals", "profile likelihood")
    hits = {(k, p): 0 for k in kinds for p in truth}
    width = {(k, p): [] for k in kinds for p in truth}
    err = {p: [] for p in truth}
    failed = 0  # fits the profile could not scale (every residual beyond the Huber threshold)
    t0 = time.perf_counter()
    for r in tqdm(range(args.replications), desc="replications"):
        loss = clean * np.exp(rng.normal(0, args.noise, N.shape))
        if args.bimodal:
            fit = fit_bimodal(N, D / 2, D / 2, loss, li, lj)  # the default BIMODAL_GRID
            est = {p: getattr(fit.interaction, p) for p in truth}
            boot = lambda m, fit=fit, loss=loss, r=r: bootstrap_bimodal(
                N, D / 2, D / 2, loss, fit, num_samples=args.samples, method=m, seed=r)
            prof = _or_none(profile_bimodal, N, D / 2, D / 2, loss, fit)
        else:
            fit = fit_unimodal(N, D, loss, grid=GRIDS[args.grid])
            est = {p: getattr(fit, p) for p in truth}
            boot = lambda m, fit=fit, loss=loss, r=r: bootstrap_unimodal(
                N, D, loss, fit, num_samples=args.samples, method=m, seed=r)
            prof = _or_none(profile_unimodal, N, D, loss, fit)
        intervals = {kinds[0]: boot("runs").interval(0.95),
                     kinds[1]: boot("residuals").interval(0.95),
                     kinds[2]: {p: (prof[p].lower, prof[p].upper) if prof else (np.nan, np.nan)
                                for p in truth}}
        failed += prof is None
        for p, v in truth.items():
            err[p].append(est[p] - v)
            for k in kinds:
                lo, hi = intervals[k][p]
                hits[(k, p)] += lo <= v <= hi
                width[(k, p)].append(hi - lo)
    R = args.replications
    print(f"{label}, noise {args.noise:.1%}, {R} replications, {args.samples} bootstrap samples, "
          f"{time.perf_counter() - t0:.0f} s; profile not formed in {failed}")
    for p in truth:
        e = np.abs(err[p])
        print(f"  |{p} error|: median {np.median(e):.4f}, "
              f"90th percentile {np.percentile(e, 90):.4f}")
    for (k, p), h in hits.items():
        flag = "" if h / R >= 0.9 else "  (below 90%)"
        print(f"  coverage of true {p:5s} by 95% {k:24s}: {h / R:4.0%}  "
              f"(median width {np.nanmedian(width[(k, p)]):.3f}){flag}")


if __name__ == "__main__":
    main()
