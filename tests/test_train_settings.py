"""Run settings resolve to a plan (nothing compiled), and the state's layout is built once."""

import jax
import pytest
from jax.sharding import PartitionSpec

from mmlaws.data.vocab import SMALL, TINY
from mmlaws.errors import ConfigError
from mmlaws.model import PRESETS, param_shardings
from mmlaws.train.settings import RunSettings, plan_run
from mmlaws.train.state import state_setup


def test_the_plan_takes_the_layouts_vocabulary_then_the_overrides():
    plan = plan_run(RunSettings(total_steps=10, model="tiny", vocab="SMALL", peak_lr=1e-3,
                                model_overrides={"d_model": 32}, mesh_shape={"fsdp": 2,
                                                                              "data": -1}),
                    ["code", "text"])
    assert plan.layout is SMALL and plan.config.vocab_size == SMALL.size
    assert plan.config == PRESETS["tiny"].replace(vocab_size=SMALL.size, d_model=32)
    assert (plan.recipe.peak_lr, plan.recipe.total_steps, plan.recipe.warmup_steps) == (
        1e-3, 10, 500)
    assert dict(plan.mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
    assert plan.names == ("code", "text")
    assert plan_run(RunSettings(total_steps=1, model="125M"), ["x"]).recipe.peak_lr == 6e-4


@pytest.mark.parametrize("kw, match", [
    ({"model": "huge"}, r"RunSettings.model must be one of"),
    ({"rng_impl": "philox"}, r"RunSettings.rng_impl"),
    ({"vocab": "huge"}, r"vocabulary layout"),
    ({"model": "tiny"}, r"give the peak learning rate"),  # not a Table 2 row
])
def test_bad_settings_are_named(kw, match):
    with pytest.raises(ConfigError, match=match):
        plan_run(RunSettings(total_steps=5, **kw), ["x"])


def test_optimizer_moments_are_laid_out_like_their_parameters():
    plan = plan_run(RunSettings(total_steps=5, peak_lr=1e-3, vocab=TINY,
                                mesh_shape={"fsdp": 2, "tensor": 2, "data": -1}), ["x"])
    setup = state_setup(plan.config, plan.recipe, plan.mesh)
    assert state_setup(plan.config, plan.recipe, plan.mesh) is setup  # built once
    params = param_shardings(plan.config, plan.mesh)
    adam = setup.shardings.opt_state[1]
    for moments in (adam.mu, adam.nu):
        assert jax.tree.leaves(moments) == jax.tree.leaves(params)
    for counter in (setup.shardings.step, setup.shardings.lr_scale, adam.count):
        assert counter.spec == PartitionSpec()
    state = setup.init(jax.random.key(0))
    for array, shape in zip(jax.tree.leaves(state), jax.tree.leaves(setup.shapes), strict=True):
        assert array.shape == shape.shape and array.sharding == shape.sharding
