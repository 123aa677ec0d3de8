"""Memory planner: compiled per-device memory of the train step, from XLA, allocating nothing.

:func:`compile_step` lowers the real train step (:mod:`mmlaws.train.step`) from abstract
(ShapeDtypeStruct) state and batch with their shardings and compiles it; the planner and the
compile benchmark use it. XLA's memory analysis of the executable then gives, per device,
the bytes of the arguments (parameters, optimizer state, batch), the outputs, the buffers they
share (the donated state) and the temporaries (activations, gradients). Their sum less the
aliased bytes is the peak the step needs. Compiled for the host backend, the figure follows the host
compiler's buffer assignment; it is a plan, not a measurement on the target accelerator.

The model's vocabulary is the layout's (:data:`mmlaws.data.vocab.PAPER` by default: 2^16
ids, the vocabulary of the Table 2 presets), as in training. ``attention`` is the kernel the run
will use; a host without it (a CPU planning for a GPU or TPU) compiles the ``chunked`` kernel in
place of ``cudnn``, ``splash`` or ``auto``, which keeps no ``T × T`` tensor either, and the
plan says so (:attr:`MemoryPlan.attention`).

:func:`cheapest_remat` tries the remat policies from least to most recomputation
(:data:`mmlaws.model.remat.ORDER`) and returns the first whose step fits.

Command line (simulates the devices on CPU)::

    python -m mmlaws.train.memory --preset 30B --mesh fsdp=8,tensor=8 --batch 8 --seq 2048 \\
        --device_gb 80 --remat full
    python -m mmlaws.train.memory --preset 1.3B --mesh fsdp=8 --batch 64 --remat cheapest
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

import jax

from mmlaws.data.batch import DTYPES, FIELDS
from mmlaws.data.vocab import VocabLayout, resolve_layout
from mmlaws.errors import ConfigError
from mmlaws.model import PRESETS, batch_sharding, make_mesh, use_mesh
from mmlaws.model import remat as remat_lib
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import StateSetup, state_setup
from mmlaws.train.step import jit_steps

GB = 1e9


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Per-device bytes of one compiled train step."""

    arguments: int
    outputs: int
    aliased: int
    temporaries: int
    device_bytes: float
    remat: str = ""
    attention: str = ""

    @property
    def peak(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries

    @property
    def fits(self) -> bool:
        return self.peak <= self.device_bytes

    def summary(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        how = f"remat {self.remat}, attention {self.attention}: " if self.remat else ""
        return (f"{how}per device: {self.peak / GB:.2f} GB (arguments {self.arguments / GB:.2f}, "
                f"outputs {self.outputs / GB:.2f}, aliased {self.aliased / GB:.2f}, temporaries "
                f"{self.temporaries / GB:.2f}) — {verdict} in {self.device_bytes / GB:.0f} GB")


def compile_step(setup: StateSetup, *, batch_size: int, sequence_length: int,
                 layout: VocabLayout, num_datasets: int = 2, micro_batches: int = 1):
    """The train step of ``setup`` lowered and compiled for a ``[batch_size, sequence_length]``
    batch from ShapeDtypeStructs (nothing allocated): a ``jax.stages.Compiled``."""
    train, _ = jit_steps(setup, vocab=layout, num_datasets=num_datasets,
                         micro_batches=micro_batches)
    b_sh = batch_sharding(setup.mesh)
    batch = {k: jax.ShapeDtypeStruct((batch_size, sequence_length), DTYPES[k], sharding=b_sh)
             for k in FIELDS}
    rng = jax.eval_shape(lambda: jax.random.key(0))
    with use_mesh(setup.mesh):
        return train.lower(setup.shapes, batch, rng, setup.recipe.schedule_values()).compile()


def compiled_attention(attention: str) -> str:
    """The kernel the planner compiles for a run using ``attention``: on a host without the
    fused kernels, ``chunked`` stands in for them (same memory: no ``T × T`` tensor)."""
    if jax.default_backend() == "cpu" and attention in ("auto", "cudnn", "splash"):
        return "chunked"
    return attention


def plan_memory(preset: str, mesh_shape: dict, *, batch: int, sequence_length: int,
                device_gb: float, micro_batches: int = 1, dtype: str = "bfloat16",
                remat: str = "full", layout: str | VocabLayout = "paper",
                attention: str = "auto", overrides: dict | None = None) -> MemoryPlan:
    """Compile the train step of ``preset`` (vocabulary: ``layout``'s size; ``overrides``: more
    :class:`~mmlaws.model.ModelConfig` fields) for a ``[batch, sequence_length]`` batch on
    ``mesh_shape`` (over the devices present) and report its per-device memory against
    ``device_gb``."""
    layout = resolve_layout(layout)
    kernel = compiled_attention(attention)
    config = PRESETS[preset].replace(dtype=dtype, remat=remat, vocab_size=layout.size,
                                     max_len=max(sequence_length, PRESETS[preset].max_len),
                                     attention=kernel, **(overrides or {}))
    setup = state_setup(config, Recipe(1e-4, 1000), make_mesh(mesh_shape))
    compiled = compile_step(setup, batch_size=batch, sequence_length=sequence_length,
                            layout=layout, micro_batches=micro_batches)
    m = compiled.memory_analysis()
    return MemoryPlan(arguments=m.argument_size_in_bytes, outputs=m.output_size_in_bytes,
                      aliased=m.alias_size_in_bytes, temporaries=m.temp_size_in_bytes,
                      device_bytes=device_gb * GB, remat=remat, attention=kernel)


def cheapest_remat(preset: str, mesh_shape: dict, *, headroom: float = 0.9, log=None,
                   **kwargs) -> tuple[str, MemoryPlan]:
    """The first policy of :data:`~mmlaws.model.remat.ORDER` (least recomputation first) whose
    step needs at most ``headroom`` × the device's memory, and its plan; ``kwargs`` as for
    :func:`plan_memory` (without ``remat``). Raises :class:`ConfigError` when none fits."""
    plans = []
    for policy in remat_lib.ORDER:
        plan = plan_memory(preset, mesh_shape, remat=policy, **kwargs)
        plans.append(plan)
        if log:
            log(f"  {preset}: {plan.summary()}")
        if plan.peak <= headroom * plan.device_bytes:
            return policy, plan
    raise ConfigError(f"{preset} on {mesh_shape} with {kwargs}: no remat policy fits "
                      f"(full remat needs {plans[-1].peak / GB:.1f} GB per device); use more "
                      "micro-batches or more devices")


def _mesh_arg(text: str) -> dict:
    return {k: int(v) for k, v in (part.split("=") for part in text.split(","))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Per-device memory of a preset's train step.")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--mesh", type=_mesh_arg, required=True, help="e.g. fsdp=8,tensor=8")
    parser.add_argument("--batch", type=int, required=True, help="rows per (micro-)batch step")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--micro_batches", type=int, default=1)
    parser.add_argument("--device_gb", type=float, default=80.0)
    parser.add_argument("--remat", default="full",
                        help="a policy of mmlaws.model.remat, or 'cheapest' (the first that fits)")
    parser.add_argument("--attention", default="auto", help="the kernel the run will use")
    parser.add_argument("--layout", default="paper", help="vocabulary layout (tiny … paper)")
    parser.add_argument("--overrides", type=json.loads, default=None,
                        help='more model config fields, as JSON: \'{"dropout_impl": "hash"}\'')
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON line")
    args = parser.parse_args(argv)
    devices = math.prod(args.mesh.values())  # set before JAX starts its backend
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={devices}")
    kwargs = dict(batch=args.batch, sequence_length=args.seq, device_gb=args.device_gb,
                  micro_batches=args.micro_batches, layout=args.layout, attention=args.attention,
                  overrides=args.overrides)
    if args.remat == "cheapest":
        _, plan = cheapest_remat(args.preset, args.mesh, log=print, **kwargs)
    else:
        plan = plan_memory(args.preset, args.mesh, remat=args.remat, **kwargs)
    if args.json:
        print(json.dumps({**dataclasses.asdict(plan), "peak": plan.peak, "fits": plan.fits}))
    else:
        print(f"{args.preset} on {args.mesh}, batch {args.batch}×{args.seq}: {plan.summary()}")
    sys.exit(0)


if __name__ == "__main__":
    main()
