"""The trainer's batches from a SeqIO mixture: ``loop.train(data=SeqioBatches(...))``.

Import explicitly (needs the ``seqio`` extra)::

    from mmlaws.data import seqio_batches

    data = seqio_batches.SeqioBatches({"code": 0.5, "text": 0.5}, data_dir="data",
                                      sequence_length=512, batch_size=8, vocab="small", seed=0)
    batch = next(data)          # the trainer's batch dict, [8, 512] arrays
    state = data.get_state()    # JSON-able; set_state(state) resumes on the same next batch

``mixture`` is a token-share dict (its tasks and exact mixture are registered from
``data_dir`` by :func:`mmlaws.data.seqio_tasks.register`) or the name of a registered exact
mixture or packed task (``"mmlaws_cm3:code_50.text_50"``). The mixture is read with
``seqio``'s own ``get_dataset`` and :class:`~mmlaws.data.seqio_packed.PackedFeatureConverter`,
then batched; the batches are those of ``mmlaws.data.mixture`` with the shares in dataset name
order, the same seed, ``T`` and batch size (:mod:`mmlaws.data.seqio_packed`).

**Batches**: ``inputs``, ``targets``, ``segment_ids`` (1… per document in a row, 0 padding),
``positions`` (from 0 per document), ``dataset_ids`` (index into ``list(shares)``, -1 on
padding), int32, and ``weights`` float32 (0 on padding and on the CM3 in-place sentinels), all
``[batch_size, sequence_length]``. Attributes: ``shares`` (dataset → token share, in the order
of ``dataset_ids``: name order), ``batch_size``, ``sequence_length``, ``objective``,
``modalities`` (dataset → its modalities joined by ``+``), ``layout``.

**State**: ``{"rows": rows read, "cursors": {task: [stream position, offset]}}``, where each
task's next row starts (carried by every row, :mod:`mmlaws.data.seqio_packed`). ``set_state``
builds the pipeline anew from there (:func:`~mmlaws.data.seqio_packed.read_plan`), reading
nothing that came before: its cost does not grow with the step.

**Start-up checks** (:class:`~mmlaws.errors.ConfigError`, one line naming the task and the
feature): every task must have the row features with their dtypes, the model's vocabulary
layout, the objective asked for and a resumable packed source; shares must sum to 1 and name
registered tasks.
"""

from __future__ import annotations

import atexit
import copy
import weakref
from collections.abc import Mapping

import numpy as np
import seqio
import tensorflow as tf

from mmlaws.data import seqio_packed, seqio_tasks, shards
from mmlaws.data.vocab import VocabLayout, resolve_layout
from mmlaws.errors import ConfigError

FEATURES = {"inputs": tf.int32, "targets": tf.int32, "weights": tf.float32,
            "segment_ids": tf.int32, "positions": tf.int32}
_CURSOR_SPEC = {seqio_packed.CURSOR: seqio.FeatureConverter.FeatureSpec(dtype=tf.int64)}


class PipelineIterator:
    """A tf.data iterator whose pipeline is deleted by an eager op, with the GIL released.

    A ``tf.data`` iterator deleted from Python (garbage collection, or interpreter exit) waits
    for its background threads with the GIL held; a thread inside a ``tf.numpy_function``
    (reading, CM3, packing) waits for the GIL: a deadlock. ``close`` runs ``DeleteIterator``
    as an eager op instead, which releases the GIL while the threads finish; iterators still
    open are closed at exit.
    """

    def __init__(self, dataset: tf.data.Dataset):
        self._spec = dataset.element_spec
        flat = tf.nest.flatten(self._spec)
        self._types, self._shapes = [s.dtype for s in flat], [s.shape for s in flat]
        self._handle, self._deleter = tf.raw_ops.AnonymousIteratorV2(
            output_types=self._types, output_shapes=self._shapes)
        tf.raw_ops.MakeIterator(dataset=tf.data.experimental.to_variant(dataset),
                                iterator=self._handle)
        _OPEN.add(self)

    def __next__(self) -> dict:
        try:
            out = tf.raw_ops.IteratorGetNext(iterator=self._handle, output_types=self._types,
                                             output_shapes=self._shapes)
        except tf.errors.OutOfRangeError:
            raise StopIteration from None
        return tf.nest.pack_sequence_as(self._spec, [t.numpy() for t in out])

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            tf.raw_ops.DeleteIterator(handle=handle, deleter=self._deleter)

    def __del__(self):
        self.close()


_OPEN: weakref.WeakSet[PipelineIterator] = weakref.WeakSet()


@atexit.register
def _close_open_iterators() -> None:
    for iterator in list(_OPEN):
        iterator.close()



class SeqioBatches:
    """Batches of a SeqIO exact mixture with resumable state (see the module docstring)."""

    def __init__(self, mixture: str | Mapping[str, float], *, sequence_length: int,
                 batch_size: int, vocab: str | VocabLayout, data_dir: str | None = None,
                 objective: str = "cm3", seed: int = 0, split: str = "train",
                 shuffle: bool = True, repeat: bool = True, shard_index: int = 0,
                 shard_count: int = 1):
        for name, value in (("sequence_length", sequence_length), ("batch_size", batch_size),
                            ("shard_count", shard_count)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= shard_index < shard_count:
            raise ConfigError(f"shard_index must be in [0, {shard_count}), got {shard_index}")
        _hide_accelerators_from_tensorflow()
        self.layout, self.objective = resolve_layout(vocab), objective
        self.batch_size, self.sequence_length = batch_size, sequence_length
        self.seed, self.split, self.shuffle, self.repeat = seed, split, shuffle, repeat
        self.shard_info = seqio.ShardInfo(shard_index, shard_count) if shard_count > 1 else None
        self.mixture = self._registered(mixture, data_dir)
        self.provider = seqio.get_mixture_or_task(self.mixture)
        tasks = self._checked_tasks()
        self.tasks = [t.name for t in tasks]  # dataset_ids index this list
        rates = ([float(self.provider.get_rate(t)) for t in tasks]
                 if isinstance(self.provider, seqio.Mixture) else [1.0])
        self.shares = {t.source.name: r / sum(rates) for t, r in zip(tasks, rates, strict=True)}
        self.modalities = {t.source.name: "+".join(shards.read_stats(
            t.source.data_dir, t.source.name)["modalities"]) for t in tasks}
        self._state = {"rows": 0, "cursors": {}}
        self._iterator = self._build()

    # -- start-up ---------------------------------------------------------------------------
    def _registered(self, mixture, data_dir) -> str:
        if isinstance(mixture, Mapping):
            if data_dir is None:
                raise ConfigError(f"mixture {dict(mixture)}: a dict of shares needs data_dir "
                                  f"(the folder of built datasets) to register its tasks")
            seqio_tasks.mixture_name(mixture, objective=self.objective)  # checks the shares
            seqio_tasks.register(data_dir, self.layout, objective=self.objective, mixtures=[])
            return seqio_tasks.register_mixture(data_dir, mixture, objective=self.objective)
        if not isinstance(mixture, str):
            raise ConfigError(f"mixture must be a registered name or a dict of shares, "
                              f"got {mixture!r}")
        if mixture not in seqio.MixtureRegistry.names() and \
                mixture not in seqio.TaskRegistry.names():
            raise ConfigError(f"mixture {mixture!r} is not registered (register it with "
                              f"mmlaws.data.seqio_tasks.register, or pass its shares and "
                              f"data_dir)")
        return mixture

    def _checked_tasks(self) -> list:
        provider, name = self.provider, self.mixture
        if isinstance(provider, seqio.Mixture):
            tasks = provider.tasks
            if not isinstance(getattr(provider, "_sample_fn", None), seqio_packed.ExactSampler):
                raise ConfigError(f"mixture {name!r} does not interleave rows exactly (its "
                                  f"sample_fn is not seqio_packed.ExactSampler): register it "
                                  f"with seqio_tasks.register_mixture(sampling='exact')")
        else:
            tasks = [provider]
        for task in tasks:
            check_task(task, self.layout, self.objective)
        return tasks

    # -- batches ----------------------------------------------------------------------------
    def _build(self):
        state = self._state
        with seqio_packed.read_plan(rows=state["rows"], cursors=state["cursors"],
                                    repeat=self.repeat):
            kwargs = dict(sequence_length={"targets": self.sequence_length}, split=self.split,
                          shuffle=self.shuffle, seed=self.seed, shard_info=self.shard_info,
                          num_epochs=1, try_in_mem_cache=False)
            if isinstance(self.provider, seqio.Mixture):
                kwargs["passthrough_features"] = [seqio_packed.CURSOR]
            ds = self.provider.get_dataset(**kwargs)
        converter = seqio_packed.PackedFeatureConverter(passthrough_features=_CURSOR_SPEC)
        ds = converter(ds, {"targets": self.sequence_length, seqio_packed.CURSOR: 2})
        return PipelineIterator(ds.batch(self.batch_size).prefetch(2))

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rows = next(self._iterator)
        count = len(rows["dataset_ids"])
        for ids, cursor in zip(rows["dataset_ids"], rows[seqio_packed.CURSOR], strict=True):
            self._state["cursors"][self.tasks[int(ids.max())]] = [int(c) for c in cursor]
        self._state["rows"] += count
        batch = {key: rows[model] for model, key in seqio_packed.MODEL_FEATURES.items()}
        if count < self.batch_size:  # the end of a finite read: rows of padding fill the batch
            fill = {"inputs": self.layout.pad_id, "targets": self.layout.pad_id,
                    "dataset_ids": -1}
            batch = {k: np.concatenate([v, np.full((self.batch_size - count, *v.shape[1:]),
                                                   fill.get(k, 0), v.dtype)])
                     for k, v in batch.items()}
        return batch

    def get_state(self) -> dict:
        return copy.deepcopy(self._state)

    def set_state(self, state: Mapping) -> None:
        try:
            cursors = {str(t): [int(i), int(o)] for t, (i, o) in state["cursors"].items()}
            self._state = {"rows": int(state["rows"]), "cursors": cursors}
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"SeqioBatches.set_state: malformed state {state!r} ({err})") \
                from err
        unknown = sorted(set(cursors) - set(self.tasks))
        if unknown:
            raise ConfigError(f"SeqioBatches.set_state: the state names tasks {unknown} that "
                              f"are not in mixture {self.mixture!r} ({self.tasks})")
        self.close()
        self._iterator = self._build()

    def close(self) -> None:
        """Stop the pipeline's threads (also done when the iterator is replaced, or at exit)."""
        self._iterator.close()


def check_task(task: seqio.Task, layout: VocabLayout, objective: str) -> None:
    """ConfigError (one line, naming the task and the feature) unless the trainer can read it."""
    features = task.output_features
    for feature, dtype in FEATURES.items():
        if feature not in features:
            raise ConfigError(f"task {task.name!r} has no feature {feature!r} (the trainer needs "
                              f"{sorted(FEATURES)}: use the packed tasks of "
                              f"seqio_tasks.register)")
        if features[feature].dtype != dtype:
            raise ConfigError(f"task {task.name!r} feature {feature!r} is "
                              f"{features[feature].dtype.name}, the trainer needs {dtype.name}")
    for feature in FEATURES:
        vocab = features[feature].vocabulary
        if getattr(vocab, "layout", None) != layout:
            raise ConfigError(f"task {task.name!r} feature {feature!r}: vocabulary {vocab} is "
                              f"not the model's layout {shards.layout_to_json(layout)}")
    if not isinstance(task.source, seqio_packed.DocumentStream):
        raise ConfigError(f"task {task.name!r} has no feature {seqio_packed.CURSOR!r} (its "
                          f"source {type(task.source).__name__} cannot resume at a row): use "
                          f"the packed tasks of seqio_tasks.register")
    if task.source.objective != objective:
        raise ConfigError(f"task {task.name!r} uses objective {task.source.objective!r}, not "
                          f"{objective!r}")


def _hide_accelerators_from_tensorflow() -> None:
    """tf.data runs on the host: keep TensorFlow off the GPUs that JAX uses."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TensorFlow already initialised its devices
        pass
