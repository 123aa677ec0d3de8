"""Generated documents for training before (or without) built data, through the real pipeline.

Each dataset draws its documents from one modality's id range ``[lo, lo + n)`` of a
:class:`~mmlaws.data.vocab.VocabLayout`. Document ``k`` of dataset ``name`` is a pure function
of ``(seed, name, k)``: an arithmetic progression modulo the range, ``lo + (a + b·t) mod n``
with random ``a``, ``b`` and a random length in ``doc_len`` — predictable in context, so the
loss falls well below ``log n`` as a model learns.

From the documents on, the path is the one built shards take (:mod:`mmlaws.data.grain_loader`):
the objective per whole document (:func:`~mmlaws.data.packing.document_example`, its CM3 spans
drawn from the document's own generator), a :class:`~mmlaws.data.packing.Packer` per dataset,
a :class:`~mmlaws.data.mixing.Mixer` across datasets with exact per-block counts, and
``batch_size`` rows per batch (:func:`~mmlaws.data.batch.stack_rows`). Batches follow the
contract of :mod:`mmlaws.data.batch`; the state is the mixer's (JSON-able), and ``set_state``
on a fresh source resumes exactly.

Example: two datasets at 3:1, ``sequence_length=64``::

    data = SyntheticBatches({"prose": ("text", 0.75), "voice": ("speech", 0.25)}, "tiny",
                            batch_size=8, sequence_length=64)
    batch = next(data)  # every 4 rows: 3 of prose, 1 of voice
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from mmlaws.data import batch as batch_lib
from mmlaws.data import mixing, packing
from mmlaws.data.vocab import Modality, VocabLayout, resolve_layout
from mmlaws.errors import ConfigError

MODALITY_NAMES = ("text", "image", "speech")


class SyntheticDocuments:
    """One dataset's documents, each yielded as an example of ``objective``.

    ``next`` gives document ``index`` (then ``index + 1`` …) as the dict of
    :func:`~mmlaws.data.packing.document_example`; the state is the next index.
    """

    def __init__(self, layout: VocabLayout, modality: str, *, name: str, seed: int,
                 objective: str = "cm3", doc_len: tuple[int, int] = (8, 48)):
        self.layout, self.objective, self.doc_len = layout, objective, doc_len
        self.range = layout.range_of(Modality[modality.upper()])
        self.seed = (seed, zlib.crc32(name.encode()))
        self.index = 0

    def document(self, rng: np.random.Generator) -> np.ndarray:
        """int32 ``[L]``: ``lo + (a + b·t) mod n`` for ``t < L``, ``L`` drawn from ``doc_len``."""
        lo, hi = self.range
        n = hi - lo
        length = int(rng.integers(self.doc_len[0], self.doc_len[1] + 1))
        a, b = rng.integers(0, n), rng.integers(1, max(n // 4, 2))
        return (lo + (a + b * np.arange(length)) % n).astype(np.int32)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        rng = np.random.default_rng([*self.seed, self.index])
        self.index += 1
        return packing.document_example(self.document(rng), rng, objective=self.objective,
                                        layout=self.layout)

    def get_state(self) -> dict:
        return {"index": self.index}

    def set_state(self, state: Mapping) -> None:
        self.index = int(state["index"])


class SyntheticBatches:
    """Batches of generated documents in exact token shares (a :class:`~mmlaws.data.batch.Batches`).

    Args:
      datasets: dataset name → (modality ``"text"|"image"|"speech"``, token share); shares sum
        to 1, and ``dataset_ids`` index ``list(datasets)``.
      layout: the vocabulary layout the documents are drawn from, or its name (``"tiny"`` …).
      batch_size, sequence_length: rows ``B`` and length ``T`` of every batch.
      seed: decides the documents, their CM3 spans and the order of rows in each block (use
        another seed for held-out data).
      objective: ``"cm3"`` or ``"causal"``.
      doc_len: (min, max) tokens of a document before the objective.
      block_size: rows per block of exact counts (default: the smallest exact one,
        :func:`mmlaws.data.mixing.default_block_size`).
    """

    def __init__(self, datasets: Mapping[str, tuple[str, float]],
                 layout: str | VocabLayout = "tiny", *, batch_size: int, sequence_length: int,
                 seed: int = 0, objective: str = "cm3", doc_len: tuple[int, int] = (8, 48),
                 block_size: int | None = None):
        _check(datasets, batch_size, sequence_length, objective, doc_len)
        self.layout = resolve_layout(layout)
        self.shares = {name: float(share) for name, (_, share) in datasets.items()}
        self.modalities = {name: modality for name, (modality, _) in datasets.items()}
        self.batch_size, self.sequence_length = batch_size, sequence_length
        self.objective = objective
        weights = list(self.shares.values())
        try:
            counts = mixing.block_counts(weights, block_size or mixing.default_block_size(weights))
        except ConfigError as err:
            raise ConfigError(f"synthetic datasets {dict(self.shares)}: {err}") from err
        rows = [packing.Packer(SyntheticDocuments(self.layout, modality, name=name, seed=seed,
                                                  objective=objective, doc_len=doc_len),
                               sequence_length, pad_id=self.layout.pad_id)
                for name, modality in self.modalities.items()]
        self._mixer = mixing.Mixer(rows, counts, seed=seed)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rows = [next(self._mixer) for _ in range(self.batch_size)]
        return batch_lib.stack_rows(rows, batch_size=self.batch_size, pad_id=self.layout.pad_id)

    def get_state(self) -> dict:
        return self._mixer.get_state()

    def set_state(self, state: Mapping) -> None:
        self._mixer.set_state(state)


def _check(datasets, batch_size, sequence_length, objective, doc_len) -> None:
    if not isinstance(datasets, Mapping) or not datasets:
        raise ConfigError(f"datasets must be a non-empty dict of name -> (modality, share), "
                          f"got {datasets!r}")
    for name, spec in datasets.items():
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2
                and spec[0] in MODALITY_NAMES):
            raise ConfigError(f"datasets[{name!r}] must be (modality, share) with a modality "
                              f"among {MODALITY_NAMES}, got {spec!r}")
    for what, value in (("batch_size", batch_size), ("sequence_length", sequence_length)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    if objective not in packing.OBJECTIVES:
        raise ConfigError(f"objective must be one of {packing.OBJECTIVES}, got {objective!r}")
    if not (len(doc_len) == 2 and 1 <= doc_len[0] <= doc_len[1]):
        raise ConfigError(f"doc_len must be (min, max) with 1 <= min <= max, got {doc_len!r}")
