"""Deprecated: moved to :mod:`mmlaws.corpora.tokenizers.vq`
(and :mod:`mmlaws.corpora.tokenizers.vqvae`, :mod:`mmlaws.corpora.tokenizers.kmeans`).

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(
    __name__,
    "mmlaws.corpora.tokenizers.vq",
    "mmlaws.corpora.tokenizers.vqvae",
    "mmlaws.corpora.tokenizers.kmeans",
)
