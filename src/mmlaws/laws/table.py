"""Every law a table of runs supports, in one call: :func:`fit_table` with :class:`FitSettings`.

Eq. 2 on each dataset's own runs, Eq. 4 (with Eq. 6's optimum) on each pair of datasets that
both have laws, and the n-modal law on runs of three datasets or more; with bootstrap intervals
and a held-out check as :class:`FitSettings` asks. The result is data (JSON-ready entries and
the fitted law objects): nothing is printed, drawn or written here. Every entry says what its
law predicts (``quantity``), which parameters its runs leave undetermined (``warnings``), and,
with bootstrap intervals, the replicates themselves (``samples``) so that predictions can carry
intervals (:mod:`mmlaws.plan`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from mmlaws.errors import ConfigError, DataError
from mmlaws.laws import fit as fitting
from mmlaws.laws.forms import QUANTITIES, Interaction, NModalLaw
from mmlaws.laws.optimal import FlopsPerToken, cheapest_crossing
from mmlaws.laws.profile import profile_bimodal, profile_unimodal
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.records import RunTable
from mmlaws.laws.trend import interaction_trend
from mmlaws.laws.uncertainty import (
    bootstrap_bimodal,
    bootstrap_unimodal,
    holdout_bimodal,
    holdout_unimodal,
)


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How the laws of a table of runs are fitted; the one place these defaults are stated.

    - ``huber_delta``: δ of the Huber loss in Eq. 3. The paper's 0.03 (§5.1, Eq. 3;
      :data:`~mmlaws.laws.published.HUBER_DELTA`); Chinchilla and Epoch's replication use 1e-3.
    - ``grid``: the start grid, a name of :data:`~mmlaws.laws.fit.GRIDS`: ``"hoffmann"`` (the
      4,500 starts of Hoffmann et al. that the paper followed) or ``"coarse"`` (1,620).
    - ``bootstrap_samples``: refits on resampled runs behind the 95% percentile intervals
      (0: no intervals). 200 leaves five replicates beyond each end of the interval and costs
      a fraction of a second (the refits run as one batched solve).
    - ``holdout_sizes``: also refit each law without the runs of this many largest model sizes
      and report its error on them (0: no held-out check). 1 by default: the paper chose its δ
      for how laws generalise to held-out data; a table with too few sizes records why.
    - ``quantity``: what the laws are fitted on: ``"nats"`` (the logged loss per token) or
      ``"perplexity"`` (its exponential, the quantity the published laws predict).
    - ``profile``: 95% profile-likelihood intervals (:mod:`mmlaws.laws.profile`) for E, α and β
      of each uni-modal law and for C, α and β of each pair: the intervals that keep their
      coverage where the percentile bootstrap under-covers.
    """

    huber_delta: float = HUBER_DELTA
    grid: str = "hoffmann"
    bootstrap_samples: int = 200
    holdout_sizes: int = 1
    quantity: str = "nats"
    profile: bool = True

    def __post_init__(self):
        delta = self.huber_delta
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not delta > 0:
            raise ConfigError(f"huber_delta={delta!r}: must be a positive number")
        object.__setattr__(self, "huber_delta", float(delta))
        if self.grid not in fitting.GRIDS:
            raise ConfigError(f"grid={self.grid!r}: expected one of {sorted(fitting.GRIDS)}")
        for name in ("bootstrap_samples", "holdout_sizes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name}={v!r}: expected an integer >= 0")
        if self.quantity not in QUANTITIES:
            raise ConfigError(f"quantity={self.quantity!r}: expected one of {QUANTITIES}")

    @property
    def start_grid(self) -> dict[str, tuple[float, ...]]:
        return fitting.GRIDS[self.grid]


# progress(items, what) -> the same items, e.g. through a progress bar; what: "laws" or "pairs"
Progress = Callable[[Sequence, str], Iterable]


@dataclasses.dataclass(frozen=True)
class TableFits:
    """The laws fitted on a table of runs: JSON-ready entries and the law objects."""

    results: dict  # name ("text", or "code|text" for a pair, "nmodal") -> its entry
    unimodal: dict  # dataset -> UnimodalFit
    bimodal: dict  # (i, j) -> BimodalFit


def fit_table(table: RunTable, fit: FitSettings = FitSettings(), *,
              progress: Progress | None = None) -> TableFits:
    """Eq. 2 on every single-dataset set of runs, then Eq. 4 on every pair whose two datasets
    have laws, then the n-modal law where runs mix three datasets or more. Each entry holds the
    parameters, the solver's outcome, and with ``fit.bootstrap_samples`` 95% percentile
    intervals; with ``fit.holdout_sizes`` the relative error of a refit without the largest
    sizes on the held-out runs (or why it could not be made). ``progress`` sees each list of
    fits before it runs (none: silent)."""
    progress = progress or (lambda items, what: items)
    table = _in_quantity(table, fit.quantity)
    results, laws, held_laws, pairs_fit = {}, {}, {}, {}
    singles = [d[0] for d in table.dataset_sets() if len(d) == 1]
    for name in progress(singles, "laws"):
        with _naming(f"dataset {name!r}"):
            results[name], laws[name], held_laws[name] = _fit_one(table.select((name,)), fit)
    pairs = [d for d in table.dataset_sets() if len(d) == 2 and all(k in laws for k in d)]
    singles_runs = {name: table.select((name,)) for name in laws}
    flops = flops_per_token(table)
    for ds in progress(pairs, "pairs"):
        with _naming(f"pair {'|'.join(ds)}"):
            results["|".join(ds)], pairs_fit[ds] = _fit_pair(table.select(ds), ds, laws,
                                                             held_laws, fit, singles_runs, flops)
    multi = [d for d in table.dataset_sets() if len(d) > 2 and all(k in laws for k in d)]
    if multi:
        with _naming("the n-modal law"):
            results["nmodal"] = _fit_multi(table, multi, laws, pairs_fit, fit.huber_delta)
    return TableFits(results, laws, pairs_fit)


def _in_quantity(table: RunTable, quantity: str) -> RunTable:
    """The table's losses in ``quantity`` (run records log nats per token)."""
    if quantity == "nats":
        return table
    return dataclasses.replace(table, loss=np.exp(table.loss), losses=tuple(
        {k: float(np.exp(v)) for k, v in d.items()} for d in table.losses))


@contextlib.contextmanager
def _naming(what: str):
    """A :class:`DataError` of the fitter's checks (too few runs, one N …) says which fit."""
    try:
        yield
    except DataError as err:
        raise DataError(f"{what}: {err}") from err


def _entry(law_entry: dict, fit, runs: RunTable, delta: float) -> dict:
    return {**law_entry, "objective": fit.objective, "num_runs": len(runs),
            "num_starts": fit.info.num_starts, "num_converged": fit.info.num_converged,
            "on_grid_boundary": list(fit.info.on_boundary), "huber_delta": delta,
            "warnings": list(fit.info.warnings)}


def _samples(bs, names) -> dict:
    """The bootstrap replicates of ``names``, JSON-ready (non-finite values as None)."""
    return {k: [float(v) if np.isfinite(v) else None for v in bs.samples[k]] for k in names}


def _fit_one(runs: RunTable, fit: FitSettings):
    """Eq. 2 on one dataset's runs: (its entry, the fitted law, the law fitted without the
    held-out sizes or None)."""
    t0 = time.perf_counter()
    delta, grid = fit.huber_delta, fit.start_grid
    law = fitting.fit_unimodal(runs.N, runs.D, runs.loss, huber_delta=delta, grid=grid,
                               quantity=fit.quantity)
    entry = {**_entry(law.as_dict(), law, runs, delta), "quantity": fit.quantity}
    if fit.bootstrap_samples:
        bs = bootstrap_unimodal(runs.N, runs.D, runs.loss, law,
                                num_samples=fit.bootstrap_samples, huber_delta=delta)
        entry["interval95"] = bs.interval(0.95)
        entry["bootstrap_converged"] = f"{bs.num_converged}/{bs.num_samples}"
        entry["samples"] = _samples(bs, ("E", "A", "B", "alpha", "beta"))
    if fit.profile:
        entry["profile95"] = _profile(lambda: profile_unimodal(
            runs.N, runs.D, runs.loss, law, params=("alpha", "beta", "e"), huber_delta=delta))
    held = None
    if fit.holdout_sizes:
        entry["holdout"], held = _holdout(lambda: holdout_unimodal(
            runs.N, runs.D, runs.loss, num_sizes=fit.holdout_sizes, huber_delta=delta,
            grid=grid), runs)
        entry["holdout_D"], _ = _holdout(lambda: holdout_unimodal(
            runs.N, runs.D, runs.loss, num_sizes=fit.holdout_sizes, axis="D",
            huber_delta=delta, grid=grid), runs)
    entry["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return entry, law, held


def _profile(make) -> dict:
    """Profile intervals as ``{name: [lower, upper, bounded]}`` (``e`` reported as ``E``), or
    why they could not be formed."""
    try:
        prof = make()
    except ValueError as err:
        return {"error": str(err)}
    out = {}
    for k, p in prof.items():
        lo, hi = (float(np.exp(p.lower)), float(np.exp(p.upper))) if k == "e" else (p.lower,
                                                                                    p.upper)
        out["E" if k == "e" else k] = [float(lo), float(hi), bool(p.bounded)]
    return out


def _pair_tokens(runs: RunTable, pair):
    return tuple(np.array([t.get(k, 0.0) for t in runs.tokens]) for k in pair)


def matched_base(pair_runs: RunTable, singles: dict[str, RunTable], pair, tolerance=0.05):
    """For each pair run, ½(L_i + L_j) of the runs trained on i alone and on j alone with the
    same N and (within ``tolerance``) the tokens of that dataset in the pair run: the pair's
    baseline measured, not predicted. Returns (indices of the pair runs with both matches,
    their observed bases)."""
    D = _pair_tokens(pair_runs, pair)
    keep, base = [], []
    for r in range(len(pair_runs)):
        found = []
        for name, tokens in zip(pair, D, strict=True):
            uni = singles.get(name)
            if uni is None:
                break
            hit = np.flatnonzero((uni.N == pair_runs.N[r])
                                 & (np.abs(uni.D / tokens[r] - 1) <= tolerance))
            if hit.size == 0:
                break
            found.append(float(np.mean(uni.loss[hit])))
        if len(found) == 2:
            keep.append(r)
            base.append(0.5 * sum(found))
    return np.asarray(keep, int), np.asarray(base)


def flops_per_token(table: RunTable) -> FlopsPerToken:
    """The runs' own training FLOPs per token as a function of N (their records' header
    ``flops_per_token``: the model's real count, attention and embeddings included), or 6N
    where the records do not say or hold a single size."""
    f = [r.header.get("flops_per_token") for r in table.records]
    if not table.records or any(v is None for v in f):
        return FlopsPerToken.six()
    sizes = np.unique(table.N)
    if sizes.size < 2:
        return FlopsPerToken.six()
    per_size = [float(np.mean([v for v, n in zip(f, table.N, strict=True) if n == s]))
                for s in sizes]
    return FlopsPerToken.from_points(sizes, per_size, "the runs' training FLOPs")


def _fit_pair(runs: RunTable, pair: tuple[str, str], laws, held_laws, fit: FitSettings,
              singles: dict | None = None, flops: FlopsPerToken | None = None):
    """Eq. 4 on a pair's runs (tokens per dataset from the run records), with Eq. 6's optimum.

    When at least six pair runs, at two or more sizes and budgets, have uni-modal runs at their
    per-dataset tokens (:func:`matched_base`), the interaction is fitted on those runs against the
    *observed* ½(L_i + L_j) (what the pair adds; the uni-modal laws' misfit stays out of C_ij), and
    its intervals come from the same observed base. Otherwise against the uni-modal laws, which
    ``base`` in the entry says."""
    t0 = time.perf_counter()
    i, j = pair
    delta = fit.huber_delta
    keep, base = matched_base(runs, singles or {}, pair)
    observed = (keep.size >= 6 and np.unique(runs.N[keep]).size >= 2
                and np.unique(runs.D[keep]).size >= 2)
    if observed:
        runs = runs.take(keep)
    else:
        base = None
    D_i, D_j = _pair_tokens(runs, pair)
    law = fitting.fit_bimodal(runs.N, D_i, D_j, runs.loss, laws[i], laws[j], huber_delta=delta,
                              names=pair, base=base)
    flops = flops or FlopsPerToken.six()
    best = _optimum(law.interaction, flops)
    entry = {**_entry(dataclasses.asdict(law.interaction), law, runs, delta),
             "quantity": fit.quantity}
    entry["compute_optimal"] = dataclasses.asdict(best) if best else None
    entry["compute_counted_as"] = flops.name
    entry["base"] = ("observed: uni-modal runs at the pair runs' per-dataset tokens" if observed
                     else "the uni-modal laws (no matched uni-modal runs)")
    if observed:
        entry["observed_difference"] = {
            "run_id": [str(x) for x in runs.run_id],
            "value": (runs.loss - base).tolist()}  # L_pair − ½(L_i + L_j), nats
        try:  # what the pair adds, read without Eq. 4's form
            entry["interaction_trend"] = interaction_trend(runs.N, D_i + D_j,
                                                           runs.loss - base).as_dict()
        except ValueError as err:
            entry["interaction_trend"] = {"error": str(err)}
    if fit.bootstrap_samples:
        bs = bootstrap_bimodal(runs.N, D_i, D_j, runs.loss, law,
                               num_samples=fit.bootstrap_samples, huber_delta=delta, base=base)
        for q in ("N", "D", "compute"):
            bs = bs.derive(f"{q}*", lambda q=q, **p: np.array(
                [getattr(_optimum(Interaction(**{k: p[k][r] for k in _INTER}), flops), q,
                         np.inf)
                 for r in range(len(p["C"]))]))
        entry["interval95"] = bs.interval(0.95)
        entry["bootstrap_converged"] = f"{bs.num_converged}/{bs.num_samples}"
        entry["samples"] = _samples(bs, _INTER)
    if fit.profile:
        entry["profile95"] = _profile(lambda: profile_bimodal(
            runs.N, D_i, D_j, runs.loss, law, params=("C", "alpha", "beta"), huber_delta=delta,
            base=base))
    if fit.holdout_sizes:
        if held_laws[i] is None or held_laws[j] is None:
            entry["holdout"] = {"error": "the uni-modal laws have no held-out fit"}
        else:
            entry["holdout"], _ = _holdout(lambda: holdout_bimodal(
                runs.N, D_i, D_j, runs.loss, held_laws[i], held_laws[j],
                num_sizes=fit.holdout_sizes, huber_delta=delta, names=pair, base=base), runs)
    entry["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return entry, law


def _fit_multi(table: RunTable, multi, laws, pairs_fit, delta: float) -> dict:
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
             "num_converged": fit.info.num_converged, "num_starts": fit.info.num_starts,
             "on_grid_boundary": list(fit.info.on_boundary), "warnings": list(fit.info.warnings)}
    from_pairs = NModalLaw.from_bimodal(list(pairs_fit.values()))
    rows = [k for k, d in enumerate(runs.datasets) if d in multi]
    if all(p in pairs_fit for d in multi for p in itertools.combinations(d, 2)):
        err = [float(from_pairs.predict(runs.N[k], runs.D[k], shares[k]) / runs.loss[k] - 1)
               for k in rows]
        entry["pairs_predict_nmodal"] = {
            "runs": [str(runs.run_id[k]) for k in rows], "relative_error": err,
            "mean_abs_relative_error": float(np.mean(np.abs(err)))}
    return entry


def _holdout(make, runs: RunTable) -> tuple[dict, object]:
    """(the held-out entry: error per held-out run and its mean, or why the refit failed;
    the refitted law or None). ``make`` does the refit."""
    try:
        h = make()
    except ValueError as err:
        return {"error": str(err)}, None
    return {"held_out_runs": [str(runs.run_id[k]) for k in h.held_out], "axis": h.axis,
            "relative_error": [float(e) for e in h.relative_error],
            "reducible_error": [_finite_or_none(e) for e in h.reducible_error],
            "mean_abs_relative_error": h.mean_abs_relative_error,
            "mean_abs_reducible_error": _finite_or_none(h.mean_abs_reducible_error),
            "refit_E": float(h.fit.E) if hasattr(h.fit, "E") else None}, h.fit


def _finite_or_none(x) -> float | None:
    """A float for JSON, None where it is undefined (NaN)."""
    return float(x) if np.isfinite(x) else None


_INTER = ("C", "A", "B", "alpha", "beta")


def _optimum(term: Interaction, flops: FlopsPerToken):
    """Eq. 6's optimum under the runs' FLOP count (with 6N it is Eq. 6 as printed), or None
    where the pair never turns synergistic (C ≤ 0); a bootstrap replicate without one counts as
    N* = D* = ∞."""
    return cheapest_crossing(term, flops)
