"""Parameter and FLOP counts as pure functions of a :class:`ModelConfig`.

Conventions (the N that the scaling laws consume must say which one it is):

- **total**: every trainable parameter of :class:`~mmlaws.model.decoder.Decoder` — token
  embedding (counted once when tied), learned position embedding (``max_len`` rows), all
  blocks with their biases and LayerNorms, the final LayerNorm, and the output projection
  when it is untied.
- **non-embedding** (Kaplan et al. 2020): total minus the token and position embeddings and
  the untied output projection.
- **training FLOPs per token** (PaLM, Chowdhery et al. 2022, App. B):
  ``6 · N_matmul + 12 · L · (heads · d_head) · context``, where ``N_matmul`` is the
  non-embedding count plus the ``vocab × d_model`` output projection (a matmul whether tied
  or not; embedding lookups cost nothing). The attention term counts the full context
  (no causal halving), the convention of PaLM's MFU. With ``causal_halved=True`` it counts
  the half of the scores a causal mask keeps, ``6 · L · heads · d_head · context`` (MaxText's
  convention): the same speed then reads as a lower MFU, by about 7% at 1.3B and context 2048.
"""

from __future__ import annotations

from mmlaws.model.config import ModelConfig


def block_params(config: ModelConfig) -> int:
    """Parameters of one pre-norm block: 2 LayerNorms, q/k/v/out projections, 2-layer MLP."""
    d, f, a = config.d_model, config.d_ff, config.num_heads * config.d_head
    layer_norms = 2 * 2 * d
    attention = 3 * (d * a + a) + (a * d + d)
    mlp = (d * f + f) + (f * d + d)
    return layer_norms + attention + mlp


def embedding_params(config: ModelConfig) -> int:
    """Token embedding + position embedding (+ untied output projection)."""
    tokens = config.vocab_size * config.d_model
    positions = config.max_len * config.d_model
    output = 0 if config.tie_embeddings else config.d_model * config.vocab_size
    return tokens + positions + output


def non_embedding_params(config: ModelConfig) -> int:
    """All blocks plus the final LayerNorm."""
    return config.num_layers * block_params(config) + 2 * config.d_model


def total_params(config: ModelConfig) -> int:
    """Every trainable parameter (the tied embedding counted once)."""
    return non_embedding_params(config) + embedding_params(config)


def training_flops_per_token(config: ModelConfig, context: int | None = None, *,
                             causal_halved: bool = False) -> int:
    """Forward + backward FLOPs per trained token: ``6·N_matmul + 12·L·heads·d_head·context``
    (``causal_halved``: ``6·L·heads·d_head·context`` for attention)."""
    context = config.max_len if context is None else context
    n_matmul = non_embedding_params(config) + config.vocab_size * config.d_model
    attention = 12 * config.num_layers * config.num_heads * config.d_head * context
    return 6 * n_matmul + (attention // 2 if causal_halved else attention)
