"""The built datasets as TFDS datasets, read in place (no copy, no TensorFlow needed).

Import explicitly (never imported by ``mmlaws.data``); needs ``tensorflow-datasets``, not
TensorFlow::

    from mmlaws.data import tfds_shards

    builder = tfds_shards.builder("data", "code")          # a tfds.core.DatasetBuilder
    builder.info.metadata["modalities"], builder.info.metadata["tokens"]["train"]
    builder.info.splits["train"].num_examples               # documents
    builder.as_data_source("train")[0]                      # {"tokens": int32 [len(doc)]}
    builder.as_dataset("train")                             # tf.data (TensorFlow needed)
    source = tfds_shards.TfdsShardSource("data", "code")    # for grain, like ShardSource

**What is written.** :func:`write_info` adds TFDS's metadata files (``dataset_info.json``,
``features.json``, ``metadata.json``) beside ``stats.json`` in ``<data_dir>/<name>/``; the
ArrayRecord shards are not touched. The split infos point at them through the file template
``{SPLIT}-{SHARD_INDEX}.array_record`` (``train-00000.array_record``), with the documents per
shard from ``stats.json``. ``info.metadata`` holds ``modalities``, ``tokens`` and
``documents`` per split and the vocabulary ``layout`` (as in ``stats.json``).
:func:`builder` writes them when missing or out of date, then opens the folder with
``tfds.builder_from_directory``.

**Records.** A shard record is a document's raw little-endian int32 bytes (see
:mod:`mmlaws.data.shards`), not a ``tf.train.Example``. The features, :class:`RawTokens`
(``{"tokens": int32 [None]}``), decode them with ``np.frombuffer`` in
``deserialize_example_np``, which is what ``tfds.data_source`` and ``as_data_source`` use: TFDS
4.9.10 imports and serves random access without TensorFlow (it imports TensorFlow only when
``as_dataset`` is called), so the grain path can read through TFDS with TensorFlow absent
(``mixture(..., reader="tfds")``). ``as_dataset`` cannot parse raw records with TFDS's
``tf.train.Example`` reader; :class:`ShardsBuilder` (what :func:`builder` returns) therefore
builds its ``tf.data`` pipeline from the same random access.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import read_only_builder

from mmlaws.data import shards
from mmlaws.data.vocab import resolve_layout
from mmlaws.errors import DataError

VERSION = "1.0.0"
FILE_TEMPLATE = "{SPLIT}-{SHARD_INDEX}.{FILEFORMAT}"
INFO_FILES = ("dataset_info.json", "features.json", "metadata.json")


class RawTokens(tfds.features.FeaturesDict):
    """``{"tokens": int32 [None]}`` stored as raw little-endian int32 bytes, one document each."""

    def __init__(self, features=None):  # ``features`` is what from_json hands back; fixed here
        del features
        super().__init__({"tokens": tfds.features.Tensor(shape=(None,), dtype=np.int32)})

    @classmethod
    def from_json_content(cls, value) -> RawTokens:
        return cls()

    def deserialize_example_np(self, serialized_example, *, decoders=None) -> dict:
        return {"tokens": np.frombuffer(serialized_example, dtype="<i4").astype(np.int32)}

    def deserialize_example(self, serialized_example, *, decoders=None) -> dict:
        import tensorflow as tf

        return {"tokens": tf.io.decode_raw(serialized_example, tf.int32, little_endian=True)}


def _metadata(stats: dict) -> dict:
    splits = stats["splits"]
    return {"modalities": list(stats["modalities"]), "layout": dict(stats["vocab"]),
            "tokens": {s: int(c["tokens"]) for s, c in splits.items()},
            "documents": {s: int(c["documents"]) for s, c in splits.items()}}


def _info(folder: str, name: str, stats: dict) -> tfds.core.DatasetInfo:
    template = tfds.core.ShardedFileTemplate(data_dir=folder, template=FILE_TEMPLATE,
                                             dataset_name=name, filetype_suffix="array_record")
    split_infos = []
    for split, counts in stats["splits"].items():
        files = [os.path.join(folder, s["file"]) for s in counts["shards"]]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise DataError(f"{missing[0]}: missing shard of dataset {name!r}")
        split_infos.append(tfds.core.SplitInfo(
            name=split, shard_lengths=[int(s["documents"]) for s in counts["shards"]],
            num_bytes=sum(os.path.getsize(f) for f in files), filename_template=template))
    identity = tfds.core.dataset_info.DatasetIdentity(
        name=name, version=tfds.core.Version(VERSION), data_dir=folder, module_name="")
    info = tfds.core.DatasetInfo(
        builder=identity, features=RawTokens(), metadata=tfds.core.MetadataDict(_metadata(stats)),
        description=f"mmlaws dataset {name!r} ({', '.join(stats['modalities'])}): one document "
                    f"per record, raw int32 token ids of the layout in metadata['layout'].")
    info.set_file_format("array_record")
    info.set_splits(tfds.core.SplitDict(split_infos))
    return info


def write_info(data_dir: str | os.PathLike, name: str) -> str:
    """Write TFDS's metadata for ``<data_dir>/<name>/`` (module docstring); returns the folder.

    Each file is written under a temporary name and renamed into place, so concurrent writers
    (they write the same bytes) never leave a reader a half-written file.
    """
    folder = os.path.join(os.fspath(data_dir), name)
    stats = shards.read_stats(data_dir, name)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tfds-") as tmp:
        _info(folder, name, stats).write_to_directory(tmp)
        for file in INFO_FILES:
            os.replace(os.path.join(tmp, file), os.path.join(folder, file))
    return folder


def _info_is_current(folder: str, stats: dict) -> bool:
    try:
        with open(os.path.join(folder, "metadata.json")) as f:
            written = json.load(f)
        with open(os.path.join(folder, "dataset_info.json")) as f:
            splits = json.load(f)["splits"]
    except (OSError, ValueError, KeyError):
        return False
    lengths = {s["name"]: [int(n) for n in s["shardLengths"]] for s in splits}
    wanted = {s: [int(x["documents"]) for x in c["shards"]] for s, c in stats["splits"].items()}
    return written == _metadata(stats) and lengths == wanted


class ShardsBuilder(read_only_builder.ReadOnlyBuilder):
    """TFDS's read-only builder, with ``as_dataset`` served from random access (raw records)."""

    def _as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        import tensorflow as tf

        source = self.as_data_source(split)
        order = tf.data.Dataset.range(len(source))
        if shuffle_files:
            seed = getattr(read_config, "shuffle_seed", None)
            order = order.shuffle(len(source), seed=seed, reshuffle_each_iteration=True)

        def read(index):
            return source[int(index)]["tokens"]

        def to_example(index):
            tokens = tf.numpy_function(read, [index], tf.int32, stateful=False)
            tokens.set_shape([None])
            return {"tokens": tokens}

        return order.map(to_example)


def builder(data_dir: str | os.PathLike, name: str) -> ShardsBuilder:
    """The TFDS builder of one built dataset; writes its TFDS metadata first when needed."""
    folder = os.path.join(os.fspath(data_dir), name)
    stats = shards.read_stats(data_dir, name)
    if not _info_is_current(folder, stats):
        write_info(data_dir, name)
    return ShardsBuilder(builder_dir=folder)


class TfdsShardSource:
    """One split of one dataset read through ``tfds`` random access: ``source[i]`` is document
    ``i`` (int32), the same documents in the same order as :class:`~mmlaws.data.shards.ShardSource`,
    whose attributes it shares (``name``, ``split``, ``stats``, ``layout``, ``modalities``)."""

    def __init__(self, data_dir: str | os.PathLike, name: str, split: str = "train"):
        self.name, self.split = name, split
        self.stats = shards.read_stats(data_dir, name)
        self.layout = shards.layout_from_json(self.stats["vocab"])
        self.modalities = tuple(self.stats["modalities"])
        if split not in self.stats["splits"]:
            raise DataError(f"{os.path.join(os.fspath(data_dir), name, shards.STATS)}: dataset "
                            f"{name!r} has no split {split!r} "
                            f"(it has {sorted(self.stats['splits'])})")
        self.builder = builder(data_dir, name)
        self._source = self.builder.as_data_source(split)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"document {index} out of range [0, {len(self)})")
        return self._source[index]["tokens"]

    def __repr__(self) -> str:
        return f"TfdsShardSource({self.name!r}, {self.split!r}, documents={len(self)})"


def synthetic_data(data_dir: str, datasets: Mapping[str, tuple[str, int, int]], *,
                   vocab: str = "tiny", documents: Mapping[str, int] | None = None,
                   seed: int = 0) -> str:
    """Build any missing synthetic dataset (name → (modality, min length, max length)) with
    :func:`mmlaws.data.shards.write_synthetic`, and its TFDS metadata; returns ``data_dir``.
    ``vocab``: a layout preset name. For demo configs such as ``configs/train/seqio_tiny.gin``
    (nothing is downloaded)."""
    layout = resolve_layout(vocab)
    for i, (name, (modality, lo, hi)) in enumerate(datasets.items()):
        if not os.path.isfile(os.path.join(data_dir, name, shards.STATS)):
            shards.write_synthetic(data_dir, name, modality=modality,
                                   layout=layout, documents=documents,
                                   min_length=lo, max_length=hi, seed=seed + i)
        builder(data_dir, name)  # writes the TFDS metadata when missing
    return data_dir
