"""Per-document objectives and greedy packing into fixed-length rows with segment ids.

Order of operations: the objective (CM3 or causal) is applied to **each whole document
first**, with ``</s>`` put before it (OPT style, so its first token is predicted too); the
resulting example (``inputs``/``targets``/``weights``, ``len(doc) + 3n`` positions for CM3) is
then packed. A CM3 document longer than a row is therefore split *after* its spans were moved
to its end: a later chunk can hold moved spans whose context is in an earlier chunk, and the
model sees each chunk alone (its own segment, positions from 0).

Packing rule, one row of ``T`` positions at a time, taking examples in order:

1. the rest of the current example fits in the row's free space: it goes in whole;
2. it is longer than a full row: a chunk fills the free space, the rest waits for the next row;
3. otherwise (it fits in an empty row but not here): the row is padded and closed.

Example, ``T = 4``, examples of lengths 3, 2, 6 (tokens a…, b…, c…)::

    row 0: a a a _    segment_ids 1 1 1 0   positions 0 1 2 0   (b does not fit: rule 3)
    row 1: b b c c    segment_ids 1 1 2 2   positions 0 1 0 1   (c is longer than T: rule 2)
    row 2: c c c c    segment_ids 1 1 1 1   positions 0 1 2 3

Padding has ``inputs = targets = <pad>``, weight 0, segment id 0, position 0.
Pure numpy: :class:`Packer` wraps any iterator that has ``get_state``/``set_state``.
"""

from __future__ import annotations

import numpy as np

from mmlaws.data.vocab import VocabLayout
from mmlaws.objectives import causal, cm3

OBJECTIVES = ("cm3", "causal")
FIELDS = ("inputs", "targets", "weights")


def document_example(tokens, rng, *, objective: str, layout: VocabLayout) -> dict:
    """One document's example under ``objective``, as a dict of the three aligned arrays.

    ``rng``: a ``np.random.Generator`` (CM3's span sampling; unused by the causal objective).
    """
    if objective == "cm3":
        ex = cm3.transform(tokens, sentinel_ids=layout.sentinel_ids, rng=rng,
                           end_of_span_id=layout.end_of_span_id, bos_id=layout.eod_id)
    elif objective == "causal":
        ex = causal.transform(tokens, bos_id=layout.eod_id)
    else:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return {"inputs": ex.inputs, "targets": ex.targets, "weights": ex.weights}


def example_length(example: dict) -> int:
    return len(example["inputs"])


class Packer:
    """Packs examples into rows of ``sequence_length`` (see the module docstring).

    ``examples``: an iterator of example dicts with ``get_state()``/``set_state()`` (a grain
    ``DatasetIterator``, for instance). Rows are dicts of ``inputs``/``targets``/``segment_ids``/
    ``positions`` (int32 ``[T]``) and ``weights`` (float32 ``[T]``). A finite input ends with a
    last, padded row. ``get_state()`` is exact: after ``set_state`` the same rows follow.
    """

    def __init__(self, examples, sequence_length: int, *, pad_id: int = 0):
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        self._examples = examples
        self._length = sequence_length
        self._pad_id = pad_id
        self._pending = None  # the example being packed, or None
        self._pending_state = None  # the upstream state just before it was read
        self._offset = 0  # how much of it is already packed

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        pieces: list[dict] = []
        free = self._length
        while free:
            if self._pending is None and not self._pull():
                if not pieces:
                    raise StopIteration
                break
            rest = example_length(self._pending) - self._offset
            if rest > free and rest <= self._length:
                break  # rule 3: the row is closed, the example waits
            take = min(rest, free)
            end = self._offset + take
            pieces.append({k: self._pending[k][self._offset:end] for k in FIELDS})
            free -= take
            self._offset = end
            if end == example_length(self._pending):
                self._pending, self._offset = None, 0
        return self._row(pieces)

    def _pull(self) -> bool:
        self._pending_state = self._examples.get_state()
        try:
            self._pending = next(self._examples)
        except StopIteration:
            return False
        self._offset = 0
        return True

    def _row(self, pieces: list[dict]) -> dict:
        t = self._length
        row = {"inputs": np.full(t, self._pad_id, np.int32),
               "targets": np.full(t, self._pad_id, np.int32),
               "weights": np.zeros(t, np.float32),
               "segment_ids": np.zeros(t, np.int32),
               "positions": np.zeros(t, np.int32)}
        start = 0
        for segment, piece in enumerate(pieces, 1):
            end = start + len(piece["inputs"])
            for k in FIELDS:
                row[k][start:end] = piece[k]
            row["segment_ids"][start:end] = segment
            row["positions"][start:end] = np.arange(end - start)
            start = end
        return row

    def get_state(self) -> dict:
        if self._pending is None:
            return {"examples": self._examples.get_state(), "offset": 0}
        return {"examples": self._pending_state, "offset": self._offset}

    def set_state(self, state: dict) -> None:
        self._examples.set_state(state["examples"])
        self._pending, self._offset = None, 0
        if state["offset"]:
            if not self._pull():
                raise ValueError("packer state points past the end of its examples")
            self._offset = int(state["offset"])
