"""Checkpoints with orbax: asynchronous, atomic, the last M kept, resumable exactly.

Each checkpoint holds the :class:`~mmlaws.train.state.TrainState` (sharded arrays, restored
straight onto the mesh) and a JSON item ``extra`` with what the host needs to continue
bit-for-bit: the data iterator's state, the run's RNG key data and the host counters
(tokens per dataset, the restart policy's tracker). Orbax writes into a temporary folder and
renames it when complete, so a kill mid-save leaves no checkpoint that looks finished.

On restore, a checkpoint that fails to load (corrupt or partial files) is reported with a
warning and the one before it is tried; the one that failed is replaced when its step is saved
again (otherwise a save skips a step that already has a checkpoint).
"""

from __future__ import annotations

import pathlib
import warnings

import jax
import orbax.checkpoint as ocp

from mmlaws.errors import UserError


class CheckpointError(UserError):
    """No checkpoint of the run could be loaded where one is needed."""


class Checkpointer:
    """Save every ``every`` steps (and when asked), keeping the newest ``keep``."""

    def __init__(self, directory: str | pathlib.Path, *, every: int, keep: int = 3,
                 asynchronous: bool = True):
        self.every = every
        self.unloadable: set[int] = set()  # steps whose checkpoint failed to load
        # The folder has one writer (its lock, mmlaws.train.lock): a temporary folder found
        # at the start is a save that a kill interrupted, and goes.
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=asynchronous,
                                               cleanup_tmp_directories=True)
        self.manager = ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options,
                                             item_names=("state", "extra"))

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, extra: dict, *, force: bool = False) -> bool:
        """Start saving (returns at once when asynchronous); True if a save was started."""
        if not force and (self.every <= 0 or step % self.every):
            return False
        if step in self.manager.all_steps():
            if step not in self.unloadable:
                return False
            self.manager.wait_until_finished()
            self.manager.delete(step)  # a corrupt checkpoint: replaced by this one
        self.unloadable.discard(step)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  extra=ocp.args.JsonSave(extra))
        return self.manager.save(step, args=args, force=True)

    def restore_latest(self, abstract_state):
        """(step, state, extra) of the newest loadable checkpoint, or None when none loads.

        ``abstract_state``: ShapeDtypeStructs carrying shardings (``StateSetup.shapes``), or a
        function of the checkpoint's ``extra`` giving them (a stack of runs whose size changes).
        """
        self.manager.wait_until_finished()
        for step in reversed(self.steps()):
            try:
                shapes = abstract_state
                if callable(abstract_state):
                    shapes = abstract_state(dict(self.manager.restore(step, args=ocp.args.Composite(
                        extra=ocp.args.JsonRestore()))["extra"]))
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(shapes),
                    extra=ocp.args.JsonRestore()))
                jax.block_until_ready(restored["state"])
                return step, restored["state"], dict(restored["extra"])
            except Exception as err:  # noqa: BLE001 - any failure to load means: try older
                self.unloadable.add(step)
                warnings.warn(f"checkpoint at step {step} did not load ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200]}); falling back to an older one",
                              stacklevel=2)
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
