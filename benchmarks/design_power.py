"""What a study design identifies, with the coverage and width of its 95% profile intervals.

    python benchmarks/design_power.py --config configs/quickstart.gin --noise 0.01 0.02
    python benchmarks/design_power.py --config configs/quickstart.gin --laws_from outputs/quickstart

The design comes from a study config (its ``study.Design`` and ``study.DataBuild`` bindings,
plus any ``--gin_param``). For each dataset and each noise level, a law is planted on the
dataset's uni-modal runs (:func:`mmlaws.study.check_design`): its Table 1 law rescaled to the
design, or with ``--laws_from`` the laws a study folder fitted (``study.json``), which is the
closer guess of what the design's own runs look like. ``--replicates`` noisy copies are refitted;
on ``--coverage`` of them the 95% profile-likelihood intervals of α and β are formed. Printed
per parameter: bias, spread, fraction at the grid's edge, and for α and β the coverage and median
width of the intervals — what the design can promise before any compute is spent.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import gin

from mmlaws.config_files import find
from mmlaws.laws.forms import UnimodalLaw
from mmlaws.study import PowerSettings, check_design
from mmlaws.study import settings as study_settings


def load(config: str, params: list[str]):
    """The study's design and data settings as the config binds them."""
    gin.parse_config_files_and_bindings([find(config)], params, finalize_config=False)
    make = lambda cls: cls(**dict(gin.get_bindings(cls)))
    return make(study_settings.Design), make(study_settings.DataBuild)


def fitted_laws(study_dir: str) -> dict[str, UnimodalLaw]:
    """The uni-modal laws a study folder fitted, ``{dataset: law}``."""
    laws = json.loads((pathlib.Path(study_dir) / "study.json").read_text())["laws"]
    keys = ("E", "A", "B", "alpha", "beta")
    return {name: UnimodalLaw(**{k: float(fit[k]) for k in keys})
            for name, fit in laws.items() if "|" not in name and all(k in fit for k in keys)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/quickstart.gin")
    ap.add_argument("--gin_param", action="append", default=[])
    ap.add_argument("--laws_from", default=None, help="a study folder whose fitted laws to plant")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.02])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--coverage", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    design, data = load(args.config, args.gin_param)
    law = fitted_laws(args.laws_from) if args.laws_from else None
    planted = f"the laws fitted in {args.laws_from}" if law else "Table 1, rescaled"
    rows = []
    for noise in args.noise:
        t0 = time.perf_counter()
        settings = PowerSettings(replicates=args.replicates, noise=noise,
                                 coverage=min(args.coverage, args.replicates), seed=args.seed)
        powers = check_design(design, law, layout=data.layout, settings=settings)
        seconds = time.perf_counter() - t0
        for name, p in powers.items():
            if isinstance(p, str):
                print(f"{name}: {p}")
                continue
            for line in p.lines():
                print(f"{name} @ {noise:.1%}: {line}")
            rows.append((name, noise, p))
        print(f"design power at {noise:.1%} noise: {seconds:.0f} s", flush=True)
    print(f"\nplanted: {planted}; {args.replicates} refits, profile intervals on "
          f"{min(args.coverage, args.replicates)}")
    print("| dataset | noise | parameter | truth | bias | spread | at edge | coverage | "
          "median width | identified |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, noise, p in rows:
        for k, v in p.params.items():
            cov = "—" if v.coverage is None else f"{v.coverage:.0%}"
            width = "—" if v.width is None else f"{v.width:.3g}"
            print(f"| {name} | {noise:.1%} | {k} | {v.truth:.4g} | {v.bias:+.1%} | "
                  f"{v.spread:.1%} | {v.at_edge:.0%} | {cov} | {width} | "
                  f"{'yes' if v.identified else 'NO'} |")
    for name, noise, p in rows:
        a, b = p.params["alpha"], p.params["beta"]
        if a.coverage is not None:
            print(f"design power: {name} at {noise:.1%} noise: α coverage {a.coverage:.0%} "
                  f"(median width {a.width:.3g}), β coverage {b.coverage:.0%} "
                  f"(median width {b.width:.3g})")


if __name__ == "__main__":
    main()
