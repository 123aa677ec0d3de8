"""Image tokenizers: learned vector quantisers with spatial reduction 8 (paper §4.2, A.3.1).

An ``H×W`` RGB image becomes an ``(H/8)×(W/8)`` grid of codebook indices, read row-major into
one document ``<image> code … code </image>`` whose codes sit in the layout's image range.
The paper's tokenizer (VQGAN-MAS: f8, 8,192 codes) is a pretrained model we do not have; two
trainers learn a codebook from the local images instead, behind one interface:

- :class:`KMeansTrainer` (the fast default): k-means over the 8×8×3 pixel patches
  (mini-batch k-means with k-means++ seeding, numpy, seeded). Encoding is nearest-centroid
  search over the 192-dimensional patches; decoding pastes the centroids back.
- :class:`~mmlaws.corpora.tokenizers.vqvae.VQVAETrainer`: a small VQ-VAE in Flax, in its own
  module :mod:`~mmlaws.corpora.tokenizers.vqvae` (its model and training loop).

Both return an :class:`ImageTokenizer`; this module holds that interface, the patch k-means
and the file format (:func:`load` reads either kind)::

    tok = KMeansTrainer(codebook_size=layout.image_codes).fit(images)  # [B, H, W, 3] uint8
    codes = tok.encode(images)                                         # [B, H/8, W/8] int32
    recon = tok.decode(codes)                                          # [B, H, W, 3] uint8
    ids = tok.document(codes[0], layout)  # [<image>, image ids…, </image>]
    tok.save(path); load(path).fingerprint() == tok.fingerprint()

Pixel units: images are uint8 in ``[0, 255]``; the models and :func:`reconstruction_error` work
in ``[0, 1]`` (value / 255). jax and flax are imported only by the VQ-VAE's module, when a
``"vqvae"`` tokenizer is trained or loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os

import numpy as np

from mmlaws.corpora.tokenizers.kmeans import minibatch_kmeans, nearest
from mmlaws.data.vocab import VocabLayout

REDUCTION = 8  # spatial reduction: one code per 8×8 pixel cell, as the paper's f8 tokenizer
FORMAT = "mmlaws-image-tokenizer/1"
KINDS = ("kmeans", "vqvae")  # the trainers of :func:`trainer`


def check_images(images) -> np.ndarray:
    """``images`` as a uint8 array ``[B, H, W, 3]`` with H and W multiples of 8, else ValueError."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
    if images.shape[1] % REDUCTION or images.shape[2] % REDUCTION or images.shape[1] == 0:
        raise ValueError(
            f"image height and width must be positive multiples of {REDUCTION}, "
            f"got {images.shape[1]}×{images.shape[2]}"
        )
    return images


def check_codes(codes, k: int) -> np.ndarray:
    """``codes`` as an integer array ``[B, h, w]`` with values in ``[0, k)``, else ValueError."""
    codes = np.asarray(codes)
    if codes.ndim != 3 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integer [B, h, w], got {codes.dtype} {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"codes must lie in [0, {k}), got [{codes.min()}, {codes.max()}]")
    return codes


def to_patches(images: np.ndarray) -> np.ndarray:
    """uint8 ``[B, H, W, 3]`` → float32 patches ``[B, H/8, W/8, 192]`` in [0, 1] (row-major)."""
    b, h, w, _ = images.shape
    r = REDUCTION
    x = images.reshape(b, h // r, r, w // r, r, 3).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // r, w // r, r * r * 3).astype(np.float32) / 255.0


def from_patches(patches: np.ndarray) -> np.ndarray:
    """float patches ``[B, h, w, 192]`` in [0, 1] → uint8 images ``[B, 8h, 8w, 3]``."""
    b, h, w, _ = patches.shape
    r = REDUCTION
    x = patches.reshape(b, h, w, r, r, 3).transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, 3)
    return to_uint8(x)


def to_uint8(x) -> np.ndarray:
    """Floats in [0, 1] → uint8 [0, 255] (clipped, rounded)."""
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def reconstruction_error(tokenizer: ImageTokenizer, images, batch_size: int = 256) -> dict:
    """Mean squared error and PSNR of ``decode(encode(images))``, pixels in [0, 1].

    Returns ``{"mse": float, "psnr": float (dB, 10·log10(1 / mse)), "images": int}``; the MSE
    is averaged over every pixel and channel of every image.
    """
    images = check_images(images)
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        y = tokenizer.decode(tokenizer.encode(x))
        total += float(np.sum((x.astype(np.float64) - y.astype(np.float64)) ** 2)) / 255.0**2
    mse = total / images.size
    return {"mse": mse, "psnr": 10.0 * math.log10(1.0 / max(mse, 1e-12)), "images": len(images)}


class ImageTokenizer:
    """A trained image quantiser: ``encode``/``decode`` between images and code grids.

    Subclasses set ``kind``, ``codebook_size`` and ``config`` (a JSON-able dict) and implement
    :meth:`encode`, :meth:`decode` and :meth:`arrays` (the named arrays that define them).
    """

    kind: str = ""
    reduction: int = REDUCTION
    codebook_size: int
    config: dict

    def encode(self, images) -> np.ndarray:
        """uint8 ``[B, H, W, 3]`` (H, W multiples of 8) → int32 codes ``[B, H/8, W/8]``."""
        raise NotImplementedError

    def decode(self, codes) -> np.ndarray:
        """int codes ``[B, h, w]`` in ``[0, codebook_size)`` → uint8 images ``[B, 8h, 8w, 3]``."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- token ids ----------------------------------------------------------------------------

    def document(self, codes, layout: VocabLayout) -> np.ndarray:
        """One image's codes ``[h, w]`` → int32 ``[h·w + 2]``.

        The document is ``<image>``, the codes' global ids row-major, ``</image>``.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"one image's codes must be [h, w], got shape {codes.shape}")
        if self.codebook_size > layout.image_codes:
            raise ValueError(
                f"codebook of {self.codebook_size} codes does not fit the layout's "
                f"{layout.image_codes} image codes"
            )
        ids = layout.image_id(codes.reshape(-1))
        return np.concatenate([[layout.image_begin_id], ids, [layout.image_end_id]]).astype(
            np.int32
        )

    def documents(self, images, layout: VocabLayout, batch_size: int = 256) -> list[np.ndarray]:
        """Encode uint8 images ``[B, H, W, 3]`` into ``B`` documents (see :meth:`document`)."""
        images = check_images(images)
        out = []
        for i in range(0, len(images), batch_size):
            out.extend(self.document(c, layout) for c in self.encode(images[i : i + batch_size]))
        return out

    # -- persistence --------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the kind, config and every array (names, shapes, bytes)."""
        h = hashlib.sha256(f"{FORMAT}|{self.kind}|".encode())
        h.update(json.dumps(self.config, sort_keys=True).encode())
        for name, value in sorted(self.arrays().items()):
            value = np.ascontiguousarray(value)
            h.update(f"|{name}|{value.dtype.str}|{value.shape}|".encode())
            h.update(value.tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (config as JSON plus the arrays); atomic (temporary file, rename)."""
        path = os.fspath(path)
        meta = {"format": FORMAT, "kind": self.kind, "config": self.config}
        buf = io.BytesIO()
        np.savez(
            buf,
            __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            **{f"a/{k}": v for k, v in self.arrays().items()},
        )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(codebook_size={self.codebook_size}, "
            f"fingerprint={self.fingerprint()})"
        )


def load(path: str | os.PathLike) -> ImageTokenizer:
    """Read a tokenizer written by :meth:`ImageTokenizer.save`; ValueError names a bad file."""
    path = os.fspath(path)
    try:
        with np.load(path) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k[2:]: z[k] for k in z.files if k.startswith("a/")}
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        if meta["kind"] not in KINDS:
            raise KeyError(meta["kind"])
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image tokenizer ({err})") from err
    if meta["kind"] == "kmeans":
        return PatchKMeansTokenizer.from_arrays(meta["config"], arrays)
    from mmlaws.corpora.tokenizers import vqvae  # jax and flax, only for this kind

    return vqvae.VQVAETokenizer.from_arrays(meta["config"], arrays)


# ------------------------------------------------------------------------------------------
# Patch k-means
# ------------------------------------------------------------------------------------------


class PatchKMeansTokenizer(ImageTokenizer):
    """Nearest-centroid quantiser of 8×8×3 patches; ``codebook``: float32 ``[K, 192]`` in [0, 1]."""

    kind = "kmeans"

    def __init__(self, codebook: np.ndarray, config: dict | None = None):
        self.codebook = np.asarray(codebook, np.float32)
        if self.codebook.ndim != 2 or self.codebook.shape[1] != REDUCTION * REDUCTION * 3:
            raise ValueError(f"codebook must be [K, 192], got {self.codebook.shape}")
        self.codebook_size = len(self.codebook)
        self.config = dict(config or {}, codebook_size=self.codebook_size)
        self._sq = np.sum(self.codebook**2, axis=1)

    def encode(self, images) -> np.ndarray:
        p = to_patches(check_images(images))
        codes = nearest(p.reshape(-1, p.shape[-1]), self.codebook, self._sq)
        return codes.reshape(p.shape[:3]).astype(np.int32)

    def decode(self, codes) -> np.ndarray:
        codes = check_codes(codes, self.codebook_size)
        return from_patches(self.codebook[codes])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"codebook": self.codebook}

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict) -> PatchKMeansTokenizer:
        return cls(arrays["codebook"], config)


@dataclasses.dataclass(frozen=True)
class KMeansTrainer:
    """Mini-batch k-means (Sculley 2010) over 8×8×3 patches, seeded by k-means++ on a sample.

    Attributes:
      codebook_size: number of codes K (``layout.image_codes``).
      steps: mini-batch updates; each moves a center by ``1/count`` toward its batch mean.
      batch_size: patches per update.
      init_sample: patches drawn for k-means++ seeding (at least K).
      seed: numpy seed; the same images and seed give the same codebook.
    """

    codebook_size: int
    steps: int = 200
    batch_size: int = 4096
    init_sample: int = 20_000
    seed: int = 0

    def fit(self, images) -> PatchKMeansTokenizer:
        """Learn the codebook from uint8 images ``[B, H, W, 3]``."""
        p = to_patches(check_images(images))
        x = p.reshape(-1, p.shape[-1])  # [patches, 192]
        centers = minibatch_kmeans(
            x, self.codebook_size, seed=self.seed, steps=self.steps,
            batch_size=self.batch_size, init_sample=self.init_sample,
        )  # fmt: skip
        config = dataclasses.asdict(self)
        config["trained_on_patches"] = int(len(x))
        return PatchKMeansTokenizer(centers.astype(np.float32), config)


def trainer(kind: str, codebook_size: int, **options):
    """``KMeansTrainer`` (``"kmeans"``) or ``vqvae.VQVAETrainer`` (``"vqvae"``) with ``options``."""
    if kind not in KINDS:
        raise ValueError(f"image tokenizer kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == "kmeans":
        return KMeansTrainer(codebook_size=codebook_size, **options)
    from mmlaws.corpora.tokenizers import vqvae

    return vqvae.VQVAETrainer(codebook_size=codebook_size, **options)
