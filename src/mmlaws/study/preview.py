"""A study's dry run: what it would train, what data it needs, and what each model's step needs.

:func:`preview` builds and trains nothing. It prints

- the run list: run id, role, datasets, model, N (total parameters, the paper's convention),
  tokens, batch rows, steps, micro-batches, remat and, for a SLURM sweep with a
  ``time_limit``, the hours each run takes at the stated utilisation (:func:`run_seconds`);
- the training tokens each dataset must hold so that no run reads it twice
  (:func:`~mmlaws.study.design.tokens_needed`), the tokens it holds when it is already built
  under the data folder, and the epochs that implies (§4.5 trains one);
- with ``plan_memory``, each model's per-device memory for one optimizer step on ``devices``
  devices of ``device_gb`` (:mod:`mmlaws.train.memory`, in a subprocess that simulates the
  devices on this host's CPU; the fused attention kernels are planned with their stand-in).

It returns the same as a dict (``runs``, ``datasets``, ``memory``), which tests read.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping

from mmlaws.data import shards
from mmlaws.data.vocab import resolve_layout
from mmlaws.errors import ConfigError, DataError
from mmlaws.model import ModelConfig, peak_flops, total_params
from mmlaws.model import training_flops_per_token as flops_per_token
from mmlaws.study import design as design_lib
from mmlaws.study.settings import DataBuild, Design, RunSettings, SweepSettings


def run_seconds(config: ModelConfig, tokens: float, sequence_length: int, *, mfu: float,
                device: str, devices: int) -> float:
    """Seconds to train ``tokens`` at ``mfu`` of ``devices`` × the peak of ``device`` (a
    :data:`mmlaws.model.PEAK_BF16_FLOPS` key, e.g. ``"h100"``): the run's FLOPs
    (:func:`mmlaws.model.training_flops_per_token`, full attention) over the rate."""
    peak = peak_flops(device)
    if peak is None or not 0 < mfu <= 1 or devices < 1:
        raise ConfigError(f"time_limit: device={device!r} (known: h100, a100, tpu v4, …), "
                          f"mfu={mfu} in (0, 1] and devices={devices} >= 1 are needed")
    return tokens * flops_per_token(config, sequence_length) / (mfu * peak * devices)


def time_limits(runs: Mapping[str, Mapping], design: Design, layout: str, sequence_length: int,
                limit: Mapping) -> dict[str, float]:
    """``{run_id: seconds}``: each run's time at the stated MFU × ``margin`` (default 1.25)."""
    settings = {k: v for k, v in limit.items() if k in ("mfu", "device", "devices")}
    margin = float(limit.get("margin", 1.25))
    config = design_lib.model_config
    return {rid: margin * run_seconds(config(design, r["model"], layout), r["tokens"],
                                      sequence_length, **settings)
            for rid, r in runs.items()}


def built_tokens(data_dir: str, names) -> dict[str, float]:
    """Training tokens of each dataset already built under ``data_dir`` (others are absent)."""
    out = {}
    for name in names:
        try:
            out[name] = float(shards.read_stats(data_dir, name)["splits"]["train"]["tokens"])
        except (DataError, KeyError):
            continue
    return out


def mesh_for(mesh: Mapping[str, int], devices: int) -> dict[str, int]:
    """The run's mesh (``{"fsdp": -1}``) on ``devices`` devices, the −1 axis resolved."""
    known = math.prod(v for v in mesh.values() if v != -1)
    return {k: (devices // known if v == -1 else v) for k, v in mesh.items()}


def plan_model_memory(config_spec: Mapping, *, preset: str, mesh: Mapping[str, int], batch: int,
                      micro_batches: int, sequence_length: int, layout: str,
                      device_gb: float) -> dict:
    """One model's step memory from ``python -m mmlaws.train.memory`` (its own process, so it
    can simulate the mesh's devices): the plan's fields as a dict."""
    spec = dict(config_spec)
    remat, attention = spec.pop("remat", "none"), spec.pop("attention", "auto")
    cmd = [sys.executable, "-m", "mmlaws.train.memory", "--preset", preset,
           "--mesh", ",".join(f"{k}={v}" for k, v in mesh.items()), "--batch", str(batch),
           "--micro_batches", str(micro_batches), "--seq", str(sequence_length),
           "--device_gb", str(device_gb), "--remat", remat, "--attention", attention,
           "--layout", layout, "--overrides", json.dumps(spec), "--json"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise ConfigError(f"memory plan of {preset} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def preview(design: Design, data: DataBuild, run: RunSettings, sweep: SweepSettings, *,
            log=print) -> dict:
    """Print (and return) the dry run of a study: runs, data needed, memory per model."""
    seq = run.sequence_length
    runs = design_lib.plan(design, batch_size=run.batch_size, sequence_length=seq,
                           warmup_steps=run.warmup_steps, layout=data.layout)
    hours = ({} if not sweep.time_limit else
             {k: v / 3600 for k, v in time_limits(runs, design, data.layout, seq,
                                                  sweep.time_limit).items()})
    micro = run.extra_bindings.get("MICRO_BATCHES", 1)
    n_law = sum(r["role"] == "law" for r in runs.values())
    pairs = len(design_lib.dataset_sets(design)) - len(design.datasets)
    log(f"mmlaws study (dry run): {len(runs)} runs, {n_law} for the laws, over "
        f"{len(design.datasets)} datasets and {pairs} sets of several")
    log(f"{'run':44s} {'role':7s} {'model':6s} {'N':>9s} {'tokens':>7s} {'batch':>5s} "
        f"{'steps':>7s} {'micro':>5s} {'remat':19s}{' hours' if hours else ''}")
    for rid, r in runs.items():
        config = design_lib.model_config(design, r["model"], data.layout)
        r["N"] = total_params(config)
        r["micro_batches"] = r["bindings"].get("MICRO_BATCHES", micro)
        log(f"{rid:44s} {r['role']:7s} {r['model']:6s} {r['N'] / 1e6:8.1f}M "
            f"{design_lib.tokens_label(r['tokens']):>7s} {r['batch']:5d} {r['steps']:7d} "
            f"{r['micro_batches']:5d} {config.remat:19s}"
            + (f" {hours[rid]:6.1f}" if hours else ""))
    if hours:
        log(f"GPU-hours in all at the stated MFU: "
            f"{sum(hours.values()) * sweep.time_limit['devices']:,.0f}")
    needed = design_lib.tokens_needed(runs)
    have = built_tokens(data.data_dir, needed)
    datasets = {}
    log(f"recipe: warm-up {run.warmup_steps} updates, {run.batch_size} rows x {seq} = "
        f"{run.batch_size * seq / 2**20:.3g}M tokens per update, peak learning rate "
        f"{'per Table 2 row' if run.peak_lr is None else run.peak_lr}")
    log(f"{'dataset':12s} {'tokens needed':>14s} {'built':>10s} {'epochs':>7s} "
        f"{'epochs at DataBuild.tokens':>27s}")
    for d, n in needed.items():
        e = n / have[d] if d in have else None
        datasets[d] = {"tokens_needed": n, "tokens_built": have.get(d), "epochs": e,
                       "epochs_at_build_cap": n / data.tokens}
        log(f"{d:12s} {design_lib.tokens_label(n):>14s} "
            f"{design_lib.tokens_label(have[d]) if d in have else 'not built':>10s} "
            f"{'?' if e is None else f'{e:.2f}':>7s} {n / data.tokens:27.2f}")
    log(f"(data: {data.tokens:.3g} tokens kept per dataset when built; max_epochs "
        f"{data.max_epochs})")
    images = image_tokens(data) if {"images", "image_text"} & set(design.datasets) else None
    if images:
        log(f"images: {images['size']} px, {images['tokenizer']} tokenizer of "
            f"{images['codes']} codes: {images['codes_per_image']} codes per image "
            f"(+ <image> and </image>)")
    memory = {}
    if sweep.plan_memory:
        mesh = mesh_for(run.extra_bindings.get("MESH", {"data": -1}), sweep.devices)
        for model in design.models:
            spec = {k: v for k, v in {**design.model_defaults, **design.models[model]}.items()
                    if k not in design_lib.NOT_CONFIG}
            preset = {**design.model_defaults, **design.models[model]}.get(
                "preset", design.base_model)
            rows = {**design.model_defaults, **design.models[model]}.get("micro_batch_rows")
            mb = run.batch_size // rows if rows else micro
            plan = plan_model_memory(spec, preset=preset, mesh=mesh, batch=run.batch_size,
                                     micro_batches=mb, sequence_length=seq, layout=data.layout,
                                     device_gb=sweep.device_gb)
            memory[model] = plan
            log(f"memory {model:6s} on {mesh} ({run.batch_size} rows in {mb} micro-batches, "
                f"remat {plan['remat']}, attention planned as {plan['attention']}): "
                f"{plan['peak'] / 1e9:.1f} GB per device of {sweep.device_gb:.0f} — "
                f"{'fits' if plan['fits'] else 'does NOT fit'}")
    return {"runs": runs, "datasets": datasets, "memory": memory, "images": images}


def image_tokens(data: DataBuild) -> dict:
    """Size, tokenizer, codebook and codes per image that the image builders will use."""
    from mmlaws.corpora.images import ImageOptions, tokens_per_image

    options = ImageOptions(**(data.image or {}))
    return {"size": options.size, "tokenizer": options.tokenizer,
            "codes": resolve_layout(data.layout).image_codes,
            "codes_per_image": tokens_per_image(options.size) - 2}
