"""Mixed-modal data: the unified vocabulary layout (and, built on it, tokenizers and loaders).

Importing this package stays light: numpy only, never TensorFlow or seqio.
"""

from mmlaws.data.vocab import PAPER, SMALL, SPECIAL_TOKENS, TINY, Modality, VocabLayout

__all__ = ["PAPER", "SMALL", "SPECIAL_TOKENS", "TINY", "Modality", "VocabLayout"]
