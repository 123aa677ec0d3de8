"""Where a gin file named on the command line is found.

In order: the path as given (relative to the working folder), the path under each
``--gin_search_path`` folder, then the configs shipped inside the package (the repository's
``configs/`` folder, installed as ``mmlaws.configs``), by their name there: ``quickstart.gin``,
``study/cpu_hour.gin`` (or ``configs/quickstart.gin``, as the README writes them). A local file
therefore always wins over a packaged one of the same name.
"""

from __future__ import annotations

import importlib.resources
import os
import pathlib
from collections.abc import Sequence

from mmlaws.errors import ConfigError

PACKAGE = "mmlaws.configs"
PREFIX = "configs/"


def packaged_dir() -> pathlib.Path | None:
    """The folder of the packaged configs, or None where mmlaws is not installed (a bare
    ``PYTHONPATH=src``) or installed without them."""
    try:
        root = pathlib.Path(str(importlib.resources.files(PACKAGE)))
    except (ModuleNotFoundError, TypeError):
        return None
    return root if root.is_dir() else None


def packaged_names() -> list[str]:
    """The packaged configs' names (``quickstart.gin``, ``study/cpu_hour.gin``, ...)."""
    root = packaged_dir()
    if root is None:
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.gin"))


def find(path: str, search_paths: Sequence[str] = (), *, flag: str = "--gin_file") -> str:
    """The file ``path`` names (see the module docstring); ``ConfigError`` naming ``flag`` when
    there is none."""
    if os.path.isfile(path):
        return path
    for folder in search_paths:
        if os.path.isfile(os.path.join(folder, path)):
            return os.path.join(folder, path)
    root = packaged_dir()
    name = path[len(PREFIX):] if path.startswith(PREFIX) else path
    if root is not None and (root / name).is_file():
        return str(root / name)
    known = ", ".join(packaged_names()) or "none: mmlaws is not installed"
    raise ConfigError(f"{flag}={path}: no such file, here or among the packaged configs "
                      f"({known})")


def include_root() -> str | None:
    """The folder against which the configs' own includes (``include 'configs/fit/csv.gin'``)
    resolve when no local ``configs/`` folder has them."""
    root = packaged_dir()
    return None if root is None else str(root.parent)
