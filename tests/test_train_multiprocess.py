"""Two processes × 4 CPU devices (jax.distributed on localhost) train like one process × 8."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

STEPS = 6


def _command(out_dir):
    params = [f"OUTPUT_DIR='{out_dir}'", f"STEPS={STEPS}", "WANDB=False",
              "MESH={'fsdp': 2, 'tensor': 2, 'data': -1}", "settings.LoopSettings.progress=False"]
    return [sys.executable, "-m", "mmlaws.main", "--gin_file=configs/train/tiny.gin",
            *[f"--gin_param={p}" for p in params]]


def _env(devices, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def _losses(log):
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "step"]


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, repo_root):
    address = f"localhost:{_free_port()}"
    procs = [subprocess.Popen(_command(tmp_path / "two"), cwd=repo_root, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=_env(4, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i)))
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    one = subprocess.run(_command(tmp_path / "one"), cwd=repo_root, env=_env(8),
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two_losses, one_losses = _losses(tmp_path / "two" / "two.jsonl"), _losses(
        tmp_path / "one" / "one.jsonl")
    assert len(two_losses) == len(one_losses) == STEPS
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
