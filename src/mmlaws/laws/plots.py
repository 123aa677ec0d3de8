"""Deprecated: the figures of fitted laws moved to :mod:`mmlaws.study.law_plots` (``laws`` keeps
the math and writes no files). This re-export goes in the next release."""

import warnings

from mmlaws.study.law_plots import plot_frontiers, plot_unimodal_fit

warnings.warn("mmlaws.laws.plots moved to mmlaws.study.law_plots", DeprecationWarning,
              stacklevel=2)

__all__ = ["plot_frontiers", "plot_unimodal_fit"]
