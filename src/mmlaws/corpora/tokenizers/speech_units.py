"""A HuBERT-style speech unitiser: 16 kHz audio → 39-dim MFCC frames at 50 Hz → k-means units.

HuBERT's first iteration (Hsu et al. 2021, §IV-C) clusters 39-dimensional MFCC features (13
coefficients with their first and second time derivatives) with k-means, and the cluster ids are
the discrete targets. The paper's units (§4.2) come from the third iteration's HuBERT features with
2,000 clusters at 50 Hz; here the features are pluggable (``features=``, any callable from a
waveform to frames), and MFCC is the default, so the same code serves both.

The pipeline, for a waveform ``x`` of ``N`` samples at 16 kHz (``float``, in ``[-1, 1]``):

1. framing: ``T = N // 320`` frames (20 ms hop), frame ``t`` a 25 ms (400-sample) window centred on
   samples ``[320 t, 320 t + 320)``; the signal is zero-padded by 40 samples before and as many as
   needed after, so the frame rate is exactly 50 per second;
2. pre-emphasis (0.97, applied before framing), Hamming window, power spectrum over 512 points;
3. a triangular mel filterbank (HTK mel scale ``2595 log10(1 + f/700)``; 26 filters over
   0–8000 Hz, the triangles evaluated at each FFT bin's frequency), natural log (floored);
4. orthonormal DCT-II, first 13 coefficients, sinusoidal lifter 22;
5. Δ and ΔΔ by the HTK regression formula over ±2 frames (edges repeat the end frames):
   ``d[t] = Σ_n n (c[t+n] − c[t−n]) / (2 Σ_n n²)``;
6. the 39 features are standardised (mean and standard deviation of the fitting data) and each
   frame takes the id of its nearest centroid (squared Euclidean distance).

Example::

    >>> import numpy as np
    >>> wave = np.random.default_rng(0).normal(0, 0.1, 16_000)   # 1 s of noise
    >>> Mfcc()(wave).shape                                         # [T, 39], T = 50
    (50, 39)
    >>> unitiser = SpeechUnitiser.fit([wave], num_units=8, seed=0, steps=20)
    >>> units = unitiser.encode(wave)                              # [50] ints in [0, 8)
    >>> units.shape, bool(units.min() >= 0 and units.max() < 8)
    ((50,), True)

A document is ``<speech> u_1 … u_T </speech>`` with the units offset into the layout's speech
range (:meth:`SpeechUnitiser.document`). With ``dedup=True``, runs of equal units collapse to one
(HuBERT-style deduplication, as in GSLM); the rate is then below 50 per second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from mmlaws.corpora.tokenizers.kmeans import minibatch_kmeans, nearest
from mmlaws.data.vocab import VocabLayout

SAMPLE_RATE = 16_000  # Hz, the unitiser's input rate
FRAME_RATE = 50  # frames (units) per second
_FORMAT = "mmlaws-speech-units/1"

Features = Callable[[np.ndarray], np.ndarray]  # wave [N] at 16 kHz -> frames [T, F]


# -- MFCC --------------------------------------------------------------------------------------


def hz_to_mel(hz):
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    num_filters: int,
    n_fft: int,
    sample_rate: int,
    low_hz: float = 0.0,
    high_hz: float | None = None,
) -> np.ndarray:
    """Triangular mel filters, ``[num_filters, n_fft // 2 + 1]`` (float64, peak 1).

    Filter ``m`` rises linearly from mel point ``m`` to ``m + 1`` and falls to ``m + 2``, with the
    ``num_filters + 2`` points equally spaced in mel between ``low_hz`` and ``high_hz`` (default
    Nyquist); each FFT bin ``k`` sits at ``k · sample_rate / n_fft`` Hz.
    """
    high_hz = sample_rate / 2 if high_hz is None else high_hz
    points = mel_to_hz(np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_filters + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # [K] Hz
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]  # [M, 1] each
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def dct_matrix(num_in: int, num_out: int) -> np.ndarray:
    """Orthonormal DCT-II ``[num_out, num_in]``: ``D @ x`` is scipy's ``dct(x, norm='ortho')``."""
    n = np.arange(num_in)
    k = np.arange(num_out)[:, None]
    d = np.cos(np.pi * k * (2 * n + 1) / (2 * num_in)) * np.sqrt(2.0 / num_in)
    d[0] /= np.sqrt(2.0)
    return d


def deltas(frames: np.ndarray, width: int = 2) -> np.ndarray:
    """HTK regression deltas over ``±width`` frames, ``[T, F] -> [T, F]`` (edge frames repeated).

    ``d[t] = Σ_{n=1..width} n (c[t+n] − c[t−n]) / (2 Σ n²)``; on a ramp ``c[t] = a t`` every
    frame at least ``width`` from the ends gets exactly ``a``.
    """
    frames = np.asarray(frames, np.float64)
    num = len(frames)
    if num == 0:
        return frames.copy()
    padded = np.pad(frames, ((width, width), (0, 0)), mode="edge")
    out = np.zeros_like(frames)
    for n in range(1, width + 1):
        out += n * (padded[width + n : width + n + num] - padded[width - n : width - n + num])
    return out / (2 * sum(n * n for n in range(1, width + 1)))


@dataclasses.dataclass(frozen=True)
class Mfcc:
    """MFCC + Δ + ΔΔ frames at ``1000 / hop_ms`` Hz: ``wave [N] -> [N // hop, 3 · num_ceps]``.

    Attributes are the settings listed in the module docstring; times in milliseconds, frequencies
    in Hz. The output is float32; the computation is float64.
    """

    sample_rate: int = SAMPLE_RATE
    window_ms: float = 25.0
    hop_ms: float = 20.0
    n_fft: int = 512
    num_filters: int = 26
    num_ceps: int = 13
    low_hz: float = 0.0
    high_hz: float | None = None
    preemphasis: float = 0.97
    lifter: int = 22
    delta_width: int = 2
    log_floor: float = 1e-10

    @property
    def window(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def dim(self) -> int:
        return 3 * self.num_ceps

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """Pre-emphasised, Hamming-windowed frames ``[N // hop, window]`` (see module docstring)."""
        x = np.asarray(wave, np.float64).reshape(-1)
        x = np.concatenate([x[:1], x[1:] - self.preemphasis * x[:-1]]) if len(x) else x
        num = len(x) // self.hop
        before = (self.window - self.hop) // 2
        after = max(0, (num - 1) * self.hop + self.window - before - len(x))
        x = np.pad(x, (before, after))
        index = np.arange(num)[:, None] * self.hop + np.arange(self.window)  # [T, W]
        return x[index] * np.hamming(self.window)

    def cepstra(self, wave: np.ndarray) -> np.ndarray:
        """Liftered MFCC ``[T, num_ceps]`` (float64), before deltas."""
        spectrum = np.abs(np.fft.rfft(self.frames(wave), n=self.n_fft)) ** 2 / self.n_fft  # [T, K]
        bank = mel_filterbank(
            self.num_filters, self.n_fft, self.sample_rate, self.low_hz, self.high_hz
        )
        logmel = np.log(np.maximum(spectrum @ bank.T, self.log_floor))  # [T, M]
        ceps = logmel @ dct_matrix(self.num_filters, self.num_ceps).T  # [T, C]
        n = np.arange(self.num_ceps)
        return ceps * (1 + self.lifter / 2 * np.sin(np.pi * n / self.lifter))

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """``[N]`` samples at ``sample_rate`` → ``[N // hop, 3 · num_ceps]`` float32."""
        c = self.cepstra(wave)
        d = deltas(c, self.delta_width)
        dd = deltas(d, self.delta_width)
        return np.concatenate([c, d, dd], axis=1).astype(np.float32)


# -- the unitiser -----------------------------------------------------------------------------


def _features_to_json(features: Features) -> dict:
    if isinstance(features, Mfcc):
        return {"kind": "mfcc", **dataclasses.asdict(features)}
    name = f"{getattr(features, '__module__', '?')}:{getattr(features, '__qualname__', '?')}"
    return {"kind": "callable", "name": name}


def _features_from_json(spec: dict) -> Features:
    if spec["kind"] == "mfcc":
        return Mfcc(**{k: v for k, v in spec.items() if k != "kind"})
    module, _, qualname = spec["name"].partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"cannot import the saved feature extractor {spec['name']!r}; pass features= to load()"
        ) from e
    return obj


@dataclasses.dataclass(frozen=True, eq=False)
class SpeechUnitiser:
    """Frame features → nearest of ``num_units`` centroids; made by :meth:`fit` or :meth:`load`.

    Attributes:
      centroids: ``[K, F]`` float32 centroids in standardised feature space.
      mean, std: ``[F]`` float32 feature standardisation (from the fitting data).
      features: the feature extractor, ``wave [N] -> [T, F]`` (default :class:`Mfcc`).
      sample_rate: the rate ``encode`` expects (Hz).
    """

    centroids: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    features: Features = Mfcc()
    sample_rate: int = SAMPLE_RATE

    @property
    def num_units(self) -> int:
        return len(self.centroids)

    @classmethod
    def fit(
        cls,
        waveforms: Iterable[np.ndarray],
        *,
        num_units: int,
        features: Features | None = None,
        seed: int = 0,
        steps: int = 200,
        batch_size: int = 1024,
        sample_rate: int = SAMPLE_RATE,
    ) -> SpeechUnitiser:
        """Fit on waveforms (each ``[N]`` at ``sample_rate``); ``num_units`` is usually
        ``layout.speech_units``. Features are standardised, then clustered by
        :func:`~mmlaws.corpora.tokenizers.kmeans.minibatch_kmeans` (``seed``, ``steps``,
        ``batch_size``)."""
        features = Mfcc() if features is None else features
        frames = [np.asarray(features(w), np.float64) for w in waveforms]
        x = np.concatenate([f for f in frames if len(f)]) if any(len(f) for f in frames) else None
        if x is None:
            raise ValueError("SpeechUnitiser.fit needs audio of at least one frame (20 ms)")
        mean, std = x.mean(0), x.std(0)
        std = np.where(std > 1e-8, std, 1.0)
        z = (x - mean) / std
        centroids = minibatch_kmeans(z, num_units, seed=seed, steps=steps, batch_size=batch_size)
        f32 = lambda a: np.asarray(a, np.float32)
        return cls(f32(centroids), f32(mean), f32(std), features, sample_rate)

    def encode(self, wave: np.ndarray, *, dedup: bool = False) -> np.ndarray:
        """Units of one waveform: ``[N]`` samples → ``[T]`` int64 in ``[0, num_units)``.

        ``T = N // 320`` (50 per second) with the default features; ``dedup=True`` collapses runs
        of equal units to one.
        """
        z = (np.asarray(self.features(wave), np.float64) - self.mean) / self.std  # [T, F]
        units = nearest(z, self.centroids.astype(np.float64)) if len(z) else np.zeros(0, np.int64)
        return dedup_runs(units) if dedup else units

    def document(self, wave: np.ndarray, layout: VocabLayout, *, dedup: bool = False) -> np.ndarray:
        """``<speech> units… </speech>`` as global ids of ``layout``, ``[T + 2]`` int64."""
        return speech_document(self.encode(wave, dedup=dedup), layout)

    def fingerprint(self) -> str:
        """16 hex digits identifying centroids, standardisation and feature settings."""
        h = hashlib.sha256()
        for a in (self.centroids, self.mean, self.std):
            h.update(np.ascontiguousarray(a, np.float32).tobytes())
        spec = {"features": _features_to_json(self.features), "sample_rate": self.sample_rate}
        h.update(json.dumps(spec, sort_keys=True).encode())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (centroids, standardisation, settings as JSON), atomically."""
        meta = {
            "format": _FORMAT,
            "features": _features_to_json(self.features),
            "sample_rate": self.sample_rate,
            "fingerprint": self.fingerprint(),
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            centroids=self.centroids,
            mean=self.mean,
            std=self.std,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        )
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, features: Features | None = None) -> SpeechUnitiser:
        """Read what :meth:`save` wrote; a custom feature callable is re-imported by name unless
        ``features`` is given."""
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a speech unitiser file ({meta.get('format')!r})")
            features = _features_from_json(meta["features"]) if features is None else features
            return cls(z["centroids"], z["mean"], z["std"], features, int(meta["sample_rate"]))


def dedup_runs(units: Sequence[int]) -> np.ndarray:
    """Collapse runs of equal units: ``[3, 3, 1, 1, 1, 3] -> [3, 1, 3]``."""
    units = np.asarray(units, np.int64)
    if len(units) == 0:
        return units
    return units[np.concatenate([[True], units[1:] != units[:-1]])]


def speech_document(units: Sequence[int], layout: VocabLayout) -> np.ndarray:
    """``<speech> units… </speech>``: local units ``[T]`` → global ids ``[T + 2]`` int64."""
    ids = np.atleast_1d(layout.speech_id(np.asarray(units, np.int64)))
    return np.concatenate([[layout.speech_begin_id], ids, [layout.speech_end_id]]).astype(np.int64)
