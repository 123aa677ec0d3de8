"""The first lines of a study's report: what was trained, what it found, and how sure it is.

- **Identified** (a uni-modal law): the 95% profile intervals of α, β and E are bounded, no
  parameter ended at the edge of the start grid, and the design-power check
  (:func:`mmlaws.study.check_design`) says the design identifies α, β and E.
- **Pair verdict**, from the 95% profile interval of C_ij. Eq. 4 as fitted here
  (:class:`mmlaws.laws.forms.Interaction`) is L_pair = ½(L_i + L_j) − C_ij + A_ij/N^α_ij +
  B_ij/(D_i + D_j)^β_ij, so by Eq. 5 the pair is synergistic (its loss below ½(L_i + L_j), a
  Fig. 5 ratio above 1) wherever C_ij > A_ij/N^α_ij + B_ij/D^β_ij. The cost terms are
  positive and vanish with scale, so a **positive** C_ij means the pair turns synergistic once
  N and D pass the competition barrier (Eq. 6 gives the cheapest such point), and a negative
  one means it competes at every scale. Verdicts: ``synergy`` (interval entirely above 0),
  ``competition`` (entirely below 0), ``unresolved`` (it contains 0, is unbounded, or could
  not be formed).
"""

from __future__ import annotations

import re

import numpy as np

from mmlaws.laws.records import RunTable

LAW_PARAMS = ("alpha", "beta", "E")
SYMBOLS = {"alpha": "α", "beta": "β", "E": "E", "C": "C"}


def _fmt_interval(value: float, iv) -> str:
    if not iv:
        return f"{value:.3g} [no interval]"
    lo, hi, bounded = iv
    text = f"{value:.3g} [{lo:.3g}, {hi:.3g}]"
    return text if bounded else text + " (unbounded)"


def law_status(entry: dict, power: dict | None) -> tuple[bool, list[str]]:
    """(identified, why not) of a uni-modal law entry of :func:`mmlaws.laws.fit_table` and its
    design power (``DesignPower.as_dict()``, or ``{"error": ...}``, or None)."""
    why = []
    prof = entry.get("profile95") or {"error": "no profile intervals"}
    if "error" in prof:
        why.append(f"profile: {prof['error']}")
    else:
        why += [f"{SYMBOLS[k]}'s profile interval is unbounded" for k in LAW_PARAMS
                if not (prof.get(k) or [0, 0, False])[2]]
    if entry.get("on_grid_boundary"):
        why.append("at the grid's edge: " + ", ".join(entry["on_grid_boundary"]))
    if not power or "error" in power:
        why.append("design power: " + (power or {}).get("error", "not checked"))
    else:
        bad = [SYMBOLS[k] for k in LAW_PARAMS if not power["params"][k]["identified"]]
        if bad:
            why.append("the design power check does not identify " + ", ".join(bad))
    return not why, why


def pair_verdict(entry: dict) -> tuple[str, str]:
    """(``synergy`` | ``competition`` | ``unresolved``, the reason) from C_ij's profile
    interval (the module docstring states the sign convention)."""
    prof = entry.get("profile95") or {}
    iv = prof.get("C")
    if "error" in prof or not iv:
        return "unresolved", f"no profile interval for C ({prof.get('error', 'not formed')})"
    lo, hi, bounded = iv
    c = _fmt_interval(entry["C"], iv)
    if not bounded or not np.all(np.isfinite([lo, hi])):
        return "unresolved", f"C = {c}: the runs do not bound it"
    if lo > 0:
        return "synergy", (f"C = {c} > 0: the pair's loss falls below ½(L_i + L_j) once "
                           "A/N^α + B/D^β < C (Eq. 5)")
    if hi < 0:
        return "competition", f"C = {c} < 0: the pair's loss stays above ½(L_i + L_j)"
    return "unresolved", f"C = {c} contains 0"


def _shared_tokens(rec) -> float:
    """Tokens a WSD branch's record counts from its trunk (trained once, by the trunk)."""
    fork = (rec.header.get("config") or {}).get("fork_step")
    if not fork:
        return 0.0
    return next((float(s["tokens"]) for s in rec.steps if s["step"] == fork), 0.0)


def _flops(runs: RunTable) -> tuple[float, str]:
    """Total training FLOPs of the runs: each header's ``flops_per_token`` × the tokens it
    trained itself (a WSD branch's trunk tokens counted once, with the trunk; 6·N·D for records
    that lack a FLOP count, said so)."""
    total, approx = 0.0, 0
    for k, rec in enumerate(runs.records):
        fpt = rec.header.get("flops_per_token")
        tokens = float(runs.D[k]) - _shared_tokens(rec)
        if fpt:
            total += float(fpt) * tokens
        else:
            total += 6.0 * float(runs.N[k]) * tokens
            approx += 1
    note = f" ({approx} run(s) without a FLOP count: 6·N·D)" if approx else ""
    return total, note


def _holdout(entry: dict, key: str, axis: str) -> str:
    h = entry.get(key)
    if not h:
        return f"largest {axis}: not checked"
    if "error" in h:
        return f"largest {axis}: n/a ({h['error']})"
    head = f"largest {axis} held out: {100 * h['mean_abs_relative_error']:.2f}% of the loss, "
    if h.get("mean_abs_reducible_error") is None:
        refit_e = h.get("refit_E")
        at = f" ({refit_e:.3g})" if refit_e is not None else ""
        return head + (f"share of the reducible loss n/a (the refit's E{at} reaches the "
                       "held-out losses)")
    return head + f"{100 * h['mean_abs_reducible_error']:.1f}% of the reducible loss"


def _trained(r: dict, runs: RunTable) -> str:
    conv = sorted({str(rec.header.get("N_convention", "unstated")) for rec in runs.records})
    flops, note = _flops(runs)
    sets = sorted({row["datasets"] for row in r["runs"]})
    return (f"- **Trained**: {len(r['runs'])} runs on {', '.join(sets)}; N from "
            f"{runs.N.min():.3g} to {runs.N.max():.3g} parameters ({'/'.join(conv)}), "
            f"D from {runs.D.min():.3g} to {runs.D.max():.3g} tokens, "
            f"{flops:.3g} training FLOPs in all{note}.")


def seed_noise(rows) -> dict[str, list[float]]:
    """``{run id without its seed suffix: final losses}`` of the runs trained with several
    seeds (run ids ``…_s1``, ``…_s2``: :func:`mmlaws.study.design.plan`)."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        if row["role"] == "law":
            groups.setdefault(re.sub(r"_s\d+$", "", row["run_id"]), []).append(row["loss"])
    return {k: v for k, v in groups.items() if len(v) > 1}


def _seed_line(rows) -> str | None:
    noise = seed_noise(rows)
    if not noise:
        return None
    spread = {k: (max(v) - min(v)) / float(np.mean(v)) for k, v in noise.items()}
    worst = max(spread, key=spread.get)
    return (f"- **Seed noise**: final losses of {len(spread)} points trained with two or more "
            f"seeds differ by {100 * float(np.median(list(spread.values()))):.2g}% (median "
            f"(max − min) / mean), at most {100 * spread[worst]:.2g}% ({worst}); a fit's "
            "residuals and held-out errors are read against this.")


def summary_lines(r: dict, runs: RunTable, unimodal, bimodal) -> list[str]:
    """The report's opening lines from ``study.json``'s results ``r``, the runs, and the names
    of the uni-modal laws and pairs fitted."""
    laws, power = r["laws"], r.get("design_power") or {}
    lines = ["## Result", "", _trained(r, runs)]
    seeds = _seed_line(r["runs"])
    if seeds:
        lines.append(seeds)
    for name in unimodal:
        e = laws[name]
        prof = e.get("profile95") or {}
        ok, why = law_status(e, power.get(name))
        params = ", ".join(f"{SYMBOLS[k]} = {_fmt_interval(e[k], prof.get(k))}"
                           for k in LAW_PARAMS)
        lines.append(f"- **{name}**: {params} (95% profile); "
                     + ("identified" if ok else "NOT identified: " + "; ".join(why)) + "; "
                     + _holdout(e, "holdout", "N") + "; " + _holdout(e, "holdout_D", "D") + ".")
    for pair in bimodal:
        key = "|".join(pair)
        e = laws[key]
        verdict, why = pair_verdict(e)
        opt = e.get("compute_optimal")
        barrier = (f"Eq. 6's cheapest barrier-breaking point N* = {opt['N']:.3g}, D* = "
                   f"{opt['D']:.3g} ({opt['compute']:.3g} FLOPs as 6·N*·D*)" if opt
                   else "no barrier-breaking point (Eq. 6 needs C, α_ij, β_ij > 0)")
        ratios = [x["final_ratio"] for x in r.get("ratio", []) if x.get("pair") == key
                  and "final_ratio" in x]
        seen = (f"; Fig. 5 ratio above 1 (synergy) in {sum(x > 1 for x in ratios)} of "
                f"{len(ratios)} matched runs" if ratios else "")
        trend = trend_text(e.get("interaction_trend"))
        lines.append(f"- **{key.replace('|', ' | ')}**: {verdict.upper()} — {why}; {barrier}"
                     f"{seen}.{trend}")
    lines += [mixture_line(k.removesuffix(" mixture"), e) for k, e in laws.items()
              if k.endswith(" mixture")]
    return lines + [""]


def trend_text(t: dict | None) -> str:
    """What the pair adds, read from the matched runs without a law (an ``InteractionTrend``)."""
    if not t or "error" in t:
        return ""
    ci = lambda k, f="{:+.3f}": (f.format(t[k]) + " [" + f.format(t[k + "_ci"][0]) + ", "
                                 + f.format(t[k + "_ci"][1]) + "]")
    text = (f" Observed L_pair − ½(L_i + L_j) over {t['num_runs']} matched runs (positive: "
            f"competition): {ci('mean')} nats at the runs' mean log N and log D, "
            f"{ci('per_decade_D')} per decade of D, {ci('per_decade_N')} per decade of N "
            f"(residual sd {t['residual_sd']:.3f}; {t['above']} of {t['num_runs']} runs above 0)")
    if t["grows_with_data"]:
        text += ("; it grows with data, which Eq. 4's interaction (falling with D for "
                 "B_ij, β_ij > 0) cannot represent")
    return text + "."


def mixture_line(pair: str, e: dict) -> str:
    """A pair's mixture-law verdict: its held-out shares' errors beside interpolation's."""
    head = f"- **{pair.replace('|', ' | ')} mixtures**: "
    h = e.get("held_out")
    if "error" in e or not h:
        return head + f"no held-out check ({e.get('error', 'no interior share to hold out')})."
    law, interp = h["per_modality"]["law"], h["per_modality"]["interpolation"]
    if law != law or interp != interp:
        return head + "no held-out run is predicted by both the law and interpolation."
    n = len(h["shares"])
    verdict = "beats" if law < interp else "does NOT beat"
    bound = ("exponents interior" if h["exponents_interior"] and not e["at_bound"] else
             "at a bound: " + ", ".join(e["at_bound"] or ["in some held-out fits"]))
    return (head + f"the per-modality mixture law {verdict} linear interpolation in the share "
            f"({100 * law:.2f}% vs {100 * interp:.2f}% mean |error| per modality over the "
            f"held-out shares {', '.join(f'{w:g}' for w in h['shares'])}, held out one at a "
            f"time; better on {h['law_wins']} of {n}); {bound}.")


def power_section(power: dict) -> list[str]:
    """The report's ``design power`` section from ``study.json``'s ``design_power``."""
    lines = ["## Design power (before training)", "",
             "A law planted on each dataset's runs (its Table 1 law rescaled to the design, "
             "or a given one), refitted on noisy copies as the study fits: bias and spread of "
             "the estimates, and the fraction of refits at the grid's edge "
             "(`mmlaws.study.check_design`).", ""]
    if not power:
        return lines + ["- not checked (PowerSettings.replicates = 0)"]
    lines += ["| dataset | parameter | truth | bias | spread | at grid edge | 95% profile "
              "coverage | median width | identified |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, p in power.items():
        if "error" in p:
            lines.append(f"| {name} | — | {p['error']} | | | | | | |")
            continue
        notes.append(f"- {name}: {p['law']}; {p['num_runs']} runs, {p['noise']:.1%} noise, "
                     f"{p['replicates']} refits ({p['num_converged']} converged)")
        for k, v in p["params"].items():
            cov = "—" if v["coverage"] is None else f"{v['coverage']:.0%}"
            width = "—" if v.get("width") is None else f"{v['width']:.3g}"
            lines.append(f"| {name} | {SYMBOLS.get(k, k)} | {v['truth']:.4g} | "
                         f"{v['bias']:+.1%} | {v['spread']:.1%} | {v['at_edge']:.0%} | {cov} | "
                         f"{width} | {'yes' if v['identified'] else 'NO'} |")
    return lines + [""] + notes
