"""SeqIO per-document Tasks (the CM3 transform as a preprocessor) and random-rate Mixtures.

The exact path (packed tasks, exact mixtures, the trainer's adapter) is in
tests/test_data_seqio_exact.py. Skipped unless the ``seqio`` extra is installed.
"""

import doctest

import numpy as np
import pytest

seqio = pytest.importorskip("seqio")

from mmlaws.data import SMALL, TINY, Modality, seqio_tasks, shards  # noqa: E402
from mmlaws.errors import ConfigError, DataError  # noqa: E402

T = 256  # longer than every CM3 example below: nothing is trimmed
SENTINELS = TINY.sentinel_ids
EOSS = TINY.end_of_span_id
# Short text documents and long image documents: equal example rates would give text a
# token share of about 20%, so the 50/50 check fails unless rates convert token shares.
LENGTHS = {"text": (8, 24), "image": (40, 120)}
EXAMPLES = 2000  # examples read from each mixture
# Sampling is stochastic: over 1000 examples the realised text share scattered with a standard
# deviation of 0.021 (50/50) and 0.024 (70/30) across 12 seeds; over 2000, 0.019 and 0.015.
# 0.06 is over three of them (the seed is fixed, so the test is deterministic).
TOLERANCE = 0.06


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("seqio")
    for seed, (name, (lo, hi)) in enumerate(LENGTHS.items()):
        shards.write_synthetic(
            root,
            name,
            modality=name,
            seed=seed,
            min_length=lo,
            max_length=hi,
            documents={"train": 200, "validation": 20},
        )
    return str(root)


@pytest.fixture(scope="module")
def names(data_dir):
    return seqio_tasks.register(
        data_dir,
        TINY,
        sequence_length=T,
        mixtures=[{"text": 0.5, "image": 0.5}, {"text": 0.7, "image": 0.3}],
    )


def undo(seq, n_spans):
    """Rebuild the document from a rearranged CM3 sequence (as tests/test_cm3.py does)."""
    moved, tail = {}, list(seq)
    for i in reversed(range(n_spans)):  # peel moved spans off the end: <m_i> … <eoss>
        assert tail.pop() == EOSS
        start = len(tail) - 1 - tail[::-1].index(SENTINELS[i])
        moved[SENTINELS[i]] = tail[start + 1 :]
        tail = tail[:start]
    doc = []
    for token in tail:
        doc += moved.pop(token) if token in moved else [token]
    assert not moved
    return doc


def test_register_names_tasks_and_mixtures(names):
    assert names == [
        "mmlaws_cm3:image",
        "mmlaws_cm3_packed:image",
        "mmlaws_cm3:text",
        "mmlaws_cm3_packed:text",
        "mmlaws_cm3:image_50.text_50",
        "mmlaws_cm3_rate:image_50.text_50",
        "mmlaws_cm3:image_30.text_70",
        "mmlaws_cm3_rate:image_30.text_70",
    ]
    assert seqio_tasks.mixture_name({"text": 0.7, "image": 0.3}) == names[-2]
    assert seqio_tasks.mixture_name({"text": 0.7, "image": 0.3}, sampling="rate") == names[-1]
    exact = seqio.get_mixture_or_task(names[-2])
    assert [t.name for t in exact.tasks] == ["mmlaws_cm3_packed:image", "mmlaws_cm3_packed:text"]
    rate = seqio.get_mixture_or_task(names[-1])
    assert [t.name for t in rate.tasks] == ["mmlaws_cm3:image", "mmlaws_cm3:text"]
    task = seqio.get_mixture_or_task("mmlaws_cm3:text")
    assert set(task.splits) == {"train", "validation"}
    assert task.num_input_examples("train") == 200
    vocab = task.output_features["targets"].vocabulary
    assert vocab.vocab_size == TINY.size and vocab.eos_id == TINY.eod_id


def test_default_mixtures_are_every_subset_with_equal_shares(data_dir, tmp_path):
    for seed, name in enumerate(["a", "b", "c"]):
        shards.write_synthetic(tmp_path, name, seed=seed, documents={"train": 10})
    got = seqio_tasks.register(tmp_path, TINY, prefix="subsets")
    mixtures = got[6:]
    assert got[:6:2] == ["subsets_cm3:a", "subsets_cm3:b", "subsets_cm3:c"]
    assert got[1:6:2] == ["subsets_cm3_packed:a", "subsets_cm3_packed:b", "subsets_cm3_packed:c"]
    exact = ["a_50.b_50", "a_50.c_50", "b_50.c_50", "a_33p33.b_33p33.c_33p33"]
    assert mixtures[::2] == [f"subsets_cm3:{m}" for m in exact]
    assert mixtures[1::2] == [f"subsets_cm3_rate:{m}" for m in exact]
    for name in mixtures:
        assert seqio.get_mixture_or_task(name).name == name


@pytest.mark.parametrize("split", ["train", "validation"])
def test_task_applies_the_cm3_transform_to_each_document(data_dir, names, split):
    source = shards.ShardSource(data_dir, "text", split)
    ds = seqio.get_mixture_or_task("mmlaws_cm3:text").get_dataset(
        sequence_length={"targets": T}, split=split, shuffle=False, seed=3
    )
    count = 0
    for i, ex in enumerate(ds.as_numpy_iterator()):
        doc, targets, weights = source[i], ex["targets"], ex["weights"]
        assert targets.dtype == np.int32 and weights.dtype == np.float32
        n = int(np.sum(targets == EOSS))
        assert 1 <= n <= min(16, (len(doc) + 1) // 2)
        assert len(targets) == len(weights) == len(doc) + 3 * n
        assert targets[-1] == EOSS
        for k in range(n):  # <mask:k> once in place, once opening the moved span
            assert np.sum(targets == SENTINELS[k]) == 2
        assert not np.isin(targets, SENTINELS[n:]).any()
        # Weight 0 exactly on the in-place sentinels (the first occurrence of each).
        first = [int(np.argmax(targets == SENTINELS[k])) for k in range(n)]
        assert np.flatnonzero(weights == 0).tolist() == sorted(first)
        assert undo(targets.tolist(), n) == doc.tolist()
        count += 1
    assert count == len(source)


def test_task_is_deterministic_given_the_seed(names):
    task = seqio.get_mixture_or_task("mmlaws_cm3:image")

    def first(seed, n=20):
        ds = task.get_dataset(
            sequence_length={"targets": T}, split="train", shuffle=True, seed=seed
        )
        return [ex["targets"].tolist() for ex in ds.take(n).as_numpy_iterator()]

    assert first(5) == first(5)
    assert first(5) != first(6)


def test_causal_task_and_trimming(data_dir):
    seqio_tasks.register(data_dir, TINY, objective="causal", mixtures=[])
    source = shards.ShardSource(data_dir, "image", "train")
    ds = seqio.get_mixture_or_task("mmlaws_causal:image").get_dataset(
        sequence_length={"targets": 50}, split="train", shuffle=False
    )
    for i, ex in enumerate(ds.take(30).as_numpy_iterator()):
        assert ex["targets"].tolist() == source[i][:50].tolist()
        assert len(ex["weights"]) == len(ex["targets"]) and np.all(ex["weights"] == 1)


def realised_token_share(name, examples=EXAMPLES, seed=0):
    """Token share of text in the first ``examples`` of a mixture (text ids vs image ids)."""
    ds = seqio.get_mixture_or_task(name).get_dataset(
        sequence_length={"targets": T}, split="train", shuffle=True, seed=seed, num_epochs=None
    )
    tokens = {"text": 0, "image": 0}
    for ex in ds.take(examples).as_numpy_iterator():
        kinds = TINY.modality_of(ex["targets"])
        tokens["image" if np.any(kinds == Modality.IMAGE) else "text"] += len(ex["targets"])
    return tokens["text"] / (tokens["text"] + tokens["image"])


@pytest.mark.parametrize("text_share", [0.5, 0.7])
def test_mixture_token_shares_match_the_target(names, text_share):
    name = seqio_tasks.mixture_name({"text": text_share, "image": 1 - text_share}, sampling="rate")
    assert abs(realised_token_share(name) - text_share) < TOLERANCE


def test_rates_convert_token_shares_to_example_rates(data_dir):
    lengths = {
        n: seqio_tasks.example_tokens(shards.read_stats(data_dir, n), sequence_length=T)
        for n in LENGTHS
    }
    rates = seqio_tasks.mixture_rates({"text": 0.5, "image": 0.5}, lengths)
    assert rates["text"] / rates["image"] == pytest.approx(lengths["image"] / lengths["text"])
    assert rates["text"] > 0.75  # short text documents are drawn far more often
    # Example shares equal to the token targets would miss them badly.
    assert lengths["text"] / (lengths["text"] + lengths["image"]) < 0.5 - 3 * TOLERANCE


def test_missing_or_empty_data_dir_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"{missing}: no such data directory"):
        seqio_tasks.register(missing, TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}: no built datasets"):
        seqio_tasks.register(tmp_path / "empty", TINY)


def test_bad_arguments_are_named(data_dir, names):
    with pytest.raises(ConfigError, match="built with layout"):
        seqio_tasks.register(data_dir, SMALL, mixtures=[])
    with pytest.raises(ConfigError, match="objective must be one of"):
        seqio_tasks.register(data_dir, TINY, objective="mlm")
    with pytest.raises(ConfigError, match="'speech'.*not registered"):
        seqio_tasks.register_mixture(data_dir, {"text": 0.5, "speech": 0.5})
    with pytest.raises(ConfigError, match="'speech'.*not registered"):
        seqio_tasks.register_mixture(data_dir, {"text": 0.5, "speech": 0.5}, sampling="rate")
    with pytest.raises(ConfigError, match="sampling must be one of"):
        seqio_tasks.mixture_name({"text": 0.5, "image": 0.5}, sampling="random")
    with pytest.raises(ConfigError, match="sum to 1"):
        seqio_tasks.mixture_name({"text": 0.5, "image": 0.6})
    with pytest.raises(ConfigError, match="seqio name"):
        seqio_tasks.mixture_name({"text-2": 0.5, "image": 0.5})


def test_doctests():
    result = doctest.testmod(seqio_tasks, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
