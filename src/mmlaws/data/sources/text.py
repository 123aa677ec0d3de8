"""Deprecated: moved to :mod:`mmlaws.corpora.sources.text` (and :mod:`mmlaws.corpora.text`).

This path goes away in the next release.
"""

from mmlaws.corpora import text as _text
from mmlaws.data._moved import forward, old_call

__getattr__ = forward(__name__, "mmlaws.corpora.sources.text", "mmlaws.corpora.text")
build_modality = old_call(_text.build_modality)
build_text = old_call(_text.build_text)
build_code = old_call(_text.build_code)
build_molecules = old_call(_text.build_molecules)
