"""The synthetic source: generated documents through the real objective, packer and mixer."""

import json
import warnings

import numpy as np
import pytest

from mmlaws.data import mixing, packing
from mmlaws.data.batch import DTYPES, FIELDS, Batches, check_batches
from mmlaws.data.synthetic import SyntheticBatches, SyntheticDocuments
from mmlaws.data.vocab import TINY, Modality
from mmlaws.errors import ConfigError

DATASETS = {"prose": ("text", 0.75), "voice": ("speech", 0.25)}


def _source(**kw):
    args = dict(batch_size=8, sequence_length=32, seed=5)
    return SyntheticBatches(DATASETS, "tiny", **{**args, **kw})


def test_batches_follow_the_contract():
    data = _source()
    assert isinstance(data, Batches) and check_batches(data) is data
    assert (data.shares, data.modalities) == ({"prose": 0.75, "voice": 0.25},
                                              {"prose": "text", "voice": "speech"})
    assert (data.batch_size, data.sequence_length, data.objective) == (8, 32, "cm3")
    batch = next(data)
    assert list(batch) == list(FIELDS)
    for name, array in batch.items():
        assert array.shape == (8, 32) and array.dtype == DTYPES[name], name


def test_every_block_holds_exact_counts_and_rows_stay_in_their_modality():
    data = _source()
    counts = mixing.block_counts([0.75, 0.25], mixing.default_block_size([0.75, 0.25]))
    assert counts == [3, 1]
    for _ in range(5):
        batch = next(data)
        row_dataset = batch["dataset_ids"][:, 0]  # a packed row starts with a document
        assert np.all((batch["dataset_ids"] == row_dataset[:, None]) | (batch["segment_ids"] == 0))
        for block in row_dataset.reshape(-1, 4):
            assert np.bincount(block, minlength=2).tolist() == counts
        modality = TINY.modality_of(batch["inputs"])
        for k, wanted in enumerate((Modality.TEXT, Modality.SPEECH)):
            rows = row_dataset == k
            real = batch["segment_ids"][rows] > 0
            assert set(np.unique(modality[rows][real])) <= {Modality.SPECIAL, wanted}


def test_rows_are_the_real_packers_rows_of_each_datasets_documents():
    # The first "voice" row of the mixture is the packer's first row of voice's documents,
    # whatever other datasets the mixture holds (a dataset's seeds come from its name).
    batch = next(_source())
    first_voice = int(np.flatnonzero(batch["dataset_ids"][:, 0] == 1)[0])
    docs = SyntheticDocuments(TINY, "speech", name="voice", seed=5)
    want = next(packing.Packer(docs, 32, pad_id=TINY.pad_id))
    for key, value in want.items():
        np.testing.assert_array_equal(batch[key][first_voice], value, err_msg=key)
    alone = next(SyntheticBatches({"voice": ("speech", 1.0)}, "tiny", batch_size=1,
                                  sequence_length=32, seed=5))
    np.testing.assert_array_equal(alone["inputs"][0], want["inputs"])


def test_documents_are_examples_of_the_objective():
    docs = SyntheticDocuments(TINY, "text", name="prose", seed=0, objective="causal",
                              doc_len=(5, 5))
    ex = next(docs)
    lo, hi = TINY.range_of(Modality.TEXT)
    assert ex["inputs"][0] == TINY.eod_id and len(ex["inputs"]) == 5  # </s> + 5 tokens, shifted
    assert np.all((ex["targets"] >= lo) & (ex["targets"] < hi))
    np.testing.assert_array_equal(ex["inputs"][1:], ex["targets"][:-1])
    step = np.diff(ex["targets"]) % (hi - lo)
    assert len(set(step.tolist())) == 1  # an arithmetic progression modulo the range


def test_state_resumes_exactly_and_seeds_differ():
    data = _source()
    for _ in range(3):
        next(data)
    state = json.loads(json.dumps(data.get_state()))
    want = [next(data) for _ in range(2)]
    again = _source()
    again.set_state(state)
    for a, b in zip(want, [next(again) for _ in range(2)], strict=True):
        for key in FIELDS:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(next(_source())["inputs"], next(_source(seed=6))["inputs"])


@pytest.mark.parametrize("datasets, kw, match", [
    ({"clips": ("video", 1.0)}, {}, r"datasets\['clips'\].*modality"),
    ({"a": ("text", 0.5), "b": ("text", 0.3)}, {}, "sum to 1"),
    (DATASETS, {"sequence_length": 0}, "sequence_length"),
    (DATASETS, {"objective": "mlm"}, "objective"),
    (DATASETS, {"doc_len": (0, 4)}, "doc_len"),
])
def test_bad_settings_are_named(datasets, kw, match):
    args = {"batch_size": 4, "sequence_length": 16, **kw}
    with pytest.raises(ConfigError, match=match):
        SyntheticBatches(datasets, "tiny", **args)


def test_the_old_import_path_warns_and_re_exports():
    import importlib
    import sys

    sys.modules.pop("mmlaws.train.synthetic", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("mmlaws.train.synthetic")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert old.SyntheticBatches is SyntheticBatches
