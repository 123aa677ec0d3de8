"""Gradient-norm spikes against log(N)/α_ij (paper §6, Phenomenon 4, Figure 9).

A spike is either an ``event`` line of type ``"grad_spike"`` written during training, or is
recomputed from the step lines' ``grad_norm`` with the running-median rule: step t is a spike
when at least ``min_history`` earlier norms have been seen and ``grad_norm[t] > factor ×
median(last `window` norms before t)``; every norm (spikes included) joins the history. This is
the rule training applies when it writes ``grad_spike`` events (one rule,
:mod:`mmlaws.laws.spikes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.analysis._common import Correlation, as_records, correlate, pair_key
from mmlaws.laws.records import RunRecord, RunTable
from mmlaws.laws.spikes import (
    SPIKE_FACTOR,
    SPIKE_MIN_HISTORY,
    SPIKE_WINDOW,
    SpikeDetector,
    running_median_spikes,
)

__all__ = ["SpikeDetector", "running_median_spikes", "spike_correlation", "spike_counts"]


def spike_counts(
    runs: RunTable | Sequence[RunRecord] | RunRecord,
    *,
    source: str = "events",
    factor: float = SPIKE_FACTOR,
    window: int = SPIKE_WINDOW,
    min_history: int = SPIKE_MIN_HISTORY,
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
