"""benchmarks/device_check.sh: the commands it runs, and its tiny mode end to end on CPU."""

import json
import os
import subprocess
import sys

import pytest


def _run(repo_root, tmp_path, *args, timeout=600):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(repo_root / "benchmarks" / "device_check.sh"), *args],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)


def test_dry_run_lists_the_steps(repo_root, tmp_path):
    out = _run(repo_root, tmp_path, "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("+ ")]
    assert "benchmarks/attention_check.py" in lines[1]
    for preset in ("125M", "350M", "1.3B"):
        assert any(f"--preset {preset} " in ln and "--context 2048" in ln for ln in lines)
    assert any("--gpu_xla_flags" in ln for ln in lines)
    assert any("--steps 100" in ln and "loss_1.3B.json" in ln for ln in lines)
    assert not list(tmp_path.glob("*.json"))


def test_bad_argument_is_refused(repo_root, tmp_path):
    assert _run(repo_root, tmp_path, "--gpu").returncode == 2


@pytest.mark.slow
def test_tiny_mode_runs_every_step_on_cpu(repo_root, tmp_path):
    out = _run(repo_root, tmp_path, "--tiny")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = (tmp_path / "summary.txt").read_text()
    assert "FAILED" not in summary and summary.count("throughput: tiny") == 3
    assert "attention: worst relative error" in summary
    assert summary.strip().splitlines()[-1] == "device check: PASS"
    losses = json.loads((tmp_path / "loss_tiny.json").read_text())["losses"]
    assert len(losses) == 42 and losses[-1] < losses[0]
