"""Tokens/s of the grain path (shards → CM3 → packing → exact mixture → batches), one core.

    python benchmarks/data_bench.py                          # SMALL layout, 3 synthetic datasets
    python benchmarks/data_bench.py --objective causal --context 2048 --batch 4

Writes synthetic shards (text, image, speech; lengths uniform in [min, max]) to a temporary
folder, then times ``mmlaws.data.mixture`` in this process with no worker processes, so the
figure is per core. A run draws ``--batches`` batches after one warm-up batch; the figure is
the median over ``--runs`` runs of all positions (padding included) per second, with the
non-padding share printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

import mmlaws.data
from mmlaws.data import shards

DATASETS = {"text": "text", "image": "image", "speech": "speech"}


def build(folder: str, documents: int, min_length: int, max_length: int) -> None:
    for seed, (name, modality) in enumerate(DATASETS.items()):
        shards.write_synthetic(folder, name, modality=modality, layout=mmlaws.data.SMALL,
                               documents={"train": documents}, min_length=min_length,
                               max_length=max_length, seed=seed)


def run_once(folder: str, args, seed: int) -> tuple[float, float]:
    """(positions per second, non-padding fraction) of one run."""
    it = mmlaws.data.mixture(dict.fromkeys(DATASETS, 1 / len(DATASETS)), data_dir=folder,
                             sequence_length=args.context, batch_size=args.batch, seed=seed,
                             objective=args.objective)
    next(it)  # warm-up: opens readers, first permutations
    real = 0
    start = time.perf_counter()
    for _ in range(args.batches):
        real += int((next(it)["segment_ids"] > 0).sum())
    seconds = time.perf_counter() - start
    total = args.batches * args.batch * args.context
    return total / seconds, real / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--objective", default="cm3", choices=["cm3", "causal"])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--min-length", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        build(folder, args.documents, args.min_length, args.max_length)
        results = [run_once(folder, args, seed) for seed in range(args.runs)]
    rates = [r for r, _ in results]
    print(f"grain path, {args.objective}, T={args.context}, B={args.batch}, documents of "
          f"{args.min_length}-{args.max_length} tokens, 1 core (no workers)")
    print(f"tokens/s: median {statistics.median(rates):,.0f} over {args.runs} runs "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"non-padding {np.mean([f for _, f in results]):.1%}")


if __name__ == "__main__":
    main()
