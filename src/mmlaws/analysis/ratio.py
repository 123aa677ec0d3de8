"""The Figure 5 ratio ½(L_i + L_j) / L_pair over training, and the law's predicted final ratio.

Three runs of the same parameter count N: one on modality i alone, one on j alone, one on the
pair (i, j). The pair run has seen ``D_k = w_k × tokens`` tokens of modality k at a logged point
(``w_k`` its token share from the header). At each logged point of the pair run the uni-modal
runs' losses are read at the same per-modality token count (their total tokens equal their
single modality's tokens), interpolated linearly in log(tokens). A ratio below 1 means the pair
run beats two separate models on the same data: the competition barrier is broken.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmlaws.analysis._common import interp_log_tokens
from mmlaws.laws.forms import BimodalLaw
from mmlaws.laws.records import RunRecord


@dataclasses.dataclass(frozen=True)
class RatioCurve:
    """The ratio over training, on the pair run's logged points that all three runs cover."""

    tokens: np.ndarray  # [T] pair run's total tokens seen
    tokens_i: np.ndarray  # [T] tokens of modality i seen by the pair run (= D_i)
    tokens_j: np.ndarray  # [T] tokens of modality j (= D_j)
    ratio: np.ndarray  # [T] ½(L_i(D_i) + L_j(D_j)) / L_pair(tokens), dimensionless
    predicted_final: float | None  # law.independent / law.predict at the last (N, D_i, D_j)
    N: float


def _share(rec: RunRecord, name: str) -> float:
    shares = rec.datasets
    if name not in shares:
        raise ValueError(f"run {rec.run_id!r} has no dataset {name!r} (it has {sorted(shares)})")
    return float(shares[name])


def competition_ratio(
    run_i: RunRecord,
    run_j: RunRecord,
    run_pair: RunRecord,
    *,
    name_i: str,
    name_j: str,
    law: BimodalLaw | None = None,
    key: str = "loss",
    rtol_N: float = 1e-6,
) -> RatioCurve:
    """½(L_i + L_j) / L_pair over training (Figure 5).

    Args:
      run_i, run_j: uni-modal runs; their ``key`` series (nats per token) is L_i, L_j.
      run_pair: the run on datasets ``name_i`` and ``name_j``; its ``key`` series is L_pair.
      name_i, name_j: dataset names in the pair run's header (their shares give D_i, D_j).
      law: a fitted bi-modal law; when given, ``predicted_final`` is
        ``law.independent(N, D_i, D_j) / law.predict(N, D_i, D_j)`` at the pair run's last
        point covered by all three runs; when ``law.names == (name_j, name_i)`` the law's
        modalities are swapped to match, otherwise its order is taken as (i, j).
      key: logged series, ``"loss"`` by default (step lines).
      rtol_N: relative tolerance for the three runs' N to count as equal.
    Returns: :class:`RatioCurve`.
    Raises ``ValueError`` naming the run ids on mismatched N, a uni-modal run trained on more
    than one dataset, or when no pair point falls within the uni-modal runs' token ranges.
    """
    runs = (run_i, run_j, run_pair)
    ids = [r.run_id for r in runs]
    Ns = np.array([float(r.header["N"]) for r in runs])
    if np.any(np.abs(Ns - Ns[0]) > rtol_N * Ns[0]):
        raise ValueError(f"runs {ids} differ in N ({Ns.tolist()}); the ratio needs one N")
    for r in (run_i, run_j):
        if len(r.datasets) != 1:
            raise ValueError(f"run {r.run_id!r} is not uni-modal: datasets {sorted(r.datasets)}")
    w_i, w_j = _share(run_pair, name_i), _share(run_pair, name_j)
    t_pair, L_pair = run_pair.curve(key)
    t_i, L_i = run_i.curve(key)
    t_j, L_j = run_j.curve(key)
    for r, t, need in zip(runs, (t_i, t_j, t_pair), (2, 2, 1), strict=True):
        if t.size < need:
            raise ValueError(f"run {r.run_id!r}: too few logged {key!r} points ({t.size})")
    D_i, D_j = w_i * t_pair, w_j * t_pair
    eps = 1e-12
    keep = (
        (D_i >= t_i[0] * (1 - eps))
        & (D_i <= t_i[-1] * (1 + eps))
        & (D_j >= t_j[0] * (1 - eps))
        & (D_j <= t_j[-1] * (1 + eps))
    )
    if not np.any(keep):
        raise ValueError(f"runs {ids}: no pair point lies within the uni-modal runs' token ranges")
    D_i, D_j, t_pair, L_pair = D_i[keep], D_j[keep], t_pair[keep], L_pair[keep]
    mean = 0.5 * (
        interp_log_tokens(t_i, L_i, D_i, run_id=run_i.run_id)
        + interp_log_tokens(t_j, L_j, D_j, run_id=run_j.run_id)
    )
    pred = None
    if law is not None:
        d_i, d_j = D_i[-1], D_j[-1]
        if tuple(law.names) == (name_j, name_i):  # the law's first modality is j
            d_i, d_j = d_j, d_i
        pred = predicted_final_ratio(law, Ns[0], d_i, d_j)
    return RatioCurve(t_pair, D_i, D_j, mean / L_pair, pred, float(Ns[0]))


def predicted_final_ratio(law: BimodalLaw, N: float, D_i: float, D_j: float) -> float:
    """``law.independent(N, D_i, D_j) / law.predict(N, D_i, D_j)`` (N parameters, D tokens)."""
    return float(law.independent(N, D_i, D_j) / law.predict(N, D_i, D_j))
