"""Byte-level BPE for text, code and molecules, with digit splitting (paper §4.2).

The paper's text tokenizer is a BPE of 2^16 entries "with digit splitting". This one is
trained on the local corpora with the Hugging Face ``tokenizers`` library:

- **pre-tokenization**: every digit is its own pre-token (``Digits(individual_digits=True)``),
  then GPT-2's byte-level split (``ByteLevel``, no prefix space), so ``"x = 2023"`` becomes the
  pre-tokens ``x``, ``Ġ=``, ``Ġ``, ``2``, ``0``, ``2``, ``3``: no token ever spans two digits;
- **model**: BPE over the 256 byte symbols (all in the vocabulary, so any text encodes, and
  decoding is exact), with at most ``layout.text_size`` entries in all;
- **ids**: the BPE's local ids ``0 … text_size-1`` are offset into the layout's text range
  (:meth:`VocabLayout.text_id`); :meth:`BPE.encode` returns global ids, :meth:`BPE.decode`
  takes them. No special tokens live in the BPE: ``</s>`` and the rest are the layout's.

Example (shapes: ``encode`` returns ``[num_tokens]`` int32)::

    tok = BPE.train(["def f(x):\\n    return x + 12\\n"] * 100, SMALL)
    ids = tok.encode("return 12")        # global ids in SMALL.range_of(Modality.TEXT)
    tok.decode(ids) == "return 12"       # exact round trip, for any string
    tok.save("data/tokenizers/bpe.json"); BPE.load("data/tokenizers/bpe.json") == tok
    tok.fingerprint                      # 16 hex digits, for the builders' cache keys

The saved file is one JSON object: ``{"format": "mmlaws-bpe/1", "layout": {...},
"meta": {...}, "tokenizer": <the tokenizers library's own JSON>}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mmlaws.data import shards
from mmlaws.data.vocab import Modality, VocabLayout
from mmlaws.errors import DataError

FORMAT = "mmlaws-bpe/1"
BYTES = 256  # the byte-level alphabet, always in the vocabulary


def _new_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


class BPE:
    """A trained byte-level BPE whose ids live in a layout's text range.

    Attributes:
      layout: the vocabulary layout (only its text range matters).
      meta: free-form facts about training (corpus sources, characters), saved with it.
    """

    def __init__(self, tokenizer, layout: VocabLayout, meta: Mapping | None = None):
        size = tokenizer.get_vocab_size()
        if size > layout.text_size:
            raise DataError(
                f"BPE has {size} entries; the layout's text range holds only {layout.text_size}"
            )
        self._tok, self.layout, self.meta = tokenizer, layout, dict(meta or {})

    # -- training, saving, loading -----------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        layout: VocabLayout,
        *,
        min_frequency: int = 2,
        meta: Mapping | None = None,
    ) -> BPE:
        """Train on ``texts`` (any iterable of strings) up to ``layout.text_size`` entries.

        Fewer entries result when the corpus has too few pairs that occur ``min_frequency``
        times; the ids still fit the text range.
        """
        from tokenizers import pre_tokenizers, trainers

        if layout.text_size < BYTES:
            raise DataError(
                f"a byte-level BPE needs a text range of at least {BYTES} ids; "
                f"the layout has {layout.text_size} (use SMALL or PAPER)"
            )
        tokenizer = _new_tokenizer()
        trainer = trainers.BpeTrainer(
            vocab_size=layout.text_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer, layout, meta)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as one JSON file (atomically)."""
        data = {
            "format": FORMAT,
            "layout": shards.layout_to_json(self.layout),
            "meta": self.meta,
            "tokenizer": json.loads(self._tok.to_str()),
        }
        path = os.fspath(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(f"{path}.tmp", "w") as f:
            json.dump(data, f)
        os.replace(f"{path}.tmp", path)

    @classmethod
    def load(cls, path: str | os.PathLike, layout: VocabLayout | None = None) -> BPE:
        """Read a saved tokenizer; with ``layout``, check that its text range is the same."""
        from tokenizers import Tokenizer

        try:
            with open(path) as f:
                data = json.load(f)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
            saved = shards.layout_from_json(data["layout"])
            tokenizer = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except (OSError, ValueError, KeyError, TypeError, Exception) as err:
            raise DataError(
                f"{path}: cannot load the BPE tokenizer ({type(err).__name__}: {err})"
            ) from err
        if layout is not None and layout.range_of(Modality.TEXT) != saved.range_of(Modality.TEXT):
            raise DataError(
                f"{path}: trained for the text range {saved.range_of(Modality.TEXT)},"
                f" not {layout.range_of(Modality.TEXT)}"
            )
        return cls(tokenizer, layout or saved, data.get("meta"))

    # -- encoding ----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of BPE entries actually learned (``<= layout.text_size``)."""
        return self._tok.get_vocab_size()

    @property
    def fingerprint(self) -> str:
        """16 hex digits that change with the merges, the vocabulary or the text range."""
        lo, hi = self.layout.range_of(Modality.TEXT)
        text = f"{lo}:{hi}:" + self._tok.to_str()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def encode(self, text: str) -> np.ndarray:
        """Global ids of ``text``: ``[num_tokens]`` int32, inside the layout's text range."""
        return self._to_global(self._tok.encode(text).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """:meth:`encode` of several texts (the library spreads them over threads)."""
        return [self._to_global(e.ids) for e in self._tok.encode_batch(list(texts))]

    def encode_stream(self, texts: Iterable[str], batch: int = 256):
        """Yield :meth:`encode` of each text, lazily, in batches of 1, 2, 4 … up to ``batch``
        texts (so a consumer that stops early has read few texts)."""
        chunk, size = [], 1
        for text in texts:
            chunk.append(text)
            if len(chunk) == size:
                yield from self.encode_batch(chunk)
                chunk, size = [], min(2 * size, batch)
        if chunk:
            yield from self.encode_batch(chunk)

    def decode(self, ids) -> str:
        """The text of global ids (``[num_tokens]``); raises ``ValueError`` outside the range."""
        ids = np.asarray(ids, dtype=np.int64)
        self.layout.check(ids, Modality.TEXT)
        return self._tok.decode((ids - self.layout.text_start).tolist(), skip_special_tokens=False)

    def pre_tokens(self, text: str) -> list[str]:
        """The pre-tokens of ``text`` (byte-level symbols, e.g. ``Ġ`` for a space)."""
        return [piece for piece, _ in self._tok.pre_tokenizer.pre_tokenize_str(text)]

    def _to_global(self, local: list[int]) -> np.ndarray:
        return (np.asarray(local, dtype=np.int32) + self.layout.text_start).astype(np.int32)

    def __eq__(self, other) -> bool:
        return isinstance(other, BPE) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return (
            f"BPE(entries={self.vocab_size}, text_size={self.layout.text_size}, "
            f"fingerprint={self.fingerprint!r})"
        )
