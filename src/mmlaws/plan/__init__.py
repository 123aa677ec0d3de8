"""Plan a run: from a compute budget and a modality mix to N, D, loss, barrier, memory and bill.

>>> import mmlaws.plan as plan
>>> p = plan.plan({"code": 0.5, "text": 0.5}, plan.Budget(flops=1e21))
>>> p["laws"]["quantity"], p["architecture"]["name"]
('perplexity', '1.3B')

- :func:`plan` (:mod:`~mmlaws.plan.core`): the plan as a JSON-ready dict.
- :class:`Budget`, :class:`PlanSettings` (:mod:`~mmlaws.plan.settings`): what is asked.
- :func:`load_laws` (:mod:`~mmlaws.plan.laws_source`): Table 1 / Table 3, a study's fitted
  laws, or a JSON file of coefficients.
- :mod:`~mmlaws.plan.render`: Markdown and LaTeX tables (with intervals), side-by-side
  comparisons, JSON.
- ``mmlaws plan ...`` (:mod:`~mmlaws.plan.cli`) and the gin job ``configs/plan/plan.gin``.

Names load their module on first use, so that the command line can simulate a mesh's devices
before JAX starts.
"""

import importlib

_EXPORTS = {
    "core": ("architectures", "effective_tokens", "plan"),
    "laws_source": ("LawSet", "load_laws"),
    "render": ("compare", "latex", "markdown"),
    "settings": ("Budget", "PlanSettings"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
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
