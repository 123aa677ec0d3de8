"""Raw speech sources: espeak-ng speaking the standard library's prose, Tux Paint's recordings.

- ``espeak`` (:data:`ESPEAK`, :func:`espeak_utterances`): English prose sentences from the
  docstrings of the CPython standard library on the machine (:func:`stdlib_sentences`: sentences
  of 4–40 words with no code characters, grouped by :func:`paragraphs`), spoken by espeak-ng
  (:mod:`~mmlaws.corpora.sources.espeak_ng`) with a voice, speed and pitch drawn per passage,
  and word timings, so the speech builders need no other builder.
- ``tuxpaint`` (:data:`TUXPAINT`, :func:`tuxpaint_utterances`): Tux Paint's spoken stamp
  descriptions (Debian ``tuxpaint-stamps-default``,
  ``/usr/share/tuxpaint/stamps/**/*_desc[_LANG].ogg``, about 7,400 clips, mostly not English)
  with their transcripts from the stamp's ``.txt`` file (first line for English, ``LANG.utf8=``
  lines for the others); decoded by ``soundfile`` (libsndfile reads OGG).

Every waveform is 16 kHz mono float32 (:data:`~mmlaws.corpora.sources.espeak_ng.SAMPLE_RATE`).
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import hashlib
import itertools
import os
import re
import sysconfig
from collections.abc import Iterator, Sequence

import numpy as np

from mmlaws.corpora.sources import Source, espeak_ng, file_probe
from mmlaws.corpora.sources.espeak_ng import resample

SOUNDFILE_INSTALL = "pip install soundfile==0.14.0"
TUXPAINT_INSTALL = "apt-get install tuxpaint-stamps-default"
TUXPAINT_ROOT = "/usr/share/tuxpaint/stamps"


# -- text to speak ----------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODE_CHARS = re.compile(r"[_=<>{}\[\]()`*#|\\/@$%^~\"]|\.\w|\d")


def _prose(sentence: str) -> bool:
    words = sentence.split()
    return (
        4 <= len(words) <= 40
        and sentence[0].isupper()
        and sentence[-1] in ".!?"
        and not _CODE_CHARS.search(sentence)
        and sentence.isascii()
    )


def _skipped(relpath: str) -> bool:
    """Test suites and third-party packages are not the standard library's prose."""
    folders = relpath.split(os.sep)[:-1]
    return any(p == "site-packages" or p.startswith("test") or p.endswith("_test") for p in folders)


def stdlib_sentences(root: str | None = None) -> Iterator[str]:
    """English prose sentences from the docstrings of ``root`` (the CPython standard library by
    default), file by file in sorted order, deduplicated. Files that do not parse are skipped."""
    root = root or sysconfig.get_paths()["stdlib"]
    files = sorted(
        f
        for f in glob.glob(os.path.join(root, "**", "*.py"), recursive=True)
        if not _skipped(os.path.relpath(f, root))
    )
    seen = set()
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if not isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            ):
                continue
            doc = ast.get_docstring(node)
            for paragraph in (doc or "").split("\n\n"):
                flat = " ".join(paragraph.split())
                for sentence in _SENTENCE_END.split(flat):
                    if _prose(sentence) and sentence not in seen:
                        seen.add(sentence)
                        yield sentence


def paragraphs(sentences: Iterator[str], max_words: int = 40) -> Iterator[str]:
    """Group consecutive sentences into passages of at most ``max_words`` words (about 15 s)."""
    group, count = [], 0
    for s in sentences:
        n = len(s.split())
        if group and count + n > max_words:
            yield " ".join(group)
            group, count = [], 0
        group.append(s)
        count += n
    if group:
        yield " ".join(group)


# -- Tux Paint --------------------------------------------------------------------------------


def soundfile_missing() -> str | None:
    """``None`` when ``soundfile`` can decode OGG, else the reason and the install command."""
    try:
        import soundfile
    except (ImportError, OSError) as e:
        return f"soundfile is not importable ({e}); install it with: {SOUNDFILE_INSTALL}"
    if "OGG" not in soundfile.available_formats():
        return f"this libsndfile cannot decode OGG; install a newer one: {SOUNDFILE_INSTALL}"
    return None


def read_audio(path: str) -> np.ndarray:
    """A sound file as 16 kHz mono float32 ``[N]`` (channels averaged)."""
    import soundfile

    wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(wave.mean(axis=1), rate)


@dataclasses.dataclass(frozen=True)
class Clip:
    """One recorded caption: the OGG file, its language code and its transcript."""

    path: str
    language: str
    transcript: str


def _captions(txt_path: str) -> dict[str, str]:
    """Language code → caption from a stamp's ``.txt`` (first line: English)."""
    try:
        with open(txt_path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return {}
    out = {"en": lines[0]} if lines else {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep and key.endswith(".utf8"):
            out[key[: -len(".utf8")]] = value.strip()
    return out


def tuxpaint_clips(root: str = TUXPAINT_ROOT) -> Iterator[Clip]:
    """Spoken stamp descriptions under ``root`` with transcripts, in sorted path order.

    ``NAME_desc.ogg`` is English (the caption's first line); ``NAME_desc_LANG.ogg`` takes the
    ``LANG.utf8=`` line. Clips without a transcript are skipped.
    """
    pattern = re.compile(r"^(?P<stem>.+)_desc(?:_(?P<lang>[A-Za-z@_]+))?\.ogg$")
    for path in sorted(glob.glob(os.path.join(root, "**", "*_desc*.ogg"), recursive=True)):
        m = pattern.match(os.path.basename(path))
        if not m:
            continue
        lang = m.group("lang") or "en"
        caption = _captions(os.path.join(os.path.dirname(path), m.group("stem") + ".txt"))
        text = caption.get(lang)
        if text:
            yield Clip(path, lang, text)


# -- the sources --------------------------------------------------------------------------------


def _espeak_probe() -> str | None:
    return espeak_ng.espeak_missing()


def _tuxpaint_probe() -> str | None:
    return file_probe(os.path.join(TUXPAINT_ROOT, "*"))() or soundfile_missing()


ESPEAK = Source(
    "espeak",
    "English docstring prose of the Python standard library spoken by espeak-ng",
    package="espeakng-loader==0.2.4 (PyPI wheel; or Debian espeak-ng)",
    install=espeak_ng.ESPEAK_INSTALL,
    probe=_espeak_probe,
)
TUXPAINT = Source(
    "tuxpaint",
    "Tux Paint's recorded stamp descriptions (OGG) with transcripts",
    package="tuxpaint-stamps-default (Debian) and soundfile==0.14.0 (PyPI)",
    install=f"{TUXPAINT_INSTALL} && {SOUNDFILE_INSTALL}",
    probe=_tuxpaint_probe,
)
SOURCES = (ESPEAK, TUXPAINT)


def espeak_utterances(passages: Sequence[str] | None = None) -> Iterator[espeak_ng.Utterance]:
    """Spoken passages, endlessly: passage ``i mod P`` in voice
    :func:`~mmlaws.corpora.sources.espeak_ng.voice_for` ``(0, i)``.

    ``passages`` defaults to the standard library's docstring prose, read lazily on the first
    pass and kept for the next ones.
    """
    source = paragraphs(stdlib_sentences()) if passages is None else passages
    engine, seen = espeak_ng.espeak(), []
    for i, text in enumerate(source):
        seen.append(text)
        yield engine.synthesize(text, **_voice(i))
    if not seen:
        raise ESPEAK.missing("no passages to speak")
    for i in itertools.count(len(seen)):
        yield engine.synthesize(seen[i % len(seen)], **_voice(i))


def _voice(i: int) -> dict:
    voice, rate, pitch = espeak_ng.voice_for(0, i)
    return {"voice": voice, "rate": rate, "pitch": pitch, "seed": i}


def tuxpaint_utterances(root: str = TUXPAINT_ROOT) -> Iterator[tuple[str, np.ndarray]]:
    """``(transcript, audio [N] at 16 kHz)`` per Tux Paint clip, in the order of a hash of each
    clip's path under ``root``, so that any prefix (what a budget keeps) spreads over the stamp
    folders and languages."""
    key = lambda c: hashlib.blake2b(os.path.relpath(c.path, root).encode(), digest_size=8).digest()
    for clip in sorted(tuxpaint_clips(root), key=key):
        yield clip.transcript, read_audio(clip.path)
