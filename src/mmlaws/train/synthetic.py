"""A small deterministic token source for training before (or without) real data.

Each dataset draws documents from one modality's id range of a :class:`VocabLayout`. A
document is an arithmetic progression modulo the range, ``lo + (a + b·t) mod n`` with random
``a, b`` — predictable in context, so the loss falls well below ``log n`` as a model learns.
Each document ends with ``</s>``, goes through the objective (CM3 by default) and is packed
into rows; the last document of a row is cut at the row's end.

Batch contract (the data package produces the same), all numpy, ``[B, T]``:

- ``inputs`` int32, ``targets`` int32 — the objective's shifted pair;
- ``weights`` float32 — 0 on padding and on masked positions;
- ``segment_ids`` int32 — 1, 2, … per document in a row, 0 on padding;
- ``positions`` int32 — restart at 0 with every document;
- ``dataset_ids`` int32 — index into the run's dataset names, −1 on padding.

Rows are split between datasets by exact counts (largest remainder of ``share · B``). Batch
``i`` depends only on ``(seed, i)``, so the iterator's state is just the next index.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmlaws.data import vocab as vocab_lib
from mmlaws.data.vocab import Modality, VocabLayout
from mmlaws.errors import ConfigError
from mmlaws.objectives import causal, cm3

FIELDS = ("inputs", "targets", "weights", "segment_ids", "positions", "dataset_ids")


def resolve_vocab(vocab: str | VocabLayout) -> VocabLayout:
    """A layout, or the name of one of :mod:`mmlaws.data.vocab`'s (tiny, micro, small, paper)."""
    if isinstance(vocab, VocabLayout):
        return vocab
    layouts = {"tiny": vocab_lib.TINY, "micro": vocab_lib.MICRO, "small": vocab_lib.SMALL,
               "paper": vocab_lib.PAPER}
    if vocab not in layouts:
        raise ConfigError(f"vocab must be one of {sorted(layouts)}, got {vocab!r}")
    return layouts[vocab]


def rows_per_dataset(shares: list[float], batch_size: int) -> list[int]:
    """Exact row counts summing to ``batch_size`` (largest remainder of ``share · B``)."""
    raw = np.asarray(shares, np.float64) * batch_size
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: batch_size - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


class SyntheticBatches:
    """Iterator of packed batches; ``get_state()``/``set_state()`` give exact resume.

    Args:
      datasets: dataset name → (modality name ``"text"|"image"|"speech"``, token share).
      vocab: the id layout the documents are drawn from (or its name, see resolve_vocab).
      batch_size, seq_len: rows ``B`` and length ``T`` of each batch.
      seed: batches of different seeds are independent (use another seed for held-out data).
      objective: ``"cm3"`` or ``"causal"``.
      doc_len: (min, max) tokens of a document before the objective.
    """

    def __init__(self, datasets: Mapping[str, tuple[str, float]], vocab: str | VocabLayout, *,
                 batch_size: int, seq_len: int, seed: int = 0, objective: str = "cm3",
                 doc_len: tuple[int, int] = (8, 48)):
        if objective not in ("cm3", "causal"):
            raise ConfigError(f"objective must be 'cm3' or 'causal', got {objective!r}")
        vocab = resolve_vocab(vocab)
        self.names = list(datasets)
        self.shares = {n: float(datasets[n][1]) for n in self.names}
        self.modalities = {n: datasets[n][0] for n in self.names}
        self.ranges = [vocab.range_of(Modality[datasets[n][0].upper()]) for n in self.names]
        self.rows = rows_per_dataset([datasets[n][1] for n in self.names], batch_size)
        self.vocab, self.batch_size, self.seq_len = vocab, batch_size, seq_len
        self.seed, self.objective, self.doc_len = seed, objective, doc_len
        self.index = 0

    def get_state(self) -> dict:
        return {"index": self.index}

    def set_state(self, state: Mapping) -> None:
        self.index = int(state["index"])

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        out = self.batch(self.index)
        self.index += 1
        return out

    def batch(self, index: int) -> dict[str, np.ndarray]:
        """Batch number ``index`` (a pure function of seed and index)."""
        rng = np.random.default_rng([self.seed, index])
        out = {k: np.zeros((self.batch_size, self.seq_len), np.int32) for k in FIELDS}
        out["weights"] = np.zeros((self.batch_size, self.seq_len), np.float32)
        out["dataset_ids"][:] = -1
        row = 0
        for ds, count in enumerate(self.rows):
            for _ in range(count):
                self._fill_row(out, row, ds, rng)
                row += 1
        return out

    def _document(self, ds: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.ranges[ds]
        n = hi - lo
        length = int(rng.integers(self.doc_len[0], self.doc_len[1] + 1))
        a, b = rng.integers(0, n), rng.integers(1, max(n // 4, 2))
        tokens = lo + (a + b * np.arange(length)) % n
        return np.append(tokens, self.vocab.eod_id).astype(np.int32)

    def _fill_row(self, out: dict, row: int, ds: int, rng: np.random.Generator) -> None:
        start, segment = 0, 1
        while start < self.seq_len:
            doc = self._document(ds, rng)
            if self.objective == "cm3":
                ex = cm3.transform(doc, sentinel_ids=self.vocab.sentinel_ids,
                                   end_of_span_id=self.vocab.end_of_span_id, rng=rng,
                                   bos_id=self.vocab.eod_id)
            else:
                ex = causal.transform(doc, bos_id=self.vocab.eod_id)
            take = min(len(ex.inputs), self.seq_len - start)
            cut = slice(start, start + take)
            out["inputs"][row, cut] = ex.inputs[:take]
            out["targets"][row, cut] = ex.targets[:take]
            out["weights"][row, cut] = ex.weights[:take]
            out["segment_ids"][row, cut] = segment
            out["positions"][row, cut] = np.arange(take)
            out["dataset_ids"][row, cut] = ds
            start, segment = start + take, segment + 1
