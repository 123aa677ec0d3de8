"""A stack's checkpoints: the stacked state as host arrays, written on the calling thread.

A stack holds tiny models (kilobytes to a few megabytes for the whole stack), on one host, so
its checkpoints need none of orbax's machinery for sharded, asynchronous saves of large states
(the single-run training loop keeps orbax, :mod:`mmlaws.train.checkpoint`). Here they are
written from the calling thread, with no thread started: in CI the process aborted, rarely and
only under load, with orbax's writer threads starting at a stack's first save.

Layout: ``<directory>/<step>/state.npz`` (the state's leaves in tree order, ``leaf_0`` …) and
``extra.json``. A save writes into ``<step>.tmp-<pid>`` and renames it into place, so a kill
mid-save leaves no folder that looks finished; temporary folders found at start are removed
(the study folder's lock makes this process its only writer). The newest ``keep`` are kept. On
restore, a checkpoint that fails to load is reported with a warning and the one before it is
tried, as :class:`mmlaws.train.checkpoint.Checkpointer` does.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import warnings
from collections.abc import Callable

import jax
import numpy as np


class StackCheckpoints:
    """Save (when asked) and restore a stack's state; the newest ``keep`` are kept."""

    def __init__(self, directory: str | os.PathLike, *, keep: int = 2):
        self.dir, self.keep = pathlib.Path(directory), keep
        self.dir.mkdir(parents=True, exist_ok=True)
        for p in self.dir.glob("*.tmp-*"):  # a save that a kill interrupted
            shutil.rmtree(p, ignore_errors=True)

    def steps(self) -> list[int]:
        return sorted(int(p.name) for p in self.dir.iterdir() if p.name.isdigit() and p.is_dir())

    def save(self, step: int, state, extra: dict) -> None:
        leaves = jax.tree.leaves(jax.device_get(state))
        tmp = self.dir / f"{step}.tmp-{os.getpid()}"
        tmp.mkdir()
        with open(tmp / "state.npz", "wb") as f:
            np.savez(f, **{f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)})
            f.flush()
            os.fsync(f.fileno())
        (tmp / "extra.json").write_text(json.dumps(extra))
        final = self.dir / str(step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in self.steps()[:-self.keep]:
            shutil.rmtree(self.dir / str(old), ignore_errors=True)

    def restore_latest(self, shapes: Callable[[dict], object]):
        """(step, state, extra) of the newest loadable checkpoint, or None when none loads.

        ``shapes``: a function of the checkpoint's ``extra`` giving the state's
        ShapeDtypeStructs (with shardings), whose tree the saved leaves fill in order.
        """
        for step in reversed(self.steps()):
            where = self.dir / str(step)
            try:
                extra = json.loads((where / "extra.json").read_text())
                target = shapes(extra)
                flat, tree = jax.tree.flatten(target)
                with np.load(where / "state.npz") as z:
                    if len(z.files) != len(flat):
                        raise ValueError(f"{len(z.files)} arrays saved, {len(flat)} expected")
                    leaves = []
                    for i, s in enumerate(flat):
                        x = z[f"leaf_{i}"]
                        if x.shape != tuple(s.shape) or x.dtype != s.dtype:
                            raise ValueError(f"leaf {i}: {x.shape} {x.dtype}, expected "
                                             f"{tuple(s.shape)} {s.dtype}")
                        leaves.append(jax.device_put(x, getattr(s, "sharding", None)))
                return step, jax.tree.unflatten(tree, leaves), extra
            except Exception as err:  # noqa: BLE001 - any failure to load means: try older
                warnings.warn(f"stack checkpoint {where} did not load ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200]}); falling back to an older one",
                              stacklevel=2)
        return None
