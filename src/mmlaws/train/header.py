"""A run record's header (:mod:`mmlaws.laws.records`), the same whichever engine trained it.

N follows Hoffmann et al. (2022) and the paper: **total** parameters, embeddings included
(``N_convention: "total"``); the non-embedding count is recorded beside it
(``N_non_embedding``), and so is the model's training FLOPs per token at the run's sequence
length (``flops_per_token``, :func:`mmlaws.model.training_flops_per_token`), from which a
run's compute is its tokens times that (not 6·N·D).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from mmlaws.model import ModelConfig, non_embedding_params, total_params
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.train.optimizer import Recipe


def run_header(*, run_id: str, shares: Mapping[str, float], config: ModelConfig, recipe: Recipe,
               model: str, objective: str, batch_tokens: int, sequence_length: int,
               modalities: Mapping[str, str] | None = None, **extra) -> dict:
    """The header fields of one run; ``extra`` goes into its ``config`` (seed, mesh …)."""
    return {"run_id": run_id, "datasets": dict(shares), "modalities": dict(modalities or {}),
            "N": total_params(config), "N_convention": "total",
            "N_non_embedding": non_embedding_params(config),
            "flops_per_token": flops_per_token(config, sequence_length),
            "objective": objective,
            "config": {"model": model, **dataclasses.asdict(recipe), **extra,
                       "d_model": config.d_model, "num_layers": config.num_layers,
                       "vocab_size": config.vocab_size, "batch_tokens": batch_tokens}}
