"""Coverage of bootstrap 95% intervals for alpha and beta at 1% noise (a study, not a test).

For each replication: sample the paper's design (7 sizes × 5B/10B/100B) from a Table 1 law with
1% multiplicative noise, fit Eq. 2 as Eq. 3, bootstrap it (resampling runs, and resampling
residuals), and check whether each 95% percentile interval covers the true alpha and beta.

    python benchmarks/laws_coverage.py --law speech --replications 100 --samples 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from mmlaws.laws import PAPER_DESIGN_D, PAPER_DESIGN_N, TABLE1, bootstrap_unimodal, fit_unimodal
from mmlaws.laws.jobs import GRIDS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--law", default="speech", choices=sorted(TABLE1))
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--grid", default="coarse", choices=sorted(GRIDS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    true = TABLE1[args.law]
    N, D = (a.ravel() for a in np.meshgrid(PAPER_DESIGN_N, PAPER_DESIGN_D))
    rng = np.random.default_rng(args.seed)
    methods = ("runs", "residuals")
    hits = {(m, p): 0 for m in methods for p in ("alpha", "beta")}
    err = {"alpha": [], "beta": []}
    t0 = time.perf_counter()
    for r in tqdm(range(args.replications), desc="replications"):
        loss = true.predict(N, D) * np.exp(rng.normal(0, args.noise, N.shape))
        fit = fit_unimodal(N, D, loss, grid=GRIDS[args.grid])
        for p in err:
            err[p].append(getattr(fit, p) - getattr(true, p))
        for m in methods:
            ci = bootstrap_unimodal(N, D, loss, fit, num_samples=args.samples, method=m,
                                    seed=r).interval(0.95)
            for p in ("alpha", "beta"):
                hits[(m, p)] += ci[p][0] <= getattr(true, p) <= ci[p][1]
    R = args.replications
    print(f"law {args.law}, noise {args.noise:.1%}, {R} replications, {args.samples} bootstrap "
          f"samples, grid {args.grid}, {time.perf_counter() - t0:.0f} s")
    for p in err:
        e = np.abs(err[p])
        print(f"  |{p} error|: median {np.median(e):.4f}, "
              f"90th percentile {np.percentile(e, 90):.4f}")
    for (m, p), h in hits.items():
        flag = "" if h / R >= 0.9 else "  (below 90%)"
        print(f"  coverage of true {p:5s} by 95% interval, bootstrap over {m:9s}: "
              f"{h / R:.0%}{flag}")


if __name__ == "__main__":
    main()
