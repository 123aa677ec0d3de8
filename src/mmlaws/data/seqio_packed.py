"""SeqIO pieces of the exact path: packed-row Tasks, the exact Mixture, the feature converter.

Registered by :func:`mmlaws.data.seqio_tasks.register`; read by
:class:`mmlaws.data.seqio_batches.SeqioBatches`. Each piece does in tf.data what the grain
path does, with the same code where it can, so that the two paths give the same batches:

1. **Source** (:class:`DocumentStream`, one per dataset): the dataset's documents read through
   TFDS (:class:`~mmlaws.data.tfds_shards.TfdsShardSource`), in the grain path's order and with
   its objective: element ``i`` of the stream is element ``i`` of
   :func:`mmlaws.data.grain_loader.examples_dataset` (host slice, a fresh permutation per epoch
   seeded by ``(seed, dataset name)``, ``</s>`` put before the document, then CM3 with the
   spans of the grain path). Features: ``inputs``, ``targets`` (int32 ``[L]``), ``weights``
   (float32 ``[L]``), ``index`` (the stream position) and ``offset`` (int64 scalars).
2. **Preprocessor** :func:`pack`: greedy packing into rows of ``T = sequence_length["targets"]``
   by the rule of :mod:`mmlaws.data.packing` (a whole example if it fits, a chunk if it is longer
   than a row, else the row is padded and closed), as a ``tf.data`` ``scan`` over the examples.
   Rows: ``inputs``, ``targets``, ``segment_ids``, ``positions`` (int32 ``[T]``), ``weights``
   (float32 ``[T]``) and ``cursor`` (int64 ``[2]``: the stream position and offset where the
   task's next row starts, which is what a checkpoint of the task records).
3. **Mixture** ``sample_fn`` :class:`ExactSampler`: the tasks' rows interleaved by
   ``tf.data.Dataset.choose_from_datasets`` over a repeating choice pattern, block ``b`` being
   :func:`mmlaws.data.mixing.block_order` ``(counts, seed, b)``: every block of ``k`` rows holds
   exactly ``counts[i]`` rows of task ``i``. Adds ``dataset_ids`` (``[T]``: the task's index
   in the mixture, -1 on padding). seqio orders a mixture's tasks by name, so index ``i`` is
   the ``i``-th dataset in name order.
4. **Feature converter** :class:`PackedFeatureConverter`: the rows, already packed, renamed to
   the decoder's model features with the CM3 loss weights kept (seqio's stock converters
   would weight every non-padding target, the in-place sentinels included).

**Where a read starts.** A seqio ``get_dataset`` call has no argument for a start position, so
the stream start and the choice pattern's start are read, when the dataset is built, from
:func:`read_plan` (a context variable; default: from the beginning, streams repeated forever)::

    with seqio_packed.read_plan(rows=1200, cursors={"mmlaws_cm3_packed:text": (311, 40)}):
        ds = mixture.get_dataset(sequence_length={"targets": 512}, seed=0, ...)

starts the mixture at row 1200 and the text task at stream position 311, offset 40, without
reading what came before. ``read_plan(repeat=False)`` reads one epoch of each task's documents
(the last row padded); the mixture then ends when a task runs out.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Mapping

import numpy as np
import seqio
import tensorflow as tf

from mmlaws.data import grain_loader, mixing, tfds_shards
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError

_END = np.iinfo(np.int64).max  # the stop of a stream that repeats forever
ROW_FEATURES = ("inputs", "targets", "weights", "segment_ids", "positions")
CURSOR = "cursor"


@dataclasses.dataclass(frozen=True)
class ReadPlan:
    """Where datasets built inside :func:`read_plan` start (see the module docstring)."""

    rows: int = 0  # rows of the mixture already read (the choice pattern starts there)
    cursors: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    repeat: bool = True


_PLAN: contextvars.ContextVar[ReadPlan | None] = contextvars.ContextVar("mmlaws_read_plan",
                                                                        default=None)


def current_plan() -> ReadPlan:
    """The plan of the enclosing :func:`read_plan` block (outside one: from the beginning)."""
    return _PLAN.get() or ReadPlan()


@contextlib.contextmanager
def read_plan(*, rows: int = 0, cursors: Mapping[str, tuple[int, int]] | None = None,
              repeat: bool = True):
    """Datasets built inside this block start at ``rows`` and ``cursors`` (task → position)."""
    token = _PLAN.set(ReadPlan(int(rows), {k: (int(i), int(o)) for k, (i, o) in
                                           (cursors or {}).items()}, bool(repeat)))
    try:
        yield
    finally:
        _PLAN.reset(token)


class DocumentStream(seqio.DataSource):
    """One dataset's documents as objective examples, in the grain path's order (item 1)."""

    def __init__(self, data_dir: str, name: str, *, task: str, objective: str,
                 splits: Mapping[str, int]):
        super().__init__(splits=list(splits), num_input_examples=None, caching_permitted=False,
                         performs_internal_shuffling=True)
        self.data_dir, self.name, self.task, self.objective = data_dir, name, task, objective
        self._sources: dict[str, tfds_shards.TfdsShardSource] = {}

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return True

    def list_shards(self, split: str) -> list[str]:
        return [split]

    def source(self, split: str) -> tfds_shards.TfdsShardSource:
        if split not in self._sources:  # opened once per split
            self._sources[split] = tfds_shards.TfdsShardSource(self.data_dir, self.name, split)
        return self._sources[split]

    def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                    shard_info: seqio.ShardInfo | None = None, *, sequence_length=None,
                    use_cached: bool = False, num_epochs: int | None = 1) -> tf.data.Dataset:
        plan = current_plan()
        examples = grain_loader.examples_dataset(
            self.source(split), objective=self.objective, seed=0 if seed is None else int(seed),
            shuffle=shuffle, repeat=plan.repeat,
            shard_index=shard_info.index if shard_info else 0,
            shard_count=shard_info.num_shards if shard_info else 1)
        start, offset = plan.cursors.get(self.task, (0, 0))
        stop = _END if plan.repeat else len(examples)

        def read(index):
            ex = examples[int(index)]
            return ex["inputs"], ex["targets"], ex["weights"].astype(np.float32)

        def to_example(index):
            inputs, targets, weights = tf.numpy_function(
                read, [index], [tf.int32, tf.int32, tf.float32], stateful=False)
            for t in (inputs, targets, weights):
                t.set_shape([None])
            first = tf.cast(index == start, tf.int64) * offset
            return {"inputs": inputs, "targets": targets, "weights": weights, "index": index,
                    "offset": first}

        ds = tf.data.Dataset.range(start, stop).map(to_example)
        if not plan.repeat:  # an empty example at the end closes the last row
            ds = ds.concatenate(tf.data.Dataset.from_tensors({
                "inputs": tf.zeros([0], tf.int32), "targets": tf.zeros([0], tf.int32),
                "weights": tf.zeros([0], tf.float32), "index": tf.constant(stop, tf.int64),
                "offset": tf.constant(0, tf.int64)}))
        return ds


def pack_step(ints: np.ndarray, weights: np.ndarray, fill: int, segments: int,
              example: Mapping[str, np.ndarray], *, length: int, pad_id: int):
    """Adds one example to the open row; returns ``(open row, finished rows)``.

    The open row: ``ints`` int32 ``[4, T]`` (inputs, targets, segment_ids, positions),
    ``weights`` float32 ``[T]``, ``fill`` positions used, ``segments`` pieces in it. Finished
    rows: a list of ``(ints, weights, cursor)`` with ``cursor = (index, offset)``, where the next
    row starts. An empty example (the end of a finite stream) closes a non-empty open row.
    """
    ints, weights, fill, segments = ints.copy(), weights.copy(), int(fill), int(segments)
    index, pos, size = int(example["index"]), int(example["offset"]), len(example["inputs"])
    done = []

    def close(cursor):
        nonlocal ints, weights, fill, segments
        done.append((ints, weights, cursor))
        ints, weights, fill, segments = empty_row(length, pad_id) + (0, 0)

    if size == 0 and fill:
        close((index, 0))
    while pos < size:
        rest, free = size - pos, length - fill
        if free < rest <= length:  # fits an empty row but not this one: close it
            close((index, pos))
            continue
        take = min(rest, free)
        span, piece = slice(fill, fill + take), slice(pos, pos + take)
        ints[0, span], ints[1, span] = example["inputs"][piece], example["targets"][piece]
        ints[2, span], ints[3, span] = segments + 1, np.arange(take)
        weights[span] = example["weights"][piece]
        fill, segments, pos = fill + take, segments + 1, pos + take
        if fill == length:
            close((index, pos) if pos < size else (index + 1, 0))
    return (ints, weights, fill, segments), done


def empty_row(length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    ints = np.zeros((4, length), np.int32)
    ints[:2] = pad_id
    return ints, np.zeros(length, np.float32)


def pack(dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None,
         *, pad_id: int, task: str) -> tf.data.Dataset:
    """The packing preprocessor (item 2 of the module docstring); ``pad_id``: the layout's."""
    length = (sequence_length or {}).get("targets")
    if not isinstance(length, int) or length < 1:
        raise ConfigError(f"task {task!r} packs rows: get_dataset needs "
                          f"sequence_length={{'targets': T}}, got {sequence_length!r}")

    def step(ints, weights, fill, segments, inputs, targets, ex_weights, index, offset):
        example = {"inputs": inputs, "targets": targets, "weights": ex_weights,
                   "index": index, "offset": offset}
        (ints, weights, fill, segments), done = pack_step(
            ints, weights, fill, segments, example, length=length, pad_id=pad_id)
        rows = np.stack([d[0] for d in done]) if done else np.zeros((0, 4, length), np.int32)
        rows_w = (np.stack([d[1] for d in done]) if done
                  else np.zeros((0, length), np.float32))
        cursors = np.asarray([d[2] for d in done], np.int64).reshape(-1, 2)
        return (ints, weights, np.int32(fill), np.int32(segments), rows, rows_w, cursors)

    def scan_fn(state, ex):
        out = tf.numpy_function(
            step, [*state, ex["inputs"], ex["targets"], ex["weights"], ex["index"],
                   ex["offset"]],
            [tf.int32, tf.float32, tf.int32, tf.int32, tf.int32, tf.float32, tf.int64],
            stateful=False)
        for t, shape in zip(out, ([4, length], [length], [], [], [None, 4, length],
                                  [None, length], [None, 2]), strict=True):
            t.set_shape(shape)
        return tuple(out[:4]), {"ints": out[4], "weights": out[5], CURSOR: out[6]}

    ints, weights = empty_row(length, pad_id)
    initial = (tf.constant(ints), tf.constant(weights), tf.constant(0, tf.int32),
               tf.constant(0, tf.int32))

    def to_row(r):
        return {"inputs": r["ints"][0], "targets": r["ints"][1], "segment_ids": r["ints"][2],
                "positions": r["ints"][3], "weights": r["weights"], CURSOR: r[CURSOR]}

    return dataset.scan(initial, scan_fn).unbatch().map(to_row)


def packer(layout: VocabLayout, task: str):
    """:func:`pack` as a seqio preprocessor (``(dataset, sequence_length)``) for one task."""
    fn = functools.partial(pack, pad_id=layout.pad_id, task=task)

    def preprocess(dataset, sequence_length=None):
        return fn(dataset, sequence_length)

    preprocess.__name__ = "mmlaws_pack"
    return preprocess


class ExactSampler:
    """A seqio Mixture ``sample_fn``: exact rows per block (item 3 of the module docstring).

    ``rates`` (what seqio hands over: the mixture's rates in task name order) are the token
    shares; ``block_size`` defaults to :func:`mmlaws.data.mixing.default_block_size`. A ``seed``
    of None counts as 0.
    """

    def __init__(self, block_size: int | None = None):
        self.block_size = block_size

    def counts(self, rates) -> list[int]:
        k = mixing.default_block_size(rates) if self.block_size is None else self.block_size
        return mixing.block_counts(rates, k)

    def __call__(self, datasets, rates, seed=None) -> tf.data.Dataset:
        counts = self.counts([float(r) for r in rates])
        k, seed = sum(counts), 0 if seed is None else int(seed)
        block, pos = divmod(current_plan().rows, k)

        def order(b):
            return mixing.block_order(counts, seed, int(b)).astype(np.int64)

        def block_rows(b):
            labels = tf.numpy_function(order, [b], tf.int64, stateful=False)
            labels.set_shape([k])
            return tf.data.Dataset.from_tensor_slices(labels)

        choices = tf.data.Dataset.range(block, _END).flat_map(block_rows).skip(pos)
        labelled = [ds.map(functools.partial(_with_dataset_ids, index=i))
                    for i, ds in enumerate(datasets)]
        return tf.data.Dataset.choose_from_datasets(labelled, choices,
                                                    stop_on_empty_dataset=True)


def _with_dataset_ids(row, *, index: int):
    ids = tf.where(row["segment_ids"] > 0, tf.constant(index, tf.int32), tf.constant(-1, tf.int32))
    return {**row, "dataset_ids": ids}


MODEL_FEATURES = {"decoder_input_tokens": "inputs", "decoder_target_tokens": "targets",
                  "decoder_loss_weights": "weights", "decoder_segment_ids": "segment_ids",
                  "decoder_positions": "positions", "dataset_ids": "dataset_ids"}


class PackedFeatureConverter(seqio.FeatureConverter):
    """Rows packed by :func:`pack` → decoder model features, the CM3 loss weights kept.

    Task features: ``targets`` (its length, ``T``, is the one given), with ``inputs``,
    ``weights``, ``segment_ids``, ``positions`` and, from a mixture, ``dataset_ids`` beside it.
    Model features, all ``[T]``: ``decoder_input_tokens``, ``decoder_target_tokens``,
    ``decoder_segment_ids``, ``decoder_positions`` (int32), ``decoder_loss_weights`` (float32:
    0 on padding and on the CM3 in-place sentinels), ``dataset_ids`` (int32, -1 on padding; 0
    on the tokens of a single task). Rows arrive packed: ``pack`` must be False.
    """

    TASK_FEATURES = {"targets": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32)}
    MODEL_FEATURES = {
        **{k: seqio.FeatureConverter.FeatureSpec(dtype=tf.int32) for k in MODEL_FEATURES},
        "decoder_loss_weights": seqio.FeatureConverter.FeatureSpec(dtype=tf.float32)}
    PACKING_FEATURE_DTYPES = {}

    def __init__(self, pack: bool = False, **kwargs):
        if pack:
            raise ValueError("PackedFeatureConverter takes rows that are already packed: "
                             "pack must be False")
        super().__init__(pack=False, **kwargs)

    def _convert_features(self, ds, task_feature_lengths):
        missing = [f for f in ROW_FEATURES if f not in ds.element_spec]
        if missing:
            raise ConfigError(f"PackedFeatureConverter: the dataset has no feature "
                              f"{missing[0]!r} (it needs {list(ROW_FEATURES)}: register the "
                              f"tasks with mmlaws.data.seqio_tasks.register)")
        passthrough = list(self._passthrough_features)

        def convert(ex):
            out = {model: ex[task] for model, task in MODEL_FEATURES.items()
                   if task != "dataset_ids"}
            out["dataset_ids"] = ex["dataset_ids"] if "dataset_ids" in ex else tf.where(
                ex["segment_ids"] > 0, 0, -1)
            return {**out, **{k: ex[k] for k in passthrough}}

        return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)

    def get_model_feature_lengths(self, task_feature_lengths):
        length = task_feature_lengths["targets"]
        return {**dict.fromkeys(MODEL_FEATURES, length),
                **{k: task_feature_lengths[k] for k in self._passthrough_features}}
