"""The mixed-modal scaling study end to end (paper §5–6): data, sweep, laws, phenomena, report.

:func:`run_study` is the job behind ``configs/quickstart.gin`` and ``configs/study/*.gin``. Given
its settings (the frozen dataclasses of :mod:`mmlaws.study.settings` and
:class:`mmlaws.laws.FitSettings`, bound by gin), it

1. builds the datasets from their local sources (:mod:`mmlaws.data`; cached);
2. checks the design's power (:func:`check_design`: a Table 1 law planted on each dataset's
   runs and refitted, :class:`~mmlaws.study.settings.PowerSettings`), prints which parameters
   it identifies and writes ``design_power.json``;
3. trains the design (:func:`~mmlaws.study.design.plan`: model sizes × token budgets on each
   dataset and each 50/50 pair, seeds, an optional batch scan, decay or WSD schedules) under
   ``<output_dir>/runs``: on this host in one process with runs of one shape stacked
   (:mod:`mmlaws.study.engine`, the default), or one process or SLURM job per run
   (:func:`mmlaws.sweep.run_sweep`); finished runs are kept, interrupted ones resume;
4. fits the laws with bootstrap intervals and held-out errors, measures the phenomena
   (:func:`~mmlaws.study.analyse.analyse`), and writes ``study.json``;
5. writes the report (:func:`~mmlaws.study.report.write_report`): ``<output_dir>/README.md``
   and its figures.

On a cluster the sweep only submits; :func:`report_study` (``configs/study/report.gin``) then
does steps 4–5 once the runs have finished. Running the study again skips finished runs. With
``SweepSettings.dry_run`` nothing is built or trained: :func:`mmlaws.study.preview.preview`
prints the runs, the tokens each dataset needs and the epochs they imply, and each model's
memory plan, and the job arrays are written without being submitted. A design that reads a
dataset more than ``DataBuild.max_epochs`` times is refused once the data is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time

from mmlaws.data.vocab import resolve_layout
from mmlaws.errors import ConfigError, DataError
from mmlaws.laws.records import read_runs
from mmlaws.laws.table import FitSettings
from mmlaws.study import design as design_lib
from mmlaws.study.analyse import Analysis, analyse
from mmlaws.study.engine import EngineSettings, from_design, train_design
from mmlaws.study.fit_jobs import progress_bar
from mmlaws.study.power_check import as_results, check_design, power_lines, runs_power
from mmlaws.study.preview import preview, time_limits
from mmlaws.study.report import write_report
from mmlaws.study.settings import DataBuild, Design, PowerSettings, RunSettings, SweepSettings
from mmlaws.sweep import run_sweep

RUN_GIN = os.path.join(os.path.dirname(__file__), "run.gin")

__all__ = ["Analysis", "DataBuild", "Design", "EngineSettings", "FitSettings", "PowerSettings",
           "RunSettings", "SweepSettings", "analyse", "check_design", "report_study",
           "run_study", "write_report"]
POWER_FILE = "design_power.json"


def run_study(
    *, output_dir: str, design: Design, data: DataBuild = DataBuild(),
    run: RunSettings = RunSettings(), sweep: SweepSettings = SweepSettings(),
    engine: EngineSettings = EngineSettings(), fit: FitSettings = FitSettings(),
    power: PowerSettings = PowerSettings(), title: str = "mmlaws study",
) -> dict | None:
    """Builds data, trains the design, fits laws, measures phenomena, writes the report.

    Args:
      output_dir: the study folder (``runs/``, ``design.json``, ``study.json``, the report).
      design: the runs (:class:`~mmlaws.study.settings.Design`); data: how the datasets are
        built; run: every run's training settings; sweep: how the runs are run; engine: the
        single-process engine's settings (``sweep.engine="stacked"``); fit: how the laws are
        fitted (:class:`~mmlaws.laws.FitSettings`); power: the design-power check before
        training (:class:`~mmlaws.study.settings.PowerSettings`).
    Returns: ``study.json``'s contents, or None when the runs were submitted, not run.
    """
    t0 = time.perf_counter()
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if sweep.engine not in ("stacked", "process"):
        raise ConfigError(f"SweepSettings.engine={sweep.engine!r}: expected 'stacked' or 'process'")
    stacked = sweep.backend == "local" and sweep.engine == "stacked"
    if design.schedule == "wsd" and not stacked:
        raise ConfigError("Design.schedule='wsd' needs the stacked engine (branches fork from "
                          "their trunk's state): SweepSettings.engine='stacked', backend='local'")
    if sweep.dry_run:
        runs = preview(design, data, run, sweep)["runs"]
        (out / "design.json").write_text(json.dumps(runs, indent=1))
    else:
        runs = design_lib.plan(design, batch_size=run.batch_size,
                               sequence_length=run.sequence_length,
                               warmup_steps=run.warmup_steps, layout=data.layout)
    n_law = sum(r["role"] == "law" for r in runs.values())
    n_mix = sum(r["role"] == "mixture" for r in runs.values())
    mixed = f", {n_mix} at other shares of a pair" if n_mix else ""
    print(f"mmlaws study: {len(runs)} runs ({n_law} for the laws{mixed}) over "
          f"{list(design.datasets)}, "
          f"{len(design.models)} model sizes, budgets "
          f"{[design_lib.tokens_label(b) for b in design.budgets]}", flush=True)
    if not sweep.dry_run:
        stats = design_lib.build_data(design.datasets, data_dir=data.data_dir,
                                      layout=data.layout, token_budget=data.tokens,
                                      options={"image": data.image, "speech": data.speech},
                                      sources=data.sources, **data.build_options())
        available = {d: float(s["splits"]["train"]["tokens"]) for d, s in stats.items()}
        design_lib.check_epochs(runs, available, data.max_epochs)
        _check_same_design(out / "design.json", runs)
        (out / "design.json").write_text(json.dumps(runs, indent=1))
    _check_power(design, data.layout, power, out)
    t1 = time.perf_counter()
    if stacked and not sweep.dry_run:
        _train_stacked(runs, out, data, run, engine)
    else:
        common = {"DATA_DIR": os.fspath(data.data_dir), "VOCAB": data.layout.lower(),
                  "WANDB_GROUP": wandb_group(out), **run.bindings()}
        points = design_lib.points(runs, common=common, extra=run.extra_bindings)
        limits = (time_limits(runs, design, data.layout, run.sequence_length, sweep.time_limit)
                  if sweep.time_limit and sweep.backend == "slurm" else None)
        rows = run_sweep(base_gin=RUN_GIN, sweep_dir=str(out / "runs"), points=points,
                         backend=sweep.backend, parallel=sweep.parallel, dry_run=sweep.dry_run,
                         slurm_options=sweep.slurm_options, time_limits=limits,
                         max_hours=(sweep.time_limit or {}).get("max_hours"),
                         launcher=sweep.launcher)
        if sweep.dry_run:
            print("mmlaws study: dry run: nothing was built, trained or submitted")
            return None
        if sweep.backend != "local":
            print(f"mmlaws study: runs submitted; when they finish, write the report with "
                  f"configs/study/report.gin --gin_param=STUDY_DIR='{out}'")
            return None
        failed = [r["run_id"] for r in rows if r["status"] != "finished"]
        if failed:
            raise DataError(f"{len(failed)} run(s) did not finish: {failed[:4]}"
                            f"{' ...' if len(failed) > 4 else ''}; see "
                            f"{out}/runs/<run_id>/stdout.log and run the study again to resume "
                            "them (finished runs are kept)")
    t2 = time.perf_counter()
    results = report_study(study_dir=str(out), fit=fit, warmup_tokens=run.warmup_tokens,
                           power=power, title=title)
    results["timing_s"] = {"data": round(t1 - t0, 1), "training": round(t2 - t1, 1),
                           "analysis_and_report": round(time.perf_counter() - t2, 1),
                           "total": round(time.perf_counter() - t0, 1)}
    (out / "study.json").write_text(json.dumps(results, indent=1, default=_json))
    print(f"mmlaws study: {results['timing_s']['total']:.0f} s in all (training "
          f"{results['timing_s']['training']:.0f} s); report {out}/README.md")
    return results


def report_study(
    *, study_dir: str, fit: FitSettings = FitSettings(), warmup_tokens: float = 0.0,
    power: PowerSettings = PowerSettings(), title: str = "mmlaws study",
) -> dict:
    """Laws, phenomena and the report of a study folder's finished runs (steps 4–5). The design
    power is the one :func:`run_study` wrote before training (``design_power.json``), or, in a
    folder without it, measured now on the finished runs' (N, D) with ``power``."""
    out = pathlib.Path(study_dir)
    path = out / "design.json"
    if not path.is_file():
        raise ConfigError(f"study_dir={study_dir!r}: no design.json (not a study folder)")
    design = json.loads(path.read_text())
    if not (out / "runs").is_dir():
        raise DataError(f"{out / 'runs'}: no runs yet")
    table = read_runs(out / "runs")
    missing = sorted(set(design) - {str(r) for r in table.run_id})
    if missing:
        print(f"mmlaws study: {len(missing)} of {len(design)} runs not finished, left out: "
              f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    a = analyse(table, design, fit=fit, warmup_tokens=warmup_tokens, progress=progress_bar)
    a.results["design_power"] = (json.loads((out / POWER_FILE).read_text())
                                 if (out / POWER_FILE).is_file()
                                 else as_results(runs_power(a.table, power)))
    files = write_report(a, out, title=title)
    (out / "study.json").write_text(json.dumps(a.results, indent=1, default=_json))
    print(f"mmlaws study: report {out}/README.md with {len(files) - 1} figures; "
          f"results {out}/study.json")
    return a.results


def wandb_group(study_dir: str | os.PathLike) -> str:
    """The wandb group of a study's runs: ``<folder name>-<6 hex digits of its absolute
    path>``, readable and distinct from a same-named study elsewhere."""
    path = os.path.abspath(study_dir)
    return f"{os.path.basename(path)}-{hashlib.sha256(path.encode()).hexdigest()[:6]}"


def _check_power(design: Design, layout: str, power: PowerSettings,
                 out: pathlib.Path) -> None:
    """Prints what the design identifies of a planted law, and writes ``design_power.json``."""
    if not power.replicates:
        return
    t0 = time.perf_counter()
    powers = check_design(design, layout=layout, settings=power)
    for line in power_lines(powers):
        print(f"mmlaws study: {line}", flush=True)
    print(f"mmlaws study: design power checked in {time.perf_counter() - t0:.1f} s", flush=True)
    (out / POWER_FILE).write_text(json.dumps(as_results(powers), indent=1))


def _train_stacked(runs, out: pathlib.Path, data: DataBuild, run: RunSettings,
                   engine: EngineSettings) -> None:
    """The design on this host in one process; failed runs are named and left out."""
    if run.extra_bindings:
        raise ConfigError(f"RunSettings.extra_bindings={dict(run.extra_bindings)!r} are gin "
                          "bindings of the process-per-run path; the stacked engine takes "
                          "EngineSettings (or use SweepSettings.engine='process')")
    todo = from_design(runs, layout=resolve_layout(data.layout), warmup_steps=run.warmup_steps,
                       peak_lr=run.peak_lr)
    if engine.eval_tokens is None:
        engine = dataclasses.replace(
            engine, eval_tokens=run.eval_batches * run.batch_size * run.sequence_length)
    if engine.tracking.group is None:
        engine = dataclasses.replace(
            engine, tracking=dataclasses.replace(engine.tracking, group=wandb_group(out)))
    results = train_design(todo, output_dir=str(out), data_dir=os.fspath(data.data_dir),
                           settings=engine)
    failed = {rid: r for rid, r in results.items() if not isinstance(r, dict)}
    if failed:
        print(f"mmlaws study: {len(failed)} run(s) failed and are left out: "
              + "; ".join(f"{rid} ({why})" for rid, why in list(failed.items())[:4]))


def _check_same_design(path: pathlib.Path, runs: dict) -> None:
    """A study folder holds one design: resuming with another one is refused, naming runs."""
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    new = json.loads(json.dumps(runs))
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        raise ConfigError(f"{path.parent} was written by a different design: runs "
                          f"{differ[:5]}{' ...' if len(differ) > 5 else ''} differ; use another "
                          "output_dir (or remove the folder to start over)")


def _json(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
