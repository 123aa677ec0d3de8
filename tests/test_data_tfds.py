"""The built datasets as TFDS datasets: metadata, random access, grain through TFDS without TF.

Skipped unless ``tensorflow-datasets`` is installed. Nothing here imports TensorFlow (the
``as_dataset`` check, which needs it, is in tests/test_data_seqio.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets")

import mmlaws.data  # noqa: E402
from mmlaws.data import shards, tfds_shards  # noqa: E402
from mmlaws.errors import DataError  # noqa: E402

T = 24
SHARES = {"code": 0.5, "image": 0.5}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    shards.write_synthetic(root, "code", seed=0, min_length=3, max_length=2 * T,
                           documents={"train": 25, "validation": 7}, documents_per_shard=10)
    shards.write_synthetic(root, "image", modality="image", seed=1, min_length=4,
                           max_length=3 * T, documents={"train": 30})
    return str(root)


def test_info_holds_splits_modalities_and_token_counts(data_dir):
    builder = tfds_shards.builder(data_dir, "code")
    stats = shards.read_stats(data_dir, "code")
    info = builder.info
    assert info.splits["train"].num_examples == 25 and info.splits["validation"].num_examples == 7
    assert info.splits["train"].shard_lengths == [10, 10, 5]
    assert info.metadata["modalities"] == ["text"]
    assert info.metadata["tokens"] == {s: c["tokens"] for s, c in stats["splits"].items()}
    assert info.metadata["documents"] == {"train": 25, "validation": 7}
    assert info.metadata["layout"] == stats["vocab"]
    assert info.file_format.value == "array_record"
    for file in tfds_shards.INFO_FILES:  # written beside the shards, which are untouched
        assert os.path.isfile(os.path.join(data_dir, "code", file))


@pytest.mark.parametrize("split", ["train", "validation"])
def test_random_access_gives_the_shard_documents(data_dir, split):
    direct = shards.ShardSource(data_dir, "code", split)
    through = tfds_shards.TfdsShardSource(data_dir, "code", split)
    assert len(through) == len(direct)
    for i in range(len(direct)):
        got = through[i]
        assert got.dtype == np.int32 and np.array_equal(got, direct[i])
    assert (through.name, through.split, through.layout) == ("code", split, direct.layout)
    with pytest.raises(IndexError):
        through[len(direct)]


def test_stale_metadata_is_rewritten_when_the_dataset_is_rebuilt(tmp_path):
    shards.write_synthetic(tmp_path, "text", seed=0, documents={"train": 5})
    assert tfds_shards.builder(tmp_path, "text").info.splits["train"].num_examples == 5
    info = tmp_path / "text" / "dataset_info.json"
    kept = info.read_text()
    shards.write_synthetic(tmp_path, "text", seed=1, documents={"train": 8})  # a new folder
    assert not info.exists()
    tfds_shards.write_info(tmp_path, "text")
    (tmp_path / "text" / "dataset_info.json").write_text(kept)  # stale: says 5 documents
    builder = tfds_shards.builder(tmp_path, "text")
    assert builder.info.splits["train"].num_examples == 8
    assert len(tfds_shards.TfdsShardSource(tmp_path, "text")) == 8


def test_missing_dataset_or_split_is_named(data_dir, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        tfds_shards.builder(tmp_path, "nothing")
    with pytest.raises(DataError, match="has no split 'validation'"):
        tfds_shards.TfdsShardSource(data_dir, "image", "validation")


def test_grain_reads_through_tfds_without_tensorflow(data_dir):
    """The grain mixture with reader='tfds' gives the batches of reader='shards', TF absent."""
    code = f"""
import importlib.machinery, json, sys
class Hide(importlib.machinery.PathFinder):  # as if TensorFlow and seqio were not installed
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "seqio"):
            return None
        return super().find_spec(name, path, target)
sys.meta_path[:] = [Hide if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
import mmlaws.data
it = mmlaws.data.mixture({SHARES!r}, sequence_length={T}, batch_size=4, data_dir={data_dir!r},
                         seed=3, reader="tfds")
batches = [next(it) for _ in range(12)]
assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "seqio")]
assert "tensorflow_datasets" in sys.modules
print(json.dumps([{{k: v.tolist() for k, v in b.items()}} for b in batches]))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    it = mmlaws.data.mixture(SHARES, sequence_length=T, batch_size=4, data_dir=data_dir, seed=3)
    for batch in got:
        want = next(it)
        assert {k: np.asarray(v).tolist() for k, v in batch.items()} == \
            {k: v.tolist() for k, v in want.items()}


def test_unknown_reader_is_refused(data_dir):
    with pytest.raises(mmlaws.errors.ConfigError, match="reader must be"):
        mmlaws.data.mixture(SHARES, sequence_length=T, batch_size=2, data_dir=data_dir,
                            reader="parquet")
