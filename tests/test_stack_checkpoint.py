"""A stack's checkpoints: exact round trips, the newest kept, interrupted saves and corrupt
checkpoints handled as the training loop's orbax checkpoints handle them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.study.stack_checkpoint import StackCheckpoints


def state(step):
    key = jax.random.key(step)
    return {"params": {"w": jax.random.normal(key, (3, 4, 5)), "b": jnp.full((3, 5), step)},
            "count": jnp.arange(3, dtype=jnp.int32) + step}


def shapes(extra):
    rows = extra["rows"]
    one = jax.eval_shape(lambda: state(0))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct((rows, *s.shape[1:]), s.dtype), one)


def test_round_trip_is_exact_and_the_newest_are_kept(tmp_path):
    ckpt = StackCheckpoints(tmp_path, keep=2)
    for step in (0, 5, 10):
        ckpt.save(step, state(step), {"rows": 3, "step": step})
    assert ckpt.steps() == [5, 10]
    step, got, extra = ckpt.restore_latest(shapes)
    assert step == 10 and extra == {"rows": 3, "step": 10}
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(state(10)), strict=True):
        assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree.structure(got) == jax.tree.structure(state(10))


def test_interrupted_saves_are_removed_and_a_corrupt_newest_falls_back(tmp_path):
    ckpt = StackCheckpoints(tmp_path, keep=3)
    ckpt.save(1, state(1), {"rows": 3})
    ckpt.save(2, state(2), {"rows": 3})
    (tmp_path / "3.tmp-123").mkdir()  # a save a kill interrupted
    (tmp_path / "2" / "state.npz").write_bytes(b"not a zip")
    ckpt = StackCheckpoints(tmp_path, keep=3)
    assert not list(tmp_path.glob("*.tmp-*")) and ckpt.steps() == [1, 2]
    with pytest.warns(UserWarning, match="did not load"):
        step, got, _ = ckpt.restore_latest(shapes)
    assert step == 1 and np.array_equal(np.asarray(got["count"]), [1, 2, 3])
    assert StackCheckpoints(tmp_path / "empty").restore_latest(shapes) is None
    with pytest.warns(UserWarning, match="expected"):  # shapes that differ are refused
        assert ckpt.restore_latest(lambda extra: shapes({"rows": 4})) is None
