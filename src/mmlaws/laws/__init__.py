"""Scaling-law engine (paper §3, §5; Eq. 1–6): pure math in float64, no training imports. The
jobs that write fits, reports and figures are :mod:`mmlaws.study.fit_jobs`.

>>> import mmlaws.laws as laws
>>> law = laws.TABLE1["text"]
>>> round(float(law.predict(1.3e9, 100e9)), 3)
21.245
"""

from mmlaws.laws.fit import (
    BIMODAL_GRID,
    GRIDS,
    HOFFMANN_GRID,
    BimodalFit,
    FitInfo,
    NModalFit,
    UnimodalFit,
    fit_bimodal,
    fit_nmodal,
    fit_unimodal,
)
from mmlaws.laws.forms import BimodalLaw, Interaction, NModalLaw, UnimodalLaw, normalise_shares
from mmlaws.laws.membership import membership, same_modality
from mmlaws.laws.optimal import (
    chinchilla_optimal,
    competition_barrier,
    compute_optimal,
    is_synergistic,
)
from mmlaws.laws.profile import ProfileInterval, profile_bimodal, profile_unimodal
from mmlaws.laws.published import HUBER_DELTA, PAPER_DESIGN_D, PAPER_DESIGN_N, TABLE1, TABLE3
from mmlaws.laws.records import RunLogWriter, RunRecord, RunTable, read_csv, read_run, read_runs
from mmlaws.laws.solver import MultiStartResult, minimize_multistart
from mmlaws.laws.table import FitSettings, TableFits, fit_table
from mmlaws.laws.uncertainty import (
    BootstrapResult,
    HoldoutResult,
    bootstrap_bimodal,
    bootstrap_unimodal,
    holdout_bimodal,
    holdout_unimodal,
)

bootstrap = bootstrap_unimodal

__all__ = [
    "BIMODAL_GRID",
    "BimodalFit",
    "BimodalLaw",
    "BootstrapResult",
    "FitInfo",
    "FitSettings",
    "GRIDS",
    "HOFFMANN_GRID",
    "HUBER_DELTA",
    "HoldoutResult",
    "Interaction",
    "MultiStartResult",
    "NModalFit",
    "NModalLaw",
    "PAPER_DESIGN_D",
    "PAPER_DESIGN_N",
    "ProfileInterval",
    "RunLogWriter",
    "RunRecord",
    "RunTable",
    "TABLE1",
    "TABLE3",
    "TableFits",
    "UnimodalFit",
    "UnimodalLaw",
    "bootstrap",
    "bootstrap_bimodal",
    "bootstrap_unimodal",
    "chinchilla_optimal",
    "competition_barrier",
    "compute_optimal",
    "fit_bimodal",
    "fit_nmodal",
    "fit_table",
    "fit_unimodal",
    "holdout_bimodal",
    "holdout_unimodal",
    "is_synergistic",
    "membership",
    "minimize_multistart",
    "normalise_shares",
    "profile_bimodal",
    "profile_unimodal",
    "read_csv",
    "read_run",
    "read_runs",
    "same_modality",
]
