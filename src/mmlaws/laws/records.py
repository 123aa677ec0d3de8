"""The run-record schema that joins training and the law fitter, and readers for it.

One run writes one JSONL file (``<run_id>.jsonl``), one JSON object a line, flushed a line at a
time so that a run killed mid-write leaves at most its last line truncated. Every line has a
``"kind"``:

``header`` (first line, once)
    ``schema`` (int, :data:`SCHEMA_VERSION`), ``run_id`` (str), ``datasets`` (name → token share,
    shares sum to 1), ``modalities`` (dataset name → source modality, optional), ``N`` (int,
    parameters), ``N_convention`` (``"non_embedding"`` or ``"total"``), ``objective``
    (``"cm3"``/``"causal"``), ``config`` (free-form dict: preset, batch, LR …).
``step`` (per logged step)
    ``step``, ``tokens`` (total seen), ``tokens_per_dataset`` (name → tokens), ``loss`` (nats per
    token), ``loss_per_dataset``, ``loss_per_modality`` (name → nats), ``grad_norm``, ``lr``,
    optional ``tokens_per_s``, ``mfu``.
``eval`` (held-out evaluation)
    ``step``, ``tokens``, ``loss``, ``loss_per_dataset``, ``loss_per_modality``.
``event``
    ``step``, ``type`` (``"restart"``, ``"grad_spike"``, ``"nonfinite_loss"`` …), free-form fields.
``final`` (last line of a finished run)
    ``step``, ``tokens``, ``tokens_per_dataset``, ``loss``, ``loss_per_dataset``,
    ``loss_per_modality`` — the final held-out losses the laws are fitted on.

A plain CSV with columns N, D, loss (names configurable; D may come from a compute column as
C / 6N) is read into the same :class:`RunTable`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.errors import DataError

SCHEMA_VERSION = 1
KINDS = ("header", "step", "eval", "event", "final")
N_CONVENTIONS = ("non_embedding", "total")


@dataclasses.dataclass
class RunRecord:
    """Everything one run logged, parsed (see the module docstring for the fields)."""

    path: str
    header: dict
    steps: list[dict] = dataclasses.field(default_factory=list)
    evals: list[dict] = dataclasses.field(default_factory=list)
    events: list[dict] = dataclasses.field(default_factory=list)
    final: dict | None = None

    @property
    def run_id(self) -> str:
        return self.header["run_id"]

    @property
    def datasets(self) -> dict[str, float]:
        return dict(self.header["datasets"])

    @property
    def finished(self) -> bool:
        return self.final is not None

    def curve(self, key: str = "loss", *, kind: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """(tokens, values) of a logged series; ``key`` may be ``'loss_per_modality.speech'``."""
        rows = self.steps if kind == "step" else self.evals
        tok, val = [], []
        for r in rows:
            v = r
            for part in key.split("."):
                v = v.get(part) if isinstance(v, Mapping) else None
            if v is not None:
                tok.append(r["tokens"]), val.append(v)
        return np.asarray(tok, np.float64), np.asarray(val, np.float64)


@dataclasses.dataclass(frozen=True)
class RunTable:
    """Finished runs as columns: one row per run."""

    run_id: np.ndarray  # [R] str
    N: np.ndarray  # [R] parameters
    D: np.ndarray  # [R] total training tokens
    loss: np.ndarray  # [R] final loss
    datasets: tuple[tuple[str, ...], ...]  # [R] sorted dataset names
    tokens: tuple[dict[str, float], ...]  # [R] tokens per dataset
    losses: tuple[dict[str, float], ...]  # [R] final loss per dataset
    records: tuple[RunRecord, ...] = ()

    def __len__(self) -> int:
        return len(self.N)

    def select(self, datasets: Sequence[str]) -> RunTable:
        """The runs trained on exactly these datasets."""
        key = tuple(sorted(datasets))
        keep = [i for i, d in enumerate(self.datasets) if d == key]
        return self.take(keep)

    def take(self, idx) -> RunTable:
        """The rows at ``idx``, in that order."""
        idx = list(idx)
        pick = lambda seq: tuple(seq[i] for i in idx)
        return RunTable(self.run_id[idx], self.N[idx], self.D[idx], self.loss[idx],
                        pick(self.datasets), pick(self.tokens), pick(self.losses),
                        pick(self.records) if self.records else ())

    def dataset_sets(self) -> list[tuple[str, ...]]:
        return sorted(set(self.datasets), key=lambda d: (len(d), d))


# ----------------------------------------------------------------------------- JSONL
def read_run(path: str | pathlib.Path) -> RunRecord:
    """Parses one run's JSONL; a truncated *last* line is skipped with a warning."""
    path = pathlib.Path(path)
    lines = path.read_text().splitlines()
    rec: RunRecord | None = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: skipping truncated last line {i + 1}", stacklevel=2)
                break
            raise DataError(f"{path}:{i + 1}: not valid JSON ({err.msg})") from None
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind not in KINDS:
            raise DataError(f"{path}:{i + 1}: field 'kind' must be one of {KINDS}, got {kind!r}")
        if kind == "header":
            _check_header(obj, f"{path}:{i + 1}")
            rec = RunRecord(path=str(path), header=obj)
            continue
        if rec is None:
            raise DataError(f"{path}:{i + 1}: a '{kind}' line comes before the header")
        if kind == "final":
            rec.final = obj
        else:
            getattr(rec, kind + "s").append(obj)
    if rec is None:
        raise DataError(f"{path}: no header line; not a run record")
    return rec


def _check_header(h: dict, where: str) -> None:
    for field in ("run_id", "datasets", "N", "N_convention"):
        if field not in h:
            raise DataError(f"{where}: header lacks field '{field}'")
    if h.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise DataError(
            f"{where}: schema {h['schema']} is newer than this reader ({SCHEMA_VERSION})"
        )
    if h["N_convention"] not in N_CONVENTIONS:
        raise DataError(f"{where}: field 'N_convention' must be one of {N_CONVENTIONS}")
    shares = h["datasets"]
    if not isinstance(shares, dict) or not shares or abs(sum(shares.values()) - 1) > 1e-6:
        raise DataError(f"{where}: field 'datasets' must map names to shares summing to 1")


def read_runs(path: str | pathlib.Path, *, finished_only: bool = True, **csv_columns) -> RunTable:
    """A table of runs from a run log (``.jsonl``), a folder of them, or a CSV file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".csv":
        return read_csv(path, **csv_columns)
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: holds no .jsonl run logs")
    recs = [read_run(f) for f in files]
    unfinished = [r.path for r in recs if not r.finished]
    if unfinished and finished_only:
        warnings.warn(f"skipping {len(unfinished)} unfinished run(s): {unfinished[:3]}",
                      stacklevel=2)
        recs = [r for r in recs if r.finished]
    if not recs:
        raise DataError(f"{path}: no finished runs")
    return _table(recs)


def _table(recs: Sequence[RunRecord]) -> RunTable:
    ids = [r.run_id for r in recs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise DataError(f"duplicate run ids {sorted(dup)}")
    fin = [r.final or {} for r in recs]
    return RunTable(
        run_id=np.array(ids),
        N=np.array([float(r.header["N"]) for r in recs]),
        D=np.array([float(f.get("tokens", np.nan)) for f in fin]),
        loss=np.array([float(f.get("loss", np.nan)) for f in fin]),
        datasets=tuple(tuple(sorted(r.datasets)) for r in recs),
        tokens=tuple(dict(f.get("tokens_per_dataset", {})) for f in fin),
        losses=tuple(dict(f.get("loss_per_dataset", {})) for f in fin),
        records=tuple(recs),
    )


# ----------------------------------------------------------------------------- CSV
def read_csv(
    path: str | pathlib.Path, *, n_column: str = "N", d_column: str | None = "D",
    loss_column: str = "loss", flops_column: str | None = None, dataset: str = "data",
) -> RunTable:
    """Runs from a CSV with N, D and loss columns (or N, compute and loss: D = C / 6N)."""
    path = pathlib.Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        wanted = [n_column, loss_column] + ([flops_column] if flops_column else [d_column])
        missing = [c for c in wanted if c not in cols]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; it has {cols}")
        N, D, L = [], [], []
        for row_no, row in enumerate(reader, start=2):
            try:
                n, loss = float(row[n_column]), float(row[loss_column])
                d = float(row[flops_column]) / (6 * n) if flops_column else float(row[d_column])
            except (TypeError, ValueError):
                raise DataError(f"{path}: row {row_no}: non-numeric value in {wanted}") from None
            N.append(n), D.append(d), L.append(loss)
    if not N:
        raise DataError(f"{path}: no data rows")
    R = len(N)
    return RunTable(
        run_id=np.array([f"{path.stem}:{i + 2}" for i in range(R)]),
        N=np.array(N), D=np.array(D), loss=np.array(L),
        datasets=((dataset,),) * R,
        tokens=tuple({dataset: d} for d in D), losses=tuple({dataset: x} for x in L),
    )


def truncate_run_log(path: str | pathlib.Path, step: int) -> int:
    """Cuts a run log back to what a resume from ``step`` keeps: the header and every line of
    a step ≤ ``step``, no ``final`` line, and no truncated last line (a kill mid-write).
    Returns how many lines were dropped. The file is replaced atomically."""
    path = pathlib.Path(path)
    lines = path.read_text().splitlines(keepends=True)
    keep = []
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # a truncated last line
            raise DataError(f"{path}:{i + 1}: not valid JSON") from None
        kind = obj.get("kind")
        if kind == "header" or (kind != "final" and int(obj.get("step", 0)) <= step):
            keep.append(line if line.endswith("\n") else line + "\n")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(keep))
    tmp.replace(path)
    return len(lines) - len(keep)


# ----------------------------------------------------------------------------- writer
class RunLogWriter:
    """Appends schema lines to ``<folder>/<run_id>.jsonl``, flushing each line as it is written."""

    def __init__(self, folder: str | pathlib.Path, header: Mapping):
        header = {"kind": "header", "schema": SCHEMA_VERSION, **header}
        _check_header(header, "run header")
        self.path = pathlib.Path(folder) / f"{header['run_id']}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        resume = self.path.exists() and self.path.stat().st_size > 0
        self._fh = self.path.open("a")
        if not resume:
            self.write(header)

    def write(self, obj: Mapping) -> None:
        if obj.get("kind") not in KINDS:
            raise ValueError(f"run-log line needs 'kind' in {KINDS}, got {obj.get('kind')!r}")
        self._fh.write(json.dumps(obj, default=_jsonable) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RunLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot write {type(v).__name__} to a run log")
