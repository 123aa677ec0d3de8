"""A plan (or two side by side) as a Markdown or LaTeX table with its intervals, or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence


def _n(x) -> str:
    """A number for a table: 3 significant digits, thousands separators up to 1e6, then
    scientific notation."""
    if x is None:
        return "—"
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 100:
        return f"{x:.3g}"
    if 100 <= abs(x) < 1e6:
        return f"{x:,.0f}"
    return f"{x:.2e}".replace("e+", "e")


def _ci(entry: dict, key: str = "interval") -> str:
    ci = entry.get(key) if isinstance(entry, dict) else None
    return f"[{_n(ci[0])}, {_n(ci[1])}]" if ci else ""


def _pair_text(p: dict) -> str:
    if p.get("interaction") is None:
        return "unknown (no interaction terms)"
    state = "synergistic" if p["synergistic"] else "competing"
    text = f"{state} at the plan (interaction {p['gap']:+.3g})"
    if p.get("crossing"):
        c = p["crossing"]
        text += f"; crossed from {_n(c['compute'])} FLOPs (N {_n(c['N'])})"
    if p.get("eq6"):
        text += f"; Eq. 6 (6ND): {_n(p['eq6']['compute_6ND'])}"
    if not p.get("crossing"):
        text += "; no crossing (C ≤ 0 or an exponent ≤ 0)"
    return text


def rows(plan: dict) -> list[tuple[str, str, str]]:
    """(what, value, interval) rows of one plan."""
    q = plan["loss"]["quantity"]
    opt, arch, t = plan["optimum"], plan["architecture"], plan["time"]
    hours = plan["budget"].get("hours")
    out = [("budget (training FLOPs)", _n(plan["budget"]["flops"]) + (
        f" ({_n(hours)} accelerator-hours)" if hours else ""), ""),
           ("FLOP count", plan["flop_count"], ""),
           ("mix", ", ".join(f"{k} {v:.0%}" for k, v in plan["mix"].items()), ""),
           ("laws", f"{plan['laws']['source']} ({q})", ""),
           ("compute-optimal N", _n(opt["N"]), _ci(opt.get("interval", {}), "N")),
           ("compute-optimal D (tokens)", _n(opt["D"]), _ci(opt.get("interval", {}), "D"))]
    out += [(f"tokens of {k}", _n(v), "") for k, v in opt["tokens"].items()]
    for k, e in plan["loss"]["per_modality"].items():
        out.append((f"{k} loss ({q})", _n(e["value"]), _ci(e)))
        if q != "nats":
            out.append((f"{k} loss (nats/token)", _n(e["nats"]), ""))
    o = plan["loss"]["overall"]
    out.append((f"mixture loss ({'Σ w_k 𝓛_k, ' if q != 'nats' else ''}{q})", _n(o["value"]),
                _ci(o)))
    if q != "nats":
        out.append(("mixture loss (nats/token)", _n(o["nats"]), ""))
    out += [(f"pair {k}", _pair_text(p), "") for k, p in plan["pairs"].items()]
    out += [("nearest architecture", f"{arch['name']} ({arch['layers']} layers, d_model "
             f"{arch['d_model']}, {arch['heads']} heads): {arch['total_params']:,} parameters "
             f"({arch['non_embedding_params']:,} non-embedding)", ""),
            ("its tokens on the budget", _n(arch["tokens"]), ""),
            (f"its mixture loss ({q})", _n(arch["loss"]["value"]), ""),
            (f"accelerator-hours ({t['accelerator']}, MFU {t['mfu']:.0%})",
             _n(t["accelerator_hours"]), ""),
            (f"wall clock on {t['devices']} accelerators",
             f"{_n(t['wall_clock_hours'])} h ({_n(t['wall_clock_days'])} days)", "")]
    if plan.get("memory"):
        m = plan["memory"]
        out.append((f"memory per device ({m['preset']} on {m['mesh']})",
                    f"{m['peak_gb']:.3g} GB of {m['device_gb']:g}: "
                    f"{'fits' if m['fits'] else 'does NOT fit'}", ""))
    for d in (plan.get("data") or {}).values():
        out.append((f"data {d['dataset']}", f"{_n(d['tokens_needed'])} needed of "
                    f"{_n(d['tokens_available'])}: {d['epochs']:.3g} epochs", ""))
    for k, d in ((plan.get("data_constrained") or {}).get("per_modality") or {}).items():
        out.append((f"{k} loss, data-constrained ({q})", _n(d["value"]), ""))
    return out


def markdown(plan: dict) -> str:
    lines = ["| | value | 95% interval |" if _has_ci(plan) else "| | value | |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(plan)]
    return "\n".join(lines + _notes(plan)) + "\n"


def _has_ci(plan: dict) -> bool:
    return "interval" in plan["loss"]["overall"]


def _notes(plan: dict) -> list[str]:
    notes = ["", f"Units: {plan['laws']['units']}. Intervals: {plan['laws']['intervals']}."]
    notes += [f"- warning: {w}" for w in plan["warnings"]]
    return notes


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("Σ", r"$\Sigma$"), ("𝓛", r"$\mathcal{L}$"), ("≤", r"$\le$")):
        s = s.replace(a, b)
    return s


def latex(plan: dict) -> str:
    body = [f"{_tex(a)} & {_tex(b)} & {_tex(c)} \\\\" for a, b, c in rows(plan)]
    return "\n".join([r"\begin{tabular}{lll}", r"\hline", r" & value & interval \\", r"\hline",
                      *body, r"\hline", r"\end{tabular}", ""]) + "\n".join(
        f"% {w}" for w in _notes(plan)[1:]) + "\n"


def compare(plans: Sequence[dict], labels: Sequence[str], fmt: str = "markdown") -> str:
    """Plans side by side, one column each (rows matched by what they report)."""
    tables = [dict((a, f"{b} {c}".strip()) for a, b, c in rows(p)) for p in plans]
    keys = list(dict.fromkeys(k for t in tables for k in t))
    if fmt == "latex":
        head = " & " + " & ".join(_tex(x) for x in labels) + r" \\"
        body = [_tex(k) + " & " + " & ".join(_tex(t.get(k, "—")) for t in tables) + r" \\"
                for k in keys]
        return "\n".join([r"\begin{tabular}{l" + "l" * len(plans) + "}", r"\hline", head,
                          r"\hline", *body, r"\hline", r"\end{tabular}"]) + "\n"
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(plans)]
    lines += [f"| {k} | " + " | ".join(t.get(k, "—") for t in tables) + " |" for k in keys]
    for label, p in zip(labels, plans, strict=True):
        lines += [f"- {label}: warning: {w}" for w in p["warnings"]]
    return "\n".join(lines) + "\n"


def as_json(plan) -> str:
    return json.dumps(plan, indent=1, default=_default, allow_nan=True)


def _default(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
