"""Train-step tokens/s and MFU of a preset.

    python benchmarks/model_throughput.py --preset 125M --context 2048 --batch 8 --dtype bfloat16
    python benchmarks/model_throughput.py --preset tiny --layout tiny --context 128 --batch 4  # CPU

Times the real jitted train step (:mod:`mmlaws.train.step`: forward, backward, the AdamW
recipe, loss sums; state donated) on random tokens, the parameters and optimizer state sharded
over ``--mesh`` if given, else on one device. The model's vocabulary is ``--layout``'s (the
2^16 ``PAPER`` layout by default), as in training. MFU = training FLOPs per token
(mmlaws.model.counting) × tokens/s ÷ (peak bf16 FLOP/s × devices), peak from
mmlaws.model.hardware; it is blank for devices without a listed peak (CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from mmlaws import model as M
from mmlaws.data.vocab import resolve_layout
from mmlaws.train.distributed import place_batch
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import jit_steps


def parse_mesh(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (part.split("=") for part in text.split(",") if part)}


def random_batch(batch: int, context: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``[batch, context]`` arrays of uniform tokens, one document per row."""
    seq = np.random.default_rng(seed).integers(0, vocab, size=(batch, context + 1), dtype=np.int32)
    ones = np.ones((batch, context), np.int32)
    return {"inputs": seq[:, :-1], "targets": seq[:, 1:], "weights": ones.astype(np.float32),
            "segment_ids": ones, "positions": np.tile(np.arange(context, dtype=np.int32),
                                                      (batch, 1)),
            "dataset_ids": 0 * ones}


def measure(config, layout, batch: int, context: int, steps: int, mesh) -> float:
    """Median seconds of one train step over ``steps`` timed runs (after 2 warm-ups)."""
    setup = state_setup(config, Recipe(1e-4, 1000), mesh)
    train, _ = jit_steps(setup, vocab=layout, num_datasets=1)
    state = setup.init(jax.random.key(0))
    arrays = place_batch(random_batch(batch, context, layout.used_size), mesh)
    rng, times = jax.random.key(1), []
    schedule = setup.recipe.schedule_values()
    with M.use_mesh(mesh):
        for i in range(steps + 2):
            start = time.perf_counter()
            state, metrics = train(state, arrays, rng, schedule)
            jax.block_until_ready(metrics["loss"])
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--layout", default="paper", help="vocabulary layout (tiny … paper)")
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--remat", default="none")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mesh", default="", help="e.g. fsdp=-1 (default: one device)")
    args = parser.parse_args()
    preset, layout = M.PRESETS[args.preset], resolve_layout(args.layout)
    config = preset.replace(dtype=args.dtype, remat=args.remat, vocab_size=layout.size,
                            max_len=max(args.context, preset.max_len))
    mesh = M.make_mesh(parse_mesh(args.mesh) if args.mesh else {"data": 1},
                       devices=None if args.mesh else jax.devices()[:1])
    seconds = measure(config, layout, args.batch, args.context, args.steps, mesh)
    tokens_per_s = args.batch * args.context / seconds
    kind = jax.devices()[0].device_kind
    flops = M.training_flops_per_token(config, args.context)
    util = M.mfu(flops, tokens_per_s, mesh.devices.size, kind)
    print(f"preset {args.preset}  layout {args.layout} (vocabulary {layout.size})  device {kind} "
          f"x{mesh.devices.size}  dtype {config.compute_dtype}  remat {args.remat}  "
          f"batch {args.batch} x {args.context}")
    print(f"train step {seconds * 1e3:.1f} ms  {tokens_per_s:,.0f} tokens/s  "
          f"{flops:.3e} FLOP/token  MFU {'n/a' if util is None else f'{util:.1%}'}")


if __name__ == "__main__":
    main()
