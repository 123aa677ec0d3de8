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
then equals Eq. 4 exactly) and vanishes when either modality is absent.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class UnimodalLaw:
    """Eq. 2: ``L(N, D) = E + A/N^alpha + B/D^beta``."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def predict(self, N, D) -> np.ndarray:
        """Loss at N parameters and D tokens.

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

    def predict(self, N, D, shares: Mapping[str, float]) -> np.ndarray:
        """Loss at N parameters, D total tokens split by ``shares`` (name → fraction)."""
        shares = normalise_shares(shares)
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        total = sum(w * self.laws[k].predict(N, w * D) for k, w in shares.items())
        for (k, m), term in self.interactions.items():
            wk, wm = shares.get(k, 0.0), shares.get(m, 0.0)
            if wk > 0 and wm > 0:
                total = total + 4.0 * wk * wm * term.value(N, (wk + wm) * D)
        return total

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


def pairs_of(names: Sequence[str]) -> list[tuple[str, str]]:
    """All unordered pairs, in a stable order."""
    return list(itertools.combinations(sorted(names), 2))
