"""The README's main command, end to end, and the entry point's one-line errors."""

import json
import os
import subprocess
import sys

import pytest


def _main(repo_root, *args, timeout=600):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "mmlaws.main", *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_quickstart_smallest_setting(repo_root, tmp_path):
    """The README's main job, shrunk: one dataset (the stdlib code, offline), its five widths,
    two budgets of a few steps decayed in full (no band, one seed); it trains, fits, and writes
    the report."""
    out = tmp_path / "qs"
    r = _main(repo_root, "--gin_file=configs/quickstart.gin", f"--gin_param=OUTPUT_DIR='{out}'",
              f"--gin_param=DATA_DIR='{tmp_path / 'data'}'",
              "--gin_param=study.Design.datasets=['code']",
              "--gin_param=study.DataBuild.tokens=300000",  # bytes: 1 validation doc
              "--gin_param=study.DataBuild.offline=True",
              "--gin_param=study.DataBuild.sources={'code': ['stdlib']}",
              "--gin_param=study.Design.budgets=[2048, 4096]",
              "--gin_param=study.Design.tokens_per_parameter=None",
              "--gin_param=study.Design.schedule='decay'",
              "--gin_param=study.Design.seeds={}",
              "--gin_param=study.RunSettings.batch_size=8",  # 8 simulated devices
              "--gin_param=study.RunSettings.sequence_length=32",
              "--gin_param=study.RunSettings.warmup_steps=2",
              "--gin_param=study.RunSettings.eval_batches=2",
              "--gin_param=laws.FitSettings.bootstrap_samples=16")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert f"{out}/README.md" in r.stdout
    results = json.loads((out / "study.json").read_text())
    assert len(results["runs"]) == 10
    law = results["laws"]["code"]
    assert law["num_runs"] == 10 and law["num_converged"] > 0
    assert "interval95" in law
    for row in results["runs"]:
        assert 0 < row["loss"] < 5.95  # below log(384): the runs learned something
        assert row["tokens"] <= 4096
    assert (out / "fit_code.png").stat().st_size > 10_000
    assert (out / "fig1_loss_curves.png").stat().st_size > 10_000
    assert "| code | 10 |" in (out / "README.md").read_text()
    again = _main(repo_root, "--gin_file=configs/quickstart.gin", *r.args[4:])
    assert "10 runs, 10 already finished; 0 stack(s) to train" in again.stdout


@pytest.mark.slow
def test_paper_refit_smallest_setting(repo_root, tmp_path):
    out = tmp_path / "qs"
    r = _main(repo_root, "--gin_file=configs/fit/paper.gin", f"--gin_param=OUTPUT_DIR='{out}'",
              "--gin_param=fit_jobs.reproduce_paper.modalities=('text',)",
              "--gin_param=laws.FitSettings.bootstrap_samples=16")
    assert r.returncode == 0, r.stderr[-2000:]
    assert str(out) in r.stdout
    report = json.loads((out / "reproduction.json").read_text())
    assert abs(report["text"]["alpha"] - 0.18) < 0.01
    assert (out / "fit_text.png").stat().st_size > 10_000
    assert (out / "README.md").read_text().count("| text |") == 1
    assert report["text"]["huber_delta"] == 0.03 and "holdout" in report["text"]  # FitSettings


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--gin_file=configs/nope.gin"], "configs/nope.gin: no such file"),
        (["--gin_file=configs/fit/paper.gin", "--gin_param=fit_jobs.reproduce_paper.nosuch=1"],
         "nosuch"),
        (["--gin_file=configs/fit/paper.gin", "--gin_param=NOISE=5.0"], "noise=5.0"),
        (["--gin_file=configs/fit/paper.gin", "--gin_param=GRID='fine'"], "grid='fine'"),
        (["--gin_file=configs/fit/csv.gin", "--gin_param=RUNS='x.csv'",
          "--gin_param=HUBER_DELTA=-1.0"], "huber_delta=-1.0"),
        (["--gin_file=configs/quickstart.gin", "--gin_param=study.Design.datasets=['nope']"],
         "nope"),
        (["--gin_file=configs/quickstart.gin", "--gin_param=study.Design.budgets=[]"],
         "budgets"),
        (["--gin_file=configs/fit/csv.gin"], "RUNS"),
        (["--gin_file=configs/fit/csv.gin", "--gin_param=RUNS='/no/such.csv'"], "/no/such.csv"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(repo_root, tmp_path, args, needle):
    r = _main(repo_root, *args, f"--gin_param=OUTPUT_DIR='{tmp_path}'", timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "Warning" not in ln]
    assert len(lines) == 1 and needle in lines[0], r.stderr
