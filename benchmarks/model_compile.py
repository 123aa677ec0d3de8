"""Compile time of the train step per preset (lower + compile from abstract inputs), and counts.

    python benchmarks/model_compile.py [--presets 8M,125M,...] [--runs 3] [--length 2048]
        [--mesh fsdp=4,tensor=2] [--remat dots_saveable] [--no-scan]

Prints the parameter table (total and non-embedding counts against each Table 2 name at the
paper's vocabulary of 2**16, the ``PAPER`` layout) and the median compile time over ``--runs``
fresh compilations (JAX's caches cleared before each) of the real train step
(:mod:`mmlaws.train.step`: AdamW recipe, CM3 loss sums, state donated), via
:func:`mmlaws.train.memory.compile_step`. With ``--mesh``, simulate devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from mmlaws import model as M
from mmlaws.data.vocab import PAPER
from mmlaws.train.memory import compile_step
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup


def parse_mesh(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (part.split("=") for part in text.split(",") if part)}


def print_counts(names: list[str]) -> None:
    header = ("preset", "total", "non-embedding", "vs name", "train FLOP/token")
    print("{:>6} {:>14} {:>14} {:>8} {:>17}".format(*header))
    for name in names:
        config, row = M.PRESETS[name], M.PAPER_ROWS.get(name)
        total = M.total_params(config)
        ratio = f"{total / row.nominal_params - 1:+.1%}" if row else ""
        print(f"{name:>6} {total:>14,} {M.non_embedding_params(config):>14,} {ratio:>8} "
              f"{M.training_flops_per_token(config):>17.3e}")


def compile_seconds(config, batch: int, length: int, mesh) -> float:
    """Seconds to lower and compile the train step of ``config`` afresh."""
    setup = state_setup(config, Recipe(1e-4, 1000), mesh)
    jax.clear_caches()
    start = time.perf_counter()
    compile_step(setup, batch_size=batch, sequence_length=length, layout=PAPER)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(row.name for row in M.TABLE_2))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--remat", default="dots_saveable")
    parser.add_argument("--mesh", default="", help="e.g. fsdp=4,tensor=2 (default: one device)")
    parser.add_argument("--no-scan", action="store_true", help="unroll the layers (no nn.scan)")
    args = parser.parse_args()
    names = args.presets.split(",")
    mesh = M.make_mesh(parse_mesh(args.mesh) if args.mesh else {"data": 1},
                       devices=None if args.mesh else jax.devices()[:1])
    print(f"vocabulary {PAPER.size} (the PAPER layout of the paper presets); counting "
          "convention: mmlaws.model.counting\n")
    print_counts(names)
    print(f"\ncompile of the train step, batch {args.batch} x {args.length}, {args.dtype}, "
          f"remat {args.remat}, mesh {args.mesh or 'one device'}, "
          f"{'unrolled' if args.no_scan else 'scanned'} layers; median of {args.runs}")
    for name in names:
        config = M.PRESETS[name].replace(dtype=args.dtype, remat=args.remat,
                                         scan_layers=not args.no_scan, vocab_size=PAPER.size)
        times = [compile_seconds(config, args.batch, args.length, mesh)
                 for _ in range(args.runs)]
        print(f"{name:>6} {config.num_layers:>3} layers  {statistics.median(times):6.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)


if __name__ == "__main__":
    main()
