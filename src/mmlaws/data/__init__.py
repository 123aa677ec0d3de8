"""Mixed-modal data while training: the vocabulary layout, shards, packing, exact mixtures.

Importing this package stays light: numpy only, never TensorFlow or seqio. grain is imported
only when :func:`mixture` or :func:`mixture_dataset` (from :mod:`mmlaws.data.grain_loader`) is
first used. Submodules: ``vocab``, ``shards``, ``packing``, ``mixing``, ``grain_loader``,
``batch`` (the batch contract), ``synthetic`` (generated documents). Imported only explicitly:
``tfds_shards`` (the datasets as TFDS datasets; no TensorFlow) and the SeqIO path, which needs
TensorFlow (the ``seqio`` extra): ``seqio_tasks`` registers Tasks and Mixtures over the same
shards, ``seqio_packed`` holds the exact path's pieces and ``seqio_batches`` feeds the trainer
from a SeqIO mixture. The datasets themselves are built before training by
:mod:`mmlaws.corpora` (sources, tokenizers, builders), which writes the shards read here.
"""

import importlib

from mmlaws.data.vocab import MICRO, PAPER, SMALL, SPECIAL_TOKENS, TINY, Modality, VocabLayout

_LAZY = {"mixture": "mmlaws.data.grain_loader", "mixture_dataset": "mmlaws.data.grain_loader"}

__all__ = ["MICRO", "PAPER", "SMALL", "SPECIAL_TOKENS", "TINY", "Modality", "VocabLayout", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
