"""Several processes (JAX multi-controller) and placing each process's share of a batch.

:func:`initialize_distributed` calls ``jax.distributed.initialize`` when the run is launched
as several processes — named by the standard variables ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (or detected by JAX on a cluster such as SLURM
when ``MMLAWS_DISTRIBUTED=1``) — and does nothing for a single process.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from mmlaws.model import batch_sharding


def initialize_distributed() -> None:
    """Join the other processes of the run, if there are any (idempotent)."""
    if jax.distributed.is_initialized():
        return
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        jax.distributed.initialize(coordinator_address=address,
                                   num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                                   process_id=int(os.environ["JAX_PROCESS_ID"]))
    elif os.environ.get("MMLAWS_DISTRIBUTED") == "1":
        jax.distributed.initialize()


def place_batch(batch: dict[str, np.ndarray], mesh, *, process_local: bool = False
                ) -> dict[str, jax.Array]:
    """Numpy ``[B, T]`` arrays → jax Arrays sharded over the mesh's batch axes.

    ``process_local=False``: every process holds the same global batch (a deterministic source
    read the same way everywhere) and places only the rows of its own devices.
    ``process_local=True``: each process holds only its own ``[B / processes, T]`` rows (a
    loader sliced per host) and the global batch is assembled from them.
    """
    sharding = batch_sharding(mesh)
    if process_local:
        return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
    return {k: jax.make_array_from_callback(v.shape, sharding, lambda idx, v=v: v[idx])
            for k, v in batch.items()}


def host(tree):
    """Replicated arrays → numpy, reading this process's copy (works with several processes,
    where a global array is not fully addressable)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)
