"""Build the Speech-Text dataset: transcripts with their audio units, aligned.

Documents are ``text <speech> units </speech>`` by default (``--order text_first``);
``--order speech_first`` puts the audio first; ``--order interleaved`` alternates each espeak
word's text with ``<speech>`` its units ``</speech>`` (espeak's word events give the exact
alignment). ``--dedup`` collapses runs of equal units. The text part uses the BPE shared with
the text builders (trained on first use). Sources and units as in ``build_speech.py``; see
``data_pipelines/README_speech.md``.

    python data_pipelines/build_speech_text.py --data_dir data --layout SMALL --token_budget 2e5 \\
        [--order text_first|speech_first|interleaved] [--dedup]
"""

import argparse
import functools
import sys

from mmlaws.corpora import build, speech
from mmlaws.corpora.sources import speech as speech_sources

if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--order", choices=speech.ORDERS, default="text_first")
    parser.add_argument("--dedup", action="store_true")
    args, rest = parser.parse_known_args(sys.argv[1:])
    run = functools.partial(
        speech.build_speech_text, speech=speech.SpeechOptions(dedup=args.dedup), order=args.order
    )
    build.main(run, speech_sources.SOURCES, __doc__, rest)
