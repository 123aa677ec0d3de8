"""Deprecated: moved to :mod:`mmlaws.corpora.tokenizers`; this path goes away in the next release.

Each of its old modules forwards to the new one, with a :class:`DeprecationWarning`.
"""

from mmlaws.data._moved import moved

moved(__name__, "mmlaws.corpora.tokenizers")
