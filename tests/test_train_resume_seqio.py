"""configs/train/seqio_tiny.gin: trains from a SeqIO exact mixture, writes a run record the
fitter reads, and a run killed with SIGKILL resumes with bit-identical per-step losses."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("seqio")

STEPS = 40
DATASETS = {"text": ("text", 8, 24), "image": ("image", 40, 120)}
DOCUMENTS = {"train": 400, "validation": 40}


def _command(out_dir, data_dir):
    params = [f"OUTPUT_DIR='{out_dir}'", f"DATA_DIR='{data_dir}'", f"STEPS={STEPS}",
              "WANDB=False", "MESH={'fsdp': 2, 'data': -1}",
              "settings.LoopSettings.checkpoint_every=5", "settings.LoopSettings.eval_every=10",
              "settings.LoopSettings.progress=False"]
    return [sys.executable, "-m", "mmlaws.main", "--gin_file=configs/train/seqio_tiny.gin",
            *[f"--gin_param={p}" for p in params]]


def _steps(log):
    """step → (loss, grad_norm, tokens per dataset), the last line written for each step."""
    out = {}
    for line in log.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the process was killed
            continue
        if row["kind"] == "step":
            out[row["step"]] = (row["loss"], row["grad_norm"], row["tokens_per_dataset"])
    return out


@pytest.mark.slow
def test_seqio_tiny_trains_and_resumes_after_sigkill(tmp_path, repo_root):
    from mmlaws.data import tfds_shards
    from mmlaws.laws import read_runs

    data_dir = str(tmp_path / "data")  # built once here, as the config would build it
    tfds_shards.synthetic_data(data_dir, DATASETS, documents=DOCUMENTS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = subprocess.Popen(_command(tmp_path / "straight", data_dir), cwd=repo_root,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = subprocess.Popen(_command(tmp_path / "killed", data_dir), cwd=repo_root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "killed.jsonl"
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline and killed.poll() is None:
        if log.exists() and max(_steps(log), default=0) >= 17:
            break
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    seen_before_kill = max(_steps(log))
    assert 17 <= seen_before_kill < STEPS
    resumed = subprocess.run(_command(tmp_path / "killed", data_dir), cwd=repo_root, env=env,
                             capture_output=True, text=True, timeout=480)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _, err = straight.communicate(timeout=480)
    assert straight.returncode == 0, err[-2000:]
    want, got = _steps(tmp_path / "straight" / "straight.jsonl"), _steps(log)
    assert sorted(want) == sorted(got) == list(range(1, STEPS + 1))
    assert got == want  # exact float equality: loss, gradient norm, tokens per dataset
    # The resumed log is the uninterrupted one, line for line (timings and the run id aside).
    strip = lambda path: [{k: v for k, v in json.loads(x).items()
                           if k not in ("tokens_per_s", "mfu", "run_id")}
                          for x in path.read_text().splitlines()]
    assert strip(log) == strip(tmp_path / "straight" / "straight.jsonl")
    assert "resuming from the checkpoint at step" in resumed.stdout
    runs = read_runs(str(tmp_path / "straight"))  # the fitter reads the record
    assert list(runs.run_id) == ["straight"] and runs.datasets == (("image", "text"),)
    header = json.loads(log.read_text().splitlines()[0])
    assert header["datasets"] == {"image": 0.5, "text": 0.5}
    assert header["modalities"] == {"image": "image", "text": "text"}
