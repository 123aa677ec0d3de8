"""Competition barrier (Eq. 5), the compute-optimal point that breaks it (Eq. 6), and the
Chinchilla compute-optimal allocation of a uni-modal law.

Compute is counted as C = 6 N D (Kaplan et al. 2020), as Eq. 6 does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmlaws.laws.forms import BimodalLaw, Interaction, UnimodalLaw


def _interaction(law: BimodalLaw | Interaction) -> Interaction:
    return law.interaction if isinstance(law, BimodalLaw) else law


def is_synergistic(law: BimodalLaw | Interaction, N, D) -> np.ndarray:
    """Eq. 5: True where C_ij > A_ij/N^α_ij + B_ij/D^β_ij (D = D_i + D_j, the pair's tokens)."""
    t = _interaction(law)
    return t.C > t.cost(N, D)


def competition_barrier(law: BimodalLaw | Interaction, N) -> np.ndarray:
    """The barrier curve: for each N, the token count D at which Eq. 5 holds with equality.

    D(N) = (B / (C - A/N^α))^(1/β); ``inf`` where no amount of data breaks the barrier at that N
    (C ≤ A/N^α, including every N when C ≤ 0).
    """
    t = _interaction(law)
    N = np.asarray(N, dtype=np.float64)
    slack = t.C - t.A / N**t.alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (t.B / slack) ** (1.0 / t.beta)
    return np.where(slack > 0, d, np.inf)


@dataclasses.dataclass(frozen=True)
class ComputeOptimum:
    N: float
    D: float
    compute: float  # FLOPs, 6 N D


def compute_optimal(law: BimodalLaw | Interaction) -> ComputeOptimum:
    """Eq. 6: minimise 6ND subject to C = A/N^α + B/D^β.

    With x = A/N^α and y = B/D^β on the constraint x + y = C, log(ND) = (log A - log x)/α +
    (log B - log y)/β is minimised at α x = β y, so x = Cβ/(α+β), y = Cα/(α+β) (closed form).

    >>> o = compute_optimal(Interaction(C=0.1, A=10.0, B=10.0, alpha=0.5, beta=0.5))
    >>> round(o.N), round(o.D)
    (40000, 40000)
    """
    t = _interaction(law)
    if not t.C > 0:
        raise ValueError(f"C_ij = {t.C:.4g} ≤ 0: the pair never becomes synergistic (Eq. 5)")
    if not (t.alpha > 0 and t.beta > 0):
        raise ValueError(f"exponents must be positive, got alpha={t.alpha}, beta={t.beta}")
    x = t.C * t.beta / (t.alpha + t.beta)
    y = t.C * t.alpha / (t.alpha + t.beta)
    n = (t.A / x) ** (1.0 / t.alpha)
    d = (t.B / y) ** (1.0 / t.beta)
    return ComputeOptimum(N=float(n), D=float(d), compute=float(6.0 * n * d))


@dataclasses.dataclass(frozen=True)
class Allocation:
    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray


def chinchilla_optimal(law: UnimodalLaw, compute) -> Allocation:
    """N_opt(C), D_opt(C) minimising Eq. 2 under 6ND = C, and the loss they reach.

    N_opt = G (C/6)^(β/(α+β)), D_opt = G^-1 (C/6)^(α/(α+β)), G = (αA / (βB))^(1/(α+β))
    (Hoffmann et al. 2022, Appendix D.2).
    """
    c = np.asarray(compute, dtype=np.float64)
    a, b = law.alpha, law.beta
    g = (a * law.A / (b * law.B)) ** (1.0 / (a + b))
    n = g * (c / 6.0) ** (b / (a + b))
    d = (c / 6.0) ** (a / (a + b)) / g
    return Allocation(N=n, D=d, loss=law.predict(n, d))
