"""The SeqIO exact path: packed tasks, exact mixtures, CM3 weights kept, the trainer's adapter.

Reference: the grain path (``mmlaws.data.mixture``) on the same built datasets, shares (in
dataset name order), seed, sequence length and batch size. Skipped unless the ``seqio`` extra
is installed.
"""

import json

import numpy as np
import pytest

seqio = pytest.importorskip("seqio")

import mmlaws.data  # noqa: E402
from mmlaws.data import TINY, seqio_batches, seqio_packed, seqio_tasks, shards  # noqa: E402
from mmlaws.errors import ConfigError  # noqa: E402

T, B = 64, 8
# Short text documents against long image documents (many longer than a row): row shares and
# token shares differ, chunks straddle rows and batches.
LENGTHS = {"text": (8, 24), "image": (40, 120)}
ROWS = 2000  # rows read for the block-share figures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("seqio_exact")
    for seed, (name, (lo, hi)) in enumerate(LENGTHS.items()):
        shards.write_synthetic(root, name, modality=name, seed=seed, min_length=lo,
                               max_length=hi, documents={"train": 200, "validation": 20})
    yield str(root)
    for name in list(seqio.MixtureRegistry.names()) + list(seqio.TaskRegistry.names()):
        if name.startswith(seqio_tasks.PREFIX):
            seqio.MixtureRegistry.remove(name)
            seqio.TaskRegistry.remove(name)


def seqio_path(data_dir, shares, **kwargs):
    kwargs = {"sequence_length": T, "batch_size": B, "vocab": "tiny", "seed": 3, **kwargs}
    return seqio_batches.SeqioBatches(shares, data_dir=data_dir, **kwargs)


def grain_path(data_dir, shares, **kwargs):
    kwargs = {"sequence_length": T, "batch_size": B, "seed": 3, **kwargs}
    return mmlaws.data.mixture(dict(sorted(shares.items())), data_dir=data_dir, **kwargs)


def same(a, b):
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def take(dataset, n: int) -> list:
    """The first ``n`` elements, the pipeline closed after (see PipelineIterator)."""
    it = seqio_batches.PipelineIterator(dataset)
    try:
        return [next(it) for _ in range(n)]
    finally:
        it.close()


def weight_counts(batch) -> dict:
    """Loss-weight counts per token type: the figure compared between the two paths."""
    targets, w, real = batch["targets"], batch["weights"], batch["segment_ids"] > 0
    sentinel = TINY.is_sentinel(targets) & real
    eoss = (targets == TINY.end_of_span_id) & real
    other = real & ~sentinel & ~eoss
    return {"in_place_sentinels": int(np.sum(sentinel & (w == 0))),
            "moved_span_sentinels": int(np.sum(sentinel & (w == 1))),
            "end_of_span": int(np.sum(eoss & (w == 1))),
            "end_of_span_weight_0": int(np.sum(eoss & (w == 0))),
            "other_weight_1": int(np.sum(other & (w == 1))),
            "other_weight_0": int(np.sum(other & (w == 0))),
            "padding_weight": float(np.sum(w[~real]))}


@pytest.mark.parametrize("objective", ["cm3", "causal"])
def test_the_two_paths_yield_identical_batches(data_dir, objective):
    shares = {"text": 0.7, "image": 0.3}
    a = seqio_path(data_dir, shares, objective=objective)
    b = grain_path(data_dir, shares, objective=objective)
    assert a.shares == {"image": 0.3, "text": 0.7}  # dataset name order, as seqio orders tasks
    assert (a.batch_size, a.sequence_length, a.objective) == (B, T, objective)
    assert a.modalities == {"image": "image", "text": "text"} and a.layout == TINY
    for i in range(40):
        x, y = next(a), next(b)
        assert same(x, y), i
        assert weight_counts(x) == weight_counts(y)


def test_cm3_loss_weights_per_token_type(data_dir):
    """One pass over a split: 0 on every in-place sentinel, 1 on moved spans and <eoss>."""
    a = seqio_path(data_dir, {"text": 1.0}, split="validation", repeat=False, batch_size=3)
    b = grain_path(data_dir, {"text": 1.0}, split="validation", repeat=False, batch_size=3)
    total = dict.fromkeys(weight_counts(next(seqio_path(data_dir, {"text": 1.0}))), 0)
    count = 0
    for x in a:
        y = next(b)
        assert same(x, y) and weight_counts(x) == weight_counts(y)
        total = {k: total[k] + v for k, v in weight_counts(x).items()}
        count += 1
    with pytest.raises(StopIteration):
        next(b)
    assert count > 1 and (x["segment_ids"][-1] == 0).all()  # the last batch is padded
    # Every span has one sentinel left in place (weight 0), one opening it at the end and
    # one <eoss> closing it (weight 1); nothing else real has weight 0, padding has none.
    assert total["in_place_sentinels"] == total["moved_span_sentinels"] == total["end_of_span"]
    assert total["in_place_sentinels"] >= 20  # at least one span per document
    assert total["end_of_span_weight_0"] == total["other_weight_0"] == 0
    assert total["padding_weight"] == 0
    tokens = sum(len(shards.ShardSource(data_dir, "text", "validation")[i]) for i in range(20))
    assert total["other_weight_1"] == tokens  # every document token is a target once


def test_seqio_stock_converter_would_weight_in_place_sentinels(data_dir):
    """Why the converter matters: seqio's DecoderFeatureConverter ignores ``weights``."""
    seqio_tasks.register(data_dir, TINY, mixtures=[])
    ds = seqio.get_dataset("mmlaws_cm3:text", task_feature_lengths={"targets": T}, shuffle=False,
                           feature_converter=seqio.DecoderFeatureConverter(pack=True))
    rows = take(ds, 20)
    stock = weight_counts({"targets": np.stack([r["decoder_target_tokens"] for r in rows]),
                           "weights": np.stack([r["decoder_loss_weights"] for r in rows]),
                           "segment_ids": np.stack([r["decoder_segment_ids"] for r in rows])})
    assert stock["in_place_sentinels"] == 0 and stock["moved_span_sentinels"] > 0


def test_t5x_style_get_dataset_gives_the_model_features(data_dir):
    seqio_tasks.register(data_dir, TINY, mixtures=[{"text": 0.5, "image": 0.5}])
    ds = seqio.get_dataset(seqio_tasks.mixture_name({"text": 0.5, "image": 0.5}),
                           task_feature_lengths={"targets": T}, shuffle=True, seed=3,
                           feature_converter=seqio_packed.PackedFeatureConverter())
    rows = take(ds, 2 * B)
    assert set(rows[0]) == set(seqio_packed.MODEL_FEATURES)
    want = grain_path(data_dir, {"text": 0.5, "image": 0.5})
    for start in (0, B):
        batch = next(want)
        for r, row in enumerate(rows[start:start + B]):
            for model, key in seqio_packed.MODEL_FEATURES.items():
                assert np.array_equal(row[model], batch[key][r]), (model, start + r)


@pytest.mark.parametrize("text_share", [0.5, 0.7])
def test_every_block_is_exactly_at_share(data_dir, text_share):
    shares = {"text": text_share, "image": round(1 - text_share, 6)}
    a = seqio_path(data_dir, shares, batch_size=50)
    k = 2 if text_share == 0.5 else 10
    counts = [round(text_share * k), k - round(text_share * k)]  # text, image
    rows = []
    while len(rows) < ROWS:
        batch = next(a)
        rows += [int(ids.max()) for ids in batch["dataset_ids"]]  # 0 image, 1 text
    blocks = np.asarray(rows[:ROWS]).reshape(-1, k)
    per_block = np.stack([(blocks == 1).sum(1), (blocks == 0).sum(1)], 1)
    assert (per_block == counts).all()  # 0 deviation in every block of k rows


def test_state_resumes_on_the_same_batch(data_dir):
    shares = {"text": 0.7, "image": 0.3}
    reference = seqio_path(data_dir, shares)
    batches = [next(reference) for _ in range(30)]
    fresh = seqio_path(data_dir, shares)
    next(fresh)
    for n in (0, 1, 17):
        it = seqio_path(data_dir, shares)
        for _ in range(n):
            next(it)
        state = json.loads(json.dumps(it.get_state()))  # JSON-able, as checkpoints store it
        fresh.set_state(state)
        for i in range(n, 30):
            assert same(next(fresh), batches[i]), (n, i)
    state = fresh.get_state()
    assert state["rows"] == 30 * B and set(state["cursors"]) == set(fresh.tasks)


def test_a_read_plan_starts_a_task_mid_document(data_dir):
    """A cursor (stream position, offset) starts the task where a checkpoint left it."""
    seqio_tasks.register(data_dir, TINY, mixtures=[])
    task = seqio.get_mixture_or_task("mmlaws_cm3_packed:image")
    rows = take(task.get_dataset({"targets": T}, seed=3, shuffle=True), 20)
    split = next(r for r in range(12) if rows[r]["cursor"][1] > 0)  # a document split here
    cursor = tuple(int(c) for c in rows[split]["cursor"])
    with seqio_packed.read_plan(cursors={task.name: cursor}):
        resumed = take(task.get_dataset({"targets": T}, seed=3, shuffle=True), 7)
    for want, got in zip(rows[split + 1:split + 8], resumed, strict=True):
        assert all(np.array_equal(want[k], got[k]) for k in want)
    assert resumed[0]["positions"][0] == 0 and resumed[0]["segment_ids"][0] == 1


def test_a_single_packed_task_is_a_one_dataset_mixture(data_dir):
    seqio_tasks.register(data_dir, TINY, mixtures=[])
    a = seqio_batches.SeqioBatches("mmlaws_cm3_packed:text", sequence_length=T, batch_size=B,
                                   vocab="tiny", seed=3)
    b = grain_path(data_dir, {"text": 1.0})
    assert a.shares == {"text": 1.0}
    for _ in range(3):
        assert same(next(a), next(b))
    state = a.get_state()
    c = seqio_batches.SeqioBatches("mmlaws_cm3_packed:text", sequence_length=T, batch_size=B,
                                   vocab="tiny", seed=3)
    c.set_state(state)
    assert same(next(c), next(b))


def test_host_slices_match_the_grain_path(data_dir):
    shares = {"text": 0.5, "image": 0.5}
    a = seqio_path(data_dir, shares, shard_index=1, shard_count=2)
    b = grain_path(data_dir, shares, shard_index=1, shard_count=2)
    c = grain_path(data_dir, shares)
    x = [next(a) for _ in range(5)]
    assert all(same(u, next(b)) for u in x)
    assert not same(x[0], next(c))


def test_tfds_as_dataset_reads_the_documents(data_dir):
    from mmlaws.data import tfds_shards

    builder = tfds_shards.builder(data_dir, "text")
    docs = [ex["tokens"] for ex in take(builder.as_dataset("validation"), 20)]
    source = shards.ShardSource(data_dir, "text", "validation")
    assert len(docs) == len(source) and all(np.array_equal(d, source[i])
                                            for i, d in enumerate(docs))


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ConfigError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_mixtures_fail_at_start_up_in_one_line(data_dir):
    seqio_tasks.register(data_dir, TINY, mixtures=[{"text": 0.5, "image": 0.5}])
    kw = {"sequence_length": T, "batch_size": B, "vocab": "tiny"}
    one_line_error("sum to 1", seqio_batches.SeqioBatches, {"text": 0.5, "image": 0.6},
                   data_dir=data_dir, **kw)
    one_line_error("task 'mmlaws_cm3_packed:speech' is not registered",
                   seqio_batches.SeqioBatches, {"text": 0.5, "speech": 0.5},
                   data_dir=data_dir, **kw)
    one_line_error("'mmlaws_cm3:nothing' is not registered", seqio_batches.SeqioBatches,
                   "mmlaws_cm3:nothing", **kw)
    one_line_error("does not interleave rows exactly", seqio_batches.SeqioBatches,
                   "mmlaws_cm3_rate:image_50.text_50", **kw)
    one_line_error("task 'mmlaws_cm3:text' has no feature 'inputs'",
                   seqio_batches.SeqioBatches, "mmlaws_cm3:text", **kw)
    one_line_error("task 'mmlaws_cm3_packed:image' feature 'inputs': vocabulary .* not the "
                   "model's layout", seqio_batches.SeqioBatches, "mmlaws_cm3:image_50.text_50",
                   **{**kw, "vocab": "small"})
    one_line_error("objective 'cm3', not 'causal'", seqio_batches.SeqioBatches,
                   "mmlaws_cm3:image_50.text_50", objective="causal", **kw)


def test_a_foreign_task_is_named_with_the_feature_at_fault(data_dir):
    kw = {"sequence_length": T, "batch_size": B, "vocab": "tiny"}
    source = seqio.FunctionDataSource(lambda split, shuffle_files: None, splits=["train"])
    plain = seqio.PassThroughVocabulary(TINY.size, TINY.eod_id)
    features = {n: seqio.Feature(plain, add_eos=False) for n in
                ("inputs", "targets", "segment_ids", "positions")}
    seqio.TaskRegistry.add("foreign_no_weights", source=source, output_features=features)
    one_line_error("task 'foreign_no_weights' has no feature 'weights'",
                   seqio_batches.SeqioBatches, "foreign_no_weights", **kw)
    import tensorflow as tf

    features["weights"] = seqio.Feature(plain, add_eos=False, dtype=tf.float32)
    seqio.TaskRegistry.add("foreign_vocab", source=source, output_features=features)
    one_line_error("task 'foreign_vocab' feature 'inputs': vocabulary PassThroughVocabulary",
                   seqio_batches.SeqioBatches, "foreign_vocab", **kw)
    for name in ("foreign_no_weights", "foreign_vocab"):
        seqio.TaskRegistry.remove(name)


def test_the_trainer_refuses_data_of_another_layout(data_dir, tmp_path):
    from mmlaws.train import Tracking, loop
    from mmlaws.train.settings import LoopSettings, RunSettings

    data = seqio_path(data_dir, {"text": 0.5, "image": 0.5})
    one_line_error("data uses vocabulary layout", loop.train, output_dir=str(tmp_path),
                   data=data, run=RunSettings(total_steps=1, vocab="small", peak_lr=1e-3),
                   loop=LoopSettings(tracking=Tracking(wandb=False)))


@pytest.mark.slow
def test_a_process_that_drops_and_replaces_pipelines_exits(data_dir):
    """Iterators replaced, dropped and left open at exit do not deadlock (PipelineIterator)."""
    import subprocess
    import sys

    code = f"""
from mmlaws.data import seqio_batches
for shares in ({{"text": 0.5, "image": 0.5}}, {{"text": 0.7, "image": 0.3}}):
    a = seqio_batches.SeqioBatches(shares, data_dir={data_dir!r}, sequence_length={T},
                                   batch_size=50, vocab="tiny", seed=0)
    for _ in range(40):
        next(a)
a.set_state({{"rows": 10**6, "cursors": {{t: [10**6, 17] for t in a.tasks}}}})
next(a)
print("read")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0 and "read" in done.stdout, done.stderr[-2000:]
