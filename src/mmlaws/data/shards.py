"""Tokenized shards: one ArrayRecord record per document, a ``stats.json`` per dataset.

On disk, one folder per dataset::

    <data_dir>/<name>/stats.json
    <data_dir>/<name>/train-00000.array_record
    <data_dir>/<name>/train-00001.array_record
    <data_dir>/<name>/validation-00000.array_record

Each record is one document's token ids as little-endian int32 bytes (``np.int32.tobytes()``),
written with ``group_size:1`` so that any document is read on its own. Documents hold the raw
tokens only: the pipeline adds ``</s>`` and the CM3 sentinels, so the writer refuses ``<pad>``,
``</s>``, ``<eoss>`` and the sentinels. ``stats.json`` is written last and marks a complete
dataset::

    {"format": "mmlaws-shards/1", "name": "code", "modalities": ["text"],
     "vocab": {"preset": "TINY", "text_size": 32, ...},
     "splits": {"train": {"documents": 180, "tokens": 9120,
                          "shards": [{"file": "train-00000.array_record",
                                      "documents": 180, "tokens": 9120,
                                      "bytes": 37421, "sha256": "5be1…"}]}}}

The writer builds the folder under a temporary name (``<name>.tmp-<pid>``) and renames it
when done, so a failed build leaves nothing behind, and a killed one leaves a folder that the
next write of that dataset removes (:func:`remove_stale`). A dataset whose ``train`` split
would hold no document is refused. Each shard's size and SHA-256 are stored, and
:func:`damaged_shards` checks them (a builder's cache does before it calls a dataset up to
date); the reader (:class:`ShardSource`, a grain ``RandomAccessDataSource``) raises
:class:`~mmlaws.errors.DataError` naming the file at fault.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mmlaws.data import vocab
from mmlaws.data.vocab import Modality, VocabLayout
from mmlaws.errors import DataError

FORMAT = "mmlaws-shards/1"
STATS = "stats.json"
PRESETS = vocab.LAYOUTS  # the one table of layouts by name (kept under this name for builders)
_LAYOUT_FIELDS = ("text_size", "image_codes", "speech_units", "num_sentinels", "pad_to")
# Specials a document may hold: the modality boundaries (the pipeline adds the rest).
_BOUNDARIES = ("image_begin_id", "image_end_id", "speech_begin_id", "speech_end_id")


def layout_to_json(layout: VocabLayout) -> dict:
    """The layout's sizes, and the preset's name when it is one."""
    return {"preset": vocab.layout_name(layout), **{f: getattr(layout, f) for f in _LAYOUT_FIELDS}}


def layout_from_json(data: Mapping) -> VocabLayout:
    return VocabLayout(**{f: int(data[f]) for f in _LAYOUT_FIELDS})


def allowed_ids(layout: VocabLayout, modalities: Sequence[str]) -> np.ndarray:
    """Boolean table over ``[0, layout.size)``: the ids a document of these modalities may hold."""
    ok = np.zeros(layout.size, bool)
    for name in modalities:
        lo, hi = layout.range_of(_modality(name))
        ok[lo:hi] = True
    ok[[getattr(layout, b) for b in _BOUNDARIES]] = True
    return ok


def _modality(name: str) -> Modality:
    if name not in ("text", "image", "speech"):
        raise ValueError(f"modality must be 'text', 'image' or 'speech', got {name!r}")
    return Modality[name.upper()]


def write_dataset(
    data_dir: str | os.PathLike,
    name: str,
    splits: Mapping[str, Iterable[Sequence[int]]],
    *,
    layout: VocabLayout,
    modalities: Sequence[str],
    documents_per_shard: int = 100_000,
) -> dict:
    """Write ``<data_dir>/<name>/`` from documents per split; returns the stats written.

    Every token is checked against ``modalities``' id ranges (plus the modality boundary
    tokens); a bad one raises :class:`DataError` naming the shard file and the document.
    An existing dataset of that name is replaced only once the new one is complete.
    """
    ok = allowed_ids(layout, modalities)
    final = os.path.join(os.fspath(data_dir), name)
    remove_stale(data_dir, name)
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    stats = {"format": FORMAT, "name": name, "modalities": list(modalities),
             "vocab": layout_to_json(layout), "splits": {}}
    try:
        for split, documents in splits.items():
            check = lambda doc, file, i: _checked(doc, ok, layout, os.path.join(final, file), i)
            stats["splits"][split] = _write_split(tmp, split, documents, check,
                                                  documents_per_shard)
            if split == "train" and not stats["splits"][split]["documents"]:
                raise DataError(f"{final}: the train split would hold no document (a token "
                                f"budget below one document?); nothing written")
        with open(os.path.join(tmp, STATS), "w") as f:
            json.dump(stats, f, indent=1)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return stats


def _write_split(folder: str, split: str, documents, check, per_shard: int) -> dict:
    """Write one split's shards into ``folder``; returns its entry of ``stats.json``."""
    from array_record.python import array_record_module

    shards, writer = [], None
    try:
        for doc in documents:
            if writer is None or shards[-1]["documents"] == per_shard:
                if writer is not None:
                    writer.close()
                shards.append({"file": f"{split}-{len(shards):05d}.array_record",
                               "documents": 0, "tokens": 0})
                writer = array_record_module.ArrayRecordWriter(
                    os.path.join(folder, shards[-1]["file"]), "group_size:1")
            shard = shards[-1]
            tokens = check(doc, shard["file"], shard["documents"])
            writer.write(tokens.tobytes())
            shard["documents"] += 1
            shard["tokens"] += len(tokens)
    finally:
        if writer is not None:
            writer.close()
    for shard in shards:
        path = os.path.join(folder, shard["file"])
        shard["bytes"], shard["sha256"] = os.path.getsize(path), checksum(path)
    return {"documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards), "shards": shards}


def _checked(doc, ok: np.ndarray, layout: VocabLayout, where: str, index: int) -> np.ndarray:
    tokens = np.asarray(doc)
    if tokens.ndim != 1 or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer):
        raise DataError(f"{where}: document {index} must be a non-empty 1-D integer array, "
                        f"got shape {tokens.shape} dtype {tokens.dtype}")
    inside = (tokens >= 0) & (tokens < layout.size)
    good = inside.copy()
    good[inside] = ok[tokens[inside]]
    if not good.all():
        pos = int(np.argmin(good))
        bad = int(tokens[pos])
        what = layout.token_name(bad) if 0 <= bad < layout.size else "outside the vocabulary"
        raise DataError(f"{where}: document {index}, position {pos}: token {bad} ({what}) is "
                        f"not allowed in this dataset")
    return tokens.astype("<i4")


def checksum(path: str) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damaged_shards(data_dir: str | os.PathLike, name: str, stats: Mapping) -> list[str]:
    """What is wrong with the shard files ``stats`` lists (missing, another size or checksum,
    none stored), one phrase each; empty when every shard is as written."""
    folder = os.path.join(os.fspath(data_dir), name)
    problems = []
    for split in stats["splits"].values():
        for shard in split["shards"]:
            path = os.path.join(folder, shard["file"])
            if not os.path.isfile(path):
                problems.append(f"{path} is missing")
            elif "sha256" not in shard:
                problems.append(f"{path} has no stored checksum (an older build)")
            elif (os.path.getsize(path) != shard.get("bytes")
                  or checksum(path) != shard["sha256"]):
                problems.append(f"{path} is damaged (its checksum differs from {STATS}'s)")
    return problems


def remove_stale(data_dir: str | os.PathLike, name: str) -> list[str]:
    """Removes the ``<name>.tmp-<pid>`` folders of builds whose process is gone (killed);
    returns their paths."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(os.fspath(data_dir)), f"{name}.tmp-*")):
        pid = path.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and _running(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's own leftover: it is not writing it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_stats(data_dir: str | os.PathLike, name: str) -> dict:
    """The ``stats.json`` of one dataset; :class:`DataError` if missing or malformed."""
    path = os.path.join(os.fspath(data_dir), name, STATS)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file: dataset {name!r} is not built under {data_dir} "
                        f"(run its builder, or shards.write_synthetic for a demo)")
    try:
        with open(path) as f:
            stats = json.load(f)
        if stats.get("format") != FORMAT:
            raise ValueError(f"format is {stats.get('format')!r}, expected {FORMAT!r}")
        layout_from_json(stats["vocab"])
        return stats
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: malformed stats file ({err})") from err


class ShardSource:
    """Random access to one split of one dataset: ``source[i]`` is document ``i``, int32.

    A grain ``RandomAccessDataSource`` (``__len__`` and ``__getitem__``), picklable for grain
    workers. Opening checks every shard file against ``stats.json``.
    """

    def __init__(self, data_dir: str | os.PathLike, name: str, split: str = "train"):
        from grain.sources import ArrayRecordDataSource

        self.name, self.split = name, split
        self.stats = read_stats(data_dir, name)
        self.layout = layout_from_json(self.stats["vocab"])
        self.modalities = tuple(self.stats["modalities"])
        folder = os.path.join(os.fspath(data_dir), name)
        if split not in self.stats["splits"]:
            raise DataError(f"{folder}/{STATS}: dataset {name!r} has no split {split!r} "
                            f"(it has {sorted(self.stats['splits'])})")
        shards = self.stats["splits"][split]["shards"]
        self._paths = [os.path.join(folder, s["file"]) for s in shards]
        self._files = []
        for path, shard in zip(self._paths, shards, strict=True):
            if not os.path.isfile(path):
                raise DataError(f"{path}: missing shard of dataset {name!r}")
            try:
                source = ArrayRecordDataSource([path])
                count = len(source)
            except Exception as err:
                raise DataError(f"{path}: corrupt or unreadable ArrayRecord shard "
                                f"({type(err).__name__}: {err})") from err
            if count != shard["documents"]:
                raise DataError(f"{path}: holds {count} documents, {STATS} says "
                                f"{shard['documents']}")
            self._files.append(source)
        self._ends = np.cumsum([s["documents"] for s in shards], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"document {index} out of range [0, {len(self)})")
        f = int(np.searchsorted(self._ends, index, side="right"))
        local = index - (int(self._ends[f - 1]) if f else 0)
        try:
            record = self._files[f][local]
        except Exception as err:
            raise DataError(f"{self._paths[f]}: cannot read document {local} "
                            f"({type(err).__name__}: {err})") from err
        if len(record) % 4:
            raise DataError(f"{self._paths[f]}: document {local} is {len(record)} bytes, "
                            f"not a whole number of int32 tokens")
        return np.frombuffer(record, dtype="<i4").astype(np.int32)

    def __repr__(self) -> str:
        return f"ShardSource({self.name!r}, {self.split!r}, documents={len(self)})"


def synthetic_documents(layout: VocabLayout, modality: str, count: int, *, min_length: int,
                        max_length: int, seed) -> list[np.ndarray]:
    """``count`` random documents of one modality, lengths uniform in [min, max].

    Image and speech documents are wrapped in their boundary tokens (``<image>`` … ``</image>``)
    as a real builder writes them; the length counts the boundaries. ``seed``: anything
    ``np.random.default_rng`` takes.
    """
    rng = np.random.default_rng(seed)
    lo, hi = layout.range_of(_modality(modality))
    wrap = {"image": (layout.image_begin_id, layout.image_end_id),
            "speech": (layout.speech_begin_id, layout.speech_end_id)}.get(modality)
    docs = []
    for length in rng.integers(min_length, max_length + 1, size=count):
        body = rng.integers(lo, hi, size=int(length) - (2 if wrap else 0))
        docs.append(np.concatenate([[wrap[0]], body, [wrap[1]]]) if wrap else body)
    return [d.astype(np.int32) for d in docs]


def write_synthetic(
    data_dir: str | os.PathLike,
    name: str,
    *,
    modality: str = "text",
    layout: VocabLayout = vocab.TINY,
    documents: Mapping[str, int] | None = None,
    min_length: int = 8,
    max_length: int = 64,
    seed: int = 0,
    documents_per_shard: int = 100_000,
) -> dict:
    """A deterministic synthetic dataset for tests and demos (see :func:`synthetic_documents`)."""
    documents = {"train": 200, "validation": 20} if documents is None else documents
    if min_length < (3 if modality in ("image", "speech") else 1) or max_length < min_length:
        raise ValueError(f"bad document lengths [{min_length}, {max_length}] for {modality}")
    splits = {split: synthetic_documents(layout, modality, n, min_length=min_length,
                                         max_length=max_length, seed=(seed, i))
              for i, (split, n) in enumerate(documents.items())}
    return write_dataset(data_dir, name, splits, layout=layout, modalities=[modality],
                         documents_per_shard=documents_per_shard)
