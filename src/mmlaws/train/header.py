"""A run record's header (:mod:`mmlaws.laws.records`), the same whichever engine trained it.

N follows Hoffmann et al. (2022) and the paper: **total** parameters, embeddings included
(``N_convention: "total"``); the non-embedding count is recorded beside it
(``N_non_embedding``), and so is the model's training FLOPs per token at the run's sequence
length (``flops_per_token``, :func:`mmlaws.model.training_flops_per_token`), from which a
run's compute is its tokens times that (not 6·N·D).

A header also carries the run's full model configuration (``model_config``) and a
``fingerprint`` of what makes the run what it is (:func:`identity`: datasets and shares,
objective, N, model, optimizer recipe and budget, batch, seed …, not how it is computed: the
mesh, rematerialisation, the attention kernel). A run folder holds one run: resuming it with a
different identity is refused, naming the keys that differ (:func:`differences`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping

from mmlaws.model import ModelConfig, non_embedding_params, total_params
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.train.optimizer import Recipe


def run_header(*, run_id: str, shares: Mapping[str, float], config: ModelConfig, recipe: Recipe,
               model: str, objective: str, batch_tokens: int, sequence_length: int,
               modalities: Mapping[str, str] | None = None, **extra) -> dict:
    """The header fields of one run; ``extra`` goes into its ``config`` (seed, mesh …)."""
    header = {"run_id": run_id, "datasets": dict(shares), "modalities": dict(modalities or {}),
              "N": total_params(config), "N_convention": "total",
              "N_non_embedding": non_embedding_params(config),
              "flops_per_token": flops_per_token(config, sequence_length),
              "objective": objective,
              "config": {"model": model, **dataclasses.asdict(recipe), **extra,
                         "d_model": config.d_model, "num_layers": config.num_layers,
                         "vocab_size": config.vocab_size, "batch_tokens": batch_tokens,
                         "sequence_length": sequence_length},
              "model_config": dataclasses.asdict(config)}
    header["fingerprint"] = fingerprint(header)
    return header


# How a run is computed, not what it computes: these may change between its sessions.
NOT_IDENTITY = ("mesh", "remat", "scan_layers", "scan_unroll", "attention")
_SECTIONS = ("datasets", "objective", "N", "config", "model_config")


def identity(header: Mapping) -> dict:
    """What makes a run what it is, as ``{dotted key: value}`` (JSON values): the header's
    datasets, objective, N, config and model config, less :data:`NOT_IDENTITY`."""
    flat = _flatten({k: header[k] for k in _SECTIONS if k in header})
    flat = {k: v for k, v in flat.items() if not set(k.split(".")) & set(NOT_IDENTITY)}
    return json.loads(json.dumps(flat))


def fingerprint(header: Mapping) -> str:
    """16 hex digits of :func:`identity`."""
    text = json.dumps(identity(header), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Mapping, new: Mapping) -> list[str]:
    """``"key: old → new"`` for each identity key that differs between two headers. Sections
    one header lacks (written by an older version) are not compared, nor keys of one that the
    other lacks, except dataset names."""
    a, b = identity(old), identity(new)
    keys = sorted((a.keys() & b.keys()) | {k for k in a.keys() ^ b.keys()
                                           if k.startswith("datasets.")})
    missing = "(none)"
    return [f"{k}: {a.get(k, missing)} → {b.get(k, missing)}" for k in keys
            if a.get(k, missing) != b.get(k, missing)]


def _flatten(obj: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in obj.items():
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
