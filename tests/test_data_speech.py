"""Speech unitiser (MFCC + deltas at 50 Hz, k-means units), espeak-ng synthesis, speech builders."""

import dataclasses
import os

import numpy as np
import pytest
import scipy.fft

from mmlaws.corpora import build
from mmlaws.corpora import speech as builders
from mmlaws.corpora.sources import SourceMissing, espeak_ng, speech
from mmlaws.corpora.tokenizers import kmeans
from mmlaws.corpora.tokenizers import speech_units as su
from mmlaws.data import shards
from mmlaws.data.vocab import SMALL, TINY, Modality

RATE = 16_000
needs_espeak = pytest.mark.skipif(
    espeak_ng.espeak_missing() is not None,
    reason=f"espeak-ng absent: {espeak_ng.espeak_missing()}",
)
needs_soundfile = pytest.mark.skipif(
    speech.soundfile_missing() is not None, reason=f"{speech.soundfile_missing()}"
)


def _chirp(seconds: float, seed: int = 0) -> np.ndarray:
    """A test signal: a rising tone plus a little noise, ``[seconds · 16000]``."""
    t = np.arange(int(seconds * RATE)) / RATE
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return 0.3 * np.sin(2 * np.pi * (200 + 800 * t) * t) + noise


# -- MFCC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, frames", [(1.0, 50), (2.5, 125), (0.019, 0), (1.0199, 50)])
def test_mfcc_shape_is_50_frames_per_second(seconds, frames):
    out = su.Mfcc()(_chirp(seconds))
    assert out.shape == (frames, 39) and out.dtype == np.float32
    assert np.isfinite(out).all()


def _reference_mfcc(wave, num_filters, n_fft, high_hz, lifter=22, num_ceps=13):
    """Loops and scipy: frames, a mel matrix built filter by filter, scipy's DCT-II."""
    x = np.concatenate([wave[:1], wave[1:] - 0.97 * wave[:-1]])
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = [inv(m) for m in np.linspace(mel(0.0), mel(high_hz), num_filters + 2)]
    bank = np.zeros((num_filters, n_fft // 2 + 1))
    for m in range(num_filters):
        for k in range(n_fft // 2 + 1):
            f = k * RATE / n_fft
            if edges[m] <= f <= edges[m + 1]:
                bank[m, k] = (f - edges[m]) / (edges[m + 1] - edges[m])
            elif edges[m + 1] < f <= edges[m + 2]:
                bank[m, k] = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1])
    rows = []
    for t in range(len(x) // 320):
        frame = np.zeros(400)
        for j in range(400):
            i = t * 320 - 40 + j
            if 0 <= i < len(x):
                frame[j] = x[i]
        power = np.abs(np.fft.rfft(frame * np.hamming(400), n_fft)) ** 2 / n_fft
        logmel = np.log(np.maximum(bank @ power, 1e-10))
        ceps = scipy.fft.dct(logmel, type=2, norm="ortho")[:num_ceps]
        rows.append(ceps * (1 + lifter / 2 * np.sin(np.pi * np.arange(num_ceps) / lifter)))
    return np.array(rows)


@pytest.mark.parametrize("num_filters, n_fft, high_hz", [(26, 512, None), (23, 1024, 7600.0)])
def test_mfcc_equals_reference_computation(num_filters, n_fft, high_hz):
    wave = _chirp(0.4567, seed=3)
    mfcc = su.Mfcc(num_filters=num_filters, n_fft=n_fft, high_hz=high_hz)
    ref = _reference_mfcc(wave, num_filters, n_fft, high_hz or RATE / 2)
    np.testing.assert_allclose(mfcc.cepstra(wave), ref, rtol=1e-9, atol=1e-9)
    full = mfcc(wave)
    np.testing.assert_allclose(full[:, :13], ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(full[:, 13:26], su.deltas(ref), rtol=1e-5, atol=1e-4)


def test_dct_matrix_is_scipy_dct():
    x = np.random.default_rng(0).normal(size=(5, 26))
    ours = x @ su.dct_matrix(26, 13).T
    np.testing.assert_allclose(ours, scipy.fft.dct(x, type=2, norm="ortho")[:, :13], atol=1e-12)


def test_deltas_of_ramp_and_parabola():
    t = np.arange(20, dtype=np.float64)[:, None]
    ramp = np.hstack([3 * t + 1, -0.5 * t])  # [T, 2], slopes 3 and -0.5
    d = su.deltas(ramp)
    np.testing.assert_allclose(d[2:-2], np.tile([3.0, -0.5], (16, 1)), atol=1e-12)
    np.testing.assert_allclose(su.deltas(d)[4:-4], 0.0, atol=1e-12)
    # the edge frames repeat: at t = 0, (1·(c1 − c0) + 2·(c2 − c0)) / 10 = 5a / 10
    np.testing.assert_allclose(d[0], [1.5, -0.25])
    parabola = t**2  # d/dt = 2t, d²/dt² = 2
    np.testing.assert_allclose(su.deltas(parabola)[2:-2, 0], 2 * t[2:-2, 0], atol=1e-9)
    np.testing.assert_allclose(su.deltas(su.deltas(parabola))[4:-4], 2.0, atol=1e-9)


# -- k-means units ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unitiser():
    waves = [_chirp(1.0, seed=s) for s in range(3)] + [np.zeros(RATE // 2)]
    return su.SpeechUnitiser.fit(waves, num_units=TINY.speech_units, seed=0, steps=30)


def test_units_are_in_range_at_50_per_second(unitiser):
    units = unitiser.encode(_chirp(1.5, seed=9))
    assert units.shape == (75,) and units.dtype == np.int64
    assert units.min() >= 0 and units.max() < TINY.speech_units
    assert len(np.unique(units)) > 1
    doc = unitiser.document(_chirp(1.5, seed=9), TINY)
    assert doc[0] == TINY.speech_begin_id and doc[-1] == TINY.speech_end_id
    TINY.check(doc[1:-1], Modality.SPEECH)
    np.testing.assert_array_equal(doc[1:-1], TINY.speech_id(units))
    dedup = unitiser.encode(_chirp(1.5, seed=9), dedup=True)
    np.testing.assert_array_equal(dedup, su.dedup_runs(units))
    assert len(dedup) <= len(units) and (np.diff(dedup) != 0).all()


def test_fit_is_deterministic_and_seeded(unitiser):
    waves = [_chirp(1.0, seed=s) for s in range(3)] + [np.zeros(RATE // 2)]
    again = su.SpeechUnitiser.fit(waves, num_units=TINY.speech_units, seed=0, steps=30)
    np.testing.assert_array_equal(again.centroids, unitiser.centroids)
    assert again.fingerprint() == unitiser.fingerprint()
    other = su.SpeechUnitiser.fit(waves, num_units=TINY.speech_units, seed=1, steps=30)
    assert other.fingerprint() != unitiser.fingerprint()


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + rng.normal(0, 0.1, (200, 2)) for c in centres])
    found = kmeans.minibatch_kmeans(x, 3, seed=0, steps=20, batch_size=128)
    order = np.argsort(found[:, 0] + 2 * found[:, 1])
    np.testing.assert_allclose(found[order], centres, atol=0.1)


def test_kmeans_with_fewer_rows_than_centres_keeps_them_apart():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    centres = kmeans.kmeans_plus_plus(x, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(centres[:3], x)  # every row, then jittered repeats
    assert len({tuple(c) for c in centres}) == 5
    found = kmeans.minibatch_kmeans(x, 5, seed=0, steps=3, batch_size=3)
    assign = kmeans.nearest(x, found)
    assert len(set(assign.tolist())) == 3  # each row its own centre, which sits on it
    np.testing.assert_allclose(found[assign], x, atol=1e-2)


def test_save_load_round_trip(unitiser, tmp_path):
    path = tmp_path / "units.npz"
    unitiser.save(path)
    back = su.SpeechUnitiser.load(path)
    assert back.fingerprint() == unitiser.fingerprint() and back.features == su.Mfcc()
    wave = _chirp(0.7, seed=5)
    np.testing.assert_array_equal(back.encode(wave), unitiser.encode(wave))


def _energy(wave):
    """A custom frame feature: log energy of 20 ms frames, ``[N // 320, 1]``."""
    frames = np.asarray(wave)[: len(wave) // 320 * 320].reshape(-1, 320)
    return np.log(np.mean(frames**2, axis=1, keepdims=True) + 1e-8)


def test_pluggable_features(tmp_path):
    waves = [_chirp(1.0, seed=s) * g for s, g in enumerate([0.1, 1.0, 3.0])]
    fitted = su.SpeechUnitiser.fit(waves, num_units=3, features=_energy, seed=0, steps=10)
    assert fitted.centroids.shape == (3, 1)
    assert fitted.encode(waves[0]).shape == (50,)
    fitted.save(tmp_path / "energy.npz")
    back = su.SpeechUnitiser.load(tmp_path / "energy.npz", features=_energy)
    np.testing.assert_array_equal(back.encode(waves[2]), fitted.encode(waves[2]))


# -- sources ------------------------------------------------------------------------------------


@needs_espeak
def test_espeak_synthesis_and_word_events():
    text = "The quick brown fox jumps over the lazy dog."
    utt = espeak_ng.espeak().synthesize(text, "en-gb-scotland+f2", rate=200)
    assert utt.audio.dtype == np.float32 and 1.0 < utt.seconds < 6.0
    assert np.sqrt(np.mean(utt.audio**2)) > 0.01  # not silent
    starts = [w.start for w in utt.words]
    assert starts == sorted(starts) and starts[0] < RATE // 5
    assert all(w.start <= w.end for w in utt.words) and utt.words[-1].end == len(utt.audio)
    spoken = " ".join(text[w.start_char : w.end_char] for w in utt.words)
    assert spoken.replace(".", "").split() == text.replace(".", "").split()
    # 16 kHz: the same text at another speed scales the duration, not the rate
    slow = espeak_ng.espeak().synthesize(text, "en-us", rate=120)
    assert slow.seconds > utt.seconds


@needs_espeak
def test_interleaved_pieces_cover_the_text():
    utt = espeak_ng.espeak().synthesize("Speak these six words aloud, please.", "en")
    pieces = builders.pieces(utt)
    assert "".join(p[0] for p in pieces) == utt.text
    encoder = lambda s: list(s.encode())  # bytes stand in for BPE ids (SMALL has 4096)
    units = np.zeros(len(utt.audio) // 320, np.int64)
    doc = builders.interleaved(utt, units, SMALL, encoder)
    text_ids = doc[SMALL.modality_of(doc) == Modality.TEXT] - SMALL.text_start
    assert bytes(text_ids.tolist()).decode() == utt.text
    assert (doc == SMALL.speech_begin_id).sum() == (doc == SMALL.speech_end_id).sum() >= 5
    assert (SMALL.modality_of(doc) == Modality.SPEECH).sum() == len(units)


def test_stdlib_sentences_keep_prose_only(tmp_path):
    (tmp_path / "mod.py").write_text(
        '"""A module that does things well. Call f(x) with x_1 set.\n\n'
        'It returns. Use foo.bar to see it."""\n'
        'def g():\n    """Return the answer to every question asked here."""\n'
    )
    got = list(speech.stdlib_sentences(str(tmp_path)))
    assert got == [
        "A module that does things well.",
        "Return the answer to every question asked here.",
    ]
    assert list(speech.paragraphs(iter(["one two three four."] * 3), max_words=8)) == [
        "one two three four. one two three four.",
        "one two three four.",
    ]


def test_tuxpaint_clips_pair_audio_with_transcripts(tmp_path):
    folder = tmp_path / "animals"
    folder.mkdir()
    (folder / "cat.txt").write_text("A small cat.\nfr.utf8=Un petit chat.\nde.utf8=Eine Katze.\n")
    for name in ("cat_desc.ogg", "cat_desc_fr.ogg", "cat_desc_ru.ogg", "cat.ogg"):
        (folder / name).write_bytes(b"")
    clips = list(speech.tuxpaint_clips(str(tmp_path)))
    assert [(c.language, c.transcript) for c in clips] == [
        ("en", "A small cat."),
        ("fr", "Un petit chat."),
    ]


@needs_soundfile
def test_read_audio_resamples_to_16k_mono(tmp_path):
    import soundfile

    t = np.arange(44_100) / 44_100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    soundfile.write(tmp_path / "a.ogg", stereo, 44_100)
    wave = speech.read_audio(str(tmp_path / "a.ogg"))
    assert wave.dtype == np.float32 and abs(len(wave) - RATE) <= 1
    assert 0.2 < np.sqrt(np.mean(wave[1000:-1000] ** 2)) < 0.5


def test_missing_espeak_names_the_package(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_loader(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError("blocked")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_loader)
    monkeypatch.setattr(espeak_ng.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(espeak_ng.ctypes, "CDLL", lambda path: (_ for _ in ()).throw(OSError(path)))
    reason = espeak_ng.espeak_missing()
    assert "espeakng-loader==0.2.4" in reason and "pip install" in reason
    assert "apt-get install espeak-ng" in reason


def test_builder_with_no_source_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(espeak_ng, "espeak_missing", lambda: "libespeak-ng not found")
    monkeypatch.setattr(speech, "soundfile_missing", lambda: "soundfile is not importable")
    with pytest.raises(SourceMissing) as err:
        builders.build_speech(build.BuildOptions(tmp_path, TINY, token_budget=100), log=print)
    message = str(err.value)
    assert "pip install espeakng-loader==0.2.4" in message
    assert "apt-get install tuxpaint-stamps-default" in message
    assert not os.path.exists(tmp_path / "speech")


# -- builders -----------------------------------------------------------------------------------

PASSAGES = ["A short passage to speak aloud.", "Another passage, with a comma.", "Third one."]


def _readers():
    return {"espeak": lambda: speech.espeak_utterances(PASSAGES)}


@needs_espeak
def test_build_speech_at_a_tiny_budget(tmp_path, capsys):
    options = build.BuildOptions(tmp_path, TINY, token_budget=600, sources=["espeak"],
                                 progress=False)  # fmt: skip
    units = builders.SpeechOptions(fit_seconds=3.0)
    stats = builders.build_speech(options, units, readers=_readers())
    total = sum(s["tokens"] for s in stats["splits"].values())
    assert 0 < total <= 600 and stats["modalities"] == ["speech"]
    for i in range(len(shards.ShardSource(tmp_path, "speech", "train"))):
        doc = shards.ShardSource(tmp_path, "speech", "train")[i]
        assert doc[0] == TINY.speech_begin_id and doc[-1] == TINY.speech_end_id
        TINY.check(doc[1:-1], Modality.SPEECH)
    assert os.listdir(tmp_path / "tokenizers")  # the cached unitiser
    builders.build_speech(options, units, readers=_readers())
    assert "up to date" in capsys.readouterr().out
    elsewhere = dataclasses.replace(options, data_dir=tmp_path / "d")
    dedup_units = dataclasses.replace(units, dedup=True)
    dedup = builders.build_speech(elsewhere, dedup_units, readers=_readers())
    assert dedup["build"]["key"]["config"]["dedup"] is True
    doc = shards.ShardSource(tmp_path / "d", "speech", "train")[0]
    assert len(doc) > 3 and (np.diff(doc[1:-1]) != 0).all()


@needs_espeak
@pytest.mark.parametrize("order", ["text_first", "speech_first", "interleaved"])
def test_build_speech_text_orders(tmp_path, order):
    encoder = lambda s: [b % TINY.text_size for b in s.encode()]  # stands in for the BPE
    options = build.BuildOptions(tmp_path, TINY, token_budget=900, sources=["espeak"],
                                 progress=False)  # fmt: skip
    stats = builders.build_speech_text(
        options, builders.SpeechOptions(fit_seconds=3.0), order=order, text_encoder=encoder,
        text_encoder_name="bytes-mod-32", readers=_readers(),
    )  # fmt: skip
    assert stats["build"]["key"]["config"]["order"] == order
    doc = shards.ShardSource(tmp_path, "speech_text", "train")[0]
    kinds = TINY.modality_of(doc)
    assert set(kinds.tolist()) == {Modality.SPECIAL, Modality.TEXT, Modality.SPEECH}
    first = {"text_first": Modality.TEXT, "speech_first": Modality.SPECIAL}
    assert kinds[0] == first.get(order, Modality.TEXT)
    segments = (doc == TINY.speech_begin_id).sum()
    assert segments == 1 if order != "interleaved" else segments > 1


@pytest.mark.parametrize("module", [su, kmeans])
def test_module_docstring_example(module):
    import doctest

    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.skipif(
    espeak_ng.ctypes.util.find_library("espeak-ng") is None,
    reason="Debian's libespeak-ng1 is absent (apt-get install espeak-ng)",
)
def test_debian_library_stands_in_for_the_wheel():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['espeakng_loader'] = None\n"
        "from mmlaws.corpora.sources import espeak_ng\n"
        "u = espeak_ng.espeak().synthesize('Two words.', 'en-gb-scotland+m3')\n"
        "print(espeak_ng._find_espeak()[1], len(u.words), u.seconds > 0.3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "2", "True"]


@needs_espeak
def test_synthesis_is_reproducible_from_a_fresh_process():
    import subprocess
    import sys

    code = (
        "import hashlib\n"
        "from mmlaws.corpora.sources import espeak_ng\n"
        "u = espeak_ng.espeak().synthesize('Noise is seeded.', 'en-gb-scotland+m3', seed=7)\n"
        "print(hashlib.md5(u.audio.tobytes()).hexdigest())\n"
    )
    run = lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
    assert run() == run()
