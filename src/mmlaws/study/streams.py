"""Data for a whole design, built once: shared training streams and fixed evaluation sets.

**Training streams.** A run's batches are a pure function of its data source's definition —
datasets and shares, seed, batch size, sequence length, objective — so runs that share the
definition (every model size and budget of one dataset and seed) read the same batches:
batch ``s`` of the stream is what every such run trains on at step ``s``. The engine asks for
batch ``s`` by index; a :class:`Stream` materialises batches once, in order, and keeps them
for later readers (the next model size's stack starts again from batch 0). Memory: six
``[B, T]`` int32/float32 arrays a batch, 24 bytes a token position.

Reading the same batches is also a variance reduction: the runs of a design differ only in
what is designed (N, D, schedule), not in which documents each happened to draw, and a pair
run reads each dataset's documents in the same order as that dataset's own runs
(:func:`mmlaws.data.mixture` seeds each dataset by its name).

**Evaluation sets.** Each dataset has one fixed held-out set: the first ``eval_tokens``
loss-bearing tokens of its ``validation`` split, in file order, packed as training packs.
Every run is evaluated on the sets of its datasets, so all runs of a dataset are compared on
the same tokens, and a pair run's loss is the token-weighted mean over both sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from mmlaws.data.batch import FIELDS
from mmlaws.errors import DataError


@dataclasses.dataclass(frozen=True)
class StreamKey:
    """The definition of a training stream; equal keys give equal batches."""

    shares: tuple[tuple[str, float], ...]
    seed: int
    batch_size: int
    sequence_length: int
    objective: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.shares)


class Stream:
    """Batches of one :class:`StreamKey`, materialised in order and kept: ``batch(s)``."""

    def __init__(self, key: StreamKey, data_dir: str):
        from mmlaws.data import mixture

        self.key = key
        self._source = mixture(dict(key.shares), sequence_length=key.sequence_length,
                               batch_size=key.batch_size, data_dir=data_dir, seed=key.seed,
                               objective=key.objective)
        self._batches: list[dict[str, np.ndarray]] = []

    def batch(self, step: int) -> dict[str, np.ndarray]:
        while len(self._batches) <= step:
            self._batches.append(next(self._source))
        return self._batches[step]

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for b in self._batches for v in b.values())


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One dataset's held-out set: ``batches`` ``[E, B, T]`` per field, ``tokens`` weighted."""

    name: str
    batches: Mapping[str, np.ndarray]
    tokens: float


class Streams:
    """The streams and evaluation sets of a design over the datasets in ``data_dir``."""

    def __init__(self, data_dir: str, *, eval_tokens: float, eval_batch_size: int):
        self.data_dir = data_dir
        self.eval_tokens = float(eval_tokens)
        self.eval_batch_size = eval_batch_size
        self._streams: dict[StreamKey, Stream] = {}
        self._eval: dict[tuple[str, int, str], EvalSet] = {}

    def stream(self, key: StreamKey) -> Stream:
        if key not in self._streams:
            self._streams[key] = Stream(key, self.data_dir)
        return self._streams[key]

    def release(self, keep: set[StreamKey]) -> None:
        """Forget the streams no later run reads."""
        for key in [k for k in self._streams if k not in keep]:
            del self._streams[key]

    @property
    def nbytes(self) -> int:
        held = sum(s.nbytes for s in self._streams.values())
        return held + sum(v.nbytes for e in self._eval.values() for v in e.batches.values())

    def eval_set(self, name: str, sequence_length: int, objective: str) -> EvalSet:
        """The first ``eval_tokens`` weighted tokens of ``name``'s validation split."""
        key = (name, sequence_length, objective)
        if key not in self._eval:
            self._eval[key] = self._build_eval(name, sequence_length, objective)
        return self._eval[key]

    def prepare_eval(self, keys) -> int:
        """Builds the evaluation sets of ``keys`` ((name, sequence length, objective)) and pads
        each to the same number of batches (batches of weight 0 add nothing), so that one
        compiled evaluation serves every dataset; returns that number."""
        sets = {key: self.eval_set(*key) for key in keys}
        most = max((len(e.batches["inputs"]) for e in sets.values()), default=0)
        for key, e in sets.items():
            short = most - len(e.batches["inputs"])
            if short:
                pad = {k: np.concatenate([v, np.repeat(v[-1:], short, axis=0)])
                       for k, v in e.batches.items()}
                pad["weights"][-short:] = 0.0
                self._eval[key] = EvalSet(e.name, pad, e.tokens)
        return most

    def _build_eval(self, name: str, sequence_length: int, objective: str) -> EvalSet:
        from mmlaws.data import mixture

        source = mixture({name: 1.0}, sequence_length=sequence_length,
                         batch_size=self.eval_batch_size, data_dir=self.data_dir, seed=0,
                         objective=objective, split="validation", shuffle=False, repeat=False)
        batches, tokens = [], 0.0
        for batch in source:
            batches.append(batch)
            tokens += float(batch["weights"].sum())
            if tokens >= self.eval_tokens:
                break
        if not batches or tokens == 0:
            raise DataError(f"dataset {name!r}: its validation split in {self.data_dir} has no "
                            "tokens to evaluate on")
        stacked = {k: np.stack([b[k] for b in batches]) for k in FIELDS}
        return EvalSet(name, stacked, tokens)
