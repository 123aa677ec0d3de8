"""The paper configs: their dry runs (what they train, the data they need, nothing built or
trained), the single-epoch guard, and a couple of steps of each config's runs at tiny width."""

import json
import re
import shlex
import subprocess
import sys

import gin
import pytest

from mmlaws import main
from mmlaws.data import shards
from mmlaws.data.vocab import PAPER, TINY
from mmlaws.errors import ConfigError
from mmlaws.laws.records import read_run
from mmlaws.study import design as design_lib
from mmlaws.study.preview import preview
from mmlaws.study.settings import DataBuild, Design, RunSettings, SweepSettings

PAIRS = {"code+image_text", "image_text+speech_text", "image_text+text", "speech+text",
         "code+text", "code+molecules", "code+speech"}  # §5.2, sorted within each pair
SEVEN = {"text", "code", "molecules", "images", "image_text", "speech", "speech_text"}
CONFIGS = ["gpu_paper", "tpu_paper", "paper_validation"]


def dry_run(repo_root, tmp_path, name, capsys, *extra):
    out = tmp_path / "study"
    gin.clear_config()
    code = main.main([f"--gin_file={repo_root}/configs/study/{name}.gin",
                      "--gin_param=study.SweepSettings.dry_run=True",
                      "--gin_param=study.SweepSettings.plan_memory=False",
                      f"--gin_param=OUTPUT_DIR='{out}'",
                      f"--gin_param=DATA_DIR='{tmp_path / 'data'}'", *extra])
    gin.clear_config()
    assert code == 0
    return out, capsys.readouterr().out


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_prints_the_design_and_builds_nothing(repo_root, tmp_path, capsys, name):
    out, text = dry_run(repo_root, tmp_path, name, capsys)
    runs = json.loads((out / "design.json").read_text())
    sets = {"+".join(r["datasets"]) for r in runs.values()}
    assert "warm-up 500 updates, 512 rows x 2048 = 1M tokens per update" in text
    assert not (tmp_path / "data").exists() and not list(out.glob("runs/*/"))  # nothing ran
    assert "dry run: nothing was built, trained or submitted" in text
    for d in {d for r in runs.values() for d in r["datasets"]}:  # tokens needed per dataset
        assert re.search(rf"^{d}\s+\S+G\s+not built\s+\?\s+1\.00$", text, re.M), d
    if name == "paper_validation":
        assert sets == {"speech", "text", "speech+text"} and len(runs) == 9
        assert {r["model"] for r in runs.values()} == {"350M", "2.7B", "30B"}
        assert {r["tokens"] for r in runs.values()} == {50e9}
        return
    law = {k: r for k, r in runs.items() if r["role"] == "law"}
    assert sets == SEVEN | PAIRS and len(law) == 14 * 7 * 3
    assert "1024 codes per image" in text and "8192 codes" in text
    scan = [r for r in runs.values() if r["role"] == "batch"]
    by_set = {}
    for r in scan:
        by_set.setdefault(("+".join(r["datasets"]), r["model"]), set()).add(r["batch"])
    assert {m for _, m in by_set} == {"125M", "1.3B"}
    for (s, _), batches in by_set.items():  # 1M (the law run), 2M, 4M, 8M; 0.5M with Text
        assert batches == ({256, 1024, 2048, 4096} if "text" in s.split("+")
                           else {1024, 2048, 4096}), s
    assert all(r["tokens"] == 5e9 for r in scan)
    assert all(r["N"] > 9e6 for r in runs.values())  # total parameters, embeddings included


def test_gpu_dry_run_writes_requeueing_arrays_with_planned_time_limits(repo_root, tmp_path,
                                                                        capsys):
    out, text = dry_run(repo_root, tmp_path, "gpu_paper", capsys)
    scripts = sorted((out / "runs").glob("sweep-*h.sbatch"))
    hours = sorted(int(re.fullmatch(r"sweep-(\d+)h.sbatch", p.name)[1]) for p in scripts)
    assert hours[0] >= 1 and hours[-1] == 48 and len(hours) > 3
    body = scripts[0].read_text()
    assert "#SBATCH --requeue" in body and "JAX_COMPILATION_CACHE_DIR" in body
    commands = sum(len(p.read_text().splitlines()) for p in (out / "runs").glob("commands-*"))
    assert commands == 386
    argv = shlex.split((out / "runs" / "commands-48h.txt").read_text().splitlines()[0])
    assert "--gin_param=WARMUP=500" in argv


def test_single_epoch_guard(tmp_path):
    for name in ("code", "text"):
        shards.write_synthetic(tmp_path, name, layout=TINY, documents={"train": 50,
                                                                       "validation": 5})
    have = {n: shards.read_stats(tmp_path, n)["splits"]["train"]["tokens"]
            for n in ("code", "text")}
    spec = Design(datasets=["code", "text"], models={"s": {}},
                  budgets=[have["code"] * 0.5, have["code"] * 1.5])
    runs = design_lib.plan(spec, batch_size=2, sequence_length=16)
    with pytest.raises(ConfigError, match=r"max_epochs=1.0: the design reads code 1\.5"):
        design_lib.check_epochs(runs, have, 1.0)
    said = []
    design_lib.check_epochs(runs, have, None, log=said.append)
    assert "WARNING: more than one epoch" in said[0]
    rid = next(k for k, r in runs.items() if r["datasets"] == ["code", "text"]
               and r["tokens"] > have["code"])
    assert runs[rid]["epochs"]["code"] == pytest.approx(0.75, rel=1e-3)
    assert design_lib.tokens_needed(runs)["code"] == pytest.approx(have["code"] * 1.5)


def test_preview_reads_built_data_and_plans_memory(tmp_path):
    for name in ("code", "text"):
        shards.write_synthetic(tmp_path, name, layout=TINY)
    spec = Design(datasets=["code", "text"], models={"a": {"remat": "full",
                                                           "micro_batch_rows": 4}},
                  budgets=[4096], pairs=[["text", "code"]])
    lines = []
    got = preview(spec, DataBuild(data_dir=str(tmp_path), layout="tiny", tokens=1e4),
                  RunSettings(batch_size=8, sequence_length=32,
                              extra_bindings={"MESH": {"fsdp": -1}}),
                  SweepSettings(devices=2, device_gb=1.0), log=lines.append)
    built = shards.read_stats(tmp_path, "code")["splits"]["train"]["tokens"]
    assert got["datasets"]["code"]["epochs"] == pytest.approx(4096 / built)
    plan = got["memory"]["a"]
    assert plan["remat"] == "full" and plan["fits"] and plan["peak"] > 0
    assert any("memory a" in line and "2 micro-batches" in line for line in lines)
    assert got["runs"]["code+text_a_D4.1k"]["micro_batches"] == 2
    assert PAPER.image_codes == 8192


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_each_paper_config_trains_a_few_steps_at_tiny_width(repo_root, tmp_path, capsys, name):
    """Each config's own run commands (a law run and a batch-scan run where it has one), on
    synthetic shards of the paper layout, with the width shrunk and two steps: the real path
    (run.gin, the loop, its remat policy, hash dropout, micro-batches, fsdp over 8 devices)."""
    out, _ = dry_run(repo_root, tmp_path, name, capsys)
    data = tmp_path / "data"
    modality = {"images": "image", "speech": "speech"}
    runs = json.loads((out / "design.json").read_text())
    for d in {d for r in runs.values() for d in r["datasets"]}:
        shards.write_synthetic(data, d, layout=PAPER, modality=modality.get(d, "text"),
                               min_length=16, max_length=96)
    picks = [next(k for k, r in runs.items() if r["role"] == role and len(r["datasets"]) == 2)
             for role in ("law", "batch") if any(r["role"] == role for r in runs.values())]
    commands = {}
    for path in (out / "runs").glob("commands*.txt"):
        for line in path.read_text().splitlines():
            commands[shlex.split(line)[-1].split("/")[-1].rstrip("'")] = shlex.split(line)
    for rid in picks:
        argv = commands[rid]
        overrides = runs[rid]["bindings"]["MODEL_OVERRIDES"]
        tiny = {**overrides, "num_layers": 2, "d_model": 32, "num_heads": 2, "d_head": 16,
                "max_len": 64}
        micro = runs[rid]["bindings"].get("MICRO_BATCHES", 1)
        argv += [f"--gin_param=MODEL_OVERRIDES={tiny!r}", "--gin_param=STEPS=2",
                 f"--gin_param=BATCH={8 * min(micro, 2)}", "--gin_param=SEQ_LEN=64",
                 f"--gin_param=MICRO_BATCHES={min(micro, 2)}", "--gin_param=WANDB=False",
                 f"--gin_param=OUTPUT_DIR='{tmp_path / rid}'", "--gin_param=EVAL_BATCHES=1"]
        done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                              cwd=repo_root, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
        record = read_run(tmp_path / rid / f"{rid}.jsonl")
        assert record.finished and record.final["step"] == 2, rid
        assert "mmlaws attention: chunked (config 'auto', platform cpu)" in done.stdout


def test_the_mixture_config_adds_two_shares_of_the_pair_to_the_quickstart(repo_root, tmp_path,
                                                                          capsys):
    out, text = dry_run(repo_root, tmp_path, "mixture", capsys)
    runs = json.loads((out / "design.json").read_text())
    pair = {k: r for k, r in runs.items() if r["role"] == "law" and len(r["datasets"]) == 2}
    mixed = {k: r for k, r in runs.items() if r["role"] == "mixture"}
    assert len(mixed) == 2 * len(pair) and pair
    for k, r in pair.items():  # the same widths and budgets at 25/75 and 75/25
        for w in ("25", "75"):
            twin = mixed[k.replace("code+text", f"code.{w}+text.{100 - int(w)}")]
            assert twin["bindings"]["SHARES"]["code"] == int(w) / 100
            assert (twin["tokens"], twin["model"]) == (r["tokens"], r["model"])
    assert "at other shares of a pair" in text
