"""The mixed-modal scaling study end to end (paper §5–6): data, sweep, laws, phenomena, report.

:func:`run_study` is the job behind ``configs/quickstart.gin`` and ``configs/study/*.gin``:

1. builds the datasets from their local sources (:mod:`mmlaws.data`; cached);
2. runs the design (:func:`~mmlaws.study.design.plan`: model sizes × token budgets on each
   dataset and each 50/50 pair, and an optional batch scan) as a resumable sweep
   (:func:`mmlaws.sweep.run_sweep`, local processes or a SLURM array) under ``<output_dir>/runs``;
3. fits the laws with bootstrap intervals and held-out errors, measures the phenomena
   (:func:`~mmlaws.study.analyse.analyse`), and writes ``study.json``;
4. writes the report (:func:`~mmlaws.study.report.write_report`): ``<output_dir>/README.md``
   and its figures.

On a cluster the sweep only submits; :func:`report_study` (``configs/study/report.gin``) then
does steps 3–4 once the runs have finished. Running the study again skips finished runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time
from collections.abc import Mapping, Sequence

from mmlaws import sweep
from mmlaws.errors import ConfigError, DataError
from mmlaws.laws.records import read_runs
from mmlaws.study import design as design_lib
from mmlaws.study.analyse import Analysis, analyse
from mmlaws.study.report import write_report

RUN_GIN = os.path.join(os.path.dirname(__file__), "run.gin")

__all__ = ["Analysis", "analyse", "report_study", "run_study", "write_report"]


def run_study(
    *, output_dir: str, datasets: Sequence[str], models: Mapping[str, Mapping],
    budgets: Sequence[float], data_dir: str = "outputs/data", layout: str = "small",
    data_tokens: float = 2e6, offline: bool = False, batch_size: int = 8,
    sequence_length: int = 128,
    peak_lr: float | None = 3e-3, warmup_steps: int = 20, pairs: bool = True,
    nmodal: bool = False,
    batch_scan: Mapping | None = None, base_model: str = "tiny",
    model_defaults: Mapping | None = None, eval_batches: int = 8,
    checkpoint_every: int = 200, extra_params: Sequence[str] = (), parallel: int = 1,
    backend: str = "local", slurm_options: Mapping[str, str] | None = None,
    dry_run: bool = False, bootstrap_samples: int = 200, holdout_sizes: int = 1,
    grid: str = "hoffmann", huber_delta: float = 0.03, title: str = "mmlaws study",
) -> dict | None:
    """Builds data, trains the design, fits laws, measures phenomena, writes the report.

    Args:
      output_dir: the study folder (``runs/``, ``design.json``, ``study.json``, the report).
      datasets: dataset names to build and train on (:data:`design.BUILDERS`).
      models: name -> overrides of ``base_model`` (``d_model``, ``num_layers``, ``num_heads``,
        ``d_head``, optionally ``peak_lr``, ``dropout``, ``init_std``); ``model_defaults``: such
        keys for every model that does not set its own; budgets: training tokens per run.
      data_dir, layout, data_tokens: where and how the datasets are built (tokens per dataset);
        ``offline``: the builders download nothing.
      batch_size, sequence_length, peak_lr, warmup_steps, eval_batches, checkpoint_every:
        every run's training settings (``peak_lr=None``: each preset's Table 2 rate);
        ``extra_params`` more gin bindings for every run.
      pairs: also train each pair of datasets at 50/50; nmodal, batch_scan: see
        :func:`design.plan`.
      parallel, backend, slurm_options, dry_run: the sweep (:func:`mmlaws.sweep.run_sweep`).
      bootstrap_samples, holdout_sizes, grid, huber_delta: the law fits.
    Returns: ``study.json``'s contents, or None when the runs were submitted, not run.
    """
    t0 = time.perf_counter()
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = design_lib.plan(datasets=datasets, models=models, budgets=budgets,
                           batch_size=batch_size, sequence_length=sequence_length, pairs=pairs,
                           batch_scan=batch_scan, base=base_model, nmodal=nmodal,
                           model_defaults=model_defaults)
    (out / "design.json").write_text(json.dumps(runs, indent=1))
    n_law = sum(r["role"] == "law" for r in runs.values())
    print(f"mmlaws study: {len(runs)} runs ({n_law} for the laws) over {list(datasets)}, "
          f"{len(models)} model sizes, budgets {[design_lib.tokens_label(b) for b in budgets]}",
          flush=True)
    design_lib.build_data(datasets, data_dir=data_dir, layout=layout, token_budget=data_tokens,
                          offline=offline)
    lr = None if peak_lr is None else float(peak_lr)
    extra = {"VOCAB": repr(layout.lower()), "PEAK_LR": repr(lr),
             "WARMUP": str(warmup_steps), "EVAL_BATCHES": str(eval_batches),
             "CHECKPOINT_EVERY": str(checkpoint_every),
             "WANDB_GROUP": repr(wandb_group(out))}
    points = design_lib.points(runs, data_dir=data_dir, extra=extra)
    t1 = time.perf_counter()
    rows = sweep.run_sweep(base_gin=RUN_GIN, sweep_dir=str(out / "runs"), points=points,
                           backend=backend, parallel=parallel, extra_params=extra_params,
                           dry_run=dry_run, slurm_options=slurm_options)
    t2 = time.perf_counter()
    if backend != "local" or dry_run:
        print(f"mmlaws study: runs submitted; when they finish, write the report with "
              f"configs/study/report.gin --gin_param=STUDY_DIR='{out}'")
        return None
    failed = [r["run_id"] for r in rows if r["status"] != "finished"]
    if failed:
        raise DataError(f"{len(failed)} run(s) did not finish: {failed[:4]}"
                        f"{' ...' if len(failed) > 4 else ''}; see {out}/runs/<run_id>/stdout.log "
                        "and run the study again to resume them (finished runs are kept)")
    results = report_study(study_dir=str(out), bootstrap_samples=bootstrap_samples,
                           holdout_sizes=holdout_sizes, grid=grid, huber_delta=huber_delta,
                           warmup_tokens=warmup_steps * batch_size * sequence_length,
                           title=title)
    results["timing_s"] = {"data": round(t1 - t0, 1), "training": round(t2 - t1, 1),
                           "analysis_and_report": round(time.perf_counter() - t2, 1),
                           "total": round(time.perf_counter() - t0, 1)}
    (out / "study.json").write_text(json.dumps(results, indent=1, default=_json))
    print(f"mmlaws study: {results['timing_s']['total']:.0f} s in all (training "
          f"{results['timing_s']['training']:.0f} s); report {out}/README.md")
    return results


def report_study(
    *, study_dir: str, bootstrap_samples: int = 200, holdout_sizes: int = 1,
    grid: str = "hoffmann", huber_delta: float = 0.03, warmup_tokens: float = 0.0,
    title: str = "mmlaws study",
) -> dict:
    """Laws, phenomena and the report of a study folder's finished runs (steps 3–4)."""
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
    a = analyse(table, design, huber_delta=huber_delta, grid=grid,
                bootstrap_samples=bootstrap_samples, holdout_sizes=holdout_sizes,
                warmup_tokens=warmup_tokens, plots_dir=out)
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


def _json(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
