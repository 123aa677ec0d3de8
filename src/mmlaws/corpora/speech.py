"""The Speech and Speech-Text builders (``data_pipelines/build_speech[_text].py``).

Sources (:mod:`mmlaws.corpora.sources.speech`; each optional, a missing one is skipped with a
message that names its package):

- ``espeak``: passages of CPython standard-library docstring prose, at most 40 words each,
  spoken by espeak-ng; passage ``i`` gets voice, speed and pitch
  :func:`~mmlaws.corpora.sources.espeak_ng.voice_for` ``(0, i)`` (eight English accents ×
  eleven voice variants, 130–230 words per minute). Once every passage is spoken, the list is
  spoken again with the next voices (``i`` keeps counting), so the source is as large as the
  budget asks.
- ``tuxpaint``: Tux Paint's recorded stamp descriptions (about 7,300 clips with transcripts,
  3 hours, mostly not English), decoded by ``soundfile``.

Every waveform becomes units with one
:class:`~mmlaws.corpora.tokenizers.speech_units.SpeechUnitiser` (MFCC + k-means with
``layout.speech_units`` clusters), fitted on the first :func:`default_fit_seconds` of the
available sources and cached in ``<data_dir>/tokenizers/``; its fingerprint is part of each build
key, so a new unitiser rebuilds the datasets.

Documents (global ids of the layout; ``T`` = units, 50 per second of audio):

- Speech: ``<speech> u_1 … u_T </speech>``.
- Speech-Text, ``order="text_first"`` (the default; a transcript then its audio, as in TTS data):
  ``text(transcript) <speech> u_1 … u_T </speech>``; ``"speech_first"`` (as in ASR data) puts
  the audio first. ``"interleaved"``: for each espeak word event, the word's text (up to the
  next word) then ``<speech>`` its units ``</speech>``, so the alignment is explicit (Tux Paint
  clips, which have no word timings, stay ``text_first``).

The text part uses a text encoder: a callable from a string to BPE ids in ``[0, text_size)``,
offset into the layout's text range; by default the BPE shared with the Text, Code and
Molecules builders (:func:`default_text_encoder`), so a text id means the same in every dataset.

Both builders take a :class:`~mmlaws.corpora.build.BuildOptions` and a :class:`SpeechOptions`::

    build_speech_text(BuildOptions("data", SMALL, token_budget=200_000), SpeechOptions(dedup=True),
                      order="interleaved")
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from mmlaws.corpora import build
from mmlaws.corpora.sources import available, espeak_ng
from mmlaws.corpora.sources.speech import SOURCES, espeak_utterances, tuxpaint_utterances
from mmlaws.corpora.tokenizers.speech_units import SpeechUnitiser, dedup_runs, speech_document
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError

VERSION = 2  # 2: Tux Paint clips in hashed order; seeded espeak noise
FIT_SECONDS_PER_UNIT = 6.0  # audio that fits the k-means: 300 frames per unit...
MIN_FIT_SECONDS = 600.0  # ...and at least 10 minutes (SMALL's 100 units: 600 s; PAPER's: 3.3 h)
FIT_STEPS = 300  # mini-batch k-means steps of FIT_BATCH frames
FIT_BATCH = 4096
ORDERS = ("text_first", "speech_first", "interleaved")
TextEncoder = Callable[[str], Sequence[int]]  # text -> BPE ids in [0, text_size)


@dataclasses.dataclass(frozen=True)
class SpeechOptions:
    """The speech builders' own options.

    Attributes:
      fit_seconds: seconds of audio that fit the unitiser (:func:`unitiser`); None:
        :func:`default_fit_seconds` of the layout.
      dedup: collapse runs of equal units (off: 50 units per second; per word when
        ``interleaved``).
    """

    fit_seconds: float | None = None
    dedup: bool = False

    def __post_init__(self):
        if self.fit_seconds is not None and self.fit_seconds <= 0:
            raise ConfigError(f"speech options: fit_seconds={self.fit_seconds} must be > 0")


def _waves(name: str, **readers) -> Iterator[np.ndarray]:
    if name == "espeak":
        return (u.audio for u in readers.get("espeak", espeak_utterances)())
    return (audio for _, audio in readers.get("tuxpaint", tuxpaint_utterances)())


# -- the unitiser ------------------------------------------------------------------------------


def default_fit_seconds(layout: VocabLayout) -> float:
    """Seconds of audio that fit the unitiser: ``max(600, 6 · speech_units)``."""
    return max(MIN_FIT_SECONDS, FIT_SECONDS_PER_UNIT * layout.speech_units)


def fit_waves(sources: Sequence[str], seconds: float, **readers) -> list[np.ndarray]:
    """The first ``seconds`` of audio, taken from the sources in turn (equal shares)."""
    waves, share = [], seconds / len(sources)
    for name in sources:
        taken = 0.0
        for wave in _waves(name, **readers):
            waves.append(wave)
            taken += len(wave) / espeak_ng.SAMPLE_RATE
            if taken >= share:
                break
    return waves


def unitiser(
    data_dir: str | os.PathLike,
    layout: VocabLayout,
    sources: Sequence[str],
    *,
    seconds: float | None = None,
    steps: int = FIT_STEPS,
    log: Callable[[str], None] = print,
    **readers,
) -> SpeechUnitiser:
    """The speech unitiser for ``layout`` fitted on ``seconds`` of ``sources`` (default
    :func:`default_fit_seconds`), cached in
    ``<data_dir>/tokenizers/speech_units-K<units>-<sources>-<seconds>s-<steps>.npz``.

    The fit runs in a child process: espeak-ng's voices keep a pitch-flutter phase across
    utterances (a static of the library that ``espeak_Terminate`` does not reset), so an
    utterance's audio depends by a few milliseconds on what the process spoke before. Fitting
    elsewhere keeps a build's documents the same whether or not the unitiser was cached: the
    builders are reproducible from a fresh process.
    """
    seconds = default_fit_seconds(layout) if seconds is None else seconds
    name = f"speech_units-K{layout.speech_units}-{'+'.join(sources)}-{seconds:g}s-{steps}.npz"
    path = os.path.join(os.fspath(data_dir), "tokenizers", name)
    if os.path.exists(path):
        return SpeechUnitiser.load(path)
    log(f"fitting {layout.speech_units} speech units on {seconds:g} s of {'+'.join(sources)}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if readers:  # injected readers (tests) may not pickle: fit here
        _fit_and_save(path, layout.speech_units, sources, seconds, steps, **readers)
    else:  # a fresh process, so that this one's espeak-ng state is as if the cache were there
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(_fit_and_save, (path, layout.speech_units, tuple(sources), seconds, steps))
    return SpeechUnitiser.load(path)


def _fit_and_save(path, num_units, sources, seconds, steps, **readers) -> None:
    waves = fit_waves(sources, seconds, **readers)
    fitted = SpeechUnitiser.fit(
        waves, num_units=num_units, seed=0, steps=steps, batch_size=FIT_BATCH
    )
    fitted.save(path)


# -- documents ---------------------------------------------------------------------------------


def text_ids(encoder: TextEncoder, text: str, layout: VocabLayout) -> np.ndarray:
    """Global ids of ``text`` (``[L]`` int64); BPE ids outside ``[0, text_size)`` raise."""
    return np.atleast_1d(layout.text_id(np.asarray(encoder(text), np.int64)))


def pieces(utterance: espeak_ng.Utterance) -> list[tuple[str, int, int]]:
    """``(text, first sample, end sample)`` per word event; the texts concatenate to the whole
    text (each runs to the next word's start; text before the first word goes with it)."""
    words, text = utterance.words, utterance.text
    out = []
    for i, w in enumerate(words):
        lo = 0 if i == 0 else w.start_char
        hi = words[i + 1].start_char if i + 1 < len(words) else len(text)
        out.append((text[lo:hi], w.start, w.end))
    return out


def interleaved(
    utterance: espeak_ng.Utterance,
    units: np.ndarray,
    layout: VocabLayout,
    encoder: TextEncoder,
    hop: int = 320,
    dedup: bool = False,
) -> np.ndarray:
    """Per word: its text, then ``<speech>`` the units of its frames ``</speech>``.

    ``units [T]`` are the utterance's frames at ``hop`` samples each (not deduplicated); a word
    whose audio covers no whole frame gets no speech segment. The last word takes the remaining
    frames. ``dedup`` collapses runs within each word's segment.
    """
    parts = []
    words = pieces(utterance)
    for i, (text, start, end) in enumerate(words):
        parts.append(text_ids(encoder, text, layout))
        lo, hi = start // hop, (len(units) if i + 1 == len(words) else end // hop)
        if hi > lo:
            segment = dedup_runs(units[lo:hi]) if dedup else units[lo:hi]
            parts.append(speech_document(segment, layout))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def pair(
    text: str, units: np.ndarray, layout: VocabLayout, encoder: TextEncoder, order: str
) -> np.ndarray:
    """``text <speech> units </speech>`` (``text_first``) or the reverse (``speech_first``)."""
    t, s = text_ids(encoder, text, layout), speech_document(units, layout)
    return np.concatenate([s, t] if order == "speech_first" else [t, s])


def speech_documents(
    name: str, units_of: SpeechUnitiser, layout: VocabLayout, dedup: bool = False, **readers
):
    """Speech documents of one source, lazily (``dedup``: collapse runs of equal units)."""
    for wave in _waves(name, **readers):
        yield units_of.document(wave, layout, dedup=dedup)


def speech_text_documents(
    name: str,
    units_of: SpeechUnitiser,
    layout: VocabLayout,
    encoder: TextEncoder,
    order: str = "text_first",
    dedup: bool = False,
    **readers,
):
    """Speech-Text documents of one source, lazily (see the module docstring for ``order``;
    ``dedup``: collapse runs of equal units)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if name == "espeak":
        for u in readers.get("espeak", espeak_utterances)():
            if order == "interleaved":
                yield interleaved(u, units_of.encode(u.audio), layout, encoder, dedup=dedup)
            else:
                yield pair(u.text, units_of.encode(u.audio, dedup=dedup), layout, encoder, order)
    else:
        for text, audio in readers.get("tuxpaint", tuxpaint_utterances)():
            fallback = "text_first" if order == "interleaved" else order
            yield pair(text, units_of.encode(audio, dedup=dedup), layout, encoder, fallback)


# -- the builders ------------------------------------------------------------------------------


def default_text_encoder(
    data_dir: str | os.PathLike, layout: VocabLayout, *, offline: bool
) -> tuple[TextEncoder, str]:
    """The shared text BPE of ``data_dir`` and ``layout`` (the one the Text, Code and Molecules
    builders use, trained and cached by :func:`mmlaws.corpora.text.shared_tokenizer`), as
    ``(encoder to local ids, "bpe:<fingerprint>")``."""
    from mmlaws.corpora import text

    tok = text.shared_tokenizer(data_dir, layout, offline=offline)
    encode = lambda s: np.asarray(tok.encode(s), np.int64) - layout.text_start
    return encode, f"bpe:{tok.fingerprint}"


def build_speech(
    options: build.BuildOptions,
    speech: SpeechOptions = SpeechOptions(),
    *,
    log: Callable[[str], None] = print,
    readers: Mapping[str, Callable] | None = None,
) -> dict:
    """Write ``<data_dir>/speech``; returns its stats.

    ``readers`` replaces source readers (``{"espeak": callable -> utterances}``, for tests).
    ``options.offline`` changes nothing here: every source is local.
    """
    readers = dict(readers or {})
    layout, dedup = options.layout, speech.dedup
    names = [s.name for s in available(SOURCES, options.sources, log=log)]
    units_of = unitiser(
        options.data_dir, layout, names, seconds=speech.fit_seconds, log=log, **readers
    )
    config = {"sources": names, "dedup": dedup}
    key = build.build_key("speech", VERSION, config, units_of.fingerprint(), layout)
    documents = {n: speech_documents(n, units_of, layout, dedup, **readers) for n in names}
    return build.build_dataset(options, "speech", documents, modalities=["speech"], key=key)


def build_speech_text(
    options: build.BuildOptions,
    speech: SpeechOptions = SpeechOptions(),
    *,
    order: str = "text_first",
    text_encoder: TextEncoder | None = None,
    text_encoder_name: str | None = None,
    log: Callable[[str], None] = print,
    readers: Mapping[str, Callable] | None = None,
) -> dict:
    """Write ``<data_dir>/speech_text``; returns its stats.

    ``text_encoder`` maps a string to BPE ids in ``[0, text_size)`` (default: the shared BPE,
    :func:`default_text_encoder`, which ``options.offline`` keeps from downloading);
    ``text_encoder_name`` identifies it in the build key (give one with a custom encoder, so
    that a different encoder rebuilds).
    """
    if order not in ORDERS:
        raise ConfigError(f"speech_text: order must be one of {ORDERS}, got {order!r}")
    readers = dict(readers or {})
    data_dir, layout, dedup = options.data_dir, options.layout, speech.dedup
    names = [s.name for s in available(SOURCES, options.sources, log=log)]
    if text_encoder is None:
        text_encoder, text_encoder_name = default_text_encoder(
            data_dir, layout, offline=options.offline
        )
    units_of = unitiser(data_dir, layout, names, seconds=speech.fit_seconds, log=log, **readers)
    config = {"sources": names, "order": order, "text_encoder": text_encoder_name, "dedup": dedup}
    key = build.build_key("speech_text", VERSION, config, units_of.fingerprint(), layout)
    documents = {
        n: speech_text_documents(n, units_of, layout, text_encoder, order, dedup, **readers)
        for n in names
    }
    modalities = ["text", "speech"]
    return build.build_dataset(options, "speech_text", documents, modalities=modalities, key=key)
