"""The sweep runner: grid, run ids, skip-finished, and the SLURM job array written by a dry run."""

import pathlib
import shlex

import pytest

from mmlaws.errors import ConfigError
from mmlaws.sweep import gin_value, grid_points, run_id, run_sweep

BASE = "configs/train/tiny.gin"
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_grid_points_and_ids():
    pts = grid_points({"STEPS": [4, 8], "SEQ_LEN": [32]})
    assert pts == [{"STEPS": 4, "SEQ_LEN": 32}, {"STEPS": 8, "SEQ_LEN": 32}]
    rid = run_id({"DATASETS": {"text": ("text", 1.0)}, "STEPS": 4, "MODEL": "tiny"})
    assert rid == "DATASETS-texttext1.0_STEPS-4_MODEL-tiny"
    with pytest.raises(ConfigError, match="non-empty list"):
        grid_points({"STEPS": []})


def test_slurm_dry_run_writes_an_array_over_unfinished_runs(tmp_path):
    rows = run_sweep(base_gin=BASE, grid={"STEPS": [4, 8, 16]}, sweep_dir=str(tmp_path),
                     backend="slurm", dry_run=True, slurm_options={"partition": "gpu"})
    assert [r["status"] for r in rows] == ["pending"] * 3
    script = (tmp_path / "sweep.sbatch").read_text()
    assert "#SBATCH --array=1-3" in script and "#SBATCH --partition=gpu" in script
    cmds = (tmp_path / "commands.txt").read_text().splitlines()
    assert len(cmds) == 3 and all("--gin_file=configs/train/tiny.gin" in c for c in cmds)
    assert "--gin_param=STEPS=8" in cmds[1] and f"{tmp_path}/STEPS-8" in cmds[1]


def test_explicit_points_keep_their_run_ids(tmp_path):
    pts = {"small_D1k": {"STEPS": 4}, "big_D2k": {"STEPS": 8, "SEQ_LEN": 16}}
    rows = run_sweep(base_gin=BASE, points=pts, sweep_dir=str(tmp_path), backend="slurm",
                     dry_run=True)
    assert [r["run_id"] for r in rows] == ["small_D1k", "big_D2k"]
    cmds = (tmp_path / "commands.txt").read_text().splitlines()
    assert "--gin_param=SEQ_LEN=16" in cmds[1] and f"{tmp_path}/big_D2k" in cmds[1]
    with pytest.raises(ConfigError, match="exactly one"):
        run_sweep(base_gin=BASE, points=pts, grid={"STEPS": [4]}, sweep_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="run id"):
        run_sweep(base_gin=BASE, points={"a b": {}}, sweep_dir=str(tmp_path))


def test_study_on_a_cluster_is_a_dry_run_of_the_paper_design(tmp_path):
    """configs/study/gpu_paper.gin's design: 7 Table 2 rows x 3 budgets x (7 datasets + the
    paper's 7 pairs), 1M-token batches, each row's Table 2 learning rate, 8 micro-batches;
    the dry run writes the job arrays."""
    import gin

    from mmlaws.study import design

    gin.clear_config()
    gin.parse_config_files_and_bindings(["configs/study/gpu_paper.gin"], [])
    q = lambda name: gin.query_parameter(f"study.{name}")
    spec = design.Design(datasets=q("Design.datasets"), models=q("Design.models"),
                         budgets=q("Design.budgets"), pairs=q("Design.pairs"),
                         model_defaults=q("Design.model_defaults"))
    runs = design.plan(spec, batch_size=q("RunSettings.batch_size"),
                       sequence_length=q("RunSettings.sequence_length"))
    extra = q("RunSettings.extra_bindings")
    gin.clear_config()
    assert len(runs) == 7 * 3 * 14
    r = runs["speech+text_6.7B_D100G"]
    assert r["steps"] == 95368 and r["bindings"]["MODEL"] == "6.7B"
    assert r["bindings"]["MICRO_BATCHES"] == 8
    assert r["bindings"]["MODEL_OVERRIDES"] == {"dropout_impl": "hash",
                                                "remat": "save_dot_except_mlp"}
    rows = run_sweep(base_gin="src/mmlaws/study/run.gin", sweep_dir=str(tmp_path),
                     points={k: v["bindings"] for k, v in runs.items()}, backend="slurm",
                     dry_run=True, extra=extra)
    assert len(rows) == 294
    assert "#SBATCH --array=1-294" in (tmp_path / "sweep.sbatch").read_text()
    argv = shlex.split((tmp_path / "commands.txt").read_text().splitlines()[0])
    assert "--gin_param=MICRO_BATCHES=8" in argv and "--gin_param=MESH={'fsdp': -1}" in argv
    assert "--gin_param=MODEL='8M'" in argv and "--gin_param=SHARES={'text': 1.0}" in argv


def test_slurm_tasks_requeue_and_take_time_limits_per_group(tmp_path):
    pts = {"a": {"STEPS": 4}, "b": {"STEPS": 8}, "c": {"STEPS": 16}}
    run_sweep(base_gin=BASE, points=pts, sweep_dir=str(tmp_path), backend="slurm",
              dry_run=True, slurm_options={"time": "1:00:00", "nodes": "2"},
              time_limits={"a": 1000.0, "b": 5 * 3600.0, "c": 90 * 3600.0}, max_hours=48,
              launcher="srun")
    one, five, cap = (tmp_path / f"sweep-{h}h.sbatch" for h in (1, 5, 48))
    assert "#SBATCH --time=1:00:00" in one.read_text()
    assert "#SBATCH --time=5:00:00" in five.read_text()
    text = cap.read_text()
    assert "#SBATCH --time=48:00:00" in text and "#SBATCH --array=1-1" in text
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR1@600" in text
    assert "#SBATCH --nodes=2" in text and 'eval "srun $cmd"' in text
    assert "scontrol requeue" in text and "trap" in text
    assert (tmp_path / "commands-48h.txt").read_text().count("\n") == 1


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ConfigError, match="backend"):
        run_sweep(base_gin=BASE, grid={"STEPS": [4]}, sweep_dir=str(tmp_path), backend="k8s")
    with pytest.raises(ConfigError, match="no such file"):
        run_sweep(base_gin="nope.gin", grid={"STEPS": [4]}, sweep_dir=str(tmp_path))


@pytest.mark.slow
def test_local_sweep_runs_then_skips_finished_runs(tmp_path):
    grid = {"STEPS": [3, 4]}
    extra = {"WANDB": False, "settings.LoopSettings.checkpoint_every": 2,
             "settings.LoopSettings.eval_every": 0, "settings.LoopSettings.progress": False}
    rows = run_sweep(base_gin=BASE, grid=grid, sweep_dir=str(tmp_path), extra=extra,
                     parallel=2)
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert all(r["loss"] > 0 and r["tokens"] > 0 for r in rows)
    assert (tmp_path / "summary.json").exists()
    logs = [p.stat().st_mtime for p in tmp_path.glob("*/stdout.log")]
    again = run_sweep(base_gin=BASE, grid=grid, sweep_dir=str(tmp_path), extra=extra)
    assert [r["status"] for r in again] == ["finished", "finished"]
    assert [p.stat().st_mtime for p in tmp_path.glob("*/stdout.log")] == logs  # nothing rerun


@pytest.mark.parametrize("value", [
    None, True, 3, -1.5e-05, 2e9, "it's \"quoted\"", "ünï", [], (), ("a",), (1, "b"),
    {"text": ("text", 0.5), "image": ("image", 0.5)}, {"fsdp": -1, "tensor": 4},
    [{"a": [1, 2]}, None],
])
def test_gin_value_parses_back_to_the_value(value):
    import gin

    gin.clear_config()
    try:
        gin.parse_config(f"X = {gin_value(value)}")
        assert gin.query_parameter("%X") == value
    finally:
        gin.clear_config()


def test_gin_value_takes_numpy_scalars_and_paths_and_names_what_it_cannot_write():
    import numpy as np

    assert gin_value(np.float64(0.25)) == "0.25" and gin_value(np.int32(7)) == "7"
    assert gin_value(pathlib.Path("a/b")) == "'a/b'"
    with pytest.raises(ConfigError, match="non-finite"):
        gin_value(float("inf"))
    with pytest.raises(ConfigError, match="set has no gin literal"):
        gin_value({1, 2})


def test_the_task_requeues_itself_on_the_warning_signal(tmp_path):
    """The job script, run as SLURM would, with a stand-in scontrol and a 2-second command."""
    import os
    import signal
    import subprocess
    import time

    run_sweep(base_gin=BASE, points={"a": {"STEPS": 4}}, sweep_dir=str(tmp_path),
              backend="slurm", dry_run=True)
    (tmp_path / "commands.txt").write_text(f"sleep 2; touch {tmp_path}/done\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol.args\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "77"}
    job = subprocess.Popen(["bash", str(tmp_path / "sweep.sbatch")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    job.send_signal(signal.SIGUSR1)
    out, _ = job.communicate(timeout=30)
    assert (tmp_path / "scontrol.args").read_text().split() == ["requeue", "77_1"]
    assert "requeueing 77_1" in out and (tmp_path / "done").exists()  # the run went on
