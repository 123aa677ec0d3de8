"""The unified vocabulary layout: every token's source modality follows from its id.

Ids are laid out in contiguous ranges, in this order::

    [ specials | text BPE | image codes | speech units | alignment padding ]

- **specials** (``Modality.SPECIAL``): the fixed tokens of :data:`SPECIAL_TOKENS` (pad, end of
  document, modality boundaries, the CM3 end-of-span token), then the CM3 sentinels
  ``<mask:0>`` … ``<mask:K-1>``.
- **text** (``Modality.TEXT``): BPE ids ``0 … text_size-1``, offset by :meth:`VocabLayout.text_id`.
- **image** (``Modality.IMAGE``): VQ codebook entries, offset by :meth:`VocabLayout.image_id`.
- **speech** (``Modality.SPEECH``): speech units, offset by :meth:`VocabLayout.speech_id`.
- **alignment padding** (``Modality.UNUSED``): ids that are never produced; they only round the
  embedding table up to a multiple of ``pad_to`` (128 by default), a friendlier matrix shape for
  accelerators. :attr:`VocabLayout.size` is the padded size (the model's vocabulary);
  :attr:`VocabLayout.used_size` is the number of ids that can occur.

Example (the ``TINY`` preset, 16 sentinels)::

    >>> TINY.range_of(Modality.SPECIAL), TINY.range_of(Modality.TEXT)
    ((0, 23), (23, 55))
    >>> TINY.range_of(Modality.IMAGE), TINY.range_of(Modality.SPEECH)
    ((55, 71), (71, 79))
    >>> TINY.used_size, TINY.size
    (79, 128)
    >>> TINY.modality_of([0, 22, 23, 54, 55, 70, 71, 78, 79]).tolist()
    [0, 0, 1, 1, 2, 2, 3, 3, -1]

This module is pure Python and numpy; :meth:`VocabLayout.modality_of` also accepts jax arrays
(it uses only comparisons and arithmetic), without importing jax.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from mmlaws.errors import ConfigError

# The fixed special tokens, in id order. OPT's "</s>" ends every document (and, as in OPT,
# may also open one). "<eoss>" closes each span that CM3 moves to the end of a document.
SPECIAL_TOKENS = ("<pad>", "</s>", "<image>", "</image>", "<speech>", "</speech>", "<eoss>")


class Modality(enum.IntEnum):
    """Source modality of a token id, as returned by :meth:`VocabLayout.modality_of`."""

    UNUSED = -1  # alignment padding, or outside the vocabulary
    SPECIAL = 0
    TEXT = 1
    IMAGE = 2
    SPEECH = 3


@dataclasses.dataclass(frozen=True)
class VocabLayout:
    """Sizes of each id range; every start, end and special id is computed from them.

    Attributes:
      text_size: number of text BPE ids.
      image_codes: number of image codebook entries.
      speech_units: number of speech units.
      num_sentinels: number of CM3 sentinels ``<mask:i>``; at least 16, since the CM3 objective
        masks up to 16 spans per document.
      pad_to: the total size is rounded up to a multiple of this (1 for no padding).
    """

    text_size: int
    image_codes: int
    speech_units: int
    num_sentinels: int = 16
    pad_to: int = 128

    def __post_init__(self):
        for name in ("text_size", "image_codes", "speech_units", "pad_to"):
            if getattr(self, name) < 1:
                raise ValueError(f"VocabLayout.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_sentinels < 16:
            raise ValueError(
                f"VocabLayout.num_sentinels must be >= 16 (CM3 masks up to 16 spans), "
                f"got {self.num_sentinels}"
            )

    @classmethod
    def with_total(cls, total: int, *, image_codes: int, speech_units: int,
                   num_sentinels: int = 16, pad_to: int = 128) -> VocabLayout:
        """The layout of exactly ``total`` used ids: text gets what images, speech and the
        specials leave.

        >>> VocabLayout.with_total(128, image_codes=16, speech_units=8).text_size
        81
        """
        text_size = total - image_codes - speech_units - len(SPECIAL_TOKENS) - num_sentinels
        return cls(text_size=text_size, image_codes=image_codes, speech_units=speech_units,
                   num_sentinels=num_sentinels, pad_to=pad_to)

    # -- range starts and sizes -------------------------------------------------------------

    @property
    def sentinel_start(self) -> int:
        return len(SPECIAL_TOKENS)

    @property
    def text_start(self) -> int:
        return self.sentinel_start + self.num_sentinels

    @property
    def image_start(self) -> int:
        return self.text_start + self.text_size

    @property
    def speech_start(self) -> int:
        return self.image_start + self.image_codes

    @property
    def used_size(self) -> int:
        """Number of ids that can occur (specials, text, image, speech)."""
        return self.speech_start + self.speech_units

    @property
    def size(self) -> int:
        """The model's vocabulary size: ``used_size`` rounded up to a multiple of ``pad_to``."""
        return -(-self.used_size // self.pad_to) * self.pad_to

    def range_of(self, modality: Modality | int) -> tuple[int, int]:
        """Half-open id range ``(lo, hi)`` of a modality (``UNUSED``: the alignment padding)."""
        ranges = {
            Modality.SPECIAL: (0, self.text_start),
            Modality.TEXT: (self.text_start, self.image_start),
            Modality.IMAGE: (self.image_start, self.speech_start),
            Modality.SPEECH: (self.speech_start, self.used_size),
            Modality.UNUSED: (self.used_size, self.size),
        }
        return ranges[Modality(modality)]

    # -- special ids ------------------------------------------------------------------------

    pad_id = property(lambda self: SPECIAL_TOKENS.index("<pad>"))
    eod_id = property(lambda self: SPECIAL_TOKENS.index("</s>"))
    image_begin_id = property(lambda self: SPECIAL_TOKENS.index("<image>"))
    image_end_id = property(lambda self: SPECIAL_TOKENS.index("</image>"))
    speech_begin_id = property(lambda self: SPECIAL_TOKENS.index("<speech>"))
    speech_end_id = property(lambda self: SPECIAL_TOKENS.index("</speech>"))
    end_of_span_id = property(lambda self: SPECIAL_TOKENS.index("<eoss>"))

    def sentinel(self, i: int) -> int:
        """Id of the CM3 sentinel ``<mask:i>``."""
        return self._offset(i, self.sentinel_start, self.num_sentinels, "sentinel")

    @property
    def sentinel_ids(self) -> tuple[int, ...]:
        """Ids of ``<mask:0>`` … ``<mask:K-1>``, in order."""
        return tuple(range(self.sentinel_start, self.text_start))

    def is_sentinel(self, ids):
        """Boolean mask of the sentinel ids (numpy or jax arrays, or Python ints/lists)."""
        ids = _as_array(ids)
        return (ids >= self.sentinel_start) & (ids < self.text_start)

    def token_name(self, token_id: int) -> str:
        """Readable name of one id: ``"</s>"``, ``"<mask:3>"``, ``"text:17"``, ``"image:5"``…"""
        modality = Modality(int(self.modality_of(token_id)))
        if modality == Modality.UNUSED:
            return f"unused:{token_id}"
        if modality == Modality.SPECIAL:
            if token_id < self.sentinel_start:
                return SPECIAL_TOKENS[token_id]
            return f"<mask:{token_id - self.sentinel_start}>"
        return f"{modality.name.lower()}:{token_id - self.range_of(modality)[0]}"

    # -- modality-local ids -> global ids ---------------------------------------------------

    def text_id(self, bpe_id):
        """Global id(s) of text BPE id(s); raises ``ValueError`` outside ``[0, text_size)``."""
        return self._offset(bpe_id, self.text_start, self.text_size, "text BPE")

    def image_id(self, code):
        """Global id(s) of image code(s); raises ``ValueError`` outside ``[0, image_codes)``."""
        return self._offset(code, self.image_start, self.image_codes, "image code")

    def speech_id(self, unit):
        """Global id(s) of speech unit(s); raises ``ValueError`` outside ``[0, speech_units)``."""
        return self._offset(unit, self.speech_start, self.speech_units, "speech unit")

    @staticmethod
    def _offset(local, start: int, count: int, what: str):
        values = np.asarray(local)
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{what} ids must be integers, got dtype {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= count):
            bad = values[(values < 0) | (values >= count)].ravel()[0]
            raise ValueError(f"{what} id {int(bad)} is outside the {what} range [0, {count})")
        out = values.astype(np.int64) + start
        return int(out) if out.ndim == 0 else out

    # -- global ids -> modality -------------------------------------------------------------

    def modality_of(self, ids):
        """The :class:`Modality` code of each id, as int8, same shape as ``ids``.

        Works on numpy and jax arrays (a jax array in, a jax array out) and on Python ints and
        lists. Ids in the alignment padding or outside ``[0, size)`` map to ``Modality.UNUSED``
        (-1); use :meth:`check` to reject them.
        """
        ids = _as_array(ids)
        code = -1  # accumulate (modality + 1) over the one range that holds each id
        for modality in (Modality.SPECIAL, Modality.TEXT, Modality.IMAGE, Modality.SPEECH):
            lo, hi = self.range_of(modality)
            code = code + (int(modality) + 1) * ((ids >= lo) & (ids < hi))
        return code.astype(np.int8)

    def check(self, ids, modality: Modality | int | None = None) -> None:
        """Raise ``ValueError`` unless every id is in ``modality``'s range (any used id if None).

        For numpy arrays and Python sequences (a build-time check; not traceable by jax).
        """
        ids = np.asarray(ids)
        lo, hi = (0, self.used_size) if modality is None else self.range_of(modality)
        bad = (ids < lo) | (ids >= hi)
        if bad.any():
            what = "vocabulary" if modality is None else f"{Modality(modality).name.lower()}"
            raise ValueError(
                f"token id {int(ids[bad].ravel()[0])} is outside the {what} range [{lo}, {hi})"
            )


def _as_array(ids):
    """Leave numpy/jax arrays as they are; turn Python ints and lists into numpy arrays."""
    return ids if hasattr(ids, "shape") and hasattr(ids, "astype") else np.asarray(ids)


# Paper §4.2: one BPE "with a vocab size of 2^16", in which the 8,192 VQGAN image codes and the
# 2,000 HuBERT speech units are single tokens. Read as the whole vocabulary: the text BPE gets
# what is left after images, speech and the specials (2^16 - 8,192 - 2,000 - 23 = 55,321 ids),
# and the layout is exactly 2^16 ids, the vocabulary the model presets of Table 2 count.
PAPER = VocabLayout.with_total(2**16, image_codes=8192, speech_units=2000)
# CPU-scale layouts: SMALL for demos (4,731 ids, padded to 4,736); MICRO for CPU scaling studies
# (text and code as the 256 byte symbols, no merges; 375 ids padded to 384, so that the output
# layer does not dwarf models of 10^2-10^5 parameters and they get past bigram statistics within
# a few million tokens); TINY for tests (79, to 128).
SMALL = VocabLayout(text_size=4096, image_codes=512, speech_units=100)
MICRO = VocabLayout(text_size=256, image_codes=64, speech_units=32)
TINY = VocabLayout(text_size=32, image_codes=16, speech_units=8)

# The layouts by name; :func:`resolve_layout` reads the names in any case ("tiny", "TINY").
LAYOUTS = {"TINY": TINY, "MICRO": MICRO, "SMALL": SMALL, "PAPER": PAPER}


def resolve_layout(layout: str | VocabLayout) -> VocabLayout:
    """A layout itself, or the one of :data:`LAYOUTS` with that name (case-insensitive).

    >>> resolve_layout("tiny") is resolve_layout("TINY") is TINY
    True
    """
    if isinstance(layout, VocabLayout):
        return layout
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ConfigError(f"vocabulary layout must be a VocabLayout or one of "
                          f"{sorted(n.lower() for n in LAYOUTS)}, got {layout!r}")
    return LAYOUTS[layout.upper()]


def layout_name(layout: VocabLayout) -> str | None:
    """The name of a layout in :data:`LAYOUTS` (upper case), or None for a custom one."""
    return next((name for name, known in LAYOUTS.items() if known == layout), None)
