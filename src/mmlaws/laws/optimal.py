"""Competition barrier (Eq. 5), the compute-optimal point that breaks it (Eq. 6), and the
Chinchilla compute-optimal allocation of a uni-modal law.

Compute is counted as C = 6 N D (Kaplan et al. 2020), as Eq. 6 does, in the closed forms
(:func:`compute_optimal`, :func:`chinchilla_optimal`). :func:`allocate` and
:func:`cheapest_crossing` solve the same two problems for any law at fixed shares written as a
:class:`PowerSum` and any training-FLOP count per token (:class:`FlopsPerToken`: 6N, or a real
architecture's count as a function of N); with 6N they reproduce the closed forms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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


# ----------------------------------------------------------------------------- general budgets
@dataclasses.dataclass(frozen=True)
class PowerSum:
    """``const + Σ_i a_i N^-p_i + Σ_j b_j D^-q_j``: Eq. 2, Eq. 4 and the mixture laws at fixed
    shares. Arrays may carry leading sample axes ``[...]`` (bootstrap replicates); terms are the
    last axis."""

    const: np.ndarray  # [...]
    n_coef: np.ndarray  # [..., I]
    n_exp: np.ndarray  # [..., I]
    d_coef: np.ndarray  # [..., J]
    d_exp: np.ndarray  # [..., J]

    @classmethod
    def of(cls, const, n_terms: Sequence, d_terms: Sequence) -> PowerSum:
        """From lists of (coefficient, exponent) pairs."""
        n = np.asarray(n_terms, np.float64).reshape(-1, 2)
        d = np.asarray(d_terms, np.float64).reshape(-1, 2)
        return cls(np.float64(const), n[:, 0], n[:, 1], d[:, 0], d[:, 1])

    @classmethod
    def unimodal(cls, law) -> PowerSum:
        return cls.of(law.E, [(law.A, law.alpha)], [(law.B, law.beta)])

    @classmethod
    def stack(cls, sums: Sequence[PowerSum]) -> PowerSum:
        """Replicates with the same terms stacked on a leading axis [S]."""
        return cls(*(np.stack([getattr(s, f.name) for s in sums])
                     for f in dataclasses.fields(cls)))

    def value(self, N, D) -> np.ndarray:
        N = np.asarray(N, np.float64)[..., None]
        D = np.asarray(D, np.float64)[..., None]
        return (self.const + np.sum(self.n_coef * N**-self.n_exp, -1)
                + np.sum(self.d_coef * D**-self.d_exp, -1))

    def _slopes(self, N, D):
        """(d/dlogN of the N terms, −d/dlogD of the D terms)."""
        N = np.asarray(N, np.float64)[..., None]
        D = np.asarray(D, np.float64)[..., None]
        return (-np.sum(self.n_exp * self.n_coef * N**-self.n_exp, -1),
                np.sum(self.d_exp * self.d_coef * D**-self.d_exp, -1))


@dataclasses.dataclass(frozen=True)
class FlopsPerToken:
    """Training FLOPs per token as a function of N: log-log linear between knots (N_k, f_k), and
    proportional to N beyond the first and last knot. ``FlopsPerToken.six()`` is 6N."""

    log_n: tuple[float, ...]
    log_f: tuple[float, ...]
    name: str = ""

    @classmethod
    def six(cls) -> FlopsPerToken:
        return cls((0.0,), (float(np.log(6.0)),), "6N")

    @classmethod
    def from_points(cls, N: Sequence[float], flops: Sequence[float], name: str = ""):
        order = np.argsort(N)
        n, f = np.log(np.asarray(N, np.float64)[order]), np.log(np.asarray(flops)[order])
        if np.any(np.diff(n) <= 0):
            raise ValueError("FLOP knots need distinct parameter counts")
        return cls(tuple(n.tolist()), tuple(f.tolist()), name)

    def slope(self, N) -> np.ndarray:
        """d log f / d log N (1 outside the knots)."""
        x = np.log(np.asarray(N, np.float64))
        n = np.asarray(self.log_n)
        if n.size == 1:
            return np.ones_like(x)
        seg = np.diff(self.log_f) / np.diff(n)
        k = np.clip(np.searchsorted(n, x, side="right") - 1, 0, n.size - 2)
        return np.where((x < n[0]) | (x >= n[-1]), 1.0, seg[k])

    def __call__(self, N) -> np.ndarray:
        x = np.log(np.asarray(N, np.float64))
        n, f = np.asarray(self.log_n), np.asarray(self.log_f)
        inside = np.interp(x, n, f)
        return np.exp(np.where(x < n[0], f[0] + x - n[0],
                               np.where(x > n[-1], f[-1] + x - n[-1], inside)))


def _bisect(grad, lo, hi, iterations: int = 200):
    """Bisection for a sign change of ``grad`` from − (at lo) to + (at hi), elementwise."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        neg = grad(mid) < 0
        lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
        if np.all(hi - lo <= 4e-16 * np.maximum(np.abs(mid), 1.0)):
            break
    return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class BudgetOptimum:
    """The compute-optimal point of a law under a FLOP budget."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    at_edge: np.ndarray  # the optimum is at the end of the scanned range of N (not interior)


def allocate(law: PowerSum, compute, flops: FlopsPerToken | None = None, *,
             n_range=(1e3, 1e16), points: int = 600) -> BudgetOptimum:
    """N and D = compute / f(N) minimising ``law`` on the budget ``compute`` (FLOPs), with f the
    training FLOPs per token (default 6N). A scan over log N brackets the minimum, then
    bisection on the analytic derivative locates it to float64 precision:

        d L / d log N = −Σ p_i a_i N^-p_i + s(N) Σ q_j b_j D^-q_j,  s = d log f / d log N.

    With f = 6N and one modality this is :func:`chinchilla_optimal`. ``compute`` broadcasts
    against the law's sample axes.
    """
    flops = FlopsPerToken.six() if flops is None else flops
    c = np.asarray(compute, np.float64)
    if np.any(~(c > 0)):
        raise ValueError(f"compute must be positive, got {compute}")
    shape = np.broadcast_shapes(c.shape, np.shape(law.const))
    c = np.broadcast_to(c, shape)
    grid = np.linspace(np.log(n_range[0]), np.log(n_range[1]), points)  # [G]
    N = np.broadcast_to(np.exp(grid).reshape((points,) + (1,) * len(shape)), (points,) + shape)
    D = c / flops(N)
    val = np.where(D >= 1.0, law.value(N, D), np.inf)  # [G, ...]: at least one token
    best = np.argmin(val, axis=0)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, points - 1)]

    def grad(x):
        n = np.exp(x)
        d = c / flops(n)
        dn, dd = law._slopes(n, d)
        return dn + flops.slope(n) * dd

    x = _bisect(grad, lo, hi)
    n = np.exp(x)
    d = c / flops(n)
    edge = (best == 0) | (best == points - 1)
    return BudgetOptimum(N=n, D=d, loss=law.value(n, d), at_edge=edge)


def cheapest_crossing(term: Interaction | BimodalLaw, flops: FlopsPerToken | None = None, *,
                      points: int = 600) -> ComputeOptimum | None:
    """The least training compute f(N)·D on the competition barrier (Eq. 5 with equality):
    Eq. 6 under any FLOP count per token; with f = 6N it is :func:`compute_optimal`. None when
    the pair never becomes synergistic (C ≤ 0, or non-positive exponents).

    On the barrier D(N) = (B / (C − A N^-α))^(1/β) for N above (A/C)^(1/α); the compute's log
    has derivative s(N) − (α/β) A N^-α / (C − A N^-α), whose root is found by bisection.
    """
    t = _interaction(term)
    if not (t.C > 0 and t.alpha > 0 and t.beta > 0):
        return None
    flops = FlopsPerToken.six() if flops is None else flops
    x0 = np.log(t.A / t.C) / t.alpha  # below this N no data suffices

    def grad(x):
        slack_share = t.A * np.exp(-t.alpha * x)
        return flops.slope(np.exp(x)) - (t.alpha / t.beta) * slack_share / (t.C - slack_share)

    grid = x0 + np.geomspace(1e-9, 200.0, points)
    g = grad(grid)
    k = int(np.argmax(g >= 0)) if np.any(g >= 0) else points - 1
    lo, hi = grid[max(k - 1, 0)], grid[k]
    if k == 0:
        lo = x0 + 1e-15
    x = float(_bisect(grad, np.float64(lo), np.float64(hi)))
    n = np.exp(x)
    d = float(competition_barrier(t, n))
    return ComputeOptimum(N=float(n), D=d, compute=float(flops(n) * d))
