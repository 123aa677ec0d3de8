"""Shards: write/read round trip, stats, build-time token checks, corrupt and missing files."""

import json
import os

import numpy as np
import pytest

from mmlaws.data import TINY, shards
from mmlaws.errors import DataError


def test_round_trip_and_stats(tmp_path):
    docs = [np.array([23, 24, 25]), np.array([54]), np.array([30, 31])]
    stats = shards.write_dataset(tmp_path, "t", {"train": docs, "validation": docs[:1]},
                                 layout=TINY, modalities=["text"], documents_per_shard=2)
    assert [s["file"] for s in stats["splits"]["train"]["shards"]] == [
        "train-00000.array_record", "train-00001.array_record"]
    assert stats["splits"]["train"]["documents"] == 3 and stats["splits"]["train"]["tokens"] == 6
    on_disk = json.loads((tmp_path / "t" / "stats.json").read_text())
    assert on_disk == stats and on_disk["vocab"]["preset"] == "TINY"
    source = shards.ShardSource(tmp_path, "t", "train")
    assert len(source) == 3 and source.layout == TINY and source.modalities == ("text",)
    for i, doc in enumerate(docs):
        assert source[i].dtype == np.int32 and source[i].tolist() == doc.tolist()
    assert shards.ShardSource(tmp_path, "t", "validation")[0].tolist() == [23, 24, 25]
    with pytest.raises(IndexError):
        source[3]


def test_a_token_outside_the_modality_fails_at_build_time_naming_shard_and_document(tmp_path):
    lo, _ = TINY.range_of(2)  # an image code in a text dataset
    docs = [np.array([23, 24]), np.array([23]), np.array([23, lo])]
    with pytest.raises(DataError, match=r"t/train-00001\.array_record: document 0, position 1: "
                                        r"token 55 \(image:0\)"):
        shards.write_dataset(tmp_path, "t", {"train": docs}, layout=TINY, modalities=["text"],
                             documents_per_shard=2)
    assert os.listdir(tmp_path) == []  # nothing half-built is left


@pytest.mark.parametrize("token", [TINY.eod_id, TINY.pad_id, TINY.end_of_span_id,
                                   TINY.sentinel(0), TINY.size, -1])
def test_pipeline_tokens_are_refused_in_documents(tmp_path, token):
    with pytest.raises(DataError, match="document 0"):
        shards.write_dataset(tmp_path, "t", {"train": [[23, token]]}, layout=TINY,
                             modalities=["text"])


def test_boundary_tokens_are_allowed_and_synthetic_data_is_deterministic(tmp_path):
    a = shards.write_synthetic(tmp_path / "a", "img", modality="image", seed=3)
    b = shards.write_synthetic(tmp_path / "b", "img", modality="image", seed=3)
    assert a["splits"] == b["splits"]
    doc = shards.ShardSource(tmp_path / "a", "img")[0]
    assert doc[0] == TINY.image_begin_id and doc[-1] == TINY.image_end_id
    TINY.check(doc[1:-1], 2)
    lengths = [len(d) for d in shards.synthetic_documents(TINY, "text", 50, min_length=8,
                                                          max_length=64, seed=0)]
    assert min(lengths) >= 8 and max(lengths) <= 64 and len(set(lengths)) > 10


def test_a_mixed_modal_dataset_allows_each_of_its_modalities(tmp_path):
    image = TINY.image_id(3)
    doc = [23, TINY.image_begin_id, image, TINY.image_end_id, 24]
    shards.write_dataset(tmp_path, "it", {"train": [doc]}, layout=TINY,
                         modalities=["text", "image"])
    assert shards.ShardSource(tmp_path, "it")[0].tolist() == doc
    with pytest.raises(DataError, match="speech:0"):
        shards.write_dataset(tmp_path, "it", {"train": [[23, TINY.speech_id(0)]]},
                             layout=TINY, modalities=["text", "image"])


def test_a_missing_dataset_split_or_shard_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope/stats\.json: no such file.*write_synthetic"):
        shards.ShardSource(tmp_path, "nope")
    shards.write_synthetic(tmp_path, "t", documents={"train": 5})
    with pytest.raises(DataError, match="no split 'validation'"):
        shards.ShardSource(tmp_path, "t", "validation")
    os.remove(tmp_path / "t" / "train-00000.array_record")
    with pytest.raises(DataError, match=r"train-00000\.array_record: missing shard"):
        shards.ShardSource(tmp_path, "t")


def test_a_corrupt_shard_or_stats_file_is_named(tmp_path):
    shards.write_synthetic(tmp_path, "t", documents={"train": 5})
    path = tmp_path / "t" / "train-00000.array_record"
    path.write_bytes(b"not an array record" * 10)
    with pytest.raises(DataError, match=r"train-00000\.array_record: corrupt or unreadable"):
        shards.ShardSource(tmp_path, "t")
    (tmp_path / "t" / "stats.json").write_text("{")
    with pytest.raises(DataError, match=r"t/stats\.json: malformed"):
        shards.ShardSource(tmp_path, "t")


def test_a_shard_that_disagrees_with_its_stats_is_named(tmp_path):
    shards.write_synthetic(tmp_path, "t", documents={"train": 5})
    stats_path = tmp_path / "t" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["splits"]["train"]["shards"][0]["documents"] = 6
    stats_path.write_text(json.dumps(stats))
    with pytest.raises(DataError, match=r"train-00000\.array_record: holds 5 documents"):
        shards.ShardSource(tmp_path, "t")


def test_rebuilding_replaces_the_dataset(tmp_path):
    shards.write_synthetic(tmp_path, "t", documents={"train": 5})
    shards.write_synthetic(tmp_path, "t", documents={"train": 7})
    assert len(shards.ShardSource(tmp_path, "t")) == 7
    assert sorted(os.listdir(tmp_path)) == ["t"]
