"""What stacking buys per width: the study engine's vmapped train step at 1 … R rows.

    python benchmarks/stack_rows.py                          # the quickstart's widths
    python benchmarks/stack_rows.py --widths 32 48 --rows 1 4 8 --attention xla chunked

For each width (two layers, heads of 16 or one head, the ``MICRO`` vocabulary, dropout 0, as
``configs/quickstart.gin``) and each attention kernel, the train step of
:mod:`mmlaws.train.step` is vmapped over R rows (as :class:`mmlaws.study.stack.Programs`
compiles it) and timed on ``--batch`` × ``--length`` token batches per row: ms per step, tokens
per second and model GFLOP/s (:func:`mmlaws.model.training_flops_per_token`), medians of
``--repeats`` timings of ``--steps`` steps after one warm-up step (compilation reported apart).
The engine's choices rest on it: one slot per active run (no padding to a power of two) and
the ``chunked`` attention kernel as ``auto``'s choice on CPU.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import numpy as np

from mmlaws.data.batch import FIELDS
from mmlaws.data.vocab import MICRO
from mmlaws.model import PRESETS, make_mesh, training_flops_per_token
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import train_step


def config(width: int, length: int, attention: str):
    heads = max(1, width // 16)
    return PRESETS["tiny"].replace(vocab_size=MICRO.size, d_model=width, num_heads=heads,
                                   d_head=width // heads, num_layers=2, dropout=0.0,
                                   max_len=length, attention=attention)


def batch(rows: int, size: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random byte rows, four documents a row (segment ids 1-4), as the packer lays them."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, 256, size=(rows, size, length + 1)).astype(np.int32)
    pos = np.arange(length) % (length // 4)
    seg = 1 + np.arange(length) // (length // 4)
    shape = (rows, size, length)
    out = {"inputs": seq[..., :-1], "targets": seq[..., 1:],
           "weights": np.ones(shape, np.float32), "segment_ids": np.broadcast_to(seg, shape),
           "positions": np.broadcast_to(pos, shape), "dataset_ids": np.zeros(shape, np.int32)}
    return {k: np.ascontiguousarray(out[k]) for k in FIELDS}


def measure(cfg, rows: int, args) -> tuple[float, float]:
    """(median seconds per step, compile-and-first-step seconds) of ``rows`` stacked runs."""
    recipe = Recipe(1e-3, 1, warmup_steps=0)
    setup = state_setup(cfg, recipe, make_mesh({"data": 1}, jax.devices()[:1]))
    step = functools.partial(train_step, config=cfg, optimizer=setup.optimizer, vocab=MICRO,
                             num_datasets=1)
    vstep = jax.jit(jax.vmap(step), donate_argnums=0)
    one = [jax.device_get(setup.init(k)) for k in jax.random.split(jax.random.key(0), rows)]
    state = jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *one))
    keys = jax.random.split(jax.random.key(1), rows)
    schedule = jax.tree.map(lambda v: np.full((rows,), v, np.float32), recipe.schedule_values())
    data = jax.device_put(batch(rows, args.batch, args.length))
    t0 = time.perf_counter()
    state, out = vstep(state, data, keys, schedule)
    jax.block_until_ready(out)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, out = vstep(state, data, keys, schedule)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / args.steps)
    return statistics.median(times), first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16, 32, 48])
    p.add_argument("--rows", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    p.add_argument("--attention", nargs="+", default=["xla", "chunked"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"{jax.devices()[0].platform}, batch {args.batch} x {args.length} per row, "
          f"medians of {args.repeats} x {args.steps} steps")
    print("width  attention  rows  ms/step  ms/step/row  ktok/s  GFLOP/s  first step (s)")
    for width in args.widths:
        for attention in args.attention:
            cfg = config(width, args.length, attention)
            fpt = training_flops_per_token(cfg, args.length)
            for rows in args.rows:
                seconds, first = measure(cfg, rows, args)
                tokens = rows * args.batch * args.length / seconds
                print(f"{width:5d}  {attention:9s}  {rows:4d}  {seconds * 1e3:7.1f}  "
                      f"{seconds * 1e3 / rows:11.1f}  {tokens / 1e3:6.1f}  "
                      f"{tokens * fpt / 1e9:7.1f}  {first:14.1f}", flush=True)


if __name__ == "__main__":
    main()
