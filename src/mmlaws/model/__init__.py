"""The OPT-style decoder of the paper (§4.3, Appendix A.1), its presets, counts and sharding.

Public API::

    config = PRESETS["tiny"]
    params = init_params(config, jax.random.key(0))             # or mesh=make_mesh({...})
    init = sharded_initializer(fn, mesh)   # fn(rng) -> boxed tree; init.shapes, init(rng)
    out = logits(config, params, tokens, segment_ids=seg)       # [B, T, V] float32
    config, params = load_hf_opt("path/to/opt")                 # Hugging Face OPT weights
    total_params(config), non_embedding_params(config), training_flops_per_token(config)
"""

from mmlaws.model.config import ModelConfig
from mmlaws.model.counting import (
    block_params,
    embedding_params,
    non_embedding_params,
    total_params,
    training_flops_per_token,
)
from mmlaws.model.decoder import Decoder, logits, positions_from_segments
from mmlaws.model.hardware import PEAK_BF16_FLOPS, mfu, peak_flops
from mmlaws.model.hf_import import load_hf_opt
from mmlaws.model.params import (
    abstract_params,
    init_boxed,
    init_params,
    param_logical_axes,
    param_shardings,
)
from mmlaws.model.presets import (
    ARCHITECTURES,
    OPT_LARGER,
    PAPER_ROWS,
    PAPER_VOCAB_SIZE,
    PRESETS,
    TABLE_2,
    paper_config,
)
from mmlaws.model.sharding import (
    MESH_AXES,
    RULES,
    ShardedInit,
    batch_sharding,
    make_mesh,
    sharded_initializer,
    use_mesh,
)

__all__ = [
    "ARCHITECTURES",
    "MESH_AXES",
    "OPT_LARGER",
    "PAPER_ROWS",
    "PAPER_VOCAB_SIZE",
    "PEAK_BF16_FLOPS",
    "PRESETS",
    "RULES",
    "ShardedInit",
    "TABLE_2",
    "Decoder",
    "ModelConfig",
    "abstract_params",
    "batch_sharding",
    "block_params",
    "embedding_params",
    "init_boxed",
    "init_params",
    "load_hf_opt",
    "logits",
    "make_mesh",
    "mfu",
    "non_embedding_params",
    "paper_config",
    "param_logical_axes",
    "param_shardings",
    "peak_flops",
    "positions_from_segments",
    "sharded_initializer",
    "total_params",
    "training_flops_per_token",
    "use_mesh",
]
