"""The real train step lowered for GPU and TPU from this (CPU) host: the fused attention kernel
is in the module and no ``T × T`` score tensor (nor mask) is.

Lowering for another platform needs no device of it. cuDNN's version and compute-capability
checks read the local GPU, so a Hopper GPU with cuDNN 9.10 stands in for them here. On a mesh of
several devices jax wraps the cuDNN call in ``CustomSPMDPartitioning`` (it is partitioned when the
module is compiled); the test then reads which partitioner each such call names.
"""

import math
import re

import jax
import pytest
from jax._src import custom_partitioning

from mmlaws import model as M
from mmlaws.data.batch import DTYPES, FIELDS
from mmlaws.data.vocab import TINY
from mmlaws.train.optimizer import Recipe
from mmlaws.train.state import state_setup
from mmlaws.train.step import jit_steps

T = 1024  # no other dimension of the tiny model is 1024

CUDNN = ("custom_call @__cudnn$fmhaSoftmax", "custom_call @__cudnn$fmhaSoftmaxBackward")
CUDNN_PARTITIONERS = {"_dot_product_attention_fwd_partition",
                      "_dot_product_attention_bwd_partition"}
KERNELS = {  # platform, attention → what must be in the lowered module
    ("cuda", "cudnn"): CUDNN,
    ("tpu", "splash"): ('kernel_name = "splash_mha_fwd_segmented', 'kernel_name = "splash_mha_dq_',
                        'kernel_name = "splash_mha_dkv_'),
}


@pytest.fixture
def fake_hopper(monkeypatch):
    from jax._src.cudnn import fused_attention_stablehlo as cudnn

    monkeypatch.setattr(cudnn, "check_cudnn_version", lambda: 91000)
    monkeypatch.setattr(cudnn, "check_compute_capability", lambda capability: True)


def lowered_train_step(platform: str, attention: str, mesh_shape: dict):
    """The train step's ``jax.stages.Lowered`` for ``platform``."""
    config = M.PRESETS["tiny"].replace(vocab_size=TINY.size, attention=attention, max_len=T,
                                       dtype="bfloat16", remat="save_qkv_proj")
    mesh = M.make_mesh(mesh_shape, devices=jax.devices()[:math.prod(mesh_shape.values())])
    setup = state_setup(config, Recipe(1e-3, 10), mesh)
    train, _ = jit_steps(setup, vocab=TINY, num_datasets=2)
    sharding = M.batch_sharding(mesh)
    batch = {k: jax.ShapeDtypeStruct((4, T), DTYPES[k], sharding=sharding) for k in FIELDS}
    rng = jax.eval_shape(lambda: jax.random.key(0))
    with M.use_mesh(mesh):
        return train.trace(setup.shapes, batch, rng, setup.recipe.schedule_values()).lower(
            lowering_platforms=(platform,))


def full_scores(text: str) -> list[str]:
    return re.findall(rf"tensor<(?:\d+x)*{T}x{T}x\w+>", text)


def partitioners(text: str) -> set[str]:
    """Names of the partitioning rules of the module's ``CustomSPMDPartitioning`` calls (the
    lowered module, still alive, keeps them registered)."""
    keys = re.findall(r'@CustomSPMDPartitioning\([^)]*\) \{api_version = 2 : i32, '
                      r'backend_config = "(\d+)"', text)
    return {custom_partitioning._sharding_callbacks[k.encode()].partition.__name__ for k in keys}


@pytest.mark.parametrize("mesh_shape", [{"data": 1}, {"fsdp": 2, "tensor": 2}],
                         ids=["one-device", "fsdp2-tensor2"])
@pytest.mark.parametrize("platform,attention", list(KERNELS))
def test_fused_kernel_is_lowered_and_no_full_scores(fake_hopper, platform, attention, mesh_shape):
    if math.prod(mesh_shape.values()) > len(jax.devices()):
        pytest.skip("needs --xla_force_host_platform_device_count")
    lowered = lowered_train_step(platform, attention, mesh_shape)
    text = lowered.as_text()
    if platform == "cuda" and math.prod(mesh_shape.values()) > 1:
        assert partitioners(text) == CUDNN_PARTITIONERS
    else:
        for needle in KERNELS[platform, attention]:
            assert needle in text, needle
    assert full_scores(text) == []


def test_the_xla_kernel_does_build_full_scores():
    """The check above can fail: XLA attention lowered for GPU has [.., T, T] tensors."""
    assert full_scores(lowered_train_step("cuda", "xla", {"data": 1}).as_text())
