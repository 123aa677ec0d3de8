"""One writer per output folder: an OS file lock held for the writer's life.

A training run (:func:`mmlaws.train.loop.train`) locks its output folder and the study engine
(:func:`mmlaws.study.engine.train_design`) its study folder, so that two processes never write
one run log or one set of checkpoints at once. The lock is ``flock`` on ``<folder>/.lock``,
which holds the holder's PID for the error message; the kernel drops it when the holder
exits, however it exits (SIGKILL included), so a stale lock file never blocks a resume.

    with FolderLock("outputs/run"):
        ...  # a second FolderLock("outputs/run") fails at once with FolderLocked
"""

from __future__ import annotations

import fcntl
import os

from mmlaws.errors import ConfigError, UserError

LOCK_FILE = ".lock"


class FolderLocked(UserError):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive, non-blocking lock on ``folder`` (created if missing), taken on
    construction and released by :meth:`release` (or on leaving a ``with`` block)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.path.abspath(os.fspath(folder))
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as err:  # a file in the way, no permission ...
            raise ConfigError(f"output folder {self.folder}: cannot create it "
                              f"({err.strerror or err})") from None
        self.path = os.path.join(self.folder, LOCK_FILE)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(self._fd)
            os.close(self._fd)
            self._fd = None
            raise FolderLocked(f"{self.folder} is in use by another process (PID {holder}, lock "
                               f"file {self.path}); wait for it to end or stop it") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> str:
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return text or "unknown"
