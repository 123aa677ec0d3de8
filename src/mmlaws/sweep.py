"""Sweeps: a grid of training runs, run locally (one after another or in parallel processes) or
as a SLURM job array, resumable, with a summary table at the end.

A sweep is a base gin file (a training config such as ``configs/train/tiny.gin``, which binds
``main.run.job`` and reads its settings from macros) and a grid of values of those macros::

    grid = {"MODEL": ["tiny", "mini"], "STEPS": [100, 400]}   # 4 runs

Values are Python values (strings, numbers, booleans, None, and lists, tuples and dicts of them);
:func:`gin_value` writes each as gin reads it back, in this one place. Each grid point is one
run: ``python -m mmlaws.main --gin_file=<base> --gin_param=K=V ...
--gin_param=OUTPUT_DIR='<sweep_dir>/<run_id>'``, its run id made from the grid values. A run is
*finished* when its run record (``<sweep_dir>/<run_id>/<run_id>.jsonl``) holds a ``final``
line; finished runs are skipped, and an interrupted run is started again with the same output
folder, where the training loop resumes from its last checkpoint. ``backend="slurm"`` writes
``commands.txt`` (one command per line) and ``sweep.sbatch``, a job array whose task *i* runs
line *i*, and submits it with ``sbatch`` unless ``dry_run``.

Cluster jobs that finish: every array task is ``--requeue``-able (SLURM puts it back in the
queue after a preemption or a node failure) and asks for ``SIGUSR1`` ten minutes before its time
limit, on which it requeues itself; the requeued task runs the same command, which resumes from
the run's last checkpoint. With ``time_limits`` (seconds per run, e.g. from the run's planned
FLOPs at a stated MFU: :func:`mmlaws.study.preview.time_limits`), runs are grouped by their
limit rounded up to whole hours (at most ``max_hours``; a longer run continues over several
jobs), one array per group: ``commands-<H>h.txt`` and ``sweep-<H>h.sbatch``.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mmlaws import config_files
from mmlaws.errors import ConfigError
from mmlaws.laws.records import read_run


def grid_points(grid: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of the grid's values, in the grid's order (last axis fastest)."""
    if not grid:
        raise ConfigError("sweep grid is empty: give at least one macro and its values")
    for k, v in grid.items():
        if isinstance(v, str) or not isinstance(v, Sequence) or len(v) == 0:
            raise ConfigError(f"sweep grid[{k!r}] must be a non-empty list of values, got {v!r}")
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def run_id(point: Mapping) -> str:
    """A file-name-safe id from a grid point, e.g. ``MODEL-tiny_STEPS-100``."""
    def clean(v):
        return re.sub(r"[^A-Za-z0-9.+-]+", "", str(v).replace(" ", "")) or "x"
    return "_".join(f"{k}-{clean(v)}" for k, v in point.items())


def gin_value(value: Any) -> str:
    """``value`` as a gin literal that parses back to it: ``None``, booleans, numbers (numpy
    scalars too), strings and paths, and lists, tuples and dicts of these.

    >>> gin_value({"code": 0.5, "text": 0.5}), gin_value(("a", 2)), gin_value([1e-05, None])
    ("{'code': 0.5, 'text': 0.5}", "('a', 2)", '[1e-05, None]')
    """
    if value is None or isinstance(value, bool | str):
        return repr(value)
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"gin value {value!r}: gin has no literal for a non-finite number")
        return repr(float(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{gin_value(k)}: {gin_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        items = [gin_value(v) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise ConfigError(f"gin value {value!r}: a {type(value).__name__} has no gin literal")


def command(base_gin: str, point: Mapping[str, Any], output_dir: str,
            extra: Mapping[str, Any] | None = None) -> list[str]:
    """The argv of one run: ``point``'s bindings, then ``extra``'s, then ``OUTPUT_DIR``."""
    bindings = {**point, **(extra or {}), "OUTPUT_DIR": output_dir}
    return [sys.executable, "-m", "mmlaws.main", f"--gin_file={base_gin}",
            *(f"--gin_param={k}={gin_value(v)}" for k, v in bindings.items())]


def _record(output_dir: str, rid: str):
    """The run's record, or None when it has none yet; an unreadable one reads as started."""
    path = os.path.join(output_dir, f"{rid}.jsonl")
    if not os.path.exists(path):
        return None
    try:
        return read_run(path)
    except Exception:  # an unreadable record is rerun: the loop resumes from its checkpoint
        return False


def status(output_dir: str, rid: str) -> str:
    """``finished``, ``started`` (a record without its final line) or ``pending``."""
    return _status(_record(output_dir, rid))


def _status(rec) -> str:
    if rec is None:
        return "pending"
    return "finished" if rec and rec.finished else "started"


def run_sweep(
    *, base_gin: str, sweep_dir: str, grid: Mapping[str, Sequence] | None = None,
    points: Mapping[str, Mapping] | None = None, backend: str = "local", parallel: int = 1,
    extra: Mapping[str, Any] | None = None, dry_run: bool = False,
    slurm_options: Mapping[str, str] | None = None,
    time_limits: Mapping[str, float] | None = None, max_hours: float | None = None,
    launcher: str = "",
) -> list[dict]:
    """Runs (or submits) every grid point not yet finished; returns the summary rows.

    Give either ``grid`` (every combination of its values) or ``points``, an explicit
    ``{run_id: {macro: value}}`` (for designs that are not a full grid, such as
    :mod:`mmlaws.study`'s). ``parallel`` > 1 runs that many local processes at once.
    ``extra`` are gin bindings added to every run (``{"WANDB": False}``; a key may also name a
    parameter, ``{"loop.train.eval_every": 0}``).
    ``slurm_options`` become ``#SBATCH --key=value`` lines (for example
    ``{"partition": "gpu", "gres": "gpu:8", "time": "24:00:00"}``); ``time_limits`` (seconds
    per run id) and ``max_hours`` set each array's ``--time`` instead; ``launcher`` prefixes
    each command in the job (``"srun"`` for runs over several nodes).
    """
    if backend not in ("local", "slurm"):
        raise ConfigError(f"sweep backend={backend!r}: expected 'local' or 'slurm'")
    base_gin = config_files.find(base_gin, flag="sweep base_gin")
    if parallel < 1:
        raise ConfigError(f"sweep parallel={parallel}: must be >= 1")
    if (grid is None) == (points is None):
        raise ConfigError("sweep: give exactly one of grid= and points=")
    if points is not None and not points:
        raise ConfigError("sweep points= is empty: give at least one run")
    named = ({run_id(p): p for p in grid_points(grid)} if points is None else dict(points))
    os.makedirs(sweep_dir, exist_ok=True)
    runs = []
    for rid, point in named.items():
        if not re.fullmatch(r"[A-Za-z0-9.+_-]+", rid):
            raise ConfigError(f"sweep run id {rid!r}: use letters, digits and . + _ - only")
        out = os.path.join(sweep_dir, rid)
        runs.append({"run_id": rid, "point": point, "output_dir": out,
                     "argv": command(base_gin, point, out, extra),
                     "status": status(out, rid)})
    todo = [r for r in runs if r["status"] != "finished"]
    print(f"mmlaws sweep: {len(runs)} runs, {len(runs) - len(todo)} already finished, "
          f"{len(todo)} to run ({backend})")
    if backend == "slurm":
        for hours, group in _by_hours(todo, time_limits, max_hours).items():
            _slurm(group, sweep_dir, slurm_options or {}, dry_run, hours=hours,
                   launcher=launcher)
    elif dry_run:  # the commands a local sweep would run
        with open(os.path.join(sweep_dir, "commands.txt"), "w") as f:
            f.writelines(shlex.join(r["argv"]) + "\n" for r in todo)
    else:
        _local(todo, parallel)
    show = grid is not None  # explicit points are named by their run ids
    rows = [_summary(r, _record(r["output_dir"], r["run_id"]), show) for r in runs]
    with open(os.path.join(sweep_dir, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(_table(rows))
    return rows


def _local(todo, parallel: int) -> None:
    pending, live, failed, done = list(todo), [], [], 0
    while pending or live:
        while pending and len(live) < parallel:
            r = pending.pop(0)
            os.makedirs(r["output_dir"], exist_ok=True)
            log = open(os.path.join(r["output_dir"], "stdout.log"), "a")
            print(f"  [{len(todo) - len(pending)}/{len(todo)}] start {r['run_id']}", flush=True)
            live.append((r, subprocess.Popen(r["argv"], stdout=log, stderr=subprocess.STDOUT),
                         log, time.perf_counter()))
        for item in list(live):
            r, proc, log, t0 = item
            if proc.poll() is None:
                continue
            log.close()
            live.remove(item)
            took, done = time.perf_counter() - t0, done + 1
            print(f"  [{done}/{len(todo)}] {'done ' if proc.returncode == 0 else 'FAILED'} "
                  f"{r['run_id']} ({took:.0f} s, exit {proc.returncode})", flush=True)
            if proc.returncode:
                failed.append(r["run_id"])
        time.sleep(0.2)
    if failed:
        print(f"mmlaws sweep: {len(failed)} run(s) failed: {failed}; see their stdout.log; "
              f"run the sweep again to resume them")


def _by_hours(todo, limits: Mapping[str, float] | None,
              max_hours: float | None) -> dict[int | None, list]:
    """Runs grouped by their time limit in whole hours (None: the options' own ``time``)."""
    if not limits:
        return {None: todo}
    groups: dict[int | None, list] = {}
    for r in todo:
        hours = max(1, math.ceil(limits[r["run_id"]] / 3600))
        groups.setdefault(min(hours, int(max_hours)) if max_hours else hours, []).append(r)
    return dict(sorted(groups.items()))


REQUEUE_SIGNAL_S = 600  # SIGUSR1 this long before the time limit: the task requeues itself


def _slurm(todo, sweep_dir: str, options: Mapping[str, str], dry_run: bool,
           hours: int | None = None, launcher: str = "") -> None:
    if not todo:
        return
    tag = "" if hours is None else f"-{hours}h"
    cmds = os.path.join(sweep_dir, f"commands{tag}.txt")
    with open(cmds, "w") as f:
        for r in todo:
            f.write(shlex.join(r["argv"]) + "\n")
    options = {**options, **({} if hours is None else {"time": f"{hours}:00:00"})}
    task = '"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"'
    lines = ["#!/bin/bash", f"#SBATCH --job-name=mmlaws-sweep{tag}",
             f"#SBATCH --array=1-{len(todo)}",
             f"#SBATCH --output={os.path.join(sweep_dir, 'slurm-%A_%a.out')}",
             "#SBATCH --open-mode=append", "#SBATCH --requeue",
             f"#SBATCH --signal=B:USR1@{REQUEUE_SIGNAL_S}"]
    lines += [f"#SBATCH --{k}={v}" for k, v in options.items()]
    lines += [
        "set -uo pipefail",
        f'cmd="$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(cmds)})"',
        # Near the time limit: put this task back in the queue; it resumes from its checkpoint.
        f"trap 'echo \"mmlaws sweep: time limit near, requeueing {task}\"; "
        f"scontrol requeue {task}' USR1",
        f'eval "{launcher + " " if launcher else ""}$cmd" &',
        "pid=$!",
        'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done',
        'wait "$pid"',
    ]
    script = os.path.join(sweep_dir, f"sweep{tag}.sbatch")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    if dry_run:
        print(f"mmlaws sweep: wrote {script} and {cmds} (dry run, not submitted)")
        return
    out = subprocess.run(["sbatch", script], capture_output=True, text=True, check=False)
    if out.returncode:
        raise ConfigError(f"sbatch {script} failed: {out.stderr.strip() or out.stdout.strip()}")
    print(f"mmlaws sweep: {out.stdout.strip()}")


def _summary(r, rec, show_point: bool = True) -> dict:
    row = {"run_id": r["run_id"],
           **({k: str(v) for k, v in r["point"].items()} if show_point else {}),
           "status": _status(rec)}
    if row["status"] == "finished":
        row.update(N=rec.header.get("N"), tokens=rec.final.get("tokens"),
                   loss=rec.final.get("loss"))
    return row


def _table(rows) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    body = [[fmt(r.get(k, "")) for k in keys] for r in rows]
    width = [max(len(k), *(len(b[i]) for b in body)) for i, k in enumerate(keys)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, width, strict=True))
    return "\n".join([line(keys), line(["-" * w for w in width]), *map(line, body)])
