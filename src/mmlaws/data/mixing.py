"""Exact token-share mixtures: packed rows interleaved with exact counts per block.

Rate-based sampling of examples only approximates token shares. Here each dataset is first
packed into rows of ``T`` (:mod:`mmlaws.data.packing`); then the mixed stream is cut into
blocks of ``k`` rows, and every block holds exactly ``counts[i]`` rows of dataset ``i``:

- ``counts = block_counts(shares, k)``: ``share × k`` rounded by the largest-remainder rule,
  so that the counts sum to ``k`` and each is within one row of ``share × k``;
- the default ``k`` (:func:`default_block_size`) is the smallest block in which every
  ``share × k`` is a whole number (2 for 50/50, 10 for 70/30, 3 for thirds), so the shares
  of rows are exact, not rounded;
- within a block the rows' order is a permutation drawn from ``(seed, block index)``.

Example: shares 0.7/0.3, ``k = 10``: every 10 rows hold 7 of the first dataset and 3 of the
second, in a shuffled order. Token shares equal row shares up to padding.
Pure numpy; :class:`Mixer` wraps iterators that have ``get_state``/``set_state``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmlaws.errors import ConfigError

MAX_EXACT_BLOCK = 1000  # largest block searched for exact counts
ROUNDED_BLOCK = 100  # the block used when no exact one exists


def check_shares(shares: Sequence[float]) -> np.ndarray:
    """Shares as float64; :class:`ConfigError` unless all positive and summing to 1."""
    s = np.asarray(shares, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"token shares must be positive numbers, got {list(shares)}")
    if abs(s.sum() - 1.0) > 1e-6:
        raise ConfigError(f"token shares must sum to 1, got {list(shares)} (sum {s.sum():.6g})")
    return s


def block_counts(shares: Sequence[float], block_size: int) -> list[int]:
    """Rows per dataset in a block of ``block_size``: largest-remainder rounding of share×k.

    >>> block_counts([0.7, 0.3], 10), block_counts([0.7, 0.3], 8), block_counts([1/3] * 3, 4)
    ([7, 3], [6, 2], [2, 1, 1])
    """
    s = check_shares(shares)
    if block_size < len(s):
        raise ConfigError(f"block_size {block_size} is smaller than the number of datasets "
                          f"({len(s)}): some would get no rows")
    ideal = s * block_size
    counts = np.floor(ideal + 1e-9).astype(np.int64)
    short = block_size - int(counts.sum())
    # Largest remainders first; ties go to the earlier dataset (a stable sort).
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[:short]] += 1
    if np.any(counts == 0):
        raise ConfigError(f"block_size {block_size} gives some dataset no rows "
                          f"(shares {list(shares)}); use a larger block")
    return counts.tolist()


def default_block_size(shares: Sequence[float]) -> int:
    """The smallest ``k`` ≤ 1000 with every ``share × k`` whole, else 100 (rounded counts).

    >>> [default_block_size(s) for s in ([0.5, 0.5], [0.7, 0.3], [0.25] * 4, [0.123, 0.877])]
    [2, 10, 4, 1000]
    """
    s = check_shares(shares)
    for k in range(len(s), MAX_EXACT_BLOCK + 1):
        if np.all(np.abs(s * k - np.round(s * k)) < 1e-6):
            return k
    return max(ROUNDED_BLOCK, len(s))


def block_order(counts: Sequence[int], seed: int, block: int) -> np.ndarray:
    """Which dataset fills each row of block number ``block``: a shuffled ``repeat(counts)``."""
    labels = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    return np.random.default_rng([seed, block]).permutation(labels)


class Mixer:
    """Interleaves packed row streams with exact per-block counts; adds ``dataset_ids``.

    ``sources``: row iterators with ``get_state``/``set_state`` (one per dataset, in the order
    of ``counts``). ``dataset_ids`` is the source's index on real tokens, -1 on padding.
    The mixture ends when a source runs out.
    """

    def __init__(self, sources: Sequence, counts: Sequence[int], *, seed: int):
        if len(sources) != len(counts):
            raise ValueError(f"{len(sources)} sources but {len(counts)} counts")
        self._sources = list(sources)
        self._counts = [int(c) for c in counts]
        self._block_size = sum(self._counts)
        self._seed = seed
        self._rows = 0  # rows emitted so far
        self._order = None  # the current block's order, cached

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        block, pos = divmod(self._rows, self._block_size)
        if pos == 0 or self._order is None:
            self._order = block_order(self._counts, self._seed, block)
        i = int(self._order[pos])
        row = dict(next(self._sources[i]))
        row["dataset_ids"] = np.where(row["segment_ids"] > 0, i, -1).astype(np.int32)
        self._rows += 1
        return row

    def get_state(self) -> dict:
        return {"rows": self._rows, "sources": [s.get_state() for s in self._sources]}

    def set_state(self, state: dict) -> None:
        for source, s in zip(self._sources, state["sources"], strict=True):
            source.set_state(s)
        self._rows = int(state["rows"])
        self._order = None
