"""The grain path (no TensorFlow): shards → per-document objective → packing → exact mixture.

Per dataset, a ``grain.MapDataset``: the shard source, sliced for this host
(``[shard_index::shard_count]``), shuffled (a fresh permutation each epoch), repeated, and
mapped through the objective with a per-document random generator (``random_map``, so each
document's CM3 spans depend only on the seed and its position in the stream). A dataset's
seeds come from ``(seed, its name)``, so adding a dataset to a mixture leaves the others'
document order and spans as they were. Then, as
``grain.IterDataset``\\s: :class:`~mmlaws.data.packing.Packer` per dataset,
:class:`~mmlaws.data.mixing.Mixer` across them, and ``batch``.

A batch is a dict of numpy arrays ``[batch_size, sequence_length]`` as
:mod:`mmlaws.data.batch` defines it; the iterator is a :class:`~mmlaws.data.batch.Batches`.

The iterator's ``get_state()`` is a JSON-able dict; ``set_state`` on a fresh iterator of the
same mixture resumes exactly (grain's orbax ``PyGrainCheckpointHandler`` saves it too)::

    it = mmlaws.data.mixture({"code": 0.7, "text": 0.3}, sequence_length=512,
                             batch_size=8, seed=0, data_dir="data")
    batch = next(it)
    state = it.get_state()

Everything runs in the calling thread. For parallel workers, use grain on the dataset:
``mixture_dataset(...).mp_prefetch(grain.MultiprocessingOptions(num_workers=n))`` (absl flags
must be parsed, e.g. ``absl.flags.FLAGS.mark_as_parsed()``); each worker packs and mixes its
own slice of the documents, so every block of every worker is exact, and the state resumes.
"""

from __future__ import annotations

import functools
import sys
import zlib
from collections.abc import Mapping

import grain
import numpy as np

from mmlaws.data import batch as batch_lib
from mmlaws.data import mixing, packing, shards
from mmlaws.errors import ConfigError, DataError


class EpochShuffleMapDataset(grain.MapDataset):
    """The parent's elements in a fresh permutation each epoch, for ``epochs`` (None: forever).

    Epoch ``e`` is ``np.random.default_rng([seed, e]).permutation(len(parent))``, computed once
    per epoch (4 bytes per document); grain's own ``shuffle`` costs a keyed index shuffle for
    every element, several times slower in this pipeline.
    """

    def __init__(self, parent: grain.MapDataset, *, seed: int, epochs: int | None = None):
        super().__init__(parent)
        self._seed, self._epochs, self._size = seed, epochs, len(parent)
        self._epoch, self._order = -1, None

    def __len__(self) -> int:
        return sys.maxsize if self._epochs is None else self._size * self._epochs

    def __str__(self) -> str:
        return f"EpochShuffleMapDataset(seed={self._seed}, epochs={self._epochs})"

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        epoch, i = divmod(index, self._size)
        if epoch != self._epoch:
            rng = np.random.default_rng([self._seed, epoch])
            self._order = rng.permutation(self._size).astype(np.int32)
            self._epoch = epoch
        return self._parent[int(self._order[i])]


class _PackIterator(grain.DatasetIterator):
    def __init__(self, parent, sequence_length: int, pad_id: int):
        super().__init__(parent)
        self._packer = packing.Packer(parent, sequence_length, pad_id=pad_id)

    def __next__(self):
        return next(self._packer)

    def get_state(self):
        return self._packer.get_state()

    def set_state(self, state):
        self._packer.set_state(state)


class PackIterDataset(grain.IterDataset):
    """Packs a dataset of examples into rows (:class:`mmlaws.data.packing.Packer`)."""

    def __init__(self, parent: grain.IterDataset, sequence_length: int, *, pad_id: int = 0):
        super().__init__(parent)
        self._length, self._pad_id = sequence_length, pad_id

    def __iter__(self):
        return _PackIterator(self._parent.__iter__(), self._length, self._pad_id)


class _MixIterator(grain.DatasetIterator):
    def __init__(self, parents, counts, seed: int):
        super().__init__(parents)
        self._mixer = mixing.Mixer(parents, counts, seed=seed)

    def __next__(self):
        return next(self._mixer)

    def get_state(self):
        return self._mixer.get_state()

    def set_state(self, state):
        self._mixer.set_state(state)


class MixIterDataset(grain.IterDataset):
    """Interleaves row datasets with exact per-block counts (:class:`mmlaws.data.mixing.Mixer`)."""

    def __init__(self, parents, counts, *, seed: int):
        super().__init__(list(parents))
        self._counts, self._seed = list(counts), seed

    def __iter__(self):
        return _MixIterator([p.__iter__() for p in self._parents], self._counts, self._seed)


def _seeds(seed: int, name: str) -> tuple[int, int]:
    """Two 32-bit seeds (shuffle, objective) for one dataset, from the seed and its name."""
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(2)
    return int(state[0]), int(state[1])


def examples_dataset(source: shards.ShardSource, *, objective: str, seed: int,
                     shuffle: bool = True, repeat: bool = True, shard_index: int = 0,
                     shard_count: int = 1) -> grain.MapDataset:
    """One dataset's documents as examples of ``objective`` (dicts of three arrays)."""
    shuffle_seed, map_seed = _seeds(seed, source.name)
    ds = grain.MapDataset.source(source)[shard_index::shard_count]
    if len(ds) == 0:
        raise DataError(f"dataset {source.name!r} split {source.split!r} has no documents "
                        f"for shard {shard_index} of {shard_count}")
    if shuffle:
        ds = EpochShuffleMapDataset(ds, seed=shuffle_seed, epochs=None if repeat else 1)
    elif repeat:
        ds = ds.repeat()
    transform = functools.partial(packing.document_example, objective=objective,
                                  layout=source.layout)
    return ds.random_map(transform, seed=map_seed)


def mixture_dataset(
    shares: Mapping[str, float],
    *,
    sequence_length: int,
    batch_size: int,
    data_dir: str,
    seed: int = 0,
    objective: str = "cm3",
    split: str = "train",
    block_size: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    shard_index: int = 0,
    shard_count: int = 1,
    reader: str = "shards",
) -> grain.IterDataset:
    """The mixture as a ``grain.IterDataset`` of batches (see :func:`mixture`)."""
    _check_args(shares, sequence_length, batch_size, objective, shard_index, shard_count)
    names = list(shares)
    weights = [shares[n] for n in names]
    try:
        block_size = mixing.default_block_size(weights) if block_size is None else block_size
        counts = mixing.block_counts(weights, block_size)
    except ConfigError as err:
        raise ConfigError(f"mixture {dict(shares)}: {err}") from err
    sources = [open_source(data_dir, name, split, reader=reader) for name in names]
    for source in sources[1:]:
        if source.layout != sources[0].layout:
            raise ConfigError(f"datasets {names[0]!r} and {source.name!r} use different "
                              f"vocabulary layouts: {sources[0].layout} vs {source.layout}")
    read = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)  # in the calling thread
    rows = []
    for source in sources:
        examples = examples_dataset(source, objective=objective, seed=seed, shuffle=shuffle,
                                    repeat=repeat, shard_index=shard_index,
                                    shard_count=shard_count)
        rows.append(PackIterDataset(examples.to_iter_dataset(read), sequence_length,
                                    pad_id=source.layout.pad_id))
    mixed = MixIterDataset(rows, counts, seed=seed)
    stack = functools.partial(batch_lib.stack_rows, batch_size=batch_size,
                              pad_id=sources[0].layout.pad_id)
    return mixed.batch(batch_size, batch_fn=stack)


def open_source(data_dir: str, name: str, split: str, *, reader: str = "shards"):
    """One split of one dataset, read directly (``"shards"``) or through TFDS (``"tfds"``)."""
    if reader == "shards":
        return shards.ShardSource(data_dir, name, split)
    if reader == "tfds":
        try:
            from mmlaws.data import tfds_shards
        except ImportError as err:
            raise ConfigError(f"reader='tfds' needs tensorflow-datasets (the seqio extra; "
                              f"TensorFlow itself is not needed): {err}") from err
        return tfds_shards.TfdsShardSource(data_dir, name, split)
    raise ConfigError(f"reader must be 'shards' or 'tfds', got {reader!r}")


def mixture(
    shares: Mapping[str, float],
    *,
    sequence_length: int,
    batch_size: int,
    data_dir: str,
    seed: int = 0,
    objective: str = "cm3",
    split: str = "train",
    block_size: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    shard_index: int = 0,
    shard_count: int = 1,
    reader: str = "shards",
) -> grain.DatasetIterator:
    """Batches of an exact token-share mixture of built datasets, with resumable state.

    Args:
      shares: dataset name (a folder under ``data_dir``) → token share; shares sum to 1.
        ``dataset_ids`` in the batches index ``list(shares)``.
      sequence_length, batch_size: ``T`` and ``B`` of every batch (this host's batch).
      data_dir: the folder that holds the datasets (:mod:`mmlaws.data.shards`).
      seed: decides document order, CM3 spans and the order of rows in each block.
      objective: ``"cm3"`` (paper mode, per document) or ``"causal"``.
      split: which split of every dataset.
      block_size: rows per block of exact counts; default: the smallest exact one
        (:func:`mmlaws.data.mixing.default_block_size`).
      shuffle, repeat: shuffle documents (anew each epoch) and repeat them forever; with
        ``repeat=False`` the mixture ends when a dataset runs out, its last batch filled with
        rows of padding (for evaluation: ``{name: 1.0}`` then covers the whole split).
      shard_index, shard_count: this host's slice of every dataset's documents.
      reader: ``"shards"`` (:class:`~mmlaws.data.shards.ShardSource`) or ``"tfds"``
        (:class:`~mmlaws.data.tfds_shards.TfdsShardSource`, TFDS random access; no TensorFlow):
        the same documents either way.

    Returns:
      A grain ``DatasetIterator`` of batch dicts, with ``get_state()``/``set_state()``. It also
      carries ``shares``, ``batch_size``, ``sequence_length`` and ``objective``, which training
      records in its run header.
    """
    it = iter(mixture_dataset(
        shares, sequence_length=sequence_length, batch_size=batch_size, data_dir=data_dir,
        seed=seed, objective=objective, split=split, block_size=block_size, shuffle=shuffle,
        repeat=repeat, shard_index=shard_index, shard_count=shard_count, reader=reader))
    it.shares, it.batch_size = dict(shares), batch_size
    it.sequence_length, it.objective = sequence_length, objective
    return it


def _check_args(shares, sequence_length, batch_size, objective, shard_index, shard_count):
    if not isinstance(shares, Mapping) or not shares:
        raise ConfigError(f"shares must be a non-empty dict of dataset name -> token share, "
                          f"got {shares!r}")
    for name, value in (("sequence_length", sequence_length), ("batch_size", batch_size),
                        ("shard_count", shard_count)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if objective not in packing.OBJECTIVES:
        raise ConfigError(f"objective must be one of {packing.OBJECTIVES}, got {objective!r}")
    if not 0 <= shard_index < shard_count:
        raise ConfigError(f"shard_index must be in [0, {shard_count}), got {shard_index}")
