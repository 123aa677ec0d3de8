"""The plain causal (left-to-right) objective, and the example format every objective returns.

An objective turns one token sequence ``seq`` into an :class:`Example` of three aligned arrays
of length ``len(seq) - 1``::

    inputs  = seq[:-1]          # what the model reads
    targets = seq[1:]           # what it predicts at each position (the next token)
    weights = w[1:]             # loss weight of predicting targets[t]

so a train step needs no shifting: ``loss = sum(weights * xent(model(inputs), targets))``.
A packer concatenates examples and their segment ids; nothing is predicted across documents.

Example::

    >>> ex = transform([11, 12, 13])
    >>> ex.inputs.tolist(), ex.targets.tolist(), ex.weights.tolist()
    ([11, 12], [12, 13], [1.0, 1.0])
    >>> transform([11, 12, 13], bos_id=1).inputs.tolist()
    [1, 11, 12]

Pure numpy: runs in grain workers and inside seqio through ``tf.numpy_function``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Example(NamedTuple):
    """One transformed document (or packed block).

    Attributes:
      inputs: int32 ``[L]``, the model's input tokens.
      targets: int32 ``[L]``, the next token at each position.
      weights: float32 ``[L]``, loss weight of each target (0 or 1).
      spans: int32 ``[n, 2]``, the masked spans as half-open ``(start, end)`` positions in the
        original tokens, in order (empty for the causal objective).
    """

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    spans: np.ndarray


def shift(seq, weights=None, *, spans=None, bos_id: int | None = None) -> Example:
    """Make an :class:`Example` from a full sequence and per-token weights.

    ``weights[i]`` is the loss weight of predicting ``seq[i]`` from ``seq[:i]`` (all 1 if None).
    With ``bos_id`` the sequence is first prefixed by that token (weight irrelevant: it is never
    a target), so that the first real token is predicted too.
    """
    seq = np.asarray(seq, dtype=np.int32)
    weights = np.ones(seq.shape, np.float32) if weights is None else np.asarray(weights)
    if seq.ndim != 1 or weights.shape != seq.shape:
        raise ValueError(f"expected 1-D tokens and weights of one shape: {seq.shape}, "
                         f"{weights.shape}")
    if bos_id is not None:
        seq = np.concatenate([np.array([bos_id], np.int32), seq])
        weights = np.concatenate([np.ones(1, weights.dtype), weights])
    spans = np.zeros((0, 2), np.int32) if spans is None else np.asarray(spans, np.int32)
    return Example(
        inputs=seq[:-1],
        targets=seq[1:],
        weights=weights[1:].astype(np.float32),
        spans=spans.reshape(-1, 2),
    )


def transform(tokens, *, bos_id: int | None = None) -> Example:
    """The causal objective: predict every next token, all with weight 1."""
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        raise ValueError("cannot transform an empty document")
    return shift(tokens, bos_id=bos_id)
