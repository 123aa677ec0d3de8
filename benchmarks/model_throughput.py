"""Tokens/s, step time, MFU and peak memory of the real train step of a preset.

    python benchmarks/model_throughput.py --preset 1.3B --context 2048 --batch 8      # a GPU
    python benchmarks/model_throughput.py --preset tiny --layout tiny --context 128 --batch 4 \\
        --steps 3                                                                     # CPU smoke

What is timed is the step a training run takes (:mod:`mmlaws.train.step`, jitted, state
donated): rows **packed** from generated documents with the real packer and mixer
(:class:`mmlaws.data.synthetic.SyntheticBatches`, CM3, two datasets at 50/50, ``--doc_len``
tokens per document, so each row holds several documents and their segment ids), the preset's
**dropout** (0.1), the AdamW **optimizer** with clipping and the schedule, and gradient
**accumulation** over ``--micro_batches``. A pool of ``--pool`` such batches is placed on the
devices once and cycled (reading and packing data is timed by ``benchmarks/data_bench.py``).
After ``--warmup`` steps (the first compiles), ``--steps`` steps are dispatched back to back and
timed to the last one's completion; their losses are read afterwards (``losses`` in ``--json``).
The learning rate rises over ``--lr_warmup`` updates to ``--lr``, then decays to 10% at the
last step.

MFU = training FLOPs per token × tokens/s ÷ (peak bf16 FLOP/s × devices), under both attention
conventions of :func:`mmlaws.model.training_flops_per_token`: full scores (PaLM) and
causal-halved (MaxText; about 7% lower at 1.3B, 2048). Tokens are all ``batch × context``
positions, padding included. Peak memory is the device's ``peak_bytes_in_use`` (absent on
CPU), beside the memory planner's figure for the same compiled step
(:mod:`mmlaws.train.memory`). The last line reads
``throughput: <preset> MFU X% (causal-halved Y%), Z tok/s``.
"""

from __future__ import annotations

import argparse
import json
import time

import jax

from mmlaws import model as M
from mmlaws.data.synthetic import SyntheticBatches
from mmlaws.data.vocab import resolve_layout
from mmlaws.model import remat
from mmlaws.model.attention import resolve
from mmlaws.train import runtime
from mmlaws.train.distributed import place_batch
from mmlaws.train.memory import GB, compile_step
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import jit_steps


def parse_mesh(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (part.split("=") for part in text.split(",") if part)}


def packed_batches(layout, *, batch: int, context: int, doc_len: tuple[int, int], pool: int,
                   seed: int = 0) -> list[dict]:
    """``pool`` batches of packed rows (CM3, text and speech documents at 50/50)."""
    data = SyntheticBatches({"text": ("text", 0.5), "speech": ("speech", 0.5)}, layout,
                            batch_size=batch, sequence_length=context, seed=seed,
                            doc_len=doc_len)
    return [next(data) for _ in range(pool)]


def peak_device_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def cheapest_remat_here(config, layout, args, mesh, headroom: float = 0.9) -> str:
    """The first policy of :data:`mmlaws.model.remat.ORDER` whose step, compiled for this
    device, needs at most ``headroom`` × its memory (the memory planner on the real backend)."""
    limit = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
    if limit is None:
        return "none"
    for policy in remat.ORDER:
        setup = state_setup(config.replace(remat=policy), Recipe(1e-4, 10), mesh)
        m = compile_step(setup, batch_size=args.batch, sequence_length=args.context,
                         layout=layout, micro_batches=args.micro_batches).memory_analysis()
        peak = (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
                + m.temp_size_in_bytes)
        print(f"remat {policy}: planned {peak / GB:.1f} GB of {limit / GB:.1f} GB")
        if peak <= headroom * limit:
            return policy
    return "full"


def measure(config, layout, args, mesh) -> dict:
    """Times ``args.steps`` train steps; returns the figures."""
    setup = state_setup(config, Recipe(args.lr, max(args.steps + args.warmup, 2),
                                       warmup_steps=args.lr_warmup), mesh)
    train, _ = jit_steps(setup, vocab=layout, num_datasets=2, micro_batches=args.micro_batches)
    planned = compile_step(setup, batch_size=args.batch, sequence_length=args.context,
                           layout=layout, micro_batches=args.micro_batches).memory_analysis()
    planned_peak = (planned.argument_size_in_bytes + planned.output_size_in_bytes
                    - planned.alias_size_in_bytes + planned.temp_size_in_bytes)
    batches = packed_batches(layout, batch=args.batch, context=args.context,
                             doc_len=tuple(args.doc_len), pool=args.pool)
    docs_per_row = sum(float(b["segment_ids"].max(1).mean()) for b in batches) / len(batches)
    placed = [place_batch(b, mesh) for b in batches]
    state, rng = setup.init(jax.random.key(0)), jax.random.key(1)
    schedule = setup.recipe.schedule_values()
    losses = []
    with M.use_mesh(mesh):
        for i in range(args.warmup):
            state, metrics = train(state, placed[i % len(placed)], rng, schedule)
            losses.append(float(metrics["loss"]))
        start, timed = time.perf_counter(), []
        for i in range(args.steps):
            state, metrics = train(state, placed[i % len(placed)], rng, schedule)
            timed.append(metrics["loss"])  # read after the clock stops: no sync in between
        jax.block_until_ready(metrics["loss"])
        seconds = (time.perf_counter() - start) / args.steps
    losses += [float(x) for x in timed]
    return {"step_s": seconds, "tokens_per_s": args.batch * args.context / seconds,
            "peak_bytes": peak_device_bytes(), "planned_bytes": planned_peak,
            "docs_per_row": docs_per_row, "first_loss": losses[0], "last_loss": losses[-1],
            "losses": losses, "skipped": int(state.skipped)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--layout", default="paper", help="vocabulary layout (tiny … paper)")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8, help="rows per optimizer step")
    parser.add_argument("--micro_batches", type=int, default=1)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--remat", default="none",
                        help="a policy of mmlaws.model.remat, or 'cheapest' (planned here)")
    parser.add_argument("--attention", default="auto")
    parser.add_argument("--dropout_impl", default=None, help="jax or hash (default: the preset's)")
    parser.add_argument("--doc_len", type=int, nargs=2, default=(256, 1536))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    parser.add_argument("--lr_warmup", type=int, default=500, help="warm-up updates")
    parser.add_argument("--gpu_xla_flags", action="store_true",
                        help="add mmlaws.train.runtime.GPU_XLA_FLAGS (before JAX starts)")
    parser.add_argument("--mesh", default="", help="e.g. fsdp=-1 (default: one device)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.gpu_xla_flags:
        runtime.add_xla_flags()
    preset, layout = M.PRESETS[args.preset], resolve_layout(args.layout)
    changes = dict(dtype=args.dtype, remat=args.remat, attention=args.attention,
                   vocab_size=layout.size, max_len=max(args.context, preset.max_len))
    if args.dropout_impl:
        changes["dropout_impl"] = args.dropout_impl
    mesh = M.make_mesh(parse_mesh(args.mesh) if args.mesh else {"data": 1},
                       devices=None if args.mesh else jax.devices()[:1])
    if args.remat == "cheapest":
        changes["remat"] = args.remat = cheapest_remat_here(
            preset.replace(**{**changes, "remat": "none"}), layout, args, mesh)
    config = preset.replace(**changes)
    out = measure(config, layout, args, mesh)
    kind, devices = jax.devices()[0].device_kind, mesh.devices.size
    full = M.training_flops_per_token(config, args.context)
    halved = M.training_flops_per_token(config, args.context, causal_halved=True)
    out.update(preset=args.preset, device=kind, devices=devices, context=args.context,
               batch=args.batch, micro_batches=args.micro_batches, remat=args.remat,
               attention=resolve(args.attention, jax.default_backend(), config.compute_dtype),
               dtype=str(config.compute_dtype), flops_per_token=full,
               mfu=M.mfu(full, out["tokens_per_s"], devices, kind),
               mfu_causal_halved=M.mfu(halved, out["tokens_per_s"], devices, kind))
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    gb = lambda v: "n/a" if v is None else f"{v / GB:.2f} GB"  # noqa: E731
    ratio = (f" (measured/planned {out['peak_bytes'] / out['planned_bytes']:.3f})"
             if out["peak_bytes"] else "")
    print(f"preset {args.preset}  layout {args.layout} (vocabulary {layout.size})  device {kind} "
          f"x{devices}  dtype {out['dtype']}  attention {out['attention']}  remat {args.remat}  "
          f"batch {args.batch} x {args.context} in {args.micro_batches} micro-batch(es)  "
          f"{out['docs_per_row']:.1f} documents per row")
    print(f"train step {out['step_s'] * 1e3:.1f} ms  {out['tokens_per_s']:,.0f} tokens/s  "
          f"{full:.3e} FLOP/token (causal-halved {halved:.3e})  peak memory "
          f"{gb(out['peak_bytes'])}, planned {gb(out['planned_bytes'])}{ratio}  loss "
          f"{out['first_loss']:.3f} -> {out['last_loss']:.3f}  skipped {out['skipped']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print(f"throughput: {args.preset} MFU {pct(out['mfu'])} (causal-halved "
          f"{pct(out['mfu_causal_halved'])}), {out['tokens_per_s']:,.0f} tok/s")
    return out


if __name__ == "__main__":
    main()
