"""Deprecated: moved to :mod:`mmlaws.corpora.tokenizers.speech_units`
(and :mod:`mmlaws.corpora.tokenizers.kmeans`).

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(
    __name__,
    "mmlaws.corpora.tokenizers.speech_units",
    "mmlaws.corpora.tokenizers.kmeans",
)
