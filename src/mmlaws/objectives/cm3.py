"""The CM3 causally masked objective (Aghajanyan et al. 2022, arXiv 2201.07520 §2; paper §4.4).

A few long spans of a document are cut out, each replaced in place by a sentinel ``<mask:i>``,
and moved to the end of the document as ``<mask:i> span tokens <eoss>``. The model is then
trained left to right on the rearranged sequence, so it infills each span having seen the
context on both sides of it.

Two modes:

- ``mode="paper"`` (default), per document, as the CM3 paper defines it: see
  :func:`sample_spans`. Every span is moved whole and each adds three tokens (the sentinel
  in place, the sentinel opening the moved span, ``<eoss>``), so the rearranged sequence has
  exactly ``len(tokens) + 3 * n`` tokens and the :class:`Example` arrays have
  ``len(tokens) + 3 * n - 1`` entries (``len(tokens) + 3 * n`` with ``bos_id``).
- ``mode="metaseq"``, the behaviour of metaseq's ``CausalMaskedDataset``, which trained the
  paper's models (§4.5): applied to a packed block rather than a document, see
  :func:`sample_block_spans`; ``n`` may be 0 (about ``e^-1`` ≈ 37% of blocks stay unmasked
  at λ = 1); the rearranged block is truncated back to the block's length, cutting the tail of
  the last moved span(s); spans may cross document boundaries inside the block; every
  position, sentinels included, has loss weight 1.

Loss weights (paper mode). ``weights[t]`` belongs to predicting ``targets[t]``. It is **0
exactly where ``targets[t]`` is a sentinel standing in place of a span inside the document**
(the first occurrence of each ``<mask:i>``): where a span was cut out cannot be predicted.
Everything else has weight 1: the document's tokens, the token right after each in-place
sentinel, the sentinel that opens each moved span at the end (including the first one, right
after the document), the span's tokens and each ``<eoss>``. So there are ``n`` zeros, or
``n - 1`` when a span starts at position 0 and no ``bos_id`` is given (that sentinel is then
``inputs[0]``, never a target).

Output format: an :class:`mmlaws.objectives.causal.Example` (inputs, targets, weights, spans),
next-token shifted as documented in :mod:`mmlaws.objectives.causal`.

Pure numpy: runs in grain workers and inside seqio through ``tf.numpy_function``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmlaws.objectives.causal import Example, shift

# CM3 §2: n ~ Clamp(Poisson(λ = 1), 1, 16) spans per document.
POISSON_LAMBDA = 1.0
MAX_SPANS = 16
MODES = ("paper", "metaseq")


def transform(
    tokens,
    *,
    sentinel_ids: Sequence[int],
    end_of_span_id: int,
    rng: int | np.random.Generator | None = None,
    spans: Sequence[tuple[int, int]] | None = None,
    mode: str = "paper",
    bos_id: int | None = None,
    poisson_lambda: float = POISSON_LAMBDA,
    max_spans: int = MAX_SPANS,
) -> Example:
    """Apply the CM3 objective to one document (paper mode) or one packed block (metaseq mode).

    Args:
      tokens: 1-D int token ids, not empty.
      sentinel_ids: ids of ``<mask:0>``, ``<mask:1>``, … (at least ``max_spans`` of them),
        e.g. ``VocabLayout.sentinel_ids``.
      end_of_span_id: id of ``<eoss>``, closing each moved span.
      rng: a seed or a ``np.random.Generator``; the same seed gives the same output.
      spans: explicit half-open ``(start, end)`` spans instead of sampling: sorted, non-empty,
        non-overlapping, inside the document.
      mode: ``"paper"`` or ``"metaseq"`` (see the module docstring).
      bos_id: optional token put before the sequence (never masked, never a target), so that
        the document's first token is predicted too.
      poisson_lambda, max_spans: the span-count distribution (CM3 §2: 1 and 16).

    Worked example (paper mode, explicit spans, sentinels 100…, ``<eoss>`` = 99)::

        >>> ex = transform([11, 12, 13, 14, 15, 16], spans=[(1, 3), (4, 5)],
        ...                sentinel_ids=range(100, 116), end_of_span_id=99)

    The rearranged sequence is ``11 <m0> 14 <m1> 16 <m0> 12 13 <eoss> <m1> 15 <eoss>``,
    6 + 3·2 = 12 tokens; the example is that sequence shifted by one, with weight 0 where the
    target is an in-place sentinel (positions 0 and 2)::

        >>> ex.inputs.tolist()
        [11, 100, 14, 101, 16, 100, 12, 13, 99, 101, 15]
        >>> ex.targets.tolist()
        [100, 14, 101, 16, 100, 12, 13, 99, 101, 15, 99]
        >>> ex.weights.tolist()
        [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        >>> ex.spans.tolist()
        [[1, 3], [4, 5]]
    """
    tokens = np.asarray(tokens, dtype=np.int32)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(f"expected a non-empty 1-D token array, got shape {tokens.shape}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(sentinel_ids) < max_spans:
        raise ValueError(f"need at least max_spans={max_spans} sentinels, got {len(sentinel_ids)}")
    if spans is None:
        if rng is None:
            raise ValueError("pass rng (a seed or np.random.Generator) or explicit spans")
        sample = sample_spans if mode == "paper" else sample_block_spans
        spans = sample(len(tokens), np.random.default_rng(rng),
                       poisson_lambda=poisson_lambda, max_spans=max_spans)
    spans = _checked_spans(spans, len(tokens), max_spans)
    seq, in_place = rearrange(tokens, spans, sentinel_ids, end_of_span_id)
    if mode == "metaseq":
        return shift(seq[: len(tokens)], spans=spans, bos_id=bos_id)
    return shift(seq, np.where(in_place, 0.0, 1.0), spans=spans, bos_id=bos_id)


def sample_spans(
    length: int,
    rng: np.random.Generator,
    *,
    poisson_lambda: float = POISSON_LAMBDA,
    max_spans: int = MAX_SPANS,
) -> np.ndarray:
    """Sample CM3 spans for a document of ``length`` tokens (paper mode), ``int32 [n, 2]``.

    1. ``n = clip(Poisson(poisson_lambda), 1, max_spans)`` (CM3 §2: λ = 1, at most 16).
    2. ``n = min(n, (length + 1) // 2)``: a document too short for ``n`` separate spans gets
       fewer (1 span for lengths 1–2, 2 for 3–4, …); never zero.
    3. The ``2n`` span boundaries are ``2n`` distinct positions drawn uniformly without
       replacement from ``{0, …, length}`` and sorted: ``s_1 < e_1 < s_2 < e_2 < …``. Span
       ``i`` is ``[s_i, e_i)``. So spans are non-empty, never overlap, never touch (at least
       one kept token between two spans), and every such set of ``n`` spans is equally likely.
       With one span its expected length is ``length / 3``, as for two uniform endpoints.
    """
    n = int(np.clip(rng.poisson(poisson_lambda), 1, max_spans))
    n = min(n, (length + 1) // 2)
    boundaries = np.sort(rng.choice(length + 1, size=2 * n, replace=False))
    return boundaries.reshape(n, 2).astype(np.int32)


def sample_block_spans(
    length: int,
    rng: np.random.Generator,
    *,
    poisson_lambda: float = POISSON_LAMBDA,
    max_spans: int = MAX_SPANS,
) -> np.ndarray:
    """Sample spans for a packed block as metaseq's ``CausalMaskedDataset`` does, ``[n, 2]``.

    1. ``n = clip(Poisson(poisson_lambda), 0, max_spans)``; 0 leaves the block unmasked.
       (metaseq caps ``n`` at its number of sentinels minus one.)
    2. ``n²`` candidates: each from two uniforms ``u ≤ v`` in [0, 1) is
       ``(floor(u·length), floor(v·length + 0.5))``.
    3. Candidates are taken from the last to the first; one is kept if it is non-empty and does
       not overlap a kept one, until ``n`` are kept or none is left. Fewer than ``n`` (even
       none) may result. metaseq keeps empty candidates too, which overwrites a token with a
       sentinel; they are skipped here so that no token is lost.
    4. The kept spans are sorted by start.
    """
    n = int(np.clip(rng.poisson(poisson_lambda), 0, max_spans))
    if n == 0:
        return np.zeros((0, 2), np.int32)
    u = np.sort(rng.uniform(size=(n * n, 2)), axis=1)
    starts = np.floor(u[:, 0] * length).astype(np.int64)
    ends = np.floor(u[:, 1] * length + 0.5).astype(np.int64)
    kept: list[tuple[int, int]] = []
    for start, end in zip(starts[::-1].tolist(), ends[::-1].tolist(), strict=True):
        if len(kept) == n:
            break
        if start < end and all(max(start, s) >= min(end, e) for s, e in kept):
            kept.append((start, end))
    return np.array(sorted(kept), np.int32).reshape(-1, 2)


def rearrange(tokens: np.ndarray, spans: np.ndarray, sentinel_ids, end_of_span_id: int):
    """Move each span to the end: ``(seq, in_place)``, where ``in_place`` marks the sentinels
    left in the document (the positions whose prediction has loss weight 0 in paper mode).

    ``spans`` must be sorted and non-overlapping (see :func:`transform`).
    """
    prefix, suffix, in_place = [], [], []
    cursor = 0
    for i, (start, end) in enumerate(spans.tolist()):
        sentinel = np.array([sentinel_ids[i]], np.int32)
        prefix += [tokens[cursor:start], sentinel]
        in_place += [np.zeros(start - cursor, bool), np.ones(1, bool)]
        suffix += [sentinel, tokens[start:end], np.array([end_of_span_id], np.int32)]
        cursor = end
    prefix.append(tokens[cursor:])
    in_place.append(np.zeros(len(tokens) - cursor, bool))
    seq = np.concatenate(prefix + suffix).astype(np.int32)
    in_place = np.concatenate(in_place)
    in_place = np.concatenate([in_place, np.zeros(len(seq) - len(in_place), bool)])
    return seq, in_place


def _checked_spans(spans, length: int, max_spans: int) -> np.ndarray:
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    starts, ends = spans[:, 0], spans[:, 1]
    ok = (
        len(spans) <= max_spans
        and bool(np.all(starts >= 0))
        and bool(np.all(ends <= length))
        and bool(np.all(starts < ends))
        and bool(np.all(ends[:-1] <= starts[1:]))
    )
    if not ok:
        raise ValueError(
            f"spans must be at most {max_spans} sorted, non-empty, non-overlapping half-open "
            f"ranges inside [0, {length}], got {spans.tolist()}"
        )
    return spans.astype(np.int32)
