"""Placing batches on the mesh: whole-batch and per-process feeding agree."""

import numpy as np

from mmlaws.model import batch_sharding, make_mesh
from mmlaws.train.distributed import host, place_batch


def test_process_local_feeding_matches_global_placement():
    mesh = make_mesh({"fsdp": 2, "tensor": 2, "data": -1})
    rng = np.random.default_rng(0)
    batch = {"inputs": rng.integers(0, 9, (8, 5)).astype(np.int32),
             "weights": rng.uniform(size=(8, 5)).astype(np.float32)}
    whole = place_batch(batch, mesh)
    local = place_batch(batch, mesh, process_local=True)  # one process holds every row
    for k in batch:
        assert whole[k].sharding == local[k].sharding == batch_sharding(mesh)
        np.testing.assert_array_equal(np.asarray(whole[k]), batch[k])
        np.testing.assert_array_equal(np.asarray(local[k]), batch[k])
        # each device holds 2 of the 8 rows (batch split over data × fsdp = 4)
        assert whole[k].addressable_shards[0].data.shape == (2, 5)
    assert host({"x": whole["inputs"][0, 0]})["x"] == batch["inputs"][0, 0]
