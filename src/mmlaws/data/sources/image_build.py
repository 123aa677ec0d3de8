"""Deprecated: moved to :mod:`mmlaws.corpora.images`.

This path goes away in the next release.
"""

from mmlaws.data._moved import forward

__getattr__ = forward(__name__, "mmlaws.corpora.images")
