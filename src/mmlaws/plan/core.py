"""A plan: from a budget, a modality mix and laws to N, D, loss, barrier, architecture and bill.

:func:`plan` minimises the mix's loss (the token-weighted sum of the per-modality mixture laws,
:mod:`mmlaws.laws.mixture`, in the laws' own quantity) on the budget's training FLOPs, counted as
the real training FLOPs per token of the Table 2 / OPT-family architectures interpolated in N
(or as 6N), with :func:`mmlaws.laws.allocate`. It then reports the losses per modality and
overall (with intervals from the laws' bootstrap replicates when they carry them), each pair's
competition barrier at the plan and the cheapest budget that crosses it (Eq. 6 under 6ND, and
under the real count), the nearest architecture and what it reaches on the same budget, time and
accelerator-hours at the MFU, the tokens each modality needs against what the built datasets
hold, and on request the memory plan on a named mesh and the data-constrained losses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from mmlaws.errors import ConfigError
from mmlaws.laws.forms import to_nats
from mmlaws.laws.mixture import MixtureLaw
from mmlaws.laws.optimal import (
    FlopsPerToken,
    PowerSum,
    allocate,
    cheapest_crossing,
    compute_optimal,
)
from mmlaws.laws.published import MUENNIGHOFF_R_STAR, PUBLISHED_QUANTITY, TABLE1
from mmlaws.model import counting
from mmlaws.model.presets import ARCHITECTURES, paper_config
from mmlaws.plan.laws_source import LawSet, load_laws
from mmlaws.plan.settings import Budget, PlanSettings

UNITS_NOTE = ("Table 1 and Table 3 predict perplexity, not nats per token (the evidence is in "
              "mmlaws.laws.published); nats = ln(perplexity)")


def architectures() -> list[dict]:
    """Table 2 and the larger OPT rows: name, shape, exact parameter counts, FLOPs per token."""
    out = []
    for row in ARCHITECTURES:
        cfg = paper_config(row)
        out.append({"name": row.name, "layers": row.num_layers, "d_model": row.d_model,
                    "heads": row.num_heads, "d_head": row.d_head, "context": row.context,
                    "batch_tokens": row.batch_tokens, "peak_lr": row.peak_lr,
                    "total_params": counting.total_params(cfg),
                    "non_embedding_params": counting.non_embedding_params(cfg),
                    "flops_per_token": counting.training_flops_per_token(cfg)})
    return out


def flop_model(kind: str) -> FlopsPerToken:
    if kind == "6N":
        return FlopsPerToken.six()
    arch = architectures()
    return FlopsPerToken.from_points([a["total_params"] for a in arch],
                                     [a["flops_per_token"] for a in arch],
                                     "Table 2 / OPT architectures (training_flops_per_token)")


def check_mix(mix: Mapping[str, float], laws: LawSet) -> dict[str, float]:
    """The mix as law names → shares; :class:`ConfigError` naming the culprit otherwise."""
    if not mix:
        raise ConfigError("mix: no modality given")
    known = set(TABLE1) | set(laws.aliases) | set(laws.law.laws)
    out = {}
    for name, share in mix.items():
        if name not in known:
            raise ConfigError(f"mix: unknown modality {name!r} (known: {', '.join(sorted(known))})")
        if laws.name_of(name) not in laws.law.laws:
            raise ConfigError(f"mix: modality {name!r} has no law in {laws.source} (it has "
                              f"{', '.join(sorted(laws.law.laws))})")
        if not (isinstance(share, int | float) and math.isfinite(share) and share >= 0):
            raise ConfigError(f"mix: share of {name!r} is {share!r}; shares are numbers >= 0")
        out[laws.name_of(name)] = float(share)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"mix: shares sum to {total:.6g}, not 1 "
                          f"({', '.join(f'{k}={v:g}' for k, v in mix.items())})")
    return {k: v for k, v in out.items() if v > 0}


def _interval(values, level: float):
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None
    q = 0.5 * (1 - level)
    return [float(np.quantile(v, q)), float(np.quantile(v, 1 - q))]


def _losses(law: MixtureLaw, N, D, mix) -> dict:
    """Per-modality losses, the law's aggregate and the mixture's nats at (N, D)."""
    per = {k: float(v) for k, v in law.predict_modalities(N, D, mix).items()}
    nats = {k: float(to_nats(v, law.quantity)) for k, v in per.items()}
    return {"per": per, "nats": nats, "aggregate": float(law.predict(N, D, mix)),
            "overall_nats": float(sum(mix[k] * nats[k] for k in mix))}


def _loss_report(laws: LawSet, N, D, mix, level) -> tuple[dict, list[str]]:
    q = laws.quantity
    mid = _losses(laws.law, N, D, mix)
    reps = [_losses(r, N, D, mix) for r in laws.samples]
    warn = []
    per = {}
    for k in mix:
        entry = {"value": mid["per"][k], "nats": mid["nats"][k],
                 "perplexity": math.exp(mid["nats"][k])}
        if reps:
            entry["interval"] = _interval([r["per"][k] for r in reps], level)
        per[k] = entry
        if q == "perplexity" and mid["per"][k] < 1:
            warn.append(f"{k}: predicted perplexity {mid['per'][k]:.3g} < 1 is impossible; "
                        "the law is outside its valid range here")
    # "value": Σ w_k 𝓛_k in the laws' quantity (what Eq. 4 averages and the plan minimises);
    # "nats": the mixture's loss per token, Σ w_k ln 𝓛_k for perplexities; "perplexity": its exp.
    overall = {"value": mid["aggregate"], "nats": mid["overall_nats"],
               "perplexity": math.exp(mid["overall_nats"])}
    if reps:
        overall["interval"] = _interval([r["aggregate"] for r in reps], level)
    independent = float(laws.law.independent(N, D, mix))
    return {"quantity": q, "per_modality": per, "overall": overall,
            "independent": independent}, warn


def _optimum(laws: LawSet, mix, compute, flops: FlopsPerToken, level) -> dict:
    best = allocate(laws.law.at_shares(mix), compute, flops)
    out = {"N": float(best.N), "D": float(best.D), "at_edge": bool(best.at_edge),
           "tokens": {k: float(best.D) * w for k, w in mix.items()}}
    if laws.samples:
        reps = allocate(PowerSum.stack([r.at_shares(mix) for r in laws.samples]), compute, flops)
        out["interval"] = {"N": _interval(reps.N, level), "D": _interval(reps.D, level)}
    return out


def _pairs(laws: LawSet, mix, N, D, flops: FlopsPerToken) -> dict:
    out = {}
    names = sorted(mix)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            pair = (names[a], names[b])
            key = "|".join(pair)
            if pair not in laws.law.pairs:
                out[key] = {"interaction": None, "note": f"no interaction terms for {key} in "
                            f"{laws.source}; the loss is the independent models' and the "
                            "barrier is unknown"}
                continue
            term = laws.law.pair_interaction(pair, mix)
            within = mix[pair[0]] + mix[pair[1]]  # the pair's share of the mix's tokens
            d_pair = D * within
            entry = {"interaction": laws.pair_origin.get(pair, "mixture law"),
                     "effective": dataclasses.asdict(term),
                     "gap": float(term.value(N, d_pair)),
                     "synergistic": bool(term.C > term.cost(N, d_pair))}
            six = compute_optimal(term) if term.C > 0 and term.alpha > 0 and term.beta > 0 \
                else None
            real = cheapest_crossing(term, flops)
            entry["eq6"] = None if six is None else {
                "N": six.N, "D_pair": six.D, "compute_6ND": six.compute / within}
            entry["crossing"] = None if real is None else {
                "N": real.N, "D_pair": real.D, "compute": real.compute / within,
                "counted_as": flops.name or "6N"}
            if real is None and term.C <= 0:
                entry["note"] = f"C = {term.C:.3g} ≤ 0: the pair never becomes synergistic"
            elif real is None:
                entry["note"] = (f"α = {term.alpha:.3g}, β = {term.beta:.3g}: an exponent ≤ 0 "
                                 "is not a scaling law; the barrier is undefined")
            out[key] = entry
    return out


def _architecture(N_opt: float, compute: float, laws: LawSet, mix) -> dict:
    arch = architectures()
    near = min(arch, key=lambda a: abs(math.log(a["total_params"] / N_opt)))
    tokens = compute / near["flops_per_token"]
    losses = _losses(laws.law, near["total_params"], tokens, mix)
    return {**near, "tokens": tokens, "steps": tokens / near["batch_tokens"],
            "loss": {"value": losses["aggregate"], "nats": losses["overall_nats"],
                     "per_modality": losses["per"]}}


def _data(tokens: Mapping[str, float], settings: PlanSettings, mix_names: Mapping[str, str]):
    """Tokens available per modality in the built datasets, and the epochs the plan implies."""
    from mmlaws.data.shards import read_stats

    out, warn = {}, []
    for law_name, need in tokens.items():
        name = mix_names[law_name]
        stats = read_stats(settings.data_dir, name)
        have = float(stats["splits"][settings.split]["tokens"])
        epochs = need / have if have > 0 else math.inf
        out[law_name] = {"dataset": name, "tokens_needed": need, "tokens_available": have,
                         "epochs": epochs}
        if epochs > settings.max_epochs:
            warn.append(f"{name}: {epochs:.3g} epochs of its {have:.3g} tokens; past "
                        f"~{settings.max_epochs:g} repeats are worth less than new data "
                        "(Muennighoff et al. 2023; --data_constrained predicts it)")
    return out, warn


def effective_tokens(needed: float, unique: float) -> float:
    """Muennighoff et al. (2023), Eq. 5: D' = U + U R*_D (1 − exp(−R_D / R*_D)), with U unique
    tokens and R_D = D/U − 1 repetitions; D' = D when nothing repeats."""
    if needed <= unique:
        return needed
    r_star = MUENNIGHOFF_R_STAR["D"]
    return unique + unique * r_star * (1.0 - math.exp(-(needed / unique - 1.0) / r_star))


def _constrained(laws: LawSet, N, D, mix, data: dict) -> dict:
    """Per-modality losses with each modality's own data term at its effective tokens (the
    parameter-side correction of Muennighoff et al. is not applied; interactions unchanged)."""
    per = {}
    for k, w in mix.items():
        law = laws.law.laws[k]
        eff = effective_tokens(w * D, data[k]["tokens_available"])
        delta = law.B * (eff**-law.beta - (w * D) ** -law.beta)
        value = float(laws.law.predict_modalities(N, D, mix)[k] + delta)
        per[k] = {"effective_tokens": eff, "value": value,
                  "nats": float(to_nats(value, laws.quantity))}
    return {"per_modality": per, "note": "each modality's B/D^β at Muennighoff's effective "
            "data D'; excess-parameter correction not applied"}


def plan(mix: Mapping[str, float], budget: Budget, laws: str | LawSet = "table1",
         settings: PlanSettings = PlanSettings()) -> dict:
    """The plan for ``mix`` on ``budget`` with ``laws`` (a :class:`LawSet` or what
    :func:`load_laws` reads); a JSON-ready dict (render it with :mod:`mmlaws.plan.render`)."""
    laws = laws if isinstance(laws, LawSet) else load_laws(laws)
    shares = check_mix(mix, laws)
    names = {laws.name_of(k): k for k in mix}
    flops = flop_model(settings.flops)
    compute = budget.compute
    best = _optimum(laws, shares, compute, flops, settings.level)
    N, D = best["N"], best["D"]
    loss, warn = _loss_report(laws, N, D, shares, settings.level)
    out = {"mix": {names[k]: v for k, v in shares.items()},
           "laws": {"source": laws.source, "quantity": laws.quantity,
                    "units": UNITS_NOTE if laws.quantity == PUBLISHED_QUANTITY else
                    f"the laws were fitted on {laws.quantity}",
                    "intervals": f"{settings.level:.0%} over {len(laws.samples)} bootstrap "
                    "replicates" if laws.samples else "none (the laws carry no replicates)"},
           "budget": {"flops": compute, **({"hours": budget.hours} if budget.hours else {})},
           "flop_count": flops.name or "6N", "optimum": best, "loss": loss,
           "pairs": _pairs(laws, shares, N, D, flops),
           "architecture": _architecture(N, compute, laws, shares),
           "time": budget.time(compute)}
    if best["at_edge"]:
        warn.append("the optimum lies at the end of the scanned model sizes (1e3 to 1e16)")
    for key, p in out["pairs"].items():
        i, j = key.split("|")
        if (p["interaction"] or "").startswith("Eq. 4") and abs(shares[i] - shares[j]) > 1e-9:
            warn.append(f"{key}: interaction fitted at 50/50 only; other shares follow the "
                        "mixture law's share dependence (mmlaws.laws.mixture)")
    warn += [f"pair {k}: {p['note']}" for k, p in out["pairs"].items()
             if p["interaction"] and "exponent" in p.get("note", "")]
    for name, w in laws.warnings.items():
        if any(part in shares for part in name.split("|")):
            warn += [f"law {name}: {x}" for x in w]
    if settings.mesh is not None:
        out["memory"] = memory(out["architecture"], settings)
    if settings.data_dir is not None:
        out["data"], more = _data(best["tokens"], settings, names)
        warn += more
        if settings.data_constrained:
            out["data_constrained"] = _constrained(laws, N, D, shares, out["data"])
    elif settings.data_constrained:
        raise ConfigError("data_constrained needs data_dir (the datasets' token counts)")
    out["warnings"] = warn
    return out


def memory(arch: dict, settings: PlanSettings) -> dict:
    """The nearest architecture's train step compiled on ``settings.mesh``
    (:func:`mmlaws.train.memory.plan_memory`): per-device bytes and whether they fit."""
    from mmlaws.train.memory import plan_memory

    batch = settings.batch or arch["batch_tokens"] // arch["context"]
    m = plan_memory(arch["name"], dict(settings.mesh), batch=batch,
                    sequence_length=arch["context"], device_gb=settings.device_gb,
                    micro_batches=settings.micro_batches, remat=settings.remat)
    return {"preset": arch["name"], "mesh": dict(settings.mesh), "batch_rows": batch,
            "peak_gb": m.peak / 1e9, "device_gb": settings.device_gb, "fits": m.fits,
            "summary": m.summary()}
