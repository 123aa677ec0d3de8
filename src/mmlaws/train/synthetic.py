"""Deprecated: the synthetic source moved to :mod:`mmlaws.data.synthetic` (one release)."""

import warnings

from mmlaws.data.synthetic import SyntheticBatches, SyntheticDocuments
from mmlaws.data.vocab import resolve_layout as resolve_vocab

warnings.warn("mmlaws.train.synthetic moved to mmlaws.data.synthetic (SyntheticBatches now takes "
              "layout= and sequence_length=)", DeprecationWarning, stacklevel=2)

__all__ = ["SyntheticBatches", "SyntheticDocuments", "resolve_vocab"]
