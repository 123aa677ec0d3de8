"""The loop in-process: restart policy on a forced plateau, non-finite stop, checkpoint fallback,
and a run log the law fitter reads."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.data.batch import FIELDS
from mmlaws.errors import ConfigError
from mmlaws.laws import read_runs
from mmlaws.laws.records import read_run
from mmlaws.train import (
    LoopSettings,
    NonFiniteLossError,
    RestartPolicy,
    RunSettings,
    SyntheticBatches,
    Tracking,
    train,
)
from mmlaws.train.checkpoint import Checkpointer

TINIER = {"num_layers": 1, "d_model": 32, "num_heads": 2, "d_head": 16}
DATASETS = {"prose": ("text", 0.5), "voice": ("speech", 0.5)}


class Altered(SyntheticBatches):
    """Synthetic batches with ``alter(batch, index)`` applied (a forced plateau, NaNs …)."""

    def __init__(self, alter, **kw):
        super().__init__(DATASETS, "tiny", batch_size=8, sequence_length=16, **kw)
        self.alter = alter

    def __next__(self):
        index = self.get_state()["rows"] // self.batch_size
        return self.alter(super().__next__(), index)


def _tokens(batches):
    """Non-padding tokens of the first ``batches`` training batches."""
    data = SyntheticBatches(DATASETS, "tiny", batch_size=8, sequence_length=16)
    return [int((next(data)["dataset_ids"] >= 0).sum()) for _ in range(batches)]


def _train(tmp_path, data, *, restart, eval_every=6):
    run = RunSettings(total_steps=12, model="tiny", model_overrides=TINIER, peak_lr=1e-2,
                      warmup_steps=2, mesh_shape={"fsdp": 2, "data": -1}, restart=restart)
    loop = LoopSettings(checkpoint_every=3, tracking=Tracking(wandb=False), progress=False,
                        eval_every=eval_every, eval_batches=1)
    eval_data = SyntheticBatches(DATASETS, "tiny", batch_size=8, sequence_length=16, seed=9)
    return train(output_dir=str(tmp_path / "run"), data=data, eval_data=eval_data, run=run,
                 loop=loop)


def test_restart_policy_on_a_forced_plateau(tmp_path):
    # Zero loss weights: the loss is 0 at every step and never decreases.
    flat = lambda b, i: dict(b, weights=np.zeros_like(b["weights"]))
    window = sum(_tokens(4)[1:])  # the tokens of steps 2-4: reached at step 4
    _train(tmp_path, Altered(flat), restart=RestartPolicy(window_tokens=window))
    rec = read_run(tmp_path / "run" / "run.jsonl")
    restarts = [e for e in rec.events if e["type"] == "restart"]
    assert restarts, "no restart on a plateau"
    first = restarts[0]
    assert first["step"] == 4 and first["from_step"] == 3  # best at step 1; 3 steps later
    assert [e["lr_scale"] for e in restarts] == pytest.approx(
        [0.8 ** (k + 1) for k in range(len(restarts))])
    # The step after the restart repeats step 4 with 0.8 × the learning rate.
    step4 = [s for s in rec.steps if s["step"] == 4]
    assert len(step4) == 2 and step4[1]["lr"] == pytest.approx(0.8 * step4[0]["lr"], rel=1e-6)
    # The run still finishes and the law fitter reads it.
    table = read_runs(tmp_path / "run")
    assert table.run_id.tolist() == ["run"] and table.datasets == (("prose", "voice"),)
    assert rec.header["N_convention"] == "total" and rec.final["step"] == 12


def test_non_finite_losses_stop_the_run_with_a_valid_checkpoint(tmp_path):
    poison = lambda b, i: dict(b, weights=b["weights"] * np.float32("nan")) if i >= 5 else b
    with pytest.raises(NonFiniteLossError, match="3 consecutive non-finite"):
        _train(tmp_path, Altered(poison), restart=RestartPolicy(window_tokens=0,
                                                                  max_nonfinite=3))
    rec = read_run(tmp_path / "run" / "run.jsonl")
    bad = [e["step"] for e in rec.events if e["type"] == "nonfinite_loss"]
    assert bad == [6, 7, 8]
    assert all(np.isfinite(s["loss"]) for s in rec.steps if s["step"] <= 5)
    ckpt = Checkpointer(tmp_path / "run" / "checkpoints", every=3)
    assert max(ckpt.steps()) == 3  # nothing saved at the stop: the last finite checkpoint
    ckpt.close()
    # Resuming with clean data continues from the last finite state to the end.
    final = _train(tmp_path, Altered(lambda b, i: b), restart=RestartPolicy(window_tokens=0))
    assert np.isfinite(final["loss"]) and final["step"] == 12


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    ckpt = Checkpointer(tmp_path, every=1, keep=3, asynchronous=False)
    tree = lambda v: {"w": jnp.full((4, 3), v, jnp.float32), "step": jnp.int32(v)}
    for step in (1, 2):
        ckpt.save(step, tree(step), {"data": {"index": step}})
    ckpt.wait()
    for f in (tmp_path / "2" / "state").rglob("*"):
        if f.is_file() and "METADATA" not in f.name and "commit" not in f.name:
            f.write_bytes(b"garbage")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                           sharding=x.sharding), tree(0))
    with pytest.warns(UserWarning, match="step 2 did not load"):
        step, state, extra = ckpt.restore_latest(abstract)
    ckpt.close()
    assert step == 1 and extra == {"data": {"index": 1}}
    np.testing.assert_array_equal(state["w"], np.ones((4, 3), np.float32))


def test_run_log_lines_follow_the_schema(tmp_path):
    lines = []
    _train(tmp_path, Altered(lambda b, i: b), eval_every=9,
           restart=RestartPolicy(window_tokens=0))
    for line in pathlib.Path(tmp_path / "run" / "run.jsonl").read_text().splitlines():
        lines.append(json.loads(line))
    kinds = [x["kind"] for x in lines]
    assert kinds[0] == "header" and kinds[-1] == "final" and kinds.count("step") == 12
    step = next(x for x in lines if x["kind"] == "step")
    assert set(step["loss_per_dataset"]) == {"prose", "voice"}
    assert {"special", "text", "speech"} <= set(step["loss_per_modality"])
    assert step["tokens"] == sum(step["tokens_per_dataset"].values()) == _tokens(1)[0]
    for key in ("grad_norm", "lr", "tokens_per_s", "mfu"):
        assert key in step
    assert kinds.count("eval") == 1  # step 9; the final evaluation is the "final" line


def test_a_source_without_the_batch_contract_is_named(tmp_path):
    class Bare:
        shares = {"prose": 1.0}

        def __next__(self):
            return dict.fromkeys(FIELDS)

    with pytest.raises(ConfigError, match=r"data: Bare is not a batch source.*get_state"):
        _train(tmp_path, Bare(), restart=RestartPolicy())
