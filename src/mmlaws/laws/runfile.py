"""Run files at the level of bytes and numbers: standard JSON lines with non-finite numbers
flagged (:func:`encode_line`, :func:`decode_line`), text that is not a binary file
(:func:`read_text`), and the check that a value read is a positive finite number
(:func:`positive`). The schema itself is :mod:`mmlaws.laws.records`'.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping

import numpy as np

from mmlaws.errors import DataError


def decode_line(line: str) -> dict | object:
    """One JSON line with its flagged non-finite places restored as NaN
    (:func:`restore_nonfinite`); ``json.JSONDecodeError`` when it is not JSON. Bare ``NaN``
    tokens (files written before the flag) are read as Python's ``json`` reads them."""
    obj = json.loads(line)
    return restore_nonfinite(obj) if isinstance(obj, dict) else obj


def read_text(path: pathlib.Path) -> str:
    """A file's text; :class:`DataError` for a folder, a binary or non-UTF-8 file."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if b"\x00" in data:
        raise DataError(f"{path}: a binary file (it holds NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}); a binary file?") from None


def number(value) -> float | None:
    """``value`` as a float when it is a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def positive(value, what: str, *, zero: bool = False) -> float:
    """``value`` as a float; :class:`DataError` starting with ``what`` unless it is a finite
    number > 0 (≥ 0 with ``zero``)."""
    x = number(value)
    if x is None:
        raise DataError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(x):
        raise DataError(f"{what} is {value!r}, not a finite number")
    if x < 0 or (x == 0 and not zero):
        raise DataError(f"{what} must be {'≥ 0' if zero else 'positive'}, got {value!r}")
    return x


def encode_line(obj: Mapping) -> str:
    """One schema line as standard JSON: non-finite numbers become ``null``, their JSON
    pointers listed under ``"nonfinite"``.

    >>> encode_line({"kind": "step", "loss": float("nan"), "loss_per_dataset": {"a": 2.0}})
    '{"kind": "step", "loss": null, "loss_per_dataset": {"a": 2.0}, "nonfinite": ["/loss"]}'
    """
    places: list[str] = []
    clean = _finite(obj, "", places)
    if places:
        clean["nonfinite"] = places
    return json.dumps(clean, allow_nan=False)


def _finite(v, pointer: str, places: list[str]):
    if isinstance(v, np.ndarray | np.generic):
        v = v.tolist()
    if isinstance(v, Mapping):
        return {k: _finite(x, f"{pointer}/{_escape(str(k))}", places) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x, f"{pointer}/{i}", places) for i, x in enumerate(v)]
    if isinstance(v, float) and not math.isfinite(v):
        places.append(pointer)
        return None
    if v is None or isinstance(v, str | int | float):
        return v
    raise TypeError(f"cannot write {type(v).__name__} to a run log")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def restore_nonfinite(obj: dict) -> dict:
    """Undoes :func:`encode_line` in place: each place listed under ``"nonfinite"`` becomes NaN
    (the key is removed). Returns ``obj``."""
    for pointer in obj.pop("nonfinite", None) or ():
        *path, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        node = obj
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node.get(key, {})
        if isinstance(node, list):
            node[int(last)] = float("nan")
        elif isinstance(node, dict) and last in node:
            node[last] = float("nan")
    return obj
