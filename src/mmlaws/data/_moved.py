"""Deprecated import paths: the modules that moved to :mod:`mmlaws.corpora`, for one release.

Each old module is a few lines: its docstring names the new home, and :func:`forward` warns
(a :class:`DeprecationWarning`, when the old module is first imported) and serves every name
from the new modules; the old modules' builders also accept the old keyword-only call
(:func:`old_call`). Nothing else in :mod:`mmlaws.data` imports :mod:`mmlaws.corpora`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import warnings
from collections.abc import Callable


def moved(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that module ``old`` is now ``new`` (``stacklevel`` 3: the line importing ``old``)."""
    warnings.warn(
        f"{old} has moved to {new}; the old path goes away in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def forward(old: str, *new: str) -> Callable[[str], object]:
    """Warn, then a module ``__getattr__`` for ``old`` that looks names up in ``new``, in order."""
    where = " and ".join(new)
    moved(old, where, stacklevel=4)

    def __getattr__(name: str):
        for module in map(importlib.import_module, new):  # imported on first use
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (moved to {where})")

    return __getattr__


def old_call(build: Callable) -> Callable:
    """``build(options, ...)`` made callable the old way too, with keyword arguments only.

    The builders now take a :class:`~mmlaws.corpora.build.BuildOptions` (and their own options
    dataclass, e.g. ``image: ImageOptions``); the old call spelt every field as a keyword
    (``build_text(data_dir=..., layout=..., offline=True, tokenizer=bpe)``). Called without a
    ``BuildOptions``, the keywords that are fields of ``BuildOptions`` or of the builder's own
    options make those, the rest pass through, and a :class:`DeprecationWarning` says so.
    """
    from mmlaws.corpora.build import BuildOptions

    own = {
        name: p.default
        for name, p in inspect.signature(build).parameters.items()
        if dataclasses.is_dataclass(p.default)
    }

    def take(kwargs: dict, cls) -> dict:
        return {f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls) if f.name in kwargs}

    @functools.wraps(build)
    def call(*args, **kwargs):
        if any(isinstance(a, BuildOptions) for a in args) or "options" in kwargs:
            return build(*args, **kwargs)
        warnings.warn(
            f"{build.__module__}.{build.__name__} takes a BuildOptions now; keyword arguments "
            "go away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        options = BuildOptions(**take(kwargs, BuildOptions))
        for name, default in own.items():
            if fields := take(kwargs, type(default)):
                kwargs[name] = dataclasses.replace(default, **fields)
        return build(*args, options, **kwargs)

    return call
