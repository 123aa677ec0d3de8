"""Memory planner: compiled per-device memory of the train step, from XLA, allocating nothing.

:func:`compile_step` lowers the real train step (:mod:`mmlaws.train.step`) from abstract
(ShapeDtypeStruct) state and batch with their shardings and compiles it; the planner and the
compile benchmark use it. XLA's memory analysis of the executable then gives, per device,
the bytes of the arguments (parameters, optimizer state, batch), the outputs, the buffers they
share (the donated state) and the temporaries (activations, gradients). Their sum less the
aliased bytes is the peak the step needs. Compiled for the host backend, the figure follows the host
compiler's buffer assignment; it is a plan, not a measurement on the target accelerator.

The model's vocabulary is the layout's (:data:`mmlaws.data.vocab.PAPER` by default: 2^16
ids, the vocabulary of the Table 2 presets), as in training.

Command line (simulates the devices on CPU)::

    python -m mmlaws.train.memory --preset 30B --mesh fsdp=8,tensor=8 --batch 8 --seq 2048 \\
        --device_gb 80 --remat full
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

import jax

from mmlaws.data.batch import DTYPES, FIELDS
from mmlaws.data.vocab import VocabLayout, resolve_layout
from mmlaws.model import PRESETS, batch_sharding, make_mesh, use_mesh
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

    @property
    def peak(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries

    @property
    def fits(self) -> bool:
        return self.peak <= self.device_bytes

    def summary(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (f"per device: {self.peak / GB:.2f} GB (arguments {self.arguments / GB:.2f}, "
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


def plan_memory(preset: str, mesh_shape: dict, *, batch: int, sequence_length: int,
                device_gb: float, micro_batches: int = 1, dtype: str = "bfloat16",
                remat: str = "full", layout: str | VocabLayout = "paper") -> MemoryPlan:
    """Compile the train step of ``preset`` (vocabulary: ``layout``'s size) for a
    ``[batch, sequence_length]`` batch on ``mesh_shape`` (over the devices present) and report
    its per-device memory against ``device_gb``."""
    layout = resolve_layout(layout)
    config = PRESETS[preset].replace(dtype=dtype, remat=remat, vocab_size=layout.size,
                                     max_len=max(sequence_length, PRESETS[preset].max_len))
    setup = state_setup(config, Recipe(1e-4, 1000), make_mesh(mesh_shape))
    compiled = compile_step(setup, batch_size=batch, sequence_length=sequence_length,
                            layout=layout, micro_batches=micro_batches)
    m = compiled.memory_analysis()
    return MemoryPlan(arguments=m.argument_size_in_bytes, outputs=m.output_size_in_bytes,
                      aliased=m.alias_size_in_bytes, temporaries=m.temp_size_in_bytes,
                      device_bytes=device_gb * GB)


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
    parser.add_argument("--remat", default="full")
    parser.add_argument("--layout", default="paper", help="vocabulary layout (tiny … paper)")
    args = parser.parse_args(argv)
    devices = math.prod(args.mesh.values())  # set before JAX starts its backend
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={devices}")
    plan = plan_memory(args.preset, args.mesh, batch=args.batch, sequence_length=args.seq,
                       device_gb=args.device_gb, micro_batches=args.micro_batches,
                       remat=args.remat, layout=args.layout)
    print(f"{args.preset} on {args.mesh}, batch {args.batch}×{args.seq}: {plan.summary()}")
    sys.exit(0)


if __name__ == "__main__":
    main()
