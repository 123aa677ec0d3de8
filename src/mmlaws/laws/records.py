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

A log is the run, each step once: its step numbers increase, except right after a
``restart`` event (§4.5: the run goes back to the checkpoint at ``from_step``, so the steps after
it are logged again); a resumed run first cuts its log back to the checkpoint it resumes from
(:func:`truncate_run_log`). :func:`read_run` refuses a step that repeats or goes back without a
restart, a second header, a second final line and lines after the final one, naming file and line.

The files are standard JSON: a non-finite number is written as ``null`` and its place listed in
the line's ``"nonfinite"`` key as JSON pointers (``{"loss": null, "nonfinite": ["/loss"]}``);
the readers give it back as NaN.

A plain CSV with columns N, D, loss (names configurable; D may come from a compute column as
C / 6N) is read into the same :class:`RunTable`.

**Values are checked when read.** :func:`read_runs` and :func:`read_csv` raise
:class:`~mmlaws.errors.DataError` naming the file, the row (CSV: counted from 1, the header
being row 1) or line, the run and the field for a value that is not a number, not finite, or
not positive (N, D or tokens, loss; per-dataset tokens may be 0). The CSV policy: every row has
as many cells as the header (extra cells are an error, extra *columns* are fine), a binary or
empty file is refused, and a row equal to an earlier one in N, D and loss is refused as a
duplicate (repeated runs of another seed have another loss and are kept).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import pathlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.errors import DataError
from mmlaws.laws.runfile import decode_line, encode_line, number, positive, read_text

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
    header_line: int = 1  # where the header and the final line are in the file (from 1)
    final_line: int | None = None

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
    """Parses one run's JSONL; a truncated *last* line is skipped with a warning. Raises
    :class:`DataError` naming file and line for anything else that is not one run's log (see
    the module docstring)."""
    path = pathlib.Path(path)
    lines = read_text(path).splitlines()
    rec: RunRecord | None = None
    last = (0, 0)  # (step, line) of the last step line; a restart lowers the step
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}:{i + 1}"
        try:
            obj = decode_line(line)
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: skipping truncated last line {i + 1}", stacklevel=2)
                break
            raise DataError(f"{where}: not valid JSON ({err.msg})") from None
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind not in KINDS:
            raise DataError(f"{where}: field 'kind' must be one of {KINDS}, got {kind!r}")
        if rec is not None and kind == "header":
            raise DataError(f"{where}: a second header (the first is line {rec.header_line}): "
                            f"two runs written into one log?")
        if rec is not None and rec.final is not None:
            raise DataError(f"{where}: a '{kind}' line after the final line {rec.final_line}: "
                            f"two runs written into one log?")
        if kind == "header":
            _check_header(obj, where)
            rec = RunRecord(path=str(path), header=obj, header_line=i + 1)
            continue
        if rec is None:
            raise DataError(f"{where}: a '{kind}' line comes before the header")
        if kind == "step":
            last = _next_step(obj, last, i + 1, where)
        elif kind == "event" and obj.get("type") == "restart":
            last = (_integer(obj.get("from_step"), f"{where}: field 'from_step'"), last[1])
        if kind == "final":
            rec.final, rec.final_line = obj, i + 1
        else:
            getattr(rec, kind + "s").append(obj)
    if rec is None:
        raise DataError(f"{path}: no header line; not a run record")
    return rec


def _next_step(obj: dict, last: tuple[int, int], line: int, where: str) -> tuple[int, int]:
    step = _integer(obj.get("step"), f"{where}: field 'step'")
    if step <= last[0]:
        raise DataError(f"{where}: step {step} comes again after step {last[0]} (line "
                        f"{last[1]}) with no restart event; a run log holds each step once")
    return step, line


def _integer(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{what} must be an integer, got {value!r}")
    return value


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
    if (not isinstance(shares, dict) or not shares
            or not all(number(v) is not None and v > 0 for v in shares.values())
            or abs(sum(shares.values()) - 1) > 1e-6):
        raise DataError(f"{where}: field 'datasets' must map names to positive shares summing "
                        f"to 1, got {shares!r}")
    positive(h["N"], f"{where}: run {h['run_id']!r}: field 'N'")


def read_runs(path: str | pathlib.Path, *, finished_only: bool = True, **csv_columns) -> RunTable:
    """A table of runs from a run log (``.jsonl``), a folder of them, or a CSV file. Every
    value the fitter uses is checked (see the module docstring)."""
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


def _final_values(rec: RunRecord) -> tuple[float, float]:
    """(tokens, loss) of a finished run's final line, every number the fitter reads checked."""
    final = rec.final
    where = f"{rec.path}:{rec.final_line}: run {rec.run_id!r}: final line"
    for field in ("tokens", "loss"):
        if field not in final:
            raise DataError(f"{where} lacks field '{field}'")
    for field, zero in (("tokens_per_dataset", True), ("loss_per_dataset", False)):
        values = final.get(field, {})
        if not isinstance(values, dict):
            raise DataError(f"{where}: field '{field}' must map dataset names to numbers")
        for name, v in values.items():
            positive(v, f"{where}: field '{field}.{name}'", zero=zero)
    return (positive(final["tokens"], f"{where}: field 'tokens'"),
            positive(final["loss"], f"{where}: field 'loss'"))


def _table(recs: Sequence[RunRecord]) -> RunTable:
    ids = [r.run_id for r in recs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        paths = [r.path for r in recs if r.run_id in dup]
        raise DataError(f"duplicate run ids {sorted(dup)} ({paths[:4]})")
    conventions = {r.header["N_convention"]: r for r in recs}
    if len(conventions) > 1:
        named = ", ".join(f"{c} ({r.path})" for c, r in sorted(conventions.items()))
        raise DataError(f"run records count N two ways: {named}; one table needs one "
                        "convention (a law fitted across both mixes model sizes)")
    fin = [r.final or {} for r in recs]
    values = [_final_values(r) if r.final is not None else (np.nan, np.nan) for r in recs]
    return RunTable(
        run_id=np.array(ids),
        N=np.array([float(r.header["N"]) for r in recs]),
        D=np.array([v[0] for v in values], np.float64),
        loss=np.array([v[1] for v in values], np.float64),
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
    """Runs from a CSV with N, D and loss columns (or N, compute and loss: D = C / 6N); every
    value checked, rows named as a user counts them (see the module docstring)."""
    path = pathlib.Path(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    cols = next(reader, None)
    if not cols or not any(c.strip() for c in cols):
        raise DataError(f"{path}: empty file; expected a header row with N, D and loss columns")
    wanted = [n_column, loss_column] + ([flops_column] if flops_column else [d_column])
    missing = [c for c in wanted if c not in cols]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; it has {cols}")
    twice = sorted({c for c in wanted if cols.count(c) > 1})
    if twice:
        raise DataError(f"{path}: column(s) {twice} appear more than once in the header")
    index = {c: cols.index(c) for c in wanted}
    N, D, L, rows, seen = [], [], [], [], {}
    for row in reader:
        if not row:
            continue  # a blank line
        row_no = reader.line_num
        if len(row) != len(cols):
            what = "extra cells" if len(row) > len(cols) else "missing cells"
            raise DataError(f"{path}: row {row_no}: {len(row)} cells, the header has "
                            f"{len(cols)} ({what})")
        v = {c: _cell(row[index[c]], f"{path}: row {row_no}, column {c!r}") for c in wanted}
        n, loss = v[n_column], v[loss_column]
        d = v[flops_column] / (6 * n) if flops_column else v[d_column]
        if (n, d, loss) in seen:
            raise DataError(f"{path}: row {row_no} repeats row {seen[n, d, loss]} (same N, D and "
                            f"loss): a duplicated run? remove one")
        seen[n, d, loss] = row_no
        N.append(n), D.append(d), L.append(loss), rows.append(row_no)
    if not N:
        raise DataError(f"{path}: no data rows (only the header)")
    R = len(N)
    return RunTable(
        run_id=np.array([f"{path.stem}:{r}" for r in rows]),
        N=np.array(N), D=np.array(D), loss=np.array(L),
        datasets=((dataset,),) * R,
        tokens=tuple({dataset: d} for d in D), losses=tuple({dataset: x} for x in L),
    )


def _cell(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{what}: {text.strip()!r} is not a number") from None
    return positive(value, what)


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
        self._fh.write(encode_line(obj) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RunLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
