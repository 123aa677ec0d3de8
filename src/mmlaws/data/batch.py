"""The batch contract: what every batch source yields, and what it says about itself.

A batch is a dict of numpy arrays, each ``[batch_size, sequence_length]`` (``[B, T]``):

- ``inputs`` int32, ``targets`` int32 — the objective's shifted pair (``targets[t]`` follows
  ``inputs[t]``);
- ``weights`` float32 — the loss weight of each target: 0 on padding and where the objective
  gives no loss;
- ``segment_ids`` int32 — 1, 2, … per document in a row, 0 on padding;
- ``positions`` int32 — restart at 0 with every document;
- ``dataset_ids`` int32 — index into ``list(shares)``, −1 on padding.

A source of batches (:class:`Batches`) is an iterator with an exact, JSON-able state
(``get_state``/``set_state``: after ``set_state`` the same batches follow) and four attributes
that training records in its run header: ``shares`` (dataset name → token share, in the order
of ``dataset_ids``), ``batch_size``, ``sequence_length`` and ``objective``. A source may also
say each dataset's modality (``modalities``: name → ``"text"``/``"image"``/``"speech"``).
:func:`mmlaws.data.mixture` (built shards) and :class:`mmlaws.data.synthetic.SyntheticBatches`
(generated documents) are the two sources; both pack with :mod:`mmlaws.data.packing` and mix
with :mod:`mmlaws.data.mixing`.

Losses are also reported per source modality of the target token, by vocabulary range
(:meth:`~mmlaws.data.vocab.VocabLayout.modality_of`): :data:`MODALITIES` names them in the order
of their :class:`~mmlaws.data.vocab.Modality` codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from mmlaws.data.vocab import Modality
from mmlaws.errors import ConfigError

FIELDS = ("inputs", "targets", "weights", "segment_ids", "positions", "dataset_ids")
DTYPES = {name: np.float32 if name == "weights" else np.int32 for name in FIELDS}
MODALITIES = tuple(m.name.lower() for m in Modality if m >= 0)  # special, text, image, speech


@runtime_checkable
class Batches(Protocol):
    """An iterator of batch dicts (see the module docstring) with exact resume."""

    shares: Mapping[str, float]
    batch_size: int
    sequence_length: int
    objective: str

    def __next__(self) -> dict[str, np.ndarray]: ...

    def get_state(self) -> dict: ...

    def set_state(self, state: Mapping) -> None: ...


def check_batches(source, name: str = "data") -> Batches:
    """``source`` itself; :class:`ConfigError` naming what it lacks of :class:`Batches`."""
    members = ("__next__", "get_state", "set_state", "shares", "batch_size", "sequence_length",
               "objective")
    missing = [m for m in members if not hasattr(source, m)]
    if missing:
        raise ConfigError(f"{name}: {type(source).__name__} is not a batch source "
                          f"(mmlaws.data.batch.Batches): it has no {', '.join(missing)}")
    return source


def stack_rows(rows, *, batch_size: int, pad_id: int) -> dict[str, np.ndarray]:
    """Stack ``[T]`` rows into a ``[B, T]`` batch; a short last batch is filled with rows of
    padding only (``<pad>`` tokens, weight 0, segment 0, dataset −1)."""
    batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    missing = batch_size - len(rows)
    if missing:
        fill = {"inputs": pad_id, "targets": pad_id, "dataset_ids": -1}
        batch = {k: np.concatenate([v, np.full((missing, *v.shape[1:]), fill.get(k, 0), v.dtype)])
                 for k, v in batch.items()}
    return batch
