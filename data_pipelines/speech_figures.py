"""Figures for the speech data: units per second, espeak-ng speed, hours and tokens per source.

    python data_pipelines/speech_figures.py --passages 100 --clips 300

Prints one JSON object:

- ``units_per_second``: units per second of audio, for espeak passages and Tux Paint clips (50
  by construction: ``N // 320`` units for ``N`` samples, so a document's last partial 20 ms frame
  is dropped and the mean over short documents is a little under 50), and with run-length dedup;
- ``espeak``: synthesis speed (seconds of audio per second of wall time, one core), alone and
  with MFCC + k-means units; seconds of audio per word;
- ``available``: per source, documents, hours of audio and speech tokens at the chosen layout
  (50 per second plus ``<speech>``/``</speech>``); espeak's hours are one pass over the
  standard library's passages (the builder goes on with new voices, so it has no upper bound),
  estimated from the measured seconds per word; Tux Paint's are read from the OGG headers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import numpy as np

from mmlaws.corpora.sources import espeak_ng, speech
from mmlaws.corpora.tokenizers.speech_units import SpeechUnitiser
from mmlaws.data import shards


def _espeak_figures(num: int, layout) -> tuple[dict, list, float]:
    passages = list(itertools.islice(speech.paragraphs(speech.stdlib_sentences()), num))
    espeak_ng.espeak().synthesize("warm up", "en-us")
    start = time.perf_counter()
    utts = list(itertools.islice(speech.espeak_utterances(passages), num))
    synth_s = time.perf_counter() - start
    audio_s = sum(u.seconds for u in utts)
    words = sum(len(u.text.split()) for u in utts)
    fit_waves = [u.audio for u in utts[: max(1, num // 2)]]
    unitiser = SpeechUnitiser.fit(fit_waves, num_units=layout.speech_units, seed=0, steps=100)
    start = time.perf_counter()
    units = [unitiser.encode(u.audio) for u in utts]
    unit_s = time.perf_counter() - start
    figures = {
        "passages": num,
        "voices": len({u.voice for u in utts}),
        "audio_s": round(audio_s, 1),
        "synthesis_x_real_time": round(audio_s / synth_s, 1),
        "synthesis_and_units_x_real_time": round(audio_s / (synth_s + unit_s), 1),
        "seconds_per_word": round(audio_s / words, 4),
    }
    return figures, list(zip([u.audio for u in utts], units, strict=True)), unitiser


def _rates(pairs) -> dict:
    seconds = sum(len(a) for a, _ in pairs) / espeak_ng.SAMPLE_RATE
    units = sum(len(u) for _, u in pairs)
    whole = sum(len(a) // 320 for a, _ in pairs) * 0.02  # seconds in whole 20 ms frames
    dedup = sum(int(np.sum(np.diff(u) != 0)) + (len(u) > 0) for _, u in pairs)
    return {
        "units_per_s": round(units / seconds, 3),
        "units_per_s_of_whole_frames": round(units / whole, 3),
        "dedup_units_per_s": round(dedup / seconds, 2),
        "mean_document_s": round(seconds / len(pairs), 2),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100)
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--layout", default="SMALL", choices=sorted(shards.PRESETS))
    args = parser.parse_args(argv)
    layout = shards.PRESETS[args.layout]
    out = {"layout": args.layout, "units_per_second": {}, "available": {}}

    if espeak_ng.espeak_missing() is None:
        figures, pairs, unitiser = _espeak_figures(args.passages, layout)
        out["espeak"] = figures
        out["units_per_second"]["espeak"] = _rates(pairs)
        start = time.perf_counter()
        passages = list(speech.paragraphs(speech.stdlib_sentences()))
        words = sum(len(p.split()) for p in passages)
        hours = words * figures["seconds_per_word"] / 3600
        out["available"]["espeak"] = {
            "documents_per_pass": len(passages),
            "words_per_pass": words,
            "hours_per_pass": round(hours, 2),
            "speech_tokens_per_pass": round(hours * 3600 * 50 + 2 * len(passages)),
            "read_passages_s": round(time.perf_counter() - start, 1),
        }
    else:
        out["espeak"] = espeak_ng.espeak_missing()

    if speech.soundfile_missing() is None and os.path.isdir(speech.TUXPAINT_ROOT):
        import soundfile

        clips = list(speech.tuxpaint_clips())
        seconds = sum(soundfile.info(c.path).duration for c in clips)
        out["available"]["tuxpaint"] = {
            "documents": len(clips),
            "languages": len({c.language for c in clips}),
            "english_documents": sum(c.language == "en" for c in clips),
            "hours": round(seconds / 3600, 2),
            "speech_tokens": round(seconds * 50 + 2 * len(clips)),
        }
        if clips and espeak_ng.espeak_missing() is None:
            step = max(1, len(clips) // args.clips)
            waves = [speech.read_audio(c.path) for c in clips[::step][: args.clips]]
            out["units_per_second"]["tuxpaint"] = _rates([(w, unitiser.encode(w)) for w in waves])
    else:
        out["available"]["tuxpaint"] = speech.soundfile_missing() or "no Tux Paint clips"
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
