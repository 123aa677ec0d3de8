"""The run log: schema lines (:mod:`mmlaws.laws.records`) to JSONL, mirrored to wandb and
TensorBoard.

The JSONL file is what the law fitter reads; the mirrors are for watching. :class:`Tracking`
(bound in gin as ``runlog.Tracking.<field>``) says which mirrors run and how wandb files the run:

- **wandb** runs online when the user is logged in (``WANDB_API_KEY``, an identity token file,
  or a ``.netrc`` entry for the wandb host: what ``wandb login`` writes) and offline otherwise,
  so no account is needed; ``WANDB_MODE`` overrides both (:func:`wandb_mode`; nothing here
  touches the network). Each output folder gets its own wandb run id, made once and kept in
  ``<output_dir>/wandb/mmlaws_run_id`` (:func:`wandb_run_id`): a resumed run continues its wandb
  run, and two studies whose runs share a name never merge.
- **TensorBoard** event files go to ``<output_dir>/tensorboard``
  (:mod:`mmlaws.train.tensorboard`, no TensorFlow), flushed at every write:
  ``tensorboard --logdir <study>/runs`` shows every run live.

Only process 0 writes.
"""

from __future__ import annotations

import dataclasses
import netrc
import os
import re
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

import jax

from mmlaws.laws.records import RunLogWriter
from mmlaws.train.tensorboard import EventWriter

WANDB_HOST = "https://api.wandb.ai"
RUN_ID_FILE = os.path.join("wandb", "mmlaws_run_id")
TENSORBOARD_DIR = "tensorboard"


@dataclasses.dataclass(frozen=True)
class Tracking:
    """Where a run's numbers are mirrored besides its JSONL record, and under which names.

    ``project``, ``entity`` (user or team; None: the account's default), ``group`` (a study
    groups its runs under one name), ``tags`` and ``name`` (the display name; None: the run id)
    are wandb's; ``tensorboard`` writes event files beside the record.
    """

    wandb: bool = True
    tensorboard: bool = True
    project: str = "mmlaws"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    name: str | None = None


def _logged_in(env: Mapping[str, str]) -> bool:
    """Whether wandb has a credential here (environment or netrc), checked without network."""
    if env.get("WANDB_API_KEY") or env.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    candidates = [env["NETRC"]] if env.get("NETRC") else ["~/.netrc", "~/_netrc"]
    host = urlsplit(env.get("WANDB_BASE_URL") or WANDB_HOST).netloc
    for path in candidates:
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            continue
        try:
            creds = netrc.netrc(path).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return False
        return bool(creds and creds[2])
    return False


def wandb_mode(env: Mapping[str, str] | None = None) -> str:
    """``WANDB_MODE`` when set; else ``online`` for a logged-in user, ``offline`` otherwise."""
    env = os.environ if env is None else env
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    return "online" if _logged_in(env) else "offline"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:48] or "run"


def wandb_run_id(folder: str, run_id: str) -> str:
    """The wandb id of the run in ``folder``: ``<run_id>-<8 random hex digits>``, made on the
    first call and read back from ``<folder>/wandb/mmlaws_run_id`` on the next ones."""
    path = os.path.join(folder, RUN_ID_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            stored = f.read().strip()
        if stored:
            return stored
    new = f"{_safe(run_id)}-{uuid.uuid4().hex[:8]}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(new + "\n")
    return new


def _flat(obj: Mapping, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in obj.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def scalars(obj: Mapping) -> dict[str, float]:
    """The numbers of one schema line as mirror scalars: a step line's fields by name
    (``loss``, ``loss_per_dataset/code``), eval and final lines under ``eval/``, ``final/``,
    an event as ``event/<type>`` = 1; header lines give none."""
    kind = obj["kind"]
    if kind == "event":
        return {f"event/{obj['type']}": 1}
    if kind not in ("step", "eval", "final"):
        return {}
    prefix = "" if kind == "step" else kind + "/"
    return _flat({k: v for k, v in obj.items() if k not in ("kind", "step")}, prefix)


class RunLog:
    """``write({...})`` appends one schema line (flushed) and mirrors its numbers."""

    def __init__(self, folder: str, header: Mapping, *, tracking: Tracking = Tracking()):
        self.active = jax.process_index() == 0
        self.path = os.path.join(folder, f"{header['run_id']}.jsonl")
        self.writer = RunLogWriter(folder, header) if self.active else None
        self.wandb = self.tensorboard = None
        if not self.active:
            return
        if tracking.wandb:
            self.wandb = _start_wandb(folder, header, tracking)
        if tracking.tensorboard:
            self.tensorboard = EventWriter(os.path.join(folder, TENSORBOARD_DIR))

    def write(self, obj: Mapping) -> None:
        if not self.active:
            return
        self.writer.write(obj)
        values = scalars(obj)
        if not values:
            return
        step = int(obj["step"])
        if self.wandb is not None:
            self.wandb.log(values, step=step)
        if self.tensorboard is not None:
            self.tensorboard.scalars(step, values)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _start_wandb(folder: str, header: Mapping, tracking: Tracking):
    import wandb

    mode = wandb_mode()
    # Logged in: wandb's own default (online unless `wandb offline` was run here).
    return wandb.init(
        project=tracking.project, entity=tracking.entity, group=tracking.group,
        tags=list(tracking.tags) or None, name=tracking.name or header["run_id"],
        id=wandb_run_id(folder, header["run_id"]), dir=folder, config=dict(header),
        resume="allow", mode=None if mode == "online" else mode,
        settings=wandb.Settings(silent=True))
