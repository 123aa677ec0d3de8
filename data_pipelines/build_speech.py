"""Build the Speech dataset: ``<speech> units </speech>`` documents from local audio.

Sources: espeak-ng speaking the standard library's docstring prose (``espeakng-loader`` wheel
or Debian ``espeak-ng``) and Tux Paint's recorded stamp descriptions (Debian
``tuxpaint-stamps-default`` read with ``soundfile``). Units: MFCC + k-means
(:mod:`mmlaws.data.tokenizers.speech_units`), ``layout.speech_units`` clusters, 50 per second.
See ``data_pipelines/README_speech.md``.

    python data_pipelines/build_speech.py --data_dir data --layout SMALL --token_budget 2e6
"""

from mmlaws.data import build
from mmlaws.data.sources import speech_build

if __name__ == "__main__":
    build.main(speech_build.build_speech, speech_build.SOURCES, __doc__)
