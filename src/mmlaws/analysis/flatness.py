"""Flatness of per-modality training curves (paper §6, Phenomena 1–2, Figure 7).

Criterion (the one every function here applies)
------------------------------------------------
Take one source modality's training loss L(t) (nats per token of that modality, from the step
lines' ``loss_per_modality``) against t, the run's total tokens seen. Optionally smooth it with a
centred running median over ``smooth`` logged points (``smooth = 1``: no smoothing; near the ends
the window shrinks symmetrically). Ignore warm-up: the analysis starts at
``t0 = max(warmup_tokens, first logged tokens)``. Cut ``[t0, t_last]`` into
``K = floor((t_last - t0) / window_tokens)`` consecutive, non-overlapping windows
``[t0 + k W, t0 + (k + 1) W)``, ``k = 0..K-1`` (a trailing part shorter than W is dropped). The
loss at each window edge is linearly interpolated in t between logged points. Window k is
**flat** when its relative decrease is below ``eps``::

    (L(t0 + k W) - L(t0 + (k + 1) W)) / L(t0 + k W) < eps

(a window in which the loss rises is flat too: the loss "does not decrease", as the paper's
definition of flatness reads). The **flatness percentage** is ``100 × (#flat windows) / K``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.analysis._common import Correlation, as_records, correlate, pair_key
from mmlaws.laws.records import RunRecord, RunTable


def running_median(values, smooth: int) -> np.ndarray:
    """Centred running median over ``smooth`` points (odd, ≥ 1); shrinks symmetrically at ends.

    Args:
      values: [T] series.
      smooth: window length in logged points.
    Returns: [T] smoothed series (``values`` itself when ``smooth == 1``).
    """
    values = np.asarray(values, np.float64)
    if smooth < 1 or smooth % 2 == 0:
        raise ValueError(f"smooth must be an odd number of points ≥ 1, got {smooth}")
    if smooth == 1:
        return values.copy()
    h, T = smooth // 2, values.size
    out = np.empty_like(values)
    for t in range(T):
        r = min(h, t, T - 1 - t)
        out[t] = np.median(values[t - r : t + r + 1])
    return out


def flat_windows(
    tokens,
    loss,
    *,
    warmup_tokens: float,
    window_tokens: float,
    eps: float = 1e-3,
    smooth: int = 1,
    run_id: str = "",
) -> np.ndarray:
    """Which post-warm-up windows of one curve are flat (module docstring).

    Args:
      tokens: [T] total tokens seen at each logged point, strictly increasing.
      loss: [T] the modality's loss at those points (nats per token).
      warmup_tokens: tokens of warm-up to exclude (the analysis starts here).
      window_tokens: window length W in tokens, > 0.
      eps: relative-decrease threshold (dimensionless), ≥ 0.
      smooth: running-median length in logged points (odd).
      run_id: named in error messages.
    Returns: [K] bool, True where window k is flat.
    Raises ``ValueError`` when fewer than 2 points are logged, tokens do not increase, the
    parameters are out of range, or not one whole window fits after warm-up.
    """
    tokens, loss = np.asarray(tokens, np.float64), np.asarray(loss, np.float64)
    where = f"run {run_id!r}: " if run_id else ""
    if tokens.shape != loss.shape or tokens.ndim != 1:
        raise ValueError(f"{where}tokens and loss must be 1-D arrays of the same length")
    if tokens.size < 2:
        raise ValueError(f"{where}too few logged points ({tokens.size}); need at least 2")
    if np.any(np.diff(tokens) <= 0):
        raise ValueError(f"{where}tokens must be strictly increasing")
    if not window_tokens > 0 or not eps >= 0 or warmup_tokens < 0:
        raise ValueError(f"{where}need window_tokens > 0, eps >= 0 and warmup_tokens >= 0")
    if not np.all(np.isfinite(loss)):
        raise ValueError(f"{where}loss has non-finite values")
    smoothed = running_median(loss, smooth)
    t0 = max(float(warmup_tokens), float(tokens[0]))
    K = int(np.floor((tokens[-1] - t0) / window_tokens * (1 + 1e-12)))
    if K < 1:
        raise ValueError(
            f"{where}no whole window of {window_tokens:.4g} tokens fits between the end of "
            f"warm-up ({t0:.4g}) and the last logged point ({tokens[-1]:.4g})"
        )
    edges = np.minimum(t0 + window_tokens * np.arange(K + 1), tokens[-1])
    L = np.interp(edges, tokens, smoothed)
    return (L[:-1] - L[1:]) / L[:-1] < eps


def flatness_percentage(tokens, loss, **kw) -> float:
    """``100 × mean(flat_windows(tokens, loss, **kw))``: percent of post-warm-up windows flat."""
    return 100.0 * float(np.mean(flat_windows(tokens, loss, **kw)))


def flatness(
    runs: RunTable | Sequence[RunRecord] | RunRecord,
    *,
    warmup_tokens: float,
    window_tokens: float,
    eps: float = 1e-3,
    smooth: int = 1,
    modalities: Sequence[str] | None = None,
    series: str = "loss_per_modality",
) -> dict[str, dict[str, float]]:
    """Flatness percentage per source modality per run (Figure 7).

    Args:
      runs: run records (a :class:`RunTable` from ``read_runs``, records, or one record).
      warmup_tokens, window_tokens, eps, smooth: the criterion's parameters (module docstring);
        tokens are the run's total tokens seen.
      modalities: which ``series`` keys to analyse; None: every key a run logs.
      series: ``"loss_per_modality"`` (source modalities of the vocabulary) or
        ``"loss_per_dataset"`` (datasets, for modalities that share a token range, such as
        text and code under one BPE).
    Returns: ``{run_id: {modality: percent in [0, 100]}}``.
    Raises ``ValueError`` naming the run when a requested modality is not logged or a curve is
    too short for the criterion.
    """
    out: dict[str, dict[str, float]] = {}
    for rec in as_records(runs):
        logged = sorted({m for s in rec.steps for m in (s.get(series) or {})})
        names = list(modalities) if modalities is not None else logged
        if not names:
            raise ValueError(f"run {rec.run_id!r}: logs no {series}")
        missing = [m for m in names if m not in logged]
        if missing:
            raise ValueError(f"run {rec.run_id!r}: no {series} for {missing}")
        out[rec.run_id] = {}
        for m in names:
            tok, val = rec.curve(f"{series}.{m}")
            out[rec.run_id][m] = flatness_percentage(
                tok,
                val,
                warmup_tokens=warmup_tokens,
                window_tokens=window_tokens,
                eps=eps,
                smooth=smooth,
                run_id=rec.run_id,
            )
    return out


def flatness_alpha_correlation(
    runs: RunTable | Sequence[RunRecord],
    alpha: Mapping[tuple[str, ...], float],
    *,
    modality: str,
    **criterion,
) -> Correlation:
    """Correlation across runs of α_ij with one modality's flatness percentage (Phenomenon 2).

    Args:
      runs: bi-modal runs that all log ``loss_per_modality[modality]`` (the paper uses one N).
      alpha: a run's sorted dataset names (tuple) → α_ij of that pair's law.
      modality: the source modality whose flatness is measured (e.g. ``"speech"``).
      criterion: ``warmup_tokens``, ``window_tokens``, ``eps``, ``smooth`` (:func:`flatness`).
    Returns: :class:`Correlation` with ``x = α``, ``y = flatness percent``, labels the run ids.
    Raises ``ValueError`` naming runs without an α, or with fewer than 3 runs.
    """
    recs = as_records(runs)
    missing = [r.run_id for r in recs if pair_key(r) not in alpha]
    if missing:
        raise ValueError(f"no alpha for the modality sets of runs {missing}")
    pct = flatness(recs, modalities=[modality], **criterion)
    ids = [r.run_id for r in recs]
    return correlate([alpha[pair_key(r)] for r in recs], [pct[i][modality] for i in ids], ids)
