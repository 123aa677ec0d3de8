"""Raw image sources, each image made square and resized to ``size``×``size`` RGB uint8.

Every reader yields :class:`Item` ``(image [size, size, 3] uint8, caption str | None)`` in a
fixed order (random crops are seeded), so a builder's documents are reproducible:

- :func:`digits`: scikit-learn's ``load_digits`` (1,797 8×8 handwritten digits, 17 grey
  levels), dark ink on white, upsampled; captions ``"the digit 7"``.
- :func:`sklearn_photos`: random square crops of scikit-learn's two sample photos
  (``load_sample_images``: china.jpg, flower.jpg, 427×640).
- :func:`skimage_photos`: random square crops of scikit-image's bundled photos (astronaut,
  coffee, rocket… the ones shipped inside the wheel, no download) and its 200 LFW faces.
- :func:`openclipart`: Debian ``openclipart-png`` (8,121 PNG, transparent backgrounds),
  padded to a square on white.
- :func:`tuxpaint_stamps`: Debian ``tuxpaint-stamps-default`` (796 PNG, 785 with a caption
  file: its first line is the English description), padded to a square on white.
- :func:`emoji`: Debian ``fonts-noto-color-emoji`` rendered by Pillow at size 109 (the font's
  bitmap size) with ``embedded_color=True``, named from ``unicode-data``'s ``emoji-test.txt``
  (3,655 fully-qualified emoji; the name is the caption).

Photos are cropped (random squares of side ``[min_side, shorter side]``); drawings are padded
(the whole object stays in view). Resizing uses Pillow's Lanczos filter. :data:`SOURCES` holds
the :class:`mmlaws.corpora.sources.Source` of each, with its package and install command.
"""

from __future__ import annotations

import functools
import glob
import os
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from mmlaws.corpora.sources import Source, file_probe, module_probe

OPENCLIPART_ROOT = "/usr/share/openclipart/png"
TUXPAINT_ROOT = "/usr/share/tuxpaint/stamps"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
MAX_PIXELS = 50_000_000  # larger drawings are skipped (a few openclipart posters)
EMOJI_SIZE = 109  # the one size of Noto Color Emoji's bitmaps (CBDT strike)
SKLEARN = "scikit-learn==1.9.1"
SKIMAGE = "scikit-image==0.26.0"
PIP_DATA = "pip install -e '.[data]'  (or: pip install scikit-learn==1.9.1 scikit-image==0.26.0)"
# scikit-image photos shipped inside its wheel (the others need pooch and a download).
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
    "moon", "page", "retina", "rocket", "text",
)  # fmt: skip


class Item(NamedTuple):
    """One image ``[size, size, 3]`` uint8 and its caption (None when the source has none)."""

    image: np.ndarray
    caption: str | None


# -- making images square ---------------------------------------------------------------------


def to_rgb(image) -> np.ndarray:
    """Any of grey ``[H, W]``, RGB, RGBA (composited on white), bool or float in [0, 1] →
    uint8 ``[H, W, 3]``."""
    x = np.asarray(image)
    if x.dtype == bool:
        x = x.astype(np.uint8) * 255
    elif np.issubdtype(x.dtype, np.floating):
        x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] == 4:
        alpha = x[..., 3:].astype(np.float32) / 255.0
        x = np.rint(x[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(x[..., :3].astype(np.uint8))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` → ``[size, size, 3]`` (Lanczos; aspect ratio not kept)."""
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def pad_square(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` centred on a white square of side max(H, W), then resized."""
    h, w, _ = image.shape
    side = max(h, w)
    out = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = image
    return resize(out, size)


def random_crops(
    image: np.ndarray, size: int, count: int, rng: np.random.Generator, min_side: int = 48
) -> Iterator[np.ndarray]:
    """``count`` random square crops (side in ``[min_side, min(H, W)]``), each resized."""
    h, w, _ = image.shape
    short = min(h, w)
    for _ in range(count):
        side = int(rng.integers(min(min_side, short), short + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        yield resize(image[top : top + side, left : left + side], size)


def _load_png(path: str, max_side: int = 512) -> np.ndarray | None:
    """A drawing as uint8 RGB, its transparent margin trimmed, shrunk to at most ``max_side``
    px; None when the file is unreadable or too large to decode (over 50 M pixels)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # the size is checked here, before decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            if im.width * im.height > MAX_PIXELS:
                return None
            im.thumbnail((max_side, max_side), Image.LANCZOS)
            return _trimmed(im.convert("RGBA"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _trimmed(im) -> np.ndarray:
    """An RGBA Pillow image → uint8 RGB on white, cropped to its opaque part."""
    bbox = im.getchannel("A").getbbox()
    return to_rgb(np.asarray(im.crop(bbox) if bbox else im))


# -- readers ------------------------------------------------------------------------------------


def digits(size: int = 32) -> Iterator[Item]:
    """scikit-learn's 1,797 handwritten digits, dark on white, captions ``"the digit N"``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    for image, target in zip(data.images, data.target, strict=True):
        grey = np.rint(255.0 - image * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink -> white..black
        yield Item(resize(to_rgb(grey), size), f"the digit {int(target)}")


def sklearn_photos(size: int = 32, crops_per_photo: int = 500, seed: int = 0) -> Iterator[Item]:
    """Random crops of scikit-learn's sample photos (china.jpg, flower.jpg)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng((seed, 1))
    for photo in load_sample_images().images:
        for crop in random_crops(to_rgb(photo), size, crops_per_photo, rng):
            yield Item(crop, None)


def skimage_photos(size: int = 32, crops_per_photo: int = 100, seed: int = 0) -> Iterator[Item]:
    """Random crops of scikit-image's bundled photos, then its 200 LFW faces (25×25, grey)."""
    import skimage.data

    rng = np.random.default_rng((seed, 2))
    for name in SKIMAGE_PHOTOS:
        photo = getattr(skimage.data, name)()
        for crop in random_crops(to_rgb(photo), size, crops_per_photo, rng):
            yield Item(crop, None)
    for face in skimage.data.lfw_subset():
        yield Item(resize(to_rgb(face), size), None)


def openclipart(size: int = 32, root: str = OPENCLIPART_ROOT) -> Iterator[Item]:
    """Debian ``openclipart-png``: every PNG under ``root`` (sorted), padded square on white."""
    for path in sorted(glob.glob(os.path.join(root, "**", "*.png"), recursive=True)):
        image = _load_png(path)
        if image is not None:  # unreadable or huge files are skipped
            yield Item(pad_square(image, size), None)


def stamp_caption(png: str) -> str | None:
    """The English description of a Tux Paint stamp: the first line of its ``.txt``."""
    txt = os.path.splitext(png)[0] + ".txt"
    if not os.path.isfile(txt):
        return None
    with open(txt, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    return first or None


def tuxpaint_stamps(
    size: int = 32, root: str = TUXPAINT_ROOT, captioned_only: bool = False
) -> Iterator[Item]:
    """Debian ``tuxpaint-stamps-default``: every stamp PNG (sorted) with its caption."""
    for path in sorted(glob.glob(os.path.join(root, "**", "*.png"), recursive=True)):
        caption = stamp_caption(path)
        if captioned_only and caption is None:
            continue
        image = _load_png(path)
        if image is not None:
            yield Item(pad_square(image, size), caption)


def emoji_names(path: str = EMOJI_TEST) -> list[tuple[str, str]]:
    """``(emoji, name)`` of every fully-qualified emoji in ``emoji-test.txt``, in file order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "; fully-qualified" not in line or line.startswith("#"):
                continue
            points, _, rest = line.partition(";")
            text = "".join(chr(int(p, 16)) for p in points.split())
            name = rest.split("#", 1)[1].strip().split(" ", 2)[2]  # "😀 E1.0 grinning face"
            out.append((text, name))
    return out


@functools.lru_cache(maxsize=1)
def _emoji_font(path: str):
    from PIL import ImageFont

    return ImageFont.truetype(path, EMOJI_SIZE)


def render_emoji(text: str, size: int = 32, font: str = EMOJI_FONT) -> np.ndarray | None:
    """One emoji drawn in colour at size 109, trimmed, padded square on white; None if blank."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (4 * EMOJI_SIZE, 2 * EMOJI_SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), text, font=_emoji_font(font), embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()
    if bbox is None:
        return None
    return pad_square(to_rgb(np.asarray(canvas.crop(bbox))), size)


def emoji(size: int = 32, font: str = EMOJI_FONT, names: str = EMOJI_TEST) -> Iterator[Item]:
    """Debian ``fonts-noto-color-emoji`` glyphs with their ``unicode-data`` names."""
    for text, name in emoji_names(names):
        image = render_emoji(text, size, font)
        if image is not None:
            yield Item(image, name)


# -- sources ------------------------------------------------------------------------------------


def _source(name, what, package, install, probe, read) -> Source:
    return Source(name, what, package=package, install=install, probe=probe, read=read)


def image_sources(
    size: int = 32, seed: int = 0, crops_per_photo: tuple[int, int] = (500, 100)
) -> list[Source]:
    """The image sources at ``size`` px; ``read()`` yields :class:`Item`. Order: pip first."""
    sk, ski = module_probe("sklearn"), module_probe("skimage")
    apt = "apt-get install -y "
    return [
        _source("digits", "scikit-learn load_digits, 1,797 digits", SKLEARN, PIP_DATA, sk,
                functools.partial(digits, size)),
        _source("sklearn-photos", "random crops of scikit-learn's 2 sample photos", SKLEARN,
                PIP_DATA, sk, functools.partial(sklearn_photos, size, crops_per_photo[0], seed)),
        _source("skimage-photos", "random crops of scikit-image's bundled photos, LFW faces",
                SKIMAGE, PIP_DATA, ski,
                functools.partial(skimage_photos, size, crops_per_photo[1], seed)),
        _source("openclipart", "Open Clip Art Library PNG drawings", "openclipart-png (Debian)",
                apt + "openclipart-png", file_probe(OPENCLIPART_ROOT),
                functools.partial(openclipart, size)),
        _source("tuxpaint", "Tux Paint stamps", "tuxpaint-stamps-default (Debian)",
                apt + "tuxpaint-stamps-default", file_probe(TUXPAINT_ROOT),
                functools.partial(tuxpaint_stamps, size)),
        _source("emoji", "Noto Color Emoji glyphs", "fonts-noto-color-emoji, unicode-data "
                "(Debian)", apt + "fonts-noto-color-emoji unicode-data",
                file_probe(EMOJI_FONT, EMOJI_TEST), functools.partial(emoji, size)),
    ]  # fmt: skip


def image_text_sources(size: int = 32) -> list[Source]:
    """The captioned image sources at ``size`` px; ``read()`` yields :class:`Item`."""
    sk = module_probe("sklearn")
    apt = "apt-get install -y "
    return [
        _source("digits", "scikit-learn digits with 'the digit N'", SKLEARN, PIP_DATA, sk,
                functools.partial(digits, size)),
        _source("tuxpaint", "Tux Paint stamps with their first caption line",
                "tuxpaint-stamps-default (Debian)", apt + "tuxpaint-stamps-default",
                file_probe(TUXPAINT_ROOT),
                functools.partial(tuxpaint_stamps, size, captioned_only=True)),
        _source("emoji", "Noto Color Emoji glyphs with their Unicode names",
                "fonts-noto-color-emoji, unicode-data (Debian)",
                apt + "fonts-noto-color-emoji unicode-data",
                file_probe(EMOJI_FONT, EMOJI_TEST), functools.partial(emoji, size)),
    ]  # fmt: skip


SOURCES = image_sources()
IMAGE_TEXT_SOURCES = image_text_sources()
