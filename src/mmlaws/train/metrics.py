"""Host-side metrics: losses and perplexities from the step's sums, throughput and MFU.

Per-modality and per-dataset losses are ``Σ w·xent / Σ w`` over the tokens of that modality
(by the target's vocabulary range) or dataset; a group with no weighted tokens is left out.
Perplexity is ``exp(loss)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmlaws.data.batch import MODALITIES
from mmlaws.model import mfu as model_mfu


def _ratio(num, den, names: Sequence[str]) -> dict[str, float]:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return {n: float(a / b) for n, a, b in zip(names, num, den, strict=True) if b > 0}


def summarize(sums: Mapping, dataset_names: Sequence[str]) -> dict:
    """The schema's loss fields from a step's (or an evaluation's) sums."""
    total = float(sums["loss_sum"]) / max(float(sums["weight_sum"]), 1.0)
    per_mod = _ratio(sums["modality_loss_sum"], sums["modality_weight_sum"], MODALITIES)
    per_ds = _ratio(sums["dataset_loss_sum"], sums["dataset_weight_sum"], dataset_names)
    return {
        "loss": total,
        "loss_per_dataset": per_ds,
        "loss_per_modality": per_mod,
        "ppl": float(np.exp(min(total, 80.0))),
        "ppl_per_dataset": {k: float(np.exp(min(v, 80.0))) for k, v in per_ds.items()},
        "ppl_per_modality": {k: float(np.exp(min(v, 80.0))) for k, v in per_mod.items()},
    }


def add_sums(a: Mapping | None, b: Mapping) -> dict:
    """Element-wise sum of two sums dicts (``a`` may be None)."""
    b = {k: np.asarray(v, np.float64) for k, v in b.items()}
    return b if a is None else {k: a[k] + b[k] for k in b}


def throughput(tokens: float, seconds: float, *, flops_per_token: float, num_devices: int,
               device_kind: str) -> dict:
    """tokens/s and MFU (None where the device's peak is not in the table)."""
    rate = tokens / seconds if seconds > 0 else 0.0
    return {"tokens_per_s": rate,
            "mfu": model_mfu(flops_per_token, rate, num_devices, device_kind)}
