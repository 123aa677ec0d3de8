"""Exact token-share mixtures: block counts, and every block's token shares through grain."""

import doctest

import numpy as np
import pytest

import mmlaws.data
from mmlaws.data import TINY, mixing, shards
from mmlaws.errors import ConfigError

T = 32
MODALITY = {"text": "text", "code": "text", "image": "image", "speech": "speech"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixture")
    for seed, (name, modality) in enumerate(MODALITY.items()):
        shards.write_synthetic(root, name, modality=modality, seed=seed, min_length=4,
                               max_length=3 * T // 2, documents={"train": 150})
    return str(root)


def test_largest_remainder_counts_sum_to_the_block_and_stay_within_one_row():
    rng = np.random.default_rng(0)
    for _ in range(200):
        shares = rng.dirichlet(np.ones(rng.integers(2, 6)))
        k = int(rng.integers(len(shares), 50))
        try:
            counts = mixing.block_counts(shares, k)
        except ConfigError:  # a dataset would get no rows
            assert np.any(shares * k < 1)
            continue
        assert sum(counts) == k
        assert np.all(np.abs(np.array(counts) - shares * k) < 1)


def test_default_block_is_the_smallest_exact_one():
    assert mixing.default_block_size([0.5, 0.5]) == 2
    assert mixing.default_block_size([0.7, 0.3]) == 10
    assert mixing.default_block_size([0.2, 0.3, 0.5]) == 10
    assert mixing.default_block_size([1 / 3] * 3) == 3
    assert mixing.default_block_size([0.1234567, 0.8765433]) == mixing.ROUNDED_BLOCK


def test_block_order_is_a_seeded_permutation_of_the_counts():
    a = mixing.block_order([7, 3], seed=1, block=5)
    assert np.bincount(a).tolist() == [7, 3]
    assert a.tolist() == mixing.block_order([7, 3], seed=1, block=5).tolist()
    assert any(mixing.block_order([7, 3], seed=1, block=b).tolist() != a.tolist()
               for b in range(6, 9))


@pytest.mark.parametrize("shares, block_size", [
    ({"text": 0.5, "image": 0.5}, None),
    ({"code": 0.7, "text": 0.3}, None),
    ({"code": 0.7, "image": 0.3}, 8),  # rounded: 6 + 2 rows
    ({"text": 0.5, "image": 0.3, "speech": 0.2}, None),
])
@pytest.mark.parametrize("objective", ["cm3", "causal"])
def test_every_block_holds_each_share_within_one_sequence(data_dir, shares, block_size,
                                                           objective):
    k = block_size or mixing.default_block_size(list(shares.values()))
    counts = mixing.block_counts(list(shares.values()), k)
    it = mmlaws.data.mixture(shares, sequence_length=T, batch_size=k, data_dir=data_dir,
                             seed=4, objective=objective, block_size=block_size)
    for _ in range(30):  # batch_size = k: one block per batch
        ids = next(it)["dataset_ids"]
        rows = [int(np.max(r)) for r in ids]  # every row belongs to one dataset
        assert np.bincount(rows, minlength=len(shares)).tolist() == counts
        tokens = np.bincount(ids[ids >= 0], minlength=len(shares))
        targets = np.array(list(shares.values())) * tokens.sum()
        assert np.all(np.abs(tokens - targets) <= T), (tokens, targets)


def test_batches_follow_the_contract(data_dir):
    names = ["text", "image", "speech"]
    it = mmlaws.data.mixture(dict.fromkeys(names, 1 / 3), sequence_length=T, batch_size=6,
                             data_dir=data_dir, seed=0)
    for _ in range(5):
        b = next(it)
        assert {k: (v.dtype, v.shape) for k, v in b.items()} == {
            "inputs": (np.int32, (6, T)), "targets": (np.int32, (6, T)),
            "weights": (np.float32, (6, T)), "segment_ids": (np.int32, (6, T)),
            "positions": (np.int32, (6, T)), "dataset_ids": (np.int32, (6, T))}
        pad = b["segment_ids"] == 0
        assert np.all(b["dataset_ids"][pad] == -1) and np.all(b["weights"][pad] == 0)
        assert np.all(b["inputs"][pad] == TINY.pad_id) and np.all(b["positions"][pad] == 0)
        first = (b["positions"] == 0) & ~pad
        assert np.all(np.diff(b["positions"], axis=1)[~first[:, 1:] & ~pad[:, 1:]] == 1)
        # Each dataset's tokens come from its modality's range (or specials).
        for i, name in enumerate(names):
            tokens = b["targets"][b["dataset_ids"] == i]
            modality = TINY.modality_of(tokens)
            assert set(modality.tolist()) <= {0, int(mmlaws.data.Modality[name.upper()])}


def test_the_same_seed_gives_the_same_batches_and_another_seed_does_not(data_dir):
    def first(seed):
        it = mmlaws.data.mixture({"code": 0.7, "text": 0.3}, sequence_length=T, batch_size=4,
                                 data_dir=data_dir, seed=seed)
        return next(it)["inputs"]

    assert np.array_equal(first(1), first(1)) and not np.array_equal(first(1), first(2))


def test_a_finite_mixture_ends_when_a_dataset_runs_out(data_dir):
    it = mmlaws.data.mixture({"text": 0.5, "image": 0.5}, sequence_length=T, batch_size=4,
                             data_dir=data_dir, repeat=False, shuffle=False, objective="causal")
    batches = list(it)  # ends
    assert batches
    source = shards.ShardSource(data_dir, "image")
    expected = np.concatenate([[TINY.eod_id, *source[i][:-1]] for i in range(len(source))])
    got = np.concatenate([b["inputs"][b["dataset_ids"] == 1] for b in batches])
    assert 0 < len(got) <= len(expected) and got.tolist() == expected[:len(got)].tolist()


def test_one_finite_dataset_yields_every_token_of_its_split_once(data_dir):
    it = mmlaws.data.mixture({"speech": 1.0}, sequence_length=T, batch_size=4,
                             data_dir=data_dir, repeat=False, shuffle=False, objective="causal")
    batches = list(it)
    source = shards.ShardSource(data_dir, "speech")
    expected = np.concatenate([source[i] for i in range(len(source))])
    got = np.concatenate([b["targets"][b["dataset_ids"] == 0] for b in batches])
    assert got.tolist() == expected.tolist()
    rows = np.concatenate([b["segment_ids"] for b in batches]).max(axis=1) > 0
    real = int(rows.sum())
    assert real % 4 and rows.tolist() == [True] * real + [False] * (4 - real % 4)
    empty = {k: v[real % 4:] for k, v in batches[-1].items()}
    assert np.all(empty["dataset_ids"] == -1) and not empty["weights"].any()
    assert not any(empty[k].any() for k in ("inputs", "targets", "segment_ids", "positions"))


def test_bad_mixtures_are_refused(data_dir):
    kwargs = dict(sequence_length=T, batch_size=2, data_dir=data_dir)
    with pytest.raises(ConfigError, match=r"mixture .*image.*: token shares must sum to 1"):
        mmlaws.data.mixture({"text": 0.5, "image": 0.6}, **kwargs)
    with pytest.raises(ConfigError, match="objective"):
        mmlaws.data.mixture({"text": 1.0}, objective="t5", **kwargs)
    with pytest.raises(mmlaws.errors.DataError, match="nope/stats.json"):
        mmlaws.data.mixture({"text": 0.5, "nope": 0.5}, **kwargs)
    shards.write_synthetic(data_dir, "small_vocab", layout=mmlaws.data.SMALL)
    with pytest.raises(ConfigError, match="different vocabulary layouts"):
        mmlaws.data.mixture({"text": 0.5, "small_vocab": 0.5}, **kwargs)


def test_docstring_examples():
    assert doctest.testmod(mixing).failed == 0
