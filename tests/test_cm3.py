"""The CM3 objective (paper and metaseq modes) and the causal objective."""

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest

from mmlaws.data import TINY
from mmlaws.objectives import causal, cm3

SENTINELS = tuple(range(100, 116))
EOSS = 99
IDS = {"sentinel_ids": SENTINELS, "end_of_span_id": EOSS}


def full_sequence(ex):
    return np.concatenate([ex.inputs[:1], ex.targets])


def random_documents(seed, count):
    """Documents of distinct token ids (so each one can be tracked), lengths 1 to 600."""
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 3, 4, 5] + rng.integers(1, 600, size=count - 5).tolist()
    return [rng.permutation(1000)[:n] + 1000 for n in lengths]


def undo(seq, n_spans):
    """Rebuild the document from a rearranged paper-mode sequence (an independent inverse)."""
    moved = {}
    tail = list(seq)
    for i in reversed(range(n_spans)):  # peel moved spans off the end: <m_i> … <eoss>
        assert tail.pop() == EOSS
        start = len(tail) - 1 - tail[::-1].index(SENTINELS[i])
        moved[SENTINELS[i]] = tail[start + 1:]
        tail = tail[:start]
    doc = []
    for token in tail:
        doc += moved.pop(token) if token in moved else [token]
    assert not moved
    return doc


def test_worked_example():
    ex = cm3.transform([11, 12, 13, 14, 15, 16], spans=[(1, 3), (4, 5)], **IDS)
    assert ex.inputs.tolist() == [11, 100, 14, 101, 16, 100, 12, 13, 99, 101, 15]
    assert ex.targets.tolist() == [100, 14, 101, 16, 100, 12, 13, 99, 101, 15, 99]
    assert ex.weights.tolist() == [0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert ex.spans.tolist() == [[1, 3], [4, 5]]
    assert (ex.inputs.dtype, ex.targets.dtype, ex.weights.dtype) == (np.int32, np.int32,
                                                                     np.float32)


def test_bos_and_a_span_at_the_start():
    ex = cm3.transform([11, 12, 13], spans=[(0, 2)], **IDS)
    assert full_sequence(ex).tolist() == [100, 13, 100, 11, 12, 99]
    assert ex.weights.tolist() == [1, 1, 1, 1, 1]  # the in-place sentinel is never a target
    ex = cm3.transform([11, 12, 13], spans=[(0, 2)], bos_id=1, **IDS)
    assert full_sequence(ex).tolist() == [1, 100, 13, 100, 11, 12, 99]
    assert ex.weights.tolist() == [0, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("bos_id", [None, 1])
def test_properties_over_random_documents(bos_id):
    docs = random_documents(0, 300)
    rng = np.random.default_rng(1)
    for doc in docs:
        ex = cm3.transform(doc, rng=rng, bos_id=bos_id, **IDS)
        spans, n, size = ex.spans, len(ex.spans), len(doc)
        assert 1 <= n <= min(16, (size + 1) // 2)
        assert np.all(spans[:, 0] < spans[:, 1]) and np.all(spans[1:, 0] > spans[:-1, 1])
        assert spans.min() >= 0 and spans.max() <= size
        seq = full_sequence(ex)[(bos_id is not None):]
        assert len(seq) == size + 3 * n
        assert len(ex.inputs) == len(ex.targets) == len(ex.weights) == size + 3 * n - 1 + (
            bos_id is not None)
        assert undo(seq.tolist(), n) == doc.tolist()  # each token once, order kept
        kept = sorted(seq[~np.isin(seq, SENTINELS + (EOSS,))].tolist())
        assert kept == sorted(doc.tolist())
        prefix_len = size - int((spans[:, 1] - spans[:, 0]).sum()) + n
        offset = int(bos_id is not None)
        zero = [t for t in range(len(ex.targets))
                if t + 1 - offset < prefix_len and ex.targets[t] in SENTINELS]
        assert np.flatnonzero(ex.weights == 0).tolist() == zero
        assert len(zero) == n - (offset == 0 and spans[0, 0] == 0)
        assert set(ex.weights.tolist()) <= {0.0, 1.0}


def test_short_documents():
    ex = cm3.transform([7], rng=0, **IDS)
    assert full_sequence(ex).tolist() == [100, 100, 7, 99]
    assert ex.spans.tolist() == [[0, 1]]
    counts = {}
    for seed in range(600):
        span = tuple(cm3.transform([7, 8], rng=seed, **IDS).spans[0].tolist())
        counts[span] = counts.get(span, 0) + 1
    assert set(counts) == {(0, 1), (0, 2), (1, 2)}  # each equally likely
    assert all(abs(c / 600 - 1 / 3) < 0.07 for c in counts.values())
    assert {len(cm3.transform([1, 2, 3], rng=s, **IDS).spans) for s in range(100)} == {1, 2}


def test_deterministic_for_a_seed():
    doc = np.arange(200) + 1000
    a = cm3.transform(doc, rng=42, **IDS)
    b = cm3.transform(doc, rng=np.random.default_rng(42), **IDS)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    others = {tuple(cm3.transform(doc, rng=s, **IDS).spans.ravel()) for s in range(20)}
    assert len(others) > 15


def test_span_count_distribution():
    rng = np.random.default_rng(3)
    counts = np.array([len(cm3.sample_spans(10_000, rng)) for _ in range(4000)])
    assert counts.min() >= 1 and counts.max() <= 16
    expected = 1 + math.exp(-1)  # E[clamp(Poisson(1), 1, 16)] = P(0) + E[X] (tail above 16 ~ 0)
    assert abs(counts.mean() - expected) < 0.06
    assert abs((counts == 1).mean() - 2 * math.exp(-1)) < 0.03
    lengths = [np.diff(cm3.sample_spans(3000, rng, max_spans=1)).item() for _ in range(2000)]
    assert abs(np.mean(lengths) / 3000 - 1 / 3) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokens": [], "rng": 0}, "non-empty"),
        ({"tokens": [1, 2], "spans": [(0, 1)], "mode": "t5"}, "mode"),
        ({"tokens": [1, 2, 3]}, "rng"),
        ({"tokens": [1, 2, 3], "spans": [(1, 1)]}, "non-empty"),
        ({"tokens": [1, 2, 3], "spans": [(0, 2), (1, 3)]}, "non-overlapping"),
        ({"tokens": [1, 2, 3], "spans": [(2, 3), (0, 1)]}, "sorted"),
        ({"tokens": [1, 2, 3], "spans": [(2, 4)]}, r"inside \[0, 3\]"),
        ({"tokens": [1, 2, 3], "rng": 0, "sentinel_ids": (100,)}, "sentinels"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cm3.transform(**{**IDS, **kwargs})


def test_metaseq_mode_properties():
    rng = np.random.default_rng(5)
    block_len, unmasked, blocks = 128, 0, 3000
    for _ in range(blocks):
        block = rng.permutation(1000)[:block_len] + 1000
        ex = cm3.transform(block, rng=rng, mode="metaseq", **IDS)
        seq, spans = full_sequence(ex), ex.spans
        assert len(seq) == block_len and np.all(ex.weights == 1)  # truncated, loss everywhere
        assert len(spans) <= 16
        if len(spans) == 0:
            unmasked += 1
            np.testing.assert_array_equal(seq, block)
            continue
        assert np.all(spans[:, 0] < spans[:, 1]) and np.all(spans[1:, 0] >= spans[:-1, 1])
        rearranged, _ = cm3.rearrange(block, spans, SENTINELS, EOSS)
        np.testing.assert_array_equal(seq, rearranged[:block_len])
        assert len(rearranged) == block_len + 3 * len(spans)
        tokens = seq[seq >= 1000]
        assert len(np.unique(tokens)) == len(tokens) and np.isin(tokens, block).all()
        outside = np.ones(block_len, bool)
        for start, end in spans:
            outside[start:end] = False
        assert np.isin(block[outside], seq).all()  # only moved-span tails are cut
    assert abs(unmasked / blocks - math.exp(-1)) < 0.03


def test_metaseq_mode_explicit_spans_truncate():
    ex = cm3.transform([11, 12, 13, 14, 15, 16], spans=[(1, 4)], mode="metaseq", **IDS)
    assert full_sequence(ex).tolist() == [11, 100, 15, 16, 100, 12]
    assert ex.weights.tolist() == [1] * 5


def test_causal_objective():
    ex = causal.transform([5, 6, 7, 8])
    assert ex.inputs.tolist() == [5, 6, 7] and ex.targets.tolist() == [6, 7, 8]
    assert ex.weights.tolist() == [1, 1, 1] and ex.spans.shape == (0, 2)
    ex = causal.transform([5], bos_id=TINY.eod_id)
    assert (ex.inputs.tolist(), ex.targets.tolist()) == ([1], [5])
    with pytest.raises(ValueError, match="empty"):
        causal.transform([])


def test_with_the_vocabulary_layout():
    doc = TINY.text_id(np.arange(20))
    ex = cm3.transform(doc, rng=0, sentinel_ids=TINY.sentinel_ids,
                       end_of_span_id=TINY.end_of_span_id, bos_id=TINY.eod_id)
    zero = ex.weights == 0
    assert np.all(TINY.is_sentinel(ex.targets[zero]))
    assert zero.sum() == len(ex.spans)


def test_objectives_import_numpy_only():
    code = ("import sys, mmlaws.objectives\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jax', 'tensorflow', 'seqio', 'torch'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", [cm3, causal])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
