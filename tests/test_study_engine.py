"""The study engine: stacked runs compute what they compute alone, resume bit for bit, and keep
going when one of them fails."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mmlaws.data
from mmlaws.data import shards, vocab
from mmlaws.errors import ConfigError
from mmlaws.model import PRESETS
from mmlaws.study.engine import EngineRun, EngineSettings, plan_stacks, train_design
from mmlaws.train.loop import train
from mmlaws.train.optimizer import Recipe
from mmlaws.train.runlog import Tracking
from mmlaws.train.settings import LoopSettings, RunSettings

LAYOUT = vocab.TINY
OVERRIDES = {"dropout": 0.1, "d_model": 32, "num_heads": 2, "d_head": 16}
CONFIG = PRESETS["tiny"].replace(vocab_size=LAYOUT.size, **OVERRIDES)
SETTINGS = EngineSettings(eval_tokens=1500, sync_every=4, checkpoint_every=6, progress=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine_data")
    for seed, name in enumerate(["code", "text"]):
        shards.write_synthetic(root, name, modality="text", layout=LAYOUT, seed=seed,
                               min_length=10, max_length=90,
                               documents={"train": 300, "validation": 30})
    return str(root)


def run(rid, shares, steps, lr, config=CONFIG, **kw):
    return EngineRun(rid, "w32", config, LAYOUT, tuple(shares.items()),
                     Recipe(lr, steps, warmup_steps=3, decay_start=kw.pop("decay_start", None)),
                     8, 32, **kw)


def lines(path, kind="step"):
    out = []
    for line in open(path):
        obj = json.loads(line)
        if obj["kind"] == kind:
            out.append({k: v for k, v in obj.items() if k not in ("tokens_per_s", "stack_size")})
    return out


@pytest.mark.fresh_process
def test_a_stacked_run_computes_what_it_computes_alone(data_dir, tmp_path):
    """Three runs with different budgets, peak rates, seeds and datasets in one stack: each
    run's per-step losses equal those of the training loop run alone (float reassociation)."""
    runs = [run("a", {"code": 1.0}, 14, 3e-3), run("b", {"text": 1.0}, 20, 1e-3, seed=1),
            run("c", {"code": 0.5, "text": 0.5}, 17, 2e-3, seed=2)]
    results = train_design(runs, output_dir=str(tmp_path / "stack"), data_dir=data_dir,
                           settings=SETTINGS)
    assert {r: results[r]["step"] for r in results} == {"a": 14, "b": 20, "c": 17}
    for r in runs:
        data = mmlaws.data.mixture(dict(r.shares), sequence_length=32, batch_size=8,
                                   data_dir=data_dir, seed=r.seed)
        settings = RunSettings(total_steps=r.total_steps, model="tiny", model_overrides=OVERRIDES,
                               vocab="tiny", peak_lr=r.recipe.peak_lr, warmup_steps=3,
                               seed=r.seed)  # the batch split over the 8 test devices
        train(output_dir=str(tmp_path / "alone" / r.run_id), data=data, run=settings,
              loop=LoopSettings(checkpoint_every=100, tracking=Tracking(wandb=False),
                                progress=False),
              run_id=r.run_id)
        alone = lines(tmp_path / "alone" / r.run_id / f"{r.run_id}.jsonl")
        stacked = lines(tmp_path / "stack" / "runs" / r.run_id / f"{r.run_id}.jsonl")
        assert [s["step"] for s in stacked] == list(range(1, r.total_steps + 1))
        np.testing.assert_allclose([s["loss"] for s in stacked], [s["loss"] for s in alone],
                                   rtol=2e-5)
        np.testing.assert_allclose([s["lr"] for s in stacked], [s["lr"] for s in alone],
                                   rtol=1e-6)
        assert [s["tokens"] for s in stacked] == [s["tokens"] for s in alone]


@pytest.mark.fresh_process
def test_a_branch_counts_its_trunks_tokens(data_dir, tmp_path):
    """A WSD branch's step lines and final record go on from its trunk's counters: its D is
    every token it has seen (the trunk's up to the fork, then its own), the same count as a
    run trained from scratch over as many steps on the same stream."""
    runs = [run("trunk", {"text": 1.0}, 9, 2e-3, decay_start=9, role="trunk"),
            run("branch", {"text": 1.0}, 12, 2e-3, trunk="trunk", start_step=9, decay_start=9),
            run("whole", {"text": 1.0}, 12, 2e-3)]
    results = train_design(runs, output_dir=str(tmp_path), data_dir=data_dir, settings=SETTINGS)
    branch = lines(tmp_path / "runs" / "branch" / "branch.jsonl")
    whole = lines(tmp_path / "runs" / "whole" / "whole.jsonl")
    assert [s["tokens"] for s in branch] == [s["tokens"] for s in whole]
    assert results["branch"]["tokens"] == results["whole"]["tokens"] > results["trunk"]["tokens"]
    assert results["branch"]["tokens_per_dataset"] == results["whole"]["tokens_per_dataset"]


def test_shapes_are_stacked_apart_and_trunks_stay_with_their_branches():
    wide = CONFIG.replace(d_model=64, num_heads=4)
    runs = [run("a", {"code": 1.0}, 10, 1e-3), run("b", {"code": 1.0}, 10, 1e-3, config=wide),
            run("t", {"code": 1.0}, 8, 1e-3, decay_start=8),
            run("t1", {"code": 1.0}, 10, 1e-3, trunk="t", start_step=8, decay_start=8),
            run("c", {"text": 1.0}, 12, 1e-3)]
    stacks = plan_stacks(runs, max_stack=2)
    ids = [[r.run_id for r in s] for s in stacks]
    assert ["b"] in ids  # another shape: its own stack
    assert any({"t", "t1"} <= set(s) for s in ids)  # a branch trains with its trunk
    assert all(len(s) <= 3 for s in ids)


@pytest.mark.fresh_process
def test_a_failing_run_is_marked_failed_and_the_others_finish(data_dir, tmp_path):
    runs = [run("ok", {"code": 1.0}, 12, 1e-3), run("bad", {"text": 1.0}, 12, 1e30)]
    settings = EngineSettings(eval_tokens=1500, sync_every=2, checkpoint_every=0,
                              max_nonfinite=2, progress=False)
    results = train_design(runs, output_dir=str(tmp_path), data_dir=data_dir, settings=settings)
    assert results["ok"]["step"] == 12 and np.isfinite(results["ok"]["loss"])
    assert "non-finite" in results["bad"]
    events = lines(tmp_path / "runs" / "bad" / "bad.jsonl", kind="event")
    assert events[-1]["type"] == "failed"
    # a second call trains nothing: the finished run is kept, the failed one stays failed
    again = train_design(runs, output_dir=str(tmp_path), data_dir=data_dir, settings=settings)
    assert again["ok"] == results["ok"] and again["bad"] == results["bad"]


@pytest.mark.fresh_process
def test_duplicate_run_ids_are_refused(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="duplicate run ids"):
        train_design([run("a", {"code": 1.0}, 4, 1e-3)] * 2, output_dir=str(tmp_path),
                     data_dir=data_dir, settings=SETTINGS)


SCRIPT = """
import sys
from mmlaws.study.engine import EngineSettings, train_design
sys.path.insert(0, {tests!r})
from test_study_engine import design
train_design(design(), output_dir={out!r}, data_dir={data!r},
             settings=EngineSettings(eval_tokens=1500, sync_every=3, checkpoint_every=5,
                                     progress=False))
"""


def design():
    """Decay runs at two budgets and a WSD trunk with two branches, on two datasets."""
    out = [run("code_D16", {"code": 1.0}, 16, 2e-3), run("pair_D24", {"code": .5, "text": .5},
                                                        24, 1e-3, seed=1),
           run("trunk", {"text": 1.0}, 19, 2e-3, decay_start=19, role="trunk")]
    out += [run(f"text_D{n}", {"text": 1.0}, n, 2e-3, trunk="trunk", start_step=f,
                decay_start=f) for n, f in ((12, 9), (24, 19))]
    return out


def _start(out, data_dir):
    code = SCRIPT.format(tests=os.path.dirname(__file__), out=str(out), data=data_dir)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _records(root):
    return {p.name: [{k: v for k, v in json.loads(line).items()
                      if k not in ("tokens_per_s", "stack_size")}
                     for line in p.read_text().splitlines()]
            for p in sorted((root / "runs").rglob("*.jsonl"))}


def _lines(root) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (root / "runs").rglob("*.jsonl")) \
        if (root / "runs").exists() else 0


def _writing_checkpoint(root) -> bool:
    return any("tmp" in p.name for p in (root / "stacks").glob("*/checkpoints/*")) \
        if (root / "stacks").exists() else False


def _kill_when(proc, ready, timeout=600.0) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False if it ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_killed_study_resumes_to_the_same_records(data_dir, tmp_path):
    """SIGKILL at six points (the first during a checkpoint write, the others after a random
    number of new log lines, which can fall mid-line); the finished records equal an
    uninterrupted run's line for line (timing fields aside): no step lost, none repeated."""
    ref = tmp_path / "ref"
    proc = _start(ref, data_dir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    out, rng, kills = tmp_path / "killed", np.random.default_rng(0), 0
    if _kill_when(_start(out, data_dir), lambda: _writing_checkpoint(out)):
        kills += 1
    while kills < 6:
        start, more = _lines(out), int(rng.integers(3, 25))
        if not _kill_when(_start(out, data_dir), lambda s=start, m=more: _lines(out) >= s + m):
            break
        kills += 1
    proc = _start(out, data_dir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    assert kills >= 5
    got, want = _records(out), _records(ref)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], name
