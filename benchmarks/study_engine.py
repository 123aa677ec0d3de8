"""Model GFLOP/s of a whole study design: the stacked engine against one process per run.

    python benchmarks/study_engine.py --config configs/quickstart.gin --repeats 3
    python benchmarks/study_engine.py --config configs/quickstart.gin --only stacked

The design, data and run settings come from a study config (its ``study.Design``,
``study.DataBuild``, ``study.RunSettings`` and ``study.EngineSettings`` bindings, plus any
``--gin_param``). The datasets are built first (not timed). Then, ``--repeats`` times and
alternating, the design is trained from scratch both ways into fresh folders:

- **stacked**: :func:`mmlaws.study.engine.train_design`, the whole design in this process;
- **per-process**: :func:`mmlaws.sweep.run_sweep` over ``study/run.gin``, one process per run,
  ``--parallel`` (2) at a time — what ``run_study`` did before the engine.

FLOPs are the model's training FLOPs from the run records: every run's trained token positions
(steps × batch × sequence length) times its ``flops_per_token`` (header; total parameters and
attention, :func:`mmlaws.model.training_flops_per_token`), summed over runs; they are divided by
the wall time from the start of training to the last record written (compilation included).
Medians over the repeats; the last line reads
``study engine: stacked X GFLOP/s, per-process Y GFLOP/s, speedup Z×``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import statistics
import tempfile
import time

import gin

from mmlaws import study
from mmlaws.config_files import find
from mmlaws.data.vocab import resolve_layout
from mmlaws.study import design as design_lib
from mmlaws.study import settings as study_settings
from mmlaws.study.engine import EngineSettings, from_design, train_design
from mmlaws.sweep import run_sweep


def load(config: str, params: list[str]):
    """The study's design, data, run and engine settings as the config binds them."""
    gin.parse_config_files_and_bindings([find(config)], params, finalize_config=False)

    def make(cls):  # a class the config never names is not in gin's registry: its defaults
        try:
            return cls(**gin.get_bindings(cls))
        except ValueError:
            return cls()

    return (make(study_settings.Design), make(study_settings.DataBuild),
            make(study_settings.RunSettings), make(EngineSettings))


def model_flops(runs_dir: pathlib.Path) -> float:
    """Σ over run records of steps × batch tokens × flops per token."""
    total = 0.0
    for path in runs_dir.rglob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        header, final = lines[0], next(x for x in lines if x["kind"] == "final")
        start = header["config"].get("fork_step", 0)
        total += ((final["step"] - start) * header["config"]["batch_tokens"]
                  * header["flops_per_token"])
    return total


def stacked(runs, out, data, run, engine) -> float:
    todo = from_design(runs, layout=resolve_layout(data.layout),
                       warmup_steps=run.warmup_steps, peak_lr=run.peak_lr)
    t0 = time.perf_counter()
    train_design(todo, output_dir=str(out), data_dir=os.fspath(data.data_dir), settings=engine)
    return time.perf_counter() - t0


def per_process(runs, out, data, run, parallel: int) -> float:
    common = {"DATA_DIR": os.fspath(data.data_dir), "VOCAB": data.layout.lower(), "WANDB": False,
              **run.bindings()}
    points = design_lib.points(runs, common=common, extra=run.extra_bindings)
    t0 = time.perf_counter()
    rows = run_sweep(base_gin=study.RUN_GIN, sweep_dir=str(out / "runs"), points=points,
                     parallel=parallel)
    if any(r["status"] != "finished" for r in rows):
        raise SystemExit(f"per-process runs did not finish; see {out}/runs/*/stdout.log")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.gin")
    parser.add_argument("--gin_param", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--only", choices=["stacked", "per-process"])
    parser.add_argument("--keep", help="folder to keep the runs in (default: a temp folder)")
    args = parser.parse_args()
    design, data, run, engine = load(args.config, args.gin_param)
    runs = design_lib.plan(design, batch_size=run.batch_size,
                           sequence_length=run.sequence_length, warmup_steps=run.warmup_steps,
                           layout=data.layout)
    if engine.eval_tokens is None:  # as run_study sets it: RunSettings.eval_batches' worth
        engine = dataclasses.replace(
            engine, eval_tokens=run.eval_batches * run.batch_size * run.sequence_length)
    print(f"design: {len(runs)} runs; building the data (not timed)", flush=True)
    design_lib.build_data(design.datasets, data_dir=data.data_dir, layout=data.layout,
                          token_budget=data.tokens,
                          options={"image": data.image, "speech": data.speech},
                          sources=data.sources, **data.build_options())
    root = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="study_engine_"))
    ways = [w for w in ("stacked", "per-process") if args.only in (None, w)]
    rates: dict[str, list[float]] = {w: [] for w in ways}
    for k in range(args.repeats):
        for way in ways:
            out = root / f"{way}-{k}"
            shutil.rmtree(out, ignore_errors=True)
            seconds = (stacked(runs, out, data, run, engine) if way == "stacked"
                       else per_process(runs, out, data, run, args.parallel))
            flops = model_flops(out / "runs")
            rates[way].append(flops / seconds / 1e9)
            print(f"{way} {k + 1}/{args.repeats}: {seconds:.0f} s, {flops / 1e12:.2f} TFLOP, "
                  f"{rates[way][-1]:.2f} GFLOP/s", flush=True)
    med = {w: statistics.median(v) for w, v in rates.items()}
    print(f"runs kept in {root}" if args.keep else f"runs in {root} (temporary)")
    if len(ways) == 2:
        speedup = med["stacked"] / med["per-process"]
        print(f"study engine: stacked {med['stacked']:.1f} GFLOP/s, per-process "
              f"{med['per-process']:.1f} GFLOP/s, speedup {speedup:.1f}×")
    else:
        print(f"study engine: {ways[0]} {med[ways[0]]:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
