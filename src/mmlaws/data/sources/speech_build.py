"""Deprecated: moved to :mod:`mmlaws.corpora.speech` (and :mod:`mmlaws.corpora.sources.speech`).

This path goes away in the next release.
"""

from mmlaws.corpora import speech as _speech
from mmlaws.data._moved import forward, old_call

__getattr__ = forward(__name__, "mmlaws.corpora.speech", "mmlaws.corpora.sources.speech")
build_speech = old_call(_speech.build_speech)
build_speech_text = old_call(_speech.build_speech_text)
