"""Exact resume: a real run killed with SIGKILL and started again gives bit-identical losses."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

STEPS = 50


def _command(out_dir):
    params = [f"OUTPUT_DIR='{out_dir}'", f"STEPS={STEPS}", "WANDB=False",
              "MESH={'fsdp': 2, 'data': -1}", "settings.LoopSettings.checkpoint_every=5",
              "settings.LoopSettings.progress=False"]
    return [sys.executable, "-m", "mmlaws.main", "--gin_file=configs/train/tiny.gin",
            *[f"--gin_param={p}" for p in params]]


def _steps(log):
    """step → (loss, grad_norm), the last line written for each step."""
    out = {}
    for line in log.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the process was killed
            continue
        if row["kind"] == "step":
            out[row["step"]] = (row["loss"], row["grad_norm"])
    return out


@pytest.mark.slow
def test_sigkill_then_resume_gives_bit_identical_losses(tmp_path, repo_root):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = subprocess.Popen(_command(tmp_path / "straight"), cwd=repo_root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = subprocess.Popen(_command(tmp_path / "killed"), cwd=repo_root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "killed.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and killed.poll() is None:
        if log.exists() and max(_steps(log), default=0) >= 17:
            break
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    seen_before_kill = max(_steps(log))
    assert 17 <= seen_before_kill < STEPS
    resumed = subprocess.run(_command(tmp_path / "killed"), cwd=repo_root, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err[-2000:]
    want, got = _steps(tmp_path / "straight" / "straight.jsonl"), _steps(log)
    assert sorted(want) == sorted(got) == list(range(1, STEPS + 1))
    assert got == want  # exact float equality, loss and gradient norm at every step
    events = [json.loads(x) for x in log.read_text().splitlines() if '"resume"' in x]
    assert len(events) == 1 and 10 <= events[0]["step"] <= seen_before_kill
