"""Deprecated: moved to :mod:`mmlaws.corpora.build` (and :mod:`mmlaws.corpora.sources`).

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(__name__, "mmlaws.corpora.build", "mmlaws.corpora.sources")
