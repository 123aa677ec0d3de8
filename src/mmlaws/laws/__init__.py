"""Scaling-law engine (paper §3, §5; Eq. 1–6): pure math in float64, no training imports. The
jobs that write fits, reports and figures are :mod:`mmlaws.study.fit_jobs`.

The names below load their module on first use, so that importing one light module (the
run-record schema :mod:`~mmlaws.laws.records`, the spike rule :mod:`~mmlaws.laws.spikes`) does
not import the fitter and its solvers (jaxopt, scipy).

>>> import mmlaws.laws as laws
>>> law = laws.TABLE1["text"]
>>> round(float(law.predict(1.3e9, 100e9)), 3)
21.245
"""

import importlib

# Loaded now (numpy only): the function ``membership`` shares its module's name, and a lazily
# loaded submodule would otherwise shadow it as a package attribute.
from mmlaws.laws.membership import membership as membership
from mmlaws.laws.membership import same_modality as same_modality

_EXPORTS = {
    "fit": ("BIMODAL_GRID", "GRIDS", "HOFFMANN_GRID", "BimodalFit", "FitInfo", "NModalFit",
            "UnimodalFit", "fit_bimodal", "fit_nmodal", "fit_unimodal"),
    "approaches": ("compute_optimal_exponents", "envelope_exponents", "exponents_table",
                   "isoflop_exponents", "parametric_exponents"),
    "forms": ("QUANTITIES", "BimodalLaw", "Interaction", "NModalLaw", "UnimodalLaw",
              "normalise_shares", "share_arrays", "to_nats"),
    "mixture": ("EXPONENT_RANGE", "MixtureLaw", "PairMixing", "Transfer"),
    "mixture_fit": ("MixtureFit", "MixtureFitSettings", "MixtureRuns", "fit_mixture"),
    "share_holdout": ("ShareHoldout", "holdout_share", "interpolate_share", "mixture_entry"),
    "power": ("DesignPower", "design_power", "interaction_power", "rescale_law"),
    "optimal": ("FlopsPerToken", "PowerSum", "allocate", "cheapest_crossing",
                "chinchilla_optimal", "competition_barrier", "compute_optimal", "is_synergistic"),
    "profile": ("ProfileInterval", "profile_bimodal", "profile_unimodal"),
    "published": ("HUBER_DELTA", "PAPER_DESIGN_D", "PAPER_DESIGN_N", "PUBLISHED_QUANTITY",
                  "TABLE1", "TABLE3"),
    "records": ("RunLogWriter", "RunRecord", "RunTable", "read_csv", "read_run", "read_runs"),
    "solver": ("MultiStartResult", "minimize_multistart"),
    "table": ("FitSettings", "TableFits", "fit_table"),
    "trend": ("InteractionTrend", "interaction_trend"),
    "uncertainty": ("BootstrapResult", "HoldoutResult", "bootstrap_bimodal", "bootstrap_unimodal",
                    "holdout_bimodal", "holdout_unimodal"),
}
_ALIASES = {"bootstrap": "bootstrap_unimodal"}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, *_ALIASES, "membership", "same_modality"])


def __getattr__(name: str):
    """Load an exported name's module on first use; submodules load by name too."""
    target = _ALIASES.get(name, name)
    if target in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[target]}"), target)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
