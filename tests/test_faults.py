"""Fault injection: what kills, restarts, a second writer and bad input do to a run, and that
each is met with one run per folder, a log that is exactly the run, or one clear line.

The cases, by what they guard:
1. a folder holds one run (its fingerprint), and a run whose checkpoints do not load stops;
2. the log is exactly the run through kills (one slow test kills a real run at random points);
3. one writer per folder (the loop and the study engine);
4. the fitter's inputs: :data:`CSV_CASES` and :data:`LOG_CASES`, each one line, exit 2;
5. configurations: :data:`CONFIG_CASES`, each one line, exit 2;
6. dataset builders: budgets, damaged shards, stale temporary folders;
7. checkpoints: a corrupt one replaced, the non-finite stop reproducible;
8. standard JSON for non-finite numbers.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws import main as entry
from mmlaws.corpora import build
from mmlaws.data import TINY, shards
from mmlaws.errors import ConfigError, DataError
from mmlaws.laws.records import RunLogWriter, read_csv, read_run, read_runs
from mmlaws.study.engine import train_design
from mmlaws.train import (
    LoopSettings,
    NonFiniteLossError,
    RestartPolicy,
    RunSettings,
    SyntheticBatches,
    Tracking,
    train,
)
from mmlaws.train.checkpoint import Checkpointer, CheckpointError
from mmlaws.train.lock import FolderLock, FolderLocked

DATASETS = {"prose": ("text", 0.5), "voice": ("speech", 0.5)}
TIMING = ("tokens_per_s", "mfu")


def _data(**kw):
    return SyntheticBatches(DATASETS, "tiny", batch_size=8, sequence_length=16, **kw)


def _train(folder, *, steps=6, layers=1, data=None, restart_fresh=False, max_nonfinite=10,
           checkpoint_every=3, eval_every=0):
    overrides = {"num_layers": layers, "d_model": 32, "num_heads": 2, "d_head": 16}
    run = RunSettings(total_steps=steps, model="tiny", model_overrides=overrides, peak_lr=1e-2,
                      warmup_steps=2, mesh_shape={"fsdp": 2, "data": -1},
                      restart=RestartPolicy(window_tokens=0, max_nonfinite=max_nonfinite))
    loop = LoopSettings(checkpoint_every=checkpoint_every, tracking=Tracking(wandb=False),
                        progress=False, eval_every=eval_every, eval_batches=1,
                        restart_fresh=restart_fresh)
    return train(output_dir=str(folder), data=data or _data(), eval_data=_data(seed=9),
                 run=run, loop=loop)


def _lines(path):
    """The log's lines as dicts, timing fields left out."""
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in pathlib.Path(path).read_text().splitlines()]


def _main(capsys, gin_file, *params):
    """The entry point in this process: (exit status, the non-empty lines it wrote to stderr)."""
    gin.clear_config()
    try:
        rc = entry.main([f"--gin_file={gin_file}", *(f"--gin_param={p}" for p in params)])
    finally:
        gin.clear_config()
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ------------------------------------------------------------------ 1. a folder holds one run
def test_a_changed_config_is_refused_naming_the_keys_and_restart_starts_over(tmp_path):
    out = tmp_path / "run"
    _train(out, steps=3, layers=2)
    before = (out / "run.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"another configuration.*num_layers: 2 → 1"):
        _train(out, steps=3, layers=1)
    assert (out / "run.jsonl").read_text() == before  # untouched
    _train(out, steps=3, layers=1, restart_fresh=True)
    kept = list(out.glob("run.jsonl.replaced-*"))
    assert len(kept) == 1 and kept[0].read_text() == before
    assert len(list(out.glob("checkpoints.replaced-*"))) == 1
    rec = read_run(out / "run.jsonl")  # a fresh log: one header, the new model's N
    assert rec.header["model_config"]["num_layers"] == 1
    assert rec.header["N"] < json.loads(before.splitlines()[0])["N"]
    assert [s["step"] for s in rec.steps] == [1, 2, 3] and rec.finished
    read_runs(out)  # the kept-aside log is not read as a second run


def test_checkpoints_that_all_fail_to_load_stop_the_run(tmp_path):
    out = tmp_path / "run"
    _train(out, steps=3)
    for f in (out / "checkpoints").rglob("*"):
        if f.is_file() and "state" in f.parts and "METADATA" not in f.name:
            f.write_bytes(b"garbage")
    before = (out / "run.jsonl").read_text()
    with pytest.warns(UserWarning, match="did not load"), \
            pytest.raises(CheckpointError, match="none of the checkpoints .* loads"):
        _train(out, steps=3)
    assert (out / "run.jsonl").read_text() == before


def test_a_log_and_checkpoints_that_disagree_are_refused(tmp_path):
    out = tmp_path / "run"
    _train(out, steps=3)
    log = out / "run.jsonl"
    text = log.read_text()
    log.unlink()  # checkpoints without their log
    with pytest.raises(ConfigError, match="no run log, but a checkpoint at step 3"):
        _train(out, steps=3)
    log.write_text(text)
    os.rename(out / "checkpoints", tmp_path / "aside")  # a log without its checkpoints
    with pytest.raises(ConfigError, match="holds steps up to 3 but there is no checkpoint"):
        _train(out, steps=3)


# ------------------------------------------------------------------ 2. the log is the run
class Stop(Exception):
    pass


class StopAt(SyntheticBatches):
    """Synthetic batches that raise :class:`Stop` when batch ``stop`` is asked for."""

    def __init__(self, stop, **kw):
        super().__init__(DATASETS, "tiny", batch_size=8, sequence_length=16, **kw)
        self.stop = stop

    def __next__(self):
        if self.get_state()["rows"] // self.batch_size == self.stop:
            raise Stop
        return super().__next__()


def test_a_resume_cuts_the_log_back_to_the_checkpoint(tmp_path):
    """Stopped at step 7 (checkpoints at 3 and 6), a truncated line appended as a kill
    mid-write leaves it: the resumed log equals an uninterrupted one, timings aside."""
    _train(tmp_path / "a" / "run", steps=8, eval_every=4)
    out = tmp_path / "b" / "run"
    with pytest.raises(Stop):
        _train(out, steps=8, eval_every=4, data=StopAt(7))
    log = out / "run.jsonl"
    with log.open("a") as f:
        f.write('{"kind": "step", "step": 8, "tok')
    _train(out, steps=8, eval_every=4)
    assert _lines(log) == _lines(tmp_path / "a" / "run" / "run.jsonl")
    assert [s["step"] for s in read_run(log).steps] == list(range(1, 9))


def _log(path, steps, *, extra=()):
    with RunLogWriter(path.parent, {"run_id": path.stem, "datasets": {"text": 1.0}, "N": 1e6,
                                    "N_convention": "total"}) as w:
        for s in steps:
            w.write({"kind": "step", "step": s, "tokens": 100.0 * s, "loss": 3.0})
        for obj in extra:
            w.write(obj)
    return path


def test_read_runs_refuses_a_log_that_is_not_one_run(tmp_path):
    path = _log(tmp_path / "dup.jsonl", [1, 2, 3, 2, 3])
    with pytest.raises(DataError, match=r"dup.jsonl:5: step 2 comes again after step 3 \(line 4"):
        read_runs(path)
    restart = {"kind": "event", "step": 3, "type": "restart", "from_step": 1}
    path = _log(tmp_path / "restart.jsonl", [1, 2, 3], extra=[restart])
    with path.open("a") as f:  # §4.5 restart: the steps after from_step are logged again
        f.write('{"kind": "step", "step": 2, "tokens": 200.0, "loss": 2.9}\n')
    assert [s["step"] for s in read_run(path).steps] == [1, 2, 3, 2]
    final = {"kind": "final", "step": 3, "tokens": 300.0, "loss": 2.5}
    path = _log(tmp_path / "two.jsonl", [1], extra=[final, final])
    with pytest.raises(DataError, match=r"two.jsonl:4: a 'final' line after the final line 3"):
        read_runs(path)
    path = _log(tmp_path / "header.jsonl", [1])
    path.write_text(path.read_text() * 2)
    with pytest.raises(DataError, match=r"header.jsonl:3: a second header"):
        read_runs(path)


def _command(out, steps):
    params = [f"OUTPUT_DIR='{out}'", f"STEPS={steps}", "WANDB=False",
              "MESH={'fsdp': 2, 'data': -1}", "settings.LoopSettings.checkpoint_every=5",
              "settings.LoopSettings.eval_every=10",
              "settings.LoopSettings.progress=False"]
    return [sys.executable, "-m", "mmlaws.main", "--gin_file=configs/train/tiny.gin",
            *[f"--gin_param={p}" for p in params]]


def _start(out, steps, repo_root):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(_command(out, steps), cwd=repo_root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _count(path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _writing_checkpoint(out) -> bool:
    folder = out / "checkpoints"
    return folder.exists() and any("tmp" in p.name for p in folder.iterdir())


def _kill_when(proc, ready, timeout=300.0) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False if it ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_the_log_of_an_uninterrupted_run(tmp_path, repo_root):
    """SIGKILL during a checkpoint write, then after a random number of new log lines (a kill
    can fall mid-line; once a truncated line is also left as a kill mid-write leaves it): the
    finished log equals the uninterrupted run's line for line, timing fields aside, so no step
    is lost or repeated and every loss is bit-identical."""
    steps, rng = 60, np.random.default_rng(16)
    ref = tmp_path / "ref" / "run"
    proc = _start(ref, steps, repo_root)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    out = tmp_path / "killed" / "run"
    log = out / "run.jsonl"
    kills = [_kill_when(_start(out, steps, repo_root), lambda: _writing_checkpoint(out)
                        and _count(log) > 3)]
    while len(kills) < 6:
        start, more = _count(log), int(rng.integers(2, 10))
        ready = lambda s=start, m=more: _count(log) >= s + m
        if not _kill_when(_start(out, steps, repo_root), ready):
            break
        kills.append(True)
        if len(kills) == 3:
            with log.open("a") as f:
                f.write('{"kind": "step", "step": 99, "loss": 1.')
    proc = _start(out, steps, repo_root)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    assert kills[0] and len(kills) >= 6, kills
    got, want = _lines(log), _lines(ref / "run.jsonl")
    assert [x["step"] for x in got if x["kind"] == "step"] == list(range(1, steps + 1))
    assert got == want


# ------------------------------------------------------------------ 3. one writer per folder
def test_a_second_lock_on_a_folder_names_the_holder(tmp_path):
    with FolderLock(tmp_path / "x"):
        t0 = time.perf_counter()
        with pytest.raises(FolderLocked, match=rf"x is in use by another process \(PID "
                                               rf"{os.getpid()}"):
            FolderLock(tmp_path / "x")
        assert time.perf_counter() - t0 < 1.0
        with pytest.raises(FolderLocked, match=f"PID {os.getpid()}"):
            train_design([], output_dir=str(tmp_path / "x"), data_dir=str(tmp_path))
    with FolderLock(tmp_path / "x"):  # released: taken again
        pass


@pytest.mark.slow
def test_a_second_writer_is_refused_at_once_and_the_first_runs_on(tmp_path, repo_root, capsys):
    out = tmp_path / "run"
    first = _start(out, 40, repo_root)
    log = out / "run.jsonl"
    end = time.monotonic() + 300
    while _count(log) < 3 and first.poll() is None and time.monotonic() < end:
        time.sleep(0.02)
    assert first.poll() is None
    t0 = time.perf_counter()
    with pytest.raises(FolderLocked, match=f"PID {first.pid}"):
        _train(out)
    assert time.perf_counter() - t0 < 1.0
    rc, lines = _main(capsys, "configs/train/tiny.gin", f"OUTPUT_DIR='{out}'", "WANDB=False")
    assert rc == 2 and len(lines) == 1 and f"PID {first.pid}" in lines[0], lines
    assert first.wait(timeout=600) == 0, first.stderr.read().decode()[-2000:]
    rec = read_run(log)
    assert [s["step"] for s in rec.steps] == list(range(1, 41)) and rec.finished


# ------------------------------------------------------------------ 4. the fitter's inputs
def _csv_rows():
    """Nine runs of a known law: N × D on a 3 × 3 grid."""
    rows = []
    for n in (1e6, 2e6, 4e6):
        for d in (1e8, 2e8, 4e8):
            rows.append([f"{n:g}", f"{d:g}", f"{1.7 + 400 / n ** 0.34 + 410 / d ** 0.28:.6f}"])
    return rows


def _with(row_index, column, value):
    """The CSV with one cell replaced (row_index 0 is the first data row, file row 2)."""
    def make():
        rows = _csv_rows()
        rows[row_index][("N", "D", "loss").index(column)] = value
        return "N,D,loss\n" + "".join(",".join(r) + "\n" for r in rows)
    return make


def _text(fn):
    return lambda: "N,D,loss\n" + "".join(",".join(r) + "\n" for r in fn(_csv_rows()))


# (name, file content: str, bytes or a function of nothing, what the one line must name)
CSV_CASES = [
    *[(f"{col} {v}", _with(3, col, v), ["runs.csv: row 5", f"column '{col}'"])
      for col in ("N", "D", "loss") for v in ("nan", "inf", "0", "-1")],
    ("a word for a number", _with(3, "D", "abc"), ["row 5", "'abc' is not a number"]),
    ("an empty cell", _with(3, "loss", ""), ["row 5", "column 'loss'", "'' is not a number"]),
    ("extra cells", _text(lambda r: r[:3] + [r[3] + ["7"]] + r[4:]), ["row 5", "extra cells"]),
    ("missing cells", _text(lambda r: r[:3] + [r[3][:2]] + r[4:]), ["row 5", "missing cells"]),
    ("a missing column", lambda: "N,D\n1e6,1e8\n", ["missing column(s) ['loss']"]),
    ("a column twice", lambda: "N,D,loss,D\n1e6,1e8,3,1e8\n", ["['D'] appear more than once"]),
    ("an empty file", lambda: "", ["runs.csv: empty file"]),
    ("a header only", lambda: "N,D,loss\n", ["no data rows"]),
    ("a binary file", lambda: bytes(range(256)) * 4, ["runs.csv: a binary file"]),
    ("not UTF-8", lambda: "N,D,loss\n1e6,1e8,3.0\xff\n".encode("latin-1"), ["not UTF-8"]),
    ("a duplicated row", _text(lambda r: r + [r[0]]), ["row 11 repeats row 2"]),
    ("fewer rows than parameters", _text(lambda r: r[:3]),
     ["runs.csv: dataset 'data': 3 runs cannot determine 5 free parameters"]),
    ("a single N", _text(lambda r: r[:3] + [[r[0][0], "8e8", "2.5"], [r[0][0], "9e8", "2.4"],
                                             [r[0][0], "1e9", "2.3"]]),
     ["runs.csv: dataset 'data'", "one model size N"]),
    ("a single D", _text(lambda r: [x for x in r if x[1] == "1e+08"]
                         + [["8e6", "1e+08", "2.6"], ["16e6", "1e+08", "2.5"],
                            ["32e6", "1e+08", "2.45"]]),
     ["runs.csv: dataset 'data'", "one token count D"]),
]


def _runs_folder(folder, mutate):
    """Nine finished run logs r0 … r8 (the CSV's runs); ``mutate(lines of r3)`` changes one."""
    for k, (n, d, loss) in enumerate(_csv_rows()):
        path = _log(folder / f"r{k}" / f"r{k}.jsonl", [1], extra=[
            {"kind": "final", "step": 2, "tokens": float(d), "loss": float(loss),
             "tokens_per_dataset": {"text": float(d)}, "loss_per_dataset": {"text": float(loss)}}])
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        lines[0] = json.dumps({**header, "N": float(n)})
        if k == 3:
            lines = mutate(lines)
        path.write_text("\n".join(lines) + "\n")


def _set(line: str, **fields) -> str:
    return json.dumps({**json.loads(line), **fields})


LOG_CASES = [
    ("a run log with a non-numeric N", lambda ls: [_set(ls[0], N="1.3B")] + ls[1:],
     ["r3.jsonl:1: run 'r3': field 'N' must be a number, got '1.3B'"]),
    ("a run log with a NaN final loss",
     lambda ls: ls[:-1] + [_set(ls[-1], loss=None, nonfinite=["/loss"])],
     ["r3.jsonl:3: run 'r3': final line: field 'loss' is nan"]),
    ("a run log with a zero token count", lambda ls: ls[:-1] + [_set(ls[-1], tokens=0)],
     ["r3.jsonl:3: run 'r3'", "field 'tokens' must be positive"]),
    ("a run log with a repeated step", lambda ls: ls[:2] + ls[1:],
     ["r3.jsonl:3: step 1 comes again"]),
    ("two runs in one log", lambda ls: ls + ls, ["r3.jsonl:4: a second header"]),
]


@pytest.mark.parametrize("name, content, names", CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_a_bad_csv_gives_one_line_naming_the_culprit(tmp_path, capsys, name, content, names):
    path = tmp_path / "runs.csv"
    data = content()
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    rc, lines = _main(capsys, "configs/fit/csv.gin", f"RUNS='{path}'",
                      f"OUTPUT_DIR='{tmp_path / 'fit'}'")
    assert rc == 2 and len(lines) == 1, lines
    for part in names:
        assert part in lines[0], (part, lines[0])


@pytest.mark.parametrize("name, mutate, names", LOG_CASES, ids=[c[0] for c in LOG_CASES])
def test_a_bad_run_log_gives_one_line_naming_the_run(tmp_path, capsys, name, mutate, names):
    _runs_folder(tmp_path / "runs", mutate)
    rc, lines = _main(capsys, "configs/fit/runs.gin", f"RUNS='{tmp_path / 'runs'}'",
                      f"OUTPUT_DIR='{tmp_path / 'fit'}'")
    assert rc == 2 and len(lines) == 1, lines
    for part in names:
        assert part in lines[0], (part, lines[0])


def test_policies_for_accepted_inputs(tmp_path):
    """Repeated runs with another loss (seeds) and extra columns are kept; blank lines are
    skipped; rows are named as a user counts them."""
    rows = _csv_rows()
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss,note\n" + "".join(",".join(r) + ",x\n" for r in rows)
                    + "\n" + ",".join(rows[0][:2] + ["3.5", "seed 1"]) + "\n")
    table = read_csv(path)
    assert len(table) == 10 and table.run_id[-1] == "runs:12"
    path.write_text("N,D,loss\n1e6,1e8,3\n1e6,1e8,3\n")
    with pytest.raises(DataError, match="row 3 repeats row 2"):
        read_csv(path)


# ------------------------------------------------------------------ 5. configurations
# (name, --gin_param bindings on configs/train/tiny.gin, what the one line must name)
CONFIG_CASES = [
    ("steps not a number", ["STEPS='abc'"], "RunSettings.total_steps='abc'"),
    ("fractional steps", ["STEPS=12.5"], "RunSettings.total_steps=12.5"),
    ("zero steps", ["STEPS=0"], "RunSettings.total_steps=0"),
    ("negative steps", ["STEPS=-3"], "RunSettings.total_steps=-3"),
    ("fractional batch", ["BATCH=2.5"], "batch_size must be a positive integer, got 2.5"),
    ("negative batch", ["BATCH=-8"], "batch_size must be a positive integer, got -8"),
    ("batch not divisible by the devices", ["BATCH=3"], "batch of 3 rows"),
    ("micro-batches not dividing the batch", ["settings.RunSettings.micro_batches=3"],
     "in 3 micro-batch(es)"),
    ("zero sequence length", ["SEQ_LEN=0"], "sequence_length must be a positive integer"),
    ("sequence longer than the model's", ["SEQ_LEN=4096"], "sequence length 4096 exceeds"),
    ("output folder under a file", ["OUTPUT_DIR='{file}/run'"], "cannot create it"),
    ("a typo'd macro", ["STEPZ=5"], "STEPZ bound but used by no config (STEPZ: did you mean"),
    ("keep no checkpoints", ["settings.LoopSettings.keep_checkpoints=0"],
     "LoopSettings.keep_checkpoints=0"),
    ("negative checkpoint interval", ["settings.LoopSettings.checkpoint_every=-1"],
     "LoopSettings.checkpoint_every=-1"),
    ("fractional eval interval", ["settings.LoopSettings.eval_every=2.5"],
     "LoopSettings.eval_every=2.5"),
    ("negative learning rate", ["settings.RunSettings.peak_lr=-1e-3"], "RunSettings.peak_lr"),
    ("learning rate not a number", ["settings.RunSettings.peak_lr='fast'"],
     "RunSettings.peak_lr='fast'"),
    ("negative warm-up", ["settings.RunSettings.warmup_steps=-1"], "warmup_steps=-1"),
    ("shares not summing to 1", ["DATASETS={'text': ('text', 0.5), 'image': ('image', 0.4)}"],
     "token shares must sum to 1"),
    ("a negative share", ["DATASETS={'text': ('text', 1.5), 'image': ('image', -0.5)}"],
     "token shares must be positive"),
    ("a mesh for other devices", ["MESH={'data': 3}"], "needs 3 devices, have 8"),
    ("an unknown preset", ["settings.RunSettings.model='huge'"], "RunSettings.model must be"),
    ("an unknown model field", ["settings.RunSettings.model_overrides={'num_layerz': 1}"],
     "unknown ModelConfig field(s) ['num_layerz']"),
    ("a restart factor above 1", ["restart.RestartPolicy.lr_factor=1.5"],
     "RestartPolicy.lr_factor=1.5"),
    ("restart not a boolean", ["RESTART='yes'"], "LoopSettings.restart_fresh='yes'"),
]


@pytest.mark.parametrize("name, params, names", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_setting_gives_one_line_naming_it(tmp_path, capsys, name, params, names):
    (tmp_path / "file").write_text("x")
    params = [p.replace("{file}", str(tmp_path / "file")) for p in params]
    rc, lines = _main(capsys, "configs/train/tiny.gin", f"OUTPUT_DIR='{tmp_path / 'run'}'",
                      "WANDB=False", "settings.LoopSettings.progress=False", *params)
    assert rc == 2 and len(lines) == 1, lines
    assert names in lines[0], lines[0]
    assert not (tmp_path / "run" / "run.jsonl").exists()


# ------------------------------------------------------------------ 6. dataset builders
def _docs(n=40):
    return [[TINY.text_start + i % 32] * (1 + i % 5) for i in range(n)]


def _build(folder, docs, budget=None):
    options = build.BuildOptions(folder, TINY, token_budget=budget, validation_fraction=0.25,
                                 progress=False)
    return build.build_dataset(options, "toy", {"a": docs}, modalities=["text"],
                               key=build.build_key("toy", 1, {}, None, TINY))


@pytest.mark.parametrize("budget", ["0", "-5", "0.4"])
def test_a_budget_below_one_token_is_refused_in_one_line(tmp_path, capsys, budget):
    with pytest.raises(SystemExit) as exit_:
        build.main(lambda options: {}, [], "test", ["--data_dir", str(tmp_path),
                                                   "--token_budget", budget])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(err) == 1 and "token_budget" in err[0], err
    assert not list(tmp_path.iterdir())


def test_a_budget_below_one_document_writes_nothing(tmp_path):
    first = _build(tmp_path, _docs())
    with pytest.raises(DataError, match="the train split would hold no document"):
        _build(tmp_path, [[TINY.text_start] * 9], budget=5)
    assert shards.read_stats(tmp_path, "toy") == first  # the dataset there is kept


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip"])
def test_a_damaged_shard_is_rebuilt(tmp_path, capsys, damage):
    first = _build(tmp_path, _docs())
    shard = tmp_path / "toy" / first["splits"]["train"]["shards"][0]["file"]
    data = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        shard.unlink()
    else:
        shard.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    again = _build(tmp_path, _docs())
    assert "rebuilding" in capsys.readouterr().out
    assert again["splits"] == first["splits"] and shard.read_bytes() == data
    assert len(shards.ShardSource(tmp_path, "toy")) == first["splits"]["train"]["documents"]


def test_a_killed_builds_temporary_folder_is_removed(tmp_path):
    _build(tmp_path, _docs())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"toy.tmp-{dead}"
    stale.mkdir()
    (stale / "train-00000.array_record").write_bytes(b"half")
    _build(tmp_path, _docs())  # up to date: nothing rebuilt, the leftover goes
    assert not stale.exists()


# ------------------------------------------------------------------ 7. checkpoints
def test_a_corrupt_latest_checkpoint_is_replaced_when_its_step_is_saved_again(tmp_path):
    ckpt = Checkpointer(tmp_path, every=1, keep=3, asynchronous=False)
    tree = lambda v: {"w": jnp.full((4, 3), v, jnp.float32)}
    for step in (1, 2):
        ckpt.save(step, tree(step), {"step": step})
    for f in (tmp_path / "2" / "state").rglob("*"):
        if f.is_file() and "METADATA" not in f.name:
            f.write_bytes(b"garbage")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                           sharding=x.sharding), tree(0))
    with pytest.warns(UserWarning, match="step 2 did not load"):
        assert ckpt.restore_latest(abstract)[0] == 1
    assert ckpt.save(1, tree(1), {"step": 1}) is False  # a good checkpoint is kept
    assert ckpt.save(2, tree(2), {"step": 2})  # the corrupt one is replaced
    step, state, extra = ckpt.restore_latest(abstract)
    ckpt.close()
    assert step == 2 and extra == {"step": 2}
    np.testing.assert_array_equal(state["w"], np.full((4, 3), 2, np.float32))


class Poisoned(SyntheticBatches):
    """NaN loss weights from batch ``start`` on."""

    def __init__(self, start, **kw):
        super().__init__(DATASETS, "tiny", batch_size=8, sequence_length=16, **kw)
        self.start = start

    def __next__(self):
        index = self.get_state()["rows"] // self.batch_size
        batch = super().__next__()
        return dict(batch, weights=batch["weights"] * np.float32("nan")) \
            if index >= self.start else batch


def test_a_rerun_after_a_non_finite_stop_stops_at_the_same_step(tmp_path):
    out = tmp_path / "run"
    for _ in range(2):  # the rerun resumes at step 3 with a reset count, not at the stop
        with pytest.raises(NonFiniteLossError, match="3 consecutive non-finite losses at step 8"):
            _train(out, steps=12, data=Poisoned(5), max_nonfinite=3)
        lines = _lines(out / "run.jsonl")
        assert [x["step"] for x in lines if x.get("type") == "nonfinite_loss"] == [6, 7, 8]
        assert [x["step"] for x in lines if x["kind"] == "step"] == list(range(1, 9))
    final = _train(out, steps=12)  # clean data: from the last finite checkpoint to the end
    assert final["step"] == 12 and np.isfinite(final["loss"])


# ------------------------------------------------------------------ 8. standard JSON
def test_non_finite_numbers_are_null_with_a_flag_and_read_back_as_nan(tmp_path):
    path = _log(tmp_path / "r.jsonl", [1], extra=[
        {"kind": "step", "step": 2, "tokens": 200.0, "loss": float("nan"),
         "loss_per_dataset": {"te/xt": float("inf"), "ok": 1.0}}])
    def strict(name):
        raise ValueError(name)
    lines = [json.loads(line, parse_constant=strict) for line in path.read_text().splitlines()]
    assert lines[2]["loss"] is None and lines[2]["nonfinite"] == ["/loss",
                                                                  "/loss_per_dataset/te~1xt"]
    step = read_run(path).steps[1]
    assert np.isnan(step["loss"]) and np.isnan(step["loss_per_dataset"]["te/xt"])
    assert step["loss_per_dataset"]["ok"] == 1.0 and "nonfinite" not in step
