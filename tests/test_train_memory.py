"""The real train step compiles from abstract inputs (nothing allocated), and the memory
planner reads XLA's compiled per-device memory of it."""

import jax
import pytest

from mmlaws import model as M
from mmlaws.data.vocab import PAPER, TINY
from mmlaws.errors import ConfigError
from mmlaws.train.memory import cheapest_remat, compile_step, plan_memory
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup


def test_plan_counts_the_state_and_decides_fit():
    mesh = {"fsdp": 4, "tensor": 2}
    small = plan_memory("tiny", mesh, batch=8, sequence_length=32, device_gb=1.0, remat="none",
                        layout="tiny")
    big = plan_memory("tiny", mesh, batch=32, sequence_length=128, device_gb=1e-6,
                      remat="none", layout="tiny")
    # Parameters plus two Adam moments, float32, split over 8 devices (small tensors may be
    # replicated, so at least that and at most all of it on one device).
    state_bytes = 3 * 4 * M.total_params(M.PRESETS["tiny"].replace(vocab_size=TINY.size))
    assert state_bytes / 8 <= small.arguments <= state_bytes + 8 * 32 * 4 * 6
    assert small.aliased > 0  # the donated state is reused for the new state
    assert small.fits and not big.fits
    assert big.temporaries > small.temporaries
    assert "fits in 1 GB" in small.summary() and "does NOT fit" in big.summary()


def test_30b_train_step_compiles_sharded_over_fsdp_and_tensor():
    config = M.PRESETS["30B"].replace(dtype="bfloat16")
    setup = state_setup(config, Recipe(1e-4, 1000), M.make_mesh({"fsdp": 4, "tensor": 2}))
    compiled = compile_step(setup, batch_size=8, sequence_length=2048, layout=PAPER)
    args = compiled.memory_analysis().argument_size_in_bytes
    # float32 parameters and two Adam moments, split 8 ways, plus the [8, 2048] batch
    per_device_state = 3 * 4 * M.total_params(config) / 8
    assert per_device_state <= args <= 1.01 * per_device_state


@pytest.mark.slow
@pytest.mark.parametrize("name", [row.name for row in M.TABLE_2])
def test_paper_preset_train_step_compiles_on_one_device(name):
    config = M.PRESETS[name].replace(dtype="bfloat16", remat="dots_saveable")
    mesh = M.make_mesh({"data": 1}, devices=jax.devices()[:1])
    setup = state_setup(config, Recipe(1e-4, 1000), mesh)
    compiled = compile_step(setup, batch_size=1, sequence_length=2048, layout=PAPER)
    assert compiled.memory_analysis().argument_size_in_bytes >= 3 * 4 * M.total_params(config)


@pytest.mark.slow
def test_cheapest_remat_is_the_first_policy_that_fits():
    from mmlaws.model import remat

    kw = dict(batch=64, sequence_length=128, layout="tiny", attention="cudnn",
              overrides={"num_layers": 8, "scan_unroll": 1})
    plans = {p: plan_memory("tiny", {"fsdp": 8}, device_gb=1.0, remat=p, **kw)
             for p in remat.ORDER}
    assert all(p.attention == "chunked" for p in plans.values())  # the stand-in on CPU
    peaks = [plans[p].peak for p in remat.ORDER]  # less kept, less memory, in this order
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == len(peaks), peaks
    device_gb = (plans["none"].peak + plans["full"].peak) / 2 / 0.9 / 1e9
    policy, plan = cheapest_remat("tiny", {"fsdp": 8}, device_gb=device_gb, **kw)
    expected = next(p for p in remat.ORDER if plans[p].peak <= 0.9 * device_gb * 1e9)
    assert policy == expected != "none" and plan.peak == plans[policy].peak
    with pytest.raises(ConfigError, match="no remat policy fits"):
        cheapest_remat("tiny", {"fsdp": 8}, device_gb=1e-6, **kw)
