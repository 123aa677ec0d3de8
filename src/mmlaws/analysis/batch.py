"""Optimal batch size per modality and pair, against β_ij (paper §6, Phenomenon 3, Figure 8).

The batch size of a run is read from its header: ``config[batch_key]`` (default
``"batch_tokens"``: tokens per optimizer step). Runs of one group differ only in batch size:
same datasets (modality set) and same N. Each run's loss is read at a fixed token budget
(total tokens seen, linear interpolation in log tokens between logged points). The optimal
batch size is found by a parabola in log2(batch) through the grid's best point and its two
neighbours; when the best point is at the edge of the grid, that grid value is returned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.analysis._common import Correlation, as_records, correlate, interp_log_tokens, pair_key
from mmlaws.laws.records import RunRecord, RunTable


@dataclasses.dataclass(frozen=True)
class OptimalBatch:
    """The batch-size scan of one group and its minimum."""

    batch_sizes: np.ndarray  # [B] increasing, in the header's unit (tokens per step by default)
    losses: np.ndarray  # [B] loss at the budget, nats per token
    optimum: float  # optimal batch size, same unit
    interpolated: bool  # False when the grid's edge point was the best
    run_ids: tuple[str, ...]


def optimal_batch_sizes(
    runs: RunTable | Sequence[RunRecord],
    *,
    budget_tokens: float,
    key: str = "loss",
    batch_key: str = "batch_tokens",
) -> dict[tuple[tuple[str, ...], float], OptimalBatch]:
    """:func:`optimal_batch_size` for every group of runs sharing datasets and N (Figure 8).

    Args: as :func:`optimal_batch_size`; runs are grouped by (sorted dataset names, N).
    Returns: ``{(dataset names, N): OptimalBatch}``.
    Raises ``ValueError`` naming the runs of a group that has a single run.
    """
    groups: dict[tuple[tuple[str, ...], float], list[RunRecord]] = {}
    for r in as_records(runs):
        groups.setdefault((pair_key(r), float(r.header["N"])), []).append(r)
    return {
        g: optimal_batch_size(recs, budget_tokens=budget_tokens, key=key, batch_key=batch_key)
        for g, recs in sorted(groups.items())
    }


def log_parabola_minimum(batch_sizes, losses) -> tuple[float, bool]:
    """Minimum of a parabola in log2(batch) through the best grid point and its neighbours.

    Args: batch_sizes [B] positive, increasing; losses [B]. Returns (optimum, interpolated).
    """
    b, L = np.asarray(batch_sizes, np.float64), np.asarray(losses, np.float64)
    k = int(np.argmin(L))
    if k == 0 or k == b.size - 1:
        return float(b[k]), False
    x = np.log2(b[k - 1 : k + 2])
    c2, c1, _ = np.polyfit(x, L[k - 1 : k + 2], 2)
    if c2 <= 0:
        return float(b[k]), False
    return float(2.0 ** (-c1 / (2 * c2))), True


def optimal_batch_size(
    runs: RunTable | Sequence[RunRecord],
    *,
    budget_tokens: float,
    key: str = "loss",
    batch_key: str = "batch_tokens",
    rtol_N: float = 1e-6,
) -> OptimalBatch:
    """Optimal batch size of one group of runs that differ only in batch size.

    Args:
      runs: the group's run records.
      budget_tokens: total tokens seen at which losses are compared (every run must reach it).
      key: the series compared (``"loss"``, or ``"loss_per_modality.<m>"`` for one modality).
      batch_key: the header ``config`` field holding the batch size.
    Returns: :class:`OptimalBatch`.
    Raises ``ValueError`` naming run ids when runs differ in N or datasets, lack ``batch_key``,
    share a batch size, do not reach the budget, or when fewer than 2 runs are given.
    """
    recs = as_records(runs)
    ids = [r.run_id for r in recs]
    if len(recs) < 2:
        raise ValueError(f"need at least 2 runs of different batch size, got {ids}")
    Ns = np.array([float(r.header["N"]) for r in recs])
    if np.any(np.abs(Ns - Ns[0]) > rtol_N * Ns[0]):
        raise ValueError(f"runs {ids} differ in N ({Ns.tolist()})")
    if len({pair_key(r) for r in recs}) > 1:
        raise ValueError(f"runs {ids} differ in datasets {[pair_key(r) for r in recs]}")
    lacking = [r.run_id for r in recs if batch_key not in (r.header.get("config") or {})]
    if lacking:
        raise ValueError(f"runs {lacking} have no config.{batch_key} in their header")
    b = np.array([float(r.header["config"][batch_key]) for r in recs])
    if np.unique(b).size != b.size:
        raise ValueError(f"runs {ids} repeat a batch size ({b.tolist()})")
    if np.any(b <= 0):
        raise ValueError(f"runs {ids}: batch sizes must be positive ({b.tolist()})")
    L = np.array(
        [float(interp_log_tokens(*r.curve(key), budget_tokens, run_id=r.run_id)) for r in recs]
    )
    order = np.argsort(b)
    b, L = b[order], L[order]
    opt, interp = log_parabola_minimum(b, L)
    return OptimalBatch(b, L, opt, interp, tuple(ids[i] for i in order))


def batch_ratio(b_pair: float, b_i: float, b_j: float) -> float:
    """Figure 8 (top): ``log(b_pair / (b_i + b_j))``, natural log of the optimal-batch ratio."""
    if min(b_pair, b_i, b_j) <= 0:
        raise ValueError("optimal batch sizes must be positive")
    return float(np.log(b_pair / (b_i + b_j)))


def batch_beta_correlation(
    values: Mapping[tuple[str, str], float], beta: Mapping[tuple[str, str], float]
) -> Correlation:
    """Correlation across pairs of a batch quantity (e.g. :func:`batch_ratio`) with β_ij.

    Args:
      values: pair (sorted names) → optimal batch size or ``batch_ratio`` of the pair.
      beta: pair → β_ij of its fitted bi-modal law.
    Returns: :class:`Correlation` with ``x = β``, ``y = values``, labels ``"i|j"``.
    Raises ``ValueError`` naming pairs without β, or with fewer than 3 pairs.
    """
    pairs = sorted(values)
    missing = [p for p in pairs if p not in beta]
    if missing:
        raise ValueError(f"no beta for pairs {missing}")
    return correlate(
        [beta[p] for p in pairs], [values[p] for p in pairs], labels=["|".join(p) for p in pairs]
    )
