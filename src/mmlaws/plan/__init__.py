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
"""

from mmlaws.plan.core import architectures, effective_tokens, plan
from mmlaws.plan.laws_source import LawSet, load_laws
from mmlaws.plan.render import compare, latex, markdown
from mmlaws.plan.settings import Budget, PlanSettings

__all__ = ["Budget", "LawSet", "PlanSettings", "architectures", "compare", "effective_tokens",
           "latex", "load_laws", "markdown", "plan"]
