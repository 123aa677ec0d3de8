"""Scaling-law forms (paper Eq. 2 and Eq. 4, and their n-modal generalisation).

Every form is a frozen dataclass of coefficients with a vectorised ``predict``; inputs broadcast
like numpy arrays. N is the parameter count, D the number of training tokens.

Uni-modal (Eq. 2)::

    L(N, D) = E + A / N**alpha + B / D**beta

Bi-modal (Eq. 4, with the last term read as B_ij / (D_i + D_j)**beta_ij)::

    L(N, D_i, D_j) = ½[L_i(N, D_i) + L_j(N, D_j)] - C_ij + A_ij / N**alpha_ij
                     + B_ij / (D_i + D_j)**beta_ij

n-modal with token shares w_k (Σ w_k = 1) and D total tokens, D_k = w_k D::

    L(N, D; w) = Σ_k w_k L_k(N, D_k)
                 + Σ_{k<l} 4 w_k w_l [ -C_kl + A_kl / N**alpha_kl + B_kl / (D_k + D_l)**beta_kl ]

The overall loss is the token-weighted mean of the per-modality losses, so the uni-modal part is
share-weighted; an interaction is scaled by 4 w_k w_l, which is 1 for a 50/50 pair (the n-modal form
then equals Eq. 4 exactly) and vanishes when either modality is absent. Per-modality losses inside
a mixture, with shares that are not forced symmetric, are :mod:`mmlaws.laws.mixture`'s.

**Which quantity a law predicts** (``quantity``): ``"nats"`` (cross-entropy per token, what runs
log and what laws fitted here are fitted on by default) or ``"perplexity"`` (its exponential, the
reading of the published Table 1 and Table 3 laws; see :mod:`mmlaws.laws.published`).
:func:`to_nats` converts either to nats per token.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

QUANTITIES = ("nats", "perplexity")


def check_quantity(quantity: str) -> str:
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity={quantity!r}: expected one of {QUANTITIES}")
    return quantity


def to_nats(value, quantity: str) -> np.ndarray:
    """A law's prediction in nats per token: ``log`` of a perplexity, a loss in nats as it is.

    >>> float(to_nats(np.e**2, "perplexity")), float(to_nats(2.0, "nats"))
    (2.0, 2.0)
    """
    value = np.asarray(value, np.float64)
    if check_quantity(quantity) == "nats":
        return value
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(value)


@dataclasses.dataclass(frozen=True)
class UnimodalLaw:
    """Eq. 2: ``L(N, D) = E + A/N^alpha + B/D^beta``."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""
    quantity: str = "nats"  # what ``predict`` returns: a loss in nats per token, or perplexity

    def predict(self, N, D) -> np.ndarray:
        """Loss at N parameters and D tokens (in ``quantity``).

        >>> float(UnimodalLaw(E=1.0, A=10.0, B=100.0, alpha=0.5, beta=0.5).predict(100.0, 10_000.0))
        3.0
        """
        N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("E", "A", "B", "alpha", "beta")}


@dataclasses.dataclass(frozen=True)
class Interaction:
    """The pairwise term of Eq. 4: ``-C + A/N^alpha + B/(D_i + D_j)^beta``."""

    C: float
    A: float
    B: float
    alpha: float
    beta: float

    def cost(self, N, D_pair) -> np.ndarray:
        """``A/N^alpha + B/D^beta`` — the side of Eq. 5 that C must exceed for synergy."""
        N, D_pair = np.asarray(N, np.float64), np.asarray(D_pair, np.float64)
        return self.A / N**self.alpha + self.B / D_pair**self.beta

    def value(self, N, D_pair) -> np.ndarray:
        return self.cost(N, D_pair) - self.C

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("C", "A", "B", "alpha", "beta")}


@dataclasses.dataclass(frozen=True)
class BimodalLaw:
    """Eq. 4 for modalities ``(i, j)`` with their uni-modal laws."""

    law_i: UnimodalLaw
    law_j: UnimodalLaw
    interaction: Interaction
    names: tuple[str, str] = ("i", "j")

    def predict(self, N, D_i, D_j) -> np.ndarray:
        D_i, D_j = np.asarray(D_i, np.float64), np.asarray(D_j, np.float64)
        mean = 0.5 * (self.law_i.predict(N, D_i) + self.law_j.predict(N, D_j))
        return mean + self.interaction.value(N, D_i + D_j)

    def independent(self, N, D_i, D_j) -> np.ndarray:
        """½[L_i + L_j]: the loss of two separate models on the same per-modality tokens."""
        return 0.5 * (self.law_i.predict(N, D_i) + self.law_j.predict(N, D_j))


@dataclasses.dataclass(frozen=True)
class NModalLaw:
    """Share-weighted uni-modal laws plus pairwise interactions (module docstring)."""

    laws: Mapping[str, UnimodalLaw]
    interactions: Mapping[tuple[str, str], Interaction]

    def predict(self, N, D, shares) -> np.ndarray:
        """Loss at N parameters and D total tokens split by ``shares``; vectorised.

        ``shares``: name → share (a number or an array broadcasting with N and D), or one such
        mapping per run (see :func:`share_arrays`); shares are normalised to sum to 1.
        """
        w = share_arrays(shares)
        unknown = sorted(set(w) - set(self.laws))
        if unknown:
            raise ValueError(f"no uni-modal law for {unknown}; the law has {sorted(self.laws)}")
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        total = sum(_weighted(w[k], self.laws[k], N, D) for k in w)
        zero = np.zeros(())
        for (k, m), term in self.interactions.items():
            wk, wm = w.get(k, zero), w.get(m, zero)
            both = (wk > 0) & (wm > 0)
            d_pair = np.where(both, (wk + wm) * D, 1.0)
            total = total + np.where(both, 4.0 * wk * wm * term.value(N, d_pair), 0.0)
        return np.asarray(total, np.float64)

    @classmethod
    def from_bimodal(cls, pairs: Sequence[BimodalLaw]) -> NModalLaw:
        laws, inter = {}, {}
        for p in pairs:
            laws[p.names[0]], laws[p.names[1]] = p.law_i, p.law_j
            inter[tuple(p.names)] = p.interaction
        return cls(laws=laws, interactions=inter)


def normalise_shares(shares: Mapping[str, float]) -> dict[str, float]:
    """Shares as fractions summing to 1; raises on negative or all-zero shares."""
    vals = {k: float(v) for k, v in shares.items()}
    if any(not np.isfinite(v) or v < 0 for v in vals.values()):
        raise ValueError(f"token shares must be finite and non-negative, got {vals}")
    total = sum(vals.values())
    if total <= 0:
        raise ValueError(f"token shares sum to {total}; at least one must be positive")
    return {k: v / total for k, v in vals.items() if v > 0}


def share_arrays(shares) -> dict[str, np.ndarray]:
    """Token shares as float64 arrays normalised to sum to 1 (they broadcast together).

    ``shares`` is a mapping name → share (number or array), or a sequence of such mappings, one
    per run (a name missing from a run has share 0 there). Raises on a negative or non-finite
    share, or where all shares are zero.

    >>> w = share_arrays([{"a": 1, "b": 3}, {"a": 1}])
    >>> w["a"].tolist(), w["b"].tolist()
    ([0.25, 1.0], [0.75, 0.0])
    """
    if not isinstance(shares, Mapping):
        rows = list(shares)
        names = sorted({k for r in rows for k in r})
        shares = {k: np.array([float(r.get(k, 0.0)) for r in rows]) for k in names}
    if not shares:
        raise ValueError("no token shares given")
    vals = dict(zip(shares, np.broadcast_arrays(*(np.asarray(v, np.float64)
                                                  for v in shares.values())), strict=True))
    for k, v in vals.items():
        if np.any(~np.isfinite(v) | (v < 0)):
            raise ValueError(f"token share of {k!r} must be finite and non-negative, got {v}")
    total = sum(vals.values())
    if np.any(total <= 0):
        raise ValueError("token shares sum to 0 somewhere; at least one must be positive")
    return {k: v / total for k, v in vals.items()}


def _weighted(w, law: UnimodalLaw, N, D) -> np.ndarray:
    """``w × law(N, w D)``, 0 where a run holds none of the modality (w = 0)."""
    return np.where(w > 0, w * law.predict(N, np.where(w > 0, w * D, 1.0)), 0.0)


def pairs_of(names: Sequence[str]) -> list[tuple[str, str]]:
    """All unordered pairs, in a stable order."""
    return list(itertools.combinations(sorted(names), 2))
