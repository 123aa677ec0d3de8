"""Mini-batch k-means, shared by the image quantiser (pixel patches) and the speech units (frames).

One algorithm for both tokenizers: k-means++ seeding (Arthur & Vassilvitskii 2007) on a seeded
sample of the rows, then mini-batch updates (Sculley 2010) in which each centre moves toward the
rows assigned to it with a per-centre rate ``1 / count``. Everything is numpy and seeded: the
same rows and seed give the same centres.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([c + rng.normal(0, 0.1, (100, 2)) for c in ([0, 0], [5, 5])])
    >>> centres = minibatch_kmeans(x, 2, seed=0, steps=10, batch_size=64)     # [2, 2] float64
    >>> sorted(np.round(centres[:, 0]).astype(int).tolist())
    [0, 5]
    >>> int(nearest(np.array([[4.8, 5.1]]), centres)[0]) == int(np.argmax(centres[:, 0]))
    True
"""

from __future__ import annotations

import numpy as np


def nearest(
    x: np.ndarray, centres: np.ndarray, centre_sq: np.ndarray | None = None, chunk: int = 8192
) -> np.ndarray:
    """Index of the nearest centre (squared L2) of each row, ``chunk`` rows at a time.

    ``x [N, D]``, ``centres [K, D]`` (``centre_sq [K]``: their squared norms, when known)
    → int64 ``[N]``.
    """
    centre_sq = np.sum(centres**2, axis=1) if centre_sq is None else centre_sq
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), chunk):
        d = centre_sq[None, :] - 2.0 * (x[i : i + chunk] @ centres.T)  # [n, K], minus |x|^2
        out[i : i + chunk] = np.argmin(d, axis=1)
    return out


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: ``x [N, D]`` → ``k`` rows of ``x`` ``[k, D]``.

    With ``N <= k`` every row is a centre, and the missing ones are rows repeated with a
    jitter of 1e-3, so that no two centres coincide.
    """
    if len(x) <= k:
        extra = x[rng.integers(0, len(x), k - len(x))]
        return np.concatenate([x, extra + rng.normal(0, 1e-3, extra.shape).astype(x.dtype)])
    centres = np.empty((k, x.shape[1]), x.dtype)
    centres[0] = x[rng.integers(len(x))]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for i in range(1, k):
        total = d2.sum()
        j = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centres[i] = x[j]
        d2 = np.minimum(d2, np.sum((x - centres[i]) ** 2, axis=1))
    return centres


def minibatch_kmeans(
    x: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    steps: int = 200,
    batch_size: int = 1024,
    init_sample: int | None = None,
) -> np.ndarray:
    """Mini-batch k-means: rows ``x [N, D]`` → centres ``[k, D]`` float64.

    Seeding draws ``max(init_sample, k)`` rows (default ``init_sample``: ``max(20 k, 2048)``;
    all rows when fewer) and runs :func:`kmeans_plus_plus` on them. Each of ``steps`` updates
    draws ``batch_size`` rows with replacement, assigns them to their nearest centre, and moves
    centre ``c`` by ``(n_c / count_c) · (batch mean_c − c)``, ``count_c`` being the rows it has
    received so far. ``x`` is read a batch at a time (float64), never copied whole.
    """
    if len(x) == 0:
        raise ValueError("k-means needs at least one row")
    rng = np.random.default_rng(seed)
    init_sample = max(20 * k, 2048) if init_sample is None else init_sample
    sample = x[rng.choice(len(x), min(len(x), max(init_sample, k)), replace=False)]
    centres = kmeans_plus_plus(sample, k, rng).astype(np.float64)
    counts = np.zeros(k)
    for _ in range(steps):
        batch = np.asarray(x[rng.integers(0, len(x), min(batch_size, len(x)))], np.float64)
        assign = nearest(batch, centres)
        n = np.bincount(assign, minlength=k).astype(np.float64)  # [k] rows per centre
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, batch)
        counts += n
        hit = n > 0
        centres[hit] += (sums[hit] - n[hit, None] * centres[hit]) / counts[hit, None]
    return centres
