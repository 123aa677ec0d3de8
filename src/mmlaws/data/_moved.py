"""The old import paths of the modules that moved to :mod:`mmlaws.corpora`, for one release.

Each old module is a few lines: its docstring names the new home, and :func:`forward` warns
(a :class:`DeprecationWarning`, when the old module is first imported) and serves every name
from the new modules. Nothing else in :mod:`mmlaws.data` imports :mod:`mmlaws.corpora`.
"""

from __future__ import annotations

import importlib
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
