"""The Images and Image-Text builders (``data_pipelines/build_images.py``, ``build_image_text.py``).

Both share one image tokenizer per (kind, codebook size, image size, fit set), so an image
code means the same thing in both datasets. It is fitted on training images only (documents
that :func:`mmlaws.corpora.build.is_validation` sends to validation are never seen), drawn in
turn from each available image source up to ``fit_images`` images, and cached at
``<data_dir>/tokenizers/image-<kind>-<codes>-<size>px-<digest>.npz``; its fingerprint goes into
the datasets' build keys, so a new tokenizer rebuilds them.

Documents (``size`` = 32: 16 codes, 18 tokens per image):

- **images**: ``<image> c_0 … c_15 </image>`` (codes row-major);
- **image_text**: ``caption <image> codes </image>`` (``order="text_first"``, the default) or
  ``<image> codes </image> caption`` (``"image_first"``). The caption's ids come from
  ``text_encoder`` (anything with ``encode(str) -> global text ids`` and a ``fingerprint``),
  by default the BPE that the text builders share (trained on first use, cached under
  ``<data_dir>/tokenizers/``).

Both builders take a :class:`~mmlaws.corpora.build.BuildOptions` and an :class:`ImageOptions`
(image size and tokenizer)::

    build_images(BuildOptions("data", SMALL, token_budget=2_000_000), ImageOptions(size=32))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from mmlaws.corpora import build
from mmlaws.corpora.sources import Source, SourceMissing, available, nonempty
from mmlaws.corpora.sources import images as image_sources
from mmlaws.corpora.tokenizers import vq
from mmlaws.data.vocab import VocabLayout
from mmlaws.errors import ConfigError

VERSION = 1
CROPS = (500, 100)  # default random crops per sklearn photo, per scikit-image photo
ORDERS = ("text_first", "image_first")
BPE_HINT = "pass a BPE file written by mmlaws.corpora.tokenizers.bpe, or omit it to use the text's"


def tokens_per_image(size: int) -> int:
    """Tokens of one image document: ``(size / 8)^2`` codes plus ``<image>`` and ``</image>``."""
    return (size // vq.REDUCTION) ** 2 + 2


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """The image builders' own options: image size and image tokenizer (shared by both).

    Attributes:
      size: side of the square images in pixels, a positive multiple of 8.
      tokenizer: the tokenizer kind, one of :data:`~mmlaws.corpora.tokenizers.vq.KINDS`.
      tokenizer_path: a saved tokenizer file to use instead of the cached fitted one.
      fit_images: training images the tokenizer is fitted on.
      tokenizer_options: passed to its trainer
        (:class:`~mmlaws.corpora.tokenizers.vq.KMeansTrainer` or
        :class:`~mmlaws.corpora.tokenizers.vqvae.VQVAETrainer`).
      crops_per_photo: random crops per sklearn photo, per scikit-image photo.
    """

    size: int = 32
    tokenizer: str = "kmeans"
    tokenizer_path: str | os.PathLike | None = None
    fit_images: int = 4000
    tokenizer_options: Mapping | None = None
    crops_per_photo: tuple[int, int] = CROPS

    def __post_init__(self):
        if self.size <= 0 or self.size % vq.REDUCTION:
            raise ConfigError(
                f"image options: size={self.size} must be a positive multiple of {vq.REDUCTION}"
            )
        if self.tokenizer not in vq.KINDS:
            raise ConfigError(f"image options: tokenizer={self.tokenizer!r} not in {vq.KINDS}")
        object.__setattr__(self, "crops_per_photo", tuple(self.crops_per_photo))


def fit_set(
    sources: Sequence[Source], count: int, *, seed: int, validation_fraction: float
) -> np.ndarray:
    """Up to ``count`` training images ``[n, S, S, 3]`` uint8, taken in turn from each source."""
    its = {s.name: enumerate(s.read()) for s in sources}
    out = []
    while its and len(out) < count:
        for name in list(its):
            for index, item in its[name]:
                if not build.is_validation(name, index, seed=seed, fraction=validation_fraction):
                    out.append(item.image)
                    break
            else:
                del its[name]
            if len(out) == count:
                break
    if not out:
        raise SourceMissing("no training image to fit the image tokenizer on")
    return np.stack(out)


def image_tokenizer(
    options: build.BuildOptions,
    image: ImageOptions,
    *,
    fit_on: Sequence[str] | None = None,
    log=print,
) -> vq.ImageTokenizer:
    """The cached image tokenizer for this configuration, fitted and saved when absent.

    It is fitted on the training images of the image sources named ``fit_on`` (None: every
    available one), with ``options``' seed and validation fraction, and cached under
    ``options.data_dir``; ``image.tokenizer_path``: use that file instead (it must exist).
    """
    layout, seed, fraction = options.layout, options.seed, options.validation_fraction
    kind, size, crops = image.tokenizer, image.size, image.crops_per_photo
    if image.tokenizer_path is not None:
        path = image.tokenizer_path
        tok = vq.load(path)
    else:
        made = image_sources.image_sources(size, seed, crops)
        found = available(made, fit_on, log=log)
        config = {
            "kind": kind, "codes": layout.image_codes, "size": size, "seed": seed,
            **({} if crops == CROPS else {"crops_per_photo": list(crops)}),
            "sources": [s.name for s in found], "fit_images": image.fit_images,
            "validation_fraction": fraction, "options": dict(image.tokenizer_options or {}),
        }  # fmt: skip
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
        name = f"image-{kind}-{layout.image_codes}-{size}px-{digest}.npz"
        path = os.path.join(os.fspath(options.data_dir), "tokenizers", name)
        if os.path.isfile(path):
            tok = vq.load(path)
        else:
            images = fit_set(found, image.fit_images, seed=seed, validation_fraction=fraction)
            log(f"fitting the {kind} image tokenizer on {len(images)} images from "
                f"{config['sources']}")  # fmt: skip
            trainer = vq.trainer(kind, layout.image_codes, seed=seed, **config["options"])
            tok = trainer.fit(images)
            tok.config["fit"] = config
            tok.save(path)
            log(f"image tokenizer {tok.fingerprint()} saved to {path}")
    if tok.codebook_size > layout.image_codes:
        raise ValueError(f"{path}: {tok.codebook_size} codes do not fit the layout's "
                         f"{layout.image_codes} image codes")  # fmt: skip
    return tok


def _batches(items: Iterator, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def image_documents(source: Source, tok: vq.ImageTokenizer, layout: VocabLayout,
                    batch: int = 256) -> Iterator[np.ndarray]:  # fmt: skip
    """``<image> codes </image>`` of each image of ``source``, encoded ``batch`` at a time."""
    for items in _batches(nonempty(source, source.read()), batch):
        codes = tok.encode(np.stack([it.image for it in items]))
        yield from (tok.document(c, layout) for c in codes)


def image_text_documents(source: Source, tok: vq.ImageTokenizer, text_encoder,
                         layout: VocabLayout, order: str = "text_first",
                         batch: int = 256) -> Iterator[np.ndarray]:  # fmt: skip
    """Caption and image of each captioned item of ``source`` in one document (see ``order``)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    for items in _batches(nonempty(source, source.read()), batch):
        codes = tok.encode(np.stack([it.image for it in items]))
        for item, c in zip(items, codes, strict=True):
            text = np.asarray(text_encoder.encode(item.caption), np.int32)
            parts = [text, tok.document(c, layout)]
            yield np.concatenate(parts if order == "text_first" else parts[::-1])


def fingerprint_of(encoder) -> str:
    """An encoder's fingerprint, whether a method (image tokenizers) or an attribute (BPE)."""
    fp = getattr(encoder, "fingerprint", None)
    fp = fp() if callable(fp) else fp
    return str(fp) if fp is not None else type(encoder).__name__


def load_bpe(data_dir: str | os.PathLike, layout: VocabLayout, path=None, *, offline: bool):
    """The text BPE: the file ``path`` when given, else the one the text builders share
    (:func:`mmlaws.corpora.text.shared_tokenizer`: trained on first use, then cached)."""
    if path is not None:
        if not os.path.isfile(path):
            raise SourceMissing(f"text tokenizer {path} not found: {BPE_HINT}")
        from mmlaws.corpora.tokenizers.bpe import BPE

        return BPE.load(path, layout)
    from mmlaws.corpora import text

    return text.shared_tokenizer(data_dir, layout, offline=offline)


def build_images(
    options: build.BuildOptions, image: ImageOptions = ImageOptions(), *, name: str = "images"
) -> dict:
    """Write the ``images`` dataset (``<image> codes </image>`` documents); returns its stats.

    The image tokenizer is fitted on the chosen sources (``options.sources``) if absent.
    """
    made = image_sources.image_sources(image.size, options.seed, image.crops_per_photo)
    found = available(made, options.sources)
    tok = image_tokenizer(options, image, fit_on=[s.name for s in found])
    config = {"size": image.size, "sources": [s.name for s in found]}
    if image.crops_per_photo != CROPS:
        config["crops_per_photo"] = list(image.crops_per_photo)
    key = build.build_key(name, VERSION, config, tok.fingerprint(), options.layout)
    documents = {s.name: image_documents(s, tok, options.layout) for s in found}
    return build.build_dataset(options, name, documents, modalities=["image"], key=key)


def build_image_text(
    options: build.BuildOptions,
    image: ImageOptions = ImageOptions(),
    *,
    order: str = "text_first",
    text_encoder=None,
    bpe_path: str | os.PathLike | None = None,
    name: str = "image_text",
) -> dict:
    """Write the ``image_text`` dataset (caption and image per document); returns its stats.

    The image tokenizer is the one :func:`build_images` uses with the same ``image`` options
    and every available image source, fitted here if absent. ``text_encoder``: defaults to the
    text builders' shared BPE (``bpe_path``: a BPE file instead).
    """
    if order not in ORDERS:
        raise ConfigError(f"image_text: order must be one of {ORDERS}, got {order!r}")
    layout = options.layout
    found = available(image_sources.image_text_sources(image.size), options.sources)
    if text_encoder is None:
        text_encoder = load_bpe(options.data_dir, layout, bpe_path, offline=options.offline)
    tok = image_tokenizer(options, image)
    config = {"size": image.size, "sources": [s.name for s in found], "order": order}
    fingerprints = f"{tok.fingerprint()}+{fingerprint_of(text_encoder)}"
    key = build.build_key(name, VERSION, config, fingerprints, layout)
    documents = {s.name: image_text_documents(s, tok, text_encoder, layout, order) for s in found}
    return build.build_dataset(options, name, documents, modalities=["text", "image"], key=key)


def add_image_flags(parser, *, crops: bool = False) -> None:
    """The image builders' own flags (the shared ones are :func:`mmlaws.corpora.build.main`'s);
    ``crops``: also ``--crops_per_photo A,B``."""
    default = ImageOptions()
    parser.add_argument("--image_size", type=int, default=default.size, help="a multiple of 8")
    parser.add_argument("--tokenizer", choices=vq.KINDS, default=default.tokenizer)
    parser.add_argument("--image_tokenizer", default=None, help="use this saved tokenizer file")
    parser.add_argument("--fit_images", type=int, default=default.fit_images, help="to fit it on")
    if crops:
        parser.add_argument(
            "--crops_per_photo",
            type=lambda v: tuple(int(x) for x in v.split(",")),
            default=default.crops_per_photo,
            help="random crops per sklearn photo, per scikit-image photo (default "
            f"{','.join(map(str, default.crops_per_photo))})",
        )


def image_options(args) -> ImageOptions:
    """The :class:`ImageOptions` of :func:`add_image_flags`' parsed flags."""
    crops = getattr(args, "crops_per_photo", ImageOptions().crops_per_photo)
    return ImageOptions(size=args.image_size, tokenizer=args.tokenizer,
                        tokenizer_path=args.image_tokenizer, fit_images=args.fit_images,
                        crops_per_photo=crops)  # fmt: skip
