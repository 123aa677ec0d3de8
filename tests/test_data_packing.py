"""Packing: the docstring's worked example, lossless order, segment ids, exact resume."""

import numpy as np
import pytest

from mmlaws.data import TINY, packing


class ListIterator:
    """A list of examples with the get_state/set_state protocol the packer needs."""

    def __init__(self, items):
        self.items, self.index = items, 0

    def __next__(self):
        if self.index == len(self.items):
            raise StopIteration
        self.index += 1
        return self.items[self.index - 1]

    def get_state(self):
        return {"index": self.index}

    def set_state(self, state):
        self.index = state["index"]


def example(start, length):
    tokens = np.arange(start, start + length, dtype=np.int32)
    return {"inputs": tokens, "targets": tokens + 1000, "weights": np.ones(length, np.float32)}


def test_worked_example_of_the_module_docstring():
    rows = list(packing.Packer(ListIterator([example(10, 3), example(20, 2), example(30, 6)]),
                               4, pad_id=0))
    assert [r["inputs"].tolist() for r in rows] == [
        [10, 11, 12, 0], [20, 21, 30, 31], [32, 33, 34, 35]]
    assert [r["segment_ids"].tolist() for r in rows] == [[1, 1, 1, 0], [1, 1, 2, 2], [1, 1, 1, 1]]
    assert [r["positions"].tolist() for r in rows] == [[0, 1, 2, 0], [0, 1, 0, 1], [0, 1, 2, 3]]
    assert rows[0]["targets"].tolist() == [1010, 1011, 1012, 0]
    assert rows[0]["weights"].tolist() == [1, 1, 1, 0]
    assert {k: v.dtype for k, v in rows[0].items()} == {
        "inputs": np.int32, "targets": np.int32, "weights": np.float32,
        "segment_ids": np.int32, "positions": np.int32}


def random_examples(count, seed, max_length):
    rng = np.random.default_rng(seed)
    starts = np.cumsum(rng.integers(1, max_length + 1, size=count))
    return [example(int(s - n), int(n)) for s, n in
            zip(starts, np.diff(np.concatenate([[0], starts])), strict=True)]


@pytest.mark.parametrize("length", [1, 5, 16])
def test_packing_keeps_every_position_in_order_and_segments_are_consistent(length):
    examples = random_examples(60, seed=length, max_length=23)
    rows = list(packing.Packer(ListIterator(examples), length))
    real = np.concatenate([r["inputs"][r["segment_ids"] > 0] for r in rows])
    assert real.tolist() == np.concatenate([e["inputs"] for e in examples]).tolist()
    for r, after in zip(rows, rows[1:] + [None], strict=True):
        seg, pos = r["segment_ids"], r["positions"]
        n = int((seg > 0).sum())
        assert seg[:n].min(initial=1) >= 1 and not seg[n:].any()  # padding only at the end
        assert np.all(np.diff(seg[:n]) >= 0) and np.all(np.diff(seg[:n]) <= 1)
        for s in range(1, int(seg.max()) + 1):
            assert pos[seg == s].tolist() == list(range(int((seg == s).sum())))
        if n < length and after is not None:  # padded only because the next one did not fit
            assert int((after["segment_ids"] == 1).sum()) > length - n


def test_examples_longer_than_a_row_fill_the_free_space():
    rows = list(packing.Packer(ListIterator([example(0, 3), example(100, 9)]), 4))
    assert [r["inputs"].tolist() for r in rows] == [
        [0, 1, 2, 100], [101, 102, 103, 104], [105, 106, 107, 108]]


def test_resume_from_any_row_gives_the_same_rows():
    examples = random_examples(40, seed=1, max_length=30)
    reference = list(packing.Packer(ListIterator(examples), 8))
    for n in range(len(reference)):
        packer = packing.Packer(ListIterator(examples), 8)
        for _ in range(n):
            next(packer)
        state = packer.get_state()
        fresh = packing.Packer(ListIterator(examples), 8)
        fresh.set_state(state)
        rest = list(fresh)
        assert len(rest) == len(reference) - n
        for a, b in zip(rest, reference[n:], strict=True):
            assert all(np.array_equal(a[k], b[k]) for k in a)


def test_cm3_document_example_puts_eod_first_and_zero_weights_on_in_place_sentinels():
    doc = np.arange(23, 43, dtype=np.int32)
    ex = packing.document_example(doc, np.random.default_rng(0), objective="cm3", layout=TINY)
    n = (len(ex["inputs"]) - len(doc)) // 3
    assert n >= 1 and len(ex["inputs"]) == len(doc) + 3 * n
    assert ex["inputs"][0] == TINY.eod_id
    in_place = TINY.is_sentinel(ex["targets"]) & (ex["weights"] == 0)
    assert int(in_place.sum()) == n == int((ex["weights"] == 0).sum())
    causal = packing.document_example(doc, None, objective="causal", layout=TINY)
    assert causal["inputs"].tolist() == [TINY.eod_id, *doc[:-1].tolist()]
    assert causal["targets"].tolist() == doc.tolist() and causal["weights"].all()
    with pytest.raises(ValueError, match="objective"):
        packing.document_example(doc, None, objective="t5", layout=TINY)
