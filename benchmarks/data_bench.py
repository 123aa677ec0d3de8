"""Tokens/s of the grain path (shards → CM3 → packing → exact mixture → batches), one core,
and the token shares an exact 50/50 mixture of short and long documents really gets.

    python benchmarks/data_bench.py                          # SMALL layout, 3 synthetic datasets
    python benchmarks/data_bench.py --objective causal --context 2048 --batch 4
    python benchmarks/data_bench.py --seqio                  # the SeqIO path too (TensorFlow)

Writes synthetic shards (text, image, speech; lengths uniform in [min, max]) to a temporary
folder, then times ``mmlaws.data.mixture`` in this process with no worker processes, so the
figure is per core. A run draws ``--batches`` batches after one warm-up batch; the figure is
the median over ``--runs`` runs of all positions (padding included) per second, with the
non-padding share printed beside it.

**Token shares.** The exact mixture is exact in rows: every block of ``k`` rows holds
``share × k`` rows of each dataset, so the shares of token *positions* are exact. The shares of
non-padding tokens and of loss-bearing tokens (weight 1) are not: a dataset of long documents
pads rows differently from one of short documents, and CM3 gives weight 0 to one sentinel per
span, a larger fraction of a short document. The benchmark builds a 50/50 mixture of short
(``--short``) and long (``--long``) text documents, at ``--share-context`` (default: 8-24
against 40-120 tokens at T = 64, many long documents split across rows), and prints the three
shares measured over ``--share-rows`` rows. With ``--seqio`` it reads the same rows through
:class:`mmlaws.data.seqio_batches.SeqioBatches` (the batches are identical; the figures must
be too), times that path, and times ``set_state`` at the start and a million rows in.
"""

from __future__ import annotations

import argparse
import os
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


def token_shares(folder: str, args, seqio_path: bool = False) -> dict:
    """Row, non-padding and loss-bearing token shares of a 50/50 short/long mixture."""
    for seed, name in enumerate(("long", "short")):
        lo, hi = (int(x) for x in getattr(args, name).split("-"))
        if not os.path.isdir(os.path.join(folder, name)):
            shards.write_synthetic(folder, name, layout=mmlaws.data.SMALL, seed=10 + seed,
                                   documents={"train": args.documents}, min_length=lo,
                                   max_length=hi)
    shares = {"long": 0.5, "short": 0.5}  # name order: the order of the SeqIO path
    kwargs = dict(sequence_length=args.share_context, batch_size=args.batch, seed=0,
                  objective=args.objective, data_dir=folder)
    if seqio_path:
        from mmlaws.data import seqio_batches

        it = seqio_batches.SeqioBatches(shares, vocab=mmlaws.data.SMALL, **kwargs)
    else:
        it = mmlaws.data.mixture(shares, **kwargs)
    sums, labels = np.zeros((3, 2)), []
    for _ in range(-(-args.share_rows // args.batch)):
        batch = next(it)
        labels += batch["dataset_ids"].max(axis=1).tolist()
        for i in range(2):
            mine = batch["dataset_ids"] == i
            rows = mine.any(axis=1)
            sums[:, i] += [rows.sum(), mine.sum(), (batch["weights"] * mine).sum()]
    out = sums / sums.sum(axis=1, keepdims=True)
    blocks = np.asarray(labels[:len(labels) // 2 * 2]).reshape(-1, 2)  # k = 2 rows at 50/50
    return {"rows": out[0], "non-padding tokens": out[1], "loss-bearing tokens": out[2],
            "block deviation": int(np.abs((blocks == 0).sum(axis=1) - 1).max())}


def print_shares(label: str, shares: dict, args) -> None:
    print(f"{label}: 50/50 of short ({args.short}) vs long ({args.long}) documents, "
          f"T={args.share_context}, {args.share_rows} rows; share of long/short:")
    for what, value in shares.items():
        if what == "block deviation":
            print(f"  every block of 2 rows holds 1 of each: largest deviation {value} rows")
        else:
            print(f"  {what:20s} {value[0]:.1%} / {value[1]:.1%}")


def seqio_timings(folder: str, args) -> None:
    """Tokens/s of the SeqIO path on the three datasets, and set_state at 0 and 1e6 rows."""
    from mmlaws.data import seqio_batches

    it = seqio_batches.SeqioBatches(dict.fromkeys(sorted(DATASETS), 1 / len(DATASETS)),
                                    data_dir=folder, vocab=mmlaws.data.SMALL, seed=0,
                                    sequence_length=args.context, batch_size=args.batch,
                                    objective=args.objective)
    next(it)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    rate = args.batches * args.batch * args.context / (time.perf_counter() - start)
    print(f"seqio path: tokens/s {rate:,.0f} (one run, tf.data threads)")
    far = {"rows": 10**6, "cursors": {t: [10**6, 0] for t in it.tasks}}
    for label, state in (("start", {"rows": 0, "cursors": {}}), ("1e6 rows in", far)):
        start = time.perf_counter()
        it.set_state(state)
        next(it)
        print(f"seqio path: set_state + first batch at {label}: "
              f"{time.perf_counter() - start:.2f} s")


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
    parser.add_argument("--short", default="8-24", help="short documents' lengths, min-max")
    parser.add_argument("--long", default="40-120", help="long documents' lengths, min-max")
    parser.add_argument("--share-context", type=int, default=64, help="T of the share figure")
    parser.add_argument("--share-rows", type=int, default=4000)
    parser.add_argument("--seqio", action="store_true", help="also the SeqIO path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        build(folder, args.documents, args.min_length, args.max_length)
        results = [run_once(folder, args, seed) for seed in range(args.runs)]
        shares = token_shares(folder, args)
        seqio_shares = None
        if args.seqio:
            seqio_shares = token_shares(folder, args, seqio_path=True)
            seqio_timings(folder, args)
    rates = [r for r, _ in results]
    print(f"grain path, {args.objective}, T={args.context}, B={args.batch}, documents of "
          f"{args.min_length}-{args.max_length} tokens, 1 core (no workers)")
    print(f"tokens/s: median {statistics.median(rates):,.0f} over {args.runs} runs "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"non-padding {np.mean([f for _, f in results]):.1%}")
    print_shares("grain path", shares, args)
    if seqio_shares is not None:
        print_shares("seqio path", seqio_shares, args)


if __name__ == "__main__":
    main()
