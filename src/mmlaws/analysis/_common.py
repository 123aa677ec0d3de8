"""Shared helpers: run-record coercion, log-token interpolation and correlation summaries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import stats

from mmlaws.laws.records import RunRecord, RunTable


def as_records(runs: RunTable | Sequence[RunRecord] | RunRecord) -> list[RunRecord]:
    """The run records of a :class:`RunTable`, a sequence of records, or one record.

    Raises ``ValueError`` if there are none (a CSV-read table carries no records).
    """
    if isinstance(runs, RunRecord):
        return [runs]
    recs = list(runs.records) if isinstance(runs, RunTable) else list(runs)
    if not recs:
        raise ValueError("no run records given (a table read from CSV holds no curves)")
    bad = [type(r).__name__ for r in recs if not isinstance(r, RunRecord)]
    if bad:
        raise ValueError(f"expected RunRecord objects, got {sorted(set(bad))}")
    return recs


def pair_key(rec: RunRecord) -> tuple[str, ...]:
    """The sorted dataset names a run was trained on (its modality set)."""
    return tuple(sorted(rec.datasets))


def interp_log_tokens(
    tokens: np.ndarray, values: np.ndarray, at, *, run_id: str = ""
) -> np.ndarray:
    """``values`` at tokens ``at``, linear in log(tokens).

    Args:
      tokens: [T] increasing, positive token counts of the logged points.
      values: [T] the series at those points (e.g. loss in nats per token).
      at: [...] token counts to evaluate at; each must lie within ``[tokens[0], tokens[-1]]``.

    Raises ``ValueError`` naming ``run_id`` when ``at`` leaves the logged range or the curve has
    fewer than 2 points or non-increasing tokens.
    """
    tokens, values = np.asarray(tokens, np.float64), np.asarray(values, np.float64)
    at = np.asarray(at, np.float64)
    if tokens.size < 2:
        raise ValueError(f"run {run_id!r}: too few logged points ({tokens.size}) to interpolate")
    if np.any(tokens <= 0) or np.any(np.diff(tokens) <= 0):
        raise ValueError(f"run {run_id!r}: tokens must be positive and strictly increasing")
    lo, hi = tokens[0] * (1 - 1e-12), tokens[-1] * (1 + 1e-12)
    if np.any(at < lo) or np.any(at > hi):
        raise ValueError(
            f"run {run_id!r}: tokens {at.min():.4g}..{at.max():.4g} leave the logged range "
            f"{tokens[0]:.4g}..{tokens[-1]:.4g}"
        )
    return np.interp(np.log(at), np.log(tokens), values)


@dataclasses.dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation of ``y`` against ``x`` (scipy.stats), with p-values."""

    x: np.ndarray  # [R]
    y: np.ndarray  # [R]
    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float
    labels: tuple[str, ...] = ()


def correlate(x, y, labels: Sequence[str] = ()) -> Correlation:
    """Pearson's r and Spearman's rho of two equal-length 1-D arrays.

    Raises ``ValueError`` with fewer than 3 points or when either array is constant (the
    coefficients are undefined), naming ``labels`` (e.g. run ids) when given.
    """
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    names = f" ({', '.join(labels)})" if labels else ""
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}{names}")
    if x.size < 3:
        raise ValueError(f"correlation needs at least 3 points, got {x.size}{names}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"correlation inputs must be finite{names}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError(f"correlation undefined: x or y is constant{names}")
    p = stats.pearsonr(x, y)
    s = stats.spearmanr(x, y)
    return Correlation(x, y, float(p[0]), float(p[1]), float(s[0]), float(s[1]), tuple(labels))
