"""The Figure 5 ratio ½(L_i + L_j) / L_pair over training, and the law's predicted final ratio.

Three runs of the same parameter count N: one on modality i alone, one on j alone, one on the
pair (i, j). The pair run has seen ``D_k = w_k × tokens`` tokens of modality k at a logged point
(``w_k`` its token share from the header). At each logged point of the pair run the uni-modal
runs' losses are read at the same per-modality token count (their total tokens equal their
single modality's tokens), interpolated linearly in log(tokens).

**Which side is synergy.** Eq. 5 says the pair is synergistic when C_ij exceeds
A_ij/N^α_ij + B_ij/(D_i + D_j)^β_ij, i.e. when Eq. 4's interaction term is negative and
L_pair < ½(L_i + L_j): the pair run beats two separate models on the same data, and the ratio
is **above 1** (the competition barrier is broken). Below 1 the modalities compete. The
caption of the paper's Figure 5 says the reverse ("below 1"); this follows the equations
(:func:`ratio_verdict`).

**Matched schedules.** A uni-modal run read in the middle of a longer schedule is not a model
trained on those tokens: its learning rate has not decayed, and its loss sits above the loss
of a run that finished there (by about as much as the effect measured). So each uni-modal run
must *finish* at the pair run's final tokens of its modality (a run trained to ``w_k`` × the
pair's budget, or a WSD branch decayed there); with decay schedules of proportional length the
curve then compares the three runs at the same fraction of their schedules, and its last
point compares finished runs. A uni-modal run that ends elsewhere is refused.
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
    final: float | None = None  # ½(L_i + L_j) / L_pair of the three runs' final losses


def ratio_verdict(ratio: float) -> str:
    """``"synergy"`` above 1 (the pair's loss below the mean of the two alone, Eq. 5),
    ``"competition"`` below, ``"neutral"`` at exactly 1.

    >>> ratio_verdict(0.5 * (2.0 + 3.0) / 2.4), ratio_verdict(0.5 * (2.0 + 3.0) / 2.6)
    ('synergy', 'competition')
    """
    return "synergy" if ratio > 1 else "competition" if ratio < 1 else "neutral"


def end_tokens(rec: RunRecord, key: str = "loss") -> float:
    """Tokens at which a run's schedule ended: its final line's, else its last logged point's."""
    if rec.final is not None and rec.final.get("tokens"):
        return float(rec.final["tokens"])
    t, _ = rec.curve(key)
    return float(t[-1]) if t.size else float("nan")


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
    rtol_tokens: float = 0.05,
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
      rtol_tokens: relative tolerance for a uni-modal run's end to match the pair run's final
        tokens of its modality.
    Returns: :class:`RatioCurve`; above 1 is synergy (Eq. 5; see the module docstring).
    Raises ``ValueError`` naming the run ids on mismatched N, a uni-modal run trained on more
    than one dataset, a uni-modal run whose schedule does not end at the pair run's final
    tokens of its modality (it would be read mid-schedule), or when no pair point falls within
    the uni-modal runs' token ranges.
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
    pair_end = end_tokens(run_pair, key)
    for r, w, name in ((run_i, w_i, name_i), (run_j, w_j, name_j)):
        end = end_tokens(r, key)
        if not abs(end / (w * pair_end) - 1) <= rtol_tokens:
            raise ValueError(
                f"run {r.run_id!r} ends at {end:.4g} tokens but the pair run {run_pair.run_id!r} "
                f"sees {w * pair_end:.4g} tokens of {name!r}: the ratio needs a uni-modal run "
                "whose schedule finishes there, not a point in the middle of another schedule")
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
    finals = [r.final.get("loss") if r.final else None for r in runs]
    final = (0.5 * (finals[0] + finals[1]) / finals[2] if all(finals) else None)
    return RatioCurve(t_pair, D_i, D_j, mean / L_pair, pred, float(Ns[0]), final)


def predicted_final_ratio(law: BimodalLaw, N: float, D_i: float, D_j: float) -> float:
    """``law.independent(N, D_i, D_j) / law.predict(N, D_i, D_j)`` (N parameters, D tokens)."""
    return float(law.independent(N, D_i, D_j) / law.predict(N, D_i, D_j))
