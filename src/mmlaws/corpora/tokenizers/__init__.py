"""Tokenizers: one per modality, each mapping into its range of the vocabulary layout.

- :mod:`~mmlaws.corpora.tokenizers.bpe`: byte-level BPE for text, code and molecules (SMILES),
  with digit splitting, trained on the local corpora; ids in the layout's text range.
- :mod:`~mmlaws.corpora.tokenizers.vq`: image vector quantisers (spatial reduction 8); codes in
  the image range, each image wrapped in ``<image>`` … ``</image>``; the patch k-means there,
  the learned VQ-VAE (Flax model and training loop) in :mod:`~mmlaws.corpora.tokenizers.vqvae`.
- :mod:`~mmlaws.corpora.tokenizers.speech_units`: HuBERT-style speech units (16 kHz audio →
  frame features at 50 Hz → k-means units); units in the speech range.
- :mod:`~mmlaws.corpora.tokenizers.kmeans`: the mini-batch k-means both the patch quantiser and
  the speech units use.

Each tokenizer saves to and loads from one file next to the data, and has a ``fingerprint``
that goes into the builders' cache keys (:func:`mmlaws.corpora.build.build_key`). Import the
submodule you need; this package imports none of them.
"""
