"""Per-modality mixture laws: each modality's loss inside a mixture, and the mixture's from them.

For a model of N parameters trained on D tokens split by shares w (Σ_k w_k = 1), modality k's
loss on its own held-out data is

    L_k(N, D; w) = L_k^uni(N, w_k D)  +  Σ_{l ≠ k} 2 w_l · T_{k←l}(N, w_l D)
    T_{k←l}(N, D_l) = −C_{k←l} + A_{k←l} / N^α_kl + B_{k←l} / D_l^β_kl

and the mixture's loss is their token-weighted sum, L(N, D; w) = Σ_k w_k L_k(N, D; w).

- ``L_k^uni`` is modality k's own law (Eq. 2) at its own tokens w_k D: what a model trained on
  k alone with those tokens would reach.
- ``T_{k←l}`` is the transfer from modality l's tokens to modality k's loss: −C is the best
  possible gain of sharing (C > 0: synergy), A/N^α the capacity the two compete for, and
  B/D_l^β how the effect of l's tokens on k changes with their amount. Its form is Eq. 4's
  interaction term (Aghajanyan et al. 2023); that the transfer is a power law of the *source's*
  tokens is the effective-data-transferred view of Hernandez et al. (2021, "Scaling Laws for
  Transfer"); that a modality's loss in a mixture is a function of the other domains'
  proportions is Ye et al. (2024, "Data Mixing Laws"), whose exp(Σ_l t_kl w_l) we take to first
  order: the transfer grows linearly with the source's share w_l (2 w_l is 1 at 50/50).
- The amplitudes (C, A, B) are directional, k←l and l←k, and the exponents (α_kl, β_kl) are
  the pair's. For two modalities at 50/50 the mixture loss is then exactly Eq. 4:
  ½[L_i(N, D/2) + L_j(N, D/2)] − C_ij + A_ij/N^α + B_ij/D^β with C_ij = ½(C_{i←j} + C_{j←i}),
  A_ij = ½(A_{i←j} + A_{j←i}), B_ij = 2^β · ½(B_{i←j} + B_{j←i}).
- Shares enter asymmetrically: a modality's loss carries its partner's share, and the data terms
  carry each source's own tokens, so shares 0.375 and 0.625 are not forced to the same
  interaction (the n-modal law's 4 w_k w_l (D_k + D_l) term is symmetric in them).
- Identifiability: fitted exponents are bounded, positive and inside :data:`EXPONENT_RANGE`;
  with β_kl < 1 a transfer vanishes as its source's share goes to 0 (w_l · w_l^{-β} → 0).

A law object predicts whatever its coefficients were fitted on (``quantity``: nats by default).
Fitting is :mod:`mmlaws.laws.mixture_fit`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.laws.forms import (
    BimodalLaw,
    Interaction,
    NModalLaw,
    UnimodalLaw,
    check_quantity,
    share_arrays,
)
from mmlaws.laws.optimal import PowerSum

# The stated range of fitted exponents: the uni-modal ones (as Hoffmann's start grid, [0, 2],
# kept off 0) and the interaction's, below 1 so that a transfer vanishes with its source.
EXPONENT_RANGE = {"unimodal": (0.01, 2.0), "interaction": (0.02, 0.98)}


@dataclasses.dataclass(frozen=True)
class Transfer:
    """Amplitudes of one direction of a pair's interaction: ``−C + A/N^α + B/D_source^β``."""

    C: float
    A: float
    B: float


@dataclasses.dataclass(frozen=True)
class PairMixing:
    """A pair's interaction in a mixture: shared exponents, one :class:`Transfer` per direction.

    ``on_first`` is the second modality's tokens acting on the first's loss, ``on_second`` the
    reverse.
    """

    names: tuple[str, str]
    alpha: float
    beta: float
    on_first: Transfer
    on_second: Transfer

    def term(self, target: str) -> tuple[Transfer, str]:
        """(the transfer onto ``target``, the modality whose tokens it comes from)."""
        i, j = self.names
        return (self.on_first, j) if target == i else (self.on_second, i)

    def value(self, target: str, N, D_source) -> np.ndarray:
        """T_{target←source}(N, D_source)."""
        t, _ = self.term(target)
        N, D_source = np.asarray(N, np.float64), np.asarray(D_source, np.float64)
        return -t.C + t.A / N**self.alpha + t.B / D_source**self.beta

    def effective(self, w_first: float) -> Interaction:
        """The pair's Eq. 4-form interaction at shares (w_first, 1 − w_first) of the pair:
        its contribution to the pair's loss is 4 w_i w_j [−C + A/N^α + B/D^β] with D the pair's
        tokens, so that Eq. 5 (synergy), the barrier and Eq. 6 apply unchanged; at 50/50 it is
        Eq. 4's term."""
        wi = float(w_first)
        wj = 1.0 - wi
        if not 0 < wi < 1:
            raise ValueError(f"share {wi} of {self.names[0]}: the pair needs both modalities")
        a, b = self.on_first, self.on_second
        return Interaction(C=0.5 * (a.C + b.C), A=0.5 * (a.A + b.A),
                           B=0.5 * (a.B * wj**-self.beta + b.B * wi**-self.beta),
                           alpha=self.alpha, beta=self.beta)

    def as_dict(self) -> dict:
        return {"names": list(self.names), "alpha": self.alpha, "beta": self.beta,
                "on_first": dataclasses.asdict(self.on_first),
                "on_second": dataclasses.asdict(self.on_second)}

    @classmethod
    def from_dict(cls, d: Mapping) -> PairMixing:
        return cls(names=tuple(d["names"]), alpha=float(d["alpha"]), beta=float(d["beta"]),
                   on_first=Transfer(**d["on_first"]), on_second=Transfer(**d["on_second"]))

    @classmethod
    def from_interaction(cls, names: tuple[str, str], t: Interaction) -> PairMixing:
        """Eq. 4's symmetric term as a mixture pair: equal transfers with B/2^β, so that at
        50/50 the mixture law equals Eq. 4 exactly (other shares follow the module's form)."""
        same = Transfer(C=t.C, A=t.A, B=t.B / 2.0**t.beta)
        return cls(names=tuple(names), alpha=t.alpha, beta=t.beta, on_first=same,
                   on_second=same)


@dataclasses.dataclass(frozen=True)
class MixtureLaw:
    """Per-modality losses in a mixture and the mixture's loss (module docstring)."""

    laws: Mapping[str, UnimodalLaw]
    pairs: Mapping[tuple[str, str], PairMixing]
    quantity: str = "nats"

    def __post_init__(self):
        check_quantity(self.quantity)
        for pair in self.pairs:
            missing = [k for k in pair if k not in self.laws]
            if missing:
                raise ValueError(f"pair {pair} has no uni-modal law for {missing}")

    def _shares(self, shares) -> dict[str, np.ndarray]:
        w = share_arrays(shares)
        unknown = sorted(set(w) - set(self.laws))
        if unknown:
            raise ValueError(f"no law for {unknown}; the mixture law has {sorted(self.laws)}")
        return w

    def predict_modalities(self, N, D, shares) -> dict[str, np.ndarray]:
        """Each modality's loss, broadcast over N, D and the shares; NaN where its share is 0.

        ``shares``: name → share (numbers or arrays), or one mapping per run.
        """
        w = self._shares(shares)
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        out = {}
        for k, wk in w.items():
            present = wk > 0
            loss = self.laws[k].predict(N, np.where(present, wk * D, 1.0))
            for pair in self.pairs:
                if k not in pair:
                    continue
                _, src = self.pairs[pair].term(k)
                wl = w.get(src, np.zeros(()))
                has = wl > 0
                t = self.pairs[pair].value(k, N, np.where(has, wl * D, 1.0))
                loss = loss + np.where(has, 2.0 * wl * t, 0.0)
            out[k] = np.where(present, loss, np.nan)
        return out

    def predict(self, N, D, shares) -> np.ndarray:
        """The mixture's loss Σ_k w_k L_k(N, D; w), broadcast over N, D and the shares."""
        w = self._shares(shares)
        per = self.predict_modalities(N, D, w)
        return sum(np.where(w[k] > 0, w[k] * np.nan_to_num(per[k], nan=0.0), 0.0) for k in w)

    def independent(self, N, D, shares) -> np.ndarray:
        """Σ_k w_k L_k^uni(N, w_k D): separate models on the same per-modality tokens."""
        w = self._shares(shares)
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        return sum(np.where(w[k] > 0, w[k] * self.laws[k].predict(N, np.where(
            w[k] > 0, w[k] * D, 1.0)), 0.0) for k in w)

    def pair_interaction(self, pair: tuple[str, str], shares: Mapping[str, float]) -> Interaction:
        """The pair's effective Eq. 4 term at these shares (:meth:`PairMixing.effective`)."""
        p = self.pairs[tuple(pair)]
        wi, wj = float(shares[p.names[0]]), float(shares[p.names[1]])
        return p.effective(wi / (wi + wj))

    def at_shares(self, shares: Mapping[str, float], modality: str | None = None) -> PowerSum:
        """The mixture's loss (or one ``modality``'s) at fixed shares as a sum of powers of N and
        of the total tokens D (what :func:`mmlaws.laws.optimal.allocate` minimises)."""
        w = {k: float(v) for k, v in self._shares(shares).items() if float(v) > 0}
        targets = [modality] if modality else list(w)
        const, n_terms, d_terms = 0.0, [], []
        for k in targets:
            wt = 1.0 if modality else w[k]
            law = self.laws[k]
            const += wt * law.E
            n_terms.append((wt * law.A, law.alpha))
            d_terms.append((wt * law.B * w[k] ** -law.beta, law.beta))
            for pair, p in self.pairs.items():
                if k not in pair:
                    continue
                t, src = p.term(k)
                if src not in w:
                    continue
                s = wt * 2.0 * w[src]
                const -= s * t.C
                n_terms.append((s * t.A, p.alpha))
                d_terms.append((s * t.B * w[src] ** -p.beta, p.beta))
        return PowerSum.of(const, n_terms, d_terms)

    @classmethod
    def from_bimodal(cls, pairs: Sequence[BimodalLaw], laws: Mapping[str, UnimodalLaw] = ()
                     ) -> MixtureLaw:
        """Eq. 4 laws as a mixture law, exact at 50/50 (:meth:`PairMixing.from_interaction`)."""
        uni = dict(laws)
        mix = {}
        for p in pairs:
            uni.setdefault(p.names[0], p.law_i)
            uni.setdefault(p.names[1], p.law_j)
            mix[tuple(p.names)] = PairMixing.from_interaction(tuple(p.names), p.interaction)
        return cls(laws=uni, pairs=mix, quantity=_quantity(uni.values()))

    @classmethod
    def from_nmodal(cls, law: NModalLaw) -> MixtureLaw:
        """The n-modal law's pairs as mixture pairs: equal to it for any two modalities at
        50/50, and following this module's share dependence elsewhere."""
        pairs = {tuple(p): PairMixing.from_interaction(tuple(p), t)
                 for p, t in law.interactions.items()}
        return cls(laws=dict(law.laws), pairs=pairs, quantity=_quantity(law.laws.values()))

    def as_dict(self) -> dict:
        return {"form": "mixture", "quantity": self.quantity,
                "laws": {k: {**v.as_dict(), "source": v.source} for k, v in self.laws.items()},
                "pairs": {"|".join(k): v.as_dict() for k, v in self.pairs.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> MixtureLaw:
        q = d.get("quantity", "nats")
        laws = {k: UnimodalLaw(**{f: float(v[f]) for f in ("E", "A", "B", "alpha", "beta")},
                               source=str(v.get("source", "")), quantity=q)
                for k, v in d["laws"].items()}
        pairs = {tuple(k.split("|")): PairMixing.from_dict(v) for k, v in d["pairs"].items()}
        return cls(laws=laws, pairs=pairs, quantity=q)


def _quantity(laws) -> str:
    kinds = {law.quantity for law in laws}
    if len(kinds) > 1:
        raise ValueError(f"laws predict different quantities {sorted(kinds)}; convert first")
    return kinds.pop() if kinds else "nats"
