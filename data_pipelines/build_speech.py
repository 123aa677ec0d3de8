"""Build the Speech dataset: ``<speech> units </speech>`` documents from local audio.

Sources: espeak-ng speaking the standard library's docstring prose (``espeakng-loader`` wheel
or Debian ``espeak-ng``) and Tux Paint's recorded stamp descriptions (Debian
``tuxpaint-stamps-default`` read with ``soundfile``). Units: MFCC + k-means
(:mod:`mmlaws.corpora.tokenizers.speech_units`), ``layout.speech_units`` clusters, 50 per second;
``--dedup`` collapses runs of equal units. See ``data_pipelines/README_speech.md``.

    python data_pipelines/build_speech.py --data_dir data --layout SMALL --token_budget 5e5
"""

import argparse
import functools
import sys

from mmlaws.corpora import build, speech
from mmlaws.corpora.sources import speech as speech_sources

if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dedup", action="store_true")
    args, rest = parser.parse_known_args(sys.argv[1:])
    run = functools.partial(speech.build_speech, speech=speech.SpeechOptions(dedup=args.dedup))
    build.main(run, speech_sources.SOURCES, __doc__, rest)
