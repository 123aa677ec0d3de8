"""``mmlaws plan``: a plan from the command line, and :func:`plan_job`, the same as a gin job.

    mmlaws plan --compute 1e21 --mix code=0.5,text=0.5
    mmlaws plan --hours 2e5 --accelerator h100 --mfu 0.45 --mix speech=0.4,text=0.6 \\
        --laws outputs/quickstart --format latex
    mmlaws plan --compute 1e21 --mix code=0.5,text=0.5 --compare code=0.3,text=0.7
    mmlaws plan --compute 1e22 --mix code=0.5,text=0.5 --mesh fsdp=8,tensor=8 --json

Bad input (shares not summing to 1, an unknown modality, a modality without a law, a budget
≤ 0, an accelerator without a known peak) prints one line naming it and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence

from mmlaws.errors import ConfigError, UserError


def parse_mix(text: str, flag: str = "--mix") -> dict[str, float]:
    """``"code=0.5,text=0.5"`` → ``{"code": 0.5, "text": 0.5}``."""
    out = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, eq, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = None
        if not eq or not name.strip() or share is None:
            raise ConfigError(f"{flag}: {part!r} is not NAME=SHARE (e.g. code=0.5,text=0.5)")
        if name.strip() in out:
            raise ConfigError(f"{flag}: modality {name.strip()!r} given twice")
        out[name.strip()] = share
    if not out:
        raise ConfigError(f"{flag}: no modality given (e.g. code=0.5,text=0.5)")
    return out


def _mesh(text: str) -> dict[str, int]:
    try:
        return {k.strip(): int(v) for k, v in (p.split("=") for p in text.split(","))}
    except ValueError:
        raise ConfigError(f"--mesh: {text!r} is not AXIS=SIZE,... (e.g. fsdp=8,tensor=8)") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmlaws plan", description=(
        "Compute-optimal N and D, losses, competition barriers, architecture and bill for a "
        "modality mix on a budget."))
    b = p.add_mutually_exclusive_group(required=True)
    b.add_argument("--compute", type=float, help="training FLOPs")
    b.add_argument("--hours", type=float, help="accelerator-hours (with --accelerator, --mfu)")
    p.add_argument("--mix", required=True, help="NAME=SHARE,... summing to 1")
    p.add_argument("--laws", default="table1", help="table1, table3-cm3, table3-causal, a study "
                   "folder (study.json) or a JSON file of coefficients")
    p.add_argument("--accelerator", default="a100")
    p.add_argument("--mfu", type=float, default=0.4)
    p.add_argument("--devices", type=int, default=64, help="accelerators at once (wall clock)")
    p.add_argument("--flops", default="architecture", choices=("architecture", "6N"))
    p.add_argument("--mesh", help="plan memory on this mesh, e.g. fsdp=8,tensor=8")
    p.add_argument("--device_gb", type=float, default=80.0)
    p.add_argument("--batch", type=int, help="rows per step for the memory plan")
    p.add_argument("--data_dir", help="built datasets: tokens available per modality")
    p.add_argument("--data_constrained", action="store_true",
                   help="also predict losses with repeated data (Muennighoff et al. 2023)")
    p.add_argument("--compare", help="a second mix (NAME=SHARE,...) or budget (same unit)")
    p.add_argument("--format", default="markdown", choices=("markdown", "latex"))
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--output", help="also write the output to this file")
    return p


def _simulate_devices(mesh: Mapping[str, int]) -> None:
    """On a host without accelerators, simulate the mesh's devices (before JAX starts)."""
    if "jax" in sys.modules:
        return
    devices = math.prod(mesh.values())
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flag = f"--xla_force_host_platform_device_count={devices}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        mesh = _mesh(args.mesh) if args.mesh else None
        if mesh:
            _simulate_devices(mesh)
        from mmlaws.plan.settings import Budget, PlanSettings

        budget = Budget(flops=args.compute, hours=args.hours, accelerator=args.accelerator,
                        mfu=args.mfu, devices=args.devices)
        settings = PlanSettings(flops=args.flops, mesh=mesh, device_gb=args.device_gb,
                                batch=args.batch, data_dir=args.data_dir,
                                data_constrained=args.data_constrained)
        text = plan_job(mix=parse_mix(args.mix), budget=budget, laws=args.laws,
                        settings=settings, fmt="json" if args.json else args.format,
                        output=args.output, compare=args.compare, echo=False)
    except UserError as err:
        print(f"mmlaws plan: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def _second(compare: str, mix: dict, budget):
    """The compared plan's (mix, budget, label): a mix if ``compare`` has '=', else a budget."""
    import dataclasses

    if "=" in compare:
        second = parse_mix(compare, "--compare")
        return second, budget, ",".join(f"{k}={v:g}" for k, v in second.items())
    try:
        value = float(compare)
    except ValueError:
        raise ConfigError(f"--compare: {compare!r} is neither a mix (NAME=SHARE,...) nor a "
                          "budget") from None
    field = "flops" if budget.flops is not None else "hours"
    return mix, dataclasses.replace(budget, **{field: value}), f"{field}={value:g}"


def plan_job(*, mix: Mapping[str, float], budget, laws: str = "table1", settings=None,
             fmt: str = "markdown", output: str | None = None, compare: str | None = None,
             echo: bool = True) -> str:
    """One plan (or two side by side with ``compare``: a second mix ``"a=0.3,b=0.7"`` or a
    budget in the first's unit), rendered as ``fmt`` (``markdown``, ``latex`` or ``json``);
    printed when ``echo`` (the gin job) and written to ``output`` when given."""
    from mmlaws.plan import core, render
    from mmlaws.plan.laws_source import load_laws
    from mmlaws.plan.settings import PlanSettings

    if fmt not in ("markdown", "latex", "json"):
        raise ConfigError(f"fmt={fmt!r}: expected markdown, latex or json")
    settings = settings or PlanSettings()
    law_set = load_laws(laws)
    first = core.plan(dict(mix), budget, law_set, settings)
    if compare:
        mix2, budget2, label2 = _second(compare, dict(mix), budget)
        second = core.plan(mix2, budget2, law_set, settings)
        label1 = ",".join(f"{k}={v:g}" for k, v in mix.items()) if "=" in compare else \
            f"{'flops' if budget.flops is not None else 'hours'}=" \
            f"{budget.flops if budget.flops is not None else budget.hours:g}"
        text = render.as_json([first, second]) + "\n" if fmt == "json" else render.compare(
            [first, second], [label1, label2], fmt)
    else:
        text = render.as_json(first) + "\n" if fmt == "json" else (
            render.latex(first) if fmt == "latex" else render.markdown(first))
    if output:
        with open(output, "w") as f:
            f.write(text)
    if echo:
        print(text, end="")
    return text


if __name__ == "__main__":
    sys.exit(main())
