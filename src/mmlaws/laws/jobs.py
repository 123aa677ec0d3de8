"""Deprecated: ``laws`` keeps the math and writes no files. The jobs moved to
:mod:`mmlaws.study.fit_jobs` (``fit_runs``, ``reproduce_paper``; they take one
:class:`~mmlaws.laws.FitSettings`), the pure fitting of a table to :mod:`mmlaws.laws.table`
(``fit_table``, ``TableFits``) and the grids to :data:`mmlaws.laws.fit.GRIDS`. This re-export
goes in the next release."""

import warnings

from mmlaws.laws.fit import GRIDS
from mmlaws.laws.table import FitSettings, TableFits, fit_table
from mmlaws.study.fit_jobs import fit_runs, reproduce_paper

warnings.warn("mmlaws.laws.jobs moved: the jobs to mmlaws.study.fit_jobs, fit_table to "
              "mmlaws.laws.table", DeprecationWarning, stacklevel=2)

__all__ = ["GRIDS", "FitSettings", "TableFits", "fit_runs", "fit_table", "reproduce_paper"]
