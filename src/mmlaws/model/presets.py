"""Model presets: the paper's Table 2 (Appendix A.1) as data, plus tiny presets for CPU demos.

Each :class:`PaperPreset` row is one line of Table 2 — layers, d_model, heads, d_head, peak
learning rate, batch size in tokens and context length. The table prints the batch as "1M"
tokens; we read it as 2**20 tokens = 512 sequences of the 2048-token context.

The paper's vocabulary is one BPE of 2**16 entries in which image codes and speech units are
single tokens (§4.2), so the paper presets use ``PAPER_VOCAB_SIZE = 2**16``: the size of the
data's ``PAPER`` layout (:mod:`mmlaws.data.vocab`: 55,321 text ids, 8,192 image codes, 2,000
speech units and 23 specials), whose size training puts in place of a preset's. At that
vocabulary every preset's total parameter count (see :mod:`mmlaws.model.counting`) lies within
10% of its name except 8M: 9.44M (+18%), because its 8.4M-entry embedding dominates; the names
match an OPT-sized vocabulary (50,272 tokens: 7.49M … 29.97B, all within 7%).
"""

from __future__ import annotations

import dataclasses

from mmlaws.model.config import ModelConfig

PAPER_VOCAB_SIZE = 2**16  # §4.2: "a vocab size of 2^16"
PAPER_CONTEXT = 2048  # Table 2, every row


@dataclasses.dataclass(frozen=True)
class PaperPreset:
    """One row of Table 2 (Appendix A.1)."""

    name: str
    num_layers: int
    d_model: int
    num_heads: int
    d_head: int
    peak_lr: float
    batch_tokens: int
    context: int
    nominal_params: float  # the size in the row's name, e.g. 1.3e9 for "1.3B"


_M = 2**20  # "1M" batch tokens
# Table 2, Appendix A.1:  name,  #L, d_model, #H, d_head, LR,    batch, context, nominal size
TABLE_2 = (
    PaperPreset("8M", 4, 128, 2, 64, 1.0e-3, _M, 2048, 8e6),
    PaperPreset("125M", 12, 768, 12, 64, 6.0e-4, _M, 2048, 125e6),
    PaperPreset("350M", 24, 1024, 16, 64, 3.0e-4, _M, 2048, 350e6),
    PaperPreset("760M", 24, 1536, 16, 96, 2.5e-4, _M, 2048, 760e6),
    PaperPreset("1.3B", 24, 2048, 32, 64, 2.0e-4, _M, 2048, 1.3e9),
    PaperPreset("2.7B", 32, 2560, 32, 80, 1.6e-4, _M, 2048, 2.7e9),
    PaperPreset("6.7B", 32, 4096, 32, 128, 1.2e-4, _M, 2048, 6.7e9),
    PaperPreset("30B", 48, 7168, 56, 128, 1.0e-4, _M, 2048, 30e9),
)
PAPER_ROWS = {row.name: row for row in TABLE_2}
# The OPT family above Table 2's sizes (Zhang et al. 2022, Table 1), with OPT's LR and batch; the
# paper's 30B validation model (§5.2.2) is this family's 30B, which Table 2 already holds.
OPT_LARGER = (
    PaperPreset("13B", 40, 5120, 40, 128, 1.0e-4, 4 * _M, 2048, 13e9),
    PaperPreset("66B", 64, 9216, 72, 128, 0.8e-4, 2 * _M, 2048, 66e9),
    PaperPreset("175B", 96, 12288, 96, 128, 1.2e-4, 2 * _M, 2048, 175e9),
)
# Table 2 and the larger OPT rows in order of size: the architectures a plan chooses from.
ARCHITECTURES = tuple(sorted((*TABLE_2, *OPT_LARGER), key=lambda r: r.nominal_params))


def paper_config(row: PaperPreset, vocab_size: int = PAPER_VOCAB_SIZE, **changes) -> ModelConfig:
    """The :class:`ModelConfig` of one Table 2 row (d_ff = 4·d_model, learned positions)."""
    return ModelConfig(
        vocab_size=vocab_size,
        num_layers=row.num_layers,
        d_model=row.d_model,
        num_heads=row.num_heads,
        d_head=row.d_head,
        max_len=row.context,
        **changes,
    )


# Small shapes for CPU tests and demos; not from the paper.
# The CPU presets hash their dropout masks (``dropout_impl="hash"``: jax.random draws were 40% of
# TINY's step on CPU), and TINY unrolls its two layers inside the scan (parameters stay stacked).
TINY = ModelConfig(vocab_size=256, num_layers=2, d_model=64, num_heads=4, d_head=16, max_len=128,
                   scan_unroll=2, dropout_impl="hash")
MINI = ModelConfig(vocab_size=4096, num_layers=4, d_model=256, num_heads=4, d_head=64, max_len=512,
                   dropout_impl="hash")

PRESETS: dict[str, ModelConfig] = {
    "tiny": TINY,
    "mini": MINI,
    **{row.name: paper_config(row) for row in ARCHITECTURES},
}
