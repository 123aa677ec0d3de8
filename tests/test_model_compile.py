"""Every preset lowers and compiles one train step from abstract inputs (nothing allocated)."""

import pytest

from mmlaws import model as M
from mmlaws.model.abstract_step import compile_train_step


def test_30b_compiles_sharded_over_fsdp_and_tensor():
    config = M.PRESETS["30B"].replace(dtype="bfloat16")
    mesh = M.make_mesh({"fsdp": 4, "tensor": 2})
    compiled, _ = compile_train_step(config, batch=8, length=2048, mesh=mesh)
    args = compiled.memory_analysis().argument_size_in_bytes
    per_device_params = 4 * M.total_params(config) / 8  # float32, split 8 ways
    assert per_device_params <= args <= 1.01 * per_device_params


@pytest.mark.slow
@pytest.mark.parametrize("name", [row.name for row in M.TABLE_2])
def test_paper_preset_compiles_on_one_device(name):
    config = M.PRESETS[name].replace(dtype="bfloat16", remat="dots_saveable")
    compiled, _ = compile_train_step(config, batch=1, length=2048)
    assert compiled.memory_analysis().argument_size_in_bytes >= 4 * M.total_params(config)
