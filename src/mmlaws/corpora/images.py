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
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence

import numpy as np

from mmlaws.corpora import build
from mmlaws.corpora.sources import images as image_sources
from mmlaws.corpora.tokenizers import vq
from mmlaws.data.vocab import VocabLayout

VERSION = 1
CROPS = (500, 100)  # default random crops per sklearn photo, per scikit-image photo
ORDERS = ("text_first", "image_first")
BPE_HINT = "pass a BPE file written by mmlaws.corpora.tokenizers.bpe, or omit it to use the text's"


def tokens_per_image(size: int) -> int:
    """Tokens of one image document: ``(size / 8)^2`` codes plus ``<image>`` and ``</image>``."""
    return (size // vq.REDUCTION) ** 2 + 2


def _check_size(size: int) -> None:
    if size <= 0 or size % vq.REDUCTION:
        raise ValueError(f"image size must be a positive multiple of {vq.REDUCTION}, got {size}")


def fit_set(
    sources: Sequence[build.Source], count: int, *, seed: int, validation_fraction: float
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
        raise build.SourceMissing("no training image to fit the image tokenizer on")
    return np.stack(out)


def image_tokenizer(
    data_dir: str | os.PathLike,
    layout: VocabLayout,
    *,
    size: int = 32,
    kind: str = "kmeans",
    sources: Sequence[str] | None = None,
    seed: int = 0,
    validation_fraction: float = 0.01,
    fit_images: int = 4000,
    options: dict | None = None,
    path: str | os.PathLike | None = None,
    crops_per_photo: tuple[int, int] = CROPS,
    log=print,
) -> vq.ImageTokenizer:
    """The cached image tokenizer for this configuration, fitted and saved when absent.

    ``path``: use this file instead (it must exist). ``options``: passed to the trainer
    (:class:`~mmlaws.corpora.tokenizers.vq.KMeansTrainer` or
    :class:`~mmlaws.corpora.tokenizers.vqvae.VQVAETrainer`).
    ``crops_per_photo``: random crops per sklearn and per scikit-image photo.
    """
    _check_size(size)
    if path is not None:
        tok = vq.load(path)
    else:
        made = image_sources.image_sources(size, seed, crops_per_photo)
        found = build.available(made, sources, log=log)
        config = {
            "kind": kind, "codes": layout.image_codes, "size": size, "seed": seed,
            **({} if crops_per_photo == CROPS else {"crops_per_photo": list(crops_per_photo)}),
            "sources": [s.name for s in found], "fit_images": fit_images,
            "validation_fraction": validation_fraction, "options": options or {},
        }  # fmt: skip
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
        name = f"image-{kind}-{layout.image_codes}-{size}px-{digest}.npz"
        path = os.path.join(os.fspath(data_dir), "tokenizers", name)
        if os.path.isfile(path):
            tok = vq.load(path)
        else:
            images = fit_set(found, fit_images, seed=seed, validation_fraction=validation_fraction)
            names = config["sources"]
            log(f"fitting the {kind} image tokenizer on {len(images)} images from {names}")
            tok = vq.trainer(kind, layout.image_codes, seed=seed, **(options or {})).fit(images)
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


def image_documents(source: build.Source, tok: vq.ImageTokenizer, layout: VocabLayout,
                    batch: int = 256) -> Iterator[np.ndarray]:  # fmt: skip
    """``<image> codes </image>`` of each image of ``source``, encoded ``batch`` at a time."""
    for items in _batches(build.nonempty(source, source.read()), batch):
        codes = tok.encode(np.stack([it.image for it in items]))
        yield from (tok.document(c, layout) for c in codes)


def image_text_documents(source: build.Source, tok: vq.ImageTokenizer, text_encoder,
                         layout: VocabLayout, order: str = "text_first",
                         batch: int = 256) -> Iterator[np.ndarray]:  # fmt: skip
    """Caption and image of each captioned item of ``source`` in one document (see ``order``)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    for items in _batches(build.nonempty(source, source.read()), batch):
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


def load_bpe(data_dir: str | os.PathLike, layout: VocabLayout, path=None, offline=False):
    """The text BPE: the file ``path`` when given, else the one the text builders share
    (:func:`mmlaws.corpora.sources.text.shared_tokenizer`: trained on first use, then cached)."""
    if path is not None:
        if not os.path.isfile(path):
            raise build.SourceMissing(f"text tokenizer {path} not found: {BPE_HINT}")
        from mmlaws.corpora.tokenizers.bpe import BPE

        return BPE.load(path, layout)
    from mmlaws.corpora.sources import text

    return text.shared_tokenizer(data_dir, layout, offline=offline)


def build_images(
    *,
    data_dir: str | os.PathLike,
    layout: VocabLayout,
    token_budget: int | None = None,
    sources: Sequence[str] | None = None,
    seed: int = 0,
    validation_fraction: float = 0.01,
    force: bool = False,
    size: int = 32,
    tokenizer: str = "kmeans",
    tokenizer_path: str | os.PathLike | None = None,
    fit_images: int = 4000,
    tokenizer_options: dict | None = None,
    crops_per_photo: tuple[int, int] = CROPS,
    name: str = "images",
    progress: bool = True,
    offline: bool = False,
) -> dict:
    """Write the ``images`` dataset (``<image> codes </image>`` documents); returns its stats."""
    crops_per_photo = tuple(crops_per_photo)
    found = build.available(image_sources.image_sources(size, seed, crops_per_photo), sources)
    tok = image_tokenizer(
        data_dir, layout, size=size, kind=tokenizer, sources=[s.name for s in found], seed=seed,
        validation_fraction=validation_fraction, fit_images=fit_images,
        options=tokenizer_options, path=tokenizer_path, crops_per_photo=crops_per_photo,
    )  # fmt: skip
    config = {"size": size, "sources": [s.name for s in found]}
    if crops_per_photo != CROPS:
        config["crops_per_photo"] = list(crops_per_photo)
    key = build.build_key(name, VERSION, config, tok.fingerprint(), layout)
    documents = {s.name: image_documents(s, tok, layout) for s in found}
    return build.build_dataset(
        data_dir, name, documents, layout=layout, modalities=["image"], key=key,
        token_budget=token_budget, validation_fraction=validation_fraction, seed=seed,
        force=force, progress=progress,
    )  # fmt: skip


def build_image_text(
    *,
    data_dir: str | os.PathLike,
    layout: VocabLayout,
    token_budget: int | None = None,
    sources: Sequence[str] | None = None,
    seed: int = 0,
    validation_fraction: float = 0.01,
    force: bool = False,
    size: int = 32,
    tokenizer: str = "kmeans",
    tokenizer_path: str | os.PathLike | None = None,
    fit_images: int = 4000,
    tokenizer_options: dict | None = None,
    text_encoder=None,
    bpe_path: str | os.PathLike | None = None,
    order: str = "text_first",
    name: str = "image_text",
    progress: bool = True,
    offline: bool = False,
) -> dict:
    """Write the ``image_text`` dataset (caption and image per document); returns its stats.

    The image tokenizer is the one :func:`build_images` uses with its default sources (every
    available image source), fitted here if absent. ``text_encoder``: defaults to the text
    builders' shared BPE (``bpe_path``: a BPE file instead). ``offline``: download nothing.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    found = build.available(image_sources.image_text_sources(size), sources)
    if text_encoder is None:
        text_encoder = load_bpe(data_dir, layout, bpe_path, offline)
    tok = image_tokenizer(
        data_dir, layout, size=size, kind=tokenizer, seed=seed,
        validation_fraction=validation_fraction, fit_images=fit_images,
        options=tokenizer_options, path=tokenizer_path,
    )  # fmt: skip
    config = {"size": size, "sources": [s.name for s in found], "order": order}
    fingerprints = f"{tok.fingerprint()}+{fingerprint_of(text_encoder)}"
    key = build.build_key(name, VERSION, config, fingerprints, layout)
    documents = {s.name: image_text_documents(s, tok, text_encoder, layout, order) for s in found}
    return build.build_dataset(
        data_dir, name, documents, layout=layout, modalities=["text", "image"], key=key,
        token_budget=token_budget, validation_fraction=validation_fraction, seed=seed,
        force=force, progress=progress,
    )  # fmt: skip


def add_image_flags(parser) -> None:
    """The image builders' own flags (the shared ones are :func:`mmlaws.corpora.build.main`'s)."""
    parser.add_argument("--image_size", type=int, default=32, help="pixels, a multiple of 8")
    parser.add_argument("--tokenizer", choices=vq.KINDS, default="kmeans")
    parser.add_argument("--image_tokenizer", default=None, help="use this saved tokenizer file")
    parser.add_argument("--fit_images", type=int, default=4000, help="images to fit it on")


def add_crop_flag(parser) -> None:
    """``--crops_per_photo A,B``: random crops per sklearn photo and per scikit-image photo."""
    parser.add_argument(
        "--crops_per_photo",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        default=CROPS,
        help="random crops per sklearn photo, per scikit-image photo (default 500,100)",
    )


def image_flags(args) -> dict:
    """Keyword arguments of the builders from :func:`add_image_flags`' parsed flags."""
    return {"size": args.image_size, "tokenizer": args.tokenizer,
            "tokenizer_path": args.image_tokenizer, "fit_images": args.fit_images}  # fmt: skip
