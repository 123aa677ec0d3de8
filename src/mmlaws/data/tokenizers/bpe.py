"""Deprecated: moved to :mod:`mmlaws.corpora.tokenizers.bpe`.

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(__name__, "mmlaws.corpora.tokenizers.bpe")
