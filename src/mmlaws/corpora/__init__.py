"""Offline dataset building: raw local sources → tokenizers → tokenized shards, before training.

Nothing here runs while training; :mod:`mmlaws.data` reads the shards these builders write.
Import the submodule you need; this package imports none of them.
"""
