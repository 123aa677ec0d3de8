"""Deprecated: moved to :mod:`mmlaws.corpora.sources.speech`
(and :mod:`mmlaws.corpora.sources.espeak_ng`).

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(__name__, "mmlaws.corpora.sources.speech", "mmlaws.corpora.sources.espeak_ng")
