"""Offline dataset building: raw local sources → tokenizers → tokenized shards, before training.

Nothing here runs while training; :mod:`mmlaws.data` reads the shards these builders write
(and owns the vocabulary layout and the shard format this package writes to). The rooms:

- :mod:`~mmlaws.corpora.sources`: the :class:`~mmlaws.corpora.sources.Source` record (package,
  install command, probe) and one reader module per family of modalities: ``sources/text.py``,
  ``sources/images.py``, ``sources/speech.py`` (with ``sources/espeak_ng.py``, the synthesiser).
  Readers yield raw documents (strings, images, waveforms) and know nothing of tokens.
- :mod:`~mmlaws.corpora.tokenizers`: BPE, image quantisers (patch k-means, VQ-VAE), speech
  units, and the one k-means they share.
- One builder module per family, named as its readers: :mod:`~mmlaws.corpora.text` (Text,
  Code, Molecules), :mod:`~mmlaws.corpora.images` (Images, Image-Text),
  :mod:`~mmlaws.corpora.speech` (Speech, Speech-Text): fit or load the tokenizer, turn documents
  into token ids, and write the dataset through :mod:`~mmlaws.corpora.build`, the framework
  (:class:`~mmlaws.corpora.build.BuildOptions`, budget, split, cache, command line).

Every builder is called ``build_<dataset>(options, [own options], ...)`` with one
:class:`~mmlaws.corpora.build.BuildOptions`; ``data_pipelines/build_<dataset>.py`` are their
command lines. Import the submodule you need; this package imports none of them.
"""
