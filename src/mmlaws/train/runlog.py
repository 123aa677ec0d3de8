"""The run log: schema lines (:mod:`mmlaws.laws.records`) to JSONL, mirrored to wandb.

wandb runs offline unless the user has set ``WANDB_MODE`` (for example to ``online`` after
``wandb login``); no account is needed, and the JSONL file is what the law fitter reads.
Only process 0 writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax

from mmlaws.laws.records import RunLogWriter


def _flat(obj: Mapping, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in obj.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


class RunLog:
    """``write({...})`` appends one schema line (flushed) and logs its numbers to wandb."""

    def __init__(self, folder: str, header: Mapping, *, use_wandb: bool = True):
        self.active = jax.process_index() == 0
        self.path = os.path.join(folder, f"{header['run_id']}.jsonl")
        self.writer = RunLogWriter(folder, header) if self.active else None
        self.wandb = None
        if self.active and use_wandb:
            import wandb

            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            self.wandb = wandb.init(project="mmlaws", id=header["run_id"], name=header["run_id"],
                                    dir=folder, config=dict(header), resume="allow")

    def write(self, obj: Mapping) -> None:
        if not self.active:
            return
        self.writer.write(obj)
        if self.wandb is not None and obj["kind"] in ("step", "eval", "final", "event"):
            prefix = "" if obj["kind"] == "step" else obj["kind"] + "/"
            values = _flat({k: v for k, v in obj.items() if k not in ("kind", "step")}, prefix)
            if obj["kind"] == "event":
                values = {f"event/{obj['type']}": 1}
            self.wandb.log(values, step=int(obj["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
