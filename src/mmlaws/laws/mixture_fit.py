"""Fitting the per-modality mixture laws of :mod:`mmlaws.laws.mixture` on runs at several shares.

:func:`fit_mixture` fits, on every observed per-modality loss (and the mixture loss of runs that
logged no per-modality losses), the Huber-on-log-loss objective of Eq. 3:

    min Σ_runs Σ_k w_r · Huber_δ( log L_k(N, D; w) − log L_k,observed )

with the batched multi-start L-BFGS of :mod:`mmlaws.laws.solver` in float64. Sizes and tokens
are centred on the design (log N − c_N, log D − c_D), so that each amplitude is the term's value
at the design's centre and is not tied to its exponent (A = e^a at N = 1 is); starts are drawn on
that physical scale. The uni-modal laws
are either given (fitted on pure runs) or fitted jointly from the mixed runs, which needs no pure
run at all: a modality's own law is what its loss does as its share, and so its tokens, change.
Exponents enter through a logistic map onto :data:`~mmlaws.laws.mixture.EXPONENT_RANGE`, so
every fitted exponent is positive and bounded; one at a bound is reported, as is every parameter
the runs leave undetermined (:mod:`mmlaws.laws.identify`).

The pair's two directions of transfer are told apart only by per-modality losses; a fit on
mixture losses alone ties them (``symmetric``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mmlaws.laws import identify
from mmlaws.laws.fit import FitInfo, huber
from mmlaws.laws.forms import UnimodalLaw, check_quantity, pairs_of
from mmlaws.laws.mixture import EXPONENT_RANGE, MixtureLaw, PairMixing, Transfer
from mmlaws.laws.published import HUBER_DELTA
from mmlaws.laws.records import RunTable
from mmlaws.laws.solver import minimize_multistart

UNI = ("a", "b", "e", "alpha", "beta")
PAIR = ("alpha", "beta", "C", "a", "b", "C'", "a'", "b'")  # ' : the second direction


@dataclasses.dataclass(frozen=True)
class MixtureRuns:
    """Runs of a mixture design as columns: R runs, M modalities."""

    names: tuple[str, ...]  # [M]
    run_id: np.ndarray  # [R]
    N: np.ndarray  # [R] parameters
    D: np.ndarray  # [R] total tokens
    shares: np.ndarray  # [R, M] token shares, rows summing to 1
    losses: np.ndarray  # [R, M] per-modality loss, NaN where not observed (share 0 or not logged)
    loss: np.ndarray  # [R] the mixture's loss, NaN where not logged

    def __len__(self) -> int:
        return len(self.N)

    def take(self, idx) -> MixtureRuns:
        idx = np.asarray(idx, int)
        return dataclasses.replace(self, run_id=self.run_id[idx], N=self.N[idx], D=self.D[idx],
                                   shares=self.shares[idx], losses=self.losses[idx],
                                   loss=self.loss[idx])

    @classmethod
    def from_table(cls, table: RunTable, names: Sequence[str]) -> MixtureRuns:
        """The runs of ``table`` trained on ``names`` or a subset of them (pure runs included):
        shares from each run's tokens per dataset, per-modality losses from its
        ``loss_per_dataset``."""
        names = tuple(sorted(names))
        keep = [k for k, d in enumerate(table.datasets) if set(d) <= set(names)]
        t = table.take(keep)
        tok = np.array([[float(x.get(n, 0.0)) for n in names] for x in t.tokens]).reshape(-1,
                                                                                        len(names))
        total = tok.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError(f"runs without tokens per dataset: {t.run_id[total[:, 0] <= 0]}")
        losses = np.array([[float(x.get(n, np.nan)) for n in names] for x in t.losses])
        shares = tok / total
        losses = np.where(shares > 0, losses.reshape(shares.shape), np.nan)
        return cls(names, np.asarray(t.run_id), np.asarray(t.N, np.float64), total[:, 0],
                   shares, losses, np.asarray(t.loss, np.float64))


@dataclasses.dataclass(frozen=True)
class MixtureFit(MixtureLaw):
    """A fitted :class:`~mmlaws.laws.mixture.MixtureLaw` with its :class:`FitInfo`."""

    info: FitInfo | None = None

    def law(self) -> MixtureLaw:
        return MixtureLaw(laws=self.laws, pairs=self.pairs, quantity=self.quantity)


def _bounded(u, lo_hi):
    lo, hi = lo_hi[0], lo_hi[1]
    return lo + (hi - lo) * jax.nn.sigmoid(u)


def _unbounded(x, lo_hi):
    lo, hi = lo_hi
    t = np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 1e-9, 1 - 1e-9)
    return np.log(t) - np.log1p(-t)


def predict_all(p, log_n, log_dk, W, fixed, free, Si, Sj, sym, bounds):
    """Per-modality predictions [R, M] for the parameter vector of :func:`mixture_objective`.

    The solver passes every argument as float64, so selections are one-hot matrices (``Si``,
    ``Sj`` [M, P]: the pair's first and second modality) and flags are 0/1 (``free`` [M],
    ``sym``)."""
    M = W.shape[1]
    uni = p[: 5 * M].reshape(M, 5)
    on = free > 0.5
    a = jnp.where(on, uni[:, 0], fixed[:, 0])
    b = jnp.where(on, uni[:, 1], fixed[:, 1])
    e = jnp.where(on, uni[:, 2], fixed[:, 2])
    al = jnp.where(on, _bounded(uni[:, 3], bounds[:2]), fixed[:, 3])
    be = jnp.where(on, _bounded(uni[:, 4], bounds[:2]), fixed[:, 4])
    pred = (jnp.exp(e) + jnp.exp(a - al * log_n[:, None]) + jnp.exp(b - be * log_dk))
    q = p[5 * M:].reshape(-1, 8)
    q2 = jnp.where(sym > 0.5, q[:, 2:5], q[:, 5:8])
    alp, bep = _bounded(q[:, 0], bounds[2:]), _bounded(q[:, 1], bounds[2:])
    n_part = lambda amp: jnp.exp(amp - alp * log_n[:, None])
    wi, wj = W @ Si, W @ Sj  # [R, P]
    on_i = -q[:, 2] + n_part(q[:, 3]) + jnp.exp(q[:, 4] - bep * (log_dk @ Sj))  # [R, P]
    on_j = -q2[:, 0] + n_part(q2[:, 1]) + jnp.exp(q2[:, 2] - bep * (log_dk @ Si))
    add_i = jnp.where(wj > 0, 2.0 * wj * on_i, 0.0)
    add_j = jnp.where(wi > 0, 2.0 * wi * on_j, 0.0)
    return pred + add_i @ Si.T + add_j @ Sj.T


def mixture_objective(p, log_n, log_dk, W, log_l, observed, log_mix, mixed, weights, fixed, free,
                      Si, Sj, sym, bounds, delta):
    """Σ Huber(log-residuals) over observed per-modality losses (``observed`` [R, M], 0/1) and,
    where ``mixed`` [R], over mixture losses; parameters ``p``: [5 M] uni-modal (a, b, e, u_α,
    u_β) then [8 P] per pair (u_α, u_β, C, a, b, C', a', b'); ``fixed`` [M, 5] natural
    uni-modal parameters (log A, log B, log E, α, β) used where ``free`` is 0."""
    pred = predict_all(p, log_n, log_dk, W, fixed, free, Si, Sj, sym, bounds)
    r = jnp.log(jnp.maximum(pred, 1e-12)) - log_l
    mix = jnp.sum(jnp.where(W > 0, W * pred, 0.0), axis=1)
    r_mix = jnp.log(jnp.maximum(mix, 1e-12)) - log_mix
    per = jnp.sum(weights[:, None] * jnp.where(observed > 0.5, huber(r, delta), 0.0))
    return per + jnp.sum(weights * jnp.where(mixed > 0.5, huber(r_mix, delta), 0.0))


@dataclasses.dataclass(frozen=True)
class MixtureFitSettings:
    """How :func:`fit_mixture` fits; the one place its defaults are stated.

    - ``huber_delta``: δ of the Huber loss (the paper's 0.03, as the other fitters).
    - ``num_starts``: random starts of the multi-start solve (seeded by ``seed``), besides the
      starts built from given or pure-run laws.
    - ``symmetric``: tie the pair's two directions (None: tie them only when no mixed run has
      per-modality losses).
    """

    huber_delta: float = HUBER_DELTA
    num_starts: int = 256
    seed: int = 0
    symmetric: bool | None = None
    quantity: str = "nats"


def _starts(rng, S, M, P, lmin, lmed) -> np.ndarray:
    """[S, 5 M + 8 P] random starts: each term's value at the design's centre a fraction of the
    observed losses, exponents across the usual range."""
    lo_u, lo_i = EXPONENT_RANGE["unimodal"], EXPONENT_RANGE["interaction"]
    frac = lambda lo, hi, shape: rng.uniform(np.log(lo), np.log(hi), shape)  # log-uniform
    uni = np.stack([frac(0.01, 0.5, (S, M)) + np.log(lmin), frac(0.01, 0.5, (S, M))
                    + np.log(lmin), np.log(rng.uniform(0.3, 0.95, (S, M)) * lmin),
                    _unbounded(rng.uniform(0.1, 0.9, (S, M)), lo_u),
                    _unbounded(rng.uniform(0.1, 0.9, (S, M)), lo_u)], axis=-1)  # [S, M, 5]
    amp = lambda: frac(1e-4, 0.2, (S, P)) + np.log(lmed)
    pair = np.stack([_unbounded(rng.uniform(0.1, 0.8, (S, P)), lo_i),
                     _unbounded(rng.uniform(0.1, 0.8, (S, P)), lo_i),
                     rng.uniform(-0.1, 0.1, (S, P)) * lmed, amp(), amp(),
                     rng.uniform(-0.1, 0.1, (S, P)) * lmed, amp(), amp()], axis=-1)
    return np.concatenate([uni.reshape(S, -1), pair.reshape(S, -1)], axis=1)


def _bucket(n: int) -> int:
    """The padded number of rows: the next power of two, at least 16."""
    return max(16, 1 << (n - 1).bit_length())


def _natural(law: UnimodalLaw, c_n: float = 0.0, c_d: float = 0.0) -> list[float]:
    """(a, b, e, α, β) of a law with sizes and tokens centred at (c_n, c_d)."""
    return [np.log(law.A) - law.alpha * c_n, np.log(law.B) - law.beta * c_d, np.log(law.E),
            law.alpha, law.beta]


@dataclasses.dataclass(frozen=True)
class _Problem:
    """A mixture fit's data as the objective takes it, and what the fit needs to read it back."""

    pairs: list[tuple[str, str]]
    observed: np.ndarray  # [R, M] per-modality losses fitted
    mixed: np.ndarray  # [R] mixture losses fitted (runs without per-modality losses)
    free: np.ndarray  # [M] uni-modal laws fitted (not given)
    sym: bool  # the pair's two directions tied
    c_n: float  # centre of log N
    c_d: float  # centre of log tokens
    args: tuple  # the objective's arguments, rows padded


def _problem(runs: MixtureRuns, laws: Mapping[str, UnimodalLaw], weights,
             settings: MixtureFitSettings) -> _Problem:
    names, M, W = runs.names, len(runs.names), np.asarray(runs.shares, np.float64)
    observed = np.isfinite(runs.losses) & (W > 0)
    mixed = ~observed.any(axis=1) & np.isfinite(runs.loss)
    if not np.all(np.isfinite(runs.N) & (runs.N > 0) & np.isfinite(runs.D) & (runs.D > 0)):
        raise ValueError("every run needs a positive N and D")
    if np.any(runs.losses[observed] <= 0) or np.any(runs.loss[mixed] <= 0):
        raise ValueError("losses must be positive")
    w = np.ones(len(W)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(W),):
        raise ValueError(f"weights has shape {w.shape} for {len(W)} runs")
    pairs = [p for p in pairs_of(names) if np.any((W[:, names.index(p[0])] > 0)
                                                  & (W[:, names.index(p[1])] > 0))]
    pi = np.array([names.index(i) for i, _ in pairs], int)
    pj = np.array([names.index(j) for _, j in pairs], int)
    both = ((W[:, pi] > 0) & (W[:, pj] > 0)).any(axis=1)
    directional = bool(pairs) and bool(observed[both].all(axis=1).any())
    sym = (not directional) if settings.symmetric is None else settings.symmetric
    free = np.array([k not in laws for k in names])
    n_obs, n_free = int(observed.sum() + mixed.sum()), 5 * int(free.sum()) + len(pairs) * (
        5 if sym else 8)
    if n_obs <= n_free:
        raise ValueError(f"{n_obs} observed losses cannot determine {n_free} parameters")
    c_n = float(np.mean(np.log(runs.N)))
    c_d = float(np.mean(np.log((W * runs.D[:, None])[W > 0])))
    fixed = np.array([_natural(laws[k], c_n, c_d) if k in laws else [0.0] * 5 for k in names])
    log_dk = np.where(W > 0, np.log(np.where(W > 0, W * runs.D[:, None], 1.0)) - c_d, 0.0)
    pad = _bucket(len(W)) - len(W)  # zero-weight rows: fits of similar size share a compilation
    rows = lambda a: np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])
    bounds = np.array([*EXPONENT_RANGE["unimodal"], *EXPONENT_RANGE["interaction"]])
    args = (rows(np.log(runs.N) - c_n), rows(log_dk), rows(W),
            rows(np.log(np.where(observed, runs.losses, 1.0))), rows(observed.astype(float)),
            rows(np.log(np.where(mixed, runs.loss, 1.0))), rows(mixed.astype(float)), rows(w),
            fixed, free.astype(float), np.eye(M)[:, pi], np.eye(M)[:, pj], np.float64(sym),
            bounds, np.float64(settings.huber_delta))
    return _Problem(pairs, observed, mixed, free, sym, c_n, c_d, args)


def _start_rows(runs: MixtureRuns, prob: _Problem, start_laws, settings) -> np.ndarray:
    """Random starts, and with ``start_laws`` one more: those laws, the interactions of the
    first random row."""
    M, observed = len(runs.names), prob.observed
    lmin = np.array([np.min(runs.losses[observed[:, k], k]) if observed[:, k].any()
                     else np.nanmin(runs.loss) for k in range(M)])
    lmed = float(np.median(runs.losses[observed]) if observed.any() else np.median(runs.loss))
    starts = _starts(np.random.default_rng(settings.seed), settings.num_starts, M,
                     len(prob.pairs), lmin, lmed)
    if not start_laws:
        return starts
    row, lo_u = starts[0].copy(), EXPONENT_RANGE["unimodal"]
    for k, name in enumerate(runs.names):
        if name in start_laws:
            law = start_laws[name]
            row[5 * k: 5 * k + 5] = _natural(law, prob.c_n, prob.c_d)[:3] + [
                _unbounded(law.alpha, lo_u), _unbounded(law.beta, lo_u)]
    return np.concatenate([row[None], starts])


def fit_mixture(
    runs: MixtureRuns, *, laws: Mapping[str, UnimodalLaw] | None = None,
    start_laws: Mapping[str, UnimodalLaw] | None = None, weights=None,
    settings: MixtureFitSettings = MixtureFitSettings(),
) -> MixtureFit:
    """Fits the per-modality mixture laws of ``runs`` (module docstring).

    Args:
      runs: the design's runs (:meth:`MixtureRuns.from_table`), mixed and pure.
      laws: uni-modal laws held fixed (e.g. fitted on pure runs); modalities without one are
        fitted jointly with the interactions. None: all fitted jointly.
      start_laws: uni-modal laws to start the joint fit from (besides random starts).
      weights: [R] weight of each run's residuals.
    """
    check_quantity(settings.quantity)
    laws = dict(laws or {})
    prob = _problem(runs, laws, weights, settings)
    res = minimize_multistart(mixture_objective, _start_rows(runs, prob, start_laws, settings),
                              prob.args)
    p = res.params[res.best]
    law = _law_from(p, runs.names, prob.pairs, laws, prob.free, prob.sym, settings.quantity,
                    prob.c_n, prob.c_d)
    warn, edge = _identification(law, p, prob.args, runs, prob.observed, prob.mixed,
                                 prob.pairs, prob.free, prob.sym, settings.huber_delta)
    info = FitInfo(objective=float(res.values[res.best]), num_starts=len(res.values),
                   num_converged=res.num_converged, on_boundary=tuple(edge),
                   huber_delta=float(settings.huber_delta), num_runs=len(runs),
                   outcomes=res.outcomes(), warnings=tuple(dict.fromkeys(warn)))
    return MixtureFit(laws=law.laws, pairs=law.pairs, quantity=law.quantity, info=info)


def _law_from(p, names, pairs, fixed_laws, free, sym, quantity, c_n, c_d) -> MixtureLaw:
    """The law of parameter vector ``p`` (sizes and tokens centred at c_n, c_d)."""
    lo_u, lo_i = EXPONENT_RANGE["unimodal"], EXPONENT_RANGE["interaction"]
    sig = lambda u, r: float(r[0] + (r[1] - r[0]) / (1.0 + np.exp(-u)))
    laws = {}
    for k, name in enumerate(names):
        if not free[k]:
            law = fixed_laws[name]
            laws[name] = UnimodalLaw(**law.as_dict(), source=law.source, quantity=quantity)
            continue
        a, b, e, ua, ub = p[5 * k: 5 * k + 5]
        al, be = sig(ua, lo_u), sig(ub, lo_u)
        laws[name] = UnimodalLaw(E=float(np.exp(e)), A=float(np.exp(a + al * c_n)),
                                 B=float(np.exp(b + be * c_d)), alpha=al, beta=be,
                                 source="fitted jointly from mixture runs", quantity=quantity)
    mix = {}
    for k, pair in enumerate(pairs):
        q = p[5 * len(names) + 8 * k: 5 * len(names) + 8 * k + 8]
        second = q[2:5] if sym else q[5:8]
        al, be = sig(q[0], lo_i), sig(q[1], lo_i)
        t = lambda c, a, b, al=al, be=be: Transfer(
            C=float(c), A=float(np.exp(a + al * c_n)), B=float(np.exp(b + be * c_d)))
        mix[pair] = PairMixing(names=pair, alpha=al, beta=be, on_first=t(*q[2:5]),
                               on_second=t(*second))
    return MixtureLaw(laws=laws, pairs=mix, quantity=quantity)


def _identification(law, p, args, runs, observed, mixed, pairs, free, sym, delta):
    """(warnings, parameters at a bound of their stated range) of a mixture fit."""
    names, M = runs.names, len(runs.names)
    lo_u, lo_i = EXPONENT_RANGE["unimodal"], EXPONENT_RANGE["interaction"]
    idx, labels, kinds, shown, scale, edge = [], [], [], [], [], []

    def add(i, label, kind, value=None, rng=None):
        idx.append(i)
        labels.append(label)
        kinds.append(kind)
        shown.append(p[i] if value is None else value)
        if rng is None:
            scale.append(1.0)
            return
        t = (value - rng[0]) / (rng[1] - rng[0])
        scale.append((rng[1] - rng[0]) * t * (1 - t))
        if t < 1e-3 or t > 1 - 1e-3:
            edge.append(label)

    for k, name in enumerate(names):
        if free[k]:
            u = law.laws[name]
            for j, (n, kind) in enumerate(zip(UNI[:3], ("log", "log", "E"), strict=True)):
                add(5 * k + j, f"{n}[{name}]", kind)
            add(5 * k + 3, f"alpha[{name}]", "exp", u.alpha, lo_u)
            add(5 * k + 4, f"beta[{name}]", "exp", u.beta, lo_u)
    for k, pair in enumerate(pairs):
        base, tag, m = 5 * M + 8 * k, "|".join(pair), law.pairs[pair]
        add(base, f"alpha[{tag}]", "exp", m.alpha, lo_i)
        add(base + 1, f"beta[{tag}]", "exp", m.beta, lo_i)
        for j, kind in zip(range(2, 5 if sym else 8), ("C", "log", "log") * 2, strict=False):
            arrow = f"{pair[0]}←{pair[1]}" if j < 5 else f"{pair[1]}←{pair[0]}"
            add(base + j, f"{PAIR[j][0]}[{arrow}]", kind)
    R = len(runs)
    with jax.enable_x64(True):
        pred = np.asarray(predict_all(*(jnp.asarray(args[k]) if k >= 0 else jnp.asarray(p)
                                        for k in (-1, 0, 1, 2, 8, 9, 10, 11, 12, 13))))[:R]
    r = (np.log(np.maximum(pred, 1e-12)) - args[3][:R])[observed]
    mix = np.sum(np.where(runs.shares > 0, runs.shares * pred, 0.0), axis=1)
    r = np.concatenate([r, (np.log(np.maximum(mix, 1e-12)) - args[5][:R])[mixed]])
    lo_hi = {lab: (lo_u if "[" in lab and lab.split("[")[1][:-1] in names else lo_i)
             for lab in edge}
    warn = identify.design_warnings(_variables(runs, observed, pairs),
                                    _exponents(names, free, pairs))
    warn += identify.value_warnings({}, edge, lo_hi, what="stated range")
    level = runs.losses[observed] if observed.any() else runs.loss[mixed]
    warn += identify.flat_warnings(
        mixture_objective, p, args, r, names=labels, kinds=kinds, huber_delta=delta, free=idx,
        shown=shown, scale=scale, c_scale=identify.residual_scale(level))
    return warn, edge


def _variables(runs: MixtureRuns, observed, pairs) -> dict:
    names = runs.names
    tokens = runs.shares * runs.D[:, None]
    out = {"N": runs.N}
    for k, n in enumerate(names):
        out[f"D[{n}]"] = tokens[observed[:, k], k]
    for i, j in pairs:
        both = (runs.shares[:, names.index(i)] > 0) & (runs.shares[:, names.index(j)] > 0)
        out[f"D[{i}|{j}]"] = np.concatenate([tokens[both, names.index(i)],
                                             tokens[both, names.index(j)]])
    return out


def _exponents(names, free, pairs) -> dict:
    out = {}
    for k, n in enumerate(names):
        if free[k]:
            out[f"alpha[{n}]"], out[f"beta[{n}]"] = "N", f"D[{n}]"
    for i, j in pairs:
        out[f"alpha[{i}|{j}]"], out[f"beta[{i}|{j}]"] = "N", f"D[{i}|{j}]"
    return out
