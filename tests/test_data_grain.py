"""The grain path: exact resume from saved iterator state, host slices, gin, no TensorFlow."""

import json
import subprocess
import sys

import gin
import grain
import numpy as np
import pytest

import mmlaws.data
from mmlaws.data import shards

T = 24
SHARES = {"code": 0.7, "text": 0.2, "image": 0.1}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("grain")
    for seed, (name, modality) in enumerate([("code", "text"), ("text", "text"),
                                             ("image", "image")]):
        # Few documents, some longer than a row: epochs turn over and chunks straddle batches.
        shards.write_synthetic(root, name, modality=modality, seed=seed, min_length=3,
                               max_length=2 * T, documents={"train": 25})
    return str(root)


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("objective", ["cm3", "causal"])
def test_resume_from_saved_state_gives_identical_batches(data_dir, objective):
    def make():
        return mmlaws.data.mixture(SHARES, sequence_length=T, batch_size=3, data_dir=data_dir,
                                   seed=7, objective=objective)

    reference = make()
    batches = [next(reference) for _ in range(30)]
    for n in (0, 1, 17):
        it = make()
        for _ in range(n):
            next(it)
        state = json.loads(json.dumps(it.get_state()))  # JSON-able, as checkpoints store it
        fresh = make()
        next(fresh)  # a fresh iterator that has moved on is reset too
        fresh.set_state(state)
        for i in range(n, 30):
            assert same(next(fresh), batches[i]), (n, i)


def test_host_slices_are_disjoint_and_cover_the_documents(data_dir):
    def documents(index, count):
        ds = grain.MapDataset.source(shards.ShardSource(data_dir, "code"))[index::count]
        return [tuple(ds[i].tolist()) for i in range(len(ds))]

    halves = documents(0, 2) + documents(1, 2)
    assert sorted(halves) == sorted(documents(0, 1)) and len(set(halves)) == len(halves)
    a, b = (mmlaws.data.mixture(SHARES, sequence_length=T, batch_size=10, data_dir=data_dir,
                                shard_index=i, shard_count=2) for i in range(2))
    assert not np.array_equal(next(a)["inputs"], next(b)["inputs"])
    with pytest.raises(mmlaws.errors.ConfigError, match="shard_index"):
        mmlaws.data.mixture(SHARES, sequence_length=T, batch_size=1, data_dir=data_dir,
                            shard_index=2, shard_count=2)


def test_adding_a_dataset_leaves_the_others_streams_unchanged(data_dir):
    def code_tokens(shares):
        it = mmlaws.data.mixture(shares, sequence_length=T, batch_size=10, data_dir=data_dir)
        batches = [next(it) for _ in range(6)]
        return np.concatenate([b["inputs"][b["dataset_ids"] == 0] for b in batches])

    two = code_tokens({"code": 0.5, "text": 0.5})
    three = code_tokens({"code": 0.5, "text": 0.3, "image": 0.2})
    n = min(len(two), len(three))
    assert n > 4 * T and np.array_equal(two[:n], three[:n])


def test_each_epoch_is_a_fresh_permutation():
    from mmlaws.data.grain_loader import EpochShuffleMapDataset

    ds = EpochShuffleMapDataset(grain.MapDataset.range(50), seed=5)
    epochs = [[ds[e * 50 + i] for i in range(50)] for e in range(3)]
    assert all(sorted(e) == list(range(50)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(50))
    assert [ds[50 + i] for i in range(50)] == epochs[1]  # random access, any order
    assert len(EpochShuffleMapDataset(grain.MapDataset.range(50), seed=5, epochs=2)) == 100


def test_the_mixture_is_configurable_from_gin(data_dir):
    gin.clear_config()
    try:
        gin.parse_config(f"""
            from __gin__ import dynamic_registration
            from mmlaws import data
            data.mixture.shares = {{"code": 0.7, "text": 0.3}}
            data.mixture.sequence_length = {T}
            data.mixture.batch_size = 2
            data.mixture.data_dir = "{data_dir}"
            data.mixture.seed = 3
        """)
        it = gin.get_configurable(mmlaws.data.mixture)()
        direct = mmlaws.data.mixture({"code": 0.7, "text": 0.3}, sequence_length=T,
                                     batch_size=2, data_dir=data_dir, seed=3)
        assert same(next(it), next(direct))
    finally:
        gin.clear_config()


def test_the_grain_path_runs_without_tensorflow(data_dir):
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # importing it would fail\n"
        "import mmlaws.data\n"
        "assert 'grain' not in sys.modules\n"
        f"it = mmlaws.data.mixture({{'code': 1.0}}, sequence_length=8, batch_size=2, "
        f"data_dir={data_dir!r})\n"
        "next(it)\n"
        "bad = [m for m, v in sys.modules.items() if v is not None\n"
        "       and m.split('.')[0] in ('tensorflow', 'seqio')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
