"""Readers of raw local sources for the ``data_pipelines`` builders, one module per modality.

Import the submodule you need; this package imports nothing.
"""
