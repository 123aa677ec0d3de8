"""Does a mixture law earn its place? Held-out shares against linear interpolation in the share.

A pair's design trains each model size and budget at several shares of the pair (e.g. 0, 0.25,
0.5, 0.75, 1). :func:`holdout_share` fits the per-modality mixture laws
(:func:`~mmlaws.laws.mixture_fit.fit_mixture`) without the runs at one share, predicts their
per-modality and mixture losses, and computes on the same runs the baseline any reader would
try first: for each held-out run, the losses of the runs at the same N and D at the nearest
shares below and above, interpolated linearly in the share.

The law can only win where the truth bends in the share. A modality's own term
B_k/(w_k D)^β_k is convex in its share, so near the ends of the share range and with few shares
the law's curvature beats the chord; where the losses are close to linear in the share (large
budgets, or shares spaced densely) the chord is nearly exact, and the law, carrying the noise
and bias of a fit over the whole design, can lose. Both errors are reported; neither is assumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.mixture_fit import MixtureFit, MixtureFitSettings, MixtureRuns, fit_mixture
from mmlaws.laws.records import RunTable


def interpolate_share(train: MixtureRuns, target: MixtureRuns, *, rtol: float = 0.02
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation in the first modality's share, at each target run's N and D.

    Returns (per-modality losses [T, M], mixture losses [T]); NaN where the training runs at
    the same N and D (within ``rtol``) do not bracket the target's share, or where a bracketing
    run did not observe that modality (a per-modality loss is not defined at share 0).
    """
    if train.names != target.names:
        raise ValueError(f"modalities differ: {train.names} vs {target.names}")
    per = np.full(target.losses.shape, np.nan)
    mix = np.full(len(target), np.nan)
    for t in range(len(target)):
        same = np.flatnonzero((np.abs(train.N / target.N[t] - 1) <= rtol)
                              & (np.abs(train.D / target.D[t] - 1) <= rtol))
        x = train.shares[same, 0]
        x0 = target.shares[t, 0]
        below, above = same[x < x0 - 1e-9], same[x > x0 + 1e-9]
        if not (below.size and above.size):
            continue
        lo = below[np.argmax(train.shares[below, 0])]
        hi = above[np.argmin(train.shares[above, 0])]
        f = (x0 - train.shares[lo, 0]) / (train.shares[hi, 0] - train.shares[lo, 0])
        per[t] = (1 - f) * train.losses[lo] + f * train.losses[hi]
        mix[t] = (1 - f) * train.loss[lo] + f * train.loss[hi]
    per = np.where(target.shares > 0, per, np.nan)
    return per, mix


@dataclasses.dataclass(frozen=True)
class ShareHoldout:
    """A mixture law fitted without one share, and its error there beside interpolation's.

    Errors are relative, (predicted − observed) / observed: ``law_errors`` / ``interp_errors``
    [T, M] per modality (NaN where not observed or not interpolable), ``law_mix_errors`` /
    ``interp_mix_errors`` [T] on the mixture's loss.
    """

    held_share: float
    fit: MixtureFit
    run_id: np.ndarray
    law_errors: np.ndarray
    interp_errors: np.ndarray
    law_mix_errors: np.ndarray
    interp_mix_errors: np.ndarray

    def _mean(self, law: np.ndarray, interp: np.ndarray) -> tuple[float, float]:
        """Mean absolute errors over the entries both the law and interpolation predict."""
        both = np.isfinite(law) & np.isfinite(interp)
        if not both.any():
            return float("nan"), float("nan")
        return float(np.mean(np.abs(law[both]))), float(np.mean(np.abs(interp[both])))

    @property
    def per_modality(self) -> tuple[float, float]:
        """(law, interpolation): mean |relative error| of the per-modality losses."""
        return self._mean(self.law_errors, self.interp_errors)

    @property
    def mixture(self) -> tuple[float, float]:
        """(law, interpolation): mean |relative error| of the mixture losses."""
        return self._mean(self.law_mix_errors, self.interp_mix_errors)

    @property
    def law_wins(self) -> bool:
        law, interp = self.per_modality
        return bool(law < interp)

    def as_dict(self) -> dict:
        law_pm, int_pm = self.per_modality
        law_mx, int_mx = self.mixture
        clean = lambda a: [[None if not np.isfinite(v) else float(v) for v in row]
                           for row in np.atleast_2d(a)]
        return {"held_share": self.held_share, "runs": [str(r) for r in self.run_id],
                "per_modality": {"law": law_pm, "interpolation": int_pm},
                "mixture": {"law": law_mx, "interpolation": int_mx},
                "law_beats_interpolation": self.law_wins,
                "exponents_interior": not self.fit.info.on_boundary,
                "law_errors": clean(self.law_errors),
                "interpolation_errors": clean(self.interp_errors),
                "warnings": list(self.fit.info.warnings)}


def holdout_share(
    runs: MixtureRuns, held_share: float, *, laws: Mapping[str, UnimodalLaw] | None = None,
    start_laws: Mapping[str, UnimodalLaw] | None = None,
    settings: MixtureFitSettings = MixtureFitSettings(), rtol: float = 0.02,
    share_tol: float = 0.02,
) -> ShareHoldout:
    """Fits the mixture laws without the runs at ``held_share`` (the first modality's share) and
    compares the law's predictions there with :func:`interpolate_share` on the same runs.

    A run is at the held-out share when its share (measured from its tokens per dataset, which
    padding moves slightly off the nominal share) is within ``share_tol`` of it."""
    if len(runs.names) != 2:
        raise ValueError(f"a held-out share is defined for a pair; got {runs.names}")
    at = np.abs(runs.shares[:, 0] - held_share) <= share_tol
    if not at.any():
        raise ValueError(f"no run at share {held_share} of {runs.names[0]}; shares present: "
                         f"{sorted(set(np.round(runs.shares[:, 0], 6)))}")
    train, test = runs.take(np.flatnonzero(~at)), runs.take(np.flatnonzero(at))
    fit = fit_mixture(train, laws=laws, start_laws=start_laws, settings=settings)
    shares = {n: test.shares[:, k] for k, n in enumerate(runs.names)}
    pred = fit.predict_modalities(test.N, test.D, shares)
    per = np.stack([pred[n] for n in runs.names], axis=1)
    mix = fit.predict(test.N, test.D, shares)
    i_per, i_mix = interpolate_share(train, test, rtol=rtol)
    rel = lambda p, o: (p - o) / o
    return ShareHoldout(float(held_share), fit, test.run_id, rel(per, test.losses),
                        rel(i_per, test.losses), rel(mix, test.loss), rel(i_mix, test.loss))


def mixture_entry(table: RunTable, datasets: Sequence[str], *,
                  held_shares: Sequence[float] = (),
                  laws: Mapping[str, UnimodalLaw] | None = None,
                  settings: MixtureFitSettings = MixtureFitSettings()) -> dict:
    """The JSON-ready entry a study writes for a pair's mixture design: the mixture laws fitted
    on all of the pair's runs (pure and mixed) with their warnings, and for each of
    ``held_shares`` in turn the held-out check against interpolation (:func:`holdout_share`;
    ``holdouts``, one entry per share, and their means over the shares in ``held_out``).
    ``laws``: uni-modal laws to hold fixed (default: fitted jointly, starting from none)."""
    runs = MixtureRuns.from_table(table, datasets)
    fit = fit_mixture(runs, laws=laws, settings=settings)
    entry = {"law": fit.as_dict(), "num_runs": len(runs), "objective": fit.info.objective,
             "num_converged": fit.info.num_converged, "num_starts": fit.info.num_starts,
             "at_bound": list(fit.info.on_boundary), "warnings": list(fit.info.warnings),
             "shares": sorted({round(float(x), 2) for x in runs.shares[:, 0]})}
    holdouts = [holdout_share(runs, w, laws=laws, settings=settings).as_dict()
                for w in held_shares]
    if holdouts:
        entry["holdouts"] = holdouts
        mean = lambda part, who: float(np.nanmean([h[part][who] for h in holdouts]))
        entry["held_out"] = {
            "shares": [h["held_share"] for h in holdouts],
            "per_modality": {"law": mean("per_modality", "law"),
                             "interpolation": mean("per_modality", "interpolation")},
            "mixture": {"law": mean("mixture", "law"),
                        "interpolation": mean("mixture", "interpolation")},
            "law_wins": sum(bool(h["law_beats_interpolation"]) for h in holdouts),
            "exponents_interior": all(h["exponents_interior"] for h in holdouts)}
    return entry
