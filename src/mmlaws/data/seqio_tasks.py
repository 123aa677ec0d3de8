"""SeqIO Tasks and Mixtures over the built datasets (the TensorFlow data path).

Never imported by ``mmlaws`` or ``mmlaws.data``: import this module explicitly, with the
``seqio`` extra installed (``pip install -c requirements/constraints.txt -e ".[seqio]"``)::

    import seqio
    from mmlaws.data import TINY, seqio_tasks

    names = seqio_tasks.register("data", TINY, sequence_length=512)
    name = seqio_tasks.mixture_name({"code": 0.7, "text": 0.3})  # "mmlaws_cm3:code_70.text_30"
    seqio_tasks.register_mixture("data", {"code": 0.7, "text": 0.3}, sequence_length=512)
    ds = seqio.get_mixture_or_task(name).get_dataset(
        sequence_length={"targets": 512}, split="train", shuffle=True, seed=0)

**Tasks.** One ``seqio.Task`` per complete dataset under ``data_dir`` (a folder with a
``stats.json``, :mod:`mmlaws.data.shards`), named ``"{prefix}_{objective}:{dataset}"``
(``"mmlaws_cm3:text"``), with the splits the dataset has (``train``, ``validation``). Its
source is a ``seqio.FunctionDataSource`` reading the ArrayRecord shards through
:class:`~mmlaws.data.shards.ShardSource`: document indices (shuffled when
``shuffle_files=True``, seeded by ``seed``) mapped to their tokens. Its preprocessor is the
objective of the grain path, the same code: :func:`mmlaws.data.packing.document_example`
(``</s>`` put before the document, then CM3 or causal) inside ``tf.numpy_function``, one
``np.random.Generator`` per example seeded from seqio's per-example seeds
(``seqio.map_over_dataset(num_seeds=1)``, deterministic given ``get_dataset(seed=...)``).

**Features** (decoder-only convention: no ``inputs`` feature, so seqio's decoder converters
do not take it for a prefix):

- ``targets``: int32 ``[L]``, the example's next-token targets, ``L = len(doc) + 3n`` for CM3
  with ``n`` spans (the rearranged document; ``len(doc)`` for the causal objective). The
  model's inputs are ``</s>`` followed by ``targets[:-1]``, which is what
  ``seqio.DecoderFeatureConverter(bos_id=layout.eod_id)`` builds.
- ``weights``: float32 ``[L]``, the objective's loss weights (0 where the target is a CM3
  sentinel left in place of a span). seqio's stock decoder converters ignore it (they weight
  every non-padding target); keep it with ``passthrough_features`` or a custom converter.

Both are trimmed to ``sequence_length["targets"]`` when given (a longer document loses its
tail, spans included; the grain path instead splits it across rows). The vocabulary is
``seqio.PassThroughVocabulary(layout.size, eos_id=layout.eod_id)``: ids are the layout's ids
unchanged (``layout.token_name`` names them); ``add_eos=False``, as ``</s>`` is already placed.

**Mixtures** over datasets with per-dataset **token** shares. seqio samples the next example
from task ``i`` with probability ``rate_i / Σ rate``, so the expected token share of ``i`` is
``rate_i ℓ_i / Σ_j rate_j ℓ_j``, where ``ℓ_i`` is its expected example length. Rates are
therefore ``share_i / ℓ_i`` (normalised to sum 1), with ``ℓ_i`` from the train split's
``stats.json``: the mean document length ``m = tokens / documents``, plus ``3 E[n]`` for CM3
(``E[n] = 1 + e^-1`` for ``n = clip(Poisson(1), 1, 16)``), capped at ``sequence_length``. The
cap is exact only when no document exceeds it; with longer documents the share of the
dataset with long documents comes out higher than asked. Sampling is **stochastic**: realised
token shares scatter around the target (a few percent over a few hundred examples) and
converge only on average; the grain path (:func:`mmlaws.data.mixture`) is exact in every block
of rows. Mixtures are named by :func:`mixture_name`.
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

from mmlaws.data import mixing, packing, shards
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError, DataError

PREFIX = "mmlaws"
# E[clip(Poisson(1), 1, 16)] = 1 + P(0) - (tail above 16, < 1e-14): spans per CM3 document.
CM3_MEAN_SPANS = 1.0 + math.exp(-1.0)
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def vocabulary(layout: VocabLayout) -> seqio.PassThroughVocabulary:
    """Ids pass through unchanged; ``layout.size`` ids, ``eos_id`` = ``</s>``."""
    return seqio.PassThroughVocabulary(size=layout.size, eos_id=layout.eod_id)


def output_features(layout: VocabLayout) -> dict[str, seqio.Feature]:
    """``targets`` (int32 ``[L]``) and ``weights`` (float32 ``[L]``); no EOS is appended."""
    vocab = vocabulary(layout)
    return {
        "targets": seqio.Feature(vocab, add_eos=False, dtype=tf.int32),
        "weights": seqio.Feature(vocab, add_eos=False, dtype=tf.float32),
    }


def task_name(dataset: str, *, objective: str = "cm3", prefix: str = PREFIX) -> str:
    """``"{prefix}_{objective}:{dataset}"``, e.g. ``task_name("text") == "mmlaws_cm3:text"``."""
    _check_name(dataset, "dataset")
    return f"{prefix}_{objective}:{dataset}"


def mixture_name(
    shares: Mapping[str, float], *, objective: str = "cm3", prefix: str = PREFIX
) -> str:
    """The registered name of a mixture: datasets sorted, shares in percent (4 digits, ``p``
    for the decimal point). Shares that agree to 4 digits give the same name.

    >>> mixture_name({"text": 0.3, "code": 0.7})
    'mmlaws_cm3:code_70.text_30'
    >>> mixture_name({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, objective="causal")
    'mmlaws_causal:a_33p33.b_33p33.c_33p33'
    """
    names, weights = _checked_shares(shares)
    parts = sorted(
        f"{n}_{100 * w:.4g}".replace(".", "p") for n, w in zip(names, weights, strict=True)
    )
    return f"{prefix}_{objective}:" + ".".join(parts)


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
    if objective not in packing.OBJECTIVES:
        raise ConfigError(f"objective must be one of {packing.OBJECTIVES}, got {objective!r}")

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
    """A ``FunctionDataSource`` ``dataset_fn``: ``{"tokens": int32 [len(doc)]}`` per document."""
    data_dir = os.fspath(data_dir)
    sources: dict[str, shards.ShardSource] = {}

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        if split not in sources:  # opened lazily, once per split
            sources[split] = shards.ShardSource(data_dir, name, split)
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
    """Register a Task per built dataset under ``data_dir`` and token-share Mixtures.

    Args:
      data_dir: the folder of built datasets (:mod:`mmlaws.data.shards`).
      layout: the vocabulary layout; every dataset must have been built with it.
      objective: ``"cm3"`` (the paper's, per document) or ``"causal"``.
      sequence_length: the ``targets`` length the data will be read at; caps the expected
        example length when rates are computed (None: no cap).
      mixtures: token-share dicts to register; default: every subset of two or more datasets
        with equal shares (50/50 for pairs). More can be added with :func:`register_mixture`.
      prefix: the first part of every name.

    Returns:
      The registered names: the tasks (in dataset name order), then the mixtures. A name that
      is already registered (by an earlier call) is replaced.
    """
    if objective not in packing.OBJECTIVES:
        raise ConfigError(f"objective must be one of {packing.OBJECTIVES}, got {objective!r}")
    datasets = find_datasets(data_dir)
    features = output_features(layout)
    preprocessor = objective_preprocessor(layout, objective)
    names = []
    for name in datasets:
        stats = shards.read_stats(data_dir, name)
        built = shards.layout_from_json(stats["vocab"])
        if built != layout:
            raise ConfigError(
                f"{os.path.join(os.fspath(data_dir), name, shards.STATS)}: dataset "
                f"{name!r} was built with layout {built}, not {layout}"
            )
        splits = {s: c["documents"] for s, c in stats["splits"].items() if c["documents"]}
        source = seqio.FunctionDataSource(
            shard_dataset_fn(data_dir, name), splits=list(splits), num_input_examples=splits
        )
        task = task_name(name, objective=objective, prefix=prefix)
        _unregister(task)
        seqio.TaskRegistry.add(
            task, source=source, output_features=features, preprocessors=[preprocessor]
        )
        names.append(task)
    if mixtures is None:
        mixtures = [
            dict.fromkeys(subset, 1 / k)
            for k in range(2, len(datasets) + 1)
            for subset in itertools.combinations(datasets, k)
        ]
    for shares in mixtures:
        names.append(
            register_mixture(
                data_dir,
                shares,
                objective=objective,
                sequence_length=sequence_length,
                prefix=prefix,
            )
        )
    return names


def register_mixture(
    data_dir: str | os.PathLike,
    shares: Mapping[str, float],
    *,
    objective: str = "cm3",
    sequence_length: int | None = None,
    prefix: str = PREFIX,
) -> str:
    """Register the Mixture of ``shares`` (dataset → token share) over registered Tasks.

    Returns its :func:`mixture_name`. The tasks must be registered (:func:`register`).
    """
    names, _ = _checked_shares(shares)
    lengths = {}
    for name in names:
        task = task_name(name, objective=objective, prefix=prefix)
        if task not in seqio.TaskRegistry.names():
            raise ConfigError(
                f"mixture {dict(shares)}: task {task!r} is not registered "
                f"(is dataset {name!r} built under {os.fspath(data_dir)}? "
                f"call register first)"
            )
        lengths[name] = example_tokens(
            shards.read_stats(data_dir, name), objective=objective, sequence_length=sequence_length
        )
    rates = mixture_rates(shares, lengths)
    mixture = mixture_name(shares, objective=objective, prefix=prefix)
    _unregister(mixture)
    seqio.MixtureRegistry.add(
        mixture, [(task_name(n, objective=objective, prefix=prefix), r) for n, r in rates.items()]
    )
    return mixture


def _unregister(name: str) -> None:
    seqio.TaskRegistry.remove(name)
    seqio.MixtureRegistry.remove(name)


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
