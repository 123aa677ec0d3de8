"""The decoder's configuration: one frozen dataclass, named presets live in :mod:`presets`."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mmlaws.errors import ConfigError

# The names of mmlaws.model.remat.POLICIES and mmlaws.model.attention.IMPLS (kept here so that
# the config imports no model code).
REMAT_POLICIES = ("none", "minimal", "save_dot_except_mlp", "save_qkv_proj", "save_out_proj",
                  "full", "dots_saveable")
DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTENTION_IMPLS = ("auto", "xla", "chunked", "cudnn", "splash")
MAX_SEGMENTS = 64  # documents per row the cuDNN kernel takes in its packed layout


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of an OPT-style pre-norm decoder.

    ``d_ff`` defaults to ``4 * d_model``. ``dtype`` is the compute dtype: ``"auto"`` means
    bfloat16 on GPU/TPU and float32 on CPU; parameters are kept in ``param_dtype``.
    ``remat`` names a policy of :mod:`mmlaws.model.remat` (``none``: keep all activations;
    ``full``: recompute the whole block; between them, MaxText's named policies). ``attention``
    picks the kernel (:mod:`mmlaws.model.attention`): ``auto`` (cuDNN on GPU in 16-bit, splash
    on TPU, XLA elsewhere), ``xla``, ``chunked``, ``cudnn`` or ``splash``; ``max_segments``:
    documents per row that the cuDNN kernel's packed layout describes (a batch with a fuller
    row takes the exact chunked kernel for that step).
    ``dropout_impl`` draws dropout masks with ``jax.random`` (``"jax"``) or by hashing element
    indices (``"hash"``, :class:`mmlaws.model.layers.HashDropout`; much cheaper on CPU).
    ``scan_unroll`` unrolls that many layers per iteration of the layer scan (parameters stay
    stacked); unrolling all of a shallow model's layers removes the loop's overhead.
    """

    vocab_size: int
    num_layers: int
    d_model: int
    num_heads: int
    d_head: int
    d_ff: int = 0
    max_len: int = 2048
    dropout: float = 0.1
    dropout_impl: str = "jax"
    tie_embeddings: bool = True
    dtype: str = "auto"
    param_dtype: str = "float32"
    remat: str = "none"
    scan_layers: bool = True
    scan_unroll: int = 1
    attention: str = "auto"
    max_segments: int = MAX_SEGMENTS
    init_std: float = 0.006
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.d_ff == 0:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        for name in ("vocab_size", "num_layers", "d_model", "num_heads", "d_head", "max_len",
                     "max_segments"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.remat not in REMAT_POLICIES:
            raise ConfigError(f"ModelConfig.remat must be one of {REMAT_POLICIES}, "
                              f"got {self.remat!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"ModelConfig.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.param_dtype not in DTYPES[1:]:
            raise ConfigError(f"ModelConfig.param_dtype must be one of {DTYPES[1:]}, "
                              f"got {self.param_dtype!r}")
        if self.attention not in ATTENTION_IMPLS:
            raise ConfigError(f"ModelConfig.attention must be one of {ATTENTION_IMPLS}, "
                              f"got {self.attention!r}")
        if self.dropout_impl not in ("jax", "hash"):
            raise ConfigError(f"ModelConfig.dropout_impl must be 'jax' or 'hash', "
                              f"got {self.dropout_impl!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ModelConfig.dropout must lie in [0, 1), got {self.dropout}")

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes``; a new ``d_model`` without a ``d_ff`` re-derives the default
        ``d_ff = 4 d_model`` when this config used it."""
        if "d_model" in changes and "d_ff" not in changes and self.d_ff == 4 * self.d_model:
            changes = {**changes, "d_ff": 0}
        return dataclasses.replace(self, **changes)

    @property
    def compute_dtype(self) -> jnp.dtype:
        if self.dtype == "auto":
            return jnp.dtype(jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16)
        return jnp.dtype(self.dtype)

    @property
    def weight_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)
