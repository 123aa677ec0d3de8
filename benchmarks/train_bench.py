"""Tokens/s of the full train step: mmlaws (JAX) vs Hugging Face ``OPTForCausalLM`` (PyTorch).

    python benchmarks/train_bench.py                      # tiny preset, CPU, 8 × 128 tokens
    python benchmarks/train_bench.py --preset mini --batch 4 --context 256

Both sides run the same model shape (pre-norm OPT, ReLU, learned positions, tied embeddings,
dropout 0.1) and the same update: forward, backward, global-norm clip 1.0, AdamW (β 0.9/0.98,
ε 1e-8, decay 0.1 on matmul kernels only), warm-up/polynomial learning rate. mmlaws runs its
real ``train_step`` (jitted, state donated, one device, one segment per row) with the preset
as it is (``tiny`` hashes its dropout masks, ``dropout_impl="hash"``); PyTorch runs an eager
loop. mmlaws runs twice, with the threefry and the ``rbg`` PRNG (``train(rng_impl="rbg")``)
behind the per-step keys. Each side is warmed up,
then timed over ``--steps`` updates ``--repeats`` times, alternating sides; the median
tokens/s of each and their ratios are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
import torch
from transformers import OPTConfig, OPTForCausalLM

from mmlaws.data.vocab import TINY
from mmlaws.model import PRESETS, make_mesh, use_mesh
from mmlaws.train.distributed import place_batch
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import jit_steps


def batch_arrays(batch: int, context: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, vocab, size=(batch, context + 1)).astype(np.int32)
    ones = np.ones((batch, context), np.int32)
    return {"inputs": seq[:, :-1], "targets": seq[:, 1:], "weights": ones.astype(np.float32),
            "segment_ids": ones, "positions": np.broadcast_to(np.arange(context),
                                                              (batch, context)).copy(),
            "dataset_ids": 0 * ones}


def jax_runner(config, recipe, arrays, rng_impl: str):
    mesh = make_mesh({"data": 1}, devices=jax.devices()[:1])
    setup = state_setup(config, recipe, mesh)
    train, _ = jit_steps(setup, vocab=TINY, num_datasets=1)
    state = [setup.init(jax.random.key(0))]
    batch = place_batch(arrays, mesh)
    rng = jax.random.key(1, impl=rng_impl)
    schedule = recipe.schedule_values()

    def run(steps: int) -> None:
        with use_mesh(mesh):
            for _ in range(steps):
                state[0], metrics = train(state[0], batch, rng, schedule)
            jax.block_until_ready(metrics["loss"])

    return run


def torch_runner(config, recipe, arrays):
    hf = OPTConfig(vocab_size=config.vocab_size, hidden_size=config.d_model,
                   num_hidden_layers=config.num_layers, ffn_dim=config.d_ff,
                   num_attention_heads=config.num_heads, max_position_embeddings=config.max_len,
                   word_embed_proj_dim=config.d_model, do_layer_norm_before=True,
                   dropout=config.dropout, attention_dropout=0.0, activation_function="relu",
                   tie_word_embeddings=True, enable_bias=True)
    model = OPTForCausalLM(hf).train()
    decay = [p for n, p in model.named_parameters() if p.ndim == 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim == 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe.peak_lr, betas=(recipe.b1, recipe.b2), eps=recipe.eps)
    schedule = recipe.schedule()
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: float(schedule(s)) / recipe.peak_lr)
    inputs = torch.from_numpy(arrays["inputs"].astype(np.int64))
    targets = torch.from_numpy(arrays["targets"].astype(np.int64))

    def run(steps: int) -> None:
        for _ in range(steps):
            out = model(input_ids=inputs).logits  # [B, T, V]
            loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), targets.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
            opt.step()
            sched.step()

    return run


def timed(run, steps: int) -> float:
    start = time.perf_counter()
    run(steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = PRESETS[args.preset]
    recipe = Recipe(peak_lr=1e-3, total_steps=10_000, warmup_steps=500)
    arrays = batch_arrays(args.batch, args.context, config.vocab_size)
    runners = {"mmlaws threefry": jax_runner(config, recipe, arrays, "threefry2x32"),
               "mmlaws rbg": jax_runner(config, recipe, arrays, "rbg"),
               "HF OPT (PyTorch)": torch_runner(config, recipe, arrays)}
    for run in runners.values():
        run(3)  # compile / warm up
    seconds = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            seconds[name].append(timed(run, args.steps))
    tokens = args.batch * args.context * args.steps
    rates = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    print(f"{args.preset}: batch {args.batch} × {args.context} tokens, {args.steps} steps × "
          f"{args.repeats} repeats, {jax.devices()[0].device_kind}, torch threads "
          f"{torch.get_num_threads()}")
    for name, rate in rates.items():
        print(f"  {name:18s} {rate:12,.0f} tokens/s")
    for name in ("mmlaws threefry", "mmlaws rbg"):
        print(f"  ratio {name} / HF: {rates[name] / rates['HF OPT (PyTorch)']:.2f}×")


if __name__ == "__main__":
    main()
