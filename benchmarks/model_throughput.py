"""Forward+backward tokens/s and MFU of a preset.

    python benchmarks/model_throughput.py --preset 125M --context 2048 --batch 8 --dtype bfloat16
    python benchmarks/model_throughput.py --preset tiny --context 128 --batch 4   # CPU demo

Times jitted value-and-grad of the mean cross-entropy on random tokens (parameters are real
arrays, sharded over ``--mesh`` if given, else on one device). MFU = training FLOPs per token
(mmlaws.model.counting) × tokens/s ÷ (peak bf16 FLOP/s × devices), peak from
mmlaws.model.hardware; it is blank for devices without a listed peak (CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time

import jax

from mmlaws import model as M
from mmlaws.model.abstract_step import mean_cross_entropy


def parse_mesh(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (part.split("=") for part in text.split(",") if part)}


def make_step(config, mesh):
    grad_fn = jax.value_and_grad(functools.partial(mean_cross_entropy, config))
    if mesh is None:
        return jax.jit(grad_fn)
    p_sh, b_sh = M.param_shardings(config, mesh), M.batch_sharding(mesh)
    return jax.jit(grad_fn, in_shardings=(p_sh, b_sh, b_sh), out_shardings=(None, p_sh))


def measure(config, batch: int, context: int, steps: int, mesh=None) -> float:
    """Median seconds of one forward+backward over ``steps`` timed runs (after 2 warm-ups)."""
    params = M.init_params(config, jax.random.key(0), mesh=mesh)
    tokens = jax.random.randint(jax.random.key(1), (batch, context + 1), 0, config.vocab_size)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # [B, T]
    if mesh is not None:
        inputs, targets = jax.device_put((inputs, targets), M.batch_sharding(mesh))
    step = make_step(config, mesh)
    times = []
    with M.use_mesh(mesh) if mesh is not None else contextlib.nullcontext():
        for i in range(steps + 2):
            start = time.perf_counter()
            jax.block_until_ready(step(params, inputs, targets))
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--remat", default="none")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mesh", default="", help="e.g. fsdp=-1 (default: one device)")
    args = parser.parse_args()
    preset = M.PRESETS[args.preset]
    config = preset.replace(dtype=args.dtype, remat=args.remat,
                            max_len=max(args.context, preset.max_len))
    mesh = M.make_mesh(parse_mesh(args.mesh)) if args.mesh else None
    seconds = measure(config, args.batch, args.context, args.steps, mesh)
    tokens_per_s = args.batch * args.context / seconds
    devices = 1 if mesh is None else mesh.devices.size
    kind = jax.devices()[0].device_kind
    flops = M.training_flops_per_token(config, args.context)
    util = M.mfu(flops, tokens_per_s, devices, kind)
    print(f"preset {args.preset}  device {kind} x{devices}  dtype {config.compute_dtype}  "
          f"remat {args.remat}  batch {args.batch} x {args.context}")
    print(f"step {seconds * 1e3:.1f} ms  {tokens_per_s:,.0f} tokens/s  "
          f"{flops:.3e} FLOP/token  MFU {'n/a' if util is None else f'{util:.1%}'}")


if __name__ == "__main__":
    main()
