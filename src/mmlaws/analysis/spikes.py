"""Gradient-norm spikes against log(N)/α_ij (paper §6, Phenomenon 4, Figure 9).

A spike is either an ``event`` line of type ``"grad_spike"`` written during training, or is
recomputed from the step lines' ``grad_norm`` with the running-median rule: step t is a spike
when at least ``min_history`` earlier norms have been seen and ``grad_norm[t] > factor ×
median(last `window` norms before t)``; every norm (spikes included) joins the history. This is
the rule training applies when it writes ``grad_spike`` events.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.analysis._common import Correlation, as_records, correlate, pair_key
from mmlaws.laws.records import RunRecord, RunTable


class SpikeDetector:
    """Flags a gradient norm above ``factor`` × the median of the last ``window`` norms.

    No spike is called before ``min_history`` norms have been seen; spikes do join the
    history (a run of spikes raises the median, as a new regime should). Training feeds it one
    norm per step and logs a ``grad_spike`` event for each flag.
    """

    def __init__(self, factor: float = 5.0, window: int = 100, min_history: int = 10):
        if factor <= 0 or window < 1 or min_history < 1:
            raise ValueError("need factor > 0, window >= 1 and min_history >= 1")
        self.factor, self.min_history = factor, min_history
        self.history: collections.deque = collections.deque(maxlen=window)
        self.count = 0

    def update(self, grad_norm: float) -> float | None:
        """Record a norm; returns the median it was compared with when it is a spike."""
        median = float(np.median(self.history)) if self.history else 0.0
        spike = len(self.history) >= self.min_history and grad_norm > self.factor * median
        self.history.append(grad_norm)
        if spike:
            self.count += 1
            return median
        return None


def running_median_spikes(
    grad_norm, *, factor: float = 5.0, window: int = 100, min_history: int = 10
) -> np.ndarray:
    """[T] bool: which norms are spikes under the running-median rule (:class:`SpikeDetector`).

    Args:
      grad_norm: [T] global gradient norms in logged order (before clipping).
      factor: k in ``norm > k × median``; window: history length in logged steps;
      min_history: norms needed before any spike is called.
    """
    det = SpikeDetector(factor, window, min_history)
    return np.array([det.update(g) is not None for g in np.asarray(grad_norm, np.float64)],
                    dtype=bool)


def spike_counts(
    runs: RunTable | Sequence[RunRecord] | RunRecord,
    *,
    source: str = "events",
    factor: float = 5.0,
    window: int = 100,
    min_history: int = 10,
) -> dict[str, int]:
    """Number of gradient-norm spikes per run.

    Args:
      runs: run records.
      source: ``"events"`` counts ``grad_spike`` event lines; ``"grad_norm"`` recomputes spikes
        from the step lines' ``grad_norm`` with ``factor``, ``window``, ``min_history``.
    Returns: ``{run_id: count}``.
    Raises ``ValueError`` for an unknown source, or naming the run when ``source="grad_norm"``
    and the run logs no gradient norms.
    """
    if source not in ("events", "grad_norm"):
        raise ValueError(f"source must be 'events' or 'grad_norm', got {source!r}")
    out = {}
    for rec in as_records(runs):
        if source == "events":
            out[rec.run_id] = sum(1 for e in rec.events if e.get("type") == "grad_spike")
        else:
            _, g = rec.curve("grad_norm")
            if g.size == 0:
                raise ValueError(f"run {rec.run_id!r} logs no grad_norm")
            out[rec.run_id] = int(
                running_median_spikes(
                    g, factor=factor, window=window, min_history=min_history
                ).sum()
            )
    return out


def spike_correlation(
    runs: RunTable | Sequence[RunRecord],
    alpha: float | Mapping,
    *,
    counts: Mapping[str, int] | None = None,
    **count_kw,
) -> Correlation:
    """Pearson and Spearman correlation of spike counts with log(N)/α_ij across runs (Fig. 9).

    Args:
      runs: run records (N from each header, in parameters; natural log).
      alpha: α_ij of the pair (one float for all runs) or a mapping from a run's sorted dataset
        names (tuple) to α for that modality set.
      counts: precomputed ``{run_id: count}``; default: :func:`spike_counts` with ``count_kw``.
    Returns: :class:`Correlation` with ``x = log(N)/α``, ``y = counts``, labels the run ids.
    Raises ``ValueError`` naming the runs whose α is missing, or with fewer than 3 runs.
    """
    recs = as_records(runs)
    counts = spike_counts(recs, **count_kw) if counts is None else counts
    if isinstance(alpha, Mapping):
        missing = [r.run_id for r in recs if pair_key(r) not in alpha]
        if missing:
            raise ValueError(f"no alpha for the modality sets of runs {missing}")
        a = np.array([float(alpha[pair_key(r)]) for r in recs])
    else:
        a = np.full(len(recs), float(alpha))
    if np.any(a <= 0):
        raise ValueError("alpha must be positive")
    ids = [r.run_id for r in recs]
    no_count = [i for i in ids if i not in counts]
    if no_count:
        raise ValueError(f"no spike count for runs {no_count}")
    x = np.log([float(r.header["N"]) for r in recs]) / a
    return correlate(x, [counts[i] for i in ids], labels=ids)
