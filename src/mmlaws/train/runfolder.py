"""A run folder holds one run, and its log is exactly that run.

What :func:`mmlaws.train.loop.train` does with its output folder before it trains:

1. :func:`locked`: takes the folder's lock (:mod:`mmlaws.train.lock`) for the run's life, so
   that a second writer fails at once.
2. :func:`claim`: compares the run log's header with this run's (:func:`mmlaws.train.header.
   differences`): a run of another configuration (model, datasets and shares, optimizer,
   budget, seed …) is refused, naming the keys that differ. ``restart_fresh`` (``RESTART=True``
   in the shipped configs) instead keeps the old files aside, renamed
   ``<name>.replaced-<UTC time>``, and the run starts over in a fresh log.
3. After the checkpoint to resume from is chosen (:meth:`mmlaws.train.loop.Run.resume`),
   :func:`cut_log` cuts the log back to that step: a truncated last line (a kill mid-write)
   and every later line go, so the finished log holds each step once, as an uninterrupted run
   writes it. A folder whose checkpoints all fail to load, or whose log lacks steps that its
   checkpoint holds, is refused rather than trained again into the same log.

Only process 0 writes the log; it alone checks and cuts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping

import jax

from mmlaws.errors import ConfigError
from mmlaws.laws.records import truncate_run_log
from mmlaws.train.header import differences
from mmlaws.train.lock import FolderLock
from mmlaws.train.runlog import RUN_ID_FILE, TENSORBOARD_DIR

CHECKPOINTS = "checkpoints"
# What a run writes in its folder besides the log; a fresh restart sets them aside.
RUN_FILES = (CHECKPOINTS, TENSORBOARD_DIR, os.path.dirname(RUN_ID_FILE))
RESTART_HINT = ("set RESTART=True (settings.LoopSettings.restart_fresh=True) to start over, "
                "the old files kept aside")


@contextlib.contextmanager
def locked(folder: str) -> Iterator[None]:
    """Holds ``folder``'s lock (process 0; the others share its run) while the block runs."""
    if jax.process_index() != 0:
        yield
        return
    with FolderLock(folder):
        yield


def log_path(folder: str, header: Mapping) -> str:
    return os.path.join(folder, f"{header['run_id']}.jsonl")


def claim(folder: str, header: Mapping, *, restart_fresh: bool) -> None:
    """Makes ``folder`` this run's (see the module docstring); ``ConfigError`` naming the keys
    that differ when it holds another run and ``restart_fresh`` is not set."""
    if jax.process_index() == 0:
        path = log_path(folder, header)
        if restart_fresh:
            _set_aside(folder, [path, *(os.path.join(folder, f) for f in RUN_FILES)])
        else:
            old = first_line(path)
            diff = differences(old, header) if old and old.get("kind") == "header" else []
            if diff:
                more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
                raise ConfigError(f"{folder} holds a run of another configuration "
                                  f"({'; '.join(diff[:4])}{more}): use another output folder, "
                                  f"or {RESTART_HINT}")
    _barrier("mmlaws runfolder claim")


def cut_log(path: str, step: int) -> int:
    """Cuts the run log back to ``step`` (the checkpoint resumed from) and returns the number
    of lines dropped; refuses a log that ends before ``step`` (steps missing from the record)."""
    if jax.process_index() != 0 or not os.path.exists(path):
        if step > 0 and jax.process_index() == 0:
            raise ConfigError(f"{path}: no run log, but a checkpoint at step {step}: the record "
                              f"of steps 1-{step} is lost; {RESTART_HINT}")
        return 0
    logged = last_step(path)
    if logged < step:
        raise ConfigError(f"{path}: the run log ends at step {logged} but the checkpoint "
                          f"resumed from is at step {step}: steps are missing from the record; "
                          f"{RESTART_HINT}")
    return truncate_run_log(path, step)


def fresh_log(path: str) -> None:
    """Readies the log of a run that starts at step 0 (no checkpoint): at most a header may be
    there (a kill before the first checkpoint); logged steps without a checkpoint are refused."""
    if jax.process_index() != 0 or not os.path.exists(path):
        return
    logged = last_step(path)
    if logged > 0:
        raise ConfigError(f"{path}: the run log holds steps up to {logged} but there is no "
                          f"checkpoint to resume from: {RESTART_HINT}")
    truncate_run_log(path, 0)


def first_line(path: str) -> dict | None:
    """The first line of a file as JSON, or None (no file, empty, or cut short)."""
    try:
        with open(path) as f:
            return json.loads(f.readline())
    except (OSError, ValueError):
        return None


def last_step(path: str) -> int:
    """The largest step of the log's step lines (0 when it has none)."""
    best = 0
    with open(path) as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if isinstance(obj, dict) and obj.get("kind") == "step":
                best = max(best, int(obj["step"]))
    return best


def _set_aside(folder: str, paths) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = []
    for path in paths:
        if os.path.exists(path):
            os.replace(path, f"{path}.replaced-{stamp}")
            moved.append(os.path.basename(path))
    if moved:
        print(f"mmlaws: starting over in {folder}; kept aside: "
              f"{', '.join(f'{m}.replaced-{stamp}' for m in moved)}", flush=True)


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
