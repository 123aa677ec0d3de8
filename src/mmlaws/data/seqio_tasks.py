"""SeqIO Tasks and Mixtures over the built datasets (the TensorFlow data path).

Never imported by ``mmlaws`` or ``mmlaws.data``: import this module explicitly, with the
``seqio`` extra installed (``pip install -c requirements/constraints.txt -e ".[seqio]"``)::

    import seqio
    from mmlaws.data import TINY, seqio_packed, seqio_tasks

    seqio_tasks.register("data", TINY, mixtures=[{"code": 0.7, "text": 0.3}])
    name = seqio_tasks.mixture_name({"code": 0.7, "text": 0.3})  # "mmlaws_cm3:code_70.text_30"
    ds = seqio.get_dataset(name, task_feature_lengths={"targets": 512}, seed=0,
                           feature_converter=seqio_packed.PackedFeatureConverter())

The trainer reads a mixture through :class:`mmlaws.data.seqio_batches.SeqioBatches`.

**Tasks**, two per complete dataset under ``data_dir`` (a folder with a ``stats.json``,
:mod:`mmlaws.data.shards`), with the splits the dataset has, both reading the documents
through TFDS (:mod:`mmlaws.data.tfds_shards`):

- ``"{prefix}_{objective}_packed:{dataset}"`` (``"mmlaws_cm3_packed:text"``): full rows of
  ``T = sequence_length["targets"]``, built exactly as the grain path builds them (same
  document order, CM3 spans and packing; :mod:`mmlaws.data.seqio_packed`). Features, all
  ``[T]``: ``inputs``, ``targets``, ``segment_ids``, ``positions`` (int32), ``weights``
  (float32); plus ``cursor`` (the task's position, for checkpoints).
- ``"{prefix}_{objective}:{dataset}"`` (``"mmlaws_cm3:text"``): one example per document.
  Its source is a ``seqio.FunctionDataSource`` (document indices, shuffled when
  ``shuffle_files=True``, seeded by ``seed``); its preprocessor is the objective of the grain
  path, :func:`mmlaws.data.packing.document_example` (``</s>`` put before the document, then
  CM3 or causal) inside ``tf.numpy_function``, one ``np.random.Generator`` per example seeded
  from seqio's per-example seeds. Features (decoder-only convention: no ``inputs``, so seqio's
  decoder converters do not take it for a prefix): ``targets``, int32 ``[L]``, the next-token
  targets (``L = len(doc) + 3n`` for CM3 with ``n`` spans; the model's inputs are ``</s>``
  followed by ``targets[:-1]``, which ``seqio.DecoderFeatureConverter(bos_id=layout.eod_id)``
  builds) and ``weights``, float32 ``[L]``, the loss weights (0 on the CM3 sentinels left in
  place), which seqio's stock converters ignore. Both are trimmed to
  ``sequence_length["targets"]`` when given (a longer document loses its tail).

The vocabulary (:class:`LayoutVocabulary`) passes ids through unchanged and carries the
layout, so a mixture read with another model layout is refused at start-up.

**Mixtures**, two per token-share dict (names from :func:`mixture_name`):

- **exact**, ``"mmlaws_cm3:code_70.text_30"``: the packed tasks interleaved by
  :class:`~mmlaws.data.seqio_packed.ExactSampler`: every block of ``k`` rows (``k`` = the
  smallest block with whole counts, 10 for 70/30) holds exactly ``share × k`` rows of each
  task. seqio orders the tasks by name: ``dataset_ids`` index the datasets in name order,
  and with the shares listed in that order the grain path (same ``seed``, ``T`` and batch size)
  yields the same batches. As on the grain path, what is exact is the share of **rows**
  (token positions); the shares of non-padding and of loss-bearing tokens differ from it by
  the datasets' padding and CM3 sentinels (``benchmarks/data_bench.py`` measures them).
- **rate**, ``"mmlaws_cm3_rate:code_70.text_30"``: the per-document tasks sampled at random
  with rates that make the **expected** token shares equal to the target. seqio samples task
  ``i`` with probability ``rate_i / Σ rate``, so the expected token share of ``i`` is
  ``rate_i ℓ_i / Σ_j rate_j ℓ_j``, ``ℓ_i`` its expected example length: rates are
  ``share_i / ℓ_i`` (normalised), with ``ℓ_i`` from the train split's ``stats.json`` (the mean
  document length plus ``3 E[n]`` for CM3, ``E[n] = 1 + e^-1`` for ``n = clip(Poisson(1), 1,
  16)``, capped at ``sequence_length``). Realised shares scatter around the target (a few
  percent over a few hundred examples).
"""


from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterable, Mapping

import numpy as np
import seqio
import tensorflow as tf

from mmlaws.data import mixing, packing, seqio_packed, shards, tfds_shards
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError, DataError

PREFIX = "mmlaws"
SAMPLINGS = ("exact", "rate")
# E[clip(Poisson(1), 1, 16)] = 1 + P(0) - (tail above 16, < 1e-14): spans per CM3 document.
CM3_MEAN_SPANS = 1.0 + math.exp(-1.0)
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


class LayoutVocabulary(seqio.PassThroughVocabulary):
    """Ids pass through unchanged: ``layout.size`` ids, ``eos_id`` = ``</s>``; keeps ``layout``."""

    def __init__(self, layout: VocabLayout):
        super().__init__(size=layout.size, eos_id=layout.eod_id)
        self.layout = layout

    def __eq__(self, other):
        return isinstance(other, LayoutVocabulary) and other.layout == self.layout

    def __hash__(self):
        return hash(self.layout)

    def __str__(self) -> str:
        return f"LayoutVocabulary({shards.layout_to_json(self.layout)})"


def vocabulary(layout: VocabLayout) -> LayoutVocabulary:
    return LayoutVocabulary(layout)


def output_features(layout: VocabLayout, *, packed: bool = False) -> dict[str, seqio.Feature]:
    """Per-document tasks: ``targets`` (int32) and ``weights`` (float32), ``[L]``. Packed
    tasks (``packed=True``): ``inputs``, ``targets``, ``segment_ids``, ``positions`` (int32) and
    ``weights`` (float32), ``[T]``. No EOS is appended."""
    vocab = vocabulary(layout)
    names = seqio_packed.ROW_FEATURES if packed else ("targets", "weights")
    return {n: seqio.Feature(vocab, add_eos=False,
                             dtype=tf.float32 if n == "weights" else tf.int32) for n in names}


def task_name(dataset: str, *, objective: str = "cm3", prefix: str = PREFIX,
              packed: bool = False) -> str:
    """``"{prefix}_{objective}:{dataset}"``, with ``_packed`` after the objective for packed rows.

    >>> task_name("text"), task_name("text", packed=True)
    ('mmlaws_cm3:text', 'mmlaws_cm3_packed:text')
    """
    _check_name(dataset, "dataset")
    return f"{prefix}_{objective}{'_packed' if packed else ''}:{dataset}"


def mixture_name(shares: Mapping[str, float], *, objective: str = "cm3", prefix: str = PREFIX,
                 sampling: str = "exact") -> str:
    """The registered name of a mixture: datasets sorted, shares in percent (4 digits, ``p``
    for the decimal point), ``_rate`` after the objective for the random-rate mixture. Shares
    that agree to 4 digits give the same name.

    >>> mixture_name({"text": 0.3, "code": 0.7})
    'mmlaws_cm3:code_70.text_30'
    >>> mixture_name({"text": 0.3, "code": 0.7}, sampling="rate")
    'mmlaws_cm3_rate:code_70.text_30'
    >>> mixture_name({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, objective="causal")
    'mmlaws_causal:a_33p33.b_33p33.c_33p33'
    """
    if sampling not in SAMPLINGS:
        raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    names, weights = _checked_shares(shares)
    parts = sorted(
        f"{n}_{100 * w:.4g}".replace(".", "p") for n, w in zip(names, weights, strict=True)
    )
    kind = "_rate" if sampling == "rate" else ""
    return f"{prefix}_{objective}{kind}:" + ".".join(parts)


def find_datasets(data_dir: str | os.PathLike) -> list[str]:
    """Names of the complete datasets (folders with a ``stats.json``) under ``data_dir``."""
    root = os.fspath(data_dir)
    if not os.path.isdir(root):
        raise DataError(
            f"{root}: no such data directory (build datasets into it with the "
            f"data_pipelines/build_*.py builders, or shards.write_synthetic)"
        )
    found = sorted(
        n
        for n in os.listdir(root)
        if ".tmp-" not in n and os.path.isfile(os.path.join(root, n, shards.STATS))
    )
    if not found:
        raise DataError(
            f"{root}: no built datasets (no <name>/{shards.STATS} inside); build "
            f"them with the data_pipelines/build_*.py builders, or "
            f"shards.write_synthetic"
        )
    return found


def example_tokens(
    stats: Mapping,
    *,
    objective: str = "cm3",
    sequence_length: int | None = None,
    split: str = "train",
) -> float:
    """Expected ``targets`` length of one example from ``stats.json`` (see the module docstring).

    >>> stats = {"splits": {"train": {"documents": 10, "tokens": 400}}}
    >>> round(example_tokens(stats), 3), example_tokens(stats, objective="causal")
    (44.104, 40.0)
    >>> example_tokens(stats, sequence_length=32)
    32.0
    """
    counts = stats["splits"].get(split) or next(iter(stats["splits"].values()))
    if not counts["documents"]:
        raise DataError(f"dataset {stats.get('name')!r} has no documents in split {split!r}")
    mean = counts["tokens"] / counts["documents"]
    if objective == "cm3":
        mean += 3 * CM3_MEAN_SPANS
    return float(mean if sequence_length is None else min(mean, sequence_length))


def mixture_rates(shares: Mapping[str, float], lengths: Mapping[str, float]) -> dict[str, float]:
    """seqio example rates (summing to 1) whose expected token shares are ``shares``.

    ``lengths``: each dataset's expected example length in tokens (:func:`example_tokens`).

    >>> mixture_rates({"a": 0.5, "b": 0.5}, {"a": 10.0, "b": 30.0})
    {'a': 0.75, 'b': 0.25}
    """
    names, weights = _checked_shares(shares)
    raw = {n: w / lengths[n] for n, w in zip(names, weights, strict=True)}
    total = sum(raw.values())
    return {n: r / total for n, r in raw.items()}


def objective_preprocessor(layout: VocabLayout, objective: str):
    """A seqio preprocessor: ``{"tokens"}`` → ``{"targets", "weights"}`` (module docstring).

    Runs :func:`mmlaws.data.packing.document_example` on each document through
    ``tf.numpy_function``, with a ``np.random.Generator`` from seqio's per-example seed.
    """
    _check_objective(objective)

    def numpy_fn(tokens: np.ndarray, seed: np.ndarray):
        rng = np.random.default_rng([int(s) & 0xFFFFFFFF for s in np.ravel(seed)])
        ex = packing.document_example(tokens, rng, objective=objective, layout=layout)
        return ex["targets"].astype(np.int32), ex["weights"].astype(np.float32)

    @seqio.map_over_dataset(num_seeds=1)
    def apply(ex, seed):
        targets, weights = tf.numpy_function(
            numpy_fn, [ex["tokens"], seed], [tf.int32, tf.float32], stateful=False
        )
        targets.set_shape([None])
        weights.set_shape([None])
        return {"targets": targets, "weights": weights}

    def preprocess(dataset: tf.data.Dataset, sequence_length=None) -> tf.data.Dataset:
        dataset = apply(dataset)
        limit = (sequence_length or {}).get("targets")
        if limit is None:
            return dataset
        return dataset.map(
            lambda ex: {k: v[:limit] for k, v in ex.items()}, num_parallel_calls=tf.data.AUTOTUNE
        )

    preprocess.__name__ = f"mmlaws_{objective}"
    return preprocess


def shard_dataset_fn(data_dir: str | os.PathLike, name: str):
    """A ``FunctionDataSource`` ``dataset_fn``: ``{"tokens": int32 [len(doc)]}`` per document,
    read through TFDS (:class:`~mmlaws.data.tfds_shards.TfdsShardSource`)."""
    data_dir = os.fspath(data_dir)
    sources: dict[str, tfds_shards.TfdsShardSource] = {}

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        if split not in sources:  # opened lazily, once per split
            sources[split] = tfds_shards.TfdsShardSource(data_dir, name, split)
        source = sources[split]
        ds = tf.data.Dataset.range(len(source))
        if shuffle_files:
            ds = ds.shuffle(len(source), seed=seed, reshuffle_each_iteration=True)

        def read(index: np.ndarray) -> np.ndarray:
            return source[int(index)]

        def to_example(index):
            tokens = tf.numpy_function(read, [index], tf.int32, stateful=False)
            tokens.set_shape([None])
            return {"tokens": tokens}

        return ds.map(to_example)

    return dataset_fn


def register(
    data_dir: str | os.PathLike,
    layout: VocabLayout,
    *,
    objective: str = "cm3",
    sequence_length: int | None = None,
    mixtures: Iterable[Mapping[str, float]] | None = None,
    prefix: str = PREFIX,
) -> list[str]:
    """Register both Tasks per built dataset under ``data_dir`` and both Mixtures per share dict.

    Args:
      data_dir: the folder of built datasets (:mod:`mmlaws.data.shards`).
      layout: the vocabulary layout; every dataset must have been built with it.
      objective: ``"cm3"`` (the paper's, per document) or ``"causal"``.
      sequence_length: the ``targets`` length the rate mixtures will be read at; caps the
        expected example length when their rates are computed (None: no cap).
      mixtures: token-share dicts to register; default: every subset of two or more datasets
        with equal shares (50/50 for pairs). More can be added with :func:`register_mixture`.
      prefix: the first part of every name.

    Returns:
      The registered names: per dataset (in name order) its per-document then its packed task,
      then per share dict its exact then its rate mixture. A name that is already registered
      (by an earlier call) is replaced.
    """
    _check_objective(objective)
    data_dir = os.fspath(data_dir)
    datasets = find_datasets(data_dir)
    names = []
    for name in datasets:
        stats = shards.read_stats(data_dir, name)
        built = shards.layout_from_json(stats["vocab"])
        if built != layout:
            raise ConfigError(
                f"{os.path.join(data_dir, name, shards.STATS)}: dataset "
                f"{name!r} was built with layout {built}, not {layout}"
            )
        splits = {s: c["documents"] for s, c in stats["splits"].items() if c["documents"]}
        names += _register_tasks(data_dir, name, splits, layout, objective, prefix)
    if mixtures is None:
        mixtures = [
            dict.fromkeys(subset, 1 / k)
            for k in range(2, len(datasets) + 1)
            for subset in itertools.combinations(datasets, k)
        ]
    for shares in mixtures:
        for sampling in SAMPLINGS:
            names.append(register_mixture(data_dir, shares, objective=objective,
                                          sequence_length=sequence_length, prefix=prefix,
                                          sampling=sampling))
    return names


def _register_tasks(data_dir: str, name: str, splits: Mapping[str, int], layout: VocabLayout,
                    objective: str, prefix: str) -> list[str]:
    """The per-document and the packed task of one dataset; returns their names."""
    documents = task_name(name, objective=objective, prefix=prefix)
    _unregister(documents)
    seqio.TaskRegistry.add(
        documents, output_features=output_features(layout),
        source=seqio.FunctionDataSource(shard_dataset_fn(data_dir, name), splits=list(splits),
                                        num_input_examples=splits),
        preprocessors=[objective_preprocessor(layout, objective)])
    packed = task_name(name, objective=objective, prefix=prefix, packed=True)
    _unregister(packed)
    seqio.TaskRegistry.add(
        packed, output_features=output_features(layout, packed=True),
        source=seqio_packed.DocumentStream(data_dir, name, task=packed, objective=objective,
                                           splits=splits),
        preprocessors=[seqio_packed.packer(layout, packed)], shuffle_buffer_size=None)
    return [documents, packed]


def register_mixture(
    data_dir: str | os.PathLike,
    shares: Mapping[str, float],
    *,
    objective: str = "cm3",
    sequence_length: int | None = None,
    prefix: str = PREFIX,
    sampling: str = "exact",
    block_size: int | None = None,
) -> str:
    """Register the Mixture of ``shares`` (dataset → token share) over registered Tasks.

    ``sampling``: ``"exact"`` (packed tasks, exact rows per block of ``block_size`` rows,
    default the smallest exact block) or ``"rate"`` (per-document tasks at random rates;
    ``sequence_length`` caps the expected example lengths). Returns its :func:`mixture_name`.
    The tasks must be registered (:func:`register`).
    """
    name = mixture_name(shares, objective=objective, prefix=prefix, sampling=sampling)
    names, weights = _checked_shares(shares)
    packed = sampling == "exact"
    tasks = {n: task_name(n, objective=objective, prefix=prefix, packed=packed) for n in names}
    for dataset, task in tasks.items():
        if task not in seqio.TaskRegistry.names():
            raise ConfigError(
                f"mixture {dict(shares)}: task {task!r} is not registered "
                f"(is dataset {dataset!r} built under {os.fspath(data_dir)}? "
                f"call register first)"
            )
    if packed:
        sampler = seqio_packed.ExactSampler(block_size)
        try:
            sampler.counts(weights)
        except ConfigError as err:
            raise ConfigError(f"mixture {dict(shares)}: {err}") from err
        rates, extra = dict(zip(names, weights, strict=True)), {"sample_fn": sampler}
    else:
        lengths = {n: example_tokens(shards.read_stats(data_dir, n), objective=objective,
                                     sequence_length=sequence_length) for n in names}
        rates, extra = mixture_rates(shares, lengths), {}
    _unregister(name)
    seqio.MixtureRegistry.add(name, [(tasks[n], r) for n, r in rates.items()], **extra)
    return name


def _unregister(name: str) -> None:
    seqio.TaskRegistry.remove(name)
    seqio.MixtureRegistry.remove(name)


def _check_objective(objective: str) -> None:
    if objective not in packing.OBJECTIVES:
        raise ConfigError(f"objective must be one of {packing.OBJECTIVES}, got {objective!r}")


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"{what} name {name!r} must use only letters, digits, '_' and '.' to be a seqio name"
        )


def _checked_shares(shares: Mapping[str, float]) -> tuple[list[str], list[float]]:
    if not isinstance(shares, Mapping) or not shares:
        raise ConfigError(
            f"shares must be a non-empty dict of dataset name -> token share, got {shares!r}"
        )
    names = list(shares)
    for name in names:
        _check_name(name, "dataset")
    try:
        weights = mixing.check_shares([shares[n] for n in names]).tolist()
    except ConfigError as err:
        raise ConfigError(f"mixture {dict(shares)}: {err}") from err
    return names, weights
